from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass


def test_zero_pad_merges_into_conv():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[1, 3, 8, 8] x) => (float[1, 4, 4, 4] y) {
            pads = Constant <value = int64[8] {0, 0, 0, 1, 0, 0, 1, 2}> ()
            p = Pad (x, pads)
            y = Conv <strides = [2, 2], pads = [0, 0, 0, 0]> (p, w)
        }""", w=randn(4, 3, 3, 3))
    original, res = run_pass("pad_conv", m)
    assert [op for op in ops(res.model) if op != "Constant"] == ["Conv"]
    conv = next(n for n in res.model.graph if n.op_type == "Conv")
    assert list(conv.attributes["pads"].as_ints()) == [0, 1, 1, 2]
    assert_same(original, res.model, {"x": randn(1, 3, 8, 8)})


def test_reflect_pad_is_not_merged():
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
            pads = Constant <value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}> ()
            p = Pad <mode = "reflect"> (x, pads)
            y = Conv (p, w)
        }""", w=randn(4, 3, 3, 3))
    _, res = run_pass("pad_conv", m)
    assert "Pad" in ops(res.model)
