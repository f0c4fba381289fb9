"""Gather / GatherElements / GatherND lowerings through litert-converter and LiteRT (XNNPACK and
reference kernels) against ONNX Runtime, with dynamic dims, negative indices and batch_dims."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.targets.stablehlo.helpers import compare_with_ort, graph_model

F32 = np.float32
rng = np.random.default_rng(1)


def _x(*shape):
    return rng.standard_normal(shape).astype(F32)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_dynamic(axis, tmp_path):
    m = graph_model([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)],
                    {"x": (F32, ["b", 5, 6]), "i": (np.int64, ["b", 3, 6])}, {"y": F32})
    feeds = []
    for n in (1, 3):
        size = {0: n, 1: 5, -1: 6}[axis]
        idx = rng.integers(-size, size, (n, 3, 6))  # negatives count from the end
        feeds.append({"x": _x(n, 5, 6), "i": idx})
    compare_with_ort(m, feeds, tmp_path, atol=0, rtol=0)


def test_gather_elements_minilm_position_ids(tmp_path):
    """The shape a transformers export writes: a constant [1, 512] table read by a sliced,
    expanded index tensor of dynamic length."""
    nodes = [helper.make_node("Shape", ["mask"], ["s"], start=1, end=2),
             helper.make_node("Slice", ["pos", "zero", "s", "one"], ["sl"]),
             helper.make_node("GatherElements", ["table", "sl"], ["y"], axis=1)]
    m = graph_model(nodes, {"mask": (np.int64, ["b", "seq"])}, {"y": np.int64},
                    {"pos": np.arange(64, dtype=np.int64)[None], "zero": np.array([0], np.int64),
                     "one": np.array([1], np.int64), "table": rng.integers(0, 9, (1, 64))})
    compare_with_ort(m, [{"mask": np.ones((1, 7), np.int64)}, {"mask": np.ones((1, 19), np.int64)}], tmp_path)


@pytest.mark.parametrize("batch_dims,data_shape,idx_shape", [
    (0, ["b", 4], ["n", 2]),       # every data dim indexed: a point gather (MiniLM's mask read)
    (0, [6, 5, 3], ["n", 1]),      # row slices of a static tail
    (0, ["b", 5, 3], [4, 2]),      # slices of a dynamic operand
    (1, ["b", 5, 3], ["b", 2, 1]),  # batch_dims: per-batch rows
])
def test_gather_nd(batch_dims, data_shape, idx_shape, tmp_path):
    m = graph_model([helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=batch_dims)],
                    {"x": (F32, data_shape), "i": (np.int64, idx_shape)}, {"y": F32})
    feeds = []
    for n in (2, 3):
        ds = [n if isinstance(d, str) else d for d in data_shape]
        is_ = [n if isinstance(d, str) else d for d in idx_shape]
        k = is_[-1]
        bounds = np.array(ds[batch_dims:batch_dims + k])
        idx = rng.integers(-bounds, bounds, is_)  # per-component bounds; negatives included
        feeds.append({"x": _x(*ds), "i": idx})
    compare_with_ort(m, feeds, tmp_path, atol=0, rtol=0)


def test_gather_nd_bool_mask(tmp_path):
    """MiniLM's attention mask read: a bool [batch, seq] tensor, indices from its own shape."""
    nodes = [helper.make_node("Cast", ["m"], ["mb"], to=9),
             helper.make_node("GatherND", ["mb", "i"], ["y"])]
    m = graph_model(nodes, {"m": (np.int64, ["b", "s"]), "i": (np.int64, ["n", 2])}, {"y": np.bool_})
    feeds = [{"m": rng.integers(0, 2, (b, s)), "i": np.stack([rng.integers(0, b, 5), rng.integers(0, s, 5)], 1)}
             for b, s in ((1, 6), (3, 9))]
    compare_with_ort(m, feeds, tmp_path)


def test_gather_dynamic_operand(tmp_path):
    """ONNX Gather on an operand whose gathered-from dims are dynamic (dynamic_gather)."""
    m = graph_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                    {"x": (F32, ["b", "s", 4]), "i": (np.int64, [3])}, {"y": F32}, )
    feeds = [{"x": _x(n, s, 4), "i": np.array([0, -1, 2])} for n, s in ((1, 5), (2, 7))]
    compare_with_ort(m, feeds, tmp_path, atol=0, rtol=0)


def test_gather_nd_rank5_indices(tmp_path):
    """Rank-5 dynamic indices (MiniLM's mask read has [b, 1, 1, s, 2]): the negative-index wrap
    runs on a rank-2 view, since LiteRT's LESS broadcasts at most 4-D."""
    m = graph_model([helper.make_node("GatherND", ["x", "i"], ["y"])],
                    {"x": (F32, ["b", "s"]), "i": (np.int64, ["b", 1, 1, "s", 2])}, {"y": F32})
    feeds = []
    for b, s in ((1, 4), (2, 6)):
        idx = np.stack([rng.integers(-b, b, (b, 1, 1, s)), rng.integers(-s, s, (b, 1, 1, s))], -1)
        feeds.append({"x": _x(b, s), "i": idx})
    compare_with_ort(m, feeds, tmp_path, atol=0, rtol=0)


def test_rows_of_a_constant_table_are_an_embedding_lookup(tmp_path):
    """An embedding (Gather of a constant 2-D table along axis 0, ids at run time, negative ones
    too) becomes EMBEDDING_LOOKUP, whose table LiteRT's quantizers can store in float16/int8."""
    from targets.stablehlo import litert

    table = np.random.default_rng(1).standard_normal((100, 16)).astype(np.float32)
    m = graph_model([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                    {"ids": (np.int64, ["batch", 7])}, {"y": np.float32}, {"table": table})
    ids = np.random.default_rng(2).integers(-100, 100, (3, 7)).astype(np.int64)
    compare_with_ort(m, [{"ids": ids}, {"ids": ids[:1]}], tmp_path, atol=0)
    found = litert.inspect(tmp_path / "m.tflite")
    assert found.ops["EMBEDDING_LOOKUP"] == 1 and "GATHER" not in found.ops, found.ops
