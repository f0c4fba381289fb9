"""Cache keys: the sha256 of the bytes of what a stage reads.

A key never names a thing by where it is (a factory's import path, a file's name): it hashes the
thing. A factory model is its state (every tensor's name, dtype, shape and bytes), the source
files of its factory and of its module's class, and its example inputs; an `.onnx` is its bytes
and those of every external-data file it names; a `.pt2` is its bytes. Every key also holds the
project's own code and the toolchain versions, so an upgrade or an edit never serves a stale
result.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from compiler.artifact.files import sha256_file as file_sha256  # one way to hash a file

PROJECT = Path(__file__).resolve().parent.parent.parent
CODE_DIRS = ("compiler", "calibration", "targets")
TOOLCHAIN = ("model-compiler", "torch", "onnx", "onnxruntime", "onnx-ir", "onnxscript", "numpy", "transformers")


def digest(*parts: Any) -> str:
    """sha256 over the canonical JSON of `parts` (dict keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_sha256(a: np.ndarray) -> str:
    h = hashlib.sha256(str((np.asarray(a).dtype.str, np.asarray(a).shape)).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def arrays_sha256(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {k: array_sha256(v) for k, v in sorted(arrays.items())}


@functools.cache
def code_version() -> str:
    """One hash over the project's own source (Python, profiles, presets, vendored tables)."""
    h = hashlib.sha256()
    for d in CODE_DIRS:
        for p in sorted((PROJECT / d).rglob("*")):
            if p.is_file() and p.suffix in (".py", ".toml", ".md") and "__pycache__" not in p.parts:
                h.update(p.relative_to(PROJECT).as_posix().encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()


@functools.cache
def toolchain() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in TOOLCHAIN:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def torch_module(module: Any, examples: Iterable[Any] | None) -> dict[str, Any]:
    """A factory's model as bytes: its state, its code, its example inputs."""
    h = hashlib.sha256()
    import torch

    for name, t in module.state_dict().items():
        a = t.detach().cpu().contiguous()
        h.update(f"{name}\0{a.dtype}\0{tuple(a.shape)}\0".encode())
        if a.numel():
            h.update(a.reshape(-1).view(torch.uint8).numpy().tobytes())
    sources = {}
    for obj in (type(module), sys.modules.get(getattr(module, "__module__", ""), None)):
        try:
            path = inspect.getsourcefile(obj) if obj is not None else None
        except TypeError:
            path = None
        if path and Path(path).is_file():
            sources[Path(path).name] = file_sha256(Path(path))
    ex = [array_sha256(e.detach().cpu().numpy()) if hasattr(e, "detach") else repr(e) for e in (examples or ())]
    return {"state": h.hexdigest(), "sources": sources, "examples": ex}


def onnx_model(proto: Any) -> str:
    """A loaded ONNX model (weights read, unused ones dropped) as bytes: the graph without its
    initializers, then each initializer (a proto over 2 GB cannot be serialized whole)."""
    import onnx

    h = hashlib.sha256()
    inits = list(proto.graph.initializer)
    bare = onnx.ModelProto()
    bare.CopyFrom(proto)
    del bare.graph.initializer[:]
    h.update(bare.SerializeToString(deterministic=True))
    for t in inits:
        h.update(t.SerializeToString(deterministic=True))
    return h.hexdigest()


def factory_source(ref: str) -> dict[str, str]:
    """The source file of `package.module` (of a `package.module:factory` reference)."""
    module = sys.modules.get(ref.partition(":")[0])
    path = getattr(module, "__file__", None)
    return {"module": file_sha256(Path(path))} if path and Path(path).is_file() else {}
