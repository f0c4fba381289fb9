"""`make build TARGET=jetson` on a host without CUDA: everything that can run here, exit 0."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx.numpy_helper as nh
import pytest

from calibration import trt_cache
from compiler.cli import main
from tests.models.conftest import build


# EfficientNet ~1 min (fp16 conversion, range analysis, fallback); digits covers it by default
@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("efficientnet-lite0", marks=pytest.mark.slow)])
def test_jetson_host_half(tmp_path, name):
    code, out, manifest = build(tmp_path, name, "jetson", "int8")
    assert code == 0 and manifest["status"] == "passed"
    files = {f["path"] for f in manifest["files"]}
    assert {"model.onnx", "calibration.cache", "calibration.json", "build_engine.sh", "parity.json"} <= files
    # the QDQ model uses the TensorRT preset: symmetric int8 (all zero points 0, int8)
    q = onnx.load(str(out / "model.onnx"))
    inits = {i.name: nh.to_array(i) for i in q.graph.initializer}
    zps = [inits[n.input[2]] for n in q.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
           and inits[n.input[2]].dtype != np.int32]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    head, scales = trt_cache.parse((out / "calibration.cache").read_text())
    assert head.startswith("TRT-") and scales and all(s > 0 for s in scales.values())
    steps = {d["step"]: d for d in manifest["deferred"]}
    assert set(steps) == {"engine-build", "engine-verify"}
    assert "tensorrt" in steps["engine-build"]["reason"].lower()
    assert "{artifact}/build_engine.sh" in steps["engine-build"]["command"]  # relocatable: {artifact} = this directory
    assert manifest["verified_with"].startswith("host-side check")
    assert "trtexec --onnx=model.onnx" in (out / "build_engine.sh").read_text()
    assert json.loads((out / "parity.json").read_text())["passed"]


def test_from_artifact_exits_3_here(tmp_path, capsys):
    code, out, _ = build(tmp_path, "digits-cnn", "jetson", "fp16")
    assert code == 0
    capsys.readouterr()
    assert main(["build", "--target", "jetson", "--from-artifact", str(out)]) == 3
    assert "TensorRT" in capsys.readouterr().err
