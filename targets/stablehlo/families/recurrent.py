"""LSTM and GRU, unrolled over a static sequence length.

TFLite's builtin UNIDIRECTIONAL_SEQUENCE_LSTM has no GRU counterpart, and a ``stablehlo.while``
becomes a WHILE with subgraphs that XNNPACK does not delegate; a sequence of known length
unrolls into FULLY_CONNECTED + element-wise ops that every kernel set runs. The input
projection X·Wᵀ is one matmul over all time steps; each step adds H·Rᵀ and applies the gates
(ONNX's equations, default activations). A dynamic sequence length, non-default activations,
``clip``, ``input_forget`` and per-batch ``sequence_lens`` shorter than the sequence are refused
with the reason.
"""

from __future__ import annotations

import numpy as np

from targets import onnx_attrs
from targets.stablehlo.emit import Emitter, Val, lowering, unsupported
from targets.stablehlo.families.matmul import matmul
from targets.stablehlo.families.shape import slice_


def _check(e: Emitter, node, rec: onnx_attrs.Recurrent, ins, seq: int | None) -> None:
    if seq is None:
        raise unsupported(node, "a dynamic sequence length (the recurrence is unrolled)")
    if rec.activations != onnx_attrs.DEFAULT_ACTIVATIONS[node.op_type] * rec.directions:
        raise unsupported(node, f"activations {rec.activations}")
    if "clip" in node.attributes:
        raise unsupported(node, "clip")
    if node.attributes.get_int("input_forget", 0):
        raise unsupported(node, "input_forget=1")
    if not onnx_attrs.full_length(e, ins, seq):
        raise unsupported(node, "sequence_lens shorter than the sequence (or computed at run time)")


def _step_input(e: Emitter, xw: Val, t: int, batch) -> Val:
    """xw[t] of a [seq, batch, n] tensor, as [batch, n]."""
    n = xw.type.shape[2]
    part = slice_(e, xw, [t, 0, 0], [t + 1, batch, n], [1, 1, 1], (1, *xw.type.shape[1:]))
    return e.reshape_dims(part, [batch, n])


def _state(e: Emitter, v: Val | None, d: int, batch: int | Val, hidden: int) -> Val | None:
    """Direction `d` of an initial state [dirs, batch, hidden]; None for ONNX's zeros, which the
    first step then leaves out (a broadcast zero state of dynamic batch came out of the
    converter as a size-0 tensor)."""
    if v is None:
        return None
    part = slice_(e, v, [d, 0, 0], [d + 1, batch, hidden], [1, 1, 1], (1, *v.type.shape[1:]))
    return e.reshape_dims(part, [batch, hidden])


def _stack(e: Emitter, steps: list[Val], batch, hidden: int) -> Val:
    """[batch, hidden] values stacked on a new leading axis."""
    return e.concat([e.reshape_dims(s, [1, batch, hidden]) for s in steps], 0)


def _recurrent(e: Emitter, node, ins, outs, gates: int, cell):
    x, w, r = ins[0], ins[1], ins[2]
    b = ins[3] if len(ins) > 3 else None
    rec = onnx_attrs.recurrent(node, r.type.shape)
    layout = rec.layout
    # dims are read from the graph input, never from values derived inside the unrolled loop or a
    # transpose of it: litert-converter 0.5.0 turned such reads into 0
    batch = e.dims_of(x)[1 - layout]
    ins = list(ins)
    if layout == 1:  # x [batch, seq, input] → [seq, batch, input]; states [batch, dirs, H] → [dirs, batch, H]
        x = e.transpose(x, [1, 0, 2])
        for k in (5, 6):
            if len(ins) > k and ins[k] is not None:
                ins[k] = e.transpose(ins[k], [1, 0, 2])
    seq = x.type.shape[0]
    _check(e, node, rec, ins, seq)
    if w.const is None or r.const is None or (b is not None and b.const is None):
        raise unsupported(node, "weights computed at run time")
    direction, dirs, hidden = rec.direction, rec.directions, rec.hidden
    ys, hs, cs = [], [], []
    for d in range(dirs):
        wd, rd = w.const[d], r.const[d]
        bd = b.const[d] if b is not None else np.zeros(2 * gates * hidden, w.const.dtype)
        # one projection of every step: [seq, batch, I] · [I, G·H] (+ both biases)
        xw = matmul(e, x, e.const(np.ascontiguousarray(wd.T)))
        xw = e.binary("add", xw, e.const((bd[:gates * hidden] + bd[gates * hidden:]) if node.op_type == "LSTM"
                                         else _gru_input_bias(bd, hidden)))
        state = cell.init(e, ins, d, batch, hidden)
        order = range(seq) if (direction == "forward" or (direction == "bidirectional" and d == 0)) else range(seq - 1, -1, -1)
        steps = {}
        for t in order:
            state = cell.step(e, _step_input(e, xw, t, batch), state, rd, bd, hidden)
            steps[t] = state[0]
        ys.append(_stack(e, [steps[t] for t in range(seq)], batch, hidden))  # [seq, batch, H]
        hs.append(state[0])
        cs.append(state[1] if len(state) > 1 else None)
    y = e.concat([e.reshape_dims(v, [seq, 1, batch, hidden]) for v in ys], 1)  # [seq, dirs, batch, H]
    y_h = _stack(e, hs, batch, hidden)
    y_c = _stack(e, cs, batch, hidden) if cs[0] is not None else None
    if layout == 1:  # Y [batch, seq, dirs, H], Y_h / Y_c [batch, dirs, H]
        y = e.transpose(y, [2, 0, 1, 3])
        y_h = e.transpose(y_h, [1, 0, 2])
        y_c = e.transpose(y_c, [1, 0, 2]) if y_c is not None else None
    results = [y, y_h] + ([y_c] if node.op_type == "LSTM" else [])
    return results[:len(outs)]


