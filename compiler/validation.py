"""The validation set: real inputs that precision decisions are judged on, apart from golden.

Golden is the parity set: a handful of samples at one sequence length, stored with the
artifact. A precision gate that saw only those passed int8 engines that failed on new inputs
(MiniLM: cos 0.988 at 128 tokens after passing at 32). So each int8 / fp16 candidate is also run
on the spec's ``[validation]`` groups (≥ 32 real samples each; one group per sequence length)
and must meet the same per-output tolerances there, against the float model in ONNX Runtime
(computed once per build). The validation inputs never enter the artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.errors import BadInput
from compiler.spec import MIN_VALIDATION_SAMPLES, ModelSpec
from compiler.tolerances import Tolerance
from compiler.verify import OutputParity, ParityReport, compare
from targets.base import Runner

BATCH = 8


@dataclass
class Group:
    label: str
    batches: list[dict[str, np.ndarray]]
    reference: list[dict[str, np.ndarray]]  # the float model's outputs, per batch

    @property
    def samples(self) -> int:
        return sum(len(next(iter(r.values()))) for r in self.reference) if self.reference else 0


def load(spec: ModelSpec, float_runner: Callable[[], Runner], log: Callable[[str], None] = lambda s: None) -> list[Group]:
    """The spec's validation groups with the float model's outputs on them (none without a
    ``[validation]`` table). A group under MIN_VALIDATION_SAMPLES samples is a spec error."""
    if spec.validation is None:
        return []
    groups = []
    with float_runner() as runner:
        for label, source in spec.validation.groups:
            samples = source.load()
            if len(samples) < MIN_VALIDATION_SAMPLES:
                raise BadInput(f"{spec.path or spec.name}: [validation] gives {len(samples)} sample(s) in group {label!r}; "
                               f"precision decisions need at least {MIN_VALIDATION_SAMPLES} ({source.describe()}).")
            batches = [samples.take(i, i + BATCH).feeds for i in range(0, len(samples), BATCH)]
            groups.append(Group(label, batches, [runner.run(b) for b in batches]))
    log(f"validation: {', '.join(f'{g.label} ({g.samples})' for g in groups)} sample(s) judge each candidate")
    return groups


def check(runner: Runner, groups: list[Group], precision: str, tolerance: Callable[[str], Tolerance]) -> dict[str, ParityReport]:
    """Per group, each output's worst batch (a failing one first, then the lowest cosine)."""
    out = {}
    for g in groups:
        worst: dict[str, OutputParity] = {}
        for feeds, ref in zip(g.batches, g.reference):
            got = runner.run(feeds)
            for name, r in ref.items():
                p = compare(name, r, got.get(name), tolerance(name))
                q = worst.get(name)
                if q is None or (not p.passed, -_finite(p.cosine)) > (not q.passed, -_finite(q.cosine)):
                    worst[name] = p
        out[g.label] = ParityReport(precision, worst)
    return out


def _finite(x: float) -> float:
    return x if np.isfinite(x) else -2.0
