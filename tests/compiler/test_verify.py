"""Comparators against values computed by hand."""

import math

import numpy as np
import pytest

from compiler.tolerances import Tolerance
from compiler.verify import compare, cosine, snr_db, topk_agreement


def test_cosine_is_min_over_samples():
    ref = np.array([[1.0, 0.0], [1.0, 1.0]])
    act = np.array([[1.0, 0.0], [1.0, 0.0]])  # second row is 45° off
    assert cosine(ref, act) == pytest.approx(1 / math.sqrt(2))


def test_snr_db_hand_value():
    ref = np.array([3.0, 4.0])  # signal energy 25
    act = np.array([3.0, 4.5])  # noise energy 0.25 -> 100x -> 20 dB
    assert snr_db(ref, act) == pytest.approx(20.0)


def test_topk_agreement_counts_reference_top1_in_engine_topk():
    ref = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    act = np.array([[0.5, 0.4, 0.1], [0.9, 0.0, 0.1]])  # row 0: top1 differs, but ref top1 is 2nd
    assert topk_agreement(ref, act, 1) == 0.5
    assert topk_agreement(ref, act, 2) == 1.0
    assert topk_agreement(np.zeros(4), np.zeros(4)) is None


def test_compare_reports_each_broken_gate():
    ref = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    act = ref + np.array([[0.0, 0.0, 0.01]], dtype=np.float32)
    ok = compare("y", ref, act, Tolerance(max_abs=0.02))
    assert ok.passed and ok.max_abs == pytest.approx(0.01, rel=1e-3)
    bad = compare("y", ref, act, Tolerance(max_abs=1e-3, cosine=0.9999999))
    assert not bad.passed
    assert any(f.startswith("max_abs") for f in bad.failures)
    assert any(f.startswith("cosine") for f in bad.failures)


def test_compare_fails_on_nan_and_shape():
    ref = np.ones((2, 3), np.float32)
    act = ref.copy()
    act[0, 0] = np.nan
    assert not compare("y", ref, act, Tolerance()).passed
    r = compare("y", ref, np.ones((3, 2), np.float32), Tolerance())
    assert not r.passed and "shape" in r.failures[0]


def test_topk_agreement_only_on_confident_samples():
    ref = np.array([[5.0, 0.0, 0.0], [0.1, 0.0, 0.05]])  # row 0 confident (p≈0.99), row 1 a near-tie
    act = np.array([[4.0, 0.0, 0.0], [0.0, 0.1, 0.05]])  # the near-tie flips
    assert topk_agreement(ref, act, 1) == 0.5
    assert topk_agreement(ref, act, 1, min_confidence=0.5) == 1.0
    assert topk_agreement(ref[1:], act[1:], 1, min_confidence=0.5) is None


def _naive(ref: np.ndarray, act: np.ndarray) -> tuple[float, float, float]:
    """float64, row by row, straight from the definitions (the reference for the fast paths)."""
    r, a = ref.astype(np.float64).reshape(ref.shape[0], -1), act.astype(np.float64).reshape(act.shape[0], -1)
    cos = min(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) for x, y in zip(r, a))
    snr = 10 * math.log10(float((r**2).sum()) / float(((a - r) ** 2).sum()))
    return float(np.abs(a - r).max()), cos, snr


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_distance_and_the_fast_metrics_match_the_definitions(dtype):
    from compiler.verify import distance

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 8, 33, 17)).astype(dtype)
    act = (ref.astype(np.float64) + 0.05 * rng.standard_normal(ref.shape)).astype(dtype)
    want = _naive(ref, act)
    got = distance(ref, act)
    # max abs is the float32 difference: exact to float32 rounding (one part in 1e7)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    assert got[1:] == pytest.approx(want[1:], rel=1e-9)
    assert cosine(ref, act) == pytest.approx(want[1], rel=1e-12)
    assert snr_db(ref, act) == pytest.approx(want[2], rel=1e-9)


def test_distance_keeps_the_exact_meaning_on_inf_nan_zero_empty_and_overflow():
    from compiler.verify import SNR_CAP_DB, distance

    ref = np.ones((2, 3), np.float32)
    inf = ref.copy()
    inf[1, 0] = np.inf
    assert math.isnan(distance(ref, inf)[1]) and distance(ref, inf)[2] == -SNR_CAP_DB
    nan = ref.copy()
    nan[0, 2] = np.nan
    assert math.isnan(distance(ref, nan)[1]) and math.isnan(distance(ref, nan)[2])
    zero = np.zeros((2, 3), np.float32)
    assert distance(zero, zero) == (0.0, 1.0, SNR_CAP_DB)
    assert distance(ref, zero)[1] == 0.0
    assert distance(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)) == (0.0, 1.0, SNR_CAP_DB)
    # finite float32 values whose difference overflows float32: answered in float64
    big = np.array([[3e38, 1.0]], np.float32)
    neg = np.array([[-3e38, 1.0]], np.float32)
    max_abs, cos, snr = distance(big, neg)
    assert max_abs == pytest.approx(6e38, rel=1e-6) and cos == pytest.approx(-1.0)
    assert snr == pytest.approx(10 * math.log10(9e76 / 36e76), rel=1e-6)
    assert snr_db(big, neg) == pytest.approx(snr, rel=1e-9)
