"""Each op family's lowering, through litert-converter and the LiteRT Interpreter (XNNPACK and
reference kernels), against ONNX Runtime on the same inputs — at two batch sizes, because dims
stay dynamic in the lowering."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.errors import ToolchainRefused
from tests.targets.stablehlo.helpers import compare_with_ort, graph_model, to_tflite

F32 = np.float32
rng = np.random.default_rng(0)


def _x(*shape):
    return rng.standard_normal(shape).astype(F32)


def _batches(name, *rest):
    return [{name: _x(1, *rest)}, {name: _x(3, *rest)}]


ELEMENTWISE = ["Add", "Sub", "Mul", "Div", "Max", "Min"]


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_binary_broadcasting(op, tmp_path):
    m = graph_model([helper.make_node(op, ["x", "c"], ["y"])], {"x": (F32, ["batch", 4, 5])}, {"y": F32},
                    {"c": (_x(4, 1) + (3 if op == "Div" else 0)).astype(F32)})
    compare_with_ort(m, _batches("x", 4, 5), tmp_path)


@pytest.mark.parametrize("op,attrs", [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Neg", {}), ("Abs", {}),
                                      ("Erf", {}), ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("HardSwish", {}),
                                      ("HardSigmoid", {}), ("LeakyRelu", {"alpha": 0.1}), ("Softplus", {})])
def test_unary(op, attrs, tmp_path):
    m = graph_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": (F32, ["batch", 6])}, {"y": F32}, opset=20)
    compare_with_ort(m, _batches("x", 6), tmp_path, atol=2e-5)


def test_clip_where_compare_cast(tmp_path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Greater", ["x", "zero"], ["p"]),
             helper.make_node("Where", ["p", "c", "zero"], ["w"]),
             helper.make_node("IsNaN", ["w"], ["n"]),
             helper.make_node("Cast", ["n"], ["y_int"], to=7),
             helper.make_node("Cast", ["p"], ["y_f"], to=1)]
    m = graph_model(nodes, {"x": (F32, ["batch", 5])}, {"w": F32, "y_int": np.int64, "y_f": F32},
                    {"lo": np.array(-0.5, F32), "hi": np.array(0.5, F32), "zero": np.array(0, F32)})
    compare_with_ort(m, _batches("x", 5), tmp_path)


@pytest.mark.parametrize("group,pads,strides", [(1, [1, 1, 1, 1], [1, 1]), (4, [0, 1, 0, 1], [2, 2]), (2, [0, 0, 0, 0], [1, 2])])
def test_conv(group, pads, strides, tmp_path):
    w = _x(8, 4 // group, 3, 3)
    m = graph_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=pads, strides=strides)],
                    {"x": (F32, ["batch", 4, 9, 9])}, {"y": F32}, {"w": w, "b": _x(8)})
    compare_with_ort(m, _batches("x", 4, 9, 9), tmp_path, atol=1e-4)


def test_pooling(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["b"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["x"], ["c"]),
             helper.make_node("ReduceMean", ["x", "axes"], ["d"], keepdims=1)]
    m = graph_model(nodes, {"x": (F32, ["batch", 3, 8, 8])}, {"a": F32, "b": F32, "c": F32, "d": F32},
                    {"axes": np.array([2, 3], np.int64)})
    compare_with_ort(m, _batches("x", 3, 8, 8), tmp_path)


def test_matmul_gemm(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),                  # [b, s, 6] · [6, 5]
             helper.make_node("MatMul", ["x", "xt"], ["bm"]),                # batched, both dynamic
             helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("Reshape", ["x", "flat"], ["x2"]),
             helper.make_node("Gemm", ["x2", "w2", "c"], ["g"], transB=1, alpha=0.5),
             helper.make_node("Gemm", ["x2", "w2", "c"], ["fc"], transB=1)]  # → FULLY_CONNECTED with bias
    m = graph_model(nodes, {"x": (F32, ["batch", 4, 6])}, {"m": F32, "bm": F32, "g": F32, "fc": F32},
                    {"w": _x(6, 5), "flat": np.array([-1, 24], np.int64), "w2": _x(3, 24), "c": _x(3)})
    m.graph.node.insert(1, m.graph.node.pop(2))  # Transpose before its use
    compare_with_ort(m, _batches("x", 4, 6), tmp_path, atol=1e-4)


def test_softmax_layernorm(tmp_path):
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1),
             helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5)]
    m = graph_model(nodes, {"x": (F32, ["batch", "seq", 8])}, {"s": F32, "ln": F32}, {"g": _x(8), "b": _x(8)})
    compare_with_ort(m, [{"x": _x(1, 3, 8)}, {"x": _x(2, 5, 8)}], tmp_path, atol=1e-5)


def test_shape_ops_dynamic(tmp_path):
    """A dynamic-batch export's shape arithmetic: Shape → Gather → Unsqueeze → Concat → Reshape,
    plus Slice, Squeeze, Expand, Range and an embedding Gather."""
    nodes = [helper.make_node("Shape", ["x"], ["shp"]),
             helper.make_node("Gather", ["shp", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
             helper.make_node("Concat", ["b1", "minus1"], ["tgt"], axis=0),
             helper.make_node("Reshape", ["x", "tgt"], ["flat"]),
             helper.make_node("Slice", ["x", "s0", "s1", "ax2"], ["sl"]),
             helper.make_node("Range", ["zero_s", "b", "one_s"], ["r"]),
             helper.make_node("Expand", ["col", "shp"], ["ex"]),
             helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
             # two dynamic inputs + a Gather: litert-converter 0.5.0 wrote a literal 0 into the
             # indices' new shape unless the index-vector dim is explicit (shape.gather)
             helper.make_node("Squeeze", ["emb", "ax2"], ["sq"])]
    m = graph_model(nodes, {"x": (F32, ["batch", 3, 4]), "ids": (np.int64, ["batch", 1])},
                    {"flat": F32, "sl": F32, "r": np.int64, "ex": F32, "emb": F32, "sq": F32},
                    {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64),
                     "s0": np.array([1], np.int64), "s1": np.array([100], np.int64), "ax2": np.array([1], np.int64),
                     "zero_s": np.array(0, np.int64), "one_s": np.array(1, np.int64), "col": _x(3, 1),
                     "table": _x(10, 7)})
    feeds = [{"x": _x(n, 3, 4), "ids": rng.integers(0, 10, (n, 1))} for n in (1, 4)]
    compare_with_ort(m, feeds, tmp_path)


def test_unsupported_op_names_node_and_op(tmp_path):
    m = graph_model([helper.make_node("Det", ["x"], ["y"], name="the_det")], {"x": (F32, [3, 3])}, {"y": F32})
    with pytest.raises(ToolchainRefused) as e:
        to_tflite(m, tmp_path)
    msg = str(e.value)
    assert "Det" in msg and "'the_det'" in msg and "has no lowering" in msg and "targets --ops" in msg
    assert "Conv" not in msg and len(msg) < 300  # one line, without the catalogue of every lowered op


def test_unsupported_form_names_what(tmp_path):
    m = graph_model([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect", name="refl")], {"x": (F32, [1, 3, 4])},
                    {"y": F32}, {"p": np.array([0, 0, 1, 0, 0, 1], np.int64)})
    with pytest.raises(ToolchainRefused, match=r"Pad node 'refl': mode='reflect' is not supported"):
        to_tflite(m, tmp_path)


def test_converter_refusal_is_reported_as_the_toolchains():
    """What litert-converter cannot turn into TFLite ops (here a Cholesky) surfaces as the
    runtime error the pipeline's toolchain_step reports as exit 2, not as our crash."""
    from compiler.errors import is_toolchain_exception
    from targets.stablehlo import litert

    text = ('module { func.func @main(%x: tensor<3x3xf32>) -> (tensor<3x3xf32>) {\n'
            '%0 = "stablehlo.cholesky"(%x) {lower = true} : (tensor<3x3xf32>) -> tensor<3x3xf32>\n'
            '"func.return"(%0) : (tensor<3x3xf32>) -> () } }')
    with pytest.raises(RuntimeError, match="litert-converter") as e:
        litert.convert(text, ["x"], ["y"], False)
    assert is_toolchain_exception(e.value)


