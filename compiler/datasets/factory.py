"""The ``python`` source: a ``module:factory`` returning ``{input: array}``, ``({input: array},
labels)``, or an iterator of such batches — an in-memory result is sliced, an iterator is streamed
and re-batched without holding the data, every batch checked to keep the first one's layout and
a failure inside the user's generator reported as bad input naming the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.datasets.samples import DataSource, Samples, slices
from compiler.errors import BadInput
from compiler.imports import call_factory, import_object


@dataclass(frozen=True)
class PythonSource(DataSource):
    factory: str = ""
    limit: int | None = None

    def check(self) -> None:
        if not callable(import_object(self.factory, "data factory")):
            raise BadInput(f"data factory {self.factory!r} is not a callable.")

    def batches(self, batch_size: int, limit: int | None = None) -> Iterator[Samples]:
        """A factory that returns an iterator (of ``{input: batch}`` dicts, or ``(dict, labels)``)
        is streamed and re-batched without holding the data; a mapping is sliced."""
        result = call_factory(self.factory, "data factory")
        if _in_memory(result):
            yield from slices(self._samples(result), batch_size, limit)
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
