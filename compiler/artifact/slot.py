"""Output directories (artifacts and golden sets): ownership, locking, atomic replacement,
cleanup of what a killed run left, and the manifest's file table.

Rules every writer of a directory follows (`OutputSlot`):

- **Only ours is replaced.** The output path may hold nothing, an empty directory, or a
  directory this program wrote (an artifact: ``manifest.json`` with our keys; a golden set:
  ``meta.json`` written by ``golden``). Anything else — a user's directory, a golden set given
  to ``build``, a regular file, the current directory — is refused with exit 2 and left intact.
- **One writer per path.** An exclusive ``flock`` on ``.NAME.lock`` beside the output; a second
  build of the same output waits for the first, then runs.
- **Never empty, never mixed.** The finished staging directory is swapped with the old one by
  ``renameat2(RENAME_EXCHANGE)`` (one atomic step; Python has no binding for it, hence ctypes).
  Where the filesystem lacks it, the old directory is renamed aside first, and a later run
  restores that aside copy if the process died between the two renames.
- **Scratch beside the output.** Staging (``.NAME.tmp-*``) and work directories
  (``.NAME.work-*``, also every ``tempfile`` of the process while the slot is held, so ORT's
  quantizer and calibrators write there too) are removed when the slot closes, and whatever a
  SIGKILLed run left is removed by the next run that takes the lock.
- **Failed never replaces passed.** A build whose parity failed is installed beside a passed
  artifact as ``NAME.failed/`` (a later passed build removes it); where no passed artifact
  exists it goes to the output path itself, marked failed.

Volatile facts (time, host, durations, where the inputs were) live in ``build.json`` alone;
every other file of an artifact is a function of its inputs and the toolchain, and
``manifest.json`` carries the sha256 of each and a ``content_sha256`` over them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from compiler import interrupts
from compiler.artifact.files import MANIFEST, read_json_object
from compiler.artifact.scratch import redirect_tmp
from compiler.errors import BadInput

FAILED_SUFFIX = ".failed"
ARTIFACT, GOLDEN, IR_DUMP, DEBUG = "artifact", "golden", "ir-dump", "debug"
DUMP_MARKER = "dump.json"  # what makes a --dump-ir directory ours
_SCRATCH = ("tmp-", "work-", "old-", "best-")  # .NAME.<kind>… leftovers a killed run can leave


def owner_kind(path: Path) -> str | None:
    """ARTIFACT or GOLDEN when `path` is a directory this program wrote, else None."""
    m = read_json_object(path / MANIFEST)
    if m is not None and {"schema", "status", "files"} <= m.keys():
        return ARTIFACT
    meta = read_json_object(path / "meta.json")
    if meta is not None and "reference" in meta and (path / "outputs.npz").is_file():
        return GOLDEN
    d = read_json_object(path / "debug.json")
    if d is not None and {"tensors", "first_divergence"} <= d.keys():
        return DEBUG
    marker = read_json_object(path / DUMP_MARKER)
    if marker is not None and marker.get("written_by") == "model-compiler" and marker.get("kind") == IR_DUMP:
        return IR_DUMP
    return None


def artifact_status(path: Path) -> str | None:
    m = read_json_object(path / MANIFEST)
    return None if m is None else m.get("status")



# --- atomic swap ---------------------------------------------------------------------------
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False where the platform or filesystem
    does not support it."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(src: Path, final: Path) -> None:
    """Put the complete directory `src` at `final`. A reader (or a kill at any instant) sees the
    old directory or the new one at `final`; with RENAME_EXCHANGE never nothing."""
    if not os.path.lexists(final):
        os.rename(src, final)
        return
    if _exchange(src, final):
        shutil.rmtree(src)  # now holds the old one
        return
    aside = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.rename(final, aside)
    os.rename(src, final)
    shutil.rmtree(aside)


class OutputSlot:
    """The output path of one build or golden run, held from the first write to the install.

    ``OutputSlot(out).check()`` validates without touching anything (call it with the other
    input checks); ``with OutputSlot(out) as slot:`` locks, recovers, cleans, and gives
    `slot.work` (scratch) and `slot.staging()`; `slot.install(staging, failed=…)` swaps in.
    """

    def __init__(self, final: Path, kind: str = ARTIFACT, log: Callable[[str], None] = lambda s: None):
        self.final = final
        self.kind = kind
        self.log = log
        self.work: Path | None = None
        self._fd: int | None = None
        self._lock_path: Path | None = None
        self._redirect: contextlib.AbstractContextManager = contextlib.nullcontext()

    @property
    def failed_path(self) -> Path:
        return self.final.with_name(self.final.name + FAILED_SUFFIX)

    # --- validation (no side effects) -----------------------------------------------------
    def check(self) -> None:
        what = {ARTIFACT: "artifact", GOLDEN: "golden set", IR_DUMP: "--dump-ir directory", DEBUG: "debug directory"}[self.kind]
        raw = str(self.final)
        if not raw.strip() or not self.final.name or self.final.name in (".", ".."):
            raise BadInput(f"output path {raw!r} is not a directory name a {what} can be written to.")
        try:
            resolved = self.final.resolve()
            cwd = Path.cwd().resolve()
            if resolved == cwd or resolved in cwd.parents:
                raise BadInput(f"refusing to write a {what} at {raw!r}: it is the current directory or one of its parents.")
            for path in (self.final, self.failed_path) if self.kind == ARTIFACT else (self.final,):
                self._check_one(path, what)
            parent = self.final.parent
            while not parent.exists():
                parent = parent.parent
            if not parent.is_dir():
                raise BadInput(f"cannot write a {what} at {raw!r}: {str(parent)!r} is a file, not a directory.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BadInput(f"cannot write a {what} at {raw!r}: {str(parent)!r} is not writable.")
        except OSError as e:
            raise BadInput(f"cannot write a {what} at {raw!r}: {e.strerror or e}.") from None

    def _check_one(self, path: Path, what: str) -> None:
        if path.is_symlink():
            raise BadInput(f"refusing to replace {str(path)!r}: it is a symbolic link; give the real directory.")
        if not path.exists():
            return
        if not path.is_dir():
            raise BadInput(f"refusing to replace {str(path)!r}: it is a file, not a {what} directory. Choose another --out.")
        if not any(path.iterdir()):
            return
        kind = owner_kind(path)
        if kind == self.kind:
            return
        found = sorted(p.name for p in path.iterdir())
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        holds = (f"holds a {kind.replace('artifact', 'build artifact').replace(IR_DUMP, 'per-pass IR dump')}" if kind
                 else f"is not a {what} written by model-compiler")
        raise BadInput(
            f"refusing to replace {str(path)!r}: it {holds} (it contains {shown}); only an empty directory "
            f"or a {what} of ours is replaced. Choose another --out or remove it yourself."
        )

    # --- holding the slot -------------------------------------------------------------------
    def __enter__(self) -> OutputSlot:
        self.check()
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInput(f"cannot create {str(self.final.parent)!r}: {e.strerror or e}.") from None
        self._lock()
        try:
            self.check()  # again under the lock: another run may have written meanwhile
            self._recover_and_clean()
            self.work = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.work-", dir=self.final.parent))
            self._redirect = redirect_tmp(self.work)
            self._redirect.__enter__()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        with interrupts.held():  # a second Ctrl-C must not leave the scratch half removed
            self._redirect.__exit__(None, None, None)
            for p in self._scratch():
                shutil.rmtree(p, ignore_errors=True)
            self._unlock()

    def staging(self) -> Path:
        """A fresh directory to assemble the new output in (world-readable like any build file)."""
        path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o777 & ~umask)  # mkdtemp makes it 0700; an artifact is not secret
        return path

    def install(self, staging: Path, failed: bool = False, commit: bool = True) -> Path:
        """Swap the complete `staging` in; returns where it went (NAME or NAME.failed).

        `commit`: this install is the run's result (its commit point: a signal from here on is
        reported, not raised). A step inside a larger run — a `--precision best` candidate
        written to scratch — passes False, so a signal still stops the run."""
        dest = self.final
        if failed and self.kind == ARTIFACT and artifact_status(self.final) == "passed":
            dest = self.failed_path
            self.log(f"parity failed: the passed artifact at {self.final} is kept; the failed one goes to {dest}")
        with interrupts.committing() if commit else contextlib.nullcontext():
            replace_dir(staging, dest)
            if dest == self.final and not failed and owner_kind(self.failed_path) == ARTIFACT:
                shutil.rmtree(self.failed_path, ignore_errors=True)
        return dest

    # --- internals --------------------------------------------------------------------------
    def _scratch(self) -> list[Path]:
        prefix = f".{self.final.name}."
        parent = self.final.parent
        if not parent.is_dir():
            return []
        return [p for p in parent.iterdir()
                if p.name.startswith(prefix) and p.name[len(prefix):].startswith(_SCRATCH) and p.is_dir()]

    def _recover_and_clean(self) -> None:
        """Under the lock: restore an aside copy a killed swap left (no RENAME_EXCHANGE), then
        remove every scratch directory of earlier runs of this output."""
        prefix = f".{self.final.name}.old-"
        asides = sorted((p for p in self._scratch() if p.name.startswith(prefix)), key=lambda p: p.stat().st_mtime)
        if asides and not os.path.lexists(self.final) and owner_kind(asides[-1]) is not None:
            os.rename(asides[-1], self.final)
            self.log(f"restored {self.final} from {asides[-1].name} (a previous run was killed while installing)")
        stale = self._scratch()
        if stale:
            self.log(f"removing {len(stale)} leftover(s) of an interrupted run: {', '.join(p.name for p in stale)}")
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)

    def _lock(self) -> None:
        path = self.final.parent / f".{self.final.name}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log(f"waiting for another run writing {self.final} to finish …")
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The holder before us unlinks the lock file on release: lock only the live file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd, self._lock_path = fd, path
                return
            os.close(fd)

    def _unlock(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self._lock_path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
