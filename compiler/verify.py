"""Comparators and the parity report.

Written with numpy rather than Polygraphy's comparator: Polygraphy's CompareFunc gives
elementwise atol/rtol and top-k indices but not per-sample cosine or SNR, and it wants runners
rather than stored golden arrays. These are a few lines each and are tested against
hand-computed values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from compiler.artifact.files import json_safe
from compiler.tolerances import MetricTolerance, Tolerance

SNR_CAP_DB = 200.0  # an exact match has infinite SNR; JSON has no infinity, so cap it


@dataclass
class OutputParity:
    name: str
    max_abs: float
    max_rel: float
    cosine: float
    snr_db: float
    topk_agreement: float | None
    tolerance: Tolerance
    passed: bool
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tolerance"] = self.tolerance.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OutputParity:
        """The inverse of `as_dict` (a statistic written as null — NaN — reads back as NaN)."""
        nan = float("nan")
        stats = {k: nan if d.get(k) is None else float(d[k]) for k in ("max_abs", "max_rel", "cosine", "snr_db")}
        return cls(d["name"], **stats, topk_agreement=d.get("topk_agreement"), tolerance=Tolerance(**d["tolerance"]),
                   passed=bool(d["passed"]), failures=list(d.get("failures", [])))


@dataclass
class MetricResult:
    name: str
    reference: float
    engine: float
    delta: float
    samples: int
    tolerance: MetricTolerance
    passed: bool

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tolerance"] = dataclasses.asdict(self.tolerance)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MetricResult:
        return cls(d["name"], d["reference"], d["engine"], d["delta"], d["samples"], MetricTolerance(**d["tolerance"]),
                   bool(d["passed"]))


@dataclass
class ParityReport:
    precision: str
    outputs: dict[str, OutputParity]
    metric: MetricResult | None = None
    # The same engine run another way this host offers (TFLite: reference kernels besides
    # XNNPACK), each checked against the same golden; every one must pass.
    variants: dict[str, ParityReport] = dataclasses.field(default_factory=dict)
    # The engine on the spec's validation groups (real inputs apart from golden, several
    # sequence lengths), against the float model: a reduced precision must hold there too.
    validation: dict[str, ParityReport] = dataclasses.field(default_factory=dict)
    # The int8/fp16 fallback search's own verdict, when it failed: even with every candidate node
    # in float the gate did not hold, so the model is not a working build of its precision.
    precision_gate: list[str] = dataclasses.field(default_factory=list)
    # A failed build's localization: the first divergent layer (`compiler.debug`), or why not
    localization: dict | None = None

    @property
    def passed(self) -> bool:
        return (all(o.passed for o in self.outputs.values()) and (self.metric is None or self.metric.passed)
                and all(v.passed for v in self.variants.values()) and all(v.passed for v in self.validation.values())
                and not self.precision_gate)

    def failures(self) -> list[str]:
        out = [f"{name}: {f}" for name, o in self.outputs.items() for f in o.failures]
        if self.metric is not None and not self.metric.passed:
            m = self.metric
            out.append(f"{m.name}: {m.engine:.4f} vs reference {m.reference:.4f} (drop {-m.delta:.4f} > {m.tolerance.max_drop})")
        out += [f"[{label}] {f}" for label, v in self.variants.items() for f in v.failures()]
        out += [f"validation {label}: {f}" for label, v in self.validation.items() for f in v.failures()]
        return out + [f"precision gate: {f}" for f in self.precision_gate]

    def as_dict(self) -> dict:
        """Strict JSON: a statistic that is NaN/Inf (non-finite engine output, shape mismatch)
        becomes null; the output's `failures` say what happened."""
        d = {"passed": self.passed, "precision": self.precision, "outputs": {k: v.as_dict() for k, v in self.outputs.items()}}
        if self.metric is not None:
            d["metric"] = self.metric.as_dict()
        if self.variants:
            d["variants"] = {k: v.as_dict() for k, v in self.variants.items()}
        if self.validation:
            d["validation"] = {k: v.as_dict() for k, v in self.validation.items()}
        if self.precision_gate:
            d["precision_gate"] = list(self.precision_gate)
        if self.localization is not None:
            d["localization"] = self.localization
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict) -> ParityReport:
        """The inverse of `as_dict` (a cached verification reads back as the report it was)."""
        return cls(d["precision"], {k: OutputParity.from_dict(v) for k, v in d["outputs"].items()},
                   MetricResult.from_dict(d["metric"]) if d.get("metric") else None,
                   {k: cls.from_dict(v) for k, v in d.get("variants", {}).items()},
                   {k: cls.from_dict(v) for k, v in d.get("validation", {}).items()},
                   list(d.get("precision_gate", [])), d.get("localization"))


