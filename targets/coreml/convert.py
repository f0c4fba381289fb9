"""The Core ML lowering's entry point: every op family registered, a model lowered to a
one-function MIL program. Apart from `lower` (the adapter and helpers the families import), so
that the families and the driver do not import each other."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from targets.coreml import families  # noqa: F401  (registers every op family)
from targets.coreml.lower import Lowered, Program
from targets.lowering import lower_graph


def lower(model: ir.Model) -> Lowered:
    """The model as a one-function MIL program ("main")."""
    from coremltools.converters.mil.mil import Program as MilProgram

    p = Program()
    with np.errstate(all="ignore"):  # coremltools folds constants in numpy (softmax of -inf rows) while building
        ops = lower_graph(model, p)
    program = MilProgram()
    program.add_function("main", p.fn)
    return Lowered(program, p.inputs, p.outputs, ops)
