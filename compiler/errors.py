"""Errors that carry the CLI exit code of docs/cli.md.

0 built and verified · 1 parity failure (artifact kept, marked failed) · 2 bad input or usage
(nothing written) · 3 target toolchain missing on this host · 5 the host ran out of disk or memory.
Every message names the thing at fault (file, key, tensor, node) and says what to do.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class CompilerError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInput(CompilerError):
    """Bad input or usage: a missing file, a malformed model, an unknown name. Exit 2."""

    exit_code = 2


class ToolchainRefused(CompilerError):
    """The target's toolchain rejects this model (cannot load, convert, compile or run it):
    the message names the backend and, where its error names them, the node and op. Exit 2."""

    exit_code = 2


# Exceptions the runtimes raise for what they cannot do (pybind/nanobind classes live in the
# library's own modules; native code also raises plain RuntimeError). Our own bugs (KeyError,
# TypeError, AttributeError…) are not among them and stay exit 4.
TOOLCHAIN_MODULES = ("onnxruntime", "openvino", "tvm", "tvm_ffi", "tensorrt", "polygraphy")


def first_line(e: BaseException) -> str:
    """The line of an exception worth showing; for torch.onnx errors, the exception summary."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip() or type(e).__name__
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1].strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:400] if lines else text


def is_toolchain_exception(e: BaseException) -> bool:
    module = type(e).__module__ or ""
    return module.split(".")[0] in TOOLCHAIN_MODULES or type(e) is RuntimeError


def mentioned_ops(text: str, op_types: Iterable[str]) -> list[str]:
    """The op types of a model that a toolchain's error message names (as whole words)."""
    return sorted({op for op in op_types if re.search(rf"\b{re.escape(op)}\b", text)})


class ToolchainMissing(CompilerError):
    """The target's toolchain cannot compile on this host. Exit 3."""

    exit_code = 3


class ResourceExhausted(CompilerError):
    """The host ran out of something the run needs — disk space, memory, a file-size limit — not
    a fault of the model or of this program. Nothing is installed. Exit 5."""

    exit_code = 5


# errno values that mean "the disk (or a quota, or a size limit) is full", and the text native
# libraries put in their own exceptions for them.
FULL_ERRNOS = (28, 122, 27)  # ENOSPC, EDQUOT, EFBIG
FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")


FULL_BYTES = 1 << 20  # a filesystem with less free space than this is full for a build


def resource_error(e: BaseException, scratch: str | None = None) -> ResourceExhausted | None:
    """A ResourceExhausted for an exception that means the disk or memory is full, else None.
    `scratch`: where the failing step was writing; a native library that failed while it is
    full (ONNX Runtime says only "Protobuf serialization failed") failed because it is full."""
    if isinstance(e, MemoryError):
        return ResourceExhausted(f"out of memory ({type(e).__name__}{': ' + str(e) if str(e) else ''}); free memory or "
                                 "build on a larger host. Nothing was installed.")
    if isinstance(e, OSError) and e.errno in FULL_ERRNOS:
        where = e.filename2 or e.filename
        return ResourceExhausted(f"{e.strerror} (errno {e.errno}, {_errno_name(e.errno)}) while writing "
                                 f"{str(where)!r}; free space there or choose another --out. Nothing was installed; "
                                 "the scratch files of this run were removed.")
    if scratch is not None:
        import shutil

        try:
            free = shutil.disk_usage(scratch).free
        except OSError:
            free = None
        if free is not None and free < FULL_BYTES:
            return ResourceExhausted(f"No space left on device (ENOSPC): {type(e).__name__} while writing in "
                                     f"{scratch!r}, whose filesystem has {free} bytes free "
                                     f"({' '.join(str(e).split())[:200]}); free space there or choose another --out. "
                                     "Nothing was installed.")
    text = str(e)
    for t in FULL_TEXTS:
        if t in text:
            return ResourceExhausted(f"{t} (reported by {type(e).__module__}.{type(e).__name__}: "
                                     f"{' '.join(text.split())[:300]}); free space or choose another --out. "
                                     "Nothing was installed.")
    return None


def _errno_name(n: int) -> str:
    import errno

    return errno.errorcode.get(n, "?")


class ParityFailure(CompilerError):
    """The engine ran but its outputs broke tolerance. Exit 1."""

    exit_code = 1


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix when `name` is close to one of `known`, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str], where: str = "") -> BadInput:
    """A BadInput for an unknown name that lists the known ones."""
    known = sorted(known)
    loc = f" in {where}" if where else ""
    return BadInput(
        f"unknown {kind} {name!r}{loc}{did_you_mean(name, known)}; known: {', '.join(known) or '(none)'}."
    )
