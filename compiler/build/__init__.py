"""Build a verified artifact: the Python API the CLI is a thin layer over.

    import torch
    from compiler.build import build

    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    result = build(net, "cpu", example_inputs=torch.randn(2, 8), out="build/cpu/tiny")
    assert result.passed, result.failure or result.parity.failures()

`model` is an `nn.Module` (with `example_inputs`), a model spec TOML or zoo name, an `.onnx`, a
`.pt2`, or `package.module:factory`. The stages are in `compiler.build.stages`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from compiler.build.context import BuildContext, BuildOptions, BuildResult
from compiler.build.prepare import prepare
from compiler.build.stages import STAGES, run_stages
from compiler.cache import Cache
from compiler.progress import Progress
from compiler.spec import ModelSpec, from_module

BEST = "best"


def run(model: str | ModelSpec, target: str | Path, opts: BuildOptions = BuildOptions(), progress: Progress | None = None,
        cache: Cache | None = None) -> BuildResult:
    """One build through the stage table (or, for `opts.precision == "best"`, every candidate)."""
    progress = progress or Progress()
    if opts.precision == BEST:
        from compiler.build.best import build_best

        return build_best(model, target, opts, progress, run)
    ctx = prepare(model, target, opts, progress, cache)
    with ctx.slot, ctx.dump_slot or contextlib.nullcontext():
        run_stages(ctx)
    return result_of(ctx)


def result_of(ctx: BuildContext) -> BuildResult:
    gate = ctx.reduced.gate_failures if ctx.reduced is not None else []
    return BuildResult(ctx.installed, ctx.status != "failed", ctx.parity, ctx.manifest,
                       "; ".join(gate) if gate and ctx.parity is None else None,
                       ctx.reduced.stats if ctx.reduced is not None else None, ctx.volatile.get("build_seconds"),
                       dict(ctx.cache_report))


def build(model: Any, target: str | Path = "cpu", *, example_inputs: Any = None, name: str | None = None,
          precision: str | None = None, out: str | Path | None = None, golden: str | Path | None = None,
          quiet: bool = True, **options: Any) -> BuildResult:
    """Build and verify `model` for `target`; returns status, parity, paths and timings.

    `options` are `BuildOptions` fields (`calib`, `calibrator`, `cache_dir`, `use_cache`, …).
    An `nn.Module` without `golden` is verified against PyTorch eager on its `example_inputs`
    (the artifact carries that golden set)."""
    opts = BuildOptions(precision=precision, out=Path(out) if out is not None else None,
                        golden_dir=Path(golden) if golden is not None else None, **options)
    progress = Progress(quiet=quiet)
    if isinstance(model, (str, Path, ModelSpec)):
        return run(str(model) if isinstance(model, Path) else model, target, opts, progress)
    if example_inputs is None:
        raise TypeError("build(nn.Module, …) needs example_inputs: a tensor or a tuple of tensors to export and verify at.")
    spec = from_module(model, example_inputs, name)
    if opts.golden_dir is not None:
        return run(spec, target, opts, progress)
    with tempfile.TemporaryDirectory(prefix="model-compiler-golden-") as d:  # the artifact keeps its own copy
        return run(spec, target, dataclasses.replace(opts, golden_dir=_golden_for(spec, Path(d) / spec.name, progress)), progress)


def _golden_for(spec: ModelSpec, directory: Path, progress: Progress) -> Path:
    from compiler import golden as golden_mod

    return golden_mod.generate(spec, directory, log=progress.info, commit=False)


__all__ = ["build", "run", "BuildOptions", "BuildResult", "BuildContext", "STAGES"]
