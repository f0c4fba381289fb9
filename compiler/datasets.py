"""Real input data for golden vectors, evaluation and (later) calibration.

A model spec names where its inputs come from; this module turns that into arrays keyed by
graph input name. Kinds:

- ``images``: image files (or folders of them) through the spec's preprocessing
  (short-side resize, centre crop, ``(x - mean) / std``, NCHW, RGB). A file may be given as
  ``package:relative/path`` to use the real photos that ship inside wheels (skimage, matplotlib).
- ``sentences``: real sentences through the model's tokenizer (a ``module:factory`` returning a
  Hugging Face tokenizer).
- ``npz``: arrays keyed by input name (optional ``labels`` array).
- ``python``: ``module:factory`` returning ``{input: array}`` or ``({input: array}, labels)``.

Everything is read lazily and can be streamed in batches (`DataSource.batches`), so calibration
over thousands of samples does not hold them all.
"""

from __future__ import annotations

import importlib.resources
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import BadInput
from compiler.imports import call_factory
from compiler.tomlschema import Table

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class Samples:
    """A batch of real inputs: feeds keyed by graph input name, optional labels, descriptions."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    descriptions: tuple[str, ...] = ()
    axes: Mapping[str, int] = field(default_factory=dict)  # batch axis per input; 0 if absent

    def axis(self, name: str) -> int:
        return self.axes.get(name, 0)

    def __len__(self) -> int:
        """Samples along the batch axis of the first input that has one (0-d inputs have none;
        only 0-d inputs: one sample)."""
        for name, v in self.feeds.items():
            if v.ndim:
                return int(v.shape[self.axis(name)])
        return 1

    def take(self, start: int, stop: int) -> Samples:
        """Samples [start, stop) along each input's batch axis."""
        return Samples(
            {k: along(v, self.axis(k), start, stop) for k, v in self.feeds.items()},
            None if self.labels is None else self.labels[start:stop],
            self.descriptions[start:stop],
            self.axes,
        )


def along(a: np.ndarray, axis: int, start: int, stop: int | None) -> np.ndarray:
    """`a[start:stop]` along `axis` (recurrent state is (layers, batch, hidden): axis 1)."""
    return a[(slice(None),) * axis + (slice(start, stop),)] if a.ndim else a


@dataclass(frozen=True)
class DataSource:
    """Base: `load()` returns every sample as one batch; `batches(n)` streams them."""

    input_names: tuple[str, ...] = field(default=(), compare=False)
    # (input, axis) where an input's batch axis is not 0, from the spec's named dims
    batch_axes: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def load(self) -> Samples:  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Samples]:
        """Default streaming: slice `load()`. Kinds that can stream from disk override this."""
        return _slices(self.load(), batch_size, limit)

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _slices(samples: Samples, batch_size: int, limit: int | None) -> Iterator[Samples]:
    total = len(samples) if limit is None else min(limit, len(samples))
    for start in range(0, total, batch_size):
        yield samples.take(start, min(start + batch_size, total))


