"""ONNX operator semantics both hand-written lowerings read (StableHLO for TFLite, MIL for Core ML).

Why here and by hand: what an attribute or an optional input means is ONNX's, not a target's —
defaults, negative axes, lists that moved from an attribute to an input in a later opset
(ReduceX axes, Squeeze/Unsqueeze axes, Split sizes), conv/pool windows with ``auto_pad``, Slice's
index clamping, Pad's begins-then-ends layout. Written once, a fix reaches both backends. Nothing
here emits a backend op: a helper reads compile-time constants through the rule's `ctx`
(``ctx.constant_of``) and refuses with `Refused`, which the driver names with the backend and node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
import onnx_ir as ir

from targets.lowering import Refused


def normalize(axis: int, rank: int) -> int:
    """An axis counted from the end when negative, checked against `rank`."""
    if not -rank <= axis < rank:
        raise Refused(f"axis {axis} for rank {rank}")
    return axis + rank if axis < 0 else axis


def axis(node: ir.Node, rank: int, default: int | None = 0) -> int:
    """The node's ``axis`` attribute, normalized."""
    a = node.attributes.get_int("axis", default)
    if a is None:
        raise Refused("a missing axis attribute")
    return normalize(a, rank)


def flatten_axis(node: ir.Node, rank: int) -> int:
    """Flatten's split point in [0, rank]; a negative ``axis`` counts from the end (−1: before the last dim)."""
    a = node.attributes.get_int("axis", 1)
    if not -rank <= a <= rank:
        raise Refused(f"axis {a} for rank {rank}")
    return a + rank if a < 0 else a


def optional(ins: Sequence[Any], index: int) -> Any:
    """Input `index`; None past the node's last input (the driver gives None for an omitted one)."""
    return ins[index] if len(ins) > index else None


def const_array(ctx, x: Any, what: str) -> np.ndarray:
    """The value of an input that must be known when lowering."""
    c = ctx.constant_of(x)
    if c is None:
        raise Refused(f"{what} computed at run time")
    return np.asarray(c)


def const_ints(ctx, x: Any, what: str) -> list[int] | None:
    """The values of an optional integer input that must be known when lowering; None when omitted."""
    return None if x is None else [int(v) for v in const_array(ctx, x, what).ravel()]


def input_or_attr(ctx, node: ir.Node, ins: Sequence[Any], index: int, name: str = "axes",
                  what: str = "axes") -> list[int] | None:
    """A list ONNX takes as input `index` in newer opsets and as attribute `name` in older ones
    (axes of ReduceSum from 13 and the other ReduceX from 18, of Squeeze/Unsqueeze from 13, Split's
    sizes from 13); None when given neither way."""
    given = const_ints(ctx, optional(ins, index), what)
    if given is not None:
        return given
    return list(node.attributes.get_ints(name)) if name in node.attributes else None


def reduce_axes(ctx, node: ir.Node, ins: Sequence[Any], rank: int) -> list[int] | None:
    """The axes a ReduceX node reduces, sorted and non-negative: all of them when none are given,
    None (the node is an identity) when none are given and ``noop_with_empty_axes=1``."""
    axes = input_or_attr(ctx, node, ins, 1)
    if not axes:
        return None if node.attributes.get_int("noop_with_empty_axes", 0) else list(range(rank))
    return sorted(normalize(a, rank) for a in axes)


def squeeze_axes(ctx, node: ir.Node, ins: Sequence[Any], shape: Sequence[int | None]) -> list[int]:
    """Squeeze's axes, sorted and non-negative; without any, every dim known to be 1."""
    axes = input_or_attr(ctx, node, ins, 1)
    if not axes:
        if any(d is None for d in shape):  # which dims are 1 is known only at run time
            raise Refused("no axes on an input whose dims are known only at run time")
        return [i for i, d in enumerate(shape) if d == 1]
    return sorted(normalize(a, len(shape)) for a in axes)


def unsqueeze_axes(ctx, node: ir.Node, ins: Sequence[Any], rank: int) -> list[int]:
    """Unsqueeze's axes, sorted, counted in the output's rank."""
    axes = input_or_attr(ctx, node, ins, 1) or []
    return sorted(normalize(a, rank + len(axes)) for a in axes)


