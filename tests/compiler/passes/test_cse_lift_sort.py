import numpy as np

from tests.compiler.passes.helpers import assert_same, model, ops, randn, run, run_pass


def test_cse_merges_identical_nodes():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[3] x) => (float[3] y) {
            a = Relu (x)
            b = Relu (x)
            y = Add (a, b)
        }""")
    original, res = run_pass("cse", m)
    assert ops(res.model) == ["Relu", "Add"]
    assert_same(original, res.model, {"x": randn(3)})


def test_lift_constants_makes_initializers():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[3] x) => (float[3] y) {
            c = Constant <value = float[3] {1.0, 2.0, 3.0}> ()
            y = Mul (x, c)
        }""")
    original, res = run_pass("lift_constants", m)
    assert ops(res.model) == ["Mul"] and len(res.model.graph.initializers) == 1
    assert_same(original, res.model, {"x": randn(3)})


def test_topological_sort_orders_nodes():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[3] x) => (float[3] y) {
            a = Relu (x)
            y = Neg (a)
        }""")
    nodes = list(m.graph)
    m.graph.remove(nodes[0])
    m.graph.append(nodes[0])  # Relu now after its consumer
    assert ops(m) == ["Neg", "Relu"]
    _, res = run_pass("topological_sort", m)
    assert ops(res.model) == ["Relu", "Neg"]
    x = randn(3)
    np.testing.assert_allclose(run(res.model, {"x": x})[0], -np.maximum(x, 0))
