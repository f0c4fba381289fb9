"""Element-wise ONNX ops: arithmetic, comparisons, logic, activations, Cast, Where, Clip."""

from __future__ import annotations

import numpy as np

from targets.stablehlo.emit import FLOATS, NUMPY, Emitter, T, broadcast_shape, lowering, unsupported

_BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide", "Pow": "power",
           "And": "and", "Or": "or", "Xor": "xor", "BitwiseAnd": "and", "BitwiseOr": "or"}
_COMPARE = {"Equal": "EQ", "Less": "LT", "LessOrEqual": "LE", "Greater": "GT", "GreaterOrEqual": "GE"}
_UNARY = {"Neg": "negate", "Abs": "abs", "Exp": "exponential", "Log": "log", "Sqrt": "sqrt", "Tanh": "tanh",
          "Sigmoid": "logistic", "Floor": "floor", "Sign": "sign", "Not": "not",
          "Sin": "sine", "Cos": "cosine", "Round": "round_nearest_even"}


@lowering(*_BINARY, since=7)
def binary(e: Emitter, node, ins, outs):
    a, b = ins
    if node.op_type == "Div" and a.type.dtype not in FLOATS:
        raise unsupported(node, "integer Div")  # ONNX truncates, StableHLO divide on ints too, but TFLite FLOOR_DIV differs
    if node.op_type == "Xor":  # booleans only; TFLite has no LOGICAL_XOR, NOT_EQUAL is the same
        return e.compare("NE", a, b)
    if node.op_type == "Pow" and b.type.dtype != a.type.dtype:
        b = e.convert(b, a.type.dtype)
    if node.op_type == "Pow" and b.const is not None and b.const.size == 1 and float(b.const.ravel()[0]) == 2.0:
        return e.binary("multiply", a, a)  # TFLite's POW is slower and less exact than a square
    return e.binary(_BINARY[node.op_type], a, b)


@lowering(*_COMPARE, since=7)
def compare(e: Emitter, node, ins, outs):
    return e.compare(_COMPARE[node.op_type], ins[0], ins[1])


@lowering("Max", "Min", "Sum", "Mean", since=6)
def variadic(e: Emitter, node, ins, outs):
    name = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[node.op_type]
    acc = ins[0]
    for x in ins[1:]:
        acc = e.binary(name, acc, x)
    if node.op_type == "Mean":
        acc = e.binary("divide", acc, e.scalar(len(ins), acc.type.dtype))
    return acc


@lowering(*_UNARY, since=6)
def unary(e: Emitter, node, ins, outs):
    return e.unary(_UNARY[node.op_type], ins[0])


@lowering("Ceil", since=6)
def ceil(e: Emitter, node, ins, outs):
    # −floor(−x): LiteRT's kernels have no CEIL v1, the op stablehlo.ceil becomes
    return e.unary("negate", e.unary("floor", e.unary("negate", ins[0])))


@lowering("Asin", "Asinh", "Cosh", since=7)
def chlo_unary(e: Emitter, node, ins, outs):
    x = ins[0]
    if node.op_type == "Cosh":  # (eˣ + e⁻ˣ) / 2
        return e.binary("multiply", e.binary("add", e.unary("exponential", x), e.unary("exponential", e.unary("negate", x))),
                        e.scalar(0.5, x.type.dtype))
    if node.op_type == "Asinh":  # sign(x)·log(|x| + √(x² + 1)), exact for large negative x too
        a = e.unary("abs", x)
        r = e.unary("log", e.binary("add", a, e.unary("sqrt", e.binary("add", e.binary("multiply", a, a),
                                                                       e.scalar(1.0, x.type.dtype)))))
        return e.binary("multiply", e.unary("sign", x), r)
    # asin(x) = atan2(x, √(1 − x²))
    c = e.unary("sqrt", e.binary("subtract", e.scalar(1.0, x.type.dtype), e.binary("multiply", x, x)))
    return e.binary("atan2", x, c)


@lowering("PRelu", since=9)
def prelu(e: Emitter, node, ins, outs):
    x, slope = ins
    zero = e.scalar(0.0, x.type.dtype)
    return e.binary("add", e.binary("maximum", x, zero), e.binary("multiply", slope, e.binary("minimum", x, zero)))


@lowering("ThresholdedRelu", since=10)
def thresholded_relu(e: Emitter, node, ins, outs):
    x = ins[0]
    alpha = e.scalar(node.attributes.get_float("alpha", 1.0), x.type.dtype)
    mask = e.compare("GT", x, alpha)
    return e.op("stablehlo.select", [mask, x, e.binary("multiply", x, e.scalar(0.0, x.type.dtype))], x.type)


@lowering("Reciprocal", since=6)
def reciprocal(e: Emitter, node, ins, outs):
    return e.binary("divide", e.scalar(1.0, ins[0].type.dtype), ins[0])


@lowering("Identity", "Dropout", since=1)
def identity(e: Emitter, node, ins, outs):
    if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1].uses():
        raise unsupported(node, "Dropout's mask output")
    return [ins[0]] + [e.const(np.ones([d or 1 for d in t.shape], bool), "i1") for t in outs[1:]]


@lowering("Relu", since=6)
def relu(e: Emitter, node, ins, outs):
    return e.binary("maximum", ins[0], e.scalar(0, ins[0].type.dtype))


