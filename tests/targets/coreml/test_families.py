"""Each op family's Core ML lowering, saved as an .mlpackage, reloaded and run by the MIL reference
evaluator, against ONNX Runtime on the same inputs — at two batch sizes, because dims stay
dynamic (MIL symbols, Core ML RangeDims) in the lowering. This also tests each numpy
implementation in the evaluator against the ONNX op it stands for (conv, pools, norms,
gather_nd)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.errors import ToolchainRefused
from tests.targets.coreml.helpers import build, compare_with_ort
from tests.targets.stablehlo import test_families as stablehlo_families
from tests.targets.stablehlo.helpers import graph_model

F32 = np.float32
rng = np.random.default_rng(0)


def _x(*shape):
    return rng.standard_normal(shape).astype(F32)


def _batches(name, *rest):
    return [{name: _x(1, *rest)}, {name: _x(3, *rest)}]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
def test_binary_broadcasting(op, tmp_path):
    c = np.abs(_x(4, 1)) + 0.5 if op in ("Div", "Pow") else _x(4, 1)
    m = graph_model([helper.make_node(op, ["x", "c"], ["y"])], {"x": (F32, ["batch", 4, 5])}, {"y": F32}, {"c": c.astype(F32)})
    feeds = [{"x": np.abs(f["x"]) + 0.1} for f in _batches("x", 4, 5)] if op == "Pow" else _batches("x", 4, 5)
    compare_with_ort(m, feeds, tmp_path, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("op,attrs", [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Neg", {}), ("Abs", {}),
                                      ("Erf", {}), ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("HardSwish", {}),
                                      ("HardSigmoid", {}), ("LeakyRelu", {"alpha": 0.1}), ("Softplus", {}), ("Elu", {}),
                                      ("Floor", {}), ("Ceil", {}), ("Sign", {}), ("Reciprocal", {})])
def test_unary(op, attrs, tmp_path):
    m = graph_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": (F32, ["batch", 6])}, {"y": F32}, opset=20)
    compare_with_ort(m, _batches("x", 6), tmp_path, atol=2e-5, rtol=1e-5)


def test_clip_where_compare_cast_isnan(tmp_path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Clip", ["x", "zero", "six"], ["r6"]),
             helper.make_node("Greater", ["x", "zero"], ["p"]),
             helper.make_node("Where", ["p", "c", "zero"], ["w"]),
             helper.make_node("IsNaN", ["w"], ["n"]),
             helper.make_node("Not", ["n"], ["nn"]),
             helper.make_node("Cast", ["nn"], ["y_int"], to=7),
             helper.make_node("Cast", ["p"], ["y_f"], to=1),
             helper.make_node("PRelu", ["x", "slope"], ["pr"])]
    m = graph_model(nodes, {"x": (F32, ["batch", 5])}, {"w": F32, "r6": F32, "y_int": np.int64, "y_f": F32, "pr": F32},
                    {"lo": np.array(-0.5, F32), "hi": np.array(0.5, F32), "zero": np.array(0, F32), "six": np.array(6, F32),
                     "slope": np.full(5, 0.25, F32)})
    compare_with_ort(m, [{"x": f["x"] * 4} for f in _batches("x", 5)], tmp_path)


def test_where_broadcasts_over_the_condition(tmp_path):
    """Scalar branches, a rank-4 condition (MiniLM's attention mask): coremltools types select
    from its branches only; the lowering must still give the condition's shape."""
    nodes = [helper.make_node("Greater", ["x", "zero"], ["p"]),
             helper.make_node("Where", ["p", "zero", "big"], ["y"])]
    m = graph_model(nodes, {"x": (F32, ["batch", 1, 3, 3])}, {"y": F32}, {"zero": np.array(0, F32), "big": np.array(-1e9, F32)})
    compare_with_ort(m, _batches("x", 1, 3, 3), tmp_path)


def test_integer_div_truncates_like_onnx(tmp_path):
    m = graph_model([helper.make_node("Div", ["a", "b"], ["q"])], {"a": (np.int32, [6]), "b": (np.int32, [6])}, {"q": np.int32})
    compare_with_ort(m, [{"a": np.array([7, -7, 7, -7, 0, 9], np.int32), "b": np.array([2, 2, -2, -2, 3, 3], np.int32)}], tmp_path)


@pytest.mark.parametrize("group,pads,strides,dilations", [(1, [1, 1, 1, 1], [1, 1], [1, 1]), (4, [0, 1, 0, 1], [2, 2], [1, 1]),
                                                           (2, [0, 0, 0, 0], [1, 2], [2, 1]), (1, [2, 0, 1, 1], [1, 1], [1, 1])])
def test_conv(group, pads, strides, dilations, tmp_path):
    w = _x(8, 4 // group, 3, 3)
    m = graph_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=pads, strides=strides, dilations=dilations)],
                    {"x": (F32, ["batch", 4, 9, 9])}, {"y": F32}, {"w": w, "b": _x(8)})
    info = compare_with_ort(m, _batches("x", 4, 9, 9), tmp_path, atol=1e-4, rtol=1e-4)
    assert info["mil_ops"].get("conv") == 1


