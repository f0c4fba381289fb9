"""Activation ranges from calibration data: minmax, percentile, entropy (KL) and MSE.

ONNX Runtime's calibrators do the collection (they augment the graph to output every tensor
and keep a running min/max or histogram); we feed them one batch per call so their memory does
not grow with the number of samples. ORT has no MSE calibrator: `_mse_thresholds` picks, per
tensor, the clipping threshold that minimises the expected squared quantization error over
ORT's collected histogram (clipping error beyond the threshold + uniform rounding error Δ²/12
within it), which is what it adds.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import numpy_helper
from onnxruntime.quantization.calibrate import (
    CalibrationMethod,
    TensorData,
    TensorsData,
    create_calibrator,
)

from calibration.data import OneBatch
from calibration.surgery import consumers

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
    "mse": CalibrationMethod.Entropy,  # same signed histogram collection; thresholds are ours
}
NUM_BINS = 2048
# ORT's KL threshold search loops in Python over every candidate bin count: its cost grows with
# the square of the bins (2048 bins: 227 s for the 8 tensors of the digits CNN; 256 bins: ~2 s).
ENTROPY_BINS = 256


@dataclass
class Ranges:
    method: str
    samples: int
    seconds: float
    data: TensorsData  # what ORT's quantizer consumes

    def as_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for name in sorted(self.data.keys()):  # ORT fills it from a set: hash-seed order
            lo, hi = self.data[name].range_value
            out[name] = {"min": float(np.asarray(lo).min()), "max": float(np.asarray(hi).max())}
        return out


def collect(
    model_path: Path,
    batches: Iterable[dict[str, np.ndarray]],
    method: str,
    op_types: tuple[str, ...] = (),
    symmetric: bool = False,
    percentile: float = 99.999,
    log: Callable[[str], None] = lambda s: None,
    count: Callable[[dict[str, np.ndarray]], int] = lambda f: len(next(iter(f.values()))),
) -> Ranges:
    """Run the calibration batches through the model and return per-tensor ranges."""
    t0 = time.perf_counter()
    extra = {"symmetric": symmetric}
    if method == "percentile":
        extra.update(num_bins=NUM_BINS, percentile=percentile)
    elif method == "entropy":
        extra.update(num_bins=ENTROPY_BINS, num_quantized_bins=128)
    elif method == "mse":
        extra.update(num_bins=NUM_BINS, num_quantized_bins=128)
    samples = 0
    with tempfile.TemporaryDirectory(prefix="calib-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        # ORT's histogram collector prints a line per collect() call; keep stdout for results.
        calibrator = create_calibrator(
            model_path, list(op_types) or None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=METHODS[method], extra_options=extra,
        )
        _single_threaded(calibrator)
        if method != "minmax":
            _finite_histograms(calibrator)
        wanted = bool(calibrator.select_tensors_to_calibrate(calibrator.model)[0])
        for feeds in batches:
            if wanted and feeds:  # a graph without inputs (a Constant) feeds {}, which ORT reads as the end
                calibrator.collect_data(OneBatch(feeds))
            samples += count(feeds) if feeds else 1
        if (not wanted or not calibrator.model.graph.input
                or method != "minmax" and not (calibrator.collector and calibrator.collector.histogram_dict)):
            data = TensorsData(METHODS[method], {})  # no tensor of a quantizable op: nothing to range
        else:
            data = _clip_ranges(calibrator.compute_data() if method != "mse"
                                else _mse_thresholds(calibrator.collector.histogram_dict))
    log(f"{method} ranges for {len(data.keys())} tensors from {samples} samples")
    return Ranges(method, samples, time.perf_counter() - t0, data)


def _clip_ranges(data: TensorsData) -> TensorsData:
    """Ranges within ±HISTOGRAM_LIMIT: minmax over an additive mask (−inf, float32's lowest) gives
    a scale LiteRT's converter refuses ("scale out of expressed type range"); the nodes touching
    such a tensor stay float anyway (`calibration.precision`), its Q/DQ needs a finite scale."""
    for name in list(data.keys()):
        lo, hi = data[name].range_value
        lo2, hi2 = (np.clip(np.asarray(v), -HISTOGRAM_LIMIT, HISTOGRAM_LIMIT).astype(np.asarray(v).dtype) for v in (lo, hi))
        if not (np.array_equal(lo2, lo) and np.array_equal(hi2, hi)):
            data[name] = TensorData(lowest=lo2, highest=hi2)
    return data


def _single_threaded(calibrator) -> None:
    """ORT builds the calibration session with default threads; the shared 2-core hosts want 1."""
    from compiler import ortsession

    calibrator.infer_session = ortsession.session(calibrator.augmented_model_path, level="disabled")


# Values beyond this are clipped before ORT's histograms see them. An additive attention mask
# holds float32's lowest value (-3.4e38); a histogram over ±3.4e38 overflows numpy's bin edges
# ("Too many bins for data range") and the calibration crashed. Such a tensor cannot be int8
# anyway: its node goes back to float in the fallback; the clip only keeps the others' ranges.
HISTOGRAM_LIMIT = 1e30


def _finite_histograms(calibrator) -> None:
    """Give ORT's histogram calibrator a collector that clips to ±HISTOGRAM_LIMIT (it creates
    its own lazily on the first batch unless one is set)."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    class Clipped(HistogramCollector):
        def collect(self, name_to_arr):
            return super().collect({k: [np.clip(a, -HISTOGRAM_LIMIT, HISTOGRAM_LIMIT) for a in v]
                                    for k, v in name_to_arr.items()})

    c = calibrator
    c.collector = Clipped(method=c.method, symmetric=c.symmetric, num_bins=c.num_bins,
                          num_quantized_bins=c.num_quantized_bins, percentile=c.percentile, scenario=c.scenario)


