"""One ONNX node (or a tiny graph) → StableHLO → .tflite → LiteRT, against ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper

from compiler import ortsession
from targets.stablehlo import litert
from targets.stablehlo.module import lower
from targets.tflite import TfliteRunner

NP_TO_ONNX = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.int64): onnx.TensorProto.INT64,
              np.dtype(np.int32): onnx.TensorProto.INT32, np.dtype(np.bool_): onnx.TensorProto.BOOL}


def graph_model(nodes, inputs: dict[str, tuple[np.dtype, list]], outputs: dict[str, np.dtype],
                initializers: dict[str, np.ndarray] | None = None, opset: int = 18) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(t)], shape) for n, (t, shape) in inputs.items()],
        [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(t)], None) for n, t in outputs.items()],
        [onnx.numpy_helper.from_array(v, n) for n, v in (initializers or {}).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return onnx.shape_inference.infer_shapes(m, data_prop=True)


def to_tflite(proto: onnx.ModelProto, directory: Path, quantized: bool = False) -> tuple[Path, list[str], list[str]]:
    model = ir.serde.deserialize_model(proto)
    lowered = lower(model)
    path = directory / "m.tflite"
    path.write_bytes(litert.convert(lowered.text, lowered.inputs, lowered.outputs, quantized))
    return path, lowered.inputs, lowered.outputs


def compare_with_ort(proto: onnx.ModelProto, feeds_list: list[dict[str, np.ndarray]], directory: Path,
                     atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Every feed set (e.g. two batch sizes: dynamic dims) through both LiteRT kernel sets."""
    path, ins, outs = to_tflite(proto, directory)
    onnx_path = directory / "m.onnx"
    onnx.save(proto, str(onnx_path))
    sess = ortsession.session(onnx_path, threads=1)
    for kernels in ("xnnpack", "reference"):
        with TfliteRunner(path, ins, outs, 1, kernels) as runner:
            for feeds in feeds_list:
                want = dict(zip(outs, sess.run(outs, feeds)))
                got = runner.run(feeds)
                for n in outs:
                    assert got[n].shape == want[n].shape, (kernels, n, got[n].shape, want[n].shape)
                    assert got[n].dtype == want[n].dtype, (kernels, n, got[n].dtype, want[n].dtype)
                    np.testing.assert_allclose(got[n], want[n], atol=atol, rtol=rtol, err_msg=f"{kernels} {n}")
