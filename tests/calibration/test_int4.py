"""Weight-only int4 (`calibration/int4.py`, `--precision int4` on `cpu`): ONNX Runtime's own
MatMulNBits quantizer, judged against the float model in ORT and through the whole build."""

from __future__ import annotations

import json

import numpy as np
import onnx
import torch
from onnx import helper

from calibration import int4
from compiler import ortsession
from compiler.cli import main
from tests.targets.stablehlo.helpers import graph_model

F32 = np.float32


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             helper.make_node("MatMul", ["e", "w1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")]
    inits = {"table": rng.standard_normal((50, 64)).astype(F32), "w1": rng.standard_normal((64, 96)).astype(F32) / 8,
             "w2": rng.standard_normal((96, 32)).astype(F32) / 10}
    return graph_model(nodes, {"ids": (np.int64, ["batch", 7])}, {"y": F32}, inits, opset=21)


def _cos(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_every_weight_in_4_bits_runs_in_ort_close_to_float():
    m = _model()
    assert [n.name for n in int4.candidates(m)] == ["embed", "mm1", "mm2"]
    feeds = {"ids": np.random.default_rng(1).integers(0, 50, (3, 7)).astype(np.int64)}
    want = ortsession.session(m.SerializeToString()).run(None, feeds)[0]
    for algorithm in int4.ALGORITHMS:
        q = int4.quantize(m, algorithm, [])
        ops = {n.op_type for n in q.graph.node}
        assert {"MatMulNBits", "GatherBlockQuantized"} <= ops and "MatMul" not in ops, (algorithm, ops)
        got = ortsession.session(q.SerializeToString()).run(None, feeds)[0]
        assert 0.98 < _cos(want, got) < 1.0, (algorithm, _cos(want, got))  # 4 bits: close, not equal
        assert int4.weight_bytes(q) < int4.weight_bytes(m) / 4
    kept = int4.quantize(m, "rtn", ["mm2"])  # the fallback's exclusions stay float MatMuls
    assert [n.name for n in kept.graph.node if n.op_type == "MatMul"] == ["mm2"]
    ranked = int4.rank(m, int4.quantize(m, "rtn", []), [feeds])
    assert [s.op_type for s in ranked][-1] == "Gather" and {s.node for s in ranked} == {"embed", "mm1", "mm2"}


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(64, 128), torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def mlp():
    return _Mlp().eval(), (torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(0)),)


def calib():
    return {"x": np.random.default_rng(3).standard_normal((16, 5, 64)).astype(F32)}


def test_cpu_int4_build_verifies_and_records_its_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bare factory's golden set is written under the working directory
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--no-cache", "--model", "tests.calibration.test_int4:mlp", "--target", "cpu",
                 "--precision", "int4", "--calib", "tests.calibration.test_int4:calib", "--out", str(out)])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["precision"] == "int4"
    stats = json.loads((out / "calibration.json").read_text())
    assert stats["precision"] == "int4" and stats["algorithm"] == "rtn"
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx"), load_external_data=False).graph.node}
    quantized = stats["matmuls"] - len(stats["float_nodes"])
    assert ("MatMulNBits" in ops) == (quantized > 0) and stats["initializer_bytes"]["int4"] <= stats["initializer_bytes"]["float"]
