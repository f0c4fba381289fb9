"""Real input data for golden vectors, evaluation and (later) calibration.

A model spec names where its inputs come from; this package turns that into arrays keyed by
graph input name. Kinds:

- ``images``: image files (or folders of them) through the spec's preprocessing
  (short-side resize, centre crop, ``(x - mean) / std``, NCHW, RGB). A file may be given as
  ``package:relative/path`` to use the real photos that ship inside wheels (skimage, matplotlib).
- ``sentences``: real sentences through the model's tokenizer (a ``module:factory`` returning a
  Hugging Face tokenizer).
- ``npz``: arrays keyed by input name (optional ``labels`` array).
- ``python``: ``module:factory`` returning ``{input: array}`` or ``({input: array}, labels)``.

Everything is read lazily and can be streamed in batches (`DataSource.batches`), so calibration
over thousands of samples does not hold them all. Each kind lives in its own module (`images`,
`sentences`, `npz`, `factory`; the shared types in `samples`); this one turns a spec table into
the right kind (`parse_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.datasets.factory import PythonSource
from compiler.datasets.images import ImagesSource
from compiler.datasets.npz import NpzSource
from compiler.datasets.samples import DataSource
from compiler.datasets.sentences import SentencesSource
from compiler.errors import BadInput
from compiler.tomlschema import Table


def parse_source(table: Table, input_names: tuple[str, ...], base_dir: Path,
                 batch_axes: tuple[tuple[str, int], ...] = ()) -> DataSource:
    """Build a DataSource from a spec table (``[golden]``, ``[evaluation]``…), strictly."""
    kind = table.choice("source", ["images", "sentences", "npz", "python"])
    if kind == "images":
        src: DataSource = ImagesSource(
            input_names=input_names,
            files=tuple(table.req("files", list)),
            base_dir=base_dir,
            resize_short=table.opt("resize_short", int, 256),
            crop=table.opt("crop", int, 224),
            mean=_triple(table, "mean", 0.0),
            std=_triple(table, "std", 1.0),
            labels=_opt_tuple(table.opt("labels", list)),
            corner_views_short=table.opt("corner_views_short", int, 0),
            flip=table.opt("flip", bool, False),
        )
        if len(input_names) != 1:
            raise BadInput(f"{table.where}: an image source feeds exactly one input, the model has {list(input_names)}.")
    elif kind == "sentences":
        src = SentencesSource(
            input_names=input_names,
            sentences=tuple(table.req("sentences", list)),
            tokenizer=table.req("tokenizer", str),
            max_length=table.opt("max_length", int, 128),
        )
    elif kind == "npz":
        path = Path(table.req("path", str))
        src = NpzSource(input_names=input_names, batch_axes=batch_axes, path=path if path.is_absolute() else base_dir / path)
    else:
        src = PythonSource(
            input_names=input_names, batch_axes=batch_axes, factory=table.req("factory", str), limit=table.opt("limit", int)
        )
    return src


def _triple(table: Table, key: str, default: float) -> tuple[float, float, float]:
    value: Any = table.opt(key, (int, float, list), default)
    if isinstance(value, list):
        if len(value) != 3:
            raise BadInput(f"{table.where}: {key!r} must be a number or 3 numbers (RGB), got {value!r}.")
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return (float(value),) * 3  # type: ignore[return-value]


def _opt_tuple(value: list | None) -> tuple | None:
    return None if value is None else tuple(value)
