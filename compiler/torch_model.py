"""The PyTorch side of a model: load it (factory, nn.Module, or torch.export .pt2 archive), name
its inputs, and run it eagerly in FP32 on numpy feeds checked against the spec — the reference the
exports, golden vectors and benchmarks are compared with. Torch is imported lazily, inside each
function, so modules that import this one stay cheap to load for ONNX-only work.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from compiler import interrupts, pt2_safety
from compiler.errors import BadInput, first_line
from compiler.imports import call_factory
from compiler.spec import ModelSpec, SourceKind


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
                           f"{first_line(e)}") from None
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
