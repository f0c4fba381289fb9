"""Atomic artifact directories and the manifest's file table.

A build writes into a temp directory beside the destination and renames it into place only
when complete, so `build/<target>/<model>/` is always either the previous complete artifact or
the new complete one — never half-written. On an exception the temp directory is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path, exclude: tuple[str, ...] = (MANIFEST,)) -> list[dict[str, Any]]:
    """Every file under `root` (sorted), with size and sha256."""
    rows = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in exclude:
            rows.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return rows


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def install(src: Path, final: Path) -> None:
    """Rename the complete directory `src` to `final`, replacing what was there (two renames on
    one filesystem: a reader sees the old artifact or the new one, never a mix)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(src, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class AtomicDir:
    """``with AtomicDir(final) as tmp: ...write into tmp...`` then ``commit()`` inside the block.

    Leaving the block without `commit()` (or by an exception) discards everything written.
    """

    def __init__(self, final: Path):
        self.final = final
        self.path: Path | None = None
        self._committed = False

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp makes it 0700; the artifact is not secret
        return self.path

    def commit(self) -> None:
        assert self.path is not None
        install(self.path, self.final)
        self._committed = True

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if not self._committed and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
