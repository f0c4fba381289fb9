"""Architectures nobody here tuned the pipeline for (models/unseen.py: tiny random-init GPT-2,
BERT, DistilBERT, T5 encoder, ViT, an LSTM+GRU, a depthwise-separable CNN), through the CLI
alone as `package.module:factory` models with no spec file: golden from the factory's example
inputs, fp32 builds on cpu, intel, the jetson host half, android and apple (MIL reference
evaluation), int8 with --calib."""

from __future__ import annotations

import json

import pytest

from compiler.cli import main

pytestmark = pytest.mark.coverage

MODELS = ["gpt2", "bert", "distilbert", "t5_encoder", "vit", "lstm_gru", "depthwise_cnn"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("unseen")


@pytest.mark.parametrize("name", MODELS)
def test_unseen_model_builds_fp32_everywhere(name, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    ref = f"models.unseen:{name}"
    assert main(["golden", "--model", ref]) == 0, capsys.readouterr().err
    for target in ("cpu", "intel", "jetson", "android", "apple"):
        out = workdir / f"{name}-{target}"
        code = main(["build", "--quiet", "--model", ref, "--target", target, "--precision", "fp32", "--out", str(out)])
        assert code == 0, f"{target}: {capsys.readouterr().err}"
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "passed"
        if name == "gpt2" and target == "cpu":
            # the attention fusion matched but ORT rejects the fused graph: declined, with the reason
            declined = [d for p in manifest["passes"] for d in p.get("declined", [])]
            assert declined and "rank" in declined[0]


@pytest.mark.parametrize("name, calib", [("bert", "models.unseen:calib_ids"), ("depthwise_cnn", "models.unseen:calib_images")])
@pytest.mark.parametrize("target", ["cpu", "jetson"])
def test_unseen_model_int8_with_calib(name, calib, target, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    ref = f"models.unseen:{name}"
    if not (workdir / "golden" / name).is_dir():
        assert main(["golden", "--model", ref]) == 0
    out = workdir / f"{name}-{target}-int8"
    code = main(["build", "--quiet", "--model", ref, "--target", target, "--precision", "int8", "--calib", calib,
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["calibration"]["samples"] == 16
