"""One ONNX node (or a tiny graph) → MIL → saved .mlpackage → reloaded → MIL reference evaluator,
against ONNX Runtime on the same inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from compiler import ortsession
from compiler.profile import load_profile
from targets.coreml.backend import CoremlBackend
from targets.coreml.mil_eval import MilRunner


def build(proto: onnx.ModelProto, directory: Path, precision: str = "fp32"):
    """The Core ML engine the `apple` target would write for this graph."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(directory / "m.onnx"))
    return CoremlBackend().compile(ir.serde.deserialize_model(proto), directory / "m.onnx", load_profile("apple"), precision, directory)


def compare_with_ort(proto: onnx.ModelProto, feeds_list: list[dict[str, np.ndarray]], directory: Path,
                     atol: float = 1e-5, rtol: float = 1e-5, reference: str = "onnxruntime") -> dict:
    """Every feed set (e.g. two batch sizes: dims stay dynamic) through the evaluator; returns the
    engine info (its MIL op histogram, for tests that check what was emitted). `reference` =
    "onnx" uses ONNX's reference evaluator, for what ONNX Runtime does not run (LSTM layout=1)."""
    engine = build(proto, directory)
    outs = [o.name for o in proto.graph.output]
    if reference == "onnx":
        from onnx.reference import ReferenceEvaluator

        sess = ReferenceEvaluator(proto)
    else:
        sess = ortsession.session(directory / "m.onnx", threads=1)
    runner = MilRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"])
    for feeds in feeds_list:
        want = dict(zip(outs, sess.run(outs, feeds)))
        got = runner.run(feeds)
        for n in outs:
            assert got[n].shape == want[n].shape, (n, got[n].shape, want[n].shape)
            w = want[n].astype(np.int32) if want[n].dtype == np.int64 else want[n]  # MIL has no int64
            assert got[n].dtype == w.dtype, (n, got[n].dtype, w.dtype)
            np.testing.assert_allclose(got[n], w, atol=atol, rtol=rtol, err_msg=n)
    return engine.info
