from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_2d_matmul_add_becomes_gemm():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[4, 6] x) => (float[4, 3] y) {
            h = MatMul (x, w)
            y = Add (h, b)
        }""", w=randn(6, 3), b=randn(3))
    original, res = run_pass("matmul_add_gemm", m)
    assert ops(res.model) == ["Gemm"]
    assert_same(original, res.model, {"x": randn(4, 6)})


def test_3d_matmul_add_is_left_alone():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 4, 6] x) => (float[2, 4, 3] y) {
            h = MatMul (x, w)
            y = Add (h, b)
        }""", w=randn(6, 3), b=randn(3))
    _, res = run_pass("matmul_add_gemm", m)
    assert ops(res.model) == ["MatMul", "Add"] and not res.modified  # Gemm is 2-D only
