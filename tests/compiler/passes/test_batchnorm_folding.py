import numpy as np

from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_conv_bn_folds_into_conv():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3, 5, 5] x) => (float[2, 4, 5, 5] y) {
            c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
            y = BatchNormalization <epsilon = 0.001> (c, gamma, beta, mean, var)
        }""", w=randn(4, 3, 3, 3), b=randn(4), gamma=randn(4), beta=randn(4), mean=randn(4),
        var=np.abs(randn(4)) + 0.5)
    original, res = run_pass("batchnorm_folding", m)
    assert ops(res.model) == ["Conv"] and res.counts == {"conv_bn": 1}
    assert_same(original, res.model, {"x": randn(2, 3, 5, 5)}, atol=1e-4)


def test_gemm_bn_folds_into_gemm():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[4, 6] x) => (float[4, 3] y) {
            h = Gemm <transB = 1> (x, w, b)
            y = BatchNormalization (h, gamma, beta, mean, var)
        }""", w=randn(3, 6), b=randn(3), gamma=randn(3), beta=randn(3), mean=randn(3), var=np.abs(randn(3)) + 0.5)
    original, res = run_pass("batchnorm_folding", m)
    assert ops(res.model) == ["Gemm"] and res.counts == {"gemm_bn": 1}
    assert_same(original, res.model, {"x": randn(4, 6)}, atol=1e-4)
