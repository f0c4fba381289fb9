"""The cases the gate exists for must not crash it: an engine that outputs NaN, or an output
whose shape differs from golden, is exit 1 with the artifact kept and marked failed, and
parity.json is standard JSON (no bare NaN) saying what went wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.cli import main


def _strict_json(path_or_text) -> dict:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text

    def refuse(c):
        raise AssertionError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


def _model(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """An .onnx and a golden set for which a correct engine must fail parity."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    if kind == "nan":  # sqrt of a negative input: NaN; golden claims 0
        node = helper.make_node("Sqrt", ["x"], ["y"])
        inputs, outputs = np.array([-1.0, 4.0], np.float32), np.array([0.0, 2.0], np.float32)
    else:  # the engine doubles the length; golden has the input's length
        node = helper.make_node("Concat", ["x", "x"], ["y"], axis=0)
        inputs, outputs = np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0], np.float32)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, str(path))
    golden = tmp_path / f"golden-{kind}"
    golden.mkdir()
    np.savez(golden / "inputs.npz", x=inputs)
    np.savez(golden / "outputs.npz", y=outputs)
    return path, golden


@pytest.mark.parametrize("target", ["cpu", "intel"])
@pytest.mark.parametrize("kind, says", [("nan", "non-finite"), ("shape", "shape (4,) differs from the golden (2,)")])
def test_failing_engine_is_exit_1_with_valid_json(tmp_path, capsys, target, kind, says):
    model, golden = _model(tmp_path, kind)
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--target", target, "--model", str(model), "--golden", str(golden), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert says in err and "internal error" not in err
    manifest = _strict_json(out / "manifest.json")
    parity = _strict_json(out / "parity.json")
    assert manifest["status"] == "failed" and parity["passed"] is False
    y = parity["outputs"]["y"]
    assert any(says in f for f in y["failures"])
    assert "FAIL" in (out / "report.md").read_text()
    # verify says the same, in strict JSON on stdout
    assert main(["verify", "--artifact", str(out)]) == 1
    captured = capsys.readouterr()
    assert _strict_json(captured.out)["outputs"]["y"]["failures"] == y["failures"]


def test_best_with_every_candidate_failing_is_exit_1_with_the_artifact_kept(tmp_path, capsys):
    """As for any failed build (README, exit 1: artifact kept, marked failed): the candidate at the
    target's default precision is installed, failed, with every candidate's verdict."""
    model, golden = _model(tmp_path, "nan")
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--target", "cpu", "--precision", "best", "--model", str(model),
                 "--golden", str(golden), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "no precision of target 'cpu' passes" in err and "non-finite" in err and str(out) in err
    manifest = _strict_json(out / "manifest.json")
    assert manifest["status"] == "failed" and manifest["precision"] == "fp32"  # cpu's default
    assert manifest["best"]["chosen"] is None and manifest["best"]["installed"] == "fp32"
    assert {c["precision"] for c in manifest["best"]["candidates"]} == {"fp32", "fp16", "int8", "int8-dynamic", "int4"}
    assert not any(c["passed"] for c in manifest["best"]["candidates"])
    assert _strict_json(out / "parity.json")["passed"] is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_verify_passes_with_a_nan_model_is_exit_1(tmp_path, capsys):
    model, golden = _model(tmp_path, "nan")
    code = main(["build", "--quiet", "--target", "cpu", "--verify-passes", "--model", str(model),
                 "--golden", str(golden), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "non-finite" in err and "internal error" not in err


def test_int8_whose_fallback_search_fails_is_a_failed_build(tmp_path, capsys, monkeypatch):
    """When the gate fails even with every candidate node back in float, the model left is float:
    it must not be installed as a passed int8 artifact (exit 1, status failed, the reason named)."""
    from calibration import precision as precision_mod
    from calibration.fallback import Gate

    real_search = precision_mod.search

    def search_with_an_unmeetable_gate(ranked, build, gate, work, log):
        return real_search(ranked, build, lambda path: Gate(False, ["unmeetable"], "cos 0.5 (a gate no model meets)"), work, log)

    monkeypatch.setattr(precision_mod, "search", search_with_an_unmeetable_gate)
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "int8 misses the gate even with all 4 candidate node(s) back in float (cos 0.5" in err
    manifest, parity = _strict_json(out / "manifest.json"), _strict_json(out / "parity.json")
    assert manifest["status"] == "failed" and parity["passed"] is False
    assert parity["precision_gate"] and manifest["calibration"]["gate_failures"] == parity["precision_gate"]
    assert all(o["passed"] for o in parity["outputs"].values())  # the (float) engine itself matches golden