def test_conv_same_and_1d_and_depthwise(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2]),
             helper.make_node("Conv", ["x", "dw"], ["b"], group=4, pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
             helper.make_node("Reshape", ["x", "s1d"], ["x1"]),
             helper.make_node("Conv", ["x1", "w1"], ["c"], pads=[1, 1])]
    m = graph_model(nodes, {"x": (F32, ["batch", 4, 8, 8])}, {"a": F32, "b": F32, "c": F32},
                    {"w": _x(6, 4, 3, 3), "dw": _x(4, 1, 5, 5), "w1": _x(3, 4, 3), "s1d": np.array([0, 4, 64], np.int64)})
    compare_with_ort(m, _batches("x", 4, 8, 8), tmp_path, atol=1e-4, rtol=1e-4)


def test_conv_transpose(tmp_path):
    m = graph_model([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], group=2)],
                    {"x": (F32, ["batch", 4, 5, 5])}, {"y": F32}, {"w": _x(4, 3, 3, 3), "b": _x(6)})
    compare_with_ort(m, _batches("x", 4, 5, 5), tmp_path, atol=1e-4, rtol=1e-4)


def test_pooling_and_batch_norm(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["x"], ["a2"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
             helper.make_node("AveragePool", ["x"], ["b"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["b2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
             helper.make_node("GlobalAveragePool", ["x"], ["c"]),
             helper.make_node("GlobalMaxPool", ["x"], ["g"]),
             helper.make_node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("InstanceNormalization", ["x", "s", "bb"], ["inn"])]
    m = graph_model(nodes, {"x": (F32, ["batch", 3, 8, 8])}, {k: F32 for k in ("a", "a2", "b", "b2", "c", "g", "bn", "inn")},
                    {"s": _x(3), "bb": _x(3), "mu": _x(3), "var": np.abs(_x(3)) + 0.5})
    compare_with_ort(m, _batches("x", 3, 8, 8), tmp_path, atol=1e-4, rtol=1e-4)


def test_matmul_gemm(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),                  # constant weight → linear
             helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["x", "xt"], ["bm"]),                # batched, both run-time
             helper.make_node("Reshape", ["x", "flat"], ["x2"]),
             helper.make_node("Gemm", ["x2", "w2", "c"], ["g"], transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Gemm", ["x2", "w2", "c"], ["fc"], transB=1)]
    m = graph_model(nodes, {"x": (F32, ["batch", 3, 6])}, {"m": F32, "bm": F32, "g": F32, "fc": F32},
                    {"w": _x(6, 5), "flat": np.array([-1, 18], np.int64), "w2": _x(7, 18), "c": _x(7)})
    info = compare_with_ort(m, _batches("x", 3, 6), tmp_path, atol=1e-4, rtol=1e-4)
    assert info["mil_ops"].get("linear", 0) >= 2 and info["mil_ops"].get("matmul", 0) >= 1, info["mil_ops"]


def test_matmul_one_dimensional_operands(tmp_path):
    nodes = [helper.make_node("MatMul", ["v", "v"], ["dot"]), helper.make_node("MatMul", ["x", "v"], ["mv"]),
             helper.make_node("MatMul", ["v", "x3"], ["vm"])]
    m = graph_model(nodes, {"v": (F32, [3]), "x": (F32, [2, 4, 3]), "x3": (F32, [2, 3, 5])}, {"dot": F32, "mv": F32, "vm": F32})
    info = compare_with_ort(m, [{"v": _x(3), "x": _x(2, 4, 3), "x3": _x(2, 3, 5)}], tmp_path, atol=1e-5, rtol=1e-5)
    assert info["outputs"][0]["scalar"]


def test_log_softmax_of_large_values(tmp_path):
    m = graph_model([helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)], {"x": (F32, ["batch", 4])}, {"y": F32}, opset=13)
    compare_with_ort(m, [{"x": np.array([[0, 1, 2, 3], [10000, 10001, 10002, 10003]], F32)}], tmp_path, atol=1e-5, rtol=1e-6)


def test_ceil_mode_pool_where_core_ml_sizes_differently_is_refused(tmp_path):
    m = graph_model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1], strides=[2, 2], ceil_mode=1, name="mp")],
                    {"x": (F32, [1, 1, 2, 2])}, {"y": F32})
    with pytest.raises(ToolchainRefused, match=r"MaxPool node 'mp': ceil_mode=1 here \(ONNX gives 1 outputs.*Core ML's rule 2\)"):
        build(m, tmp_path)


