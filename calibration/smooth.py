"""Channel equalization for int8 MatMuls: SmoothQuant on the inputs (Xiao et al., ICML 2023)
and outlier-channel scaling on the outputs.

TFLite and ONNX Runtime quantize a MatMul's activations per tensor, and transformers put a few
outlier channels in them. Measured on all-MiniLM-L6-v2 (40 calibration sentences):
- inputs: one GELU output channel reaches 24.7 where the median channel's maximum is 1.2;
- outputs: the second FFN projection writes channel 99 up to 195 where the median channel stays
  under 0.9, so one int8 scale rounds every other channel to zero (14.6 dB SNR for that node
  alone in LiteRT; all MatMuls int8 gave cosine 0.93 on golden).

Two exact rewrites move that range into the per-channel int8 weights:
- **input smoothing**: input channel j divided by s_j, weight row j multiplied by s_j, with
  ``s_j = max|X_j|^α / max|W_j|^(1-α)``. α is chosen per input tensor from a grid (and "no
  smoothing") by simulating the int8 MatMul on calibration rows and keeping the α with the least
  output error — one fixed α was wrong both ways on MiniLM (0.5 lost 8 dB against 0.8 on the
  FFN down-projection). The division is folded into a LayerNormalization that only these MatMuls
  read (γ/s, β/s), else it is a float ``Mul`` (``smooth/<tensor>``).
- **output scaling**: column j of the weight (and of a bias Add right after) divided by
  ``t_j = max(1, max|Y_j| / (ratio · median_k max|Y_k|))``, and a float ``Mul`` by t after
  (``smooth/out/<tensor>``) restores the values.

The inserted Muls are float elementwise ops; the caller keeps them out of quantization
(`Smoothed.float_nodes`). Written here rather than taken from a library: ONNX Runtime's
``SmoothQuant`` option delegates to Intel Neural Compressor's ONNX adaptor (deprecated in INC 3,
pins numpy<2, pulls opencv, pandas and scikit-learn), re-calibrates from its own data reader,
and has no output-side scaling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from calibration.surgery import consumers, producers
from compiler import ortsession
from compiler.verify import snr_db

MUL_PREFIX = "smooth/"
ALPHAS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
SEARCH_ROWS = 2048  # calibration rows per tensor the α search simulates on


@dataclass
class Group:
    tensor: str  # the activation the smoothed MatMuls read, or the output that was scaled
    matmuls: list[str]
    imbalance: float  # max over channels of max|x_j|, over their median
    alpha: float | None = None  # input smoothing; None: not smoothed
    snr_db: tuple[float, float] | None = None  # simulated int8 output SNR: unsmoothed, chosen
    folded_into: str | None = None
    mul: str | None = None


@dataclass
class Smoothed:
    model: onnx.ModelProto
    inputs: list[Group] = field(default_factory=list)
    outputs: list[Group] = field(default_factory=list)

    def float_nodes(self) -> list[str]:
        return [g.mul for g in self.inputs + self.outputs if g.mul]

    def summary(self) -> dict:
        def row(g: Group) -> dict:
            return {k: v for k, v in vars(g).items() if v is not None}
        return {"inputs": [row(g) for g in self.inputs], "outputs": [row(g) for g in self.outputs]}


def candidates(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Activation tensor → the MatMuls reading it with a constant 2-D weight as input B."""
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2 and n.input[0] not in inits:
            out.setdefault(n.input[0], []).append(n)
    return out


@dataclass
class _Stats:
    absmax: np.ndarray  # per channel, all rows
    rows: np.ndarray  # a sample of rows (≤ SEARCH_ROWS) for the α search


def _collect(model: onnx.ModelProto, tensors: list[str], batches: Iterable[dict[str, np.ndarray]], seed: int = 0) -> dict[str, _Stats]:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors if t not in have)
    sess = ortsession.session(m)
    rng = np.random.default_rng(seed)
    acc: dict[str, _Stats] = {}
    for feeds in batches:
        for t, v in zip(tensors, sess.run(tensors, feeds)):
            rows = v.reshape(-1, v.shape[-1])
            pick = rows[rng.choice(len(rows), min(len(rows), SEARCH_ROWS), replace=False)]
            a = np.abs(rows).max(axis=0)
            if t not in acc:
                acc[t] = _Stats(a, pick)
            else:
                s = acc[t]
                both = np.concatenate([s.rows, pick])
                acc[t] = _Stats(np.maximum(s.absmax, a), both[rng.choice(len(both), min(len(both), SEARCH_ROWS), replace=False)])
    return acc


