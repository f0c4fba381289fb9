"""The typed build context: what a build was asked for, and what each stage adds to it.

`prepare` (in `compiler.build.prepare`) fills the first block from the request, checking
everything that can reject it before anything is written; each stage then reads fields and
fills its own (`compiler.build.stages` lists who writes what). The manifest is assembled from
this object in one place (`compiler.build.manifest`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from compiler.artifact.slot import OutputSlot
from compiler.cache import Cache
from compiler.frontend import FrontendResult
from compiler.golden import Golden
from compiler.passes.manager import PipelineResult
from compiler.precision import Precision
from compiler.profile import TargetProfile
from compiler.progress import Progress
from compiler.spec import ModelSpec
from compiler.validation import Group
from compiler.verify import ParityReport
from targets.base import Availability, Backend, Engine


@dataclass(frozen=True)
class BuildOptions:
    """A build's options beyond model and target (the CLI's flags; the API's keywords)."""

    precision: str | None = None  # a Precision name; None: the target's default
    out: Path | None = None
    golden_dir: Path | None = None
    pipeline: str | None = None  # overrides the profile's
    exporter: str | None = None  # overrides the spec's: "dynamo" | "legacy"
    verify_passes: bool = False
    dump_ir: Path | None = None
    calibrator: str | None = None  # overrides the target preset's
    calib_samples: int | None = None  # overrides the spec's
    trust_pickle: bool = False  # a .pt2 may unpickle when loaded (runs code from the file)
    calib: str | None = None  # --calib: an .npz or package.module:factory (replaces the spec's)
    cache_dir: Path | None = None  # --cache DIR (default: compiler.cache.default_dir())
    use_cache: bool = True  # --no-cache: stage results live in this process only
    candidate: bool = False  # a `best` candidate built into scratch: its install is not the run's commit point
    keep_float: tuple[str, ...] = ()  # --keep-float: nodes int8 / fp16 keep in float (added to the spec's)
    fallback: bool = True  # --no-fallback: the precision asked for, no node returned to float by the gate
    localize_seconds: float = 300.0  # --localize-seconds: a failed build's bound to name its first divergent layer; 0: off


@dataclass
class BuildResult:
    out_dir: Path
    passed: bool
    parity: ParityReport | None
    manifest: dict[str, Any]
    failure: str | None = None  # why the build failed, where the parity report alone does not say
    calibration: dict[str, Any] | None = None  # the precision stage's record (calibration.json)
    seconds: float | None = None  # wall time of the build
    cache: dict[str, str] = field(default_factory=dict)  # stage → hit / miss / not cached

    @property
    def status(self) -> str:
        return self.manifest.get("status", "unverified")


@dataclass
class Reduced:
    """What the precision stage made: the model at the reduced precision and its record."""

    model: ir.Model
    stats: dict[str, Any]  # → calibration.json
    trt_cache: str | None  # → calibration.cache (int8 ranges in TensorRT's text format)
    float_nodes: list[dict[str, Any]]
    gate_failures: list[str]  # the fallback search's own failure: not a working build of this precision


@dataclass
class BuildContext:
    # --- the request, resolved and checked (prepare) --------------------------------------
    model_arg: str
    spec: ModelSpec
    profile: TargetProfile
    precision: Precision
    options: BuildOptions
    backend: Backend
    avail: Availability
    golden: Golden
    pipeline: str
    out: Path
    progress: Progress
    cache: Cache
    slot: OutputSlot
    dump_slot: OutputSlot | None = None
    # --- filled by the stages -------------------------------------------------------------
    keys: dict[str, str] = field(default_factory=dict)  # stage → cache key
    cache_report: dict[str, str] = field(default_factory=dict)  # stage → hit / miss / not cached
    stage_seconds: dict[str, float] = field(default_factory=dict)
    torch_model: tuple[Any, Any] | None = None  # (module, example inputs) of a factory, loaded once
    exported: FrontendResult | None = None  # export
    optimized: PipelineResult | None = None  # optimize
    dump_staging: Path | None = None  # optimize, with --dump-ir
    groups: list[Group] = field(default_factory=list)  # precision: the validation set + float reference
    reduced: Reduced | None = None  # precision (int8 / fp16 only)
    model: ir.Model | None = None  # the model the engine is built from (optimize, then precision)
    staging: Path | None = None  # compile: the artifact being assembled
    model_files: list[str] = field(default_factory=list)
    engine: Engine | None = None  # compile
    parity: ParityReport | None = None  # verify
    verified_with: str | None = None  # verify
    status: str = "unverified"  # verify
    manifest: dict[str, Any] = field(default_factory=dict)  # install
    installed: Path | None = None  # install
    volatile: dict[str, Any] = field(default_factory=dict)  # → build.json
    started: float = field(default_factory=time.perf_counter)

    @property
    def threads(self) -> int:
        return int(self.profile.option("intra_op_num_threads", 1))

    def replace(self, **changes: Any) -> BuildContext:
        return dataclasses.replace(self, **changes)
