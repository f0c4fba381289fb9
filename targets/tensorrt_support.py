"""What TensorRT's ONNX parser accepts, checked on a host without TensorRT.

Transcribed from the onnx-tensorrt operator support matrix (``docs/operators.md``) for the
TensorRT 10.x parser, default ``ai.onnx`` domain only: ops listed there as supported, with the
restrictions that matter for the graphs we produce. Contrib ops (``com.microsoft::*``) are not
parsed without plugins. Maintained by hand because no library ships this table; keep it to the
TensorRT version pinned in the jetson / x86-gpu profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir

SUPPORTED_OPS_TRT10 = frozenset("""
Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
BlackmanWindow Cast Ceil Celu Clip Compress Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike
Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool
Greater GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish
Hardmax Identity If InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LpNormalization LpPool LRN LSTM MatMul Max MaxPool Mean MeanVarianceNormalization Min
Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad PRelu Pow QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN RoiAlign Round Scan ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Types TensorRT has no tensors for (it has no fp64; strings and complex are not tensors there).
UNSUPPORTED_DTYPES = frozenset({ir.DataType.DOUBLE, ir.DataType.STRING, ir.DataType.COMPLEX64, ir.DataType.COMPLEX128})


@dataclass(frozen=True)
class Incompatibility:
    node: str
    op: str
    why: str

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.why}"


def check(model: ir.Model, trt_version: str = "10") -> list[Incompatibility]:
    """Every node of `model` that TensorRT's ONNX parser would reject, with the reason."""
    problems = []
    for node in model.graph.all_nodes() if hasattr(model.graph, "all_nodes") else model.graph:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        name = node.name or "(unnamed)"
        if node.domain not in ("", "ai.onnx"):
            problems.append(Incompatibility(name, op, f"domain {node.domain!r} is not parsed by TensorRT {trt_version} without a plugin"))
            continue
        if node.op_type not in SUPPORTED_OPS_TRT10:
            problems.append(Incompatibility(name, op, f"not in TensorRT {trt_version}'s ONNX operator support matrix"))
            continue
        for v in (*node.inputs, *node.outputs):
            if v is not None and v.dtype in UNSUPPORTED_DTYPES:
                problems.append(Incompatibility(name, op, f"tensor {v.name!r} has dtype {v.dtype.name}, which TensorRT does not support"))
                break
        if node.op_type == "Mod" and node.attributes.get("fmod") is not None and node.attributes["fmod"].as_int() == 0:
            out = node.outputs[0]
            if out.dtype is not None and out.dtype.is_floating_point():
                problems.append(Incompatibility(name, op, "floating-point Mod requires fmod=1 in TensorRT"))
    return problems
