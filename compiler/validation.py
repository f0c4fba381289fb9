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


def inputs(spec: ModelSpec) -> list[tuple[str, list[dict[str, np.ndarray]]]]:
    """The spec's validation groups as (label, batches of inputs); none without a
    ``[validation]`` table. A group under MIN_VALIDATION_SAMPLES samples is a spec error."""
    if spec.validation is None:
        return []
    out = []
    for label, source in spec.validation.groups:
        samples = source.load()
        if len(samples) < MIN_VALIDATION_SAMPLES:
            raise BadInput(f"{spec.path or spec.name}: [validation] gives {len(samples)} sample(s) in group {label!r}; "
                           f"precision decisions need at least {MIN_VALIDATION_SAMPLES} ({source.describe()}).")
        out.append((label, [samples.take(i, i + BATCH).feeds for i in range(0, len(samples), BATCH)]))
    return out


def load(spec: ModelSpec, float_runner: Callable[[], Runner], log: Callable[[str], None] = lambda s: None,
         given: list[tuple[str, list[dict[str, np.ndarray]]]] | None = None) -> list[Group]:
    """The validation groups (`given`, or read from the spec) with the float model's outputs."""
    batches = inputs(spec) if given is None else given
    if not batches:
        return []
    with float_runner() as runner:
        groups = [Group(label, b, [runner.run(x) for x in b]) for label, b in batches]
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
