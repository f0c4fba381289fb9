"""Small helpers over onnx_ir (the in-memory IR). No IR classes of our own live here.

Serialization rule: models up to 2 GB go to ORT/checkers as bytes; larger ones are saved with
external data beside the .onnx (protobuf cannot hold more than 2 GB in one message).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

PROTO_LIMIT = 2 * 1024**3 - 1


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, numpy dtype, shape (int or named/unnamed dynamic dim)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...] | None

    def as_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype.name, "shape": None if self.shape is None else list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict) -> TensorInfo:
        return cls(d["name"], np.dtype(d["dtype"]), None if d["shape"] is None else tuple(d["shape"]))

    def matches(self, array: np.ndarray) -> str | None:
        """None if `array` can feed/compare with this tensor, else why not."""
        if np.dtype(array.dtype) != self.dtype:
            return f"dtype {array.dtype} but the graph expects {self.dtype}"
        if self.shape is None:
            return None
        if array.ndim != len(self.shape) or any(
            isinstance(d, int) and d != a for d, a in zip(self.shape, array.shape)
        ):
            want = "×".join(str(d) if d is not None else "?" for d in self.shape)
            return f"shape {tuple(array.shape)} but the graph expects [{want}]"
        return None


def _info(value: ir.Value) -> TensorInfo:
    dtype = np.dtype(value.dtype.numpy()) if value.dtype is not None else np.dtype("float32")
    shape = None
    if value.shape is not None:
        shape = tuple(d if isinstance(d, int) else d.value for d in value.shape)
    return TensorInfo(value.name or "", dtype, shape)


def graph_inputs(model: ir.Model) -> list[TensorInfo]:
    """The true inputs: graph inputs that are not also initializers."""
    return [_info(v) for v in model.graph.inputs if v.name not in model.graph.initializers]


def graph_outputs(model: ir.Model) -> list[TensorInfo]:
    return [_info(v) for v in model.graph.outputs]


def node_count(model: ir.Model) -> int:
    return len(model.graph)


def op_histogram(model: ir.Model) -> dict[str, int]:
    """Op types (``domain::Op`` outside the default domain) with counts, most frequent first."""
    c = Counter(f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in model.graph)
    return dict(c.most_common())


def opset(model: ir.Model) -> int:
    return model.opset_imports.get("", model.opset_imports.get("ai.onnx", 0))


def to_proto(model: ir.Model) -> onnx.ModelProto:
    """A self-contained ModelProto (external tensors read into memory first)."""
    ir.external_data.load_to_model(model)
    return ir.to_proto(model)


def save(model: ir.Model, path: Path) -> list[Path]:
    """Write `model` to `path`; weights go to ``<path>.data`` only when the model exceeds 2 GB.

    Returns the files written.
    """
    size = sum(t.const_value.nbytes for t in model.graph.initializers.values() if t.const_value is not None)
    if size > PROTO_LIMIT:
        data = path.with_name(path.name + ".data")
        ir.save(model, path, external_data=data.name)
        return [path, data]
    ir.external_data.load_to_model(model)
    ir.save(model, path)
    return [path]


def from_proto(proto: onnx.ModelProto) -> ir.Model:
    return ir.from_proto(proto)
