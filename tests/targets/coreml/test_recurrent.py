"""LSTM (MIL lstm) and GRU (a MIL while_loop), lowered, saved, reloaded and run by the MIL
reference evaluator — whose numpy lstm, scatter and while_loop are under test here too — against
ONNX Runtime, at two batch sizes and two sequence lengths."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.targets.coreml.helpers import compare_with_ort
from tests.targets.stablehlo.helpers import graph_model

F32 = np.float32
rng = np.random.default_rng(1)
H, I = 5, 3


def _w(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(F32)


def _feeds(layout: int):
    shapes = [(4, 1), (6, 3)]  # (sequence, batch)
    return [{"x": _w(*((b, s) if layout else (s, b)), I)} for s, b in shapes]


@pytest.mark.parametrize("direction,layout,states", [("forward", 0, False), ("reverse", 0, False), ("bidirectional", 0, False),
                                                     ("forward", 1, False), ("forward", 0, True)])
def test_lstm(direction, layout, states, tmp_path):
    d = 2 if direction == "bidirectional" else 1
    inits = {"W": _w(d, 4 * H, I), "R": _w(d, 4 * H, H), "B": _w(d, 8 * H)}
    ins = ["x", "W", "R", "B"]
    inputs = {"x": (F32, ["batch", "sequence", I] if layout else ["sequence", "batch", I])}
    if states:
        ins += ["", "h0", "c0"]
        inputs.update({"h0": (F32, [d, "batch", H]), "c0": (F32, [d, "batch", H])})
    node = helper.make_node("LSTM", ins, ["y", "yh", "yc"], hidden_size=H, direction=direction, layout=layout)
    m = graph_model([node], inputs, {"y": F32, "yh": F32, "yc": F32}, inits, opset=14)
    feeds = _feeds(layout)
    if states:
        feeds = [{**f, "h0": _w(d, f["x"].shape[1], H), "c0": _w(d, f["x"].shape[1], H)} for f in feeds]
    info = compare_with_ort(m, feeds, tmp_path, atol=1e-5, rtol=1e-4, reference="onnx" if layout else "onnxruntime")
    assert info["mil_ops"].get("lstm") == 1


@pytest.mark.parametrize("direction,before_reset", [("forward", 1), ("forward", 0), ("reverse", 1)])
def test_gru(direction, before_reset, tmp_path):
    node = helper.make_node("GRU", ["x", "W", "R", "B"], ["y", "yh"], hidden_size=H, direction=direction,
                            linear_before_reset=before_reset)
    m = graph_model([node], {"x": (F32, ["sequence", "batch", I])}, {"y": F32, "yh": F32},
                    {"W": _w(1, 3 * H, I), "R": _w(1, 3 * H, H), "B": _w(1, 6 * H)}, opset=14)
    info = compare_with_ort(m, _feeds(0), tmp_path, atol=1e-5, rtol=1e-4)
    assert info["mil_ops"].get("while_loop") == 1
