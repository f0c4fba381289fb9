"""The ``npz`` source and the reader behind it: arrays keyed by input name in an ``np.savez``
file (an optional ``labels`` array split off), every member checked to be a real ``.npy`` array and
no pickles allowed. Golden vectors are stored the same way and read with `read_npz`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.datasets.samples import DataSource, Samples
from compiler.errors import BadInput


@dataclass(frozen=True)
class NpzSource(DataSource):
    path: Path = Path()

    def load(self) -> Samples:
        feeds, labels = read_npz(self.path)
        return Samples(feeds, labels, (), dict(self.batch_axes))

    def describe(self) -> str:
        return f"arrays from {self.path}"


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
