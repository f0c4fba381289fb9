"""OpenVINO backend (target ``intel``): ``model.xml`` + ``model.bin`` run on the CPU plugin.

- The inference precision hint is always set from the requested precision: on CPUs with AMX /
  AVX-512 BF16 (this one) OpenVINO's CPU default is bf16, which would silently run an "fp32"
  engine in bf16 (max error ~1e-3 on a small CNN; docs/toolchains.md).
- fp16 compresses weights to FP16 in the IR (``ov.save_model(compress_to_fp16=True)``); other
  precisions save FP32 weights (OpenVINO's default would compress them too).
- Tensors are matched by the graph's own names: an OpenVINO port can carry several names (a
  boundary Cast added by the fp16 converter, an expanded function, Dropout), and which one
  ``get_any_name()`` returns is not specified. The runner keys every port by the one of its
  names that the ONNX graph uses for that input/output, recorded at compile time.
- int8 comes from our QDQ model: OpenVINO turns Q/DQ pairs into FakeQuantize and its low
  precision transformations pick int8 kernels. Which precisions the compiled model really runs
  is read from the runtime model and recorded (``runtime_precisions``); an int8 build that runs
  no int8 kernel is an error.
- Static shapes: OpenVINO runs a model compiled for one concrete shape faster than the dynamic one
  (MiniLM at 8×128 tokens, bf16, 1 thread: 69.8 → 62.2 ms in one interleaved run, 2026-11-22). The profile's
  ``static_shapes`` lists sizes per named dynamic dim; the engine records every concrete input
  shape they give, and the runner compiles the IR reshaped to a listed shape the first time a
  call has exactly that shape (then reuses it), and runs every other shape on the dynamic model.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from compiler import ir as irh
from compiler.errors import CompilerError
from compiler.options import Option, int_list_table
from compiler.profile import TargetProfile
from targets.base import Availability, Backend, Engine, Runner
from targets.registry import register

XML, BIN = "model.xml", "model.bin"
# int8: the non-quantized parts run f32. Measured 2026-11-23 (1 thread, p50 ms b1 / b8, our int8
# IR recompiled with each hint, /tmp script, one interleaved run): a bf16 hint did not pay for
# EfficientNet-Lite0 (5.32 / 29.3 vs 5.06 / 29.5 f32, both 10/10 held-out) and left MiniLM far
# behind our fp16 build (19.8 / 135 vs f32 24.4 / 180; fp16 11.3 / 68), at cos 0.956 vs 0.959;
# an f16 hint on the int8 MiniLM with dynamic shapes did not finish 84 held-out calls in 2 minutes.
HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}


@functools.cache
def core():
    """One OpenVINO Core per process. A fresh Core's first compile with a thread/stream config
    took 0.1–0.8 s even for a one-node graph (0.03 s on a Core that had compiled before), and a
    build made three: a 1,619-case coverage run on `intel` went from ≈ 6 to ≈ 60 minutes."""
    ov = openvino()

    return ov.Core()


@contextlib.contextmanager
def no_telemetry() -> Iterator[None]:
    """`ov.convert_model` sends usage telemetry to Google Analytics unless the user opted out in
    ~/intel/openvino_telemetry or it runs in CI: each call forks a process (multiprocessing, 14 per
    digits build) to make the request. A build talks to no host — and a forked child of a process
    whose OpenVINO threads hold a lock can hang in that lock, and the interpreter's exit with it
    (seen: `make test-coverage` never exited). openvino_telemetry declines in CI (`CI=true`), so
    the conversion runs as in CI; the user's home is not written."""
    old = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = old


@functools.cache
def openvino() -> Any:
    """The openvino module, imported (with its converter, which sets up telemetry on import) under
    `no_telemetry`."""
    with no_telemetry():
        import openvino as ov
        import openvino.tools.ovc  # noqa: F401

    return ov


def _config(precision: str, threads: int) -> dict[str, object]:
    return {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}


