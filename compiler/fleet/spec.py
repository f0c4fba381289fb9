"""The fleet file: which models to build for which targets at which precisions.

    [[build]]
    model = "efficientnet-lite0"          # any SPEC the build command takes
    targets = ["cpu", "intel", "android"]
    precisions = ["fp32", "int8", "best"]
    # optional: golden = "DIR", calib = "DATA", allow_fail = true

Every (model, target, precision) is one row. Read strictly: an unknown key, a wrong type, an
unknown target or precision, a duplicate row is exit 2 naming the file, the line and the key
(tomllib gives no positions, so the key is found again in the text of its `[[build]]` table).
Relative paths (a model file, golden, calib) are relative to the fleet file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import spec as spec_mod
from compiler.errors import BadInput, did_you_mean
from compiler.precision import PRECISIONS

KEYS = ("model", "targets", "precisions", "golden", "calib", "allow_fail")
BEST = "best"


@dataclass(frozen=True)
class Row:
    model: str
    target: str
    precision: str  # a precision name or "best"
    golden: str | None = None
    calib: str | None = None
    allow_fail: bool = False

    name: str = ""  # the model's name, as `build` names it (its artifact folder)

    @property
    def id(self) -> str:
        return f"{self.target}/{self.name}/{self.precision}"

    def out(self, root: Path) -> Path:
        return root / self.target / self.name / self.precision


class _Locator:
    """Line numbers of keys inside the n-th ``[[build]]`` table of the text."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.tables = [i for i, ln in enumerate(self.lines) if re.match(r"\s*\[\[\s*build\s*\]\]", ln)]

    def line(self, table: int, key: str | None = None) -> int:
        start = self.tables[table] if table < len(self.tables) else 0
        end = self.tables[table + 1] if table + 1 < len(self.tables) else len(self.lines)
        if key is not None:
            for i in range(start, end):
                if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[i]):
                    return i + 1
        return start + 1


def load(path: Path, known_targets: list[str]) -> list[Row]:
    if not path.is_file():
        raise BadInput(f"fleet file {str(path)!r} does not exist.")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}.") from None
    where = _Locator(text)
    extra = [k for k in data if k != "build"]
    if extra:
        raise BadInput(f"{path}: unknown top-level key {extra[0]!r}; a fleet file holds [[build]] tables.")
    tables = data.get("build")
    if not isinstance(tables, list) or not tables:
        raise BadInput(f"{path}: no [[build]] table: list at least one model with its targets and precisions.")
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tables):
        def bad(key: str | None, why: str) -> BadInput:
            return BadInput(f"{path}:{where.line(i, key)}: [[build]] #{i + 1}" + (f" key {key!r}" if key else "") + f": {why}.")

        for k in t:
            if k not in KEYS:
                raise bad(k, f"unknown key{did_you_mean(k, KEYS)}; known: {', '.join(KEYS)}")
        for k in ("model", "targets", "precisions"):
            if k not in t:
                raise bad(None, f"missing required key {k!r}")
        model = _str(t, "model", bad)
        targets = _str_list(t, "targets", bad)
        precisions = _str_list(t, "precisions", bad)
        for target in targets:
            if target not in known_targets and not target.endswith(".toml"):
                raise bad("targets", f"unknown target {target!r}{did_you_mean(target, known_targets)}; "
                                     f"known: {', '.join(known_targets)} (or a profile .toml)")
        for p in precisions:
            if p not in (*PRECISIONS, BEST):
                raise bad("precisions", f"unknown precision {p!r}; known: {', '.join((*PRECISIONS, BEST))}")
        golden = _rel(path, _str(t, "golden", bad, required=False))
        calib = t.get("calib")
        if calib is not None:
            calib = _str(t, "calib", bad)
            calib = _rel(path, calib) if calib.endswith(".npz") else calib
        allow = t.get("allow_fail", False)
        if not isinstance(allow, bool):
            raise bad("allow_fail", f"must be true or false, not {allow!r}")
        model = _rel(path, model) if model.endswith((".toml", ".onnx", ".pt2")) and not Path(model).is_absolute() else model
        try:
            name = spec_mod.resolve(model).name
        except BadInput as e:
            raise bad("model", str(e).rstrip(".")) from None
        for target in targets:
            for p in precisions:
                row = Row(model, target, p, golden, calib, allow, name)
                if row.id in seen:
                    raise bad(None, f"row {row.id} is already built by [[build]] #{seen[row.id] + 1}")
                seen[row.id] = i
                rows.append(row)
    return rows


def _str(t: dict[str, Any], key: str, bad, required: bool = True) -> Any:
    v = t.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise bad(key, f"must be a non-empty string, not {v!r}")
    return v


def _str_list(t: dict[str, Any], key: str, bad) -> list[str]:
    v = t[key]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise bad(key, f"must be a non-empty list of strings, not {v!r}")
    return v


def _rel(base: Path, value: str | None) -> str | None:
    if value is None or Path(value).is_absolute():
        return value
    return str((base.parent / value))
