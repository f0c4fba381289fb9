"""`best`'s choice (`compiler.build.best.choose`) and the interval it rests on
(`compiler.bench.median_interval`): a difference inside noise is a tie, and a tie goes to accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.bench import median_interval
from compiler.build.best import choose


def _c(precision, p50, lo, hi, accuracy, size=1000):
    return {"precision": precision, "p50_ms": p50, "p50_ci95_ms": [lo, hi], "accuracy": accuracy, "engine_bytes": size}


def test_a_clear_winner_is_chosen_whatever_its_accuracy():
    chosen, tied = choose([_c("fp32", 10.0, 9.8, 10.2, 1.0), _c("int8", 5.0, 4.9, 5.1, 0.995)])
    assert (chosen, tied) == ("int8", ["int8"])


def test_within_noise_the_more_accurate_then_the_smaller_wins():
    # fp16 is 2 % faster at the median but the intervals overlap: bf16 and fp16 are a tie
    cands = [_c("bf16", 9.0, 8.7, 9.4, 0.9995, 2000), _c("fp16", 8.82, 8.6, 9.1, 0.99998, 2000),
             _c("int8", 12.0, 11.8, 12.3, 0.99)]
    assert choose(cands) == ("fp16", ["fp16", "bf16"])
    cands[0]["accuracy"] = cands[1]["accuracy"]
    cands[0]["engine_bytes"] = 1000  # equal accuracy: the smaller engine
    assert choose(cands)[0] == "bf16"
    # and the choice does not depend on the candidates' order
    assert choose(list(reversed(cands)))[0] == "bf16"


def test_median_interval_covers_the_true_median_narrows_with_samples_and_agrees_with_scipy():
    rng = np.random.default_rng(7)

    def sample(n):
        return 10.0 + rng.lognormal(0.0, 0.5, n)  # latency-like, skewed; true median 11.0

    widths = {}
    for n in (40, 400):
        covered, w = 0, []
        for _ in range(60):
            x = sample(n)
            lo, hi = median_interval(x)
            assert lo <= float(np.median(x)) <= hi
            covered += lo <= 11.0 <= hi
            w.append(hi - lo)
        assert covered >= 0.85 * 60, (n, covered)  # nominal 95 %: a percentile bootstrap runs a little under at small n
        widths[n] = float(np.median(w))
    assert widths[400] < 0.5 * widths[40]  # ten times the samples, about 1/sqrt(10) of the width
    assert median_interval(np.full(30, 5.0)) == (5.0, 5.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    x = sample(40)
    ref = scipy_stats.bootstrap((x,), np.median, method="percentile", n_resamples=4000, random_state=1).confidence_interval
    lo, hi = median_interval(x)
    assert abs(lo - ref.low) < 0.15 * (ref.high - ref.low) and abs(hi - ref.high) < 0.15 * (ref.high - ref.low)
