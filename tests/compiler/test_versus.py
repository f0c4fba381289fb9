"""`make bench-versus` bookkeeping: timing blocks and the same-runtime dominance check (no timings asserted)."""

from __future__ import annotations

import numpy as np

from compiler.versus.flows import Flow
from compiler.versus.measure import repeats_for, time_flows
from compiler.versus.verdict import dominated


def test_a_sample_is_a_block_of_calls_sized_to_the_flows_latency():
    assert repeats_for(0.1e-3) == 50  # 0.1 ms calls: 50 per 5 ms sample
    assert repeats_for(40e-3) == 1  # slower than a block: one call per sample
    assert repeats_for(0.0) == 1000  # capped


def test_time_flows_runs_every_flow_in_blocks_and_reports_quartiles():
    calls = {"a": 0, "b": 0}

    def make(name):
        def run(feeds):
            calls[name] += 1
            assert feeds["x"].shape[0] in (1, 3)  # repeated to the batch size
            return [feeds["x"]]
        return Flow(name, "ours", run)

    out = time_flows([make("a"), make("b")], {"x": np.zeros((1, 2), np.float32)}, [1, 3], iters=4, warmup=2, block_ms=0.05)
    for name in ("a", "b"):
        for b in (1, 3):
            t = out[name][b]
            assert t["p25"] <= t["p50"] <= t["p75"]
            assert t["calls_per_sample"] >= 1
        assert calls[name] == sum(2 + 4 * out[name][b]["calls_per_sample"] for b in (1, 3))


def _row(flow, group, runtime, score, p50, q=None, precision="fp32"):
    return {"flow": flow, "group": group, "runtime": runtime, "precision": precision, "accuracy": {"score": score, "text": str(score)},
            "p50_ms": {"1": p50}, "quartiles_ms": {"1": q or [p50 * 0.99, p50 * 1.01]}}


def test_dominated_lists_ours_beaten_by_an_as_accurate_flow_of_the_same_runtime_and_precision_class():
    rows = [
        _row("ours intel fp32", "ours", "openvino", 1.0, 0.17, [0.16, 0.18]),
        _row("OpenVINO f32", "by hand", "openvino", 1.0, 0.13, [0.12, 0.14]),  # as accurate, faster: a loss
        _row("NNCF int8", "by hand", "openvino", 0.7, 0.05, precision="int8"),  # less accurate: not a loss
        _row("ours intel int8", "ours", "openvino", 0.7, 0.06, precision="int8"),  # …of this one, equally accurate
        _row("OpenVINO default", "by hand", "openvino", 1.0, 0.09, precision="bf16"),  # 16-bit: not against fp32
        _row("ours intel fp16", "ours", "openvino", 1.0, 0.08, precision="fp16"),  # faster than it: no loss
        _row("LiteRT fp32", "by hand", "tflite", 1.0, 0.01),  # another runtime: not compared
        _row("ours cpu fp32", "ours", "onnxruntime", 1.0, 10.6, [10.4, 10.9]),
        _row("ORT fp32 raw", "by hand", "onnxruntime", 1.0, 10.5, [10.3, 10.8]),  # within noise
    ]
    got = {(d["ours"], d["by_hand"]): d for d in dominated(rows, [1])}
    assert set(got) == {("ours intel fp32", "OpenVINO f32"), ("ours cpu fp32", "ORT fp32 raw"), ("ours intel int8", "NNCF int8")}
    assert got[("ours intel fp32", "OpenVINO f32")]["separated"] is True
    assert got[("ours cpu fp32", "ORT fp32 raw")]["separated"] is False
    assert abs(got[("ours intel fp32", "OpenVINO f32")]["slower"] - (0.17 / 0.13 - 1)) < 1e-9


def test_an_artifact_that_fails_its_gate_is_listed_not_measured(tmp_path, monkeypatch):
    """A failed build is not what a user deploys: it does not compete, and the table says why."""
    from compiler import build
    from compiler.verify import ParityReport
    from compiler.versus import flows as versus_flows
    from compiler.versus import markdown

    failed = ParityReport("bf16", {}, precision_gate=["bf16 misses the gate"])
    monkeypatch.setattr(build, "run", lambda *a, **k: build.BuildResult(tmp_path, False, failed, {}))
    flows, not_measured = versus_flows.our_flows("digits-cnn", "digits-cnn", tmp_path, (("intel", "bf16"),), log=lambda s: None)
    assert flows == [] and not_measured == ["ours intel bf16: failed its gate (precision gate: bf16 misses the gate)"]
    md = markdown.markdown([{"model": "m", "heldout": "h", "accuracy_measure": "a", "accuracy_bar": 0.9, "batches": [1],
                           "rows": [], "verdict": [], "dominated": [], "not_measured": not_measured}])
    assert "Not measured: ours intel bf16: failed its gate" in md
