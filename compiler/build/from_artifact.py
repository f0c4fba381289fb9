"""`build --from-artifact DIR`: finish a build whose engine step was deferred (TensorRT on the
device): compile the artifact's own model.onnx with the same profile, verify the engine against
the artifact's own golden set, and replace the artifact atomically with the engine added and
the deferred steps cleared. Runtime calls go through the same `toolchain_step` as a build.
"""

from __future__ import annotations

import time
from pathlib import Path

import onnx_ir as ir

from compiler.artifact.read import artifact_golden, read_manifest
from compiler.artifact.slot import OutputSlot
from compiler.artifact.write import finalize
from compiler.build.compile import MODEL_FILE
from compiler.build.context import BuildResult
from compiler.toolchain import toolchain_step
from compiler.errors import BadInput, ToolchainMissing
from compiler.parity import check_parity
from compiler.progress import Progress
from targets import get_backend, load_profile


def build_from_artifact(artifact: Path, target: str, progress: Progress | None = None) -> BuildResult:
    progress = progress or Progress()
    t0 = time.perf_counter()
    manifest = read_manifest(artifact)
    profile = load_profile(target)
    if manifest["target"]["name"] != profile.name:
        raise BadInput(f"{artifact} was prepared for target {manifest['target']['name']!r}, not {profile.name!r}.")
    if not manifest.get("deferred"):
        raise BadInput(f"{str(artifact)!r}: nothing is deferred (its engine was built and verified with "
                       f"{manifest.get('verified_with') or 'the build'}); --from-artifact finishes a deferred "
                       "engine step. Use `verify --artifact` to check it again.")
    backend = get_backend(profile.backend)
    avail = backend.available(profile)
    if not avail.can_run:
        raise ToolchainMissing(f"target {profile.name!r} cannot build or run its engine on this host: {avail.reason}.")
    golden = artifact_golden(artifact, manifest)
    precision = manifest["precision"]
    with OutputSlot(artifact, log=progress.info) as slot:
        tmp = slot.staging()
        for f in manifest["files"]:
            (tmp / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f["path"]).write_bytes((artifact / f["path"]).read_bytes())
        model = ir.load(tmp / MODEL_FILE)
        with progress.step(f"compile: {profile.backend} ({precision})"), toolchain_step(backend.name, "compile", model):
            engine = backend.compile(model, tmp / MODEL_FILE, profile, precision, tmp)
        with progress.step("verify against golden (engine)"), toolchain_step(backend.name, "run", model), \
                backend.load(engine) as runner:
            parity = check_parity(runner, golden, None, precision, kinds=manifest["model"].get("outputs"))
        manifest.update(status="passed" if parity.passed else "failed", engine=engine.to_manifest(), deferred=[],
                        verified_with="engine", toolchain={**manifest["toolchain"], **avail.versions})
        finalize(tmp, manifest, parity, {"engine_build_seconds": round(time.perf_counter() - t0, 3)})
        installed = slot.install(tmp, failed=not parity.passed)
    return BuildResult(installed, parity.passed, parity, manifest)