def test_reductions_softmax_norms(tmp_path):
    nodes = [helper.make_node("ReduceMean", ["x", "ax"], ["mean"], keepdims=1),
             helper.make_node("ReduceSum", ["x", "ax"], ["sum"], keepdims=0),
             helper.make_node("ReduceMax", ["x", "ax1"], ["max"], keepdims=0),
             helper.make_node("ReduceL2", ["x", "ax"], ["l2"], keepdims=1),
             helper.make_node("ArgMax", ["x"], ["am"], axis=2, keepdims=0),
             helper.make_node("Softmax", ["x"], ["sm"], axis=-1),
             helper.make_node("LogSoftmax", ["x"], ["lsm"], axis=1),
             helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5)]
    m = graph_model(nodes, {"x": (F32, ["batch", 4, 6])},
                    {"mean": F32, "sum": F32, "max": F32, "l2": F32, "am": np.int64, "sm": F32, "lsm": F32, "ln": F32},
                    {"ax": np.array([-1], np.int64), "ax1": np.array([1], np.int64), "g": _x(6), "b": _x(6)}, opset=18)
    info = compare_with_ort(m, _batches("x", 4, 6), tmp_path, atol=1e-5, rtol=1e-4)
    assert {"layer_norm", "softmax"} <= set(info["mil_ops"]), info["mil_ops"]


