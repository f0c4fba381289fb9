"""One way to open an ONNX Runtime session in this project: CPU provider, one intra-op thread
by default (the hosts are shared 2-core machines), quiet logs, an explicit optimization level.

Used wherever a model is run in ORT: the frontend's export probe, the per-pass golden check,
calibration, sensitivity, and the onnxruntime backend. Lives in the core so that calibration
and targets share it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir
import onnxruntime as ort

LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
CPU = "CPUExecutionProvider"
# Sessions ORT's own tools create (the quantizer, calibrators) use the default logger: without
# this, int8 builds printed hundreds of coloured "Removing initializer" warnings.
ort.set_default_logger_severity(3)


def options(threads: int = 1, level: str = "all") -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = LEVELS[level]
    so.log_severity_level = 4  # errors reach us as exceptions (named in our message); no duplicate log lines
    return so


def session(model: str | Path | bytes | onnx.ModelProto | ir.Model, threads: int = 1, level: str = "all",
            provider: str = CPU, so: ort.SessionOptions | None = None) -> ort.InferenceSession:
    """A session over a path, serialized bytes, a ModelProto or an onnx_ir model."""
    if isinstance(model, ir.Model):
        from compiler import ir as irh

        model = irh.to_proto(model)
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    if isinstance(model, Path):
        model = str(model)
    return ort.InferenceSession(model, so or options(threads, level), providers=[provider])
