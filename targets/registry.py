"""The one registry of backends, filled by `@register`, loud on duplicates and misses."""

from __future__ import annotations

from compiler.registry import Registry
from targets.base import Backend

BACKENDS: Registry[type[Backend]] = Registry("backend", key=lambda cls: cls.name)
register = BACKENDS.register


def get_backend(name: str) -> Backend:
    return BACKENDS.lookup(name)()