def test_dynamic_shape_arithmetic(tmp_path):
    """Shape → Gather → Concat → Reshape with a run-time batch (how exporters write view(b, -1))."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "zero1"], ["b1"]),
             helper.make_node("Concat", ["b1", "rest"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Unsqueeze", ["r", "zero1"], ["u"]),
             helper.make_node("Squeeze", ["u", "zero1"], ["sq"]),
             helper.make_node("Split", ["x", "sp"], ["p0", "p1"], axis=2),
             helper.make_node("Slice", ["x", "st", "en", "axs", "steps"], ["sl"]),
             helper.make_node("Expand", ["c", "s"], ["e"]),
             helper.make_node("Tile", ["x", "reps"], ["t"]),
             helper.make_node("Pad", ["x", "pads"], ["pd"], mode="constant"),
             helper.make_node("ConstantOfShape", ["s"], ["zeros"], value=helper.make_tensor("v", 1, [1], [2.5]))]
    m = graph_model(nodes, {"x": (F32, ["batch", 2, 6])},
                    {k: F32 for k in ("r", "f", "sq", "p0", "p1", "sl", "e", "t", "pd", "zeros")},
                    {"zero": np.array(0, np.int64), "zero1": np.array([0], np.int64), "rest": np.array([3, 4], np.int64),
                     "sp": np.array([2, 4], np.int64), "st": np.array([-1, 5], np.int64), "en": np.array([-9, 0], np.int64),
                     "axs": np.array([1, 2], np.int64), "steps": np.array([-1, -2], np.int64), "c": _x(1, 6),
                     "reps": np.array([1, 2, 1], np.int64), "pads": np.array([0, 0, 1, 0, 0, 2], np.int64)})
    compare_with_ort(m, _batches("x", 2, 6), tmp_path)


def test_range_and_runtime_slice(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["n"], axis=0),
             helper.make_node("Range", ["zero", "n", "one"], ["r"]),
             helper.make_node("Slice", ["x", "zero1", "n1", "one1"], ["sl"]),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"])]
    m = graph_model(nodes, {"x": (F32, ["batch", "sequence"])}, {"r": np.int64, "sl": F32},
                    {"zero": np.array(0, np.int64), "one": np.array(1, np.int64), "zero1": np.array([0], np.int64),
                     "one1": np.array([1], np.int64)})
    compare_with_ort(m, [{"x": _x(2, 5)}, {"x": _x(3, 7)}], tmp_path)


def test_gathers(tmp_path):
    nodes = [helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),                  # constant, negative indices
             helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),            # run-time indices (embedding)
             helper.make_node("GatherElements", ["x", "ge"], ["gel"], axis=2),
             helper.make_node("GatherND", ["x", "nd"], ["gnd"], batch_dims=1)]
    m = graph_model(nodes, {"x": (F32, [2, 3, 4]), "ids": (np.int64, [2, 5])}, {"g": F32, "emb": F32, "gel": F32, "gnd": F32},
                    {"idx": np.array([-1, 0], np.int64), "table": _x(10, 4), "ge": np.array(rng.integers(-4, 4, (2, 3, 2)), np.int64),
                     "nd": np.array([[[0, -1], [2, 3]], [[1, 1], [-3, 0]]], np.int64)})
    compare_with_ort(m, [{"x": _x(2, 3, 4), "ids": rng.integers(0, 10, (2, 5)).astype(np.int64)}], tmp_path)


def test_fp16_program_keeps_fp32_io(tmp_path):
    """An fp16 IR (as the precision stage writes it: Cast in, fp16 compute, Cast out) stays fp16
    inside and fp32 at the boundary; the evaluator computes the fp16 ops in fp16."""
    nodes = [helper.make_node("Cast", ["x"], ["h"], to=10),
             helper.make_node("MatMul", ["h", "w"], ["m"]),
             helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("Cast", ["r"], ["y"], to=1)]
    w = _x(6, 5)
    m = graph_model(nodes, {"x": (F32, ["batch", 6])}, {"y": F32}, {"w": w.astype(np.float16)})
    info = compare_with_ort(m, _batches("x", 6), tmp_path, atol=1e-2, rtol=1e-2)  # fp16 rounding: ~3 significant digits
    assert info["inputs"][0]["dtype"] == "fp32" and info["outputs"][0]["dtype"] == "fp32"
    assert info["mil_ops"].get("cast") == 2, info["mil_ops"]


def test_scalar_inputs_and_outputs(tmp_path):
    """Core ML has no rank-0 I/O: a scalar travels as shape (1,) and comes back as a scalar."""
    nodes = [helper.make_node("Mul", ["x", "s"], ["y"]), helper.make_node("ReduceSum", ["y"], ["total"], keepdims=0)]
    m = graph_model(nodes, {"x": (F32, ["batch", 3]), "s": (F32, [])}, {"y": F32, "total": F32})
    info = compare_with_ort(m, [{"x": _x(2, 3), "s": np.array(1.5, F32)}], tmp_path)
    assert info["inputs"][1]["scalar"] and info["outputs"][1]["scalar"]


def test_io_names_that_sanitize_alike_stay_distinct(tmp_path):
    nodes = [helper.make_node("Relu", ["a.b"], ["y.1"]), helper.make_node("Neg", ["a_b"], ["y_1"])]
    m = graph_model(nodes, {"a.b": (F32, ["batch", 3]), "a_b": (F32, ["batch", 3])}, {"y.1": F32, "y_1": F32})
    info = compare_with_ort(m, [{"a.b": _x(2, 3), "a_b": _x(2, 3)}], tmp_path)
    assert len({i["mil_name"] for i in info["inputs"]}) == 2 and len({o["mil_name"] for o in info["outputs"]}) == 2


def test_rank_beyond_five_is_refused_not_crashed(tmp_path):
    m = graph_model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], {"x": (F32, [2, 3, 4, 5])}, {"y": F32},
                    {"axes": np.array([0, 1], np.int64)})
    with pytest.raises(ToolchainRefused, match="coremltools refused the lowered program: .*rank <= 5"):
        build(m, tmp_path)


def test_unsupported_op_names_node_and_op(tmp_path):
    m = graph_model([helper.make_node("Det", ["x"], ["y"], name="the_det")], {"x": (F32, [3, 3])}, {"y": F32})
    with pytest.raises(ToolchainRefused, match=r"Core ML lowering: Det node 'the_det' \(ai.onnx::Det\) has no lowering"):
        build(m, tmp_path)


@pytest.mark.parametrize("exclusive, reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum_with_a_constant_axis(exclusive, reverse, tmp_path):
    """ONNX's own CumSum cases feed the axis as a graph input (refused by name); a model's is a
    constant."""
    m = graph_model([helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)],
                    {"x": (F32, ["batch", 4, 5])}, {"y": F32}, {"axis": np.array(-1, np.int64)})
    compare_with_ort(m, _batches("x", 4, 5), tmp_path, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("axis, largest", [(-1, 1), (1, 1), (-1, 0)])
def test_topk_with_a_constant_k(axis, largest, tmp_path):
    m = graph_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)],
                    {"x": (F32, ["batch", 4, 5])}, {"v": F32, "i": np.int64}, {"k": np.array([2], np.int64)})
    compare_with_ort(m, _batches("x", 4, 5), tmp_path, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("attrs, scales, sizes", stablehlo_families.RESIZES)
def test_resize_any_mode_with_constant_parameters(attrs, scales, sizes, tmp_path):
    """Every float Resize but crop-and-resize: one matmul per resized axis (batch dynamic)."""
    inits = {"roi": np.zeros(0, F32)}
    inits.update({"scales": np.array(scales, F32)} if scales else {"sizes": np.array(sizes, np.int64)})
    node = helper.make_node("Resize", ["x", "roi", "scales" if scales else "", "sizes" if sizes else ""], ["y"], **attrs)
    m = graph_model([node], {"x": (F32, [1 if sizes else "batch", 3, 6, 5])}, {"y": F32}, inits)
    feeds = [{"x": _x(1, 3, 6, 5)}] if sizes else _batches("x", 3, 6, 5)
    compare_with_ort(m, feeds, tmp_path, atol=1e-5, rtol=1e-5)


def test_attention_23_lowers_through_its_body(tmp_path):
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)
    m = graph_model([node], {"q": (F32, [2, 4, 6, 8]), "k": (F32, [2, 2, 6, 8]), "v": (F32, [2, 2, 6, 8])}, {"y": F32}, opset=23)
    compare_with_ort(m, [{"q": _x(2, 4, 6, 8), "k": _x(2, 2, 6, 8), "v": _x(2, 2, 6, 8)}], tmp_path, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype, fmod", [(np.int32, 0), (np.int32, 1), (F32, 1)])
def test_mod_signs(dtype, fmod, tmp_path):
    """fmod=0 takes the divisor's sign, fmod=1 the dividend's."""
    a = np.array([[-7, 7, -7, 7, 0, 5], [9, -9, 13, -13, 6, -1]], dtype)
    b = np.array([3, 3, -3, -3, 4, 2], dtype)
    if dtype == F32:
        a, b = a * 1.25, b * 0.75
    m = graph_model([helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)],
                    {"a": (dtype, [2, 6]), "b": (dtype, [6])}, {"y": dtype})
    compare_with_ort(m, [{"a": a, "b": b}], tmp_path, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("axis, exclusive, reverse", [(-1, 0, 0), (1, 1, 0), (-1, 0, 1), (0, 1, 1)])
def test_cumprod_with_a_constant_axis(axis, exclusive, reverse, tmp_path):
    """Opset 26's CumProd (ONNX's own cases feed the axis as a graph input)."""
    m = graph_model([helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)],
                    {"x": (F32, [3, 4, 5])}, {"y": F32}, {"axis": np.array(axis, np.int64)}, opset=26)
    x = _x(3, 4, 5)
    x[0, 0, 2] = np.inf  # a product through inf where the mask is off stays finite
    compare_with_ort(m, [{"x": x}], tmp_path, atol=1e-5, rtol=1e-5)
