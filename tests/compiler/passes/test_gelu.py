from tests.compiler.passes.helpers import assert_same, model, ops, prepared, randn, run_pass


def test_erf_gelu_with_bias_becomes_bias_gelu():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[4, 16] x) => (float[4, 16] y) {
            h = Add (x, b)
            sqrt2 = Constant <value = float {1.4142135}> ()
            s = Div (h, sqrt2)
            e = Erf (s)
            one = Constant <value = float {1.0}> ()
            e1 = Add (e, one)
            m = Mul (h, e1)
            half = Constant <value = float {0.5}> ()
            y = Mul (m, half)
        }""", b=randn(16))
    original, res = run_pass("gelu", prepared(m))
    assert res.counts.get("gelu_erf") == 1 and res.counts.get("bias_gelu") == 1
    assert [o for o in ops(res.model) if o != "Constant"] == ["com.microsoft::BiasGelu"]
    assert_same(original, res.model, {"x": randn(4, 16)}, atol=1e-5)


def test_onnx_gelu_plus_bias_becomes_bias_gelu():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[4, 16] x) => (float[4, 16] y) {
            h = Add (x, b)
            y = Gelu (h)
        }""", b=randn(16))
    original, res = run_pass("gelu", m)
    assert ops(res.model) == ["com.microsoft::BiasGelu"]
    assert_same(original, res.model, {"x": randn(4, 16)})
