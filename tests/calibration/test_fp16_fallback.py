"""fp16 accuracy-driven fallback: range analysis cannot see precision lost inside a range (the
difference of two nearly equal Gemm outputs); the fallback ranks nodes by the SNR they lose and
keeps the worst in fp32 until the golden fp16 gate holds."""

from __future__ import annotations

import json

import numpy as np
import onnx
import torch

from calibration import fp16 as fp16_mod
from compiler import ortsession
from compiler.cli import main
from compiler.profile import load_profile


class Cancel(torch.nn.Module):
    """head(relu(a(x) − b(x)) · 1000) with b's weights = a's + 1e-4 noise: every tensor is in
    fp16's range, but a(x) − b(x) is mostly fp16 rounding error."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = torch.nn.Linear(64, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 8)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight + 1e-4 * torch.randn_like(self.a.weight))
            self.b.bias.copy_(self.a.bias)

    def forward(self, x):
        return self.head(torch.relu(self.a(x) - self.b(x)) * 1000.0)


def cancel():
    return Cancel().eval(), (torch.randn(4, 64, generator=torch.Generator().manual_seed(1)),)


def test_fallback_keeps_the_cancelling_nodes_in_fp32(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ref = "tests.calibration.test_fp16_fallback:cancel"
    assert main(["golden", "--model", ref]) == 0
    out = tmp_path / "out"
    code = main(["build", "--model", ref, "--target", "cpu", "--precision", "fp16", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "fp16 fails the gate after range analysis" in err  # without the fallback this model fails
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["fallback"]["passed"] and cal["fallback"]["ranking"][0]["op_type"] == "Sub"  # where the error is born
    kept = {n["node"] for n in cal["float_nodes"]}
    assert len(kept) < len(cal["fallback"]["ranking"])  # not everything went back to fp32
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["outputs"]["output"]["snr_db"] >= 30


def test_blocked_nodes_do_not_round_trip_through_fp16(tmp_path):
    """ORT's converter routes a tensor between two blocked nodes through fp16 and back; the
    round trip is removed, so blocking every node reproduces fp32 exactly."""
    model, (x,) = cancel()
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"], opset_version=17)
    proto = onnx.load(str(path))
    names = [n.name for n in proto.graph.node]
    policy = load_profile("cpu").precision_policy
    converted = fp16_mod.convert(onnx.load(str(path)), policy, names)
    casts = [n for n in converted.graph.node if n.op_type == "Cast"]
    to = {n.output[0]: next(a.i for a in n.attribute if a.name == "to") for n in casts}
    assert not any(to.get(n.input[0]) == onnx.TensorProto.FLOAT16 and to[n.output[0]] == onnx.TensorProto.FLOAT for n in casts)
    feeds = {"x": x.numpy()}
    want = ortsession.session(proto, level="disabled").run(None, feeds)[0]
    got = ortsession.session(converted, level="disabled").run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
