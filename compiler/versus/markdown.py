"""The ``versus.md`` table of `make bench-versus`: per model, each flow's p50 at each batch, its
speed-up over eager, its held-out accuracy and how it was made; then what was not measured, the
verdict, and the artifacts of ours a by-hand flow dominates.
"""

from __future__ import annotations

from typing import Any


def markdown(results: list[dict[str, Any]]) -> str:
    parts = ["# Ours vs the runtimes' own flows (`make bench-versus`)", "",
             "One interleaved run per model, 1 thread, p50 ms over blocks of back-to-back calls (≈ 5 ms each); "
             "×eager = eager p50 / flow p50 in the same run. "
             "Accuracy on held-out real inputs no build step saw, against eager fp32.", ""]
    for r in results:
        b = r["batches"]
        parts += [f"## {r['model']}", "", f"Held-out: {r['heldout']}; accuracy = {r['accuracy_measure']} (bar {r['accuracy_bar']}).", "",
                  "| flow | " + " | ".join(f"b{x} ms" for x in b) + " | ×eager " + " / ".join(f"b{x}" for x in b) + " | accuracy | how |",
                  "|---|" + "---|" * len(b) + "---|---|---|"]
        for row in r["rows"]:
            parts.append(f"| {row['flow']} | " + " | ".join(f"{row['p50_ms'][str(x)]:.2f}" for x in b) + " | "
                         + " / ".join(f"{row['x_eager'][str(x)]:.2f}" for x in b) + f" | {row['accuracy']['text']} | {row['detail']} |")
        if r.get("not_measured"):
            parts += ["", "Not measured: " + "; ".join(r["not_measured"])]
        parts += ["", *[f"- {line}" for line in r["verdict"]], ""]
        losses = r.get("dominated", [])
        parts.append("Ours slower than a by-hand flow of the same runtime and precision class that is at least as accurate: "
                     + ("none." if not losses else f"{len(losses)}."))
        for d in losses:
            parts.append(f"- {d['ours']} b{d['batch']}: {d['ours_ms']:.3f} ms vs {d['by_hand']} {d['by_hand_ms']:.3f} ms "
                         f"({d['slower']:+.1%}; {'beyond' if d['separated'] else 'within'} this run's noise: interquartile ranges "
                         f"{'apart' if d['separated'] else 'overlap'}); accuracy {d['ours_accuracy']} vs {d['by_hand_accuracy']}")
        parts.append("")
    return "\n".join(parts)
