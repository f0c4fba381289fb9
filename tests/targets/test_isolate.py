"""targets.isolate.in_child: a result (even a large one) comes back, a Python exception is
re-raised as itself, and a death by signal becomes a RuntimeError naming the signal and what the
child wrote to stderr — the parent survives."""

from __future__ import annotations

import os
import signal

import pytest

from compiler.errors import is_toolchain_exception
from targets.isolate import in_child


def test_result_comes_back_whole():
    assert in_child(lambda: b"x" * (64 << 20), "big") == b"x" * (64 << 20)


def test_exception_is_reraised_as_itself():
    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        in_child(fail, "raiser")


def test_native_abort_is_a_toolchain_error_naming_the_signal():
    def abort():
        os.write(2, b"Check failed: multiplier > 0\n")
        os.kill(os.getpid(), signal.SIGABRT)

    with pytest.raises(RuntimeError, match=r"the runtime crashed \(SIGABRT\): Check failed: multiplier > 0") as e:
        in_child(abort, "the runtime")
    assert is_toolchain_exception(e.value)  # → exit 2 through the pipeline's toolchain_step


def test_an_abort_prints_no_native_trace_where_faulthandler_watches_a_copy_of_stderr():
    """pytest (and any host enabling faulthandler on a duplicate of fd 2) would otherwise get a
    'Fatal Python error: Aborted' trace for a child's crash the parent already names."""
    import subprocess
    import sys

    code = (
        "import faulthandler, os, signal, sys\n"
        "faulthandler.enable(file=os.fdopen(os.dup(2), 'w'))\n"
        "from targets.isolate import in_child\n"
        "try:\n"
        "    in_child(lambda: os.kill(os.getpid(), signal.SIGABRT), 'the runtime')\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "the runtime crashed (SIGABRT)" in done.stdout
    assert "Fatal Python error" not in done.stderr, done.stderr
