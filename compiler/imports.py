"""Resolve ``package.module:attribute`` references named in specs and on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from compiler import interrupts
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
    except SyntaxError as e:
        raise BadInput(f"{what} {ref!r}: module {module_name!r} has a syntax error at {e.filename}:{e.lineno}: {e.msg}.") from None
    except Exception as e:  # noqa: BLE001 - user code failing at import is the user's error, not ours
        interrupts.check()
        raise BadInput(f"{what} {ref!r}: importing module {module_name!r} raised {_describe(e)}.") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise BadInput(f"{what} {ref!r}: module {module_name!r} has no attribute {attr!r}.") from None
    return obj


def call_factory(ref: str, what: str) -> Any:
    """Import ``module:factory`` and call it; an exception inside user code is a BadInput that
    names the factory and the error (with the innermost frame of the user's file)."""
    factory = import_object(ref, what)
    if not callable(factory):
        raise BadInput(f"{what} {ref!r} is a {type(factory).__name__}, not a callable.")
    try:
        return factory()
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001
        interrupts.check()
        raise BadInput(f"{what} {ref!r} raised {_describe(e)}.") from None


def _describe(e: BaseException) -> str:
    """``Type: message (file:line)`` for the innermost frame of the exception."""
    import traceback

    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        where = f" ({frames[-1].filename}:{frames[-1].lineno})"
    msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return f"{type(e).__name__}" + (f": {msg}" if msg else "") + where
