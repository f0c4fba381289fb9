from tests.compiler.passes.helpers import assert_same, model, ops, randn, run_pass

FLATTEN_BY_BATCH = """
    <ir_version: 10, opset_import: ["" : 20]>
    g (float[N, 2, 3] x) => (float[N, 6] y) {
        r = Relu (x)
        s = Shape (x)
        i = Constant <value = int64 {%d}> ()
        b = Gather <axis = 0> (s, i)
        ax = Constant <value = int64[1] {0}> ()
        bu = Unsqueeze (b, ax)
        m1 = Constant <value = int64[1] {-1}> ()
        t = Concat <axis = 0> (bu, m1)
        y = Reshape (r, t)
    }"""


def _inferred(text):
    from tests.compiler.passes.helpers import run_pass as rp

    return rp("shape_inference", model(text))[1].model


def test_reshape_by_input_batch_becomes_flatten():
    m = _inferred(FLATTEN_BY_BATCH % 0)
    original, res = run_pass("shape_folding", m)
    assert res.counts.get("batch_flatten") == 1
    _, cleaned = run_pass("dead_code", res.model)
    assert ops(cleaned.model) == ["Relu", "Flatten"]
    assert_same(original, cleaned.model, {"x": randn(5, 2, 3)})


def test_other_dim_is_not_rewritten():
    m = _inferred((FLATTEN_BY_BATCH % 1).replace("float[N, 6] y", "float[2, 15] y"))
    _, res = run_pass("shape_folding", m)
    assert "batch_flatten" not in res.counts
