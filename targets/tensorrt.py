"""TensorRT backend (targets ``jetson``, ``x86-gpu``).

TensorRT engines are specific to the GPU and TensorRT version they are built on, so the flow has
two halves:

- **Host (any machine)**: the ONNX the engine will be built from (for int8 the QDQ model with
  the ``tensorrt`` preset: symmetric int8, per-channel weights), checked node by node against
  TensorRT's ONNX operator support (`tensorrt_support`, parsed from onnx-tensorrt's own table);
  ``calibration.cache`` (TensorRT text
  format, for the implicit/DLA path); ``build_engine.sh`` with the exact ``trtexec`` command
  (shape profiles from the spec's dynamic dims, precision flags, workspace, DLA, timing cache);
  and, where TensorRT cannot run, parity of that ONNX through ONNX Runtime as the host-side
  numerical check. The manifest marks the engine build and engine verification deferred, with
  the commands that finish them.
- **Device (CUDA + TensorRT)**: Polygraphy's loaders parse the ONNX, build with the same
  configuration, save ``model.plan``, the timing cache and ``engine.json`` (the TensorRT version and
  GPU architecture it was built for, `tensorrt_plan`), and Polygraphy's TrtRunner runs it for
  verification. A plan is refused, before TensorRT reads it, on any other TensorRT or GPU.

UNVERIFIED: no machine here has CUDA or TensorRT (its PyPI packages download from NVIDIA's index,
which is unreachable). The device half (`_build_plan`, `TrtRunner` use) is written against
Polygraphy 0.53's documented API and has never run; everything else is tested here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import onnx_ir as ir

from compiler.errors import BadInput, ToolchainMissing, ToolchainRefused
from compiler.options import Option, int_list_table
from compiler.profile import TargetProfile
from targets import tensorrt_plan, tensorrt_support
from targets.base import Availability, Backend, Deferred, Engine, Runner
from targets.registry import register
from targets.shape_profiles import shape_ranges

PLAN, SCRIPT, TIMING_CACHE, ONNX = "model.plan", "build_engine.sh", "timing.cache", "model.onnx"


def _trt_status() -> tuple[bool, str, dict[str, str]]:
    """(usable, why not / what, versions)."""
    try:
        import tensorrt as trt  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or OSError from missing CUDA libraries
        first_line = str(e).splitlines()[0] if str(e) else 'no message'
        return False, f"TensorRT's Python package cannot be imported here ({type(e).__name__}: {first_line})", {}
    try:
        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        if builder is None:
            raise RuntimeError("no CUDA device")
    except Exception as e:  # noqa: BLE001
        return (False, f"TensorRT {trt.__version__} is installed but cannot create a builder (no CUDA GPU?): {e}",
                {"tensorrt": trt.__version__})
    return True, f"TensorRT {trt.__version__}", {"tensorrt": trt.__version__}


def precision_flags(precision: str) -> list[str]:
    """trtexec precision flags. int8 comes from the QDQ model (explicit quantization); --fp16
    lets the nodes the fallback returned to float run in fp16 rather than fp32."""
    return {"fp32": ["--noTF32"], "fp16": ["--fp16"], "bf16": ["--bf16"], "int8": ["--int8", "--fp16"]}[precision]


def trtexec_command(model: ir.Model, profile: TargetProfile, precision: str) -> list[str]:
    cmd = ["trtexec", f"--onnx={ONNX}", f"--saveEngine={PLAN}"]
    ranges = shape_ranges(model, profile)
    if any(lo != hi for lo, _, hi in ranges.values()):
        for flag, k in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
            cmd.append(f"{flag}=" + ",".join(f"{n}:{'x'.join(map(str, r[k]))}" for n, r in ranges.items()))
    cmd += precision_flags(precision)
    cmd.append(f"--memPoolSize=workspace:{int(profile.option('workspace_mib', 4096))}M")
    dla = int(profile.option("dla_core", -1))
    if dla >= 0:
        cmd += [f"--useDLACore={dla}", "--allowGPUFallback"]
        if precision == "int8":
            cmd.append("--calib=calibration.cache")  # DLA takes the implicit-quantization scales
    cmd.append(f"--builderOptimizationLevel={int(profile.option('builder_optimization_level', 3))}")
    cmd.append(f"--timingCacheFile={TIMING_CACHE}")
    cmd.append("--skipInference")
    return cmd


def build_script(cmd: list[str], profile: TargetProfile) -> str:
    return "\n".join([
        "#!/bin/sh",
        f"# Build the TensorRT engine for target {profile.name!r} ({profile.device.name}, {profile.device.arch}).",
        f"# Run on the device (or any host with CUDA + TensorRT {profile.toolchain.get('tensorrt', '')}), in this directory.",
        "set -eu",
        'cd "$(dirname "$0")"',
        " ".join(shlex.quote(c) for c in cmd),
        f"# Stamp the TensorRT version and GPU architecture into {tensorrt_plan.STAMP}; loading refuses any other.",
        "if python3 -c 'import targets.tensorrt_plan' 2>/dev/null; then python3 -m targets.tensorrt_plan .; "
        f"else echo 'note: model-compiler is not importable here; {tensorrt_plan.STAMP} not written' >&2; fi",
        "",
    ])


@register
class TensorRtBackend(Backend):
    name = "tensorrt"
    options = {
        "workspace_mib": Option(int, 4096, "builder workspace in MiB", low=1),
        "dla_core": Option(int, -1, "DLA core to build for (-1: the GPU)", low=-1, high=7),
        "builder_optimization_level": Option(int, 3, "TensorRT builder optimization level", low=0, high=5),
        "shape_profiles": Option(dict, {}, "min / opt / max per named dynamic dim", check=int_list_table),
    }
    accepts = frozenset({"LayerNormalization"})  # in TensorRT 10's ONNX support matrix; no contrib ops

    def available(self, profile: TargetProfile) -> Availability:
        ok, why, versions = _trt_status()
        if ok:
            return Availability(True, True, why, versions)
        return Availability(
            True, False,
            f"{why}. This host prepares everything (ONNX, calibration cache, build_engine.sh, the operator check against "
            f"onnx-tensorrt's table for TensorRT {tensorrt_support.table().tensorrt}) and checks the ONNX through ONNX Runtime; "
            f"the engine build and its verification are deferred to the device (built for {profile.toolchain.get('gpu_arch', 'its GPU')})",
            versions,
        )

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        pin = str(profile.toolchain.get("tensorrt", "10"))
        analysis = tensorrt_support.analyse(model, pin)
        problems = analysis.problems
        if problems:
            listed = "; ".join(str(p) for p in problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
            raise BadInput(f"{len(problems)} node(s) that TensorRT's ONNX parser does not support: {listed}.")
        cmd = trtexec_command(model, profile, precision)
        (workdir / SCRIPT).write_text(build_script(cmd, profile))
        (workdir / SCRIPT).chmod(0o755)
        table = tensorrt_support.table()
        info = {
            "trtexec": " ".join(shlex.quote(c) for c in cmd),
            "shape_profiles": {k: [list(x) for x in v] for k, v in shape_ranges(model, profile).items()},
            "dla_core": int(profile.option("dla_core", -1)),
            "workspace_mib": int(profile.option("workspace_mib", 4096)),
            "device": f"{profile.device.name} ({profile.device.arch})",
            "built_for": {"tensorrt": pin, "gpu_arch": profile.toolchain.get("gpu_arch", "any")},
            "operator_table": {
                **table.describe(),
                "unchecked_restrictions": analysis.unchecked,
                **({"opset": note} if (note := tensorrt_support.opset_note(model, pin)) else {}),
            },
        }
        ok, why, versions = _trt_status()
        if ok:
            here = tensorrt_plan.this_device()
            wanted = profile.toolchain.get("gpu_arch")
            if wanted and not tensorrt_plan.arch_matches(wanted, here.gpu_arch):
                raise ToolchainRefused(
                    f"tensorrt: target {profile.name!r} is for {wanted} ({profile.device.name}); this GPU is "
                    f"{here.gpu_arch} ({here.gpu_name}). Build for the target on its own device, or pick the target for this GPU."
                )
            _build_plan(model_path, profile, precision, workdir)
            here.write(workdir)
            from compiler.artifact.files import sha256_file

            info.update(versions, timing_cache_sha256=sha256_file(workdir / TIMING_CACHE),
                        built_for={"tensorrt": here.tensorrt, "gpu_arch": here.gpu_arch, "gpu_name": here.gpu_name})
            return Engine(self.name, precision, workdir, PLAN, [PLAN, SCRIPT, TIMING_CACHE, tensorrt_plan.STAMP], info)
        info["host_check"] = f"onnxruntime on {ONNX} (the exact graph the engine is built from)"
        deferred = [
            Deferred("engine-build", f"{why}; TensorRT engines are built on the device they run on",
                     "sh {artifact}/" + SCRIPT + f"  # or: python -m compiler build --target {profile.name} --from-artifact {{artifact}}"),
            Deferred("engine-verify", "the engine does not exist on this host; ONNX Runtime checked the ONNX it is built from",
                     "python -m compiler build --target " + profile.name + " --from-artifact {artifact}"),
        ]
        return Engine(self.name, precision, workdir, ONNX, [SCRIPT], info, deferred)

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        ok, why, _ = _trt_status()
        if not ok or engine.entry != PLAN:
            raise ToolchainMissing(f"cannot run a TensorRT engine here: {why}.")
        tensorrt_plan.refuse_other_device(engine.dir, tensorrt_plan.this_device())  # pragma: no cover - needs CUDA
        return TrtPlanRunner(engine.dir / PLAN)  # pragma: no cover - needs CUDA

    def host_check(self, engine: Engine) -> Runner | None:
        from targets.ort import OrtRunner

        return OrtRunner(engine.dir / ONNX, "CPUExecutionProvider", threads=1)


def _build_plan(model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> None:  # pragma: no cover - needs CUDA
    """UNVERIFIED (no CUDA here): Polygraphy loaders with the same settings as build_engine.sh."""
    import tensorrt as trt
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, PostprocessConfig, Profile, SaveEngine

    model = ir.load(model_path)
    prof = Profile()
    for name, (lo, opt, hi) in shape_ranges(model, profile).items():
        prof.add(name, min=lo, opt=opt, max=hi)
    dla = int(profile.option("dla_core", -1))
    cache = workdir / TIMING_CACHE
    config = CreateConfig(
        tf32=False if precision == "fp32" else None,
        fp16=precision in ("fp16", "int8"), int8=precision == "int8", bf16=precision == "bf16",
        profiles=[prof],
        memory_pool_limits={trt.MemoryPoolType.WORKSPACE: int(profile.option("workspace_mib", 4096)) << 20},
        load_timing_cache=str(cache) if cache.exists() else None,
        builder_optimization_level=int(profile.option("builder_optimization_level", 3)),
        use_dla=dla >= 0, allow_gpu_fallback=dla >= 0,
    )
    if dla >= 0:
        config = PostprocessConfig(config, func=lambda builder, network, cfg: setattr(cfg, "DLA_core", dla))
    engine = EngineFromNetwork(NetworkFromOnnxPath(str(model_path)), config=config, save_timing_cache=str(cache))
    SaveEngine(engine, path=str(workdir / PLAN))()


class TrtPlanRunner(Runner):  # pragma: no cover - needs CUDA
    """UNVERIFIED (no CUDA here): Polygraphy's TrtRunner over a serialized plan."""

    def __init__(self, plan: Path):
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        self.runner = TrtRunner(EngineFromBytes(BytesFromPath(str(plan))))
        self.runner.activate()
        self.input_names = tuple(self.runner.get_input_metadata().keys())

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.runner.infer({n: feeds[n] for n in self.input_names})
        return {k: np.asarray(v) for k, v in out.items()}

    def close(self) -> None:
        self.runner.deactivate()
