"""fp16 and int8 are as robust as fp32: every way the precision stage can fail on a graph is a
per-node fallback or a clear refusal (exit 2 naming the library), never exit 4 — on ONNX's own
node cases that crashed it, built the way a user with an ONNX file would (`build --model x.onnx
--golden DIR`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from tests.coverage import node_cases


@pytest.fixture(scope="module")
def cases() -> dict[str, node_cases.Case]:
    return {c.name: c for c in node_cases.all_cases()}


def _build(cases, tmp_path: Path, name: str, target: str, precision: str) -> tuple[int, Path]:
    model, golden = node_cases.write(cases[name], tmp_path / name)
    calib = ["--calib", str(golden / "inputs.npz")] if precision == "int8" else []
    out = tmp_path / name / "out"
    code = main(["build", "--quiet", "--no-cache", "--target", target, "--precision", precision, "--model", str(model),
                 "--golden", str(golden), "--out", str(out), *calib])
    return code, out


@pytest.mark.parametrize("name", [
    # the converter's graph is refused (its Casts for a blocked LayerNormalization come after it)
    "test_layer_normalization_default_axis",
    # ONNX Runtime's CPU ScatterND has no fp16 kernel with reduction max (fails when it runs)
    "test_scatternd_max",
])
def test_fp16_returns_what_onnxruntime_cannot_run_to_fp32(cases, tmp_path, name):
    code, out = _build(cases, tmp_path, name, "cpu", "fp16")
    assert code == 0
    float_nodes = json.loads((out / "calibration.json").read_text())["float_nodes"]
    assert any("ONNX Runtime cannot run it in fp16" in n["why"] for n in float_nodes), float_nodes


def test_apple_fp16_is_judged_by_the_core_ml_program_and_falls_back_there(cases, tmp_path):
    """ORT passes this softmax in fp16 (it computes in fp32 inside the session); the MIL program
    gives cos 0.72. The gate runs the program (MIL evaluator) and keeps nodes in fp32 until it passes."""
    code, out = _build(cases, tmp_path, "test_softmax_large_number_expanded_ver18", "apple", "fp16")
    assert code == 0
    fallback = json.loads((out / "calibration.json").read_text())["fallback"]
    assert fallback["passed"] and not fallback["rounds"][0]["passed"], fallback["rounds"]
    parity = json.loads((out / "parity.json").read_text())
    assert parity["outputs"]["y"]["cosine"] > 0.999


def test_int8_of_a_graph_with_nothing_to_quantize_builds_float(cases, tmp_path):
    """ORT's histogram calibrator raised "Histogram has not been collected" (exit 4) on graphs
    without a quantizable op."""
    code, out = _build(cases, tmp_path, "test_transpose_all_permutations_2", "cpu", "int8")
    assert code == 0
    assert json.loads((out / "calibration.json").read_text())["quantized_nodes"] == 0


def test_int8_that_the_quantizer_cannot_handle_is_a_named_refusal(cases, tmp_path, capsys):
    code, _ = _build(cases, tmp_path, "test_swiglu_float16_expanded", "cpu", "int8")
    assert code == 2
    assert "onnxruntime's quantizer cannot calibrate and quantize this model" in capsys.readouterr().err
