"""TensorRT host half: trtexec command from the profile, operator support check, device path."""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from types import MappingProxyType

import numpy as np
import onnx
import onnx_ir as ir
import pytest

from compiler.errors import BadInput
from compiler.profile import load_profile
from targets import get_backend, tensorrt_support
from targets.shape_profiles import shape_ranges
from targets.tensorrt import trtexec_command


def _ir(text: str, **inits) -> ir.Model:
    proto = onnx.parser.parse_model(text)
    for k, v in inits.items():
        proto.graph.initializer.append(onnx.numpy_helper.from_array(v, k))
    return ir.from_proto(proto)


TWO_INPUTS = _ir("""
    <ir_version: 10, opset_import: ["" : 20]>
    g (int64[batch, sequence] input_ids, int64[batch, sequence] attention_mask) => (float[batch, 4] y) {
        s = Add (input_ids, attention_mask)
        f = Cast <to = 1> (s)
        y = ReduceMean <keepdims = 0> (f)
    }""")


def _with(profile, **options):
    return dataclasses.replace(profile, options=MappingProxyType({**profile.options, **options}))


def test_trtexec_command_follows_the_jetson_profile():
    prof = load_profile("jetson")
    cmd = trtexec_command(TWO_INPUTS, prof, "int8")
    b, s = prof.option("shape_profiles")["batch"], prof.option("shape_profiles")["sequence"]
    assert cmd[:3] == ["trtexec", "--onnx=model.onnx", "--saveEngine=model.plan"]
    assert f"--minShapes=input_ids:{b[0]}x{s[0]},attention_mask:{b[0]}x{s[0]}" in cmd
    assert f"--optShapes=input_ids:{b[1]}x{s[1]},attention_mask:{b[1]}x{s[1]}" in cmd
    assert f"--maxShapes=input_ids:{b[2]}x{s[2]},attention_mask:{b[2]}x{s[2]}" in cmd
    assert "--int8" in cmd and "--fp16" in cmd  # QDQ int8 + fp16 for nodes the fallback kept in float
    assert f"--memPoolSize=workspace:{prof.option('workspace_mib')}M" in cmd
    assert "--timingCacheFile=timing.cache" in cmd
    assert not any(c.startswith("--useDLACore") for c in cmd)


@pytest.mark.parametrize("precision, flags", [("fp32", ["--noTF32"]), ("fp16", ["--fp16"]), ("int8", ["--int8", "--fp16"])])
def test_precision_flags(precision, flags):
    cmd = trtexec_command(TWO_INPUTS, load_profile("x86-gpu"), precision)
    assert [c for c in cmd if c in ("--noTF32", "--fp16", "--int8", "--bf16")] == flags


def test_dla_core_adds_gpu_fallback_and_calibration_cache():
    cmd = trtexec_command(TWO_INPUTS, _with(load_profile("jetson"), dla_core=1), "int8")
    assert "--useDLACore=1" in cmd and "--allowGPUFallback" in cmd and "--calib=calibration.cache" in cmd


def test_missing_shape_profile_names_dim_and_profile():
    prof = _with(load_profile("jetson"), shape_profiles={"batch": [1, 2, 4]})
    with pytest.raises(BadInput, match=r"dynamic dim 'sequence'.*jetson.toml"):
        shape_ranges(TWO_INPUTS, prof)


def test_static_model_needs_no_shape_flags():
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3] x) => (float[2, 3] y) { y = Relu (x) }""")
    cmd = trtexec_command(m, load_profile("jetson"), "fp16")
    assert not any(c.startswith(("--minShapes", "--optShapes", "--maxShapes")) for c in cmd)


def test_supported_graph_has_no_incompatibilities():
    assert tensorrt_support.check(TWO_INPUTS) == []


def test_unsupported_ops_are_named_with_their_node():
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20, "com.microsoft" : 1]>
        g (float[2, 8] x) => (float[2, 8] y, float[2, 8] u) {
            a = com.microsoft.Gelu (x)
            y = Relu (a)
            u = Hardmax (x)
        }""")
    m.graph.node(0).name = "encoder/gelu_7"
    unique = ir.node("Unique", [m.graph.inputs[0]], num_outputs=1, name="dedupe_tokens")
    m.graph.append(unique)
    problems = {p.node: p for p in tensorrt_support.check(m)}
    assert "encoder/gelu_7" in problems and "com.microsoft" in problems["encoder/gelu_7"].why
    assert "dedupe_tokens" in problems and "support matrix" in problems["dedupe_tokens"].why
    assert all(p.op != "Hardmax" for p in problems.values())


