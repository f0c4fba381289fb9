
from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_small_constant_of_shape_and_its_consumers_fold():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 4] x) => (float[2, 4] y) {
            shape = Constant <value = int64[2] {2, 4}> ()
            ones = ConstantOfShape <value = float[1] {1.0}> (shape)
            twos = Add (ones, ones)
            y = Mul (x, twos)
        }""")
    original, res = run_pass("constant_folding", m)
    assert res.modified
    _, cleaned = run_pass("dead_code", res.model)  # folding leaves dead producers to dead_code
    assert [o for o in ops(cleaned.model) if o != "Constant"] == ["Mul"]  # the folded value: a Constant
    assert_same(original, cleaned.model, {"x": randn(2, 4)})


def test_large_constant_of_shape_is_kept():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[64, 64] x) => (float[64, 64] y) {
            shape = Constant <value = int64[2] {64, 64}> ()
            z = ConstantOfShape <value = float[1] {0.0}> (shape)
            y = Add (x, z)
        }""")
    _, res = run_pass("constant_folding", m)
    assert "ConstantOfShape" in ops(res.model)  # 4096 elements > 1024: folding would bloat the model
