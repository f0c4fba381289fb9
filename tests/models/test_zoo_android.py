"""The zoo on the `android` target (our StableHLO lowering → litert-converter → .tflite),
verified in the LiteRT Interpreter with XNNPACK and with reference kernels."""

from __future__ import annotations

import json

import pytest

from compiler.cli import main
from targets.stablehlo import litert
from tests.models.conftest import build

CNNS = ["digits-cnn", "efficientnet-lite0"]


@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow)])  # ≈ 27 s
def test_android_fp32_parity_with_both_kernel_sets(tmp_path, name):
    code, out, manifest = build(tmp_path, name, "android", "fp32")
    assert code == 0
    assert "model.tflite" in {f["path"] for f in manifest["files"]}
    parity = json.loads((out / "parity.json").read_text())
    runs = [parity, *parity["variants"].values()]
    assert len(runs) == 2  # XNNPACK (the engine) and the reference kernels
    for run in runs:
        (stats,) = run["outputs"].values()
        assert stats["max_abs"] <= 1e-4
    info = manifest["engine"]["info"]
    assert info["float_kernels"].get("CONV_2D", 0) > 0 and not info["int8_kernels"]
    assert info["op_versions"]["CONV_2D"] >= 1 and info["min_runtime_version"]
    assert [d["step"] for d in manifest["deferred"]] == ["verify-on-device"]
    # `verify` re-runs both kernel sets from the artifact alone
    assert main(["verify", "--artifact", str(out)]) == 0


# EfficientNet is slow here (~70 s: the engine gate compiles and runs each fallback candidate in
# LiteRT, on golden and 60 validation views); digits covers the path in the default run.
@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow)])
def test_android_int8_runs_integer_convolutions(tmp_path, name):
    code, out, manifest = build(tmp_path, name, "android", "int8")
    assert code == 0
    assert manifest["calibration"]["preset"] == "tflite"
    found = litert.inspect(out / "model.tflite")  # read back from the file, not the manifest
    # every convolution and the classifier run int8 kernels (issue 11): ReLU6 ranges folded
    # into the convolutions' outputs, the transB Gemm an int8 FULLY_CONNECTED with its bias
    assert not found.float_kernels, found.float_kernels
    assert found.int8_kernels.get("CONV_2D", 0) > 0 and found.int8_kernels.get("FULLY_CONNECTED") == 1
    float_nodes = json.loads((out / "calibration.json").read_text())["fallback"]["float_nodes"]
    assert not [n for n in float_nodes if n["op_type"] in ("Conv", "Gemm", "MatMul")]
    # I/O is int8 where the graph's first/last op is quantized (the runner and an app apply the
    # recorded scale and zero point), float where the fallback kept that end in float
    io = manifest["engine"]["info"]["io"]
    assert all(v["dtype"] == "float32" or (v["dtype"] == "int8" and v["scale"] > 0) for v in io.values())
    assert any(v["dtype"] == "int8" for v in io.values())


# each ≈40 s (two LiteRT kernel sets on golden and the validation set); digits in the default run
@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow),
                                  pytest.param("minilm-l6", marks=pytest.mark.slow)])
def test_android_fp16_stores_float16_weights_and_verifies(tmp_path, name):
    """`--precision fp16` on android: LiteRT's float16 quantization (float16 weights widened by a
    DEQUANTIZE, float32 compute) — about half the fp32 file, verified in both kernel sets."""
    code, out, manifest = build(tmp_path, name, "android", "fp16")
    assert code == 0 and manifest["precision"] == "fp16"
    found = litert.inspect(out / "model.tflite")  # read back from the file
    assert found.fp16_weights > 0 and found.ops["DEQUANTIZE"] >= found.fp16_weights
    assert not found.int8_kernels and found.float_kernels
    assert 0.45 <= manifest["engine"]["info"]["size_vs_fp32"] <= 0.6, manifest["engine"]["info"]["size_vs_fp32"]
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and all(r["passed"] for r in parity["variants"].values())
    if name != "digits-cnn":  # the zoo specs with a [validation] set: judged in LiteRT on it too
        assert parity["validation"] and all(g["passed"] for g in parity["validation"].values())


@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow),
                                  pytest.param("minilm-l6", marks=pytest.mark.slow)])
