"""`make bench-versus`: our artifacts against the flows a user runs by hand, in one run.

The command line (``python -m compiler.versus --model NAME …``): runs each model
(`compiler.versus.run`), writes the table to ``<out>/versus.md`` and prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.versus.flows import OURS
from compiler.versus.markdown import markdown
from compiler.versus.run import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compiler.versus", description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("build/bench"))
    p.add_argument("--ours", action="append", metavar="TARGET:PRECISION",
                   help="our artifacts to build and measure (default: " + " ".join(f"{t}:{q}" for t, q in OURS) + ")")
    a = p.parse_args(argv)
    ours = tuple(tuple(x.split(":", 1)) for x in a.ours) if a.ours else OURS
    results = [run(m, a.out, a.batch or [1, 8], a.iters, a.warmup, ours) for m in a.model]
    text = markdown(results)
    (a.out / "versus.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
