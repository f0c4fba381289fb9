"""Target profiles: ``targets/profiles/<name>.toml`` → a frozen `TargetProfile`.

Targets are data: adding a device is adding a TOML. Profiles are read strictly (a typo'd key
is an error naming the file). The type lives in the core so that calibration and backends can
both read a profile without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from compiler.errors import BadInput, unknown_name
from compiler.precision import Precision
from compiler.tomlschema import Table, load_toml

PROFILES_DIR = Path(__file__).resolve().parent.parent / "targets" / "profiles"
PRESETS_FILE = PROFILES_DIR.parent / "quantization_presets.toml"
CALIBRATORS = ("minmax", "percentile", "entropy", "mse")
QTYPES = ("uint8", "int8")


@dataclass(frozen=True)
class QuantScheme:
    """How a target wants INT8: Q/DQ types, symmetry, granularity, which ops, which calibrator.

    Named presets live in targets/quantization_presets.toml, each with its source; a profile's
    [quantization] table names one and may override fields.
    """

    preset: str
    source: str
    activation_type: str = "uint8"
    activation_symmetric: bool = False
    weight_type: str = "int8"
    weight_symmetric: bool = True
    per_channel: bool = True
    op_types: tuple[str, ...] = ()
    calibrator: str = "minmax"
    percentile: float = 99.999
    # ops the accuracy fallback returns to float only after every other quantized node: where
    # the integer kernels that make int8 worth having run (a float Add costs a Q/DQ pair, a
    # float FULLY_CONNECTED the whole point)
    fallback_last: tuple[str, ...] = ()
    # channel equalization of constant-weight MatMuls before calibration (`calibration.smooth`):
    # input smoothing with a searched α, and output channels above `outlier_ratio` × the median
    # channel's range scaled into it
    equalize: bool = False
    outlier_ratio: float = 4.0
    # weight-only int8 (Core ML's weight compression): no Q/DQ, no activation calibration; the
    # graph keeps the float precision the fp16 stage gives it and the backend compresses weights
    weights_only: bool = False
    # the runtime's integer kernels require fixed output parameters for Softmax, Sigmoid, Tanh and
    # LogSoftmax (TFLite's 8-bit spec: Softmax/Logistic 1/256 at zero point −128, Tanh 1/128 at 0):
    # the calibrated range is replaced by those (`calibration.qdq.fix_output_params`)
    fixed_output_params: bool = False
    # ops the runtime runs with integer kernels only when their weights (input 1) are constant
    # (LiteRT's FULLY_CONNECTED from a Gemm): with run-time weights they stay float
    const_weights_only: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class PrecisionPolicy:
    """Float-precision policy: ops the target keeps in fp32 whatever the precision, and whether
    graph inputs/outputs stay fp32 under fp16."""

    keep_fp32_ops: tuple[str, ...] = ()
    keep_io_types: bool = True
    fp16_max_abs: float = 16384.0  # activations beyond this (a quarter of fp16's 65504) stay fp32
    # what fp16 means on the target: "graph" — ONNX Runtime's float16 converter rewrites the graph
    # (fp16 compute, per-node fallback); "weights" — the graph stays fp32 and the backend stores
    # constant weights in float16, computing in fp32 (LiteRT's float16 quantization, what phone
    # GPU delegates take and half the download)
    fp16: str = "graph"
    # the same choice for int8-dynamic: "graph" — ONNX Runtime's dynamic quantizer rewrites the
    # MatMuls; "weights" — the graph stays fp32 and the backend's own quantizer stores int8
    # weights that its hybrid kernels use with activations quantized at run time (LiteRT's
    # dynamic-range quantization)
    int8_dynamic: str = "graph"


def _scheme(t: Table | None, where: str) -> QuantScheme | None:
    if t is None:
        return None
    presets = load_toml(PRESETS_FILE, "quantization presets")
    name = t.req("preset", str)
    if name not in presets:
        raise unknown_name("quantization preset", name, presets, where=str(PRESETS_FILE))
    merged = {**presets[name], **{k: v for k, v in t.raw().items() if k != "preset"}}
    m = Table(merged, f"{where} [quantization] (preset {name!r})")
    scheme = QuantScheme(
        preset=name,
        source=m.req("source", str),
        activation_type=m.choice("activation_type", QTYPES, "uint8"),
        activation_symmetric=m.opt("activation_symmetric", bool, False),
        weight_type=m.choice("weight_type", ("int8",), "int8"),
        weight_symmetric=m.opt("weight_symmetric", bool, True),
        per_channel=m.opt("per_channel", bool, True),
        op_types=tuple(m.opt("op_types", list, [])),
        calibrator=m.choice("calibrator", CALIBRATORS, "minmax"),
        percentile=float(m.opt("percentile", (int, float), 99.999)),
        fallback_last=tuple(m.opt("fallback_last", list, [])),
        equalize=m.opt("equalize", bool, False),
        outlier_ratio=float(m.opt("outlier_ratio", (int, float), 4.0)),
        weights_only=m.opt("weights_only", bool, False),
        fixed_output_params=m.opt("fixed_output_params", bool, False),
        const_weights_only=tuple(m.opt("const_weights_only", list, [])),
        extra=MappingProxyType(dict(m.opt("extra", dict, {}))),
    )
    m.done()
    return scheme


@dataclass(frozen=True)
class Device:
    name: str
    arch: str
    notes: str = ""
    # the Ray custom resource a node offers when it is this device: where deferred device steps
    # (engine build + verification, prediction) run in a fleet (`matrix --ray`)
    resource: str = ""


@dataclass(frozen=True)
class TargetProfile:
    name: str
    backend: str
    description: str
    device: Device
    precisions: tuple[Precision, ...]
    default_precision: Precision
    pipeline: str = "default"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # backend options
    toolchain: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # version pins
    quantization: QuantScheme | None = None  # None: the target has no int8
    precision_policy: PrecisionPolicy = PrecisionPolicy()
    path: Path | None = None

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def check_precision(self, precision: str | None) -> Precision:
        precision = Precision.parse(precision) if precision else self.default_precision
        if precision not in self.precisions:
            raise BadInput(
                f"target {self.name!r} does not support precision {str(precision)!r}; it supports "
                f"{', '.join(self.precisions)} ({self.path})."
            )
        return precision


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def profile_path(target: str | Path) -> tuple[Path, bool]:
    """(the profile file, whether it is one of the package's) for a target name or a path to a
    user's own profile TOML (`--target my-device.toml`)."""
    text = str(target)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise BadInput(f"target profile {text!r} does not exist (a target is a name — see `targets` — or a .toml file).")
        return path, False
    path = PROFILES_DIR / f"{text}.toml"
    if not path.is_file():
        raise unknown_name("target", text, known_profiles())
    return path, True


def load_profile(target: str | Path) -> TargetProfile:
    """The profile as written (its [options] untyped): `targets.registry.load_profile` checks the
    options against the backend's declaration — use that one."""
    path, packaged = profile_path(target)
    name = path.stem
    t = Table(load_toml(path, "target profile"), str(path))
    dev = t.sub("device", required=True)
    device = Device(dev.req("name", str), dev.req("arch", str), dev.opt("notes", str, ""), dev.opt("resource", str, ""))
    dev.done()
    prec = t.sub("precision", required=True)
    allowed = tuple(Precision.parse(p, f"{path} [precision] allowed") if isinstance(p, str) else p
                    for p in prec.req("allowed", list))
    if not all(isinstance(p, Precision) for p in allowed):
        raise BadInput(f"{path} [precision]: allowed must be a list of precision names.")
    default = Precision(prec.choice("default", [p.value for p in allowed]))
    prec.done()
    quant = _scheme(t.sub("quantization"), str(path))
    if "int8" in allowed and quant is None:
        raise BadInput(f"{path}: precision int8 is allowed but there is no [quantization] table naming a preset.")
    policy = PrecisionPolicy()
    if (pt := t.sub("precision_policy")) is not None:
        policy = PrecisionPolicy(
            keep_fp32_ops=tuple(pt.opt("keep_fp32_ops", list, [])),
            keep_io_types=pt.opt("keep_io_types", bool, True),
            fp16_max_abs=float(pt.opt("fp16_max_abs", (int, float), 16384.0)),
            fp16=pt.opt("fp16", str, "graph"),
            int8_dynamic=pt.opt("int8_dynamic", str, "graph"),
        )
        for key in ("fp16", "int8_dynamic"):
            if getattr(policy, key) not in ("graph", "weights"):
                raise BadInput(f"{path}: [precision_policy] {key} = {getattr(policy, key)!r}; expected 'graph' or 'weights'.")
        pt.done()
    opts = t.opt("options", dict, {})
    pins = t.opt("toolchain", dict, {})
    profile = TargetProfile(
        name=t.req("name", str),
        backend=t.req("backend", str),
        description=t.opt("description", str, ""),
        device=device,
        precisions=allowed,
        default_precision=default,
        pipeline=t.opt("pipeline", str, "default"),
        options=MappingProxyType(dict(opts)),
        toolchain=MappingProxyType({k: str(v) for k, v in pins.items()}),
        quantization=quant,
        precision_policy=policy,
        path=path,
    )
    t.done()
    if packaged and profile.name != name:
        raise BadInput(f"{path}: name {profile.name!r} differs from the file name {name!r}.")
    return profile
