"""The precisions an engine can be built at: one enum, parsed in one place.

A `StrEnum`, so a precision is also its name wherever a string is expected (JSON, TOML, file
names, messages); `--precision best` is a build mode, not a precision (`compiler.build.best`).
"""

from __future__ import annotations

import enum

from compiler.errors import BadInput


class Precision(enum.StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    INT4 = "int4"  # weight-only: 4-bit MatMul weights, float activations
    INT8_DYNAMIC = "int8-dynamic"  # int8 MatMul weights, activations quantized at run time (no calibration)

    @property
    def reduced(self) -> bool:
        """Anything but fp32: judged on the validation set, in the engine where it runs."""
        return self is not Precision.FP32

    @classmethod
    def parse(cls, value: str, where: str = "") -> Precision:
        try:
            return cls(value)
        except ValueError:
            loc = f"{where}: " if where else ""
            raise BadInput(f"{loc}unknown precision {value!r}; known: {', '.join(p.value for p in cls)}.") from None


PRECISIONS = tuple(p.value for p in Precision)
# what the precision stage rewrites the graph for (the rest are the backend's choice of kernels)
GRAPH_REDUCED = (Precision.INT8, Precision.FP16, Precision.INT4, Precision.INT8_DYNAMIC)
# whose tolerances a precision is judged by where tolerances.toml has no section of its own:
# dynamic int8 makes the same promise as static int8
JUDGED_AS = {Precision.INT8_DYNAMIC: Precision.INT8}
