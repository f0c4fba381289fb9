"""Frontend: PyTorch nn.Module / ExportedProgram / .onnx → checked onnx_ir.Model.

nn.Module goes through the dynamo exporter (``torch.onnx.export(dynamo=True)``); if that raises,
produces a graph that fails ``onnx.checker`` (full check), or bakes a dynamic dim (checked by
running the export in ONNX Runtime at a second batch size), the legacy TorchScript exporter is
used and the reason recorded. Every result is checked with ``onnx.checker.check_model(...,
full_check=True)`` and the checker's message becomes an error naming the model. The PyTorch side
(loading, eager runs) is `compiler.torch_model`; reading an ``.onnx`` is `compiler.onnx_file`.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from compiler import interrupts
from compiler import ir as irh
from compiler.errors import BadInput, first_line
from compiler.onnx_file import load_onnx
from compiler.spec import Exporter, ModelSpec, SourceKind
from compiler.torch_model import input_names_of, load_torch, run_eager, to_torch


@dataclass
class FrontendResult:
    model: ir.Model
    exporter: str  # "dynamo" | "legacy" | "onnx-file"
    fallback_reason: str | None
    seconds: float


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
                raise BadInput(f"exporting {spec.source!r} to ONNX failed: {first_line(e)}") from None
            fallback = f"dynamo exporter failed: {first_line(e)}"
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
        raise BadInput(f"model {spec.name!r} could not be exported ({fallback}; legacy exporter: {first_line(e)}).") from None
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
        raise RuntimeError(f"the export does not run at batch 1 although batch is dynamic ({first_line(e)})") from None


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
        raise RuntimeError(f"{what} fails onnx.checker: {first_line(e)}") from None


__all__ = ["FrontendResult", "load"]
