"""Tolerances as data: per precision, per output, with a default key.

The defaults below are the one place default tolerances live. A model overrides them in
``golden/<model>/tolerances.toml``, which `compiler golden` writes with the effective values and
a reason for each entry:

    [fp32.""]                 # every output at fp32
    max_abs = 1e-4
    reason = "..."
    [fp32.logits]             # one output (by graph output name)
    topk_agreement = 1.0
    [fp32."@metric"]          # the task metric of the labelled evaluation set
    max_drop = 0.001          # accuracy may drop at most this much (fraction, 0.001 = 0.1 pt)

A gate left unset (None) is reported but not enforced.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import BadInput
from compiler.precision import JUDGED_AS, PRECISIONS, Precision
from compiler.spec import OutputKind
from compiler.tomlschema import Table, load_toml

METRIC_KEY = "@metric"


@dataclass(frozen=True)
class Tolerance:
    max_abs: float | None = None  # max |engine - reference|
    max_rel: float | None = None  # max |engine - reference| / max(|reference|, 1e-6)
    cosine: float | None = None  # min cosine similarity per sample (row of the batch)
    snr_db: float | None = None  # min signal-to-noise ratio of the whole output, dB
    topk_agreement: float | None = None  # min fraction of samples whose reference top-1 is in engine top-k
    k: int = 1
    min_confidence: float = 0.0  # top-k agreement counts only samples whose reference softmax max ≥ this
    reason: str = ""

    GATES = ("max_abs", "max_rel", "cosine", "snr_db", "topk_agreement")

    def as_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != ""}


@dataclass(frozen=True)
class MetricTolerance:
    max_drop: float = 0.0
    reason: str = ""


# fp32: an engine computing the same graph in fp32 differs from eager by reassociation only;
# 1e-4 absolute on logits of magnitude ≤ ~20 is ~1e-5 relative, far above fp32 rounding noise
# and far below any real bug (a wrong pad or a dropped bias moves logits by ≥ 1e-2).
_FP32 = {
    OutputKind.TENSOR: Tolerance(max_abs=1e-4, cosine=0.9999, reason="default for fp32 tensors"),
    OutputKind.LOGITS: Tolerance(max_abs=1e-4, cosine=0.9999, topk_agreement=1.0, reason="default for fp32 logits"),
    OutputKind.EMBEDDING: Tolerance(max_abs=1e-4, cosine=0.9999, reason="default for fp32 embeddings"),
}
# Reduced precisions cannot meet elementwise bounds on unnormalised outputs; they are gated on
# direction (cosine), noise (SNR) and, for classifiers, the decision (top-1).
_FP16 = {
    OutputKind.TENSOR: Tolerance(cosine=0.999, snr_db=30.0, reason="default for fp16 tensors"),
    # top-1 as for int8: kept where the fp32 model is confident. A near-tie is a coin toss for any
    # rounding: on a validation view of EfficientNet, p 0.266 vs 0.263, OpenVINO's f16 kernels
    # flipped it while cosine stayed 0.99992 — and the ORT fallback spent 6 fp32 nodes keeping it.
    OutputKind.LOGITS: Tolerance(cosine=0.999, snr_db=30.0, topk_agreement=1.0, min_confidence=0.5,
                                 reason="default for fp16 logits: confident top-1 kept"),
    OutputKind.EMBEDDING: Tolerance(cosine=0.999, reason="default for fp16 embeddings"),
}
_BF16 = {
    OutputKind.TENSOR: Tolerance(cosine=0.995, snr_db=20.0, reason="default for bf16 tensors (8-bit mantissa)"),
    OutputKind.LOGITS: Tolerance(cosine=0.995, snr_db=20.0, reason="default for bf16 logits (8-bit mantissa)"),
    OutputKind.EMBEDDING: Tolerance(cosine=0.995, reason="default for bf16 embeddings (8-bit mantissa)"),
}
# int8 classifiers: every decision the fp32 model is confident about (p ≥ 0.5) must survive;
# near-ties among unsure classes may flip. Cosine guards the logits as a whole.
_INT8 = {
    OutputKind.TENSOR: Tolerance(cosine=0.99, reason="default for int8 tensors"),
    OutputKind.LOGITS: Tolerance(cosine=0.95, topk_agreement=1.0, min_confidence=0.5,
                                 reason="default for int8 logits: confident top-1 kept"),
    OutputKind.EMBEDDING: Tolerance(cosine=0.99, reason="default for int8 embeddings"),
}
# int4 (weight-only, issue 30): the bar int8 has — the same decisions kept, embeddings at cos 0.99
_INT4 = {
    OutputKind.TENSOR: Tolerance(cosine=0.99, reason="default for int4 (weight-only) tensors"),
    OutputKind.LOGITS: Tolerance(cosine=0.95, topk_agreement=1.0, min_confidence=0.5,
                                 reason="default for int4 logits: confident top-1 kept"),
    OutputKind.EMBEDDING: Tolerance(cosine=0.99, reason="default for int4 embeddings"),
}
DEFAULTS: dict[str, dict[OutputKind, Tolerance]] = {"fp32": _FP32, "fp16": _FP16, "bf16": _BF16, "int8": _INT8, "int4": _INT4,
                                                    "int8-dynamic": _INT8}
DEFAULT_METRIC = {
    "fp32": MetricTolerance(0.001, "fp32 may flip at most a near-tie: 0.1 point"),
    "fp16": MetricTolerance(0.002, "default for fp16"),
    "bf16": MetricTolerance(0.005, "default for bf16"),
    "int8": MetricTolerance(0.005, "int8 must stay within 0.5 point of fp32"),
    "int4": MetricTolerance(0.005, "int4 must stay within 0.5 point of fp32, as int8"),
    "int8-dynamic": MetricTolerance(0.005, "int8-dynamic must stay within 0.5 point of fp32, as int8"),
}


@dataclass(frozen=True)
class Tolerances:
    """Overrides read from a tolerances.toml: {precision: {output or "": Tolerance}}."""

    overrides: dict[str, dict[str, Tolerance]] = dataclasses.field(default_factory=dict)
    metric: dict[str, MetricTolerance] = dataclasses.field(default_factory=dict)

    def for_output(self, precision: str, name: str, kind: OutputKind) -> Tolerance:
        precision = self._section(precision)
        per = self.overrides.get(precision, {})
        return per.get(name) or per.get("") or DEFAULTS[precision][kind]

    def for_metric(self, precision: str) -> MetricTolerance:
        precision = self._section(precision)
        return self.metric.get(precision) or DEFAULT_METRIC[precision]

    def _section(self, precision: str) -> str:
        """The precision's own section, else that of the precision it is judged as (JUDGED_AS)."""
        alias = JUDGED_AS.get(precision)
        if alias is None or precision in self.overrides or precision in self.metric:
            return precision
        return str(alias)


