"""Dynamic int8 (`calibration/dynamic.py`, `--precision int8-dynamic` on `cpu`): ONNX Runtime's own
dynamic quantizer, judged against the float model in ORT and through the whole build."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import helper

from calibration import dynamic
from compiler import ortsession
from compiler.cli import main
from tests.targets.stablehlo.helpers import graph_model

F32 = np.float32


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2"),
             helper.make_node("MatMul", ["x", "x_t"], ["z"], name="runtime_b")]  # B computed at run time: not taken
    nodes.insert(0, helper.make_node("Transpose", ["x"], ["x_t"], perm=[0, 2, 1]))
    inits = {"w1": rng.standard_normal((64, 96)).astype(F32) / 8, "w2": rng.standard_normal((96, 32)).astype(F32) / 10}
    return graph_model(nodes, {"x": (F32, ["batch", 7, 64])}, {"y": F32, "z": F32}, inits, opset=17)


def _cos(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_constant_weight_matmuls_quantized_per_channel_run_in_ort_close_to_float(tmp_path):
    m = _model()
    path = tmp_path / "float.onnx"
    onnx.save(m, str(path))
    assert [n.name for n in dynamic.candidates(m)] == ["mm1", "mm2"]
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 7, 64)).astype(F32)}
    want = ortsession.session(m.SerializeToString()).run(None, feeds)
    q = dynamic.quantize(path, tmp_path / "q.onnx", [])
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("MatMulInteger") == 2 and "DynamicQuantizeLinear" in ops and ops.count("MatMul") == 1
    # per channel: one weight zero point (and scale) per output column of each weight
    zero_points = {i.name: i for i in q.graph.initializer if "zero_point" in i.name and len(i.dims) == 1}
    assert sorted(int(i.dims[0]) for i in zero_points.values()) == [32, 96]
    got = ortsession.session(q.SerializeToString()).run(None, feeds)
    assert 0.995 < _cos(want[0], got[0]) < 1.0  # int8: close, not equal
    np.testing.assert_array_equal(want[1], got[1])  # the run-time MatMul stays float
    kept = dynamic.quantize(path, tmp_path / "kept.onnx", ["mm2"])  # the fallback's exclusions stay float
    assert sorted(n.name for n in kept.graph.node if n.op_type == "MatMul") == ["mm2", "runtime_b"]
    ranked = dynamic.rank(m, q, [feeds])
    assert {s.node for s in ranked} == {"mm1", "mm2"} and all(s.snr_db <= 0 for s in ranked)


def test_cpu_int8_dynamic_builds_without_calibration_data_and_verifies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bare factory's golden set is written under the working directory
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--no-cache", "--model", "tests.calibration.test_int4:mlp", "--target", "cpu",
                 "--precision", "int8-dynamic", "--out", str(out)])  # no --calib: nothing to calibrate
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["precision"] == "int8-dynamic"
    stats = json.loads((out / "calibration.json").read_text())
    assert stats["precision"] == "int8-dynamic" and stats["matmuls"] == 2
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx"), load_external_data=False).graph.node}
    assert ("MatMulInteger" in ops) == (stats["quantized_nodes"] > 0)
    # judged by int8's bars (tolerances.JUDGED_AS), which the parity record names
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and all(o["tolerance"]["cosine"] == 0.99 for o in parity["outputs"].values())
