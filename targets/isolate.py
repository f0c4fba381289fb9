"""Run native toolchain code where its crash cannot take the build down with it.

LiteRT and litert-converter abort the process on some inputs instead of raising (a uint8 EQUAL
in the Interpreter, requantization multipliers out of range): the build then died with SIGABRT,
no message, nothing written. `in_child` runs a function in a forked child: its result comes
back pickled, a Python exception is re-raised here, and a death by signal becomes a
RuntimeError (which the pipeline's toolchain_step reports as the toolchain's refusal, exit 2)
naming the signal and the last lines the child wrote to stderr. The child's stderr is otherwise
dropped (absl / XNNPACK banners), so this also replaces `quiet_native_stderr` where it is used.
Fork is POSIX-only; elsewhere the function runs in-process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")


class ChildFailed(Exception):
    """A child's exception that could not be pickled back (its type and text)."""


def in_child(fn: Callable[[], R], what: str) -> R:
    if not hasattr(os, "fork"):
        return fn()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as result, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's stack
            code = 0
            try:
                os.dup2(err.fileno(), 2)
                # an abort is reported by the parent, named; pytest's faulthandler (enabled on a
                # copy of the original stderr) would print a whole native trace for it as well
                import faulthandler

                faulthandler.disable()
                try:
                    payload = (True, fn())
                except BaseException as e:  # noqa: BLE001 - handed to the parent as is
                    from compiler.toolchain import raised_in_runtime

                    # the traceback stays here: what the runtime's own code raised goes to the
                    # parent as the toolchain's refusal (a RuntimeError), not as a bare ValueError
                    payload = (False, RuntimeError(f"{type(e).__name__}: {e}") if raised_in_runtime(e) else e)
                try:
                    data = pickle.dumps(payload)
                except Exception as e:  # noqa: BLE001 - an unpicklable exception: its text
                    data = pickle.dumps((False, ChildFailed(f"{type(payload[1]).__name__}: {payload[1]} ({e})")))
                result.write(data)  # (os.write may write a large .tflite only in part)
                result.flush()
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            err.seek(0)
            lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
            tail = " | ".join(lines[-3:])[-600:]
            name = signal.Signals(os.WTERMSIG(status)).name
            raise RuntimeError(f"{what} crashed ({name})" + (f": {tail}" if tail else ""))
        result.seek(0)
        data = result.read()
        if not data:
            raise RuntimeError(f"{what} exited without a result (status {os.waitstatus_to_exitcode(status)})")
        ok, value = pickle.loads(data)
        if ok:
            return value
        raise value
