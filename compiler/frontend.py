"""Frontend: PyTorch nn.Module / ExportedProgram / .onnx → checked onnx_ir.Model.

nn.Module goes through the dynamo exporter (``torch.onnx.export(dynamo=True)``); if that raises,
produces a graph that fails ``onnx.checker`` (full check), or bakes a dynamic dim (checked by
running the export in ONNX Runtime at a second batch size), the legacy TorchScript exporter is
used and the reason recorded. Every result is checked with ``onnx.checker.check_model(...,
full_check=True)`` and the checker's message becomes an error naming the model.
"""

from __future__ import annotations

import inspect
import re
import io
import tempfile
import time
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from compiler import external, interrupts, ir as irh, pt2_safety
from compiler.errors import BadInput, ResourceExhausted
from compiler.imports import call_factory
from compiler.spec import Exporter, ModelSpec, SourceKind


@dataclass
class FrontendResult:
    model: ir.Model
    exporter: str  # "dynamo" | "legacy" | "onnx-file"
    fallback_reason: str | None
    seconds: float


def example_feeds(module: Any, examples: tuple[Any, ...] | None, spec: ModelSpec) -> dict[str, np.ndarray] | None:
    """The factory's own example inputs as arrays keyed by input name (None if it gives none)."""
    if examples is None:
        return None
    import torch

    names = input_names_of(module, examples, spec)
    if not all(isinstance(e, torch.Tensor) for e in examples):
        raise BadInput(f"model {spec.name!r}: the factory's example inputs must be tensors to serve as golden inputs.")
    return {n: e.detach().numpy().copy() for n, e in zip(names, examples)}


def load_torch(spec: ModelSpec) -> tuple[Any, tuple[Any, ...] | None]:
    """The eager model (nn.Module or ExportedProgram.module()) and its example inputs, if any."""
    import torch

    if spec.source_kind is SourceKind.PT2:
        if not spec.trust_pickle:
            pt2_safety.check(Path(spec.source))
        try:
            ep = torch.export.load(spec.source)
        except Exception as e:  # torch raises many types for a bad archive
            raise BadInput(f"{spec.source!r} is not a loadable torch.export .pt2 archive: {e}") from None
        return ep, None
    if spec.source_kind is SourceKind.MODULE:
        module, examples = spec.loaded
        if not isinstance(module, torch.nn.Module):
            raise BadInput(f"the model given is a {type(module).__name__}, not a torch.nn.Module.")
        return module.eval(), examples
    if spec.source_kind is not SourceKind.FACTORY:
        raise BadInput(f"{spec.source!r} is an ONNX file: there is no PyTorch model to run.")
    result = call_factory(spec.source, "model factory")
    examples = None
    if isinstance(result, tuple) and len(result) == 2:
        result, examples = result
        examples = tuple(examples) if isinstance(examples, (tuple, list)) else (examples,)
    if not isinstance(result, torch.nn.Module):
        raise BadInput(
            f"model factory {spec.source!r} returned {type(result).__name__}; expected an "
            "nn.Module or (nn.Module, example_inputs)."
        )
    return result.eval(), examples


