"""Which TensorRT and which GPU a ``model.plan`` was built for, and refusing any other.

A serialized TensorRT engine runs only under the TensorRT version that built it and on GPUs of the
compute capability it was built for (without the version/hardware-compatibility build flags,
which this project does not set). Loading it elsewhere fails inside TensorRT with a message that
does not say which artifact or which device is wrong (TensorRT#2195, #2072), or, across devices of
the same architecture family, may not fail at all. So the build writes ``engine.json`` beside the
plan, and loading compares it with this host before TensorRT sees the bytes.

Stamps are plain data and tested here. UNVERIFIED: :func:`this_device` (TensorRT's version and the
GPU's compute capability through the CUDA runtime) has never run: no machine here has CUDA.
"""

from __future__ import annotations

import ctypes
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from compiler.errors import BadInput, ToolchainRefused

STAMP = "engine.json"


@dataclass(frozen=True)
class PlanStamp:
    tensorrt: str  # tensorrt.__version__ of the builder, e.g. "10.3.0.30"
    gpu_arch: str  # compute capability, "sm_87"
    gpu_name: str = ""

    def write(self, directory: Path) -> None:
        (directory / STAMP).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, directory: Path) -> PlanStamp | None:
        path = directory / STAMP
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(str(data["tensorrt"]), str(data["gpu_arch"]), str(data.get("gpu_name", "")))
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{path}: not a TensorRT plan stamp ({e}); rebuild the engine on the device") from e


def _sm(arch: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"sm_(\d+)(\d)\+?", arch.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def arch_matches(wanted: str, actual: str) -> bool:
    """Whether `actual` ("sm_87") satisfies a profile's `wanted`: "sm_87" exactly, "sm_80+" or newer."""
    w, a = _sm(wanted), _sm(actual)
    if w is None or a is None:
        raise BadInput(f"GPU architecture must look like 'sm_87' or 'sm_80+', got {wanted!r} / {actual!r}")
    return a >= w if wanted.strip().endswith("+") else a == w


def refuse_other_device(plan_dir: Path, here: PlanStamp) -> PlanStamp | None:
    """Raise ToolchainRefused when the plan in `plan_dir` was built for another TensorRT or GPU.
    Returns the stamp (None for a plan without one: built by hand, TensorRT itself then decides)."""
    built = PlanStamp.read(plan_dir)
    if built is None:
        return None
    wrong = []
    if built.tensorrt != here.tensorrt:
        wrong.append(f"TensorRT {built.tensorrt} built it, this host has TensorRT {here.tensorrt}")
    if built.gpu_arch != here.gpu_arch:
        wrong.append(f"it was built for {built.gpu_arch} ({built.gpu_name or 'GPU name not recorded'}), "
                     f"this GPU is {here.gpu_arch} ({here.gpu_name or 'unknown'})")
    if wrong:
        raise ToolchainRefused(
            f"tensorrt: {plan_dir / 'model.plan'} cannot run here: {'; '.join(wrong)}. TensorRT engines run only on "
            "the TensorRT version and GPU architecture they were built for; rebuild on this device with "
            f"`sh {plan_dir / 'build_engine.sh'}` or `python -m compiler build --from-artifact {plan_dir}`."
        )
    return built


def this_device() -> PlanStamp:  # pragma: no cover - needs CUDA
    """UNVERIFIED (no CUDA here): TensorRT's version and device 0's compute capability and name,
    through the CUDA runtime that Polygraphy's wrapper has already located and loaded."""
    import tensorrt as trt
    from polygraphy import cuda

    lib = cuda.wrapper().handle
    major, minor = ctypes.c_int(), ctypes.c_int()
    # cudaDevAttrComputeCapabilityMajor = 75, ...Minor = 76 (CUDA runtime API, cudaDeviceAttr).
    for value, attr in ((major, 75), (minor, 76)):
        status = lib.cudaDeviceGetAttribute(ctypes.byref(value), attr, 0)
        if status != 0:
            raise ToolchainRefused(f"tensorrt: cudaDeviceGetAttribute({attr}) failed with CUDA error {status}")
    name = ""
    try:
        props = ctypes.create_string_buffer(4096)  # cudaDeviceProp begins with char name[256]
        if lib.cudaGetDeviceProperties(props, 0) == 0:
            name = props.raw[:256].split(b"\0", 1)[0].decode(errors="replace")
    except AttributeError:
        pass
    return PlanStamp(trt.__version__, f"sm_{major.value}{minor.value}", name)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - needs CUDA
    """`python -m targets.tensorrt_plan DIR`: stamp the plan trtexec just wrote (build_engine.sh)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else ".")
    this_device().write(directory)
    print(f"wrote {directory / STAMP}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
