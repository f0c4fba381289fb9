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
from compiler.tolerances import PRECISIONS
from compiler.tomlschema import Table, load_toml

PROFILES_DIR = Path(__file__).resolve().parent.parent / "targets" / "profiles"


@dataclass(frozen=True)
class Device:
    name: str
    arch: str
    notes: str = ""


@dataclass(frozen=True)
class TargetProfile:
    name: str
    backend: str
    description: str
    device: Device
    precisions: tuple[str, ...]
    default_precision: str
    pipeline: str = "default"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # backend options
    toolchain: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # version pins
    path: Path | None = None

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def check_precision(self, precision: str | None) -> str:
        precision = precision or self.default_precision
        if precision not in self.precisions:
            raise BadInput(
                f"target {self.name!r} does not support precision {precision!r}; it supports "
                f"{', '.join(self.precisions)} ({self.path})."
            )
        return precision


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name: str) -> TargetProfile:
    path = PROFILES_DIR / f"{name}.toml"
    if not path.is_file():
        raise unknown_name("target", name, known_profiles())
    t = Table(load_toml(path, "target profile"), str(path))
    dev = t.sub("device", required=True)
    device = Device(dev.req("name", str), dev.req("arch", str), dev.opt("notes", str, ""))
    dev.done()
    prec = t.sub("precision", required=True)
    allowed = tuple(prec.req("allowed", list))
    for p in allowed:
        if p not in PRECISIONS:
            raise BadInput(f"{path} [precision]: unknown precision {p!r}; known: {', '.join(PRECISIONS)}.")
    default = prec.choice("default", allowed)
    prec.done()
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
        path=path,
    )
    t.done()
    if profile.name != name:
        raise BadInput(f"{path}: name {profile.name!r} differs from the file name {name!r}.")
    return profile