@dataclass(frozen=True)
class ImagesSource(DataSource):
    files: tuple[str, ...] = ()
    base_dir: Path = Path(".")
    resize_short: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    labels: tuple[int, ...] | None = None
    # More views per photo (validation and held-out sets, from the few real photos in the wheels):
    # the four corner crops at short side `corner_views_short` (0: none), and every view mirrored.
    corner_views_short: int = 0
    flip: bool = False

    @property
    def views_per_file(self) -> int:
        return (1 + 4 * bool(self.corner_views_short)) * (1 + self.flip)

    def paths(self) -> list[Path]:
        out: list[Path] = []
        for ref in self.files:
            path = resolve_file_ref(ref, self.base_dir)
            if path.is_dir():
                out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
            else:
                out.append(path)
        if not out:
            raise BadInput(f"image source {list(self.files)} names no image files.")
        return out

    def _crops(self, im, short: int, corners: bool) -> list:
        from PIL import Image

        w, h = im.size
        scale = short / min(w, h)
        im = im.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
        w, h, c = *im.size, self.crop
        spots = ((0, 0), (w - c, 0), (0, h - c), (w - c, h - c)) if corners else (((w - c) // 2, (h - c) // 2),)
        return [im.crop((left, top, left + c, top + c)) for left, top in spots]

    def _read(self, paths: list[Path]) -> np.ndarray:
        from PIL import Image

        arrays = []
        for path in paths:
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    views = self._crops(im, self.resize_short, False)
                    if self.corner_views_short:
                        views += self._crops(im, self.corner_views_short, True)
                    if self.flip:
                        views += [v.transpose(Image.FLIP_LEFT_RIGHT) for v in views]
                    xs = [np.asarray(v, dtype=np.float32) for v in views]
            except OSError as e:
                raise BadInput(f"cannot read image {str(path)!r}: {e}.") from None
            for x in xs:
                x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
                arrays.append(x.transpose(2, 0, 1))
        return np.stack(arrays).astype(np.float32)

    def load(self) -> Samples:
        paths = self.paths()
        return self._samples(paths, 0)

    def _samples(self, paths: list[Path], offset: int) -> Samples:
        labels, k = None, self.views_per_file
        if self.labels is not None:
            labels = np.repeat(np.asarray(self.labels[offset : offset + len(paths)], dtype=np.int64), k)
        names = tuple(p.name if k == 1 else f"{p.name}#{v}" for p in paths for v in range(k))
        return Samples({self.input_names[0]: self._read(paths)}, labels, names)

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Samples]:
        paths = self.paths()[:limit]
        for start in range(0, len(paths), batch_size):
            yield self._samples(paths[start : start + batch_size], start)

    def describe(self) -> str:
        views = f", {self.views_per_file} views each" if self.views_per_file > 1 else ""
        return f"{len(self.files)} image file(s){views}: {', '.join(self.files)}"


@dataclass(frozen=True)
class SentencesSource(DataSource):
    sentences: tuple[str, ...] = ()
    tokenizer: str = ""
    max_length: int = 128
    pad_to_max_length: bool = False  # every sample exactly max_length tokens (a validation length)

    def _tokenize(self, sentences: tuple[str, ...]) -> dict[str, np.ndarray]:
        tok = call_factory(self.tokenizer, "tokenizer factory")
        enc = tok(
            list(sentences), padding="max_length" if self.pad_to_max_length else "longest", truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        missing = [n for n in self.input_names if n not in enc]
        if missing:
            raise BadInput(
                f"tokenizer {self.tokenizer!r} produced {sorted(enc)} but the model's inputs "
                f"{missing} are not among them."
            )
        return {n: np.asarray(enc[n], dtype=np.int64) for n in self.input_names}

    def load(self) -> Samples:
        return Samples(self._tokenize(self.sentences), None, self.sentences)

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Samples]:
        sentences = self.sentences[:limit]
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            yield Samples(self._tokenize(chunk), None, chunk)

    def describe(self) -> str:
        return f"{len(self.sentences)} sentence(s) through {self.tokenizer}"


@dataclass(frozen=True)
class NpzSource(DataSource):
    path: Path = Path()

    def load(self) -> Samples:
        feeds, labels = read_npz(self.path)
        return Samples(feeds, labels, (), dict(self.batch_axes))

    def describe(self) -> str:
        return f"arrays from {self.path}"


@dataclass(frozen=True)
class PythonSource(DataSource):
    factory: str = ""
    limit: int | None = None

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Samples]:
        """A factory that returns an iterator (of ``{input: batch}`` dicts, or ``(dict, labels)``)
        is streamed and re-batched without holding the data; a mapping is sliced."""
        result = call_factory(self.factory, "data factory")
        if _in_memory(result):
            yield from _slices(self._samples(result), batch_size, limit)
            return
        limit = limit if limit is not None else self.limit
        axes = dict(self.batch_axes)

        def cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            return {k: np.concatenate([q[k] for q in parts], axis=axes.get(k, 0)) for k in parts[0]}

        seen = 0
        pending: list[dict[str, np.ndarray]] = []
        count = 0
        first: dict[str, tuple[str, tuple[int, ...]]] | None = None  # name → (dtype, shape without the batch axis)
        for index, item in _guarded(result, self.factory):
            feeds = item[0] if isinstance(item, tuple) else item
            if not isinstance(feeds, Mapping):
                raise BadInput(f"data factory {self.factory!r} yielded {type(feeds).__name__} as batch {index}; "
                               "expected {input_name: array}.")
            try:
                feeds = {k: np.asarray(v) for k, v in feeds.items()}
            except Exception as e:  # noqa: BLE001 - ragged lists, objects numpy cannot hold
                raise BadInput(f"data factory {self.factory!r}: batch {index} does not convert to arrays: {e}.") from None
            layout = {k: (str(v.dtype), tuple(d for i, d in enumerate(v.shape) if i != axes.get(k, 0))) for k, v in feeds.items()}
            if first is None:
                first = layout
            elif layout != first:
                diff = [f"{k}: {layout.get(k, 'missing')} (batch 0: {first.get(k, 'missing')})"
                        for k in sorted(set(first) | set(layout)) if layout.get(k) != first.get(k)]
                raise BadInput(f"data factory {self.factory!r}: batch {index} differs from batch 0 in names, dtype or the "
                               f"non-batch dims of its arrays — {'; '.join(diff)}; every batch must have the same layout.")
            pending.append(feeds)
            count += len(Samples(feeds, axes=axes))
            while count >= batch_size or (limit is not None and seen + count >= limit):
                merged = Samples(cat(pending), axes=axes)
                take = min(batch_size, count, (limit - seen) if limit is not None else count)
                yield merged.take(0, take)
                seen += take
                rest = merged.take(take, None).feeds
                count -= take
                pending = [rest] if count else []
                if limit is not None and seen >= limit:
                    return
        if count and (limit is None or seen < limit):
            yield Samples(cat(pending), axes=axes)

    def load(self) -> Samples:
        result = call_factory(self.factory, "data factory")
        if not _in_memory(result):
            parts = list(self.batches(1 << 30))
            if not parts:
                return Samples({})
            axes = dict(self.batch_axes)
            return Samples({k: np.concatenate([q.feeds[k] for q in parts], axis=axes.get(k, 0)) for k in parts[0].feeds},
                           axes=axes)
        return self._samples(result)

    def _samples(self, result: Any) -> Samples:
        labels = None
        if isinstance(result, tuple):
            result, labels = result
        if not isinstance(result, Mapping):
            raise BadInput(
                f"data factory {self.factory!r} returned {type(result).__name__}; expected "
                "{input_name: array} or ({input_name: array}, labels)."
            )
        samples = Samples({k: np.asarray(v) for k, v in result.items()}, None if labels is None else np.asarray(labels),
                          (), dict(self.batch_axes))
        return samples.take(0, self.limit) if self.limit is not None else samples

    def describe(self) -> str:
        limit = f" (first {self.limit})" if self.limit else ""
        return f"{self.factory}(){limit}"


