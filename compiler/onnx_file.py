"""Reading an ``.onnx`` file: full ``onnx.checker`` check, external data read beside it (used
weights only, within memory), and the IR version and default-domain opset brought into the range
the runtimes here read — old IR (< 4) upgraded, a newer IR or opset stamped down when the graph
uses nothing newer, refused naming what needs it otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import onnx_ir as ir

from compiler import external
from compiler import ir as irh
from compiler.errors import BadInput, ResourceExhausted, first_line


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
            log(f"note: onnx.checker's strict shape inference failed ({first_line(e)}); the structural check passed")
    except onnx.checker.ValidationError as e:
        raise BadInput(f"{str(path)!r} is not a valid ONNX model: onnx.checker says: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError, OSError for missing data...
        raise BadInput(f"{str(path)!r} cannot be read as ONNX: {first_line(e)}") from None
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

