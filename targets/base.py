"""The backend interface every runtime implements (ONNX Runtime, TensorRT, OpenVINO, TFLite,
Core ML, TVM).

The split follows what a host can do: `available()` says whether this host can *compile* and
whether it can *run* (TensorRT without CUDA, Core ML off macOS can do neither or only the
first); `compile()` writes the engine files; `load()` gives a `Runner`. Steps a host cannot do
are returned as `Deferred` entries, recorded in the manifest with the reason and the command
to finish them on the device.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx_ir as ir

from compiler.options import Option
from compiler.profile import TargetProfile


@dataclass(frozen=True)
class Availability:
    can_compile: bool
    can_run: bool
    reason: str = ""  # why not, when either is False; what was found otherwise
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deferred:
    step: str  # e.g. "engine-build", "verify-on-device"
    reason: str
    command: str = ""  # how to finish it where it can run; "{artifact}" is the artifact directory


@dataclass
class Engine:
    """What `compile()` wrote: files relative to `dir`, the one a runner loads, and facts."""

    backend: str
    precision: str
    dir: Path
    entry: str
    files: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    deferred: list[Deferred] = field(default_factory=list)

    def for_device(self) -> Engine:
        """The engine as the device runs it (a cross-built library), where that differs."""
        entry = self.info.get("device_entry", self.entry)
        return Engine(self.backend, self.precision, self.dir, entry, self.files, self.info, self.deferred)

    def to_manifest(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "entry": self.entry,
            "files": self.files,
            "info": self.info,
        }

    @classmethod
    def from_manifest(cls, directory: Path, data: dict[str, Any]) -> Engine:
        return cls(data["backend"], data["precision"], directory, data["entry"], list(data["files"]), dict(data.get("info", {})))


class Runner(abc.ABC):
    """A loaded engine. `run` takes and returns numpy arrays keyed by graph tensor names."""

    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(abc.ABC):
    name: ClassVar[str]
    # Fused / non-default-domain ops this runtime executes (``domain::Op`` outside ai.onnx).
    # Graph passes that would emit anything else are not run for this backend's targets.
    accepts: ClassVar[frozenset[str]] = frozenset()
    # The profile [options] this backend reads, besides `compiler.options.COMMON`: checked (and
    # defaults filled) when a profile is loaded (`targets.registry.load_profile`).
    options: ClassVar[dict[str, Option]] = {}

    @abc.abstractmethod
    def available(self, profile: TargetProfile) -> Availability: ...

    def lowered_ops(self) -> list[str] | None:
        """The ONNX ops this project's own lowering converts (``targets --ops``), or None where the
        runtime's own ONNX importer decides."""
        return None

    @abc.abstractmethod
    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        """Build the engine in `workdir` from the IR (`model_path` is the same IR already
        saved as ``workdir/model.onnx``)."""

    @abc.abstractmethod
    def load(self, engine: Engine, threads: int = 1) -> Runner: ...

    def variants(self, engine: Engine, threads: int = 1) -> dict[str, Runner]:
        """Other ways this host runs the same engine file, each verified against golden besides
        the runner `load` gives (TFLite: the reference kernels, next to XNNPACK). Label → runner."""
        return {}

    def observe(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path,
                can_run: bool) -> Runner | None:
        """A runner for `model` (the artifact's graph with intermediate tensors made outputs) as
        this backend executes it, for `compiler.debug`: by default the engine compiled and loaded
        as a build would (or its host-side check where it cannot run here); a backend whose runtime
        compiles the ONNX in memory overrides it to skip writing its own format."""
        engine = self.compile(model, model_path, profile, precision, workdir)
        return self.load(engine, threads=1) if can_run else self.host_check(engine)

    def host_check(self, engine: Engine) -> Runner | None:
        """Where the engine cannot run on this host: a runner for the host-side numerical check
        of what the engine is built from (TensorRT: the ONNX through ONNX Runtime), or None."""
        return None