def split_sizes(ctx, node: ir.Node, ins: Sequence[Any], dim: int | None, outputs: int) -> list[int] | None:
    """Split's piece sizes along its axis: given (input from opset 13, attribute before), else
    ``num_outputs`` (18+) or one per output, equal but the last smaller (ONNX's reference); None
    for an even split of a dim unknown until run time."""
    sizes = input_or_attr(ctx, node, ins, 1, "split", "split sizes")
    if sizes:
        return sizes
    n = node.attributes.get_int("num_outputs", outputs)
    if dim is None:
        return None
    chunk = -(-dim // n)
    last = dim - chunk * (n - 1)
    if last < 0:
        raise Refused(f"a split of {dim} into {n} pieces")
    return [chunk] * (n - 1) + [last]


def slice_axes(ctx, node: ir.Node, ins: Sequence[Any], rank: int, count: int | None) -> tuple[list[int], list[int]]:
    """Slice's (opset 10+) axes, non-negative, and steps; `count` is how many starts there are."""
    axes = const_ints(ctx, optional(ins, 3), "axes")
    if axes is None:
        if count is None:
            raise Refused("starts of unknown length without axes")
        axes = list(range(count))
    steps = const_ints(ctx, optional(ins, 4), "steps") or [1] * len(axes)
    if 0 in steps:
        raise Refused("a step of 0")
    return [normalize(a, rank) for a in axes], steps


def slice_index(v: int, dim: int, step: int, end: bool) -> int:
    """ONNX Slice's rule for a start (`end` False) or end on a dim of known size: a negative one
    counts from the end, then a start is clamped into [0, dim] and an end into [0, dim] — into
    [0, dim − 1] and [−1, dim − 1] for a negative step."""
    if v < 0:
        v += dim
    if step > 0:
        return min(max(v, 0), dim)
    return min(max(v, -1 if end else 0), dim - 1)


def pad_pairs(ctx, node: ir.Node, ins: Sequence[Any], rank: int) -> list[tuple[int, int]]:
    """Pad's (opset 11+) (begin, end) per dim: ``pads`` lists every begin, then every end, of the
    dims in ``axes`` (18+; all dims without it)."""
    pads = const_ints(ctx, ins[1], "pads")
    axes = const_ints(ctx, optional(ins, 3), "axes")
    axes = list(range(rank)) if axes is None else [normalize(a, rank) for a in axes]
    if len(pads) != 2 * len(axes):
        raise Refused(f"{len(pads)} pads for {len(axes)} axes")
    out = [(0, 0)] * rank
    for i, a in enumerate(axes):
        out[a] = (pads[i], pads[i + len(axes)])
    return out


def shape_range(node: ir.Node, rank: int) -> tuple[int, int]:
    """Shape's (opset 15+) ``start`` and ``end``, negative from the end, clamped into [0, rank]."""
    def clamp(v: int) -> int:
        return max(0, min(v + rank if v < 0 else v, rank))

    return clamp(node.attributes.get_int("start", 0)), clamp(node.attributes.get_int("end", rank))


def keep_zeros(target: Sequence[int], dims: Sequence[Any], allowzero: int) -> list[Any]:
    """Reshape's 0: the input's dim at that position (`dims`, in the backend's form), unless
    ``allowzero=1`` makes it a real 0."""
    return [dims[i] if t == 0 and not allowzero else t for i, t in enumerate(target)]


def positive_indices(indices: np.ndarray, dims: Any) -> np.ndarray:
    """Constant Gather-family indices with negatives counted from the end of `dims`."""
    return np.where(indices < 0, indices + dims, indices)


def constant_value(node: ir.Node) -> np.ndarray:
    """A Constant node's value: ``value`` or one of ``value_float(s)`` / ``value_int(s)``."""
    attr = node.attributes.get("value")
    if attr is not None:
        return attr.as_tensor().numpy()
    for k in ("value_float", "value_int", "value_floats", "value_ints"):
        if k in node.attributes:
            return np.array(node.attributes[k].value, np.float32 if "float" in k else np.int64)
    raise Refused(f"a Constant without a numeric value (it has {sorted(node.attributes)})")


def fill_value(node: ir.Node) -> np.generic:
    """ConstantOfShape's fill: the one element of ``value``, float32 0 without it."""
    attr = node.attributes.get("value")
    return attr.as_tensor().numpy().ravel()[0] if attr is not None else np.float32(0)


@dataclass(frozen=True)
class Window:
    """A Conv or pool node's window over its spatial dims."""

    kernel: tuple[int | None, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # (begin, end) per spatial dim, as written (auto_pad NOTSET)
    auto_pad: str  # NOTSET, SAME_UPPER, SAME_LOWER or VALID
    group: int
    ceil_mode: bool

    def explicit_pads(self, spatial: Sequence[int | None]) -> list[list[int]]:
        """The (begin, end) pads per spatial dim that ``auto_pad`` stands for: SAME pads so the
        output is ⌈d / stride⌉, the odd one at the end (SAME_UPPER) or the beginning."""
        if self.auto_pad == "VALID":
            return [[0, 0] for _ in self.kernel]
        if self.auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            return [list(p) for p in self.pads]
        if any(d is None for d in spatial) or any(k is None for k in self.kernel):
            raise Refused(f"auto_pad={self.auto_pad} with dynamic spatial dims")
        out = []
        for d, k, s, dl in zip(spatial, self.kernel, self.strides, self.dilations):
            total = max(0, (-(-d // s) - 1) * s + (k - 1) * dl + 1 - d)
            small, big = total // 2, total - total // 2
            out.append([small, big] if self.auto_pad == "SAME_UPPER" else [big, small])
        return out

    def pool_output(self, d: int, i: int, pads: Sequence[int]) -> int:
        """A pool's output size on spatial dim `i` of size `d`: with ``ceil_mode`` the last,
        partial window counts unless it would start in the end padding."""
        span = (self.kernel[i] - 1) * self.dilations[i] + 1
        s = self.strides[i]
        room = d + pads[0] + pads[1] - span
        out = (-(-room // s) if self.ceil_mode else room // s) + 1
        if self.ceil_mode and (out - 1) * s >= d + pads[0]:
            out -= 1
        return out


def window(node: ir.Node, kernel: Sequence[int | None]) -> Window:
    """The window of a Conv (`kernel`: its weight's spatial dims) or, through `pool_window`, a pool."""
    n = len(kernel)
    pads = list(node.attributes.get_ints("pads", [0] * (2 * n)))
    return Window(tuple(kernel), tuple(node.attributes.get_ints("strides", [1] * n)),
                  tuple(node.attributes.get_ints("dilations", [1] * n)),
                  tuple((pads[i], pads[i + n]) for i in range(n)), node.attributes.get_string("auto_pad", "NOTSET"),
                  node.attributes.get_int("group", 1), bool(node.attributes.get_int("ceil_mode", 0)))


def pool_window(node: ir.Node) -> Window:
    """The window of a pool node (its ``kernel_shape``)."""
    return window(node, list(node.attributes.get_ints("kernel_shape")))


@dataclass(frozen=True)
class Recurrent:
    """An LSTM or GRU node's attributes."""

    directions: int
    direction: str  # forward, reverse or bidirectional
    hidden: int
    layout: int  # 0: [seq, batch, …]; 1: [batch, seq, …]
    activations: list[str]  # one per gate function and direction, ONNX's spelling


DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def recurrent(node: ir.Node, r_shape: Sequence[int | None]) -> Recurrent:
    """An LSTM or GRU node's attributes; `r_shape` (the recurrent weight's: [directions,
    gates·hidden, hidden]) gives the hidden size where ``hidden_size`` is missing."""
    direction = node.attributes.get_string("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    acts = [a.decode() if isinstance(a, bytes) else a for a in node.attributes.get_strings("activations", [])]
    known = {a.lower(): a for a in ("Sigmoid", "Tanh", "Relu")}
    acts = [known.get(a.lower(), a) for a in acts] or DEFAULT_ACTIVATIONS[node.op_type] * dirs
    return Recurrent(dirs, direction, node.attributes.get_int("hidden_size", r_shape[-1]),
                     node.attributes.get_int("layout", 0), acts)


def full_length(ctx, ins: Sequence[Any], seq: int | None) -> bool:
    """Does every sequence run the whole length (``sequence_lens`` absent, or a constant `seq`)?"""
    lens = optional(ins, 4)
    if lens is None:
        return True
    c = ctx.constant_of(lens)
    return c is not None and seq is not None and bool((np.asarray(c) == seq).all())


# coordinate modes under which nearest upsampling by an integer factor k repeats each element k
# times: asymmetric with floor (PyTorch's export of nn.Upsample "nearest"); half_pixel and
# pytorch_half_pixel with any rounding (the source coordinate stays within ±(0.5 − 0.5/k) of k·i)
_REPEAT_MODES = {("asymmetric", "floor"), ("half_pixel", None), ("pytorch_half_pixel", None)}


def resize_repeats(ctx, node: ir.Node, ins: Sequence[Any], shape: Sequence[int | None]) -> list[int]:
    """Resize (opset 11+) as what both phone lowerings take: nearest, integer upscale factors, a
    static input shape. The per-axis factors; anything else is refused by name."""
    mode = node.attributes.get_string("mode", "nearest")
    if mode != "nearest":
        raise Refused(f"mode={mode!r} (only nearest upsampling by integer factors is lowered)")
    coord = node.attributes.get_string("coordinate_transformation_mode", "half_pixel")
    rounding = node.attributes.get_string("nearest_mode", "round_prefer_floor")
    if (coord, rounding) not in _REPEAT_MODES and (coord, None) not in _REPEAT_MODES:
        raise Refused(f"coordinate_transformation_mode={coord!r} with nearest_mode={rounding!r}")
    if node.attributes.get_ints("axes", None) is not None:
        raise Refused("the axes attribute")
    if any(d is None for d in shape):
        raise Refused("an input shape known only at run time")
    scales, sizes = optional(ins, 2), optional(ins, 3)
    if sizes is not None:
        out = [int(v) for v in const_array(ctx, sizes, "sizes").ravel()]
    elif scales is not None:
        s = const_array(ctx, scales, "scales").astype(np.float64).ravel()
        out = [int(np.floor(d * f)) for d, f in zip(shape, s)]
    else:
        raise Refused("neither scales nor sizes")
    if len(out) != len(shape) or any(o % d or o < d for o, d in zip(out, shape)):
        raise Refused(f"output {out} is not an integer upscale of {list(shape)}")
    return [o // d for o, d in zip(out, shape)]


def resize_matrices(ctx, node: ir.Node, ins: Sequence[Any], shape: Sequence[int | None]) -> list[np.ndarray | None]:
    """Resize (opset 11+) of a float tensor, any mode but crop-and-resize, the resized axes static, as
    one interpolation matrix per axis (None where the axis keeps its size and values): the op is
    linear and separable along axes, so ``y = x ×_a M_a`` for each axis `a`. Each M (in × out) is
    ONNX's own reference Resize applied to the identity along that axis — the semantics are
    ONNX's, not re-derived here. Both phone lowerings multiply by them."""
    from onnx.reference import ReferenceEvaluator

    coord = node.attributes.get_string("coordinate_transformation_mode", "half_pixel")
    if coord in ("tf_crop_and_resize", "tf_half_pixel_for_nn"):
        raise Refused(f"coordinate_transformation_mode={coord!r}")
    rank_ = len(shape)
    axes = node.attributes.get_ints("axes", None)
    axes = [a % rank_ for a in axes] if axes is not None else list(range(rank_))
    scales, sizes = optional(ins, 2), optional(ins, 3)
    if sizes is not None:
        policy = node.attributes.get_string("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            raise Refused(f"keep_aspect_ratio_policy={policy!r}")
        given = [int(v) for v in const_array(ctx, sizes, "sizes").ravel()]
        per_axis = {a: ("sizes", v) for a, v in zip(axes, given)}
    elif scales is not None:
        given = [float(v) for v in const_array(ctx, scales, "scales").astype(np.float64).ravel()]
        per_axis = {a: ("scales", v) for a, v in zip(axes, given)}
    else:
        raise Refused("neither scales nor sizes")
    keep = {"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside", "antialias"}
    attrs = {k: v.value for k, v in node.attributes.items() if k in keep}
    out: list[np.ndarray | None] = []
    for a, n in enumerate(shape):
        how, v = per_axis.get(a, ("scales", 1.0))
        if (how == "scales" and v == 1.0) or (how == "sizes" and v == n):
            out.append(None)
            continue
        if n is None:
            raise Refused(f"resizing axis {a}, whose size is known only at run time")
        inputs = ["X", "", "S", ""] if how == "scales" else ["X", "", "", "S"]
        s = np.array([1.0, v], np.float32) if how == "scales" else np.array([n, v], np.int64)
        g = onnx.helper.make_graph(
            [onnx.helper.make_node("Resize", inputs, ["Y"], **attrs)], "resize_axis",
            [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, [n, n])],
            [onnx.helper.make_tensor_value_info("Y", onnx.TensorProto.DOUBLE, None)],
            [onnx.numpy_helper.from_array(s, "S")])
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 19)])
        (y,) = ReferenceEvaluator(m).run(None, {"X": np.eye(n, dtype=np.float64)})
        if y.shape[1] == 0:
            raise Refused(f"an empty output along axis {a}")
        out.append(np.asarray(y, np.float64))
    return out


def cumulative_mask(node: ir.Node, n: int | None) -> np.ndarray:
    """CumProd over a static axis of length `n` as what both phone lowerings have (a product
    reduction; neither LiteRT nor Core ML has a cumulative product): mask[i, j] says whether
    element j enters output i, after the node's `exclusive` and `reverse`."""
    if n is None:
        raise Refused("an axis whose length is known only at run time")
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    exclusive, reverse = node.attributes.get_int("exclusive", 0), node.attributes.get_int("reverse", 0)
    if reverse:
        return j > i if exclusive else j >= i
    return j < i if exclusive else j <= i


def trilu_mask(ctx, node: ir.Node, ins: Sequence[Any], shape: Sequence[int | None]) -> np.ndarray:
    """Trilu as a constant 0/1 mask over the last two (static) dims: numpy's triu/tril with the
    node's k; the product with it is exact (both phone lowerings multiply by it)."""
    if len(shape) < 2 or shape[-2] is None or shape[-1] is None:
        raise Refused("a matrix whose last two dims are known only at run time")
    k = optional(ins, 1)
    k = 0 if k is None else int(const_array(ctx, k, "k").ravel()[0])
    ones = np.ones(tuple(shape[-2:]), np.float64)
    return np.triu(ones, k) if node.attributes.get_int("upper", 1) else np.tril(ones, k)
