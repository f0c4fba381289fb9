"""The bundled zoo through the real path: golden sets are current, builds pass their gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compiler import golden, spec
from compiler.artifacts import sha256_file
from compiler.bench import bench
from compiler.cli import main

REPO = Path(__file__).resolve().parents[2]
ZOO = ["digits-cnn", "efficientnet-lite0", "minilm-l6"]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # golden/<model> is relative to the repository


@pytest.mark.parametrize("name", ZOO)
def test_committed_golden_matches_fresh_eager_run(name, tmp_path):
    """Regenerating the golden set from the spec reproduces the committed arrays: the committed
    vectors are still what the current weights, data and preprocessing produce."""
    fresh = golden.generate(spec.resolve(name), tmp_path / name, log=lambda s: None)
    committed = golden.Golden.load(REPO / "golden" / name)
    new = golden.Golden.load(fresh)
    assert committed.inputs.keys() == new.inputs.keys() and committed.outputs.keys() == new.outputs.keys()
    for k in committed.inputs:
        np.testing.assert_array_equal(committed.inputs[k], new.inputs[k])
    for k in committed.outputs:  # eager is deterministic at 1 thread; allow summation-order noise only
        np.testing.assert_allclose(committed.outputs[k], new.outputs[k], atol=1e-5, rtol=0)
    assert (fresh / "tolerances.toml").read_text() == (REPO / "golden" / name / "tolerances.toml").read_text()


def test_efficientnet_golden_photos_are_classified_as_what_they_show():
    """Independent check of image loading + preprocessing: a wrong mean/std, channel order or
    crop would not give these ImageNet classes."""
    g = golden.Golden.load(REPO / "golden/efficientnet-lite0")
    top1 = dict(zip(g.meta["sample_descriptions"], g.outputs["logits"].argmax(1)))
    assert 281 <= top1["chelsea.png"] <= 285  # a cat
    assert top1["coffee.png"] == 967  # espresso
    assert top1["rocket.jpg"] in (657, 744)  # missile / projectile


def test_minilm_golden_is_unit_norm_and_sentences_differ():
    e = golden.Golden.load(REPO / "golden/minilm-l6").outputs["sentence_embedding"]
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    sims = e @ e.T
    assert (sims[~np.eye(len(e), dtype=bool)] < 0.5).all()


@pytest.mark.parametrize(
    "name, gate",
    [("digits-cnn", "max_abs"), ("efficientnet-lite0", "max_abs"), ("minilm-l6", "cosine")],
)
def test_build_cpu_fp32_passes(name, gate, tmp_path):
    out = tmp_path / name
    assert main(["build", "--quiet", "--model", name, "--target", "cpu", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    parity = json.loads((out / "parity.json").read_text())
    assert manifest["status"] == "passed" and parity["passed"]
    (stats,) = parity["outputs"].values()
    if gate == "max_abs":
        assert stats["max_abs"] <= 1e-4
    else:
        assert stats["cosine"] >= 0.9999
    for f in manifest["files"]:
        assert sha256_file(out / f["path"]) == f["sha256"]
    assert {f["path"] for f in manifest["files"]} == {p.name for p in out.iterdir()} - {"manifest.json"}
    assert manifest["node_count"]["exported"] > 0 and manifest["passes"] == []
    if name == "digits-cnn":
        metric = parity["metric"]
        assert metric["name"] == "top1" and metric["samples"] == 450
        assert metric["reference"] > 0.95 and abs(metric["delta"]) <= 0.001
        assert main(["verify", "--artifact", str(out)]) == 0
        res = bench(out, batch=8, iters=5, warmup=1)
        lat = res["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] and res["batch"] == 8
