"""What `make bench-versus` measures, each as a `Flow` (a callable on feeds, with the runtime and
precision class it is compared within): PyTorch eager; the flows a user runs by hand on the raw
export (ONNX Runtime fp32, ORT static and dynamic int8, OpenVINO default and f32, NNCF int8), each
with its tool's documented defaults and the model's own calibration data; and our artifacts,
built per (target, precision) and run through their own runners.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import spec as spec_mod
from compiler import torch_model
from compiler.errors import BadInput

# Ours: (target, precision) built per model. android's LiteRT runs here (XNNPACK), so it is measured too.
OURS = (("cpu", "fp32"), ("cpu", "int8"), ("cpu", "int8-dynamic"), ("intel", "fp32"), ("intel", "bf16"), ("intel", "fp16"),
        ("intel", "int8"), ("android", "int8"))


@dataclass
class Flow:
    name: str
    group: str  # "eager" | "by hand" | "ours"
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]]
    detail: str = ""
    close: Callable[[], None] = field(default=lambda: None)
    runtime: str = ""  # whose engine runs it: ours are compared with the by-hand flows of the same runtime …
    precision: str = ""  # … and the same precision class (verdict.PRECISION_CLASS)


def eager_flow(spec: spec_mod.ModelSpec) -> Flow:
    import torch

    module, examples = torch_model.load_torch(spec)
    names = torch_model.input_names_of(module, examples, spec)

    def run(feeds):
        with torch.inference_mode():
            return [np.asarray(v) for v in torch_model.run_eager(module, feeds, names, spec).values()]

    return Flow("PyTorch eager fp32", "eager", run, f"torch {torch.__version__}, 1 thread", runtime="torch", precision="fp32")


def _ort(path: Path, name: str, detail: str, precision: str) -> Flow:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    return Flow(name, "by hand", lambda feeds: sess.run(None, {n: feeds[n] for n in inputs}), detail,
                runtime="onnxruntime", precision=precision)


def _openvino(model: Any, name: str, detail: str, hint: str | None = None, quantized: bool = False) -> Flow:
    from targets.openvino import openvino

    ov = openvino()  # imported without its telemetry: the bench talks to no host either

    config = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    outs = list(compiled.outputs)
    hint_now = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint_now.get_type_name() if hasattr(hint_now, "get_type_name") else str(hint_now)

    def run(feeds):
        request.infer(feeds, share_inputs=True)
        return [request.get_tensor(o).data.copy() for o in outs]

    return Flow(name, "by hand", run, f"{detail}; executes {precision}", runtime="openvino",
                precision="int8" if quantized else precision)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over the model's calibration samples."""

    def __init__(self, samples: list[dict[str, np.ndarray]]):
        self.items = iter(samples)

    def get_next(self):
        return next(self.items, None)


def _calibration(spec: spec_mod.ModelSpec) -> list[dict[str, np.ndarray]]:
    if spec.calibration is None:
        raise BadInput(f"model {spec.name!r} has no [calibration] data; the by-hand int8 flows need it.")
    out = []
    for batch in spec.calibration.data.batches(1, spec.calibration.samples):
        out.append({k: np.ascontiguousarray(v) for k, v in batch.feeds.items()})
    return out


def by_hand_flows(spec: spec_mod.ModelSpec, raw: Path, work: Path, transformer: bool, log: Callable[[str], None]) -> list[Flow]:
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    from targets.openvino import no_telemetry, openvino

    ov = openvino()

    calib = _calibration(spec)
    flows = [_ort(raw, "ORT fp32 (raw export)", "onnxruntime, default graph optimizations", "fp32")]
    log("by hand: ORT static QDQ (defaults: QDQ, u8 activations, s8 weights, MinMax)")
    quantize_static(str(raw), str(work / "ort_static.onnx"), _Reader(calib))
    flows.append(_ort(work / "ort_static.onnx", "ORT static QDQ int8",
                      f"quantize_static defaults, {len(calib)} calibration samples", "int8"))
    if transformer:
        log("by hand: ORT dynamic int8, per-channel")
        quantize_dynamic(str(raw), str(work / "ort_dynamic.onnx"), per_channel=True, weight_type=QuantType.QInt8)
        flows.append(_ort(work / "ort_dynamic.onnx", "ORT dynamic int8 per-channel", "quantize_dynamic(per_channel=True, QInt8)", "int8"))
    with no_telemetry():
        ov_model = ov.convert_model(str(raw))
    flows.append(_openvino(ov_model, "OpenVINO default", "compile_model defaults"))
    flows.append(_openvino(ov_model, "OpenVINO f32", "INFERENCE_PRECISION_HINT=f32", "f32"))
    try:
        import nncf
    except ImportError:
        log("NNCF is not installed (pip install -e '.[bench]'); its flow is skipped")
        return flows
    log("by hand: NNCF int8 (nncf.quantize defaults)")
    kw = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    with no_telemetry():  # NNCF reports usage through the same telemetry package
        q = nncf.quantize(ov.convert_model(str(raw)), nncf.Dataset(calib), subset_size=len(calib), **kw)
    detail = "nncf.quantize" + (" (TRANSFORMER)" if transformer else "") + f", {len(calib)} samples, compile defaults"
    flows.append(_openvino(q, "NNCF int8", detail, quantized=True))
    return flows


def our_flows(model: str, name: str, out: Path, ours: tuple[tuple[str, str], ...], log: Callable[[str], None]
              ) -> tuple[list[Flow], list[str]]:
    """Our artifacts as flows, and a line for each one not measured: it did not build, or it
    failed its gate (a user would not deploy it, so it does not compete). `model` is the SPEC as
    given (a zoo name or a user's spec path), `name` the model's name."""
    from compiler.artifact.read import load_artifact
    from compiler.build import BuildOptions
    from compiler.build import run as build

    flows, not_measured = [], []
    for target, precision in ours:
        directory = out / f"{name}-{target}-{precision}"
        log(f"ours: build {model} --target {target} --precision {precision}")
        t0 = time.perf_counter()
        try:
            result = build(model, target, BuildOptions(precision=precision, out=directory))
        except Exception as e:  # noqa: BLE001 - reported in the table, the rest still measured
            not_measured.append(f"ours {target} {precision}: did not build: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            log(f"  {not_measured[-1]}")
            continue
        if not result.passed:
            reasons = result.parity.failures() if result.parity is not None else []
            not_measured.append(f"ours {target} {precision}: failed its gate ({'; '.join(reasons) or 'see its report.md'})")
            log(f"  {not_measured[-1]}")
            continue
        seconds = time.perf_counter() - t0
        manifest, runner = load_artifact(directory, threads=1)
        names = list(runner.output_names) or None
        floats = (manifest.get("calibration") or {}).get("float_nodes")

        def run(feeds, runner=runner, names=names):
            res = runner.run(feeds)
            return [res[n] for n in (names or res)]

        flows.append(Flow(f"ours {target} {precision}", "ours", run,
                          f"{manifest['engine']['backend']}, built in {seconds:.0f} s" + (f", {len(floats)} nodes float" if floats else ""),
                          runner.close, manifest["engine"]["backend"], precision))
    return flows, not_measured