def test_float64_tensor_is_reported():
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (double[3] x) => (double[3] y) { y = Relu (x) }""")
    (p,) = tensorrt_support.check(m)
    assert "DOUBLE" in p.why


def test_compile_rejects_unsupported_graph_before_writing_a_script(tmp_path):
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20, "com.microsoft" : 1]>
        g (float[2, 8] x) => (float[2, 8] y) { y = com.microsoft.FastGelu (x) }""")
    m.graph.node(0).name = "ffn_gelu"
    with pytest.raises(BadInput, match=r"TensorRT's ONNX parser does not support: node 'ffn_gelu' \(com.microsoft::FastGelu\)"):
        get_backend("tensorrt").compile(m, tmp_path / "model.onnx", load_profile("jetson"), "fp16", tmp_path)
    assert not (tmp_path / "build_engine.sh").exists()


def test_engine_build_on_a_cuda_host():
    """The device half: only where TensorRT and a GPU exist."""
    prof = load_profile("x86-gpu")
    avail = get_backend("tensorrt").available(prof)
    if not avail.can_run:
        pytest.skip(f"TensorRT cannot run here: {avail.reason}")
    from compiler.cli import main  # pragma: no cover - needs CUDA

    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "x86-gpu", "--precision", "fp16"]) == 0


def test_script_is_the_exact_command(tmp_path):
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[batch, 3] x) => (float[batch, 3] y) { y = Relu (x) }""")
    prof = load_profile("jetson")
    engine = get_backend("tensorrt").compile(m, tmp_path / "model.onnx", prof, "fp16", tmp_path)
    script = (tmp_path / "build_engine.sh").read_text()
    assert shlex.join(trtexec_command(m, prof, "fp16")) in script
    assert engine.info["trtexec"] == shlex.join(trtexec_command(m, prof, "fp16"))
    assert [d.step for d in engine.deferred] == ["engine-build", "engine-verify"]
    np.testing.assert_equal(engine.info["shape_profiles"]["x"], [[1, 3], [4, 3], [8, 3]])


# ---------------------------------------------------------------- the vendored operator table


def test_table_is_parsed_from_the_vendored_onnx_tensorrt_document():
    t = tensorrt_support.table()
    text = (tensorrt_support.VENDOR / "operators.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[2].strip() in ("Y", "N")]
    assert len(t.ops) == len(rows) > 150
    assert t.tensorrt.startswith("10.") and t.opsets[0] <= 20 <= t.opsets[1]
    assert t.source["commit"][:12] in t.describe()["source"]
    # rows as the document words them
    assert t.ops["Conv"].supported and t.ops["Conv"].types == {ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16}
    assert not t.ops["Unique"].supported
    assert ir.DataType.INT32 not in t.ops["DequantizeLinear"].types


def test_unknown_type_in_a_table_is_an_error_not_a_dropped_type():
    doc = ("TensorRT 10.9 supports operators in the inclusive range of opset 9 to opset 22.\n"
           "TensorRT supports the following ONNX data types: FLOAT32, FLOAT16\n"
           "| Relu | Y | FP32, FP4 |\n")
    with pytest.raises(ValueError, match="unknown type 'FP4'"):
        tensorrt_support.parse(doc)
    t = tensorrt_support.parse(doc.replace(", FP4", ""))
    assert (t.tensorrt, t.opsets, set(t.ops)) == ("10.9", (9, 22), {"Relu"})


def test_other_major_version_has_no_table():
    with pytest.raises(BadInput, match=r"describes TensorRT 10\..*pins TensorRT 8\.6"):
        tensorrt_support.check(TWO_INPUTS, "8.6")


def test_int32_bias_dequantize_is_refused_as_the_table_says():
    """ORT's default QDQ writes int32 biases through DequantizeLinear; TensorRT's takes int8/fp8/int4."""
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 4] x) => (float[4] b) { b = DequantizeLinear (bq, s) }""",
            bq=np.arange(4, dtype=np.int32), s=np.array(0.1, np.float32))
    m.graph.node(0).name = "fc.bias_DequantizeLinear"
    (p,) = tensorrt_support.check(m)
    assert p.node == "fc.bias_DequantizeLinear" and "INT32" in p.why and "INT8" in p.why


