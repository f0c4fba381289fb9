"""`python -m compiler debug --artifact DIR [--out DIR] [--bisect]`: name the layer where an
artifact's engine departs from its float reference, on every backend that runs here (or its
host-side check), and with `--bisect` the smallest keep-float list that makes it pass.

Writes `OUT/debug.json` and `OUT/report.html` (the artifact's report with the error along the
graph); OUT defaults to `DIR.debug` beside the artifact, replaced only if it is ours. The
artifact itself is read, never changed (its seal stays valid).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from compiler.artifact.files import write_json
from compiler.artifact.read import artifact_golden, read_manifest
from compiler.artifact.slot import DEBUG, OutputSlot
from compiler.artifact.write import write_report_html
from compiler.debug import bisect as bisect_mod
from compiler.debug.localize import REFERENCE_FILE, load_model, localize, reference_model, summary
from compiler.errors import BadInput, ToolchainMissing
from compiler.progress import Progress
from targets import get_backend, load_profile


def debug(artifact: Path, out: Path | None = None, bisect: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    progress = progress or Progress()
    manifest = read_manifest(artifact)
    golden = artifact_golden(artifact, manifest)
    own = artifact / "target.toml"
    profile = load_profile(own if own.is_file() else manifest["target"]["name"])
    backend = get_backend(manifest["engine"]["backend"])
    avail = backend.available(profile)
    if not avail.can_compile:
        raise ToolchainMissing(f"{backend.name} cannot build the observed engine on this host: {avail.reason}.")
    precision = manifest["precision"]
    if bisect and precision not in ("int8", "fp16"):
        raise BadInput(f"--bisect searches what to keep in float in an int8 or fp16 artifact; {str(artifact)!r} is {precision}.")
    if bisect and not (artifact / REFERENCE_FILE).is_file():
        raise BadInput(f"{str(artifact)!r} carries no {REFERENCE_FILE} (built by an older model-compiler): rebuild it to bisect.")
    out = out or artifact.with_name(artifact.name + ".debug")
    slot = OutputSlot(out, DEBUG, log=progress.info)
    slot.check()
    with slot:
        with progress.step(f"observe every tensor of the {backend.name} engine and of the float reference"):
            result = localize(load_model(artifact / "model.onnx"), reference_model(artifact), golden, backend, profile,
                              precision, avail.can_run, slot.work / "observed")
        progress.info(summary(result))
        if bisect:
            calibration = _json(artifact / "calibration.json")
            with progress.step("bisect: the smallest keep-float list that passes, each probe a real engine"):
                b = bisect_mod.bisect(artifact / "model.onnx", artifact / REFERENCE_FILE, result, golden,
                                      manifest["model"].get("outputs") or {}, backend, profile, precision, avail.can_run,
                                      calibration, slot.work / "bisect", progress.info)
            result.update(keep_float=b["keep_float"], bisection=b)
            progress.info(f"keep float: {','.join(b['keep_float']) or '(none)'} → "
                          f"{'passes' if b['passed'] else 'still fails with every candidate in float'}; rebuild with "
                          f"--no-fallback --keep-float {','.join(b['keep_float'])}")
        staging = slot.staging()
        write_json(staging / "debug.json", {"artifact": str(artifact), **result})
        for name in ("parity.json", "calibration.json", "build.json"):
            if (artifact / name).is_file():
                shutil.copyfile(artifact / name, staging / name)
        write_report_html(staging, manifest)
        for name in ("parity.json", "calibration.json", "build.json"):
            (staging / name).unlink(missing_ok=True)
        slot.install(staging)
    progress.info(f"debug: {out}/debug.json, {out}/report.html")
    return result


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None
