"""Element-wise ONNX ops: arithmetic, comparisons, logic, activations, Cast, Where, Clip.

MIL's element-wise binary ops broadcast like numpy (and ONNX), so no explicit broadcast is
emitted. ONNX integer Div truncates towards zero where MIL's ``floor_div`` floors: the lowering
computes the truncated quotient from the magnitudes.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import DTYPES, const, dtype, lowering, mb, np_dtype, numpy_of, scalar, unsupported

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Pow": "pow",
           "Equal": "equal", "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
           "GreaterOrEqual": "greater_equal", "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}
_UNARY = {"Abs": "abs", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Tanh": "tanh", "Sigmoid": "sigmoid",
          "Relu": "relu", "Floor": "floor", "Ceil": "ceil", "Sign": "sign", "Sin": "sin", "Cos": "cos",
          "Erf": "erf", "Softplus": "softplus", "Not": "logical_not", "Softsign": "softsign",
          "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh"}


@lowering(*_BINARY, since=7)
def binary(ctx, node, ins, outs):
    a, b = ins
    if node.op_type == "Pow" and dtype(b) != dtype(a):  # ONNX allows an exponent of another type
        b = b.astype(np_dtype(dtype(a))) if isinstance(b, np.ndarray) else mb().cast(x=b, dtype=dtype(a))
    if node.op_type == "Pow" and (c := const(b)) is not None and c.size == 1 and float(c.ravel()[0]) == 2.0:
        return mb().mul(x=a, y=a)  # exact, and what Core ML runs fastest
    return getattr(mb(), _BINARY[node.op_type])(x=a, y=b)


@lowering("Div", since=7)
def div(ctx, node, ins, outs):
    a, b = ins
    if dtype(a).startswith("fp"):
        return mb().real_div(x=a, y=b)
    # ONNX truncates towards zero: sign(a)·sign(b)·floor(|a| / |b|)
    q = mb().floor_div(x=mb().abs(x=a), y=mb().abs(x=b))
    return mb().mul(x=q, y=mb().mul(x=mb().sign(x=a), y=mb().sign(x=b)))


@lowering("Max", "Min", "Sum", "Mean", since=6)
def variadic(ctx, node, ins, outs):
    name = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[node.op_type]
    acc = ins[0]
    for x in ins[1:]:
        acc = getattr(mb(), name)(x=acc, y=x)
    if node.op_type == "Mean":
        acc = mb().real_div(x=acc, y=scalar(len(ins), acc))
    elif len(ins) == 1:
        acc = mb().identity(x=acc)
    return acc


@lowering(*_UNARY, since=6)
def unary(ctx, node, ins, outs):
    return getattr(mb(), _UNARY[node.op_type])(x=ins[0])


@lowering("Reciprocal", since=6)
def reciprocal(ctx, node, ins, outs):
    return mb().real_div(x=scalar(1, ins[0]), y=ins[0])  # MIL's inverse adds epsilon=1e-4 to x


@lowering("Neg", since=6)
def neg(ctx, node, ins, outs):
    return mb().mul(x=ins[0], y=scalar(-1, ins[0]))


@lowering("Identity", "Dropout", since=1)
def identity(ctx, node, ins, outs):
    if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1].uses():
        raise unsupported(node, "Dropout's mask output")
    if node.op_type == "Dropout" and len(ins) > 2 and ins[2] is not None and (const(ins[2]) is None or const(ins[2]).any()):
        raise unsupported(node, "Dropout in training mode")  # random: an inference engine cannot reproduce it
    return mb().identity(x=ins[0])


@lowering("Cast", since=6)
def cast(ctx, node, ins, outs):
    to = outs[0].dtype
    if to not in DTYPES:
        raise unsupported(node, f"a cast to {to}")
    want = DTYPES[to][0]
    if dtype(ins[0]) == want:
        return mb().identity(x=ins[0])
    return mb().cast(x=ins[0], dtype=want)


@lowering("Where", since=9)
def where(ctx, node, ins, outs):
    cond, a, b = ins
    if not _covers([_raw_shape(a), _raw_shape(b)], _raw_shape(cond)):
        # coremltools types select's output from a and b only (cond's shape is ignored, though the
        # MIL spec broadcasts all three): bring `a` to cond's shape first so the type is right
        a = mb().add(x=a, y=mb().mul(x=mb().cast(x=cond, dtype=dtype(a)), y=scalar(0, a)))
    return mb().select(cond=cond, a=a, b=b)


def _raw_shape(x) -> tuple:
    return tuple(x.shape)


def _covers(shapes: list[tuple], target: tuple) -> bool:
    """Does the broadcast of `shapes` already have every dim of `target`?"""
    r = max(len(s) for s in shapes)
    if len(target) > r:
        return False
    for i in range(1, len(target) + 1):
        t = target[-i]
        dims = [s[-i] for s in shapes if len(s) >= i]
        if not (isinstance(t, (int, np.integer)) and t == 1) and all(d != t for d in dims):
            return False
    return True


@lowering("IsNaN", since=9)
def isnan(ctx, node, ins, outs):
    return mb().not_equal(x=ins[0], y=ins[0])  # NaN is the only value unequal to itself


@lowering("IsInf", since=10)
def isinf(ctx, node, ins, outs):
    x = ins[0]
    pos = mb().equal(x=x, y=scalar(np.inf, x))
    neg_ = mb().equal(x=x, y=scalar(-np.inf, x))
    detect_pos = node.attributes.get_int("detect_positive", 1)
    detect_neg = node.attributes.get_int("detect_negative", 1)
    if detect_pos and detect_neg:
        return mb().logical_or(x=pos, y=neg_)
    if detect_pos:
        return pos
    if detect_neg:
        return neg_
    return mb().logical_and(x=pos, y=neg_)  # always false, of the right shape


@lowering("Clip", since=11)
def clip(ctx, node, ins, outs):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    if dtype(x).startswith("fp") and (lo is None or const(lo) is not None) and (hi is None or const(hi) is not None):
        a = float(const(lo)) if lo is not None else -np.inf
        b = float(const(hi)) if hi is not None else np.inf
        if a == 0.0 and b == 6.0:
            return mb().relu6(x=x)
        if a == 0.0 and b == np.inf:
            return mb().relu(x=x)
        return mb().clip(x=x, alpha=scalar(a, x), beta=scalar(b, x))
    y = x
    if lo is not None:
        y = mb().maximum(x=y, y=lo)
    if hi is not None:
        y = mb().minimum(x=y, y=hi)
    return y if y is not x else mb().identity(x=x)


@lowering("LeakyRelu", since=6)
def leaky_relu(ctx, node, ins, outs):
    return mb().leaky_relu(x=ins[0], alpha=node.attributes.get_float("alpha", 0.01))


@lowering("Elu", since=6)
def elu(ctx, node, ins, outs):
    return mb().elu(x=ins[0], alpha=node.attributes.get_float("alpha", 1.0))


@lowering("HardSigmoid", since=6)
def hard_sigmoid(ctx, node, ins, outs):
    return mb().sigmoid_hard(x=ins[0], alpha=node.attributes.get_float("alpha", 0.2), beta=node.attributes.get_float("beta", 0.5))


@lowering("HardSwish", since=14)
def hard_swish(ctx, node, ins, outs):
    return mb().mul(x=ins[0], y=mb().sigmoid_hard(x=ins[0], alpha=1.0 / 6, beta=0.5))


@lowering("PRelu", since=9)
def prelu(ctx, node, ins, outs):
    x, slope = ins
    return mb().select(cond=mb().greater_equal(x=x, y=scalar(0, x)), a=x, b=mb().mul(x=x, y=slope))


@lowering("Gelu", since=20)
def gelu(ctx, node, ins, outs):
    mode = {"none": "EXACT", "tanh": "TANH_APPROXIMATION"}[node.attributes.get_string("approximate", "none")]
    return mb().gelu(x=ins[0], mode=mode)


@lowering("Constant", since=1)
def constant(ctx, node, ins, outs):
    return numpy_of(onnx_attrs.constant_value(node))


@lowering("ThresholdedRelu", since=10)
def thresholded_relu(ctx, node, ins, outs):
    x = ins[0]
    alpha = scalar(node.attributes.get_float("alpha", 1.0), x)
    return mb().select(cond=mb().greater(x=x, y=alpha), a=x, b=mb().mul(x=x, y=scalar(0.0, x)))


@lowering("Asinh", since=9)
def asinh(ctx, node, ins, outs):
    """sign(x)·log(|x| + √(x² + 1)): MIL has no asinh; the magnitude form stays exact for large
    negative x."""
    x = ins[0]
    a = mb().abs(x=x)
    r = mb().log(x=mb().add(x=a, y=mb().sqrt(x=mb().add(x=mb().mul(x=a, y=a), y=scalar(1.0, x)))))
    return mb().mul(x=mb().sign(x=x), y=r)


@lowering("Mod", since=10)
def mod(ctx, node, ins, outs):
    """MIL's mod is the floor modulus (the sign of the divisor): ONNX fmod=0. fmod=1 (the sign of
    the dividend, C's fmod): the divisor taken back where the two signs differ."""
    a, b = ins
    m = mb().mod(x=a, y=b)
    if not node.attributes.get_int("fmod", 0):
        return m
    zero = scalar(0, m)
    fix = mb().logical_and(x=mb().not_equal(x=m, y=zero),
                           y=mb().logical_xor(x=mb().less(x=m, y=zero), y=mb().less(x=a, y=scalar(0, m))))
    return mb().sub(x=m, y=mb().mul(x=b, y=mb().cast(x=fix, dtype=dtype(m))))