def _gru_input_bias(bd: np.ndarray, hidden: int) -> np.ndarray:
    """Wb for all gates, plus Rb for z and r (Rb_h belongs inside the reset gate's product)."""
    wb, rb = bd[:3 * hidden], bd[3 * hidden:]
    return wb + np.concatenate([rb[:2 * hidden], np.zeros(hidden, bd.dtype)])


def _gate(e: Emitter, v: Val, k: int, hidden: int) -> Val:
    """Gate k ([batch, hidden]) of a [batch, G·hidden] value."""
    return slice_(e, v, [0, k * hidden], [e.dims_of(v)[0], (k + 1) * hidden], [1, 1], (v.type.shape[0], hidden))


class _Lstm:
    @staticmethod
    def init(e, ins, d, batch, hidden):
        h0 = ins[5] if len(ins) > 5 else None
        c0 = ins[6] if len(ins) > 6 else None
        return (_state(e, h0, d, batch, hidden), _state(e, c0, d, batch, hidden))

    @staticmethod
    def step(e, xw_t, state, rd, bd, hidden):
        h, c = state  # None: zero
        z = xw_t if h is None else e.binary("add", xw_t, matmul(e, h, e.const(np.ascontiguousarray(rd.T))))  # i, o, f, c
        i = e.unary("logistic", _gate(e, z, 0, hidden))
        o = e.unary("logistic", _gate(e, z, 1, hidden))
        g = e.unary("tanh", _gate(e, z, 3, hidden))
        c = e.binary("multiply", i, g) if c is None else \
            e.binary("add", e.binary("multiply", e.unary("logistic", _gate(e, z, 2, hidden)), c), e.binary("multiply", i, g))
        h = e.binary("multiply", o, e.unary("tanh", c))
        return (h, c)


class _Gru:
    linear_before_reset = 0

    @staticmethod
    def init(e, ins, d, batch, hidden):
        h0 = ins[5] if len(ins) > 5 else None
        return (_state(e, h0, d, batch, hidden),)

    def step(self, e, xw_t, state, rd, bd, hidden):
        (h,) = state  # None: zero
        rb_h = e.const(bd[5 * hidden:])
        if h is None:  # H·Rᵀ = 0: n = tanh(xw_h + (r ⊙) Rb_h), H = (1 − z) ⊙ n
            z = e.unary("logistic", _gate(e, xw_t, 0, hidden))
            hr = rb_h
            if self.linear_before_reset:
                hr = e.binary("multiply", e.unary("logistic", _gate(e, xw_t, 1, hidden)), rb_h)
            n = e.unary("tanh", e.binary("add", _gate(e, xw_t, 2, hidden), hr))
            return (e.binary("subtract", n, e.binary("multiply", z, n)),)
        rzr = matmul(e, h, e.const(np.ascontiguousarray(rd[:2 * hidden].T)))  # gates z, r of H·Rᵀ
        z = e.unary("logistic", e.binary("add", _gate(e, xw_t, 0, hidden), _gate(e, rzr, 0, hidden)))
        r = e.unary("logistic", e.binary("add", _gate(e, xw_t, 1, hidden), _gate(e, rzr, 1, hidden)))
        rh = e.const(np.ascontiguousarray(rd[2 * hidden:].T))
        if self.linear_before_reset:
            hr = e.binary("multiply", r, e.binary("add", matmul(e, h, rh), rb_h))
        else:
            hr = e.binary("add", matmul(e, e.binary("multiply", r, h), rh), rb_h)
        n = e.unary("tanh", e.binary("add", _gate(e, xw_t, 2, hidden), hr))
        # H = (1 − z) ⊙ n + z ⊙ H = n + z ⊙ (H − n)
        return (e.binary("add", n, e.binary("multiply", z, e.binary("subtract", h, n))),)


@lowering("LSTM", since=7)
def lstm(e: Emitter, node, ins, outs):
    if len(ins) > 7 and ins[7] is not None:
        raise unsupported(node, "peephole weights (P)")
    return _recurrent(e, node, ins, outs, 4, _Lstm)


@lowering("GRU", since=7)
def gru(e: Emitter, node, ins, outs):
    cell = _Gru()
    cell.linear_before_reset = node.attributes.get_int("linear_before_reset", 0)
    return _recurrent(e, node, ins, outs, 3, cell)
