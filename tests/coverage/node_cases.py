"""The ONNX package's own operator test cases (`onnx.backend.test.case.node`, 1,884 in onnx
1.23) as inputs to `build --model case.onnx --golden DIR`, the way a user with an ONNX file
would run them.

A case's golden set is its expected outputs (ONNX's reference implementation); its inputs are
the case's inputs. Cases whose tensors cannot be an .npz of arrays (sequences, optionals,
maps, strings) are not expressible through the CLI and are left out. "ORT runs it correctly"
means ONNX Runtime loads the raw case and its outputs pass our own fp32 gate — those must build
and verify on `cpu`; on every target, every case must end in 0, 1, 2 or 3, never 4.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx


@dataclass(frozen=True)
class Case:
    name: str
    model: onnx.ModelProto
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


def _arrays(values, infos) -> dict[str, np.ndarray] | None:
    out = {}
    for v, info in zip(values, infos):
        if not info.name:
            return None
        a = np.asarray(v) if isinstance(v, np.ndarray) or np.isscalar(v) else None
        if a is None or a.dtype.kind in "OUSV" or a.dtype.names:
            return None
        out[info.name] = a
    return out


def all_cases() -> list[Case]:
    """Every node case expressible as arrays, sorted by name (the first data set of each)."""
    from onnx.backend.test.case import node

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        raw = node.collect_testcases(None)
    cases = []
    for c in sorted(raw, key=lambda c: c.name):
        if not c.data_sets or c.model is None:
            continue
        ins, outs = c.data_sets[0]
        g = c.model.graph
        inits = {i.name for i in g.initializer}
        gin = [i for i in g.input if i.name not in inits]
        if len(ins) != len(gin) or len(outs) != len(g.output):
            continue
        if any(not i.type.HasField("tensor_type") for i in list(gin) + list(g.output)):
            continue
        a_in, a_out = _arrays(ins, gin), _arrays(outs, g.output)
        if a_in is None or a_out is None:
            continue
        cases.append(Case(c.name, c.model, a_in, a_out))
    return cases


def sample(every: int, offset: int = 0) -> list[Case]:
    """A deterministic sample: every `every`-th case by name."""
    return all_cases()[offset::every]


def write(case: Case, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / f"{case.name}.onnx"
    onnx.save(case.model, str(model))
    golden = directory / "golden"
    golden.mkdir(exist_ok=True)
    np.savez(golden / "inputs.npz", **case.inputs)
    np.savez(golden / "outputs.npz", **case.outputs)
    return model, golden


def ort_correct(case: Case) -> bool:
    """ONNX Runtime loads the raw case and its outputs pass our default fp32 gate."""
    from compiler import ortsession
    from compiler.spec import OutputKind
    from compiler.tolerances import Tolerances
    from compiler.verify import compare

    try:
        sess = ortsession.session(case.model.SerializeToString())
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, case.inputs)))
    except Exception:  # noqa: BLE001 - ORT refusing the case is an answer
        return False
    tol = Tolerances()
    for name, ref in case.outputs.items():
        if name not in got or got[name].dtype != ref.dtype:
            return False
        if not compare(name, ref, got[name], tol.for_output("fp32", name, OutputKind.TENSOR)).passed:
            return False
    return True