@pytest.mark.parametrize("graph, why", [
    ("y = Squeeze (x, axes)", r"input 'axes' must be an initializer"),
    ("y = MaxPool <kernel_shape = [2, 2], dilations = [2, 2]> (x4)", r"dilations=\[2, 2\] must be empty or all ones"),
    ("y = MaxPool <kernel_shape = [2]> (x3)", r"rank 3: 2D or 3D pooling only"),
    ("y, i = MaxPool <kernel_shape = [2, 2]> (x4)", r"output 'Indices' is used"),
    ("y = TopK <sorted = 0> (x, k)", r"attribute sorted=0, TensorRT needs 1"),
    ("y = Resize <mode = \"cubic\"> (x4, , sc)", r"mode='cubic' is not among TensorRT's \['nearest', 'linear'\]"),
    ("y = ScatterND <reduction = \"add\"> (x, idx, x)", r"attribute reduction='add' is not supported"),
])
def test_table_restrictions_are_checked(graph, why):
    outs = "float[2] y, int64[1, 1, 1, 1] i" if ", i =" in graph else "float[2] y"
    m = _ir(f"""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 2] x, int64[1] axes, float[1, 1, 4, 4] x4, float[1, 1, 4] x3, int64[1] k, int64[1, 1] idx) => ({outs}) {{
            sc = Constant <value = float[4] {{1.0, 1.0, 2.0, 2.0}}> ()
            {graph}
        }}""")
    problems = tensorrt_support.check(m)
    assert len(problems) == 1 and re.search(why, problems[0].why), problems


def test_restrictions_that_hold_pass():
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[1, 1, 4, 4] x) => (float[1, 1, 4] y, float[1, 1, 2, 2] p, float[1, 1, 8, 8] r) {
            p = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (x)
            y = Squeeze (s, axes)
            s = ReduceMax <keepdims = 1> (x, ax3)
            r = Resize <mode = "linear"> (x, , sc)
        }""", axes=np.array([3], np.int64), ax3=np.array([3], np.int64), sc=np.array([1, 1, 2, 2], np.float32))
    assert tensorrt_support.check(m) == []
    left = tensorrt_support.analyse(m).unchecked
    assert "Resize" in left and any("aspect ratio" in s for s in left["Resize"])  # prose no pattern reads
    assert "MaxPool" not in left and "Squeeze" not in left


def test_manifest_names_the_table_and_what_the_plan_is_built_for(tmp_path):
    m = _ir("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[batch, 3] x) => (float[batch, 3] y) { y = Relu (x) }""")
    engine = get_backend("tensorrt").compile(m, tmp_path / "model.onnx", load_profile("jetson"), "fp16", tmp_path)
    t = engine.info["operator_table"]
    assert t["describes"].startswith("TensorRT 10.") and tensorrt_support.table().source["commit"][:12] in t["source"]
    assert engine.info["built_for"] == {"tensorrt": "10.3", "gpu_arch": "sm_87"}
    script = (tmp_path / "build_engine.sh").read_text()
    assert "python3 -m targets.tensorrt_plan ." in script
    assert subprocess.run(["sh", "-n", str(tmp_path / "build_engine.sh")]).returncode == 0


def test_tensorrt_profiles_leave_biases_float():
    """So the int8 model passes the table: no INT32 bias DequantizeLinear (ORT's default)."""
    for target in ("jetson", "x86-gpu"):
        assert load_profile(target).quantization.extra.get("QuantizeBias") is False


# ---------------------------------------------------------------- plan stamps


def test_plan_from_another_tensorrt_or_gpu_is_refused(tmp_path):
    from compiler.errors import ToolchainRefused
    from targets.tensorrt_plan import PlanStamp, refuse_other_device

    assert refuse_other_device(tmp_path, PlanStamp("10.3.0.30", "sm_87")) is None  # no stamp: TensorRT decides
    PlanStamp("10.3.0.30", "sm_87", "Orin").write(tmp_path)
    assert refuse_other_device(tmp_path, PlanStamp("10.3.0.30", "sm_87", "Orin")) == PlanStamp("10.3.0.30", "sm_87", "Orin")
    with pytest.raises(ToolchainRefused, match=r"TensorRT 10\.3\.0\.30 built it, this host has TensorRT 10\.7\.0\.23.*rebuild"):
        refuse_other_device(tmp_path, PlanStamp("10.7.0.23", "sm_87"))
    with pytest.raises(ToolchainRefused, match=r"built for sm_87 \(Orin\), this GPU is sm_86"):
        refuse_other_device(tmp_path, PlanStamp("10.3.0.30", "sm_86", "RTX A4000"))
    (tmp_path / "engine.json").write_text("{}")
    with pytest.raises(BadInput, match="not a TensorRT plan stamp"):
        refuse_other_device(tmp_path, PlanStamp("10.3.0.30", "sm_87"))


@pytest.mark.parametrize("wanted, actual, ok", [
    ("sm_87", "sm_87", True), ("sm_87", "sm_86", False), ("sm_80+", "sm_89", True),
    ("sm_80+", "sm_75", False), ("sm_80+", "sm_100", True),
])
def test_profile_gpu_arch(wanted, actual, ok):
    from targets.tensorrt_plan import arch_matches

    assert arch_matches(wanted, actual) is ok
