"""The MIL reference evaluator: runs a saved ``.mlpackage`` op by op, in numpy, on Linux.

There is no Core ML runtime off macOS (coremltools' Linux wheel lacks ``libcoremlpython``), so
this is how a build on Linux checks numbers. It reads the package back the way a user ships it
(``MLModel(skip_model_load=True)`` → the MIL proto → coremltools' own ``milproto`` loader, which
also reads the weight blob), then evaluates each op of ``main`` on concrete inputs:

- with coremltools' own ``value_inference`` where the op has one (≈110 of the iOS17 ops: the
  code coremltools uses to constant-fold), by re-creating the op with constant inputs in a
  scratch function of the same opset;
- with the numpy implementations in `targets.coreml.mil_numpy` for the ops coremltools cannot
  fold (conv, pooling, norms, gather_nd…).

What this verifies: our lowering, coremltools' MIL passes and its serializer. What it does not:
Apple's kernels (their fp16 accumulation, ANE rounding). Manifest and report say so, and the
deferred step runs the real ``MLModel.predict`` on a Mac (``verify --on-device``).

Written by hand because coremltools ships no evaluator (its numeric tests run on macOS only).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from targets.base import Runner
from targets.coreml import mil_numpy

WHAT = "MIL reference evaluation (coremltools value inference + numpy), not the Core ML runtime"


def load_program(package: Path):
    """The MIL program inside a saved ``.mlpackage`` (weights read from its blob file)."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    model = ct.models.MLModel(str(package), skip_model_load=True)
    spec = model.get_spec()
    return spec, milproto_load(spec, specification_version=spec.specificationVersion, file_weights_dir=model.weights_dir)


def op_histogram(program) -> dict[str, int]:
    """MIL op types in ``main`` (consts left out), the op set the package asks Core ML to run."""
    return dict(sorted(Counter(op.op_type for op in program.functions["main"].operations if op.op_type != "const").items()))


class UnsupportedMilOp(RuntimeError):
    pass


class MilEvaluator:
    def __init__(self, package: Path):
        self.spec, self.program = load_program(package)
        self.fn = self.program.functions["main"]
        self.opset = self.fn.opset_version

    def evaluate(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """`feeds` keyed by MIL input name; outputs in the function's order."""
        from coremltools.converters.mil.mil import types

        env: dict[str, Any] = {}
        for name, var in self.fn.inputs.items():
            if name not in feeds:
                raise KeyError(f"MIL input {name!r} not fed (have {sorted(feeds)})")
            env[var.name] = np.asarray(feeds[name]).astype(types.nptype_from_builtin(var.dtype), copy=False)
        with np.errstate(all="ignore"):  # IEEE results (a fully masked softmax row) are the answer, not news
            self._run(self.fn.operations, env)
        return [env[v.name] for v in self.fn.outputs]

    def _run(self, operations, env: dict[str, Any]) -> None:
        for op in operations:
            outs = self._while(op, env) if op.op_type == "while_loop" else self._op(op, env)
            for var, value in zip(op.outputs, outs):
                env[var.name] = value

    def _while(self, op, env: dict[str, Any]) -> list[np.ndarray]:
        """MIL while_loop: blocks[0] maps the loop vars to a bool, blocks[1] to the next loop vars;
        both may read values from the enclosing function."""
        cond, body = op.blocks
        values = [env[v.name] for v in op.inputs["loop_vars"]]
        while True:
            for var, value in zip(cond.inputs, values):
                env[var.name] = value
            self._run(cond.operations, env)
            if not bool(np.asarray(env[cond.outputs[0].name]).ravel()[0]):
                return values
            for var, value in zip(body.inputs, values):
                env[var.name] = value
            self._run(body.operations, env)
            values = [env[v.name] for v in body.outputs]

    def _op(self, op, env: dict[str, Any]) -> list[np.ndarray]:
        if op.op_type == "const":
            return [_scalar(op.outputs[0].val)]
        args = {}
        for k, v in op.inputs.items():
            args[k] = [_value(x, env) for x in v] if isinstance(v, (list, tuple)) else _value(v, env)
        impl = mil_numpy.IMPLS.get(op.op_type)
        if impl is not None:
            out = impl(**args)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
        else:
            outs = self._value_inference(op, args)
        return [_typed(v, var) for v, var in zip(outs, op.outputs)]

    def _value_inference(self, op, args: dict[str, Any]) -> list[np.ndarray]:
        from coremltools.converters.mil import Builder as mb
        from coremltools.converters.mil.mil import Function

        build = getattr(mb, op.op_type, None)
        if build is None:
            raise UnsupportedMilOp(f"MIL op {op.op_type!r} ({op.name}) has neither a numpy implementation nor coremltools value inference")
        with Function({}, opset_version=self.opset):
            out = build(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}, name=op.name)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        vals = [o.val for o in outs]
        if any(v is None for v in vals):
            raise UnsupportedMilOp(f"MIL op {op.op_type!r} ({op.name}): coremltools' value inference gave no value; "
                                   "it needs a numpy implementation in targets/coreml/mil_numpy.py")
        return [np.asarray(v) for v in vals]


def _value(var, env: dict[str, Any]) -> Any:
    """A var's value: computed earlier in this run, or a constant stored inline with its op."""
    if var.name in env:
        return env[var.name]
    if var.val is not None:
        return _scalar(var.val)
    raise KeyError(f"MIL value {var.name!r} is read before anything computed it")


def _scalar(val: Any) -> Any:
    """A 0-d constant as the builder and numpy want it back: floats keep their numpy type (an fp16
    alpha stays fp16), bools / ints / strings become Python ones (numpy refuses a numpy bool as
    ``keepdims``)."""
    if isinstance(val, np.generic) or isinstance(val, np.ndarray) and val.ndim == 0:
        val = np.asarray(val)
        return val[()] if val.dtype.kind == "f" else val.item()
    return val


def _typed(value: Any, var) -> np.ndarray:
    from coremltools.converters.mil.mil import types

    a = np.asarray(value)
    want = types.nptype_from_builtin(var.dtype) if types.is_tensor(var.sym_type) or types.is_scalar(var.sym_type) else None
    return a.astype(want, copy=False) if want is not None and a.dtype != want else a


class MilRunner(Runner):
    """A `Runner` over the evaluator, keyed by the graph's ONNX names (the manifest's I/O table)."""

    def __init__(self, package: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]):
        self.evaluator = MilEvaluator(package)
        self.inputs, self.outputs = inputs, outputs
        self.input_names = tuple(i["name"] for i in inputs)
        self.output_names = tuple(o["name"] for o in outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        got = self.evaluator.evaluate({i["mil_name"]: to_coreml(feeds[i["name"]], i) for i in self.inputs})
        return {o["name"]: from_coreml(v, o) for o, v in zip(self.outputs, got)}


def to_coreml(value: np.ndarray, io: dict[str, Any]) -> np.ndarray:
    """A feed as the package takes it: a scalar as shape (1,)."""
    a = np.asarray(value)
    return a.reshape(1) if io.get("scalar") else a


def from_coreml(value: Any, io: dict[str, Any]) -> np.ndarray:
    a = np.asarray(value)
    return a.reshape(()) if io.get("scalar") else a
