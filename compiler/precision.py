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
