"""The local executor: a pool of worker processes on this machine (`--jobs N`).

Each worker builds one row at a time on one thread, through the same `compiler.build.run` as
`build`, installing its artifact under the same rules (the build's own output slot). Workers are
spawned (not forked: torch and the runtimes are not fork-safe) and live for the whole matrix, so
imports are paid once per worker. A worker that dies mid-row (killed, out of memory) breaks the
pool: the rows it was running are retried once in a fresh pool, then reported failed; its
scratch is removed by the next build of the same output, and no partial artifact is ever
installed (the swap is atomic).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from compiler.fleet.row import build_row, worker_setup
from compiler.fleet.spec import Row

MAX_RETRIES = 1


def run(rows: list[Row], root: Path, jobs: int, cache_dir: str | None, use_cache: bool,
        on_start: Callable[[Row], None], on_done: Callable[[Row, dict[str, Any]], None]) -> None:
    pending = list(rows)
    retries: dict[str, int] = {}
    inflight: dict[Future, Row] = {}
    pool: ProcessPoolExecutor | None = None
    try:
        while pending or inflight:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=worker_setup)
            while pending and len(inflight) < jobs:
                row = pending.pop(0)
                inflight[pool.submit(build_row, row, row.out(root), cache_dir, use_cache)] = row
                on_start(row)
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for f in done:
                row = inflight.pop(f)
                try:
                    on_done(row, f.result())
                except BrokenProcessPool:
                    broken = True
                    if retries.get(row.id, 0) < MAX_RETRIES:
                        retries[row.id] = retries.get(row.id, 0) + 1
                        pending.insert(0, row)
                    else:
                        on_done(row, {"id": row.id, "code": -signal.SIGKILL, "status": "error", "seconds": None,
                                      "message": f"the worker building it died {MAX_RETRIES + 1} times (killed, or out of memory)"})
            if broken:  # every row still in flight went down with the pool: retry those too
                for f, row in list(inflight.items()):
                    f.cancel()
                    pending.insert(0, row)
                inflight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
    except BaseException:
        if pool is not None:
            _stop(pool)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C / SIGTERM: every worker gets SIGTERM, so its build unwinds (scratch removed, the
    previous artifact untouched), and the pool is waited for."""
    for p in list(getattr(pool, "_processes", {}).values()):
        try:
            p.terminate()
        except (OSError, AttributeError):
            pass
    pool.shutdown(wait=True, cancel_futures=True)