def load(path: Path) -> Tolerances:
    """Read tolerances.toml strictly (unknown precision, output key or gate → BadInput)."""
    if not path.exists():
        return Tolerances()
    data = load_toml(path, "tolerance file")
    overrides: dict[str, dict[str, Tolerance]] = {}
    metric: dict[str, MetricTolerance] = {}
    root = Table(data, str(path))
    for precision in PRECISIONS:
        pt = root.sub(precision)
        if pt is None:
            continue
        for key in list(data[precision]):
            t = pt.sub(key)
            if key == METRIC_KEY:
                drop = _bounded(t, "max_drop", t.req("max_drop", (int, float)), 0.0, 1.0)
                metric[precision] = MetricTolerance(drop, t.opt("reason", str, ""))
            else:
                fields = {g: _bounded(t, g, t.opt(g, (int, float)), *GATE_RANGES[g]) for g in Tolerance.GATES}
                k = t.opt("k", int, 1)
                if k < 1:
                    raise BadInput(f"{t.where}: k = {k} must be ≥ 1.")
                overrides.setdefault(precision, {})[key] = Tolerance(
                    **fields, k=k, min_confidence=_bounded(t, "min_confidence", t.opt("min_confidence", (int, float), 0.0), 0.0, 1.0),
                    reason=t.opt("reason", str, ""))
            t.done()
        pt.done()
    root.done()
    return Tolerances(overrides, metric)


def render(outputs: dict[str, OutputKind], with_metric: bool) -> str:
    """The tolerances.toml text `compiler golden` writes: effective defaults, each with a reason."""
    lines = [
        "# Parity tolerances for this model's golden vectors, per precision and output.",
        "# Written by `python -m compiler golden` from the defaults in compiler/tolerances.py.",
        "# Edit a value only with a reason in its `reason` field.",
        "",
    ]
    for precision in PRECISIONS:
        if precision in JUDGED_AS:  # judged by its alias's section (an edit there applies to both)
            continue
        for name, kind in outputs.items():
            tol = DEFAULTS[precision][kind]
            lines.append(f'[{precision}."{name}"]')
            for k, v in tol.as_dict().items():
                if (k == "k" and v == 1) or (k == "min_confidence" and v == 0.0):
                    continue
                lines.append(f"{k} = {v!r}" if k != "reason" else f'reason = "{v}"')
            lines.append("")
        if with_metric:
            m = DEFAULT_METRIC[precision]
            lines += [f'[{precision}."{METRIC_KEY}"]', f"max_drop = {m.max_drop!r}", f'reason = "{m.reason}"', ""]
    return "\n".join(lines)


# The range each bound may take: a NaN or Inf bound, a cosine above 1 or a negative bound would
# make a gate pass everything (NaN compares false) or nothing; such a file is refused at load.
GATE_RANGES = {"max_abs": (0.0, math.inf), "max_rel": (0.0, math.inf), "cosine": (-1.0, 1.0),
               "snr_db": (0.0, 1000.0), "topk_agreement": (0.0, 1.0)}


def _bounded(t: Table, key: str, v: float | int | None, low: float, high: float) -> float | None:
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v) or not low <= v <= high:
        shown = "∞" if high == math.inf else f"{high:g}"
        raise BadInput(f"{t.where}: {key} = {v!r} is outside [{low:g}, {shown}] (a finite number is required); "
                       "such a bound would not gate anything.")
    return v


def check_precision(precision: str) -> Precision:
    return Precision.parse(precision)
