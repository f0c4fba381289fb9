"""External data of an `.onnx` file (weights in files beside it), checked before any is read.

Written by hand because neither library does it up front: `onnx.checker` checks where the
files are (no path may leave the model's directory) but not their byte ranges; onnx-ir
deserializes a negative offset into a `SerdeError`, reports a short file only when the tensor
is read, and `load_to_model` reads every initializer — a 4 GB weight that no node uses included.
Here every range is checked against the file (naming tensor and file), unused initializers are
dropped without being read, and weights that cannot fit in memory are refused before reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import onnx
import onnx_ir as ir

from compiler.errors import BadInput, ResourceExhausted

# Bits per element of the packed sub-byte types (the rest: numpy's itemsize).
_BITS = {onnx.TensorProto.UINT4: 4, onnx.TensorProto.INT4: 4, onnx.TensorProto.FLOAT4E2M1: 4,
         onnx.TensorProto.UINT2: 2, onnx.TensorProto.INT2: 2}


def _tensors(proto: onnx.ModelProto):
    def graph_tensors(g: onnx.GraphProto):
        yield from g.initializer
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    yield from graph_tensors(a.g)
                for sub in a.graphs:
                    yield from graph_tensors(sub)

    yield from graph_tensors(proto.graph)


def _expected_bytes(t: onnx.TensorProto) -> int | None:
    count = math.prod(t.dims)
    if t.data_type in _BITS:
        return -(-count * _BITS[t.data_type] // 8)
    try:
        return count * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None  # strings and types numpy cannot hold: nothing to compare with


def check(proto: onnx.ModelProto, path: Path) -> None:
    """Every externally stored tensor's location, offset and length must lie within its file and
    match the tensor's size; else BadInput naming the tensor and the file."""
    for t in _tensors(proto):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in t.external_data}
        name = t.name or "(unnamed tensor)"
        location = entries.get("location")
        if not location:
            raise BadInput(f"{str(path)!r}: tensor {name!r} is stored externally but names no file (no 'location').")
        data = path.parent / location
        where = f"{str(path)!r}: tensor {name!r} in {str(data)!r}"
        ints = {}
        for key in ("offset", "length"):
            if key in entries:
                try:
                    ints[key] = int(entries[key])
                except ValueError:
                    raise BadInput(f"{where}: {key} {entries[key]!r} is not an integer.") from None
                if ints[key] < 0:
                    raise BadInput(f"{where}: {key} {ints[key]} is negative.")
        if not data.is_file():
            raise BadInput(f"{where}: the file does not exist.")
        size = data.stat().st_size
        offset = ints.get("offset", 0)
        if offset > size:
            raise BadInput(f"{where}: offset {offset} is past the end of the file ({size} bytes).")
        expected = _expected_bytes(t)
        length = ints.get("length", size - offset if expected is None else expected)
        if offset + length > size:
            raise BadInput(f"{where}: bytes {offset}–{offset + length} are declared but the file holds only {size} "
                           "(truncated or wrong offset/length).")
        if expected is not None and length != expected:
            raise BadInput(f"{where}: length {length} bytes, but {list(t.dims)} elements of its type need {expected}.")


def drop_unused(model: ir.Model, log: Callable[[str], None] = lambda s: None) -> None:
    """Remove initializers that no node (in any subgraph) reads and that are not graph outputs
    or overridable inputs, before their data is read."""
    used: set[str] = set()
    for graph in (model.graph, *model.graph.subgraphs()):
        for node in graph:
            used.update(v.name for v in node.inputs if v is not None)
        used.update(v.name for v in graph.outputs)
        used.update(v.name for v in graph.inputs)
    unused = [name for name in model.graph.initializers if name not in used]
    if not unused:
        return
    size = sum(_nbytes(model.graph.initializers[n]) for n in unused)
    for name in unused:
        model.graph.initializers.pop(name)
    log(f"dropped {len(unused)} initializer(s) no node reads ({size / 2**20:.1f} MiB), without reading them")


def _nbytes(value: ir.Value) -> int:
    t = value.const_value
    try:
        return int(t.nbytes) if t is not None else 0
    except Exception:  # noqa: BLE001 - a tensor type onnx-ir cannot size
        return 0


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(model: ir.Model, path: Path) -> None:
    """Refuse, before reading, external weights larger than the memory this host has free."""
    external = sum(_nbytes(v) for v in model.graph.initializers.values() if isinstance(v.const_value, ir.ExternalTensor))
    free = available_memory()
    if free is not None and external > free:
        raise ResourceExhausted(f"{str(path)!r} needs {external / 2**30:.1f} GiB of weights in memory and this host has "
                                f"{free / 2**30:.1f} GiB available; build it on a larger host.")
