"""The driver's side of a remote row: an artifact that arrived as bytes is checked and installed
under `build`'s rules (only our directories replaced, atomic swap, failed never over passed), and
what a device step did is recorded in the artifact's manifest (re-sealed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from compiler.artifact.read import read_manifest
from compiler.artifact.slot import OutputSlot
from compiler.artifact.write import finalize
from compiler.fleet.row import unpack
from compiler.verify import ParityReport


def install_packed(data: bytes, dest: Path, failed: bool) -> Path:
    with OutputSlot(dest) as slot:
        staging = slot.staging()
        unpack(data, staging)
        read_manifest(staging)  # sealed and whole, or refused before anything is replaced
        return slot.install(staging, failed=failed)


def record_device_step(artifact: Path, step: dict[str, Any]) -> None:
    manifest = read_manifest(artifact)
    manifest.setdefault("device_steps", []).append(step)
    parity_path = artifact / "parity.json"
    parity = ParityReport.from_dict(json.loads(parity_path.read_text())) if parity_path.is_file() else None
    with OutputSlot(artifact) as slot:
        staging = slot.staging()
        for f in manifest["files"]:
            (staging / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(artifact / f["path"], staging / f["path"])
        if (artifact / "build.json").is_file():
            shutil.copyfile(artifact / "build.json", staging / "build.json")
        finalize(staging, manifest, parity)
        slot.install(staging, failed=manifest.get("status") == "failed")
