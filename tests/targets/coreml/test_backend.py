"""The `apple` target end to end on Linux, through the CLI: what is built, what is verified (MIL
reference evaluation, said so), what is deferred to a Mac, and int8 as weight compression."""

from __future__ import annotations

import json

from compiler.cli import main
from compiler.profile import load_profile
from targets.coreml.backend import CoremlBackend, coremltools
from targets.coreml.mil_eval import load_program, op_histogram
from targets.coreml.package import CONVERSION_DATE, item_identifier
from tests.models.conftest import REPO


def _build(tmp_path, monkeypatch, precision):
    monkeypatch.chdir(REPO)
    out = tmp_path / precision
    code = main(["build", "--quiet", "--model", "digits-cnn", "--target", "apple", "--precision", precision, "--out", str(out)])
    return code, out, json.loads((out / "manifest.json").read_text())


def test_linux_says_what_it_verifies():
    a = CoremlBackend().available(load_profile("apple"))
    assert a.can_compile and not a.can_run
    assert "MIL reference evaluation" in a.reason and "--on-device" in a.reason


def test_fp32_build_is_reloaded_and_checked_by_the_mil_evaluator(tmp_path, monkeypatch):
    code, out, m = _build(tmp_path, monkeypatch, "fp32")
    assert code == 0 and m["status"] == "passed"
    assert m["verified_with"].startswith("host-side check: MIL reference evaluation") and "not the Core ML runtime" in m["verified_with"]
    (step,) = m["deferred"]
    assert step["step"] == "verify-on-device" and "--on-device" in step["command"]
    info = m["engine"]["info"]
    assert info["flexible_shapes"]["image"] == {"min": [1, 1, 8, 8], "max": [64, 1, 8, 8]}
    _, program = load_program(out / "model.mlpackage")
    assert op_histogram(program) == info["mil_ops"] and info["mil_ops"]["conv"] == 3
    assert any(f["path"].startswith("model.mlpackage/") for f in m["files"])  # every file of the package hashed
    # the package is rewritten deterministically (tests/robustness/test_reproducible.py rebuilds it)
    pkg = json.loads((out / "model.mlpackage" / "Manifest.json").read_text())
    assert {k: e["path"] for k, e in pkg["itemInfoEntries"].items()} == {
        item_identifier(p): p for p in ("com.apple.CoreML/model.mlmodel", "com.apple.CoreML/weights")}
    assert pkg["itemInfoEntries"][pkg["rootModelIdentifier"]]["name"] == "model.mlmodel"
    meta = coremltools().models.MLModel(str(out / "model.mlpackage"), skip_model_load=True).user_defined_metadata
    assert "com.github.apple.coremltools.version" in meta and CONVERSION_DATE not in meta


def test_int8_is_weight_compression(tmp_path, monkeypatch):
    code, out, m = _build(tmp_path, monkeypatch, "int8")
    assert code == 0 and m["status"] == "passed"
    wc = m["engine"]["info"]["weight_compression"]
    assert wc["dtype"] == "int8" and wc["mode"] == "linear_symmetric" and wc["granularity"] == "per_channel"
    # digits-cnn: the two larger convs (4,608 and 18,432 weights) pass the 2,048-element threshold, the first (144) does not
    assert wc["compressed_weights"] == m["engine"]["info"]["mil_ops"]["constexpr_affine_dequantize"] == 2
    assert not (out / "calibration.cache").exists()  # no activation calibration, no TensorRT cache
    assert json.loads((out / "parity.json").read_text())["precision"] == "int8"
