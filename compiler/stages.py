"""The precision-independent stages of a build (export, passes), cached by a content hash of
what they read, so `--precision best` builds each candidate for the price of what differs
(calibration, compile, verify) instead of exporting and optimizing the model once per precision.

The cache lives for one process (one `best` run): a factory spec's hash is its import path, not
its weights, so a cross-process cache could not tell a retrained model from the old one. Each hit
hands out a fresh copy of the models (deserialized from the stored proto): later stages mutate
what they are given.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

import onnx_ir as ir

from compiler.golden import array_sha256


def stage_key(spec: Any, golden_inputs: dict, pipeline: str, accepts: frozenset[str]) -> str:
    """What export and passes read: the model (spec hash, source, export options), the example
    inputs they trace with, the pass pipeline and the ops the backend accepts."""
    facts = {
        "spec": [spec.source, spec.sha256, repr(spec.export), spec.trust_pickle],
        "inputs": {k: array_sha256(v) for k, v in sorted(golden_inputs.items())},
        "pipeline": pipeline,
        "accepts": sorted(accepts),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class StageCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, Any, Any, Any]] = {}
        self._derived: dict[tuple[str, str], Any] = {}
        self.hits = 0

    def derived(self, key: str, what: str, compute: Callable[[], Any]) -> Any:
        """A value computed from the stages under `key` (the validation set's float reference),
        computed once and shared read-only between candidates."""
        if (key, what) not in self._derived:
            self._derived[key, what] = compute()
        return self._derived[key, what]

    def get(self, key: str) -> tuple[Any, Any] | None:
        """(frontend result, pass-pipeline result), each with its own copy of the model."""
        if key not in self._entries:
            return None
        fe, exported, optimized, proto = self._entries[key]
        self.hits += 1
        return (dataclasses.replace(fe, model=ir.serde.deserialize_model(exported)),
                dataclasses.replace(copy.deepcopy(optimized), model=ir.serde.deserialize_model(proto)))

    def put(self, key: str, fe: Any, optimized: Any) -> None:
        # the pass records are copied now: the build pops their timings into build.json afterwards
        kept = dataclasses.replace(optimized, model=None, records=copy.deepcopy(optimized.records))
        self._entries[key] = (fe, ir.serde.serialize_model(fe.model), kept, ir.serde.serialize_model(optimized.model))
