"""numpy implementations of the MIL ops coremltools cannot constant-fold (no ``value_inference``):
conv, conv_transpose, max/avg pooling, batch/instance norm, gather_nd, scatter, silu, lstm,
constexpr_affine_dequantize (int8-compressed weights) — and squeeze, whose value inference fails on a squeeze to rank 0.

Each follows the MIL op's documented semantics (coremltools ``mil/ops/defs/iOS15…iOS17``),
takes the op's parameters by their MIL names, and computes in fp32 (fp16 inputs are widened and
the result rounded back once): a reference, not a model of Apple's accumulation order.
Tests compare each against ONNX Runtime running the ONNX op it lowers (tests/targets/coreml).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

IMPLS: dict = {}


def impl(name: str):
    def deco(fn):
        IMPLS[name] = fn
        return fn
    return deco


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _pads(spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
          pad_type: str, pad: Sequence[int] | None, ceil_mode: bool = False) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial dim for MIL's pad_type ("valid", "custom", "same", "same_lower")."""
    n = len(spatial)
    if pad_type == "valid":
        out = [(0, 0)] * n
    elif pad_type == "custom":
        pad = list(pad) if pad is not None else [0] * (2 * n)
        out = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(n)]
    elif pad_type in ("same", "same_lower"):
        out = []
        for d, k, s, dl in zip(spatial, kernel, strides, dilations):
            total = max((math.ceil(d / s) - 1) * s + (k - 1) * dl + 1 - d, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
    else:
        raise ValueError(f"pad_type {pad_type!r}")
    if ceil_mode:  # MIL's documented rule: a last partial window, dropped only if it starts in padding that exists
        res = []
        for (b, e), d, k, s in zip(out, spatial, kernel, strides):
            n = (d + b + e - k + s - 1) // s + 1
            if (n - 1) * s >= d + b and (b > 0 or e > 0):
                n -= 1
            res.append((b, e + max(0, (n - 1) * s + k - (d + b + e))))
        out = res
    return out


def _windows(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]):
    """For each kernel offset: (offset, the strided slice of padded `xp` it reads), spatial dims last."""
    n = len(kernel)
    spatial = xp.shape[-n:]
    outs = [(d - ((k - 1) * dl + 1)) // s + 1 for d, k, s, dl in zip(spatial, kernel, strides, dilations)]
    for offset in np.ndindex(*kernel):
        idx = tuple(slice(o * dl, o * dl + (m - 1) * s + 1, s) for o, dl, m, s in zip(offset, dilations, outs, strides))
        yield offset, xp[(Ellipsis, *idx)]


@impl("conv")
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    dtype = x.dtype
    x, w = _wide(x), _wide(weight)
    n = x.ndim - 2
    kernel = w.shape[2:]
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    pads = _pads(x.shape[2:], kernel, strides, dilations, str(pad_type), pad)
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    g = int(groups)
    batch, cin = x.shape[:2]
    cout = w.shape[0]
    wg = w.reshape(g, cout // g, cin // g, *kernel)
    y = None
    for offset, win in _windows(xp, kernel, strides, dilations):
        part = np.einsum("ngc...,goc->ngo...", win.reshape(batch, g, cin // g, *win.shape[2:]), wg[(Ellipsis, *offset)])
        y = part if y is None else y + part
    y = y.reshape(batch, cout, *y.shape[3:])
    if bias is not None:
        y = y + _wide(bias).reshape(1, -1, *[1] * n)
    return y.astype(dtype)


@impl("conv_transpose")
def conv_transpose(x, weight, bias=None, pad=None, output_shape=None, pad_type="valid", strides=None, dilations=None, groups=1):
    """The adjoint of `conv`: scatter each input pixel's kernel-weighted contribution, then crop."""
    dtype = x.dtype
    x, w = _wide(x), _wide(weight)  # weight: (C_in, C_out / groups, *K)
    n = x.ndim - 2
    kernel = w.shape[2:]
    strides = list(strides) if strides is not None else [1] * n
    dilations = list(dilations) if dilations is not None else [1] * n
    g = int(groups)
    batch, cin = x.shape[:2]
    cout_g = w.shape[1]
    full = [(d - 1) * s + (k - 1) * dl + 1 for d, s, k, dl in zip(x.shape[2:], strides, kernel, dilations)]
    y = np.zeros((batch, g, cout_g, *full), np.float32)
    xg = x.reshape(batch, g, cin // g, *x.shape[2:])
    wg = w.reshape(g, cin // g, cout_g, *kernel)
    for offset in np.ndindex(*kernel):
        idx = tuple(slice(o * dl, o * dl + (d - 1) * s + 1, s) for o, dl, d, s in zip(offset, dilations, x.shape[2:], strides))
        y[(slice(None), slice(None), slice(None), *idx)] += np.einsum("ngc...,gco->ngo...", xg, wg[(Ellipsis, *offset)])
    if str(pad_type) == "custom" and pad is not None:
        crop = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(n)]
    elif str(pad_type) == "valid":
        crop = [(0, 0)] * n
    else:  # same: output = input · stride
        crop = []
        for f, d, s in zip(full, x.shape[2:], strides):
            total = max(f - d * s, 0)
            crop.append((total // 2, total - total // 2) if str(pad_type) == "same" else (total - total // 2, total // 2))
    y = y[(slice(None), slice(None), slice(None), *(slice(b, f - e) for (b, e), f in zip(crop, full)))]
    y = y.reshape(batch, g * cout_g, *y.shape[3:])
    if bias is not None:
        y = y + _wide(bias).reshape(1, -1, *[1] * n)
    return y.astype(dtype)


def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, kind: str, exclude_padding=False):
    dtype = x.dtype
    x = _wide(x)
    n = len(kernel_sizes)
    kernel = [int(k) for k in kernel_sizes]
    strides = [int(s) for s in strides] if strides is not None else [1] * n
    pads = _pads(x.shape[2:], kernel, strides, [1] * n, str(pad_type), pad, bool(ceil_mode))
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)
    ones = np.pad(np.ones(x.shape[2:], np.float32), pads)
    acc, count = None, None
    for (_, win), (_, inside) in zip(_windows(xp, kernel, strides, [1] * n), _windows(ones, kernel, strides, [1] * n)):
        if kind == "max":
            acc = win if acc is None else np.maximum(acc, win)
        else:
            acc = win if acc is None else acc + win
            count = inside if count is None else count + inside
    if kind == "avg":
        acc = acc / (count if exclude_padding else float(np.prod(kernel)))
    return acc.astype(dtype)


@impl("max_pool")
def max_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "max")


@impl("avg_pool")
def avg_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, exclude_padding_from_average=False, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "avg", bool(exclude_padding_from_average))


def _affine(y: np.ndarray, gamma, beta) -> np.ndarray:
    """y · γ + β, per channel (axis 1)."""
    shape = (1, -1) + (1,) * (y.ndim - 2)
    if gamma is not None:
        y = y * _wide(gamma).reshape(shape)
    if beta is not None:
        y = y + _wide(beta).reshape(shape)
    return y


@impl("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (_wide(x) - _wide(mean).reshape(shape)) / np.sqrt(_wide(variance).reshape(shape) + np.float32(epsilon))
    return _affine(y, gamma, beta).astype(x.dtype)


@impl("instance_norm")
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    xw = _wide(x)
    axes = tuple(range(2, x.ndim))
    y = (xw - xw.mean(axis=axes, keepdims=True)) / np.sqrt(xw.var(axis=axes, keepdims=True) + np.float32(epsilon))
    return _affine(y, gamma, beta).astype(x.dtype)


@impl("gather_nd")
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    b = int(batch_dims)
    idx = np.asarray(indices).astype(np.int64)
    lead = x.shape[:b]
    k = idx.shape[-1]
    xf = x.reshape(int(np.prod(lead)) if b else 1, *x.shape[b:])
    inner = idx.shape[b:-1]
    idf = idx.reshape(xf.shape[0], -1, k)
    out = np.stack([xf[i][tuple(idf[i].T)] for i in range(xf.shape[0])])
    return out.reshape(*lead, *inner, *x.shape[b + k:])


@impl("silu")
def silu(x):
    xw = _wide(x)
    return (xw / (1 + np.exp(-xw))).astype(x.dtype)


@impl("scatter")
def scatter(data, indices, updates, axis=0, mode="add", validate_indices=False):
    out = np.array(data, copy=True)
    idx = np.asarray(indices).astype(np.int64)
    axis = int(axis) + data.ndim if int(axis) < 0 else int(axis)
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    moved = np.moveaxis(out, axis, 0)
    upd = np.moveaxis(np.asarray(updates), axis, 0)
    ops = {"update": lambda a, u: u, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "max": np.maximum, "min": np.minimum}
    for k, i in enumerate(idx.ravel()):
        moved[i] = ops[str(mode)](moved[i], upd[k])
    return out


_ACTS = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
         "linear": lambda v: v}


@impl("lstm")
def lstm(x, initial_h, initial_c, weight_ih, weight_hh, bias=None, peephole=None, weight_ih_back=None, weight_hh_back=None,
         bias_back=None, peephole_back=None, direction="forward", output_sequence=False, recurrent_activation="sigmoid",
         cell_activation="tanh", activation="tanh", clip=None):
    """MIL's gate order i, f, o, z; states (b, directions·H); peepholes are refused by the lowering."""
    if peephole is not None or peephole_back is not None:
        raise NotImplementedError("lstm peepholes")
    dtype = x.dtype
    x = _wide(x)
    hidden = weight_hh.shape[1]
    rec, cell, act = (_ACTS[str(a)] for a in (recurrent_activation, cell_activation, activation))

    def run(w_ih, w_hh, b, h, c, reverse):
        out = np.zeros((x.shape[0], x.shape[1], hidden), np.float32)
        b = np.zeros(4 * hidden, np.float32) if b is None else _wide(b)
        for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
            g = x[t] @ _wide(w_ih).T + h @ _wide(w_hh).T + b
            i, f, o, z = (g[:, k * hidden:(k + 1) * hidden] for k in range(4))
            z = cell(z)
            if clip is not None:
                z = np.clip(z, -float(clip), float(clip))
            c = rec(f) * c + rec(i) * z
            h = rec(o) * act(c)
            out[t] = h
        return out, h, c

    h0, c0 = _wide(initial_h), _wide(initial_c)
    direction = str(direction)
    if direction == "bidirectional":
        o1, h1, c1 = run(weight_ih, weight_hh, bias, h0[:, :hidden], c0[:, :hidden], False)
        o2, h2, c2 = run(weight_ih_back, weight_hh_back, bias_back, h0[:, hidden:], c0[:, hidden:], True)
        seq, h, c = np.concatenate([o1, o2], -1), np.concatenate([h1, h2], -1), np.concatenate([c1, c2], -1)
    else:
        seq, h, c = run(weight_ih, weight_hh, bias, h0, c0, direction == "reverse")
    if not output_sequence:
        seq = seq[-1:] if direction == "forward" else seq[:1] if direction == "reverse" else np.concatenate(
            [seq[-1:, :, :hidden], seq[:1, :, hidden:]], -1)
    return seq.astype(dtype), h.astype(dtype), c.astype(dtype)


@impl("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """(q − zero_point) · scale, the scale and zero point per slice along `axis` (iOS 16 semantics)."""
    q = np.asarray(quantized_data)
    axis = int(axis) + q.ndim if int(axis) < 0 else int(axis)
    shape = [1] * q.ndim
    scale, zero_point = np.asarray(scale), np.asarray(zero_point)
    shape[axis] = -1
    s = scale.reshape(shape) if scale.ndim else scale
    z = zero_point.reshape(shape) if zero_point.ndim else zero_point
    return ((q.astype(np.float32) - z.astype(np.float32)) * s.astype(np.float32)).astype(scale.dtype)


@impl("squeeze")
def squeeze(x, axes=None):
    """Overrides coremltools' value inference, which fails on a squeeze to rank 0 ((1, 1) → ())."""
    x = np.asarray(x)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(int(a) for a in np.asarray(axes).ravel()))


@impl("cumsum")
def cumsum(x, axis=0, exclusive=False, reverse=False):
    """coremltools' value inference fails on exclusive=True ("Cannot construct a dtype from an array")."""
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    y = np.flip(x, axis) if reverse else x
    y = np.cumsum(y, axis=axis, dtype=y.dtype)
    if exclusive:  # shifted by one along the axis, zeros first
        pad = np.zeros_like(np.take(y, [0], axis=axis))
        y = np.concatenate([pad, np.take(y, range(y.shape[axis] - 1), axis=axis)], axis=axis)
    return np.flip(y, axis) if reverse else y
