from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_inverse_transposes_cancel():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3, 4] x) => (float[2, 3, 4] y) {
            a = Transpose <perm = [0, 2, 1]> (x)
            b = Transpose <perm = [0, 2, 1]> (a)
            y = Relu (b)
        }""")
    original, res = run_pass("transpose_reshape", m)
    assert ops(res.model) == ["Relu"]
    assert_same(original, res.model, {"x": randn(2, 3, 4)})


def test_reshape_chain_collapses():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3, 4] x) => (float[4, 6] y) {
            s1 = Constant <value = int64[2] {6, 4}> ()
            s2 = Constant <value = int64[2] {4, 6}> ()
            a = Reshape (x, s1)
            y = Reshape (a, s2)
        }""")
    original, res = run_pass("transpose_reshape", m)
    assert [o for o in ops(res.model) if o != "Constant"] == ["Reshape"]
    assert_same(original, res.model, {"x": randn(2, 3, 4)})
