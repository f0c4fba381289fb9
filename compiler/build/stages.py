"""The build, as a table of stages (TVM's `get_default_pipeline` is the model).

Each stage is a function of the `BuildContext`: it reads the fields listed beside it and fills
its own. A `--precision best` candidate, a fleet row and `--from-artifact` run the same stage
functions, so every runtime call goes through the one place that turns toolchain errors into
exit codes (`compiler.toolchain`).

| stage      | reads                                        | writes                         | cached by            |
|------------|----------------------------------------------|--------------------------------|----------------------|
| export     | spec, golden inputs                          | exported                       | the model's bytes    |
| optimize   | exported, pipeline, backend's ops            | optimized, model               | export key           |
| precision  | model, calibration / validation data, golden | groups, reduced, model         | optimize key + data  |
| compile    | model, reduced, golden, profile              | staging, engine                | staging bytes        |
| verify     | engine, golden, groups                       | parity, verified_with, status  | engine bytes + data  |
| install    | everything                                   | manifest, installed            | never (commit point) |
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from compiler.build import compile, export, install, optimize, precision, verify
from compiler.build.context import BuildContext


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BuildContext], None]


STAGES: tuple[Stage, ...] = (
    Stage("export", export.run),
    Stage("optimize", optimize.run),
    Stage("precision", precision.run),
    Stage("compile", compile.run),
    Stage("verify", verify.run),
    Stage("install", install.run),
)


def run_stages(ctx: BuildContext, stages: tuple[Stage, ...] = STAGES) -> BuildContext:
    for stage in stages:
        t0 = time.perf_counter()
        stage.run(ctx)
        ctx.stage_seconds[stage.name] = time.perf_counter() - t0
    return ctx
