"""The validation set (spec [validation]): parsing, its sample floor, and how a candidate is judged on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler import spec, validation
from compiler.errors import BadInput
from compiler.tolerances import Tolerance
from compiler.verify import ParityReport
from targets.base import Runner

REPO = Path(__file__).resolve().parents[2]


class _Fixed(Runner):
    """Returns `fn(feeds)`: stands in for an engine whose outputs the test controls."""

    input_names = ("image",)
    output_names = ("logits",)

    def __init__(self, fn):
        self.fn = fn

    def run(self, feeds):
        return {"logits": self.fn(feeds["image"])}


def _logits(x):
    return np.stack([x.reshape(len(x), -1)[:, :10].sum(1) * k for k in range(1, 11)], 1).astype(np.float32)


def test_bundled_validation_sets_are_separate_and_large_enough():
    for name in ("digits-cnn", "efficientnet-lite0", "minilm-l6"):
        s = spec.resolve(name)
        assert s.validation is not None
        for label, src in s.validation.groups:
            assert len(src.load()) >= spec.MIN_VALIDATION_SAMPLES, (name, label)
    minilm = spec.resolve("minilm-l6")
    golden = set(minilm.golden.sentences) | set(minilm.calibration.data.sentences)
    assert not golden & set(minilm.validation.groups[0][1].sentences)


def test_lengths_need_a_sentence_source(tmp_path):
    text = (REPO / "models/digits-cnn.toml").read_text().replace(
        'factory = "models.digits_cnn:validation"', 'factory = "models.digits_cnn:validation"\nlengths = [16]')
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(BadInput, match=r"\[validation\].*'lengths'.*sentences"):
        spec.load_spec(p)


def test_too_few_samples_is_a_spec_error_naming_the_group(tmp_path):
    text = (REPO / "models/digits-cnn.toml").read_text().replace(
        'factory = "models.digits_cnn:validation"', 'factory = "models.digits_cnn:validation"\nlimit = 20')
    p = tmp_path / "few.toml"
    p.write_text(text)
    s = spec.load_spec(p)
    with pytest.raises(BadInput, match=r"\[validation\] gives 20 sample\(s\) in group 'all'.*at least 32"):
        validation.load(s, lambda: _Fixed(_logits))


def test_a_candidate_fails_on_one_bad_batch_that_golden_would_not_show():
    s = spec.resolve("digits-cnn")
    groups = validation.load(s, lambda: _Fixed(_logits))
    assert [g.samples for g in groups] == [64]
    tol = Tolerance(cosine=0.99)

    def broken_last_batch(x):  # the float model's outputs, except one sample in the last batch
        out = _logits(x)
        if np.array_equal(x, groups[0].batches[-1]["image"]):
            out[0] = -out[0]
        return out

    ok = validation.check(_Fixed(_logits), groups, "int8", lambda name: tol)
    assert ok["all"].passed and ok["all"].outputs["logits"].cosine == pytest.approx(1.0)
    bad = validation.check(_Fixed(broken_last_batch), groups, "int8", lambda name: tol)
    assert not bad["all"].passed and bad["all"].outputs["logits"].cosine < 0 and bad["all"].failures()


def test_a_failing_validation_group_fails_the_engine_parity():
    """The built engine's validation run is part of its parity: passed, failures and parity.json."""
    s = spec.resolve("digits-cnn")
    groups = validation.load(s, lambda: _Fixed(_logits))
    tol = Tolerance(cosine=0.99)
    good = validation.check(_Fixed(_logits), groups, "bf16", lambda name: tol)
    report = ParityReport("bf16", dict(good["all"].outputs), validation=good)
    assert report.passed and report.as_dict()["validation"]["all"]["passed"]
    report.validation = validation.check(_Fixed(lambda x: -_logits(x)), groups, "bf16", lambda name: tol)
    assert not report.passed
    assert report.failures() and all(f.startswith("validation all: logits: ") for f in report.failures())
