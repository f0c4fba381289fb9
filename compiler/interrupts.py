"""SIGINT and SIGTERM end a run the same way: cleanly, with nothing half-written.

The handler records the signal and raises KeyboardInterrupt, so every ``with`` block (output
slot, staging, temp dirs) unwinds. Libraries can swallow that exception — an interrupt during
torch's dynamo export surfaced as an ImportError inside torch, which the frontend took for an
exporter failure and fell back to the legacy exporter — so code that catches broad exceptions
calls `check()` first, and `Progress.step` calls it after every step: a recorded signal is
never lost. The CLI exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
from types import FrameType

_received: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> dict[int, object]:
    """Route SIGINT and SIGTERM to `_handler` (main thread only, as Python requires); returns the
    previous handlers for `restore`."""
    global _received
    _received = None
    return {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even if something swallowed the first one."""
    if _received is not None:
        raise KeyboardInterrupt(signal.Signals(_received).name)


def pending() -> bool:
    return _received is not None


def exit_code() -> int:
    return 128 + (_received or signal.SIGINT)


def name() -> str:
    return signal.Signals(_received or signal.SIGINT).name
