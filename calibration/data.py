"""Calibration batches from a spec's data source, checked against the graph as they stream.

ORT's calibrators pull data through a `CalibrationDataReader`; `BatchReader` hands them one
batch at a time. A batch whose tensors don't match the graph (name, dtype, shape) or hold
NaN is a BadInput naming the batch and tensor — raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from compiler.datasets.samples import DataSource
from compiler.errors import BadInput
from compiler.ir import TensorInfo


def static_batch(graph_inputs: list[TensorInfo], axes: dict[str, int] | None = None) -> int | None:
    """The batch size a graph was exported with when its batch axis is static (a factory model
    exported from its example inputs): every batched input's batch dim is that same number."""
    axes = axes or {}
    dims = {t.shape[axes.get(t.name, 0)] for t in graph_inputs if t.shape}
    return dims.pop() if len(dims) == 1 and all(isinstance(d, int) for d in dims) else None


def unbatched(graph_inputs: list[TensorInfo]) -> bool:
    """A graph with static shapes whose inputs share no leading dim (ONNX's broadcasting node
    cases: x (3, 4, 5) with y (5,)): it has no batch axis to slice calibration data along."""
    return bool(graph_inputs) and all(t.shape is not None and all(isinstance(d, int) for d in t.shape)
                                      for t in graph_inputs)


def _whole(source: DataSource, graph_inputs: list[TensorInfo]):
    """The source as one feed, which must match the graph's shapes exactly."""
    whole = source.load()
    for t in graph_inputs:
        a = whole.feeds.get(t.name)
        if a is not None and tuple(a.shape) != tuple(t.shape):
            raise BadInput(f"calibration input {t.name!r} ({source.describe()}) has shape {tuple(a.shape)}; the graph has "
                           f"no batch axis (static shapes, no leading dim in common), so calibration data is one feed "
                           f"of exactly {tuple(t.shape)}.")
    return whole


def checked_batches(source: DataSource, graph_inputs: list[TensorInfo], samples: int, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Stream at most `samples` samples in batches, each checked against `graph_inputs`. A graph
    with a static batch axis gets batches of exactly that size (a remainder is dropped)."""
    seen = 0
    fixed = static_batch(graph_inputs, dict(source.batch_axes))
    batch_size = fixed or batch_size
    whole = fixed is None and unbatched(graph_inputs)
    batches = iter([_whole(source, graph_inputs)]) if whole else source.batches(batch_size, limit=max(samples, fixed or 0))
    for i, batch in enumerate(batches):
        if fixed is not None and len(batch) != fixed:
            if seen:
                return  # the remainder cannot feed a fixed-batch graph
            raise BadInput(f"calibration data ({source.describe()}) has {len(batch)} sample(s), fewer than the "
                           f"graph's fixed batch of {fixed}.")
        feeds = {}
        for t in graph_inputs:
            if t.name not in batch.feeds:
                raise BadInput(f"calibration batch {i} ({source.describe()}) has no input {t.name!r}; it has {sorted(batch.feeds)}.")
            a = batch.feeds[t.name]
            if a.dtype != t.dtype and np.issubdtype(a.dtype, np.floating) and np.issubdtype(t.dtype, np.floating):
                a = a.astype(t.dtype)
            why = t.matches(a)
            if why:
                raise BadInput(f"calibration input {t.name!r} in batch {i} ({source.describe()}) has {why}.")
            # NaN is a broken batch; ±Inf is data (an additive mask), as in golden inputs
            if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
                bad = int(np.isnan(a).sum())
                raise BadInput(f"calibration input {t.name!r} in batch {i} ({source.describe()}) holds {bad} NaN value(s).")
            feeds[t.name] = a
        seen += 1 if whole else len(batch)  # one feed of the graph's exact shapes (maybe with a 0-size dim)
        yield feeds
        if seen >= samples:
            return
    if seen == 0:
        raise BadInput(f"calibration source {source.describe()} yielded no samples.")


class OneBatch(CalibrationDataReader):
    """A reader over a single batch: ORT calibrators keep everything a reader yields until the
    reader is exhausted, so feeding them one batch per `collect_data` call bounds memory."""

    def __init__(self, feeds: dict[str, np.ndarray]):
        self._feeds: dict[str, np.ndarray] | None = feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        feeds, self._feeds = self._feeds, None
        return feeds
