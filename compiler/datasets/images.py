"""The ``images`` source: image files (or folders of them, or ``package:relative/path`` references
to the real photos that ship inside wheels) through the spec's preprocessing — short-side resize,
centre crop (plus, for held-out and validation sets, the four corner crops and mirrored views),
``(x - mean) / std``, NCHW, RGB — read lazily and streamed a few files at a time.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.datasets.samples import DataSource, Samples
from compiler.errors import BadInput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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
