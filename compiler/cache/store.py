"""Where stage results live: in this process (always) and on disk (unless `--no-cache`).

An entry is a directory of files plus ``entry.json`` (stage, key, the sha256 and size of every
file, and the stage's JSON facts), at ``ROOT/<stage>/<key[:2]>/<key>/``. Written by hand: the
field's caches (joblib.Memory, diskcache) pickle their values — a cache directory shared by a
team would then run whatever code a writer put there — and neither verifies an entry on read.

- **Atomic writes**: an entry is assembled in ``ROOT/tmp/`` and renamed into place; if another
  writer got there first, theirs is kept (same key, same content) and ours discarded.
- **Verified reads**: every file is checked against its sha256 before use; an entry that fails
  (a flipped byte, a truncated file, a missing one) is removed and reported as corrupt, and the
  stage runs again. Nothing is unpickled.
- **Size cap, least recently used first**: a read touches ``entry.json``; after a write, entries
  are evicted oldest-first until the total is under the cap (one evictor at a time, `flock`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.artifact.files import json_safe, sha256_file

ENTRY = "entry.json"
DEFAULT_MAX_BYTES = 20 << 30


@dataclass
class Entry:
    """A stage result: `files` (name → bytes) and `facts` (JSON). `path` is where a disk entry's
    files are (read them, never change them)."""

    facts: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    path: Path | None = None
    listed: tuple[str, ...] = ()  # a disk entry's file names

    def read(self, name: str) -> bytes:
        return self.files[name] if name in self.files else (self.path / name).read_bytes()

    def names(self) -> list[str]:
        return sorted(self.files) if self.path is None else sorted(self.listed)


class MemoryStore:
    """This process's results (a `--precision best` run shares export and passes between
    candidates even with `--no-cache`)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    def get(self, stage: str, key: str) -> Entry | None:
        e = self._entries.get((stage, key))
        return None if e is None else Entry(json.loads(json.dumps(e.facts)), {n: e.read(n) for n in e.names()})

    def put(self, stage: str, key: str, entry: Entry) -> None:
        self._entries[(stage, key)] = Entry(json.loads(json.dumps(json_safe(entry.facts))),
                                            {n: entry.read(n) for n in entry.names()})


class DiskStore:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = root
        self.max_bytes = max_bytes
        self.corrupt: list[str] = []  # "stage/key" of entries found damaged and removed

    def _dir(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    def get(self, stage: str, key: str) -> Entry | None:
        d = self._dir(stage, key)
        try:
            meta = json.loads((d / ENTRY).read_text())
            files = meta["files"]
            for name, want in files.items():
                if not (d / name).is_file() or (d / name).stat().st_size != want["bytes"] or sha256_file(d / name) != want["sha256"]:
                    raise ValueError(f"{name} differs from its sha256")
            os.utime(d / ENTRY)  # least recently used is evicted first
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.corrupt.append(f"{stage}/{key[:12]}: {e}")
            self._discard(d)
            return None
        return Entry(meta.get("facts", {}), path=d, listed=tuple(files))

    def put(self, stage: str, key: str, entry: Entry) -> None:
        final = self._dir(stage, key)
        if (final / ENTRY).is_file():
            return
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=tmp_root))
        try:
            table = {}
            for name in entry.names():
                p = work / name
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(entry.read(name))
                table[name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            meta = {"stage": stage, "key": key, "created": time.time(), "files": table, "facts": json_safe(entry.facts)}
            (work / ENTRY).write_text(json.dumps(meta, allow_nan=False))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(work, final)  # atomic; fails if another writer installed it first
            except OSError:
                if (final / ENTRY).is_file():
                    shutil.rmtree(work, ignore_errors=True)
                else:  # a damaged leftover under the same key: replace it
                    self._discard(final)
                    os.rename(work, final)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        self.evict()

    def _discard(self, d: Path) -> None:
        trash = self.root / "tmp" / f"trash-{os.getpid()}-{time.monotonic_ns()}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(d, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, directory) of every complete entry."""
        out = []
        for meta in self.root.glob(f"*/??/*/{ENTRY}"):
            try:
                size = sum(f["bytes"] for f in json.loads(meta.read_text())["files"].values())
                out.append((meta.stat().st_mtime, size, meta.parent))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def evict(self) -> None:
        lock = self.root / ".lock"
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            entries = sorted(self.entries())
            total = sum(size for _, size, _ in entries)
            for _, size, d in entries:
                if total <= self.max_bytes:
                    break
                self._discard(d)
                total -= size
