"""One registry per concept (backends, passes), filled by a decorator: loud on a duplicate
name, and a miss lists the known names (TVM's register_pipeline / Optimum's task registry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from compiler.errors import unknown_name

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    def __init__(self, kind: str, key: Callable[[T], str]):
        super().__init__()
        self.kind = kind
        self._key = key

    def register(self, item: T) -> T:
        name = self._key(item)
        if name in self:
            raise RuntimeError(f"{self.kind} {name!r} registered twice ({self[name]!r} and {item!r})")
        self[name] = item
        return item

    def lookup(self, name: str) -> T:
        if name not in self:
            raise unknown_name(self.kind, name, self)
        return self[name]