def test_android_int8_dynamic_runs_hybrid_kernels_and_verifies(tmp_path, name):
    """`--precision int8-dynamic` on android: LiteRT's dynamic-range quantization (int8 weights per
    channel, float activations quantized on the fly) — the file holds int8 weights read by float-
    input kernels, is about a quarter to a third of fp32, and verifies in both kernel sets at
    int8's bars; no calibration data is read."""
    code, out, manifest = build(tmp_path, name, "android", "int8-dynamic")
    assert code == 0 and manifest["precision"] == "int8-dynamic"
    found = litert.inspect(out / "model.tflite")  # read back from the file
    assert found.hybrid_kernels and not found.int8_kernels, (found.hybrid_kernels, found.int8_kernels)
    assert manifest["engine"]["info"]["hybrid_kernels"] == dict(found.hybrid_kernels)
    assert 0.2 <= manifest["engine"]["info"]["size_vs_fp32"] <= 0.4, manifest["engine"]["info"]["size_vs_fp32"]
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and all(r["passed"] for r in parity["variants"].values())
    assert all(o["tolerance"]["cosine"] >= 0.95 for o in parity["outputs"].values())  # int8's bars (JUDGED_AS)
    assert "calibration" not in manifest or not (manifest["calibration"] or {}).get("samples")


@pytest.mark.slow  # ≈ 28 s; android int8/fp16 of MiniLM are slow tests too
def test_android_minilm_fp32(tmp_path):
    """MiniLM (GatherElements / GatherND of the exported mask and position ids, dynamic batch and
    sequence) at fp32: cosine ≥ 0.9999 on both kernel sets."""
    code, out, manifest = build(tmp_path, "minilm-l6", "android", "fp32")
    assert code == 0
    parity = json.loads((out / "parity.json").read_text())
    for run in [parity, *parity["variants"].values()]:
        assert run["outputs"]["sentence_embedding"]["cosine"] >= 0.9999
    assert manifest["engine"]["info"]["tflite_ops"]["GATHER_ND"] >= 1


@pytest.mark.slow  # ~3 min: the fallback search compiles and runs each candidate in LiteRT
def test_android_minilm_int8(tmp_path):
    code, out, manifest = build(tmp_path, "minilm-l6", "android", "int8")
    assert code == 0
    parity = json.loads((out / "parity.json").read_text())
    for run in [parity, *parity["variants"].values()]:
        assert run["outputs"]["sentence_embedding"]["cosine"] >= 0.99
    found = litert.inspect(out / "model.tflite")
    calib = json.loads((out / "calibration.json").read_text())
    # MatMuls go back to float only after every elementwise node (preset fallback_last) and run
    # float kernels exactly where they did. Judged on golden alone (issue 11) all 48 stayed int8;
    # since precision is also judged on the validation set (36 sentences at 16/64/128 tokens,
    # issue 10), LiteRT needs a few MatMuls in float to hold cos 0.99 there (3 on 2026-11-23).
    float_mm = [n for n in calib["fallback"]["float_nodes"] if n.get("op_type") == "MatMul"]
    ranked = [n for n in calib["fallback"]["float_nodes"] if "rank" in n["why"]]
    if float_mm:
        assert ranked[-len(float_mm):] == float_mm  # the MatMuls are the last to go back
    assert sum(found.int8_kernels.get(k, 0) for k in ("FULLY_CONNECTED", "BATCH_MATMUL")) == 48 - len(float_mm)
    assert found.int8_kernels.get("BATCH_MATMUL") == 12 and len(float_mm) <= 8, (found.int8_kernels, float_mm)
    assert sum(found.float_kernels.get(k, 0) for k in ("FULLY_CONNECTED", "BATCH_MATMUL")) == len(float_mm), found.float_kernels
    eq = calib["equalization"]
    assert len(eq["inputs"]) == 24 and len(eq["outputs"]) >= 6  # every FFN down-projection has outlier channels
    # the attention-mask Adds (range -3.4e38) were float from the start, with that reason
    assert sum("additive mask" in n["why"] for n in calib["fallback"]["float_nodes"]) == 6


def test_android_refuses_an_op_it_cannot_lower_by_name(tmp_path, capsys):
    """An op with no lowering is exit 2 naming the node and the op, with the supported list,
    before anything is written."""
    import numpy as np
    import onnx
    from onnx import helper

    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="the_det")], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    model = tmp_path / "det.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    golden = tmp_path / "golden"
    golden.mkdir()
    x = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    np.savez(golden / "inputs.npz", x=x)
    np.savez(golden / "outputs.npz", y=np.linalg.det(x).astype(np.float32))
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--target", "android", "--precision", "fp32", "--model", str(model), "--golden", str(golden),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "Det node 'the_det'" in err and "targets --ops TARGET" in err and "GatherND" not in err
    assert main(["targets", "--ops", "android"]) == 0
    listed = capsys.readouterr().out.split()
    assert "GatherND" in listed and "Det" not in listed
