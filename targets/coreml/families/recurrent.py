"""LSTM (MIL ``lstm``) and GRU (a MIL ``while_loop`` over the time steps).

LSTM: ONNX gate order is i, o, f, c; MIL's is i, f, o, z (z = cell); ONNX's two biases are
summed into MIL's one; states move from ONNX's (directions, batch, H) to MIL's
(batch, directions·H). GRU: MIL's ``gru`` has a single bias, so it cannot express ONNX's
``linear_before_reset=1`` with a recurrent bias on the new gate — what PyTorch exports — and
coremltools' own torch frontend writes GRU as a loop for the same reason; so do we.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.coreml.lower import const, dims_of, dtype, lowering, mb, scalar, shape, unsupported

_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}


def _activations(node, rec: onnx_attrs.Recurrent) -> list[str]:
    """MIL's names of one direction's activations (MIL takes one set for both directions)."""
    if "activation_alpha" in node.attributes or "activation_beta" in node.attributes:
        raise unsupported(node, "activation_alpha / activation_beta")
    bad = [a for a in rec.activations if a not in _ACT]
    if bad:
        raise unsupported(node, f"activations {bad}")
    one = len(rec.activations) // rec.directions
    if rec.activations[:one] * rec.directions != rec.activations:
        raise unsupported(node, f"different activations per direction {rec.activations}")
    return [_ACT[a] for a in rec.activations[:one]]


def _weights(ctx, node, rec: onnx_attrs.Recurrent, ins):
    w, r = const(ins[1]), const(ins[2])
    if w is None or r is None:
        raise unsupported(node, "weights computed at run time")
    b = const(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    if len(ins) > 3 and ins[3] is not None and b is None:
        raise unsupported(node, "a bias computed at run time")
    if not onnx_attrs.full_length(ctx, ins, shape(ins[0])[rec.layout]):
        raise unsupported(node, "sequence_lens (sequences of different lengths)")
    return w, r, b


def _time_major(rec: onnx_attrs.Recurrent, x):
    return mb().transpose(x=x, perm=[1, 0, 2]) if rec.layout else x


def _initial(node, v, x_tm, directions: int, hidden: int):
    """ONNX (D, b, H) state → MIL (b, D·H); zeros of the run-time batch when absent."""
    if v is None:
        b = mb().slice_by_index(x=dims_of(x_tm), begin=[1], end=[2])
        return mb().fill(shape=mb().concat(values=[b, np.array([directions * hidden], np.int32)], axis=0), value=np.float32(0))
    return mb().reshape(x=mb().transpose(x=v, perm=[1, 0, 2]), shape=np.array([-1, directions * hidden], np.int32))


def _outputs(rec: onnx_attrs.Recurrent, seq, last_states):
    """MIL (s, b, D·H) and (b, D·H) back to ONNX Y (s, D, b, H) and (D, b, H) (batch-first when layout=1)."""
    directions, hidden = rec.directions, rec.hidden
    s_b = mb().slice_by_index(x=mb().shape(x=seq), begin=[0], end=[2])
    y = mb().reshape(x=seq, shape=mb().concat(values=[s_b, np.array([directions, hidden], np.int32)], axis=0))
    y = mb().transpose(x=y, perm=[0, 2, 1, 3])
    states = [mb().transpose(x=mb().reshape(x=h, shape=np.array([-1, directions, hidden], np.int32)), perm=[1, 0, 2])
              for h in last_states]
    if rec.layout:
        y = mb().transpose(x=y, perm=[2, 0, 1, 3])
        states = [mb().transpose(x=h, perm=[1, 0, 2]) for h in states]
    return [y, *states]


def _reorder(a: np.ndarray, blocks: list[int], hidden: int) -> np.ndarray:
    return np.concatenate([a[..., k * hidden:(k + 1) * hidden, :] if a.ndim > 1 else a[k * hidden:(k + 1) * hidden]
                           for k in blocks], axis=-2 if a.ndim > 1 else 0)


@lowering("LSTM", since=7)
def lstm(ctx, node, ins, outs):
    rec = onnx_attrs.recurrent(node, shape(ins[2]))
    hidden, d = rec.hidden, rec.directions
    if node.attributes.get_int("input_forget", 0):
        raise unsupported(node, "input_forget=1")
    if "clip" in node.attributes:  # ONNX clips every gate's pre-activation, MIL only the cell gate
        raise unsupported(node, "clip")
    if len(ins) > 7 and ins[7] is not None and (const(ins[7]) is None or const(ins[7]).any()):
        raise unsupported(node, "peephole weights")
    gate, cell, act = _activations(node, rec)
    w, r, b = _weights(ctx, node, rec, ins)
    x = _time_major(rec, ins[0])
    order = [0, 2, 1, 3]  # ONNX i, o, f, c → MIL i, f, o, z
    kw = {}
    for k, suffix in enumerate(["", "_back"][:d]):
        kw["weight_ih" + suffix] = _reorder(w[k], order, hidden)
        kw["weight_hh" + suffix] = _reorder(r[k], order, hidden)
        if b is not None:
            kw["bias" + suffix] = _reorder(b[k][:4 * hidden] + b[k][4 * hidden:], order, hidden)
    h0 = _initial(node, ins[5] if len(ins) > 5 else None, x, d, hidden)
    c0 = _initial(node, ins[6] if len(ins) > 6 else None, x, d, hidden)
    seq, h, c = mb().lstm(x=x, initial_h=h0, initial_c=c0, direction=rec.direction, output_sequence=True,
                          recurrent_activation=gate, cell_activation=cell, activation=act, **kw)
    return _outputs(rec, seq, [h, c])


@lowering("GRU", since=7)
def gru(ctx, node, ins, outs):
    """One loop per direction; a bidirectional GRU runs the second over the reversed steps and
    the two are concatenated (MIL's (s, b, D·H) layout, forward first, as ONNX orders them)."""
    rec = onnx_attrs.recurrent(node, shape(ins[2]))
    hidden, d = rec.hidden, rec.directions
    gate, act = _activations(node, rec)
    w, r, b = _weights(ctx, node, rec, ins)
    before_reset = node.attributes.get_int("linear_before_reset", 0)
    x = _time_major(rec, ins[0])
    h0 = _initial(node, ins[5] if len(ins) > 5 else None, x, d, hidden)
    if dtype(h0) != dtype(x):  # zeros are written fp32; an fp16 program computes in fp16
        h0 = mb().cast(x=h0, dtype=dtype(x))
    h0s = mb().split(x=h0, num_splits=d, axis=-1) if d > 1 else [h0]
    runs = []
    for k in range(d):
        wb = b[k][:3 * hidden] if b is not None else np.zeros(3 * hidden, w.dtype)
        rb = b[k][3 * hidden:] if b is not None else np.zeros(3 * hidden, w.dtype)
        reverse = rec.direction == "reverse" or k == 1
        runs.append(_gru_loop(x, w[k], r[k], wb, rb, h0s[k], reverse, before_reset, gate, act, hidden))
    if d == 1:
        return _outputs(rec, runs[0][0], [runs[0][1]])
    seq = mb().concat(values=[s for s, _ in runs], axis=-1)
    h_last = mb().concat(values=[h for _, h in runs], axis=-1)
    return _outputs(rec, seq, [h_last])


def _gru_loop(x, w, r, wb, rb, h0, reverse: bool, before_reset: int, gate: str, act: str, hidden: int):
    """One direction over time-major `x` (s, b, I): its outputs (s, b, H) and last state (b, H)."""
    steps = mb().slice_by_index(x=dims_of(x), begin=[0], end=[1])  # (1,) int32
    xw = mb().linear(x=x, weight=w, bias=wb)  # the input projections of every step at once: (s, b, 3H)
    # the outputs, preallocated and written one step at a time (as coremltools' own torch GRU does)
    seq = mb().fill(shape=mb().concat(values=[steps, mb().slice_by_index(x=mb().shape(x=h0), begin=[0], end=[2])], axis=0),
                    value=scalar(0.0, h0))

    def cond(i, h, ys):
        return mb().less(x=mb().squeeze(x=i), y=mb().squeeze(x=steps))

    def body(i, h, ys):
        t = mb().sub(x=mb().sub(x=steps, y=i), y=np.int32(1)) if reverse else i
        xz, xr, xh = mb().split(x=mb().squeeze(x=mb().gather(x=xw, indices=t, axis=0), axes=[0]), num_splits=3, axis=-1)
        hz, hr, hh = mb().split(x=mb().linear(x=h, weight=r, bias=rb), num_splits=3, axis=-1)  # rb inside: ONNX Rb
        z = getattr(mb(), gate)(x=mb().add(x=xz, y=hz))
        rr = getattr(mb(), gate)(x=mb().add(x=xr, y=hr))
        if before_reset:  # n = act(Wx + Wb + r ⊙ (R h + Rb))
            n = getattr(mb(), act)(x=mb().add(x=xh, y=mb().mul(x=rr, y=hh)))
        else:  # n = act(Wx + Wb + R (r ⊙ h) + Rb)
            n = getattr(mb(), act)(x=mb().add(x=xh, y=mb().linear(x=mb().mul(x=rr, y=h), weight=r[2 * hidden:], bias=rb[2 * hidden:])))
        h_new = mb().add(x=mb().mul(x=mb().sub(x=scalar(1.0, z), y=z), y=n), y=mb().mul(x=z, y=h))
        ys = mb().scatter(data=ys, indices=t, updates=mb().expand_dims(x=h_new, axes=[0]), axis=0, mode="update")
        return mb().add(x=i, y=np.int32(1)), h_new, ys

    _, h_last, seq = mb().while_loop(_cond=cond, _body=body, loop_vars=(np.array([0], np.int32), h0, seq))
    return seq, h_last
