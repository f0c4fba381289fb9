"""SIGINT and SIGTERM end a run the same way: cleanly, with nothing half-written.

The handler records the signal and raises KeyboardInterrupt, so every ``with`` block (output
slot, staging, temp dirs) unwinds. Libraries can swallow that exception — an interrupt during
torch's dynamo export surfaced as an ImportError inside torch, which the frontend took for an
exporter failure and fell back to the legacy exporter — so code that catches broad exceptions
calls `check()` first, and `Progress.step` calls it after every step: a recorded signal is
never lost. The CLI exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

Installing the output is the run's commit point. `committing()` holds signals back while the
new directory is swapped in (so an exit of 130 always means "nothing was installed"), and once
it has been, the run is complete: a signal after that is recorded and reported, not raised, and
the exit status is the build's.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_received: int | None = None
_holding = False  # inside `committing()`: record, do not raise
_committed = False  # the output is installed: a signal no longer stops the run
_over = False  # the run has its exit status (`finish`): a signal no longer changes it


def _handler(signum: int, frame: FrameType | None) -> None:
    """The first signal stops the run; a later one (a matrix worker gets Ctrl-C from the terminal,
    then SIGTERM from its pool) finds it unwinding and is only recorded: raised again, it would cut
    the cleanup short (a row's scratch was left behind under load)."""
    global _received
    first = _received is None
    _received = _received or signum
    if first and not (_holding or _committed or _over):
        raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> dict[int, object]:
    """Route SIGINT and SIGTERM to `_handler` (main thread only, as Python requires); returns the
    previous handlers for `restore`."""
    global _received, _committed, _over
    _received, _committed, _over = None, False, False
    return {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def finish() -> None:
    """The program has its exit status and is about to exit: leave the handler in place (the
    default one would kill the process with the signal, -2, after a complete install), recording
    but not raising."""
    global _over
    _over = True


def restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextmanager
def committing() -> Iterator[None]:
    """Around the install: a signal that arrives meanwhile waits for the end of the block. If the
    block completes, the run is committed and the signal is only reported; if it raises, the
    signal is raised after it."""
    global _holding, _committed
    before = _holding
    _holding = True
    try:
        yield
        _committed = True
    finally:
        _holding = before
    check()


@contextmanager
def held() -> Iterator[None]:
    """Cleanup that must finish (removing a run's scratch): a signal meanwhile is recorded, not
    raised, and stays pending for whoever checks next."""
    global _holding
    before = _holding
    _holding = True
    try:
        yield
    finally:
        _holding = before


def late() -> bool:
    """A signal arrived after the output was installed."""
    return _committed and _received is not None


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even if something swallowed the first one."""
    if _received is not None and not _committed:
        raise KeyboardInterrupt(signal.Signals(_received).name)


def pending() -> bool:
    return _received is not None


def exit_code() -> int:
    return 128 + (_received or signal.SIGINT)


def name() -> str:
    return signal.Signals(_received or signal.SIGINT).name
