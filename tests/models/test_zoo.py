"""The bundled zoo through the real path: golden sets are current, builds pass their gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compiler import golden, spec
from compiler.artifact.files import sha256_file
from compiler.bench import bench
from compiler.cli import main
from tests.conftest import artifact_content_files

REPO = Path(__file__).resolve().parents[2]
ZOO = ["digits-cnn", "efficientnet-lite0", "minilm-l6"]


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


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each (model, extra CLI args) once per test module; returns the artifact dir."""
    cache: dict[tuple, Path] = {}

    def get(name: str, *args: str) -> Path:
        key = (name, *args)
        if key not in cache:
            out = tmp_path_factory.mktemp(name) / "artifact"
            code = main(["build", "--quiet", "--model", name, "--target", "cpu", "--out", str(out), *args])
            assert code == 0, f"build {key} exited {code}"
            cache[key] = out
        return cache[key]

    return get


@pytest.mark.parametrize(
    "name, gate",
    [("digits-cnn", "max_abs"), ("efficientnet-lite0", "max_abs"), ("minilm-l6", "cosine")],
)
def test_build_cpu_fp32_passes(name, gate, built):
    out = built(name)
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
    assert {f["path"] for f in manifest["files"]} == artifact_content_files(out)
    nodes = manifest["node_count"]
    assert 0 < nodes["optimized"] <= nodes["exported"]
    assert manifest["pipeline"]["name"] == "default" and manifest["passes"]
    for rec in manifest["passes"]:
        assert set(rec) >= {"name", "phase", "modified", "nodes_before", "nodes_after"}
        assert "seconds" not in rec  # durations are volatile: build.json
    if name == "minilm-l6":  # the fusions the cpu target accepts fire on the real model
        fused = manifest["ops"]["optimized"]
        assert fused.get("com.microsoft::Attention") == 6 and fused.get("com.microsoft::SkipLayerNormalization") == 12
        assert fused.get("com.microsoft::BiasGelu") == 6 and "Softmax" not in fused
    if name == "digits-cnn":
        metric = parity["metric"]
        assert metric["name"] == "top1" and metric["samples"] == 450
        assert metric["reference"] > 0.95 and abs(metric["delta"]) <= 0.001
        assert main(["verify", "--artifact", str(out)]) == 0
        res = bench(out, batch=8, iters=5, warmup=1)
        lat = res["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] and res["batch"] == 8


def test_legacy_efficientnet_is_simplified_to_the_dynamo_size(built):
    """The legacy export's "same"-padding subgraphs (≈456 nodes) fold away: no more nodes than
    the dynamo export, every pass verified against golden on the way, parity ≤ 1e-4."""
    legacy = json.loads((built("efficientnet-lite0", "--exporter", "legacy", "--verify-passes") / "manifest.json").read_text())
    dynamo = json.loads((built("efficientnet-lite0") / "manifest.json").read_text())
    assert legacy["frontend"]["exporter"] == "legacy" and legacy["node_count"]["exported"] > 400
    assert legacy["node_count"]["optimized"] <= dynamo["node_count"]["exported"]
    assert legacy["pipeline"]["verified_each_pass"] is True
    fired = legacy["pipeline"]["fusions"]
    assert fired.get("pad_conv") == 17 and fired.get("batch_flatten") == 1
    for op in ("Pad", "Shape", "ConstantOfShape", "Reshape"):
        assert op not in legacy["ops"]["optimized"]
    parity = json.loads((built("efficientnet-lite0", "--exporter", "legacy", "--verify-passes") / "parity.json").read_text())
    assert parity["outputs"]["logits"]["max_abs"] <= 1e-4
