"""OpenVINO backend: static-shape compiles from the profile, dispatched by the call's shape."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest

pytest.importorskip("openvino")

from compiler.errors import CompilerError  # noqa: E402
from compiler.profile import load_profile  # noqa: E402
from targets import get_backend  # noqa: E402
from targets.openvino import static_shapes  # noqa: E402

TEXT = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[batch, sequence, 8] x, int64[batch, sequence] mask) => (float[batch, 8] y) {
        m = Cast <to = 1> (mask)
        u = Unsqueeze (m, minus1)
        xm = Mul (x, u)
        h = MatMul (xm, w)
        r = Relu (h)
        y = ReduceSum <keepdims = 0> (r, one)
    }"""


def _model() -> ir.Model:
    proto = onnx.parser.parse_model(TEXT)
    rng = np.random.default_rng(0)
    for name, value in (("w", rng.standard_normal((8, 8)).astype(np.float32)), ("minus1", np.array([-1], np.int64)),
                        ("one", np.array([1], np.int64))):
        proto.graph.initializer.append(onnx.numpy_helper.from_array(value, name))
    return ir.from_proto(proto)


def test_static_shapes_combine_named_dims_across_inputs():
    shapes = static_shapes(_model(), {"batch": [8, 1], "sequence": [16]})
    assert shapes == [{"x": [1, 16, 8], "mask": [1, 16]}, {"x": [8, 16, 8], "mask": [8, 16]}]
    assert static_shapes(_model(), {"batch": [1]}) == []  # 'sequence' unnamed: stay dynamic
    with pytest.raises(CompilerError, match="at most"):
        static_shapes(_model(), {"batch": list(range(1, 9)), "sequence": list(range(1, 6))})


def test_listed_shapes_run_a_static_compile_and_agree_with_onnxruntime(tmp_path):
    import onnxruntime as ort

    model = _model()
    path = tmp_path / "model.onnx"
    ir.save(model, path)
    profile = load_profile("intel")
    engine = get_backend("openvino").compile(model, path, profile, "fp32", tmp_path)
    assert {"x": [8, 16, 8], "mask": [8, 16]} in engine.info["static_shapes"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    with get_backend("openvino").load(engine) as runner:
        for b, s in ((8, 16), (3, 16), (8, 16), (1, 128)):
            feeds = {"x": rng.standard_normal((b, s, 8)).astype(np.float32), "mask": (rng.random((b, s)) > 0.3).astype(np.int64)}
            got = runner.run(feeds)["y"]
            np.testing.assert_allclose(got, sess.run(None, feeds)[0], rtol=1e-5, atol=1e-5)
        # the listed shapes were compiled statically (once each); (3, 16) ran on the dynamic model
        assert set(runner.static) == {((8, 16, 8), (8, 16)), ((1, 128, 8), (1, 128))}
        assert all(c.compiled.inputs[0].get_partial_shape().is_static for c in runner.static.values())
        assert not runner.dynamic.compiled.inputs[0].get_partial_shape().is_static


def test_an_intel_build_starts_no_telemetry_process(tmp_path, monkeypatch):
    """ov.convert_model reports usage to Google Analytics from a forked process unless declined:
    a build talks to no host, and such a fork hung `make test-coverage` at exit."""
    import multiprocessing

    from compiler.cli import main

    started = []
    monkeypatch.setattr(multiprocessing.Process, "start", lambda self: started.append(self._target))
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "intel", "--precision", "fp32",
                 "--out", str(tmp_path / "out"), "--no-cache"]) == 0
    assert started == []
