"""The shape of real input data: `Samples` (a batch of feeds keyed by graph input name, with
optional labels and descriptions, sliced along each input's batch axis) and `DataSource`, the base
of every kind of source a spec names — `load()` gives every sample as one batch, `batches(n)`
streams them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np


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
        return slices(self.load(), batch_size, limit)

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self) -> None:
        """What can be checked before the build starts (a factory resolves); raises BadInput."""


def slices(samples: Samples, batch_size: int, limit: int | None) -> Iterator[Samples]:
    """`samples` (the first `limit` of them) in batches of `batch_size`."""
    total = len(samples) if limit is None else min(limit, len(samples))
    for start in range(0, total, batch_size):
        yield samples.take(start, min(start + batch_size, total))
