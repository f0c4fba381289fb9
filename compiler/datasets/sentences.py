"""The ``sentences`` source: real sentences through the model's tokenizer (a ``module:factory``
returning a Hugging Face tokenizer), padded to the longest sentence of a batch or to a fixed
length, as int64 arrays keyed by the model's input names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from compiler.datasets.samples import DataSource, Samples
from compiler.errors import BadInput
from compiler.imports import call_factory


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
