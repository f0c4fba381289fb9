"""Frontend: exports are checked, compared with PyTorch eager, and the fallback is recorded."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compiler import frontend, torch_model
from compiler import ir as irh
from compiler.errors import BadInput
from compiler.spec import Exporter, ExportSpec, ModelSpec, SourceKind, TensorSpec


def _ort(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(irh.to_proto(model).SerializeToString(), so, providers=["CPUExecutionProvider"])


def _spec(source: str, exporter=Exporter.DYNAMO, shape=("batch", 3, 6, 6)) -> ModelSpec:
    return ModelSpec(name="t", source=source, source_kind=SourceKind.FACTORY,
                     inputs=(TensorSpec("x", "float32", tuple(shape)),), export=ExportSpec(exporter))


def _feeds(n=3):
    return {"x": np.random.default_rng(1).standard_normal((n, 3, 6, 6)).astype(np.float32)}


@pytest.mark.parametrize("exporter", [Exporter.DYNAMO, Exporter.LEGACY])
def test_export_matches_eager_at_another_batch(exporter):
    spec = _spec("tests.conftest:tiny_factory", exporter)
    res = frontend.load(spec, _feeds(3))
    assert res.exporter == exporter.value
    assert (res.fallback_reason is None) == (exporter is Exporter.DYNAMO)
    x = _feeds(5)["x"]  # dynamic batch: run at a batch size the export never saw
    module, _ = torch_model.load_torch(spec)
    expected = module(torch.from_numpy(x)).detach().numpy()
    (got,) = _ort(res.model).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert [i.name for i in irh.graph_inputs(res.model)] == ["x"]
    assert irh.graph_inputs(res.model)[0].shape[0] == "batch"


class DataDependent(torch.nn.Module):
    """Python control flow on a tensor value: torch.export cannot capture it, tracing can."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def data_dependent():
    return DataDependent(), (torch.ones(2, 3),)


def test_dynamo_failure_falls_back_to_legacy_with_reason():
    spec = ModelSpec(name="dd", source="tests.compiler.test_frontend:data_dependent", source_kind=SourceKind.FACTORY,
                     inputs=(TensorSpec("x", "float32", (2, 3)),))
    res = frontend.load(spec, {"x": np.ones((2, 3), np.float32)})
    assert res.exporter == "legacy"
    assert res.fallback_reason.startswith("dynamo exporter failed:")
    assert "data-dependent" in res.fallback_reason.lower() or "guard" in res.fallback_reason.lower()


def test_factory_that_returns_garbage():
    spec = _spec("tests.compiler.test_frontend:_feeds")
    with pytest.raises(BadInput, match="returned dict; expected an nn.Module"):
        frontend.load(spec, _feeds())


def test_missing_example_input_names_the_input():
    with pytest.raises(BadInput, match=r"lack \['x'\]"):
        frontend.load(_spec("tests.conftest:tiny_factory"), {"image": _feeds()["x"]})


def test_pt2_source_exports(tmp_path):
    module, (x,) = __import__("tests.conftest", fromlist=["tiny_factory"]).tiny_factory()
    ep = torch.export.export(module, (x,))
    path = tmp_path / "tiny.pt2"
    torch.export.save(ep, str(path))
    from compiler.spec import resolve

    spec = resolve(str(path))
    assert spec.source_kind is SourceKind.PT2
    res = frontend.load(spec, {"x": x.numpy()})
    (got,) = _ort(res.model).run(None, {irh.graph_inputs(res.model)[0].name: x.numpy()})
    np.testing.assert_allclose(got, module(x).detach().numpy(), atol=1e-5)
