"""LSTM / GRU (unrolled) through litert-converter and LiteRT (XNNPACK and reference kernels)
against ONNX Runtime: directions, layouts, initial states, biases, GRU's linear_before_reset, a
dynamic batch; a dynamic sequence length is a named refusal."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.errors import ToolchainRefused
from tests.targets.stablehlo.helpers import compare_with_ort, graph_model, to_tflite

F32 = np.float32
rng = np.random.default_rng(2)
SEQ, IN, H = 5, 3, 4


def _w(*shape):
    return (0.5 * rng.standard_normal(shape)).astype(F32)


def _model(op, direction="forward", layout=0, states=True, **attrs):
    gates = 4 if op == "LSTM" else 3
    dirs = 2 if direction == "bidirectional" else 1
    inits = {"W": _w(dirs, gates * H, IN), "R": _w(dirs, gates * H, H), "B": _w(dirs, 2 * gates * H)}
    x_shape = [SEQ, "b", IN] if layout == 0 else ["b", SEQ, IN]
    s_shape = [dirs, "b", H] if layout == 0 else ["b", dirs, H]
    inputs = {"x": (F32, x_shape)}
    names = ["x", "W", "R", "B"]
    if states:
        inputs["h0"] = (F32, s_shape)
        names += ["", "h0"]
        if op == "LSTM":
            inputs["c0"] = (F32, s_shape)
            names.append("c0")
    outputs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outputs, hidden_size=H, direction=direction, layout=layout, **attrs)
    return graph_model([node], inputs, {o: F32 for o in outputs}, inits, opset=14)


def _feeds(op, direction, layout, states):
    dirs = 2 if direction == "bidirectional" else 1
    out = []
    for b in (1, 3):
        f = {"x": rng.standard_normal((SEQ, b, IN) if layout == 0 else (b, SEQ, IN)).astype(F32)}
        if states:
            s = (dirs, b, H) if layout == 0 else (b, dirs, H)
            f["h0"] = rng.standard_normal(s).astype(F32)
            if op == "LSTM":
                f["c0"] = rng.standard_normal(s).astype(F32)
        out.append(f)
    return out


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
@pytest.mark.parametrize("direction,states", [("forward", True), ("reverse", False), ("bidirectional", True)])
def test_recurrent_matches_ort(op, direction, states, tmp_path):
    attrs = {"linear_before_reset": 1} if op == "GRU" and direction != "reverse" else {}
    m = _model(op, direction, 0, states, **attrs)
    compare_with_ort(m, _feeds(op, direction, 0, states), tmp_path, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_first_layout(op, tmp_path):
    """layout=1 (batch first; ORT's CPU kernels refuse it): LiteRT's result equals ORT's for the
    same weights at layout 0 with inputs and outputs transposed."""
    from compiler import ortsession
    from targets.tflite import TfliteRunner

    m1 = _model(op, "bidirectional", 1, True)
    m0 = _model(op, "bidirectional", 0, True)
    for a, b in zip(m0.graph.initializer, m1.graph.initializer):  # the same weights in both
        a.CopyFrom(b)
    path, ins, outs = to_tflite(m1, tmp_path)
    (tmp_path / "m0.onnx").write_bytes(m0.SerializeToString())
    sess = ortsession.session(tmp_path / "m0.onnx", threads=1)
    for f1 in _feeds(op, "bidirectional", 1, True):
        f0 = {k: np.ascontiguousarray(np.swapaxes(v, 0, 1)) for k, v in f1.items()}
        want = dict(zip(outs, sess.run(outs, f0)))
        with TfliteRunner(path, ins, outs, 1, "reference") as runner:
            got = runner.run(f1)
        np.testing.assert_allclose(got["y"], want["y"].transpose(2, 0, 1, 3), atol=2e-5, rtol=1e-4)
        for o in outs[1:]:
            np.testing.assert_allclose(got[o], want[o].transpose(1, 0, 2), atol=2e-5, rtol=1e-4)


def test_dynamic_sequence_is_refused(tmp_path):
    node = helper.make_node("GRU", ["x", "W", "R"], ["y"], hidden_size=H, name="the_gru")
    m = graph_model([node], {"x": (F32, ["s", 2, IN])}, {"y": F32}, {"W": _w(1, 3 * H, IN), "R": _w(1, 3 * H, H)})
    with pytest.raises(ToolchainRefused, match=r"GRU node 'the_gru': a dynamic sequence length"):
        to_tflite(m, tmp_path)
