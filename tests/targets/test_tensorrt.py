"""TensorRT host half: trtexec command from the profile, operator support check, device path."""

from __future__ import annotations

import dataclasses
import shlex
from types import MappingProxyType

import numpy as np
import onnx
import onnx_ir as ir
import pytest

from compiler.errors import BadInput
from compiler.profile import load_profile
from targets import get_backend, tensorrt_support
from targets.tensorrt import shape_ranges, trtexec_command


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
