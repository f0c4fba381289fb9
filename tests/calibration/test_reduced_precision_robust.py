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


def test_an_attention_encoder_at_int8_runs_in_litert(tmp_path):
    """LiteRT's quantized SOFTMAX requires output scale 1/256 at zero point −128; the calibrated
    range gave 8.2e-4 and LiteRT refused the file ("SOFTMAX failed to prepare"), reported as the
    user's problem. The QDQ model now carries the fixed parameters the spec requires."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "enc"
    assert main(["build", "--quiet", "--no-cache", "--model", "models.unseen_mobile:attention_encoder", "--target", "android",
                 "--precision", "int8", "--calib", "models.unseen_mobile:calib_encoder", "--out", str(out)]) == 0
    m = onnx.load(str(out / "model.onnx"))
    prod = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    after_softmax = [q for q in m.graph.node if q.op_type == "QuantizeLinear" and prod[q.input[0]].op_type == "Softmax"]
    assert after_softmax
    for q in after_softmax:
        assert float(inits[q.input[1]]) == 1 / 256 and int(inits[q.input[2]]) == -128 and inits[q.input[2]].dtype == np.int8


@pytest.mark.parametrize("name", ["test_add_bcast", "test_attention_3d_attn_mask_expanded"])
def test_int8_calibrates_a_graph_without_a_batch_axis(cases, tmp_path, name):
    """x (3, 4, 5) + y (5,): no batch axis to slice the calibration data along; it is one feed."""
    code, _ = _build(cases, tmp_path, name, "android", "int8")
    assert code == 0


@pytest.mark.parametrize("name, why", [
    ("test_gemm_transposeB", "weights computed at run time"),  # LiteRT runs such a Gemm in float whatever its Q/DQ
    ("test_attention_3d_causal_expanded", None),  # LiteRT's converter refuses the full int8 candidate: nodes go back
    ("test_attention_4d_softcap_neginf_mask_expanded", None),  # −inf in the calibration mask: data, not a broken batch
    ("test_mish_expanded", None),  # a static 1-D input longer than the default 256 calibration samples
    ("test_constant", None),  # no graph input: nothing to calibrate
])
def test_android_int8_builds_what_android_fp32_builds(cases, tmp_path, name, why):
    """android's default is int8: a case its fp32 build verifies must build at int8 too, nodes
    returned to float where LiteRT cannot run them as integers."""
    code, out = _build(cases, tmp_path, name, "android", "int8")
    assert code == 0
    if why:
        float_nodes = json.loads((out / "calibration.json").read_text())["fallback"]["float_nodes"]
        assert any(why in n["why"] for n in float_nodes), float_nodes


def test_a_tflite_that_litert_cannot_run_is_called_the_lowerings_fault(cases, tmp_path, capsys):
    """Shape with start > end: an empty shape tensor our lowering writes and LiteRT cannot size.
    The file is ours, so the message says the lowering failed, not the user's model."""
    code, _ = _build(cases, tmp_path, "test_shape_start_greater_than_end", "android", "fp32")
    assert code == 2
    assert "a fault of the lowering, not of your model" in capsys.readouterr().err
