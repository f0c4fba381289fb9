from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_identity_dropout_and_arithmetic_no_ops_removed():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3] x) => (float[2, 3] y) {
            a = Identity (x)
            b = Dropout (a)
            one = Constant <value = float {1.0}> ()
            c = Mul (b, one)
            y = Relu (c)
        }""")
    original, res = run_pass("identity_dropout", m)
    assert res.modified and [o for o in ops(res.model) if o != "Constant"] == ["Relu"]
    assert res.counts == {"dropout": 1, "arith_no_op": 1, "identity": 1}
    assert_same(original, res.model, {"x": randn(2, 3)})


def test_training_mode_dropout_is_kept():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3] x) => (float[2, 3] y) {
            r = Constant <value = float {0.5}> ()
            t = Constant <value = bool {1}> ()
            y = Dropout (x, r, t)
        }""")
    _, res = run_pass("identity_dropout", m)
    assert "Dropout" in ops(res.model)
