"""The matrix's live display: rows queued / running / passed / failed, elapsed and estimated time.

On a terminal, a `rich` live panel redrawn in place; in a CI log (not a TTY), one line when a row
starts and one when it ends, so the log reads top to bottom. The estimate is the mean duration
of the finished rows times what is left, divided by the rows running at once.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from compiler.fleet.spec import Row
from compiler.progress import Progress


class Display:
    def __init__(self, total: int, progress: Progress):
        self.total, self.progress = total, progress
        self.running: dict[str, float] = {}
        self.passed = self.failed = 0
        self.durations: list[float] = []
        self.t0 = time.perf_counter()
        self.live = None
        if not progress.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._render(), console=Console(stderr=True), refresh_per_second=2, transient=False)
            self.live.start()

    def _line(self) -> str:
        left = self.total - self.passed - self.failed
        elapsed = time.perf_counter() - self.t0
        eta = ""
        if self.durations and left:
            per = sum(self.durations) / len(self.durations)
            eta = f", ~{per * left / max(1, len(self.running) or 1):.0f} s left"
        queued = left - len(self.running)
        return (f"{self.total} rows: {queued} queued, {len(self.running)} running, {self.passed} passed, "
                f"{self.failed} failed — {elapsed:.0f} s{eta}")

    def _render(self) -> Any:
        from rich.table import Table

        t = Table.grid(padding=(0, 1))
        t.add_row(self._line())
        for rid, since in self.running.items():
            t.add_row(f"  running {rid} ({time.perf_counter() - since:.0f} s)")
        return t

    def _emit(self, msg: str) -> None:
        if self.live is not None:
            self.live.update(self._render())
        else:
            self.progress.info(msg)

    def started(self, row: Row) -> None:
        self.running[row.id] = time.perf_counter()
        self._emit(f"start {row.id} · {self._line()}")

    def finished(self, row: Row, rec: dict[str, Any]) -> None:
        self.running.pop(row.id, None)
        if rec.get("code") == 0:
            self.passed += 1
        else:
            self.failed += 1
        if rec.get("seconds"):
            self.durations.append(rec["seconds"])
        word = "passed" if rec.get("code") == 0 else f"FAILED (exit {rec.get('code')})"
        self._emit(f"{word} {row.id} in {rec.get('seconds')} s · {self._line()}")

    def note(self, msg: str) -> None:
        self._emit(msg)

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()
