"""Shape profiles: the min/opt/max size of each named dynamic dim, from a target profile's
``[options] shape_profiles`` (TensorRT optimization profiles, Core ML's RangeDim bounds)."""

from __future__ import annotations

import onnx_ir as ir

from compiler import ir as irh
from compiler.errors import BadInput
from compiler.profile import TargetProfile


def shape_ranges(model: ir.Model, profile: TargetProfile) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """min/opt/max shape per graph input from the profile's ``shape_profiles`` (per named dim)."""
    named = dict(profile.option("shape_profiles", {}))
    out = {}
    for t in irh.graph_inputs(model):
        if t.shape is None:
            raise BadInput(f"input {t.name!r} has no known rank; {profile.backend} needs a shape profile for it.")
        dims: list[list[int]] = [[], [], []]
        for d in t.shape:
            if isinstance(d, int):
                for k in range(3):
                    dims[k].append(d)
                continue
            if d not in named:
                raise BadInput(
                    f"input {t.name!r} has dynamic dim {d!r} but {profile.path} has no [options.shape_profiles] "
                    f"entry {d!r} = [min, opt, max]; it has {sorted(named) or 'none'}."
                )
            lo, opt, hi = named[d]
            if not lo <= opt <= hi:
                raise BadInput(f"{profile.path}: shape profile {d!r} = {named[d]} must satisfy min ≤ opt ≤ max.")
            for k, v in enumerate((lo, opt, hi)):
                dims[k].append(int(v))
        out[t.name] = (tuple(dims[0]), tuple(dims[1]), tuple(dims[2]))
    return out
