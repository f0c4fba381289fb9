"""Backends (one module per runtime) and target profiles (``profiles/*.toml``).

Importing this package registers every backend in `targets.registry.BACKENDS`. Backend modules
import their runtime lazily, so listing targets stays cheap.
"""

from targets import openvino, ort, tensorrt, tflite, tvm  # noqa: F401  (registers each backend)
from targets.coreml import backend as coreml  # noqa: F401
from targets.registry import BACKENDS, get_backend, load_profile

__all__ = ["BACKENDS", "get_backend", "load_profile"]
