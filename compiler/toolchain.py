"""The one place a runtime's own error becomes an exit code.

Every call into a backend (compile, load, run — in the build, in a `best` candidate, in the
precision gate, in `--from-artifact`) goes through `toolchain_step`: a runtime's refusal of the
model is exit 2 naming the backend and the nodes/ops its message mentions; a runtime failing
because the disk filled is exit 5.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import onnx_ir as ir

from compiler import interrupts
from compiler.errors import CompilerError, ToolchainRefused, is_toolchain_exception, mentioned_ops, resource_error

# The Python layers of the runtimes and converters a backend drives: an exception raised while
# their code runs (LiteRT's interpreter: "ValueError: Invalid tensor size"; the MIL builder's type
# inference) is the toolchain refusing this graph, whatever its class.
RUNTIME_PACKAGES = ("ai_edge_litert", "ai_edge_quantizer", "coremltools", "litert_converter")


def _raised_in(e: BaseException, libraries: tuple[str, ...]) -> bool:
    marks = [f"/site-packages/{lib.strip('/')}/" for lib in libraries]
    return any(m in f.filename for f in traceback.extract_tb(e.__traceback__) for m in marks)


def raised_in_runtime(e: BaseException) -> bool:
    """Raised while a runtime's or converter's own Python code ran (RUNTIME_PACKAGES)."""
    return _raised_in(e, RUNTIME_PACKAGES)


@contextlib.contextmanager
def toolchain_step(backend: str, action: str, model: ir.Model | Path, libraries: tuple[str, ...] = ()) -> Iterator[None]:
    """`model` names the nodes and ops in the message; a path is read only if the step fails.
    `libraries`: Python packages (e.g. "onnxruntime/quantization") whose own code transforms the
    model in this step — any exception raised while their code runs (ORT's quantizer failing on a
    graph it does not handle, numpy inside it) is their refusal of this model, not our bug."""
    try:
        yield
    except Exception as e:
        interrupts.check()
        if isinstance(e, CompilerError) or not (is_toolchain_exception(e) or _raised_in(e, libraries + RUNTIME_PACKAGES)):
            raise
        full = resource_error(e, tempfile.gettempdir())  # the build's scratch, beside its output
        if full is not None:
            raise full from None
        text = " ".join(str(e).split())
        if isinstance(model, Path):
            model = ir.load(model)
        ops = mentioned_ops(text, (n.op_type for n in model.graph))
        nodes = sorted({n.name for n in model.graph if n.name and len(n.name) > 2 and n.name in text})[:5]
        named = "; ".join(x for x in (f"op {', '.join(ops)}" if ops else "", f"node {', '.join(nodes)}" if nodes else "") if x)
        first = re.sub(r"\x1b\[[0-9;]*m", "", text)
        first = first[:500] + ("…" if len(first) > 500 else "")
        raise ToolchainRefused(f"{backend} cannot {action} this model" + (f" ({named})" if named else "")
                               + f": {type(e).__name__}: {first}") from None