def _in_memory(result: Any) -> bool:
    """A factory's result is held in memory ({input: array} or (that, labels)) or streamed."""
    return isinstance(result, Mapping) or (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping))


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Arrays of an .npz keyed by name; a ``labels`` array is split off."""
    if not path.is_file():
        raise BadInput(f"input file {str(path)!r} does not exist.")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array (.npy), not arrays keyed by name (np.savez)")
        with z:
            feeds = {}
            for k in z.files:
                try:
                    feeds[k] = z[k]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
                    raise BadInput(f"{str(path)!r}: member {k!r} is not a readable .npy array: {e}.") from None
                if not isinstance(feeds[k], np.ndarray):  # np.load hands a non-.npy member back as bytes
                    raise BadInput(f"{str(path)!r}: member {k!r} is not a .npy array (found {type(feeds[k]).__name__}); "
                                   "an .npz holds arrays saved with np.savez.")
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise BadInput(f"{str(path)!r} is not a readable .npz file: {e}.") from None
    labels = feeds.pop("labels", None)
    return feeds, labels


def _guarded(result: Any, factory: str) -> Iterator[tuple[int, Any]]:
    """(index, item) of a user's iterator; an exception it raises becomes BadInput naming the
    factory and the batch it was producing (signals still end the run)."""
    from compiler import interrupts

    try:
        items = iter(result)
    except TypeError:
        raise BadInput(f"data factory {factory!r} returned {type(result).__name__}; expected {{input_name: array}}, "
                       "({input_name: array}, labels) or an iterator of such batches.") from None
    index = 0
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - the user's generator failing is bad input
            interrupts.check()
            raise BadInput(f"data factory {factory!r} raised {type(e).__name__} while producing batch {index}: {e}.") from None
        yield index, item
        index += 1


def resolve_file_ref(ref: str, base_dir: Path) -> Path:
    """``package:relative/path`` (a file inside an installed package) or a path."""
    pkg, sep, rel = ref.partition(":")
    if sep and pkg.isidentifier():
        try:
            root = importlib.resources.files(pkg)
        except ModuleNotFoundError:
            raise BadInput(f"file reference {ref!r}: package {pkg!r} is not installed.") from None
        path = Path(str(root / rel))
    else:
        path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
    if not path.exists():
        raise BadInput(f"data file {ref!r} does not exist (looked at {str(path)!r}).")
    return path


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