def mse_threshold(hist: np.ndarray, edges: np.ndarray, levels: int = 255, candidates: int = 128) -> float:
    """The symmetric threshold t minimising E[(x − q(x))²] for a histogram over [-T, T]."""
    centers = (edges[:-1] + edges[1:]) / 2
    counts = hist.astype(np.float64)
    amax = float(np.abs(edges).max())
    best_t, best_err = amax, np.inf
    for t in np.linspace(amax / candidates, amax, candidates):
        step = 2 * t / levels
        clipped = np.abs(centers) > t
        err = (counts[clipped] * (np.abs(centers[clipped]) - t) ** 2).sum() + counts[~clipped].sum() * step**2 / 12
        if err < best_err:
            best_t, best_err = float(t), err
    return best_t


def _mse_thresholds(histograms: dict) -> TensorsData:
    out = {}
    for name, (hist, edges, lo, hi, _thr) in histograms.items():
        t = mse_threshold(hist, edges)
        lowest = np.array(max(float(lo), -t), dtype=np.float32)
        highest = np.array(min(float(hi), t), dtype=np.float32)
        out[name] = TensorData(lowest=lowest, highest=highest, hist=hist, hist_edges=edges.astype(np.float32))
    return TensorsData(CalibrationMethod.MinMax, out)  # explicit ranges: ORT uses them as min/max


def fold_activations(model, r: Ranges) -> list[str]:
    """A Relu or Clip that alone reads a tensor: that tensor's range becomes the activation's
    (the producer's range clipped to the activation's bounds), and `r` is updated in place.
    The activation's output takes the same range: calibrated on its own (a percentile of a
    distribution with a spike at 0) it differs slightly, and then ORT keeps a requantizing
    DQ→Q pair between two QLinearConvs that an equal scale lets it drop (digits-cnn's three
    QLinearConvs now chain directly, as in the graph of ORT's own quantize_static).

    Quantizing the producer's output to [0, 6] saturates exactly where ReLU6 clips — TFLite's
    fused activation, ORT's QLinearConv with a clipped output range — where its own range
    wasted the int8 levels on values the activation throws away: EfficientNet-Lite0's stem
    convolution writes ±100 before its ReLU6 (3.5 dB SNR for that node alone in int8).
    Returns the tensors whose range changed."""
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    readers = {t: len(ns) for t, ns in consumers(model).items()}
    outputs = {o.name for o in model.graph.output}
    changed = []
    for n in model.graph.node:
        x = n.input[0] if n.input else ""
        if n.op_type not in ("Relu", "Clip") or x not in r.data or readers.get(x) != 1 or x in outputs:
            continue
        bounds = activation_bounds(n, consts)
        if bounds is None:
            continue
        lo, hi = _bounds(r.data[x])
        new_lo, new_hi = max(lo, bounds[0]), min(hi, bounds[1])
        if new_hi <= new_lo:
            continue
        for t in (x, n.output[0]):
            if t in r.data and _bounds(r.data[t]) != (new_lo, new_hi):
                r.data[t] = TensorData(lowest=np.array(new_lo, np.float32), highest=np.array(new_hi, np.float32))
                changed.append(t)
    return changed


def _bounds(d: TensorData) -> tuple[float, float]:
    return float(np.asarray(d.range_value[0]).min()), float(np.asarray(d.range_value[1]).max())


def activation_bounds(node, consts: dict) -> tuple[float, float] | None:
    if node.op_type == "Relu":
        return 0.0, np.inf
    attrs = {a.name: a.f for a in node.attribute}
    bounds = [attrs.get("min", -np.inf), attrs.get("max", np.inf)]
    for k, name in enumerate(node.input[1:3]):
        if not name:
            continue
        if name not in consts:
            return None  # bounds computed at run time
        bounds[k] = float(consts[name])
    return bounds[0], bounds[1]