def _per_sample(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1) if a.ndim >= 2 and a.shape[0] else a.reshape(1, -1)


def _floats(a: np.ndarray) -> np.ndarray:
    """`a` as float32 or float64 without a copy where it already is one (float16, bfloat16 and
    integers are widened)."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample dot products accumulated in float64, without a float64 copy of either side
    (einsum casts in buffers: a quarter of the time of `astype(float64)` on a 2.4 M-element
    activation, the debug command's hot loop)."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def cosine(reference: np.ndarray, actual: np.ndarray) -> float:
    """Minimum cosine similarity over samples (rows along axis 0; the whole array if 1-D).
    Defined for every input: empty → 1.0; a zero row is 1.0 against a zero row, else 0.0;
    NaN/Inf anywhere in a row make its cosine NaN (which every gate treats as a failure)."""
    r, a = _per_sample(_floats(reference)), _per_sample(_floats(actual))
    if r.size == 0:
        return 1.0
    with np.errstate(all="ignore"):
        rr, aa, ra = _row_dots(r, r), _row_dots(a, a), _row_dots(r, a)
    if not (np.isfinite(rr).all() and np.isfinite(aa).all()):  # a NaN/Inf (or an overflow): the exact path
        return _cosine_exact(r, a)
    return _cosine_of(rr, aa, ra)


def _cosine_of(rr: np.ndarray, aa: np.ndarray, ra: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        den = np.sqrt(rr) * np.sqrt(aa)
        both_zero = den == 0
        cos = np.where(both_zero, np.where(rr + aa == 0, 1.0, 0.0), ra / np.where(both_zero, 1, den))
    return float(cos.min())


def _cosine_exact(r: np.ndarray, a: np.ndarray) -> float:
    r, a = r.astype(np.float64), a.astype(np.float64)
    with np.errstate(all="ignore"):
        num = (r * a).sum(1)
        den = np.linalg.norm(r, axis=1) * np.linalg.norm(a, axis=1)
        both_zero = den == 0
        cos = np.where(both_zero, np.where((np.abs(r).sum(1) + np.abs(a).sum(1)) == 0, 1.0, 0.0),
                       num / np.where(both_zero, 1, den))
        finite = np.isfinite(r).all(1) & np.isfinite(a).all(1)
        cos = np.where(finite, cos, np.nan)
    return float(np.nan if np.isnan(cos).any() else cos.min())


def snr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """10·log10(signal / noise), clipped to ±SNR_CAP_DB; NaN when either side holds NaN, and
    −SNR_CAP_DB when the noise is infinite (an Inf in the engine output)."""
    r, a = _floats(reference).reshape(1, -1), _floats(actual).reshape(1, -1)
    with np.errstate(all="ignore"):
        d = a - r
        noise, signal = float(_row_dots(d, d)[0]), float(_row_dots(r, r)[0])
    return _snr_of(signal, noise if math.isfinite(noise) or not math.isfinite(signal) else _noise_exact(r, a))


def _noise_exact(r: np.ndarray, a: np.ndarray) -> float:
    """Σ(a − r)² in float64: for an Inf in `a`, or finite values whose float32 difference overflowed."""
    with np.errstate(all="ignore"):
        return float(((a.astype(np.float64) - r.astype(np.float64)) ** 2).sum())


def _snr_of(signal: float, noise: float) -> float:
    if math.isnan(noise) or math.isnan(signal):
        return float("nan")
    if noise == 0:
        return SNR_CAP_DB
    if signal == 0 or math.isinf(noise):
        return -SNR_CAP_DB
    if math.isinf(signal):
        return SNR_CAP_DB
    return max(-SNR_CAP_DB, min(SNR_CAP_DB, 10 * math.log10(signal / noise)))


def distance(reference: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    """(max abs error, `cosine`, `snr_db`) in one pass over both arrays, with the same meaning
    as each alone: the debug command compares some sixty activations of millions of elements."""
    r, a = _per_sample(_floats(reference)), _per_sample(_floats(actual))
    if r.size == 0:
        return 0.0, 1.0, SNR_CAP_DB
    with np.errstate(all="ignore"):
        d = a - r
        max_abs = float(np.abs(d).max())
        rr, aa, ra, dd = _row_dots(r, r), _row_dots(a, a), _row_dots(r, a), _row_dots(d, d)
    if not (math.isfinite(max_abs) and np.isfinite(rr).all() and np.isfinite(aa).all() and np.isfinite(dd).all()):
        with np.errstate(all="ignore"):
            max_abs = float(np.abs(np.subtract(a, r, dtype=np.float64)).max())
        return max_abs, cosine(reference, actual), snr_db(reference, actual)
    return max_abs, _cosine_of(rr, aa, ra), _snr_of(float(rr.sum()), float(dd.sum()))


def softmax_max(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).max(1)


def topk_agreement(reference: np.ndarray, actual: np.ndarray, k: int = 1, min_confidence: float = 0.0) -> float | None:
    """Fraction of samples whose reference top-1 class is in the engine's top-k, among samples
    whose reference softmax maximum is ≥ `min_confidence` (None if the output is not a batch of
    score vectors, or no sample is that confident)."""
    if reference.ndim != 2 or reference.shape[1] < 2:
        return None
    keep = softmax_max(reference.astype(np.float64)) >= min_confidence if min_confidence > 0 else np.ones(len(reference), bool)
    if not keep.any():
        return None
    ref_top = reference[keep].argmax(1)
    act_topk = np.argsort(-actual[keep], axis=1)[:, :k]
    return float((act_topk == ref_top[:, None]).any(1).mean())


def compare(name: str, reference: np.ndarray, actual: np.ndarray | None, tol: Tolerance) -> OutputParity:
    """All statistics for one output, and which gates of `tol` it breaks (`actual` None: the
    engine returned no such output)."""
    failures: list[str] = []
    nan = float("nan")
    if actual is None:
        return OutputParity(name, nan, nan, nan, nan, None, tol, False, ["the engine returned no such output"])
    actual = np.asarray(actual)
    if reference.shape != actual.shape:
        failures.append(f"shape {tuple(actual.shape)} differs from the golden {tuple(reference.shape)}")
        return OutputParity(name, nan, nan, nan, nan, None, tol, False, failures)
    if reference.size == 0:  # equal empty shapes: nothing to differ
        return OutputParity(name, 0.0, 0.0, 1.0, SNR_CAP_DB, None, tol, True, [])
    if not np.all(np.isfinite(actual)):
        failures.append(f"{int((~np.isfinite(actual)).sum())} non-finite value(s) (NaN/Inf) in the engine output")
    with np.errstate(all="ignore"):  # NaN/Inf in the engine output: reported as a failure above
        return _gate(name, reference.astype(np.float64), actual.astype(np.float64), tol, failures)


def _gate(name: str, r: np.ndarray, a: np.ndarray, tol: Tolerance, failures: list[str]) -> OutputParity:
    diff = np.abs(a - r)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff / np.maximum(np.abs(r), 1e-6)).max()) if diff.size else 0.0
    stats = {
        "max_abs": max_abs,
        "max_rel": max_rel,
        "cosine": cosine(r, a),
        "snr_db": snr_db(r, a),
        "topk_agreement": topk_agreement(r, a, tol.k, tol.min_confidence),
    }
    upper = {"max_abs", "max_rel"}
    for gate in Tolerance.GATES:
        bound, value = getattr(tol, gate), stats[gate]
        if bound is None or value is None:
            continue
        bad = value > bound if gate in upper else value < bound
        if bad or math.isnan(value):
            rel = "≤" if gate in upper else "≥"
            failures.append(f"{gate} = {value:.6g}, must be {rel} {bound:g}")
    return OutputParity(name, **stats, tolerance=tol, passed=not failures, failures=failures)


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(-1) == labels).mean())


def metric_result(name: str, reference: float, engine: float, samples: int, tol: MetricTolerance) -> MetricResult:
    delta = engine - reference
    return MetricResult(name, reference, engine, delta, samples, tol, passed=delta >= -tol.max_drop - 1e-12)

