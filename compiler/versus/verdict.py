"""The judgement of a `make bench-versus` run: against the fastest by-hand flow that keeps the
accuracy bar, per batch, whether ours meets the speed-up target; and every artifact of ours that a
by-hand flow of the same runtime and precision class beats at equal or better accuracy (and
whether that gap is beyond the run's noise).
"""

from __future__ import annotations

from typing import Any

# What a user asked for when choosing a flow: full float, a 16-bit float (OpenVINO's default
# executes bf16 on this CPU), or int8. An fp32 artifact is not a loss against an int8 flow that
# happens to keep a saturated metric (64/64 digits): `--precision best` is where precisions compete.
PRECISION_CLASS = {"fp32": "fp32", "f32": "fp32", "bf16": "16-bit float", "fp16": "16-bit float", "f16": "16-bit float",
                   "int8": "int8", "int8-dynamic": "int8"}


def dominated(rows: list[dict[str, Any]], batches: list[int]) -> list[dict[str, Any]]:
    """Each (ours, by-hand flow of the same runtime and precision class, batch) where the by-hand
    flow is at least as accurate and has the lower p50: acceptance 3 of issue 10 counts these.
    `separated` says whether the two interquartile ranges are apart (ours p25 above theirs p75),
    i.e. beyond this run's noise."""
    def cls(r):
        return PRECISION_CLASS.get(r["precision"], r["precision"])

    out = []
    for o in (r for r in rows if r["group"] == "ours"):
        for h in (r for r in rows if r["group"] == "by hand" and r["runtime"] == o["runtime"] and cls(r) == cls(o)):
            if h["accuracy"]["score"] < o["accuracy"]["score"]:
                continue
            for b in map(str, batches):
                if h["p50_ms"][b] < o["p50_ms"][b]:
                    out.append({"ours": o["flow"], "by_hand": h["flow"], "batch": int(b), "ours_ms": o["p50_ms"][b],
                                "by_hand_ms": h["p50_ms"][b], "slower": o["p50_ms"][b] / h["p50_ms"][b] - 1,
                                "separated": o["quartiles_ms"][b][0] > h["quartiles_ms"][b][1],
                                "ours_accuracy": o["accuracy"]["text"], "by_hand_accuracy": h["accuracy"]["text"]})
    return out


def verdict(rows: list[dict[str, Any]], batches: list[int], bar: float, margin: float = 1.15) -> list[str]:
    lines = []
    for b in batches:
        hand = [r for r in rows if r["group"] == "by hand" and r["accuracy"]["score"] >= bar]
        ours = [r for r in rows if r["group"] == "ours" and r["accuracy"]["score"] >= bar]
        if not hand or not ours:
            lines.append(f"batch {b}: {'no by-hand flow' if not hand else 'none of ours'} keeps the accuracy bar ({bar}).")
            continue
        h = min(hand, key=lambda r: r["p50_ms"][str(b)])
        o = min(ours, key=lambda r: r["p50_ms"][str(b)])
        ratio = h["p50_ms"][str(b)] / o["p50_ms"][str(b)]
        lines.append(f"batch {b}: fastest by hand at the bar: {h['flow']} {h['p50_ms'][str(b)]:.2f} ms; ours: {o['flow']} "
                     f"{o['p50_ms'][str(b)]:.2f} ms → **{ratio:.2f}×** ({'meets' if ratio >= margin else 'misses'} the {margin}× target)")
    return lines
