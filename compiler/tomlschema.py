"""Strict reading of TOML tables: unknown keys are errors that name the file and key.

A typo'd key in a model spec or profile would otherwise be silently ignored and the default
used, which is the worst kind of wrong. tomllib parses; this checks keys and types.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from compiler.errors import BadInput, did_you_mean


def load_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse `path` as TOML or raise BadInput naming the file and the parser's message."""
    if not path.is_file():
        raise BadInput(f"{what} {str(path)!r} does not exist.")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{what} {str(path)!r} is not valid TOML: {e}.") from None


class Table:
    """A view of one TOML table that hands out keys and, at `done()`, rejects the rest.

    `where` is a human path such as ``models/digits-cnn.toml [golden]``.
    """

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise BadInput(f"{where}: expected a table, got {type(data).__name__}.")
        self._data = dict(data)
        self._where = where
        self._allowed: set[str] = set()

    @property
    def where(self) -> str:
        return self._where

    def raw(self) -> dict[str, Any]:
        """The table as parsed (for merging with defaults before strict reading)."""
        return dict(self._data)

    def _get(self, key: str, types: type | tuple[type, ...], default: Any, required: bool) -> Any:
        self._allowed.add(key)
        if key not in self._data:
            if required:
                close = difflib.get_close_matches(key, [k for k in self._data if k not in self._allowed], n=1, cutoff=0.6)
                hint = f" (there is an unknown key {close[0]!r}: a typo?)" if close else ""
                raise BadInput(f"{self._where}: missing required key {key!r}{hint}.")
            return default
        value = self._data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            names = " or ".join(t.__name__ for t in _as_tuple(types))
            raise BadInput(f"{self._where}: key {key!r} must be {names}, got {value!r}.")
        return value

    def req(self, key: str, types: type | tuple[type, ...]) -> Any:
        return self._get(key, types, None, True)

    def opt(self, key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        return self._get(key, types, default, False)

    def choice(self, key: str, choices: Iterable[str], default: str | None = None) -> str:
        choices = list(choices)
        value = self._get(key, str, default, default is None)
        if value not in choices:
            raise BadInput(
                f"{self._where}: key {key!r} is {value!r}{did_you_mean(value, choices)}; "
                f"expected one of {', '.join(choices)}."
            )
        return value

    def sub(self, key: str, required: bool = False) -> Table | None:
        value = self._get(key, dict, None, required)
        return None if value is None else Table(value, f"{self._where} [{key}]")

    def subs(self, key: str, required: bool = False) -> list[Table]:
        value = self._get(key, list, [], required)
        return [Table(v, f"{self._where} [{key}][{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        """Raise on any key that no accessor asked for (a typo, or an unsupported option)."""
        for key in self._data:
            if key not in self._allowed:
                raise BadInput(
                    f"{self._where}: unknown key {key!r}{did_you_mean(key, self._allowed)}; "
                    f"known keys: {', '.join(sorted(self._allowed))}."
                )


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)