@pytest.mark.parametrize("exclusive, reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum_with_a_constant_axis(exclusive, reverse, tmp_path):
    """ONNX's own CumSum cases feed the axis as a graph input (refused by name); a model's is a constant."""
    m = graph_model([helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)],
                    {"x": (F32, ["batch", 4, 5])}, {"y": F32}, {"axis": np.array(-1, np.int64)})
    compare_with_ort(m, _batches("x", 4, 5), tmp_path, atol=1e-5)


@pytest.mark.parametrize("axis, largest", [(-1, 1), (1, 1), (-1, 0), (0, 0)])
def test_topk_with_a_constant_k(axis, largest, tmp_path):
    """Values and indices against ORT (ONNX's own TopK cases feed K as a graph input)."""
    m = graph_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)],
                    {"x": (F32, [3, 4, 5])}, {"v": F32, "i": np.int64}, {"k": np.array([2], np.int64)})
    compare_with_ort(m, [{"x": _x(3, 4, 5)}], tmp_path, atol=1e-6)


RESIZES = [  # (attributes, scales or None, sizes or None): what exporters write, with constant parameters
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, [1, 1, 2, 2], None),  # F.interpolate bilinear
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None, [1, 3, 9, 7]),
    ({"mode": "cubic", "coordinate_transformation_mode": "pytorch_half_pixel", "cubic_coeff_a": -0.75}, [1, 1, 1.5, 2], None),
    ({"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.6], None),  # antialiased downscale
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, [1, 1, 1.5, 0.5], None),
]


