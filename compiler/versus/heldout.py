"""The held-out real set of `make bench-versus` (``bench/heldout/<model>.toml``, read by no build
step): photo views for classifiers, sentences at several sequence lengths for embedding models —
as batch-1 feeds per evaluation group, plus the feeds the timing runs repeat to a batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler import datasets
from compiler import spec as spec_mod
from compiler.imports import call_factory
from compiler.tomlschema import Table, load_toml

HELDOUT_DIR = Path(__file__).resolve().parent.parent.parent / "bench" / "heldout"


@dataclass
class HeldOut:
    kind: str  # "classifier" | "embedding"
    # per evaluation group (e.g. "224px", "seq 16"): a list of feeds, one sample each (batch 1)
    groups: dict[str, list[dict[str, np.ndarray]]]
    timing: dict[str, np.ndarray]  # the feeds timing repeats to the batch size
    describe: str
    measure: str = ""  # what accuracy means for this kind of model


def load_heldout(spec: spec_mod.ModelSpec, path: Path) -> HeldOut:
    t = Table(load_toml(path, "held-out set"), str(path))
    names = spec.input_names
    if t.req("source", str) == "images":
        src = datasets.parse_source(t, names, path.parent)
        views = list(src.load().feeds[names[0]])
        feeds = [{names[0]: v[None]} for v in views]
        return HeldOut("classifier", {"views": feeds}, feeds[0], f"{len(views)} views of {len(src.files)} photos ({path.name})",
                       "top-1 agreement with eager fp32")
    if t.req("source", str) == "python":  # a factory's samples, one view each
        src = datasets.parse_source(t, names, path.parent)
        arrays = src.load().feeds
        count = len(arrays[names[0]])
        feeds = [{k: a[i : i + 1] for k, a in arrays.items()} for i in range(count)]
        return HeldOut("classifier", {"views": feeds}, feeds[0], f"{count} views from {t.req('factory', str)} ({path.name})",
                       "top-1 agreement with eager fp32")
    lengths = t.req("lengths", list)
    plain = {k: v for k, v in t.raw().items() if k != "lengths"}
    groups: dict[str, list[dict[str, np.ndarray]]] = {}
    timing: dict[str, np.ndarray] = {}
    for n in lengths:
        src = datasets.parse_source(Table({**plain, "max_length": int(n)}, str(path)), names, path.parent)
        tok = call_factory(src.tokenizer, "tokenizer factory")
        enc = tok(list(src.sentences), padding="max_length", truncation=True, max_length=int(n), return_tensors="np")
        arrays = {k: np.asarray(enc[k], np.int64) for k in names}
        groups[f"seq {n}"] = [{k: a[i : i + 1] for k, a in arrays.items()} for i in range(len(src.sentences))]
        longest = int(np.argmax(arrays[names[-1]].sum(axis=1))) if "attention_mask" in arrays else 0
        timing = {k: a[longest : longest + 1] for k, a in arrays.items()}  # the longest length (last), most real tokens
    count = len(plain["sentences"])
    return HeldOut("embedding", groups, timing, f"{count} sentences at {', '.join(map(str, lengths))} tokens ({path.name})",
                   "min cosine to eager fp32")