def _fake_act(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per-tensor asymmetric int8 (the TFLite / ORT u8 activation form; the same error up to the offset)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255
    zp = np.round(-128 - lo / scale)
    return (np.clip(np.round(x / scale) + zp, -128, 127) - zp) * scale


def _fake_weight(w: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric int8."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127
    return np.round(w / scale) * scale


def _scales(xmax: np.ndarray, wmax: np.ndarray, alpha: float) -> np.ndarray:
    # a channel quiet in calibration is not amplified beyond the median channel: on MiniLM, GELU
    # channels that never exceeded 0.17 in 40 sentences reached 3.4 on "Yes.", and amplified
    # by smoothing they overran the tensor's int8 range (held-out cosine 0.907)
    xmax = np.maximum(xmax, np.median(xmax))
    ok = (xmax > 0) & (wmax > 0)
    s = np.ones_like(xmax)
    s[ok] = xmax[ok] ** alpha / wmax[ok] ** (1 - alpha)
    return np.clip(s, 1e-5, 1e5)


def _out_scales(ymax: np.ndarray, ratio: float) -> np.ndarray:
    return np.maximum(1.0, ymax / (ratio * max(float(np.median(ymax)), 1e-12)))


def equalize(model: onnx.ModelProto, batches: Iterable[dict[str, np.ndarray]], out_ratio: float = 4.0) -> Smoothed:
    """`model` with every `candidates` MatMul's outlier output channels scaled (`out_ratio`)
    and its input smoothed where that lowers the simulated int8 error."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    cands = candidates(m)
    if not cands:
        return Smoothed(m)
    mats = [n for ns in cands.values() for n in ns]
    # a MatMul's output may be another candidate's input: each tensor is read out once
    stats = _collect(m, list(dict.fromkeys([*cands, *(n.output[0] for n in mats)])), batches)
    inits = {i.name: i for i in g.initializer}
    readers = consumers(m)
    weights = {n.name: numpy_helper.to_array(inits[n.input[1]]).astype(np.float64) for n in mats}
    t_out = {n.name: _out_scales(stats[n.output[0]].absmax.astype(np.float64), out_ratio) for n in mats}
    smoothed = Smoothed(m)
    plans: dict[str, np.ndarray] = {}
    for tensor, ns in cands.items():
        st = stats[tensor]
        xmax = st.absmax.astype(np.float64)
        if any(weights[n.name].shape[0] != xmax.size for n in ns):
            continue
        x = st.rows.astype(np.float64)
        refs = [x @ weights[n.name] for n in ns]

        def sim(s: np.ndarray) -> float:
            xq = _fake_act(x / s, *_range(st, s))
            got = [_out_q(xq @ _fake_weight(weights[n.name] * s[:, None] / t_out[n.name][None, :]), t_out[n.name]) for n in ns]
            return snr_db(np.concatenate([r.ravel() for r in refs]), np.concatenate([q.ravel() for q in got]))

        wmax = np.max([np.abs(weights[n.name]).max(axis=1) for n in ns], axis=0)
        base = sim(np.ones_like(xmax))
        best, best_alpha = base, None
        for a in ALPHAS:
            if (snr := sim(_scales(xmax, wmax, a))) > best:
                best, best_alpha = snr, a
        grp = Group(tensor, [n.name for n in ns], float(xmax.max() / max(np.median(xmax), 1e-12)), best_alpha,
                    (round(float(base), 2), round(float(best), 2)))
        if best_alpha is not None:
            plans[tensor] = _scales(xmax, wmax, best_alpha)
        smoothed.inputs.append(grp)
    # rewrite: inputs first (weights × s), then outputs (weights / t)
    made_by = producers(m)
    graph_outputs = {o.name for o in g.output}
    for grp in smoothed.inputs:
        if grp.alpha is None:
            continue
        s = plans[grp.tensor]
        ns = cands[grp.tensor]
        for n in ns:
            _set_weight(g, inits, readers, n, weights[n.name] * s[:, None])
            weights[n.name] = weights[n.name] * s[:, None]
        inv = (1 / s).astype(np.float32)
        prod = made_by.get(grp.tensor)
        only_ours = {r.name for r in readers[grp.tensor]} == set(grp.matmuls) and grp.tensor not in graph_outputs
        if only_ours and prod is not None and _fold_into_norm(prod, inits, readers, inv):
            grp.folded_into = prod.name
        else:
            grp.mul = _insert_mul(g, grp.tensor, inv, f"{MUL_PREFIX}{grp.tensor}", ns)
    readers = consumers(m)  # the input Muls read their tensors now (a MatMul's output may be one)
    for n in mats:
        t = t_out[n.name]
        if t.max() <= 1.0:
            continue
        y = n.output[0]
        if y in graph_outputs:
            continue
        _set_weight(g, inits, readers, n, weights[n.name] / t[None, :])
        last = y
        nxt = readers.get(y, [])
        if len(nxt) == 1 and nxt[0].op_type == "Add":
            b = next((i for i in nxt[0].input if i != y), None)
            if b in inits and len(readers[b]) == 1 and tuple(inits[b].dims) == (t.size,) and nxt[0].output[0] not in graph_outputs:
                bv = numpy_helper.to_array(inits[b])
                inits[b].CopyFrom(numpy_helper.from_array((bv / t).astype(bv.dtype), b))
                last = nxt[0].output[0]
        ymax = stats[y].absmax
        name = _insert_mul(g, last, t.astype(np.float32), f"{MUL_PREFIX}out/{last}", list(readers.get(last, [])))
        smoothed.outputs.append(Group(last, [n.name], float(ymax.max() / max(np.median(ymax), 1e-12)), mul=name))
    return smoothed


def _range(st: _Stats, s: np.ndarray) -> tuple[float, float]:
    """The per-tensor range of x / s over the sampled rows (the full-data range scaled is not
    exact once channels are divided by different s)."""
    xs = st.rows / s
    return float(xs.min()), float(xs.max())


def _out_q(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    return _fake_act(y, float(y.min()), float(y.max())) * t


def _set_weight(g: onnx.GraphProto, inits: dict, readers: dict, node: onnx.NodeProto, w: np.ndarray) -> None:
    name = node.input[1]
    dtype = numpy_helper.to_array(inits[name]).dtype
    if len(readers.get(name, [])) > 1:  # shared weight: this MatMul gets its own copy
        new = f"{name}/{node.name}"
        readers[name] = [r for r in readers[name] if r is not node]
        readers[new] = [node]
        node.input[1] = new
        inits[new] = numpy_helper.from_array(w.astype(dtype), new)
        g.initializer.append(inits[new])
        inits[new] = g.initializer[-1]
    else:
        inits[name].CopyFrom(numpy_helper.from_array(w.astype(dtype), name))


def _insert_mul(g: onnx.GraphProto, tensor: str, scale: np.ndarray, name: str, for_nodes: list[onnx.NodeProto]) -> str:
    """A float Mul of `tensor` by `scale` that `for_nodes` read instead of `tensor`."""
    init = numpy_helper.from_array(scale, f"{name}/scale")
    g.initializer.append(init)
    out = f"{name}/out"
    for n in for_nodes:
        n.input[:] = [out if i == tensor else i for i in n.input]
    mul = onnx.helper.make_node("Mul", [tensor, init.name], [out], name=name)
    at = next((i + 1 for i, n in enumerate(g.node) if tensor in n.output), 0)
    g.node.insert(at, mul)
    return name


def _fold_into_norm(node: onnx.NodeProto, inits: dict, readers: dict, inv: np.ndarray) -> bool:
    """LayerNormalization over the last axis with constant, unshared γ (and β): scale them by `inv`."""
    if node.op_type != "LayerNormalization" or any(node.output[1:]):
        return False
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    params = [p for p in node.input[1:3] if p]
    if axis != -1 or any(p not in inits or len(readers.get(p, [])) != 1 for p in params):
        return False
    arrays = [numpy_helper.to_array(inits[p]) for p in params]
    if any(a.shape != inv.shape for a in arrays):
        return False
    for p, a in zip(params, arrays):
        inits[p].CopyFrom(numpy_helper.from_array((a * inv).astype(a.dtype), p))
    return True
