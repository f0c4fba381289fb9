"""The persistent content-addressed stage cache.

Each stage of a build (export, optimize, validation reference, precision, compile, verify) is
keyed by the sha256 of what it reads (`keys`) and its result is stored as files plus JSON facts
(`store`): in this process always, and on disk unless disabled. Where:

    --cache DIR  >  $MODEL_COMPILER_CACHE (a directory, or "off")  >  $XDG_CACHE_HOME/model-compiler
    >  ~/.cache/model-compiler;        --no-cache: this process only.

`build.json` records, per stage, whether it was served from the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from compiler.cache.store import DEFAULT_MAX_BYTES, DiskStore, Entry, MemoryStore

ENV = "MODEL_COMPILER_CACHE"
ENV_MAX = "MODEL_COMPILER_CACHE_MAX_GB"
T = TypeVar("T")
HIT, HIT_MEMORY, MISS, CORRUPT, OFF = "hit", "hit (this process)", "miss", "corrupt entry, rebuilt", "not cached"


def default_dir() -> Path | None:
    """The cache directory by the rule above (None: disabled)."""
    env = os.environ.get(ENV)
    if env:
        return None if env.lower() in ("off", "0", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-compiler"


class Cache:
    """A memory store for this process and, optionally, a disk store shared between processes."""

    def __init__(self, directory: Path | None, max_bytes: int | None = None):
        if max_bytes is None:
            max_bytes = int(float(os.environ.get(ENV_MAX, DEFAULT_MAX_BYTES / 2**30)) * 2**30)
        self.disk = DiskStore(directory, max_bytes) if directory is not None else None
        self.memory = MemoryStore()

    @classmethod
    def open(cls, directory: Path | None = None, enabled: bool = True) -> Cache:
        return cls((directory or default_dir()) if enabled else None)

    @property
    def directory(self) -> Path | None:
        return self.disk.root if self.disk is not None else None

    def get(self, stage: str, key: str) -> tuple[Entry | None, str]:
        """The entry and how it was found (HIT, HIT_MEMORY, MISS or CORRUPT)."""
        hit = self.memory.get(stage, key)
        if hit is not None:
            return hit, HIT_MEMORY
        if self.disk is None:
            return None, MISS
        seen = len(self.disk.corrupt)
        hit = self.disk.get(stage, key)
        if hit is None:
            return None, CORRUPT if len(self.disk.corrupt) > seen else MISS
        self.memory.put(stage, key, hit)
        return hit, HIT

    @contextlib.contextmanager
    def claim(self, stage: str, key: str) -> Iterator[None]:
        """Hold `(stage, key)` while looking it up and computing it: a concurrent build (a fleet's
        other row of the same model) waits, then finds the entry instead of computing it again."""
        if self.disk is None:
            yield
            return
        locks = self.disk.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{stage}-{key[:40]}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def put(self, stage: str, key: str, entry: Entry) -> None:
        self.memory.put(stage, key, entry)
        if self.disk is not None:
            try:
                self.disk.put(stage, key, entry)
            except OSError:
                pass  # a full or read-only cache disk costs the next build time, never this build


def cached(cache: Cache, stage: str, key: str, compute: Callable[[], tuple[T, Entry]], restore: Callable[[Entry], T],
           use: bool = True) -> tuple[T, str]:
    """The one way a stage uses the cache: under the key's claim, restore a stored result or
    compute it (`compute` returns the value and what to store) — and say which happened."""
    with cache.claim(stage, key):
        entry, how = cache.get(stage, key) if use else (None, OFF)
        if entry is not None:
            return restore(entry), how
        value, entry = compute()
        cache.put(stage, key, entry)
        return value, how


__all__ = ["cached", "Cache", "Entry", "HIT", "HIT_MEMORY", "MISS", "CORRUPT", "OFF", "default_dir"]