def input_names_of(model: Any, examples: tuple[Any, ...] | None, spec: ModelSpec) -> tuple[str, ...]:
    """Input names: the spec's, else the ExportedProgram's user inputs, else forward()'s params."""
    if spec.inputs:
        return spec.input_names
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        return tuple(s.arg.name for s in model.graph_signature.input_specs if s.kind.name == "USER_INPUT")
    sig = inspect.signature(model.forward).parameters.values()
    params = [p for p in sig if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = any(p.kind is p.VAR_POSITIONAL for p in sig)
    if examples is None:
        if var:
            raise BadInput(
                f"model {spec.name!r}: forward() takes *args, so the number of inputs is not known; return "
                "(module, example_inputs) from the factory or name the inputs in a spec TOML."
            )
        return tuple(p.name for p in params if p.default is p.empty) or tuple(p.name for p in params)
    names = [p.name for p in params[: len(examples)]]
    names += [f"input_{i}" for i in range(len(names), len(examples))]  # the *args part
    return tuple(names)


def run_eager(model: Any, feeds: dict[str, np.ndarray], input_names: tuple[str, ...], spec: ModelSpec) -> dict[str, np.ndarray]:
    """PyTorch eager FP32 on numpy feeds → outputs keyed by the spec's output names."""
    import torch

    check_feeds(spec, feeds)
    with torch.inference_mode():
        args = tuple(to_torch(feeds[n]) for n in input_names)
        fn = model.module() if isinstance(model, torch.export.ExportedProgram) else model
        try:
            outs = _flatten_outputs(fn(*args))
        except Exception as e:  # noqa: BLE001 - the user's model failing on these inputs is bad input
            interrupts.check()
            shapes = ", ".join(f"{n} {tuple(feeds[n].shape)} {feeds[n].dtype}" for n in input_names)
            raise BadInput(f"model {spec.name!r} raised {type(e).__name__} when run in PyTorch on inputs [{shapes}]: "
                           f"{_first_line(e)}") from None
    names = default_output_names(spec, len(outs))
    if len(outs) != len(names):
        raise BadInput(f"model {spec.name!r} returned {len(outs)} outputs but its spec names {len(names)}: {list(names)}.")
    return {n: o.detach().numpy() for n, o in zip(names, outs)}


def check_feeds(spec: ModelSpec, feeds: dict[str, np.ndarray]) -> None:
    """Inputs must match the spec's declared dtype and fixed dims (named dims are free)."""
    for t in spec.inputs:
        if t.name not in feeds:
            continue
        a = feeds[t.name]
        if str(a.dtype) != t.dtype:
            raise BadInput(f"input {t.name!r} of {spec.name!r} is {a.dtype} but the spec declares {t.dtype}.")
        if a.ndim != len(t.shape) or any(isinstance(d, int) and d != n for d, n in zip(t.shape, a.shape)):
            want = "×".join(str(d) for d in t.shape)
            raise BadInput(f"input {t.name!r} of {spec.name!r} has shape {tuple(a.shape)} but the spec declares [{want}].")


def to_torch(a: np.ndarray) -> Any:
    """A fresh C-order tensor. Not `ascontiguousarray`: numpy keeps odd strides on size-1 dims
    (e.g. ``x[:, None]``), and torch.export traces such an input as a different memory format —
    the digits CNN exported to 19 nodes instead of 9 from a view with stride 4 on its channel."""
    import torch

    return torch.from_numpy(np.array(a, order="C", copy=True))


def default_output_names(spec: ModelSpec, count: int) -> tuple[str, ...]:
    if spec.outputs:
        return tuple(o.name for o in spec.outputs)
    return ("output",) if count == 1 else tuple(f"output_{i}" for i in range(count))


def _flatten_outputs(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flatten_outputs(o)]
    if isinstance(out, dict):
        return [x for o in out.values() for x in _flatten_outputs(o)]
    if hasattr(out, "to_tuple"):  # transformers ModelOutput
        return _flatten_outputs(out.to_tuple())
    return [out]


def load(
    spec: ModelSpec,
    example_feeds: dict[str, np.ndarray] | None,
    log: Callable[[str], None] = lambda s: None,
    loaded: tuple[Any, Any] | None = None,
) -> FrontendResult:
    """Produce the checked onnx_ir model for `spec`. `example_feeds` are real inputs (batch ≥ 2
    where the batch is dynamic) used to trace; they are required for PyTorch sources. `loaded`:
    the (module, example inputs) `load_torch` already returned for this spec."""
    t0 = time.perf_counter()
    if spec.source_kind is SourceKind.ONNX:
        model = load_onnx(Path(spec.source), log)
        return FrontendResult(model, "onnx-file", None, time.perf_counter() - t0)
    import torch

    torch.set_num_threads(1)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" noise
    module, examples = loaded if loaded is not None else load_torch(spec)
    names = input_names_of(module, examples, spec)
    if example_feeds is None:
        if examples is None:
            raise BadInput(f"model {spec.name!r}: no example inputs to export with; give golden inputs.")
        args = tuple(examples)
    else:
        missing = [n for n in names if n not in example_feeds]
        if missing:
            raise BadInput(f"model {spec.name!r}: example inputs lack {missing} (have {sorted(example_feeds)}).")
        args = tuple(to_torch(example_feeds[n]) for n in names)
    out_names = tuple(run_eager(module, {n: a.numpy() for n, a in zip(names, args)}, names, spec))
    dyn = {t.name: t.dynamic_dims for t in spec.inputs if t.dynamic_dims}

    fallback = None
    if spec.export.exporter is Exporter.DYNAMO or isinstance(module, torch.export.ExportedProgram):
        log("exporting with the dynamo exporter")
        try:
            model = _export_dynamo(module, args, names, out_names, dyn, spec.export.opset)
            _check(model, f"the dynamo export of {spec.name!r}")
            _probe_dynamic_batch(model, args, names, dyn)
            return FrontendResult(model, "dynamo", None, time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - any exporter failure is a reason to fall back
            interrupts.check()  # ...but not an interrupt that torch turned into another error
            if isinstance(module, torch.export.ExportedProgram):
                raise BadInput(f"exporting {spec.source!r} to ONNX failed: {_first_line(e)}") from None
            fallback = f"dynamo exporter failed: {_first_line(e)}"
            log(f"{fallback}; falling back to the legacy exporter")
    else:
        fallback = "legacy exporter requested by the spec ([export] exporter = \"legacy\")"
    try:
        model = _export_legacy(module, args, names, out_names, dyn, spec.export.opset)
        _check(model, f"the legacy export of {spec.name!r}")
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001
        interrupts.check()
        raise BadInput(f"model {spec.name!r} could not be exported ({fallback}; legacy exporter: {_first_line(e)}).") from None
    return FrontendResult(model, "legacy", fallback, time.perf_counter() - t0)


def _export_dynamo(module, args, names, out_names, dyn, opset) -> ir.Model:
    import torch

    dynamic_shapes = None
    if dyn:
        # A tuple in argument order: dict keys would have to be forward()'s parameter names,
        # which need not be the graph input names.
        dynamic_shapes = tuple(dict(dyn.get(n, {})) or None for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            module, args, dynamo=True, input_names=list(names), output_names=list(out_names),
            dynamic_shapes=dynamic_shapes if not isinstance(module, torch.export.ExportedProgram) else None,
            opset_version=opset, external_data=False, verbose=False,
        )
    model = prog.model
    if opset is not None and irh.opset(model) != opset:
        raise RuntimeError(f"asked for opset {opset}, the exporter produced opset {irh.opset(model)}")
    return model


def _export_legacy(module, args, names, out_names, dyn, opset) -> ir.Model:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, buf, dynamo=False, input_names=list(names), output_names=list(out_names),
            dynamic_axes={n: d for n, d in dyn.items()} or None, opset_version=opset or 17,
        )
    return irh.from_proto(onnx.load_from_string(buf.getvalue()))


def _probe_dynamic_batch(model: ir.Model, args, names, dyn) -> None:
    """Run the export in ORT at batch 1 when the batch dim is dynamic: the dynamo exporter can
    declare a dim dynamic yet bake the example's size into a Reshape (docs/toolchains.md)."""
    batch_dynamic = any(0 in d for d in dyn.values())
    if not batch_dynamic or int(args[0].shape[0]) < 2:
        return
    from compiler import ortsession

    sess = ortsession.session(model)
    feeds = {n: a[:1].numpy() for n, a in zip(names, args)}
    try:
        sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(f"the export does not run at batch 1 although batch is dynamic ({_first_line(e)})") from None


def load_onnx(path: Path, log: Callable[[str], None] = lambda s: None) -> ir.Model:
    """Load an .onnx (with external data beside it), full-check it, return it in memory."""
    if not path.is_file():
        raise BadInput(f"model file {str(path)!r} does not exist.")
    try:
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.shape_inference.InferenceError as e:
            # Full check adds strict shape inference, which can fail inside onnx's own function
            # bodies (e.g. MeanVarianceNormalization); the structural check still must pass and
            # the backend's own loader validates again.
            onnx.checker.check_model(str(path))
            log(f"note: onnx.checker's strict shape inference failed ({_first_line(e)}); the structural check passed")
    except onnx.checker.ValidationError as e:
        raise BadInput(f"{str(path)!r} is not a valid ONNX model: onnx.checker says: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError, OSError for missing data...
        raise BadInput(f"{str(path)!r} cannot be read as ONNX: {_first_line(e)}") from None
    proto = onnx.load(str(path), load_external_data=False)
    external.check(proto, path)
    model = ir.load(path)
    external.drop_unused(model, log)
    external.check_memory(model, path)
    try:
        ir.external_data.load_to_model(model)
    except MemoryError:
        raise ResourceExhausted(f"out of memory reading the weights of {str(path)!r}; build on a larger host.") from None
    upgrade_old_ir(model, log)
    lower_new_ir(model, log, str(path))
    return model


# The newest ONNX IR version and default-domain opset the runtimes here read: onnxruntime 1.31
# refuses IR 14 ("max supported IR version: 13") and opset 27 ("official support for domain
# ai.onnx is till opset 26"), and every target runs ORT (precision gates, host-side checks) —
# while onnx.helper.make_model in onnx 1.23 stamps IR 14 and opset 28 on every model it makes.
MAX_IR_VERSION = 13
MAX_OPSET = 26
# The IR version that introduced each element type (onnx.proto's IR_VERSION comments).
_TYPE_IR = {17: 9, 18: 9, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 12, 25: 13, 26: 13, 27: 14, 28: 14}


def required_ir_version(model: ir.Model) -> tuple[int, str]:
    """The lowest IR version that can hold `model` — its opsets and its element types — and
    what demands it."""
    opsets = [onnx.helper.make_opsetid(d, v) for d, v in model.opset_imports.items()]
    need, why = onnx.helper.find_min_ir_version_for(opsets, ignore_unknown=True), "its opsets"
    for value in _values(model):
        if value.dtype is not None and _TYPE_IR.get(value.dtype.value, 0) > need:
            need, why = _TYPE_IR[value.dtype.value], f"element type {value.dtype.name} of {value.name!r}"
    return need, why


def _values(model: ir.Model):
    for graph in (model.graph, *model.graph.subgraphs()):
        yield from graph.inputs
        yield from graph.initializers.values()
        for node in graph:
            yield from node.outputs


def _lower_opset(model: ir.Model, log: Callable[[str], None], where: str) -> None:
    """A default-domain opset newer than the runtimes read is stamped down to the newest they
    read when no node's operator changed in between (each keeps the same definition); else the
    node whose operator is newer is refused, named."""
    declared = irh.opset(model)
    if declared <= MAX_OPSET:
        return
    for graph in (model.graph, *model.graph.subgraphs()):
        for node in graph:
            if node.domain not in ("", "ai.onnx"):
                continue
            try:
                since = onnx.defs.get_schema(node.op_type, declared, "").since_version
            except onnx.defs.SchemaError:
                raise BadInput(f"{where!r}: node {node.name!r} has op {node.op_type!r}, which ONNX opset {declared} "
                               "does not define.") from None
            if since > MAX_OPSET:
                raise BadInput(f"{where!r}: node {node.name!r} uses {node.op_type} as defined in opset {since}; the runtimes "
                               f"here (onnxruntime {_ort_version()}) read opsets ≤ {MAX_OPSET}. Export it at opset "
                               f"{MAX_OPSET} or lower.")
    key = "" if "" in model.opset_imports else "ai.onnx"
    model.opset_imports[key] = MAX_OPSET
    log(f"opset {declared} → {MAX_OPSET}: every operator of the graph has the same definition in both, and the runtimes "
        f"read ≤ {MAX_OPSET}")


def lower_new_ir(model: ir.Model, log: Callable[[str], None], where: str) -> None:
    """An IR version (and opset) newer than the runtimes read, on a graph that uses nothing newer,
    is stamped down to the newest they read (the graph itself does not change); a graph that
    needs the newer IR is refused, naming what needs it."""
    _lower_opset(model, log, where)
    if model.ir_version is None or model.ir_version <= MAX_IR_VERSION:
        return
    need, why = required_ir_version(model)
    if need > MAX_IR_VERSION:
        raise BadInput(f"{where!r} needs ONNX IR version {need} ({why}); the runtimes here (onnxruntime "
                       f"{_ort_version()}) read IR ≤ {MAX_IR_VERSION}. Export it with an older opset / element type.")
    log(f"IR version {model.ir_version} → {MAX_IR_VERSION}: the graph needs only IR {need}, and the runtimes read ≤ {MAX_IR_VERSION}")
    model.ir_version = MAX_IR_VERSION


def _ort_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def upgrade_old_ir(model: ir.Model, log: Callable[[str], None] = lambda s: None) -> None:
    """IR < 4 (older model-zoo exports) requires every initializer to be listed as a graph
    input; passes that add initializers (constant folding) then break the model, and ORT's
    optimizer and quantizer treat the listed weights as inputs to feed. Drop initializers from
    the inputs (they are weights, not inputs, in every such model we met) and stamp the lowest
    IR version that allows that and the model's opsets."""
    if model.ir_version is None or model.ir_version >= 4:
        return
    inits = model.graph.initializers
    listed = [v for v in model.graph.inputs if v.name in inits]
    keep = [v for v in model.graph.inputs if v.name not in inits]
    model.graph.inputs.clear()
    model.graph.inputs.extend(keep)
    opsets = [onnx.helper.make_opsetid(d, v) for d, v in model.opset_imports.items()]
    old = model.ir_version
    model.ir_version = max(4, onnx.helper.find_min_ir_version_for(opsets, ignore_unknown=True))
    log(f"upgraded IR version {old} → {model.ir_version}: {len(listed)} initializer(s) no longer listed as graph inputs")


def _check(model: ir.Model, what: str) -> None:
    proto = irh.to_proto(model)
    try:
        if proto.ByteSize() > irh.PROTO_LIMIT:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "model.onnx"
                irh.save(model, p)
                onnx.checker.check_model(str(p), full_check=True)
        else:
            onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise RuntimeError(f"{what} fails onnx.checker: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    """The line of an exception worth showing; for torch.onnx errors, the exception summary."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip() or type(e).__name__
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1].strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:400] if lines else text


__all__ = ["FrontendResult", "load", "load_onnx", "load_torch", "run_eager"]
