"""Recurrent state is (layers, batch, hidden): golden, evaluation and calibration data are
sliced and batched along the axis the spec's named dims give ("batch" at axis 1 for h)."""

from __future__ import annotations

import json

import numpy as np

from compiler.cli import main
from compiler.datasets.factory import PythonSource
from compiler.spec import load_spec

SPEC = """
name = "gru-state"
source = "models.unseen:gru_with_state"
[[inputs]]
name = "x"
shape = ["batch", 10, 8]
[[inputs]]
name = "h"
shape = [1, "batch", 16]
[[outputs]]
name = "y"
[[outputs]]
name = "h_next"
[golden]
source = "python"
factory = "models.unseen:gru_state_data"
limit = 4
[calibration]
source = "python"
factory = "models.unseen:gru_state_data"
samples = 24
batch_size = 8
"""


def test_batches_follow_each_inputs_batch_axis(tmp_path):
    (tmp_path / "gru.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "gru.toml")
    assert spec.batch_axes == (("h", 1),)
    src = spec.calibration.data
    assert isinstance(src, PythonSource)
    batches = list(src.batches(8))
    assert [(b.feeds["x"].shape, b.feeds["h"].shape) for b in batches] == [((8, 10, 8), (1, 8, 16))] * 3
    full = src.load()
    np.testing.assert_array_equal(np.concatenate([b.feeds["h"] for b in batches], axis=1), full.feeds["h"])
    assert spec.golden.load().feeds["h"].shape == (1, 4, 16)


def test_gru_with_state_builds_int8(tmp_path, monkeypatch, capsys):
    (tmp_path / "gru.toml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    assert main(["golden", "--model", "gru.toml"]) == 0, capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["build", "--quiet", "--model", "gru.toml", "--target", "cpu", "--precision", "int8", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["calibration"]["samples"] == 24
