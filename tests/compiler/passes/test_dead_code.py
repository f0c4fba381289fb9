from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_unused_nodes_and_initializers_removed():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[3] x) => (float[3] y) {
            unused = Mul (x, w)
            y = Relu (x)
        }""", w=randn(3), stale=randn(5))
    original, res = run_pass("dead_code", m)
    assert ops(res.model) == ["Relu"] and set(res.model.graph.initializers) == set()
    assert_same(original, res.model, {"x": randn(3)})