def runtime_precisions(compiled) -> dict[str, int]:
    """Counts of runtime precisions over the compiled model's executed layers (not constants)."""
    c: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in ("Const", "Parameter", "Result"):
            continue
        c[info["runtimePrecision"].astype(str)] += 1
    return dict(c.most_common())


@register
class OpenVinoBackend(Backend):
    name = "openvino"
    options = {
        "device": Option(str, "CPU", "the OpenVINO device the engine is compiled for"),
        "static_shapes": Option(dict, {}, "sizes per named dynamic dim to also compile statically", check=int_list_table),
    }
    # Standard ONNX fused ops only: OpenVINO fuses attention/LayerNorm itself; ORT contrib ops
    # would depend on its ONNX frontend's partial com.microsoft coverage.
    accepts = frozenset({"LayerNormalization", "Gelu"})

    def available(self, profile: TargetProfile) -> Availability:
        try:
            ov = openvino()
        except ImportError as e:
            return Availability(False, False, f"openvino is not installed ({e}); pip install model-compiler[openvino]")
        versions = {"openvino": ov.__version__.split("-")[0]}
        devices = core().available_devices
        device = profile.option("device", "CPU")
        if device not in devices:
            return Availability(True, False, f"OpenVINO device {device} not present (have {', '.join(devices)})", versions)
        return Availability(True, True, f"openvino {versions['openvino']} on {device}", versions)

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        ov = openvino()

        with no_telemetry():
            ov_model = ov.convert_model(str(model_path))
        ov.save_model(ov_model, str(workdir / XML), compress_to_fp16=(precision == "fp16"))
        device = profile.option("device", "CPU")
        compiled = core().compile_model(str(workdir / XML), device, _config(precision, 1))
        used = runtime_precisions(compiled)
        if precision == "int8" and not (used.get("u8", 0) + used.get("i8", 0)):
            raise CompilerError(f"OpenVINO compiled the int8 model without any int8 kernel (runtime precisions {used}).")
        return Engine(
            backend=self.name, precision=precision, dir=workdir, entry=XML, files=[XML, BIN],
            info={"device": device, "inference_precision_hint": HINTS[precision],
                  "weights": "fp16" if precision == "fp16" else "fp32", "runtime_precisions": used,
                  "openvino": ov.__version__.split("-")[0],
                  "inputs": [t.name for t in irh.graph_inputs(model)], "outputs": [t.name for t in irh.graph_outputs(model)],
                  "static_shapes": static_shapes(model, dict(profile.option("static_shapes", {})))},
        )

    def observe(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path,
                can_run: bool) -> Runner | None:
        """OpenVINO reads ONNX itself: one compile of the exposed graph, no IR written."""
        return _Observed(_Compiled(core(), str(model_path), profile.option("device", "CPU"), _config(precision, 1),
                                   [t.name for t in irh.graph_inputs(model)], [t.name for t in irh.graph_outputs(model)],
                                   model_path))

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        return OvRunner(engine.dir / engine.entry, engine.info.get("device", "CPU"), engine.precision, threads,
                        engine.info["inputs"], engine.info["outputs"], engine.info.get("static_shapes", []))


MAX_STATIC_SHAPES = 32


def static_shapes(model: ir.Model, sizes: dict[str, list[int]]) -> list[dict[str, list[int]]]:
    """Every concrete input-shape combination the profile's ``static_shapes`` sizes give, one size
    per named dim shared by all inputs; none when an input has a dynamic dim the table does not
    name (or no rank)."""
    inputs = irh.graph_inputs(model)
    named: list[str] = []
    for t in inputs:
        if t.shape is None:
            return []
        for d in t.shape:
            if not isinstance(d, int):
                if str(d) not in sizes:
                    return []
                if str(d) not in named:
                    named.append(str(d))
    if not named:
        return []
    combos = list(itertools.product(*(sorted({int(v) for v in sizes[n]}) for n in named)))
    if len(combos) > MAX_STATIC_SHAPES:
        raise CompilerError(f"static_shapes gives {len(combos)} shapes for dims {named}; at most {MAX_STATIC_SHAPES}.")
    out = []
    for combo in combos:
        value = dict(zip(named, combo))
        out.append({t.name: [d if isinstance(d, int) else value[str(d)] for d in t.shape] for t in inputs})
    return out


