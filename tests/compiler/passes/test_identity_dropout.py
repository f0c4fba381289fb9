import numpy as np
import onnx_ir as ir

from compiler import ortsession
from compiler.passes.identity_dropout import IdentityDropout
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


def test_identity_between_two_outputs_of_a_loop_body_is_kept():
    """ONNX's test_scan_sum: the Scan body returns its state and an Identity copy of it; removing
    the Identity made the body return one value twice and ONNX Runtime produced garbage."""
    from onnx.backend.test.case import node

    case = next(c for c in node.collect_testcases("Scan") if c.name == "test_scan_sum")
    model = ir.from_proto(case.model)
    IdentityDropout()(model)
    body = next(iter(model.graph)).attributes["body"].value
    assert [n.op_type for n in body] == ["Add", "Identity"]
    assert [o.name for o in body.outputs] == ["sum_out", "scan_out"]
    sess = ortsession.session(ir.to_proto(model), level="disabled")
    (ins, outs), = case.data_sets[:1]
    got = sess.run(None, dict(zip([i.name for i in sess.get_inputs()], ins)))
    for g, want in zip(got, outs):
        np.testing.assert_allclose(g, want, rtol=0, atol=0)
