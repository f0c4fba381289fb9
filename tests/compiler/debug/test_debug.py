"""When parity fails, the layer is named: a planted fault (`planted.spike`, fine on calibration
data, out of range on golden) built at fp16 and at int8 without fallback on every target that
runs here; the build exits 1 naming the layer (ONNX node and PyTorch module / source line),
`debug --artifact` names the same one, `--bisect` finds a keep-float list with it that passes,
and a passing artifact shows no divergence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.cli import main
from tests.compiler.debug.planted import calibration_inputs, golden_inputs

MODEL = "tests.compiler.debug.planted:build"
CASES = [("intel", "fp16"), ("apple", "fp16"), ("cpu", "int8"), ("intel", "int8"), ("android", "int8")]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("planted")
    np.savez(root / "golden_in.npz", x=golden_inputs())
    np.savez(root / "calib.npz", x=calibration_inputs())
    assert main(["golden", "--model", MODEL, "--inputs", str(root / "golden_in.npz"), "--out", str(root / "golden")]) == 0
    return root / "golden", root / "calib.npz"


def _spike_node(artifact: Path) -> str:
    """The ONNX node the exporter recorded for the module `spike` (from the artifact's float model)."""
    ref = artifact / "reference.onnx" if (artifact / "reference.onnx").is_file() else artifact / "model.onnx"
    for n in onnx.load(str(ref)).graph.node:
        meta = {p.key: p.value for p in n.metadata_props}
        if "'spike'" in meta.get("pkg.torch.onnx.name_scopes", ""):
            return n.name
    raise AssertionError("no node of module spike in the float model")


def _build(data, tmp_path: Path, target: str, precision: str, *extra: str) -> tuple[int, Path, str]:
    golden, calib = data
    out = tmp_path / f"{target}-{precision}"
    code = main(["build", "--quiet", "--model", MODEL, "--target", target, "--precision", precision, "--golden", str(golden),
                 "--calib", str(calib), "--out", str(out), "--no-cache", *extra])
    return code, out, ""


@pytest.mark.parametrize("target, precision", CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_a_failed_build_names_the_planted_layer_and_debug_agrees(data, tmp_path, capsys, target, precision):
    code, out, _ = _build(data, tmp_path, target, precision, "--no-fallback")
    err = capsys.readouterr().err
    if code == 0 and target == "intel" and precision == "fp16":
        used = json.loads((out / "manifest.json").read_text())["engine"]["info"].get("runtime_precisions", {})
        if "f16" not in used:  # the hint is a request: a CPU without f16 arithmetic runs the model in f32
            pytest.skip(f"this CPU runs OpenVINO's f16 hint in {sorted(used)} (no native f16): nothing overflows")
    assert code == 1, err
    spike = _spike_node(out)
    parity = json.loads((out / "parity.json").read_text())
    first = parity["localization"]["first_divergence"]
    assert first["node"] == spike and first["op_type"] in ("Gemm", "MatMul"), first
    assert first["source"]["module"] == "spike" and "planted.py" in first["source"]["line"]
    assert f"first divergence at node '{spike}'" in err
    assert "Where it went wrong" in (out / "report.md").read_text()
    # debug --artifact says the same, into DIR.debug, leaving the artifact as it was
    before = (out / "manifest.json").read_bytes()
    assert main(["debug", "--quiet", "--artifact", str(out)]) == 0
    debug = json.loads((out.with_name(out.name + ".debug") / "debug.json").read_text())
    assert debug["first_divergence"]["node"] == spike and debug["first_divergence"]["tensor"] == first["tensor"]
    assert (out / "manifest.json").read_bytes() == before
    assert main(["verify", "--artifact", str(out)]) == (3 if target == "apple" else 1)  # apple: Core ML runs on macOS only


def test_bisection_finds_a_short_keep_float_list_that_passes(data, tmp_path, capsys):
    code, out, _ = _build(data, tmp_path, "cpu", "int8", "--no-fallback")
    assert code == 1
    spike = _spike_node(out)
    assert main(["debug", "--quiet", "--artifact", str(out), "--bisect", "--out", str(tmp_path / "dbg")]) == 0
    keep = json.loads((tmp_path / "dbg" / "debug.json").read_text())["keep_float"]
    assert spike in keep and len(keep) <= 3, keep
    capsys.readouterr()
    code, rebuilt, _ = _build(data, tmp_path / "again", "cpu", "int8", "--no-fallback", "--keep-float", ",".join(keep))
    assert code == 0, capsys.readouterr().err
    calibration = json.loads((rebuilt / "calibration.json").read_text())
    assert {n["node"] for n in calibration["fallback"]["float_nodes"]} == set(keep)


def test_a_passing_artifact_shows_no_divergence(tmp_path):
    out = tmp_path / "digits"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8", "--out", str(out)]) == 0
    assert main(["debug", "--quiet", "--artifact", str(out), "--out", str(tmp_path / "d")]) == 0
    debug = json.loads((tmp_path / "d" / "debug.json").read_text())
    assert debug["first_divergence"] is None and debug["tensors"]
    assert all(t["within"] for t in debug["tensors"])
    assert "No divergence" in (tmp_path / "d" / "report.html").read_text()


def test_an_unknown_keep_float_node_is_refused(data, tmp_path, capsys):
    code, _, _ = _build(data, tmp_path, "cpu", "int8", "--keep-float", "no_such_node")
    assert code == 2
    assert "no_such_node" in capsys.readouterr().err


def test_a_failed_build_keeps_to_its_localization_bound(data, tmp_path, capsys):
    """The bound is enforced, not noted: a build whose own compile and run predict more than the
    bound does not start the localization; one that passes the deadline stops between steps.
    Either way the build's verdict (exit 1) stands and parity.json says why there is no layer."""
    code, out, _ = _build(data, tmp_path, "cpu", "int8", "--no-fallback", "--localize-seconds", "0.000001")
    err = capsys.readouterr().err
    assert code == 1, err
    loc = json.loads((out / "parity.json").read_text())["localization"]
    assert loc["first_divergence"] is None and "over the 1e-06 s bound" in loc["error"], loc
    assert not (out / "debug.json").exists()
    assert "over the 1e-06 s bound" in (out / "report.md").read_text()

    from compiler.artifact.read import artifact_golden, read_manifest
    from compiler.debug.localize import load_model, localize, reference_model
    from compiler.debug.observe import OverTimeBound
    from targets import get_backend, load_profile

    golden = artifact_golden(out, read_manifest(out))
    with pytest.raises(OverTimeBound, match="after building the observed engine"):
        localize(load_model(out / "model.onnx"), reference_model(out), golden, get_backend("onnxruntime"),
                 load_profile("cpu"), "int8", True, tmp_path / "observed", deadline=0.0)
