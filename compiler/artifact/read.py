"""Reading an artifact: its manifest (checked key by key, then sealed-content integrity), the
golden set it carries, a runner for its engine, and `verify`.

Every path a manifest names must lie inside the artifact; nothing is loaded before the
manifest's seal and every file's sha256 have been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from compiler import golden as golden_mod
from compiler import ir as irh
from compiler import spec as spec_mod
from compiler.artifact.files import MANIFEST
from compiler.artifact.integrity import check_integrity
from compiler.errors import BadInput, ToolchainMissing
from compiler.parity import check_parity, variant_parity
from compiler.verify import ParityReport
from targets import get_backend, load_profile
from targets.base import Engine, Runner

ARTIFACT_GOLDEN = "golden"  # the golden set travels inside the artifact
PROFILE_FILE = "target.toml"  # and the target profile it was built for
REFERENCE_FILE = "reference.onnx"  # and, at a reduced precision, the float model the engine was made from

_REQUIRED = (("schema", int), ("status", str), ("precision", str), ("model", dict), ("model.name", str),
             ("target", dict), ("target.name", str), ("engine", dict), ("engine.backend", str), ("engine.entry", str),
             ("engine.files", list), ("files", list), ("golden", dict))


def read_manifest(artifact: Path) -> dict[str, Any]:
    path = artifact / MANIFEST
    if not path.is_file():
        raise BadInput(f"{str(artifact)!r} is not an artifact directory (no {MANIFEST}).")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{str(path)!r} is not valid JSON: {e}.") from None
    if not isinstance(manifest, dict):
        raise BadInput(f"{str(path)!r} is not a manifest: a JSON object was expected, found {type(manifest).__name__}.")
    for key, typ in _REQUIRED:
        value: Any = manifest
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, typ):
            raise BadInput(f"{str(path)!r} lacks {key!r} ({typ.__name__}); was it written by model-compiler?")
    for i, f in enumerate(manifest["files"]):
        if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)):
            raise BadInput(f"{str(path)!r}: files[{i}] must be {{\"path\", \"sha256\"}}.")
        inside(artifact, f["path"], f"files[{i}].path", path)
    _check_interface(manifest, path)
    check_integrity(artifact, manifest, path)
    return manifest


def _check_interface(manifest: dict[str, Any], path: Path) -> None:
    """`interface` (the graph's inputs and outputs) as `TensorInfo.from_dict` reads it."""
    iface = manifest.get("interface")
    if iface is None:
        return
    if not isinstance(iface, dict):
        raise BadInput(f"{str(path)!r}: 'interface' must be an object with 'inputs' and 'outputs'.")
    for side in ("inputs", "outputs"):
        rows = iface.get(side)
        if not isinstance(rows, list):
            raise BadInput(f"{str(path)!r}: 'interface.{side}' must be a list.")
        for i, t in enumerate(rows):
            key = f"interface.{side}[{i}]"
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise BadInput(f"{str(path)!r}: {key!r} must be an object with a string 'name'.")
            try:
                if not isinstance(t.get("dtype"), str):
                    raise TypeError
                np.dtype(t["dtype"])
            except TypeError:
                raise BadInput(f"{str(path)!r}: {key}.dtype = {t.get('dtype')!r} is not a dtype name.") from None
            shape = t.get("shape", "missing")
            if shape is not None and not (isinstance(shape, list) and all(
                    d is None or isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in shape)):
                raise BadInput(f"{str(path)!r}: {key}.shape = {shape!r} must be null or a list of dims (int ≥ 0, name or null).")


def inside(artifact: Path, rel: str, key: str, manifest_path: Path) -> Path:
    """`artifact/rel`, refusing a path that leaves the artifact (absolute, '..', a symlink out)."""
    p = Path(rel)
    target = (artifact / p).resolve()
    if p.is_absolute() or ".." in p.parts or not target.is_relative_to(artifact.resolve()):
        raise BadInput(f"{str(manifest_path)!r}: {key} = {rel!r} points outside the artifact; refusing to load it.")
    return artifact / p


def artifact_golden(artifact: Path, manifest: dict[str, Any], golden_dir: Path | None = None) -> golden_mod.Golden:
    """The artifact's own golden copy (or `golden_dir`), checked against the graph interface."""
    if golden_dir is None:
        golden_dir = inside(artifact, str(manifest["golden"].get("dir", ARTIFACT_GOLDEN)), "golden.dir", artifact / MANIFEST)
        if not golden_dir.is_dir():
            raise BadInput(f"{str(artifact)!r} carries no golden set ({ARTIFACT_GOLDEN}/; built by an older "
                           "model-compiler?): pass --golden DIR or rebuild it.")
    golden = golden_mod.Golden.load(golden_dir)
    if "interface" in manifest:
        golden.check_interface([irh.TensorInfo.from_dict(t) for t in manifest["interface"]["inputs"]],
                               [irh.TensorInfo.from_dict(t) for t in manifest["interface"]["outputs"]])
    return golden


def load_artifact(artifact: Path, threads: int = 1, on_device: bool = False,
                  manifest: dict[str, Any] | None = None) -> tuple[dict[str, Any], Runner]:
    """The manifest (read here unless given) and a runner for the engine of a built artifact
    (files checked by sha256)."""
    manifest = manifest if manifest is not None else read_manifest(artifact)
    own = artifact / PROFILE_FILE
    profile = load_profile(own if own.is_file() else manifest["target"]["name"])
    backend = get_backend(manifest["engine"]["backend"])
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"the {backend.name} engine in {str(artifact)!r} cannot run on this host: {avail.reason}.")
    engine = Engine.from_manifest(artifact, manifest["engine"])
    for key, rel in (("engine.entry", engine.entry), ("engine.info.device_entry", engine.info.get("device_entry"))):
        if rel is not None:
            inside(artifact, str(rel), key, artifact / MANIFEST)
    return manifest, backend.load(engine.for_device() if on_device else engine, threads=threads)


def verify(artifact: Path, golden_dir: Path | None = None, on_device: bool = False) -> ParityReport:
    """Run the artifact's engine on its own golden set (or `golden_dir`); `on_device` loads the
    device build (e.g. the aarch64 library on the board) instead of this host's twin. Works from
    any directory and after the artifact is moved: it needs nothing outside it."""
    manifest = read_manifest(artifact)
    golden = artifact_golden(artifact, manifest, golden_dir)  # checked before the engine is loaded
    _, runner = load_artifact(artifact, on_device=on_device, manifest=manifest)
    spec = None
    ref = manifest["model"].get("spec")
    if ref:  # the labelled evaluation set is outside the artifact: used only when the same spec is here
        try:
            candidate = spec_mod.load_spec(spec_mod.MODELS_DIR.parent / ref)
            spec = candidate if candidate.sha256 == manifest["model"].get("spec_sha256") else None
        except BadInput:
            spec = None
    kinds = manifest["model"].get("outputs")
    with runner:
        report = check_parity(runner, golden, spec, manifest["precision"], kinds=kinds)
    report.variants = variant_parity(get_backend(manifest["engine"]["backend"]), Engine.from_manifest(artifact, manifest["engine"]),
                                     golden, spec, manifest["precision"], kinds=kinds)
    return report
