"""Typed profile options: what a backend accepts in a profile's ``[options]``, checked on load.

Each backend declares its options (`targets.base.Backend.options`) with a type, a default, and a
range or choices; `OptionSet.parse` turns a profile's raw table into typed values with defaults
filled, or refuses it naming the file and the key (an unknown key, with the closest known one;
a value of the wrong type or out of range, with what is expected). A typo'd option would
otherwise be ignored and its default used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from compiler.errors import BadInput, did_you_mean


@dataclass(frozen=True)
class Option:
    kind: type | tuple[type, ...]
    default: Any
    doc: str
    choices: Sequence[Any] = ()
    low: float | None = None
    high: float | None = None
    check: Callable[[Any], str | None] | None = None  # a further rule: None, or what is wrong

    def parse(self, key: str, value: Any, where: str) -> Any:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(_name(k) for k in kinds)
            raise BadInput(f"{where} [options]: {key} = {value!r} must be {names} ({self.doc}).")
        if self.choices and value not in self.choices:
            raise BadInput(f"{where} [options]: {key} = {value!r} must be one of {', '.join(map(repr, self.choices))}.")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            bounds = f"[{self.low if self.low is not None else '-∞'}, {self.high if self.high is not None else '∞'}]"
            raise BadInput(f"{where} [options]: {key} = {value!r} is outside {bounds} ({self.doc}).")
        if self.check is not None and (why := self.check(value)):
            raise BadInput(f"{where} [options]: {key} = {value!r}: {why}.")
        return value


def _name(k: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a table",
            list: "a list"}.get(k, k.__name__)


def int_list_table(value: Mapping[str, Any]) -> str | None:
    """A table of dim name → list of positive integers (shape profiles, static shapes)."""
    for name, sizes in value.items():
        if not isinstance(sizes, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
            return f"{name!r} must map to a list of integers ≥ 1"
    return None


# Options every backend reads (the build reads them, whatever the runtime).
COMMON: dict[str, Option] = {
    "intra_op_num_threads": Option(int, 1, "threads the engine runs on when the build verifies it", low=1, high=1024),
    "precision_gate": Option(str, "onnxruntime", "where int8/fp16 fallback decisions are judged",
                             choices=("onnxruntime", "engine")),
    "int4_algorithm": Option(str, "rtn", "weight-only int4: the library's algorithm (ONNX Runtime's MatMulNBits quantizers)",
                             choices=("rtn", "hqq")),
}


class OptionSet:
    def __init__(self, backend: str, options: Mapping[str, Option]):
        self.backend = backend
        self.options = {**COMMON, **options}

    def parse(self, raw: Mapping[str, Any], where: str) -> Mapping[str, Any]:
        out = {}
        for key, value in raw.items():
            if key not in self.options:
                raise BadInput(f"{where} [options]: unknown key {key!r}{did_you_mean(key, self.options)} for backend "
                               f"{self.backend!r}; known: {', '.join(sorted(self.options))}.")
            out[key] = self.options[key].parse(key, value, where)
        for key, opt in self.options.items():
            out.setdefault(key, opt.default)
        return MappingProxyType(out)
