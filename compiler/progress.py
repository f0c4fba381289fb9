"""Progress on long steps, to stderr (stdout stays clean for JSON output)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from compiler import interrupts


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(f"  {msg}", file=self.stream, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        if not self.quiet:
            print(f"» {what} …", file=self.stream, flush=True)
        t0 = time.perf_counter()
        yield
        interrupts.check()  # a signal some library swallowed during the step still ends the run
        if not self.quiet:
            print(f"  {what}: done in {time.perf_counter() - t0:.1f} s", file=self.stream, flush=True)
