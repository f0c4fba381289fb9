"""INT8 and FP16 builds of the zoo through the real path, against the issue's gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compiler import golden
from compiler.cli import main
from compiler.verify import softmax_max
from tests.models.conftest import build

REPO = Path(__file__).resolve().parents[2]


def _build(tmp_path, name, precision):
    return build(tmp_path, name, "cpu", precision)


def _parity(out):
    return json.loads((out / "parity.json").read_text())


def test_digits_int8_accuracy_within_half_a_point(tmp_path):
    code, out, manifest = _build(tmp_path, "digits-cnn", "int8")
    assert code == 0 and manifest["precision"] == "int8"
    metric = _parity(out)["metric"]
    assert metric["name"] == "top1" and metric["samples"] == 450
    assert abs(metric["engine"] - metric["reference"]) <= 0.005
    report = (out / "report.md").read_text()
    assert f"reference {metric['reference']:.4f}" in report and f"engine {metric['engine']:.4f}" in report
    calib = json.loads((out / "calibration.json").read_text())
    assert calib["calibrator"] == "percentile" and calib["samples"] == 512 and calib["ranges"]
    assert calib["preset"] == "onnxruntime-cpu"
    listed = {f["path"] for f in manifest["files"]}
    assert {"calibration.json", "calibration.cache"} <= listed
    assert (out / "calibration.cache").read_text().startswith("TRT-")
    final = manifest["ops"]["final"]
    assert final["QuantizeLinear"] > 0 and final["DequantizeLinear"] > 0  # model.onnx is the QDQ model
    assert manifest["node_count"]["final"] > manifest["node_count"]["optimized"]


# slow: ≈ 60 s on the 2-core AVX2 host; the default run keeps under ~15 min (docs/testing.md)
@pytest.mark.slow
def test_efficientnet_int8_keeps_every_confident_top1(tmp_path):
    code, out, manifest = _build(tmp_path, "efficientnet-lite0", "int8")
    assert code == 0
    g = golden.Golden.load(REPO / "golden/efficientnet-lite0")
    ref = g.outputs["logits"]
    confident = softmax_max(ref.astype(np.float64)) >= 0.5
    assert confident.any()
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "model.ort.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, g.inputs)[0]
    assert (got[confident].argmax(1) == ref[confident].argmax(1)).all()
    calib = json.loads((out / "calibration.json").read_text())
    fb = calib["fallback"]
    assert fb["passed"] and len(fb["rounds"]) <= 2 * int(np.log2(max(2, len(fb["sensitivity"])))) + 3
    for node in fb["float_nodes"]:
        assert node["why"] and node["node"] in manifest["calibration"]["float_nodes"]


# slow: ≈ 60 s on the 2-core AVX2 host; the default run keeps under ~15 min (docs/testing.md)
@pytest.mark.slow
def test_minilm_int8_cosine_at_least_0_99(tmp_path):
    code, out, _ = _build(tmp_path, "minilm-l6", "int8")
    assert code == 0
    assert _parity(out)["outputs"]["sentence_embedding"]["cosine"] >= 0.99


# the two zoo models take 25–40 s each (slow); digits runs the same path in the default suite
@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow),
                                  pytest.param("minilm-l6", marks=pytest.mark.slow)])
def test_fp16_builds_pass_the_fp16_policy(tmp_path, name):
    code, out, manifest = _build(tmp_path, name, "fp16")
    assert code == 0 and manifest["status"] == "passed"
    (stats,) = _parity(out)["outputs"].values()
    assert stats["tolerance"]["reason"].startswith("default for fp16")
    import onnx

    m = onnx.load(str(out / "model.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer)
    assert m.graph.input[0].type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)


def test_int8_without_calibration_data_is_bad_input(tmp_path, capsys):
    spec = tmp_path / "nocal.toml"
    text = (REPO / "models/digits-cnn.toml").read_text()
    spec.write_text(text[: text.index("# Calibration")])
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--model", str(spec), "--target", "cpu", "--precision", "int8", "--out", str(out),
                 "--golden", str(REPO / "golden/digits-cnn")])
    err = capsys.readouterr().err
    assert code == 2 and "[calibration]" in err and "nocal.toml" in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("calibrator", ["minmax", "entropy", "mse"])
def test_efficientnet_int8_passes_with_every_calibrator(tmp_path, calibrator):
    out = tmp_path / calibrator
    code = main(["build", "--quiet", "--model", "efficientnet-lite0", "--target", "cpu", "--precision", "int8",
                 "--calibrator", calibrator, "--out", str(out)])
    assert code == 0
    assert json.loads((out / "calibration.json").read_text())["calibrator"] == calibrator


def test_best_installs_the_fastest_passing_precision(tmp_path, capsys):
    out = tmp_path / "best"
    assert main(["build", "--model", "digits-cnn", "--target", "cpu", "--precision", "best", "--out", str(out)]) == 0
    # the validation set's float reference is computed once and shared by the candidates
    assert capsys.readouterr().err.count("sample(s) judge each candidate") == 1
    manifest = json.loads((out / "manifest.json").read_text())
    best = manifest["best"]
    assert [c["precision"] for c in best["candidates"]] == ["fp32", "fp16", "int8", "int8-dynamic", "int4"]
    # per candidate: validation accuracy in the engine, precision map, float nodes and why, build time
    fp32, fp16, int8, dynamic, int4 = best["candidates"]
    # the digits CNN's classifier is a Gemm: int8-dynamic and int4 (MatMul weights) have nothing to take
    for c in (dynamic, int4):
        assert not c["passed"] and "has none" in " ".join(c["failures"])
    assert "validation_cosine" not in fp32 and fp32["precision_map"] == "fp32 graph"
    for c in (fp16, int8):
        assert list(c["validation_cosine"]) == ["all"] and c["validation_cosine"]["all"] >= 0.99
        assert c["build_seconds"] > 0 and all(n["why"] for n in c["float_nodes"])
    assert " node(s) int8, " in int8["precision_map"] and fp16["precision_map"].startswith("fp16 graph")
    if manifest["precision"] != "fp32":  # the installed engine's own validation run is in its parity record
        assert json.loads((out / "parity.json").read_text())["validation"]["all"]["passed"]
    passing = [c for c in best["candidates"] if c["passed"]]
    fastest = min(passing, key=lambda c: c["p50_ms"])
    # the chosen one is the fastest or within noise of it (intervals overlap), and the most accurate of those
    assert best["chosen"] == best["tied_with_fastest"][0] == manifest["precision"] and fastest["precision"] in best["tied_with_fastest"]
    tied = [c for c in passing if c["precision"] in best["tied_with_fastest"]]
    for c in passing:
        lo, hi = c["p50_ci95_ms"]
        assert lo <= c["p50_ms"] <= hi and 0 < c["engine_bytes"] and 0.9 < c["accuracy"] <= 1.0
        assert (c in tied) == (lo <= fastest["p50_ci95_ms"][1] and fastest["p50_ci95_ms"][0] <= hi)
    assert max(c["accuracy"] for c in tied) == next(c for c in tied if c["precision"] == best["chosen"])["accuracy"]
    assert "Precision choice" in (out / "report.md").read_text()
    assert best["shared_stages"] == "export and passes ran 1 time(s) for 3 candidate(s)"
    assert manifest["node_count"]["optimized"] < manifest["node_count"]["exported"] or manifest["passes"]  # the reused stages' record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # no candidate directories left behind
    assert main(["verify", "--artifact", str(out)]) == 0  # the file table still matches every file
