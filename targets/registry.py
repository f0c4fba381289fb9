"""The one registry of backends, filled by `@register`, loud on duplicates and misses."""

from __future__ import annotations

from typing import TypeVar

from compiler.errors import unknown_name
from targets.base import Backend

BACKENDS: dict[str, type[Backend]] = {}
B = TypeVar("B", bound=type[Backend])


def register(cls: B) -> B:
    if cls.name in BACKENDS:
        raise RuntimeError(f"backend {cls.name!r} registered twice ({BACKENDS[cls.name].__module__} and {cls.__module__})")
    BACKENDS[cls.name] = cls
    return cls


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise unknown_name("backend", name, BACKENDS)
    return BACKENDS[name]()