@pytest.mark.parametrize("attrs, scales, sizes", RESIZES)
def test_resize_any_mode_with_constant_parameters(attrs, scales, sizes, tmp_path):
    """Every float Resize but crop-and-resize lowers as one matrix product per resized axis; the
    batch dim stays dynamic. ONNX's own Resize cases feed scales/sizes as graph inputs (refused)."""
    inits = {"roi": np.zeros(0, F32)}
    inits.update({"scales": np.array(scales, F32)} if scales else {"sizes": np.array(sizes, np.int64)})
    node = helper.make_node("Resize", ["x", "roi", "scales" if scales else "", "sizes" if sizes else ""], ["y"], **attrs)
    m = graph_model([node], {"x": (F32, [1 if sizes else "batch", 3, 6, 5])}, {"y": F32}, inits)
    if sizes:  # sizes name the batch too: a static one
        compare_with_ort(m, [{"x": _x(1, 3, 6, 5)}], tmp_path, atol=1e-5)
    else:
        compare_with_ort(m, _batches("x", 3, 6, 5), tmp_path, atol=1e-5)


@pytest.mark.parametrize("op, attrs, opset", [("Mish", {}, 22), ("RMSNormalization", {"axis": -1}, 23),
                                               ("HardSwish", {}, 22)])
def test_an_op_onnx_defines_as_a_function_lowers_through_its_body(op, attrs, opset, tmp_path):
    """No rule for these: `targets.expand` inlines ONNX's own function body before lowering."""
    ins = ["x", "scale"] if op == "RMSNormalization" else ["x"]
    inits = {"scale": _x(5)} if op == "RMSNormalization" else {}
    m = graph_model([helper.make_node(op, ins, ["y"], **attrs)], {"x": (F32, ["batch", 4, 5])}, {"y": F32}, inits, opset=opset)
    compare_with_ort(m, _batches("x", 4, 5), tmp_path, atol=1e-5)


def test_attention_23_lowers_through_its_body(tmp_path):
    """Opset 23's Attention (causal, grouped-query) expands to MatMul/Softmax the lowering has."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)
    m = graph_model([node], {"q": (F32, [2, 4, 6, 8]), "k": (F32, [2, 2, 6, 8]), "v": (F32, [2, 2, 6, 8])}, {"y": F32}, opset=23)
    compare_with_ort(m, [{"q": _x(2, 4, 6, 8), "k": _x(2, 2, 6, 8), "v": _x(2, 2, 6, 8)}], tmp_path, atol=1e-5)


@pytest.mark.parametrize("dtype, fmod", [(np.int32, 0), (np.int64, 0), (np.int32, 1), (F32, 1)])
def test_mod_signs(dtype, fmod, tmp_path):
    """fmod=0 takes the divisor's sign, fmod=1 the dividend's (ONNX's Mod cases are opset 28)."""
    a = np.array([[-7, 7, -7, 7, 0, 5], [9, -9, 13, -13, 6, -1]], dtype)
    b = np.array([3, 3, -3, -3, 4, 2], dtype)
    if dtype == F32:
        a, b = a * 1.25, b * 0.75
    m = graph_model([helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)],
                    {"a": (dtype, [2, 6]), "b": (dtype, [6])}, {"y": dtype})
    compare_with_ort(m, [{"a": a, "b": b}], tmp_path, atol=1e-6)


@pytest.mark.parametrize("axis, exclusive, reverse", [(-1, 0, 0), (1, 1, 0), (-1, 0, 1), (0, 1, 1)])
def test_cumprod_with_a_constant_axis(axis, exclusive, reverse, tmp_path):
    """Opset 26's CumProd (ONNX's own cases feed the axis as a graph input)."""
    m = graph_model([helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)],
                    {"x": (F32, [3, 4, 5])}, {"y": F32}, {"axis": np.array(axis, np.int64)}, opset=26)
    x = _x(3, 4, 5)
    x[0, 0, 2] = np.inf  # a product through inf where the mask is off stays finite
    compare_with_ort(m, [{"x": x}], tmp_path, atol=1e-5, rtol=1e-5)
