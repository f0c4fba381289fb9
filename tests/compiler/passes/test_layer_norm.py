import numpy as np

from compiler.passes import PassContext
from tests.compiler.passes.helpers import assert_same, model, ops, prepared, randn, run_pass

DECOMPOSED = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[2, 5, 8] x, float[2, 5, 8] r) => (float[2, 5, 8] y) {
        h = Add (x, r)
        mean = ReduceMean <keepdims = 1> (h, axes)
        d = Sub (h, mean)
        two = Constant <value = float {2.0}> ()
        dd = Pow (d, two)
        var = ReduceMean <keepdims = 1> (dd, axes)
        eps = Constant <value = float {1e-5}> ()
        ve = Add (var, eps)
        sd = Sqrt (ve)
        n = Div (d, sd)
        s = Mul (n, gamma)
        y = Add (s, beta)
    }"""


def _m():
    return prepared(model(DECOMPOSED, axes=np.array([-1], np.int64), gamma=randn(8), beta=randn(8)))


def feeds():
    return {"x": randn(2, 5, 8), "r": randn(2, 5, 8)}


def test_decomposed_layernorm_with_residual_becomes_skip_layernorm_on_ort():
    original, res = run_pass("layer_norm", _m())
    assert res.counts == {"layer_norm": 2, "skip_layer_norm": 1}  # LN, LN+bias, then Add+LN
    assert [o for o in ops(res.model) if o != "Constant"] == ["com.microsoft::SkipLayerNormalization"]
    assert_same(original, res.model, feeds(), atol=1e-5)


def test_standard_layernorm_only_when_contrib_ops_are_not_accepted():
    original, res = run_pass("layer_norm", _m(), PassContext(frozenset({"LayerNormalization"})))
    assert [o for o in ops(res.model) if o != "Constant"] == ["Add", "LayerNormalization"]
    assert_same(original, res.model, feeds(), atol=1e-5)


def test_nothing_when_target_accepts_neither():
    _, res = run_pass("layer_norm", _m(), PassContext(frozenset()))
    assert not res.modified and "ReduceMean" in ops(res.model)
