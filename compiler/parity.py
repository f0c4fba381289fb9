"""Running an engine on golden (and the spec's labelled set) and judging it: the one place a
parity report is made, for a build, a `best` candidate, the precision gate and `verify`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from compiler.golden import Golden
from compiler.spec import ModelSpec, OutputKind
from compiler.tolerances import Tolerance
from compiler.verify import ParityReport, compare, metric_result, top1_accuracy
from targets.base import Backend, Engine, Runner

EVAL_BATCH = 64


def check_parity(runner: Runner, golden: Golden, spec: ModelSpec | None, precision: str,
                 kinds: dict[str, str] | None = None) -> ParityReport:
    """Run the golden inputs (and the labelled evaluation set, if any) through `runner`."""
    actual = runner.run(golden.inputs)
    outputs = {}
    for name, ref in golden.outputs.items():
        kind = spec.output_kind(name) if spec is not None else OutputKind((kinds or {}).get(name, "tensor"))
        outputs[name] = compare(name, ref, actual.get(name), golden.tolerances.for_output(precision, name, kind))
    metric = None
    ref = golden.metric_reference
    if spec is not None and spec.evaluation is not None and ref is not None:
        logits, labels = [], []
        for batch in spec.evaluation.data.batches(EVAL_BATCH):
            logits.append(runner.run(batch.feeds)[spec.evaluation.output])
            labels.append(batch.labels)
        acc = top1_accuracy(np.concatenate(logits), np.concatenate(labels))
        metric = metric_result(ref["name"], float(ref["reference"]), acc, int(sum(len(x) for x in labels)),
                               golden.tolerances.for_metric(precision))
    return ParityReport(precision, outputs, metric)


def variant_parity(backend: Backend, engine: Engine, golden: Golden, spec: ModelSpec | None, precision: str,
                   threads: int = 1, kinds: dict[str, str] | None = None,
                   step: Callable[[str], contextlib.AbstractContextManager] = lambda _: contextlib.nullcontext()
                   ) -> dict[str, ParityReport]:
    """Parity of every other way this host runs the same engine (`Backend.variants`)."""
    reports = {}
    for label, runner in backend.variants(engine, threads).items():
        with step(f"verify against golden ({label})"), runner:
            reports[label] = check_parity(runner, golden, spec, precision, kinds)
    return reports


def tolerance_of(golden: Golden, spec: ModelSpec, precision: str) -> Callable[[str], Tolerance]:
    return lambda name: golden.tolerances.for_output(precision, name, spec.output_kind(name))
