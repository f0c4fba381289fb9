"""Resolve ``package.module:attribute`` references named in specs and on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from compiler.errors import BadInput


def import_object(ref: str, what: str) -> Any:
    """Import ``module:attr`` (the current directory is searched too, as ``python -m`` does)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise BadInput(f"{what} {ref!r} must look like 'package.module:name'.")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise BadInput(f"{what} {ref!r}: cannot import module {module_name!r} ({e}).") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise BadInput(f"{what} {ref!r}: module {module_name!r} has no attribute {attr!r}.") from None
    return obj
