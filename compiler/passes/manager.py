"""The pass manager: named phases run by ``onnx_ir.passes.PassManager`` (fixpoint per phase),
each pass wrapped so that instruments see it before and after it runs.

Instruments (TVM's ``run_before_pass`` / ``run_after_pass`` idea, not prints):
- `Recorder` — wall time, node counts before/after, modified, fusion counts → the manifest's
  ``passes`` list;
- `DumpIR` — the model after each pass as ``NNN_<pass>.onnx``;
- `GoldenCheck` — runs the golden inputs through ONNX Runtime after each pass that changed the
  model and raises `PassBrokeParity` naming the pass and the first diverging output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx_ir as ir

from compiler import ir as irh
from compiler.errors import ParityFailure
from compiler.passes.base import FusionResult, Pass, PassContext, get_pass
from compiler.passes.pipelines import Phase, get_pipeline


class Instrument(Protocol):
    def before(self, pass_: Pass, model: ir.Model) -> None: ...

    def after(self, pass_: Pass, model: ir.Model, result: ir.passes.PassResult) -> None: ...


class PassBrokeParity(ParityFailure):
    """A pass changed the model's outputs beyond tolerance (exit 1)."""

    def __init__(self, pass_name: str, output: str, detail: str):
        super().__init__(f"pass {pass_name!r} broke parity: output {output!r} {detail}")
        self.pass_name = pass_name
        self.output = output


class _Instrumented(ir.passes.InPlacePass):
    def __init__(self, inner: Pass, instruments: Sequence[Instrument]):
        super().__init__()
        self.inner = inner
        self.instruments = instruments

    def __repr__(self) -> str:
        return self.inner.name

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        for ins in self.instruments:
            ins.before(self.inner, model)
        res = self.inner(model)
        for ins in self.instruments:
            ins.after(self.inner, res.model, res)
        return res


@dataclass
class Recorder:
    """Per-pass statistics, in run order (a pass appears once per fixpoint iteration)."""

    phase: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = 0.0
    _before: int = 0

    def before(self, pass_: Pass, model: ir.Model) -> None:
        self._before = irh.node_count(model)
        self._t0 = time.perf_counter()

    def after(self, pass_: Pass, model: ir.Model, result: ir.passes.PassResult) -> None:
        rec = {
            "name": pass_.name,
            "phase": self.phase,
            "modified": bool(result.modified),
            "nodes_before": self._before,
            "nodes_after": irh.node_count(model),
            "seconds": round(time.perf_counter() - self._t0, 4),
        }
        if isinstance(result, FusionResult) and result.counts:
            rec["counts"] = dict(result.counts)
        if isinstance(result, FusionResult) and result.declined:
            rec["declined"] = list(result.declined)
        self.records.append(rec)

    def fusion_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for r in self.records:
            for k, v in r.get("counts", {}).items():
                totals[k] = totals.get(k, 0) + v
        return totals


@dataclass
class DumpIR:
    directory: Path
    _n: int = 0

    def before(self, pass_: Pass, model: ir.Model) -> None:
        if self._n == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            irh.save(model, self.directory / "000_input.onnx")

    def after(self, pass_: Pass, model: ir.Model, result: ir.passes.PassResult) -> None:
        self._n += 1
        irh.save(model, self.directory / f"{self._n:03d}_{pass_.name}.onnx")


@dataclass
class GoldenCheck:
    """After every pass that modified the model: run `inputs` in ORT, compare with `outputs`
    using `compare(name, reference, actual) -> failures` (the build's own tolerances)."""

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    compare: Callable[[str, np.ndarray, np.ndarray], list[str]]
    checked: int = 0

    def before(self, pass_: Pass, model: ir.Model) -> None:
        pass

    def after(self, pass_: Pass, model: ir.Model, result: ir.passes.PassResult) -> None:
        if not result.modified:
            return
        from compiler import ortsession

        try:
            # Run the graph as the pass left it: ORT's own rewrites off, so a broken pass is not
            # masked (or blamed on ORT).
            sess = ortsession.session(model, level="disabled")
            names = [o.name for o in sess.get_outputs()]
            got = dict(zip(names, sess.run(None, self.inputs)))
        except Exception as e:  # noqa: BLE001 - an invalid graph is a broken pass too
            raise PassBrokeParity(pass_.name, "(all)", f"the model no longer runs in ONNX Runtime: {str(e).splitlines()[0]}") from None
        self.checked += 1
        for name, ref in self.outputs.items():
            if name not in got:
                raise PassBrokeParity(pass_.name, name, "is no longer a graph output")
            failures = self.compare(name, ref, got[name])
            if failures:
                raise PassBrokeParity(pass_.name, name, "; ".join(failures))


@dataclass
class PipelineResult:
    model: ir.Model
    records: list[dict[str, Any]]
    fusions: dict[str, int]
    skipped: list[dict[str, str]]  # passes not run for this target, with the reason


def run(
    model: ir.Model,
    pipeline: str | Sequence[Phase],
    ctx: PassContext,
    instruments: Sequence[Instrument] = (),
    log: Callable[[str], None] = lambda s: None,
) -> PipelineResult:
    phases = get_pipeline(pipeline) if isinstance(pipeline, str) else tuple(pipeline)
    recorder = Recorder()
    skipped: list[dict[str, str]] = []
    for phase in phases:
        passes = []
        for name in phase.passes:
            cls = get_pass(name)
            if not ctx.accepts_all(cls.emits):
                missing = sorted(set(cls.emits) - set(ctx.accepts))
                skipped.append({"name": name, "phase": phase.name, "reason": f"target does not accept {', '.join(missing)}"})
                continue
            passes.append(_Instrumented(cls(ctx), [recorder, *instruments]))
        if not passes:
            continue
        recorder.phase = phase.name
        before = irh.node_count(model)
        t0 = time.perf_counter()
        try:
            model = ir.passes.PassManager(passes, steps=phase.steps, early_stop=True)(model).model
        except ir.passes.PassError as e:
            cause = _root(e)
            if isinstance(cause, PassBrokeParity):
                raise cause from None
            raise
        log(f"{phase.name}: {before} → {irh.node_count(model)} nodes ({time.perf_counter() - t0:.1f} s)")
    return PipelineResult(model, recorder.records, recorder.fusion_totals(), skipped)


def _root(e: BaseException) -> BaseException:
    while e.__cause__ is not None:
        e = e.__cause__
    return e
