import onnx_ir as ir

from tests.compiler.passes.helpers import assert_same, model, randn, run_pass


def test_unknown_dims_are_reinferred_from_the_input():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[N, 3] x) => (float[N, 3] y) {
            a = Relu (x)
            y = Neg (a)
        }""")
    relu_out = next(n for n in m.graph if n.op_type == "Relu").outputs[0]
    relu_out.shape = ir.Shape([ir.SymbolicDim("unk__7"), 3])  # what an earlier run left behind
    original, res = run_pass("shape_inference", m)
    assert res.modified
    assert relu_out.shape[0] == ir.SymbolicDim("N")
    assert_same(original, res.model, {"x": randn(4, 3)})


def test_no_change_reports_unmodified():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[N, 3] x) => (float[N, 3] y) { y = Relu (x) }""")
    run_pass("shape_inference", m)
    _, res = run_pass("shape_inference", m)
    assert not res.modified
