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
from collections.abc import Iterator

import onnx_ir as ir

from compiler import interrupts
from compiler.errors import CompilerError, ToolchainRefused, is_toolchain_exception, mentioned_ops, resource_error


@contextlib.contextmanager
def toolchain_step(backend: str, action: str, model: ir.Model) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        interrupts.check()
        if isinstance(e, CompilerError) or not is_toolchain_exception(e):
            raise
        full = resource_error(e, tempfile.gettempdir())  # the build's scratch, beside its output
        if full is not None:
            raise full from None
        text = " ".join(str(e).split())
        ops = mentioned_ops(text, (n.op_type for n in model.graph))
        nodes = sorted({n.name for n in model.graph if n.name and len(n.name) > 2 and n.name in text})[:5]
        named = "; ".join(x for x in (f"op {', '.join(ops)}" if ops else "", f"node {', '.join(nodes)}" if nodes else "") if x)
        first = re.sub(r"\x1b\[[0-9;]*m", "", text)
        first = first[:500] + ("…" if len(first) > 500 else "")
        raise ToolchainRefused(f"{backend} cannot {action} this model" + (f" ({named})" if named else "")
                               + f": {type(e).__name__}: {first}") from None