def bind_ports(ports, graph_names: list[str], kind: str, path: Path) -> dict[str, object]:
    """{graph name: port}, each port found by the graph's name among the port's names.

    OpenVINO can drop a graph input the model does not use (no port: it is not fed), and when
    it folds an input straight into an output the port keeps only the output's name; a single
    unmatched input and a single unmatched port are then the same tensor. Anything else that
    does not match is an error naming the ports."""
    out: dict[str, object] = {}
    unmatched = []
    for name in graph_names:
        found = [p for p in ports if name in p.get_names()]
        if len(found) > 1:
            raise CompilerError(f"OpenVINO model {str(path)!r}: graph {kind} {name!r} matches {len(found)} of its ports.")
        if found:
            out[name] = found[0]
        else:
            unmatched.append(name)
    free = [p for p in ports if not set(p.get_names()) & set(graph_names)]  # ports no graph name claims
    if len(unmatched) == 1 and len(free) == 1:
        out[unmatched[0]] = free[0]
    elif unmatched and (kind == "output" or free):
        have = [sorted(p.get_names()) for p in ports]
        raise CompilerError(f"OpenVINO model {str(path)!r}: graph {kind}(s) {unmatched} match none of its ports "
                            f"(port names {have}).")
    return out


class _Compiled:
    """One compiled model, its infer request and its ports keyed by graph names."""

    def __init__(self, core, model, device: str, config: dict, inputs: list[str], outputs: list[str], path: Path):
        self.compiled = core.compile_model(model, device, config)
        self.request = self.compiled.create_infer_request()
        self.inputs = bind_ports(self.compiled.inputs, inputs, "input", path)
        self.outputs = bind_ports(self.compiled.outputs, outputs, "output", path)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # share_inputs: OpenVINO reads the caller's arrays in place (no copy per call) where they
        # are C-contiguous and of the port's type; outputs are copied once by `infer` itself
        # (share_outputs=False), so they stay valid after the next call — no second copy here.
        res = self.request.infer({port: feeds[n] for n, port in self.inputs.items()}, share_inputs=True)
        return {n: res[port] for n, port in self.outputs.items()}


class _Observed(Runner):
    def __init__(self, compiled: _Compiled):
        self.compiled = compiled
        self.input_names, self.output_names = tuple(compiled.inputs), tuple(compiled.outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.compiled.run(feeds)


class OvRunner(Runner):
    def __init__(self, path: Path, device: str, precision: str, threads: int, inputs: list[str], outputs: list[str],
                 static: list[dict[str, list[int]]] = ()):
        self.core, self.path, self.device, self.config = core(), path, device, _config(precision, threads)
        self.graph_inputs, self.graph_outputs = list(inputs), list(outputs)
        self.dynamic = _Compiled(self.core, str(path), device, self.config, inputs, outputs, path)
        self.input_names, self.output_names = tuple(self.dynamic.inputs), tuple(outputs)
        self.static_keys = {self._key(s) for s in static}
        self.static: dict[tuple, _Compiled] = {}

    def _key(self, shapes: dict[str, object]) -> tuple:
        return tuple(tuple(int(d) for d in shapes[n]) for n in self.input_names)

    def _static(self, key: tuple) -> _Compiled:
        ov = openvino()

        model = self.core.read_model(str(self.path))
        ports = bind_ports(model.inputs, self.graph_inputs, "input", self.path)
        model.reshape({ports[n]: ov.PartialShape(list(shape)) for n, shape in zip(self.input_names, key)})
        return _Compiled(self.core, model, self.device, self.config, self.graph_inputs, self.graph_outputs, self.path)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.static_keys:
            key = self._key({n: feeds[n].shape for n in self.input_names})
            if key in self.static_keys:
                if key not in self.static:
                    self.static[key] = self._static(key)  # compiled once, on the first call with this shape
                return self.static[key].run(feeds)
        return self.dynamic.run(feeds)
