"""The stage cache `--precision best` shares between candidates: keyed by everything export and
passes read, and handing out copies later stages may mutate."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir
from onnx import helper

from compiler.frontend import FrontendResult
from compiler.passes.manager import PipelineResult
from compiler.spec import resolve
from compiler.stages import StageCache, stage_key
from tests.targets.stablehlo.helpers import graph_model


def test_key_changes_with_what_export_and_passes_read():
    spec = resolve("digits-cnn")
    feeds = {"image": np.zeros((2, 1, 8, 8), np.float32)}
    base = stage_key(spec, feeds, "default", frozenset())
    assert base == stage_key(spec, {"image": feeds["image"].copy()}, "default", frozenset())
    assert base != stage_key(spec, {"image": np.ones((2, 1, 8, 8), np.float32)}, "default", frozenset())
    assert base != stage_key(spec, feeds, "none", frozenset())
    assert base != stage_key(spec, feeds, "default", frozenset({"Gelu"}))
    assert base != stage_key(dataclasses.replace(spec, source="other:model"), feeds, "default", frozenset())


def test_hits_are_independent_copies():
    proto = graph_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (np.float32, [2])}, {"y": np.float32})
    model = ir.serde.deserialize_model(proto)
    cache = StageCache()
    cache.put("k", FrontendResult(model, "dynamo", None, 1.0), PipelineResult(model, [{"name": "p", "seconds": 0.5}], {}, []))
    fe, opt = cache.get("k")
    opt.model.graph.remove(next(iter(opt.model.graph)), safe=False)  # a later stage mutates its copy…
    opt.records[0].pop("seconds")                                     # …and the build pops the pass timings
    fe2, opt2 = cache.get("k")
    assert len(opt2.model.graph) == 1 and opt2.records[0]["seconds"] == 0.5 and fe2.exporter == "dynamo"
    assert cache.get("other") is None and cache.hits == 2
