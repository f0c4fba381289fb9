import numpy as np
import onnx
import onnxruntime as ort

from calibration import surgery
from calibration.fallback import Gate, search
from calibration.qdq import quantize, quantized_nodes
from calibration.ranges import collect
from calibration.sensitivity import NodeSensitivity, rank
from compiler.profile import load_profile
from tests.calibration.conftest import digits_batches


def _run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def _exact(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    for o in m2.opset_import:  # the evaluator has Q/DQ from 19 on (the same meaning for int8)
        if o.domain in ("", "ai.onnx"):
            o.version = max(o.version, 21)
    return ReferenceEvaluator(m2).run(None, {"image": x})[0]


def _qdq(tmp_path, digits_fp32):
    s = load_profile("cpu").quantization
    r = collect(digits_fp32, digits_batches(200), "minmax", s.op_types)
    q = quantize(digits_fp32, tmp_path / "q.onnx", r, s)
    f = onnx.load(str(digits_fp32))
    return f, q, quantized_nodes(q, f, s.op_types)


def test_revert_everything_gives_back_the_float_model(tmp_path, digits_fp32):
    f, q, nodes = _qdq(tmp_path, digits_fp32)
    assert len(nodes) == 4  # 3 Conv + Gemm
    x = next(digits_batches(32))["image"]
    back = surgery.revert(q, f, nodes, nodes)
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in back.graph.node)
    np.testing.assert_allclose(_run(back, x), _run(f, x), atol=1e-5)
    assert np.abs(_run(q, x) - _run(f, x)).max() > 1e-3  # the quantized model really differs


def test_only_one_node_quantized_lies_between_float_and_full(tmp_path, digits_fp32):
    f, q, nodes = _qdq(tmp_path, digits_fp32)
    x = next(digits_batches(32))["image"]
    one = surgery.only(f, q, nodes[0])
    dq_consumers = {c.name for c in one.graph.node for i in c.input
                    if any(d.op_type == "DequantizeLinear" and i in d.output for d in one.graph.node)}
    assert nodes[0] in dq_consumers and not (set(nodes[1:]) & dq_consumers)
    # judged with the QDQ graphs' exact meaning (ONNX's reference evaluator): ONNX Runtime's int8
    # kernels on an AVX2 host without VNNI saturate u8·s8 pair sums, which made the first conv
    # alone look as bad as the whole model (max error 2.218 against 2.204 there)
    ref, full, alone = _exact(f, x), _exact(q, x), _exact(one, x)
    err_one, err_full = np.abs(alone - ref).max(), np.abs(full - ref).max()
    assert 0 < err_one <= err_full, (err_one, err_full)


def test_sensitivity_ranks_every_quantized_node(tmp_path, digits_fp32):
    f, q, nodes = _qdq(tmp_path, digits_fp32)
    ranked = rank(f, q, nodes, list(digits_batches(64, 32)))
    assert sorted(s.node for s in ranked) == sorted(nodes)
    assert [s.snr_db for s in ranked] == sorted(s.snr_db for s in ranked)


def test_search_finds_the_smallest_prefix_in_log_rounds(tmp_path):
    ranked = [NodeSensitivity(f"n{i}", "Conv", float(i)) for i in range(40)]
    built = []

    def build(exclude, path):
        built.append(len(exclude))
        path.write_text(str(len(exclude)))

    def gate(path):
        k = int(path.read_text())
        return Gate(k >= 11, [] if k >= 11 else ["too few"], f"k={k}")

    res = search(ranked, build, gate, tmp_path)
    assert res.passed and [s.node for s in res.excluded] == [f"n{i}" for i in range(11)]
    assert len(built) <= 2 * 6 + 2  # doubling then bisection: O(log n), not n


def test_search_reports_failure_when_even_all_float_fails(tmp_path):
    ranked = [NodeSensitivity(f"n{i}", "Conv", 0.0) for i in range(3)]
    res = search(ranked, lambda e, p: p.write_text("x"), lambda p: Gate(False, ["no"], "no"), tmp_path)
    assert not res.passed
