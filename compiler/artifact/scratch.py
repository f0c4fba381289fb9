"""Where a run's temporary files go: its own scratch, removed with it.

A build's scratch is its output slot's work directory (beside the output); a command with no
slot (verify, bench) gets a private directory in the system temp dir. Native libraries read
$TMPDIR, Python's `tempfile` its own setting: both are redirected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redirect_tmp(directory: Path) -> Iterator[Path]:
    """Every temporary file of this process goes to `directory` meanwhile: Python's `tempfile`
    and native libraries that read $TMPDIR (ONNX Runtime writes a `.ses` file there on its first
    session; torch's inductor cache defaults to a folder there)."""
    old_tempdir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(directory), str(directory)
    try:
        yield directory
    finally:
        tempfile.tempdir = old_tempdir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env


_PRIVATE = "model-compiler-"


@contextlib.contextmanager
def private_tmp() -> Iterator[Path]:
    """A scratch directory for one run of a command that holds no output slot (verify, bench),
    in the system temp dir: every temporary file of the run goes there and is removed with it.
    What a SIGKILLed run left is removed by the next run (its process no longer exists)."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{_PRIVATE}*-*"):
        pid = old.name[len(_PRIVATE):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    directory = Path(tempfile.mkdtemp(prefix=f"{_PRIVATE}{os.getpid()}-", dir=base))
    try:
        with redirect_tmp(directory):
            yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