@lowering("LeakyRelu", since=6)
def leaky_relu(e: Emitter, node, ins, outs):
    x = ins[0]
    alpha = node.attributes.get_float("alpha", 0.01)
    return e.binary("maximum", x, e.binary("multiply", x, e.scalar(alpha, x.type.dtype)))  # alpha < 1


@lowering("Clip", since=11)
def clip(e: Emitter, node, ins, outs):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    if lo is not None:
        x = e.binary("maximum", x, lo)
    if hi is not None:
        x = e.binary("minimum", x, hi)
    return x


@lowering("HardSigmoid", since=6)
def hard_sigmoid(e: Emitter, node, ins, outs):
    x = ins[0]
    alpha, beta = node.attributes.get_float("alpha", 0.2), node.attributes.get_float("beta", 0.5)
    y = e.binary("add", e.binary("multiply", x, e.scalar(alpha, x.type.dtype)), e.scalar(beta, x.type.dtype))
    return e.binary("minimum", e.binary("maximum", y, e.scalar(0.0, x.type.dtype)), e.scalar(1.0, x.type.dtype))


@lowering("HardSwish", since=14)
def hard_swish(e: Emitter, node, ins, outs):
    x = ins[0]
    y = e.binary("add", e.binary("multiply", x, e.scalar(1 / 6, x.type.dtype)), e.scalar(0.5, x.type.dtype))
    y = e.binary("minimum", e.binary("maximum", y, e.scalar(0.0, x.type.dtype)), e.scalar(1.0, x.type.dtype))
    return e.binary("multiply", x, y)


@lowering("Softplus", since=1)
def softplus(e: Emitter, node, ins, outs):
    x = ins[0]
    return e.unary("log_plus_one", e.unary("exponential", x))


@lowering("Erf", since=9)
def erf(e: Emitter, node, ins, outs):
    return e.op("chlo.erf", [ins[0]], ins[0].type)


@lowering("Gelu", since=20)
def gelu(e: Emitter, node, ins, outs):
    x = ins[0]
    dt = x.type.dtype
    if node.attributes.get_string("approximate", "none") == "tanh":
        inner = e.binary("multiply", e.binary("add", x, e.binary("multiply", e.binary("multiply", e.binary("multiply", x, x), x),
                                                                  e.scalar(0.044715, dt))), e.scalar(np.sqrt(2 / np.pi), dt))
        t = e.unary("tanh", inner)
    else:
        t = e.op("chlo.erf", [e.binary("multiply", x, e.scalar(1 / np.sqrt(2), dt))], x.type)
    return e.binary("multiply", e.binary("multiply", x, e.scalar(0.5, dt)), e.binary("add", t, e.scalar(1.0, dt)))


@lowering("IsNaN", since=9)
def isnan(e: Emitter, node, ins, outs):
    return e.compare("NE", ins[0], ins[0])


@lowering("IsInf", since=10)
def isinf(e: Emitter, node, ins, outs):
    x = ins[0]
    pos, neg = node.attributes.get_int("detect_positive", 1), node.attributes.get_int("detect_negative", 1)
    # beyond the largest finite value, not "== inf": litert-converter canonicalizes inf constants
    # to ±FLT_MAX (canonicalizing_inf_as_min_max_float), which made `x == inf` false for inf
    big = float(np.finfo(NUMPY[x.type.dtype]).max)
    a = e.compare("GT", x, e.scalar(big, x.type.dtype))
    b = e.compare("LT", x, e.scalar(-big, x.type.dtype))
    if pos and neg:
        return e.binary("or", a, b)
    return a if pos else b if neg else e.binary("and", a, e.unary("not", a))


@lowering("Where", since=9)
def where(e: Emitter, node, ins, outs):
    c, a, b = ins
    shape = broadcast_shape(broadcast_shape(c.type.shape, a.type.shape), b.type.shape)
    sv = None if all(d is not None for d in shape) else e.broadcast_shape_val([c, a, b], len(shape))
    return e.op("stablehlo.select", [e.broadcast_to(c, shape, sv), e.broadcast_to(a, shape, sv), e.broadcast_to(b, shape, sv)],
                T(shape, a.type.dtype))


@lowering("Cast", since=6)
def cast(e: Emitter, node, ins, outs):
    x, want = ins[0], outs[0].dtype
    if want == "i1" and x.type.dtype != "i1":  # ONNX: non-zero is true; StableHLO convert agrees
        return e.compare("NE", x, e.scalar(0, x.type.dtype))
    return e.convert(x, want)


@lowering("CastLike", since=15)
def cast_like(e: Emitter, node, ins, outs):
    return cast(e, node, ins[:1], outs)



@lowering("Mod", since=10)
def mod(e: Emitter, node, ins, outs):
    """litert-converter turns StableHLO's remainder into TFLite's FLOOR_MOD (the sign of the
    divisor, measured): ONNX fmod=0. fmod=1 (the dividend's sign, C's fmod): the divisor taken
    back where the two signs differ."""
    a, b = ins
    m = e.binary("remainder", a, b)
    if not node.attributes.get_int("fmod", 0) or a.type.dtype.startswith("ui"):
        return m
    zero = e.scalar(0, a.type.dtype)
    signs_differ = e.compare("NE", e.compare("LT", m, zero), e.compare("LT", a, zero))  # TFLite has no LOGICAL_XOR
    fix = e.binary("and", e.compare("NE", m, zero), signs_differ)
    return e.binary("subtract", m, e.binary("multiply", b, e.convert(fix, a.type.dtype)))
