"""Build small graphs from ONNX text syntax, run one pass, compare with ORT on the original."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.parser
import onnx_ir as ir

from compiler import ir as irh
from compiler import ortsession
from compiler.passes import PassContext, get_pass
from targets.ort import OnnxRuntimeBackend

ORT = PassContext(OnnxRuntimeBackend.accepts)
RNG = np.random.default_rng(0)


def model(text: str, **inits: np.ndarray) -> ir.Model:
    proto = onnx.parser.parse_model(text)
    for name, value in inits.items():
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(value), name))
    onnx.checker.check_model(proto)
    return ir.from_proto(proto)


def run_pass(name: str, m: ir.Model, ctx: PassContext = ORT) -> tuple[ir.Model, ir.passes.PassResult]:
    """Returns (a copy of the original, the pass result on the model)."""
    original = ir.from_proto(irh.to_proto(m))
    return original, get_pass(name)(ctx)(m)


def ops(m: ir.Model) -> list[str]:
    return [n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}" for n in m.graph]


def run(m: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ortsession.session(m, level="disabled").run(None, feeds)  # ORT must not fuse for us


def assert_same(original: ir.Model, rewritten: ir.Model, feeds: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    for a, b in zip(run(original, feeds), run(rewritten, feeds), strict=True):
        np.testing.assert_allclose(b, a, atol=atol, rtol=1e-5)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def prepared(m: ir.Model) -> ir.Model:
    """What the pipeline's cleanup phase guarantees the fusion passes: inferred shapes and
    folded constants (fusion rules match constant operands by value)."""
    for name in ("shape_inference", "constant_folding"):
        m = get_pass(name)(ORT)(m).model
    return m
