"""The CLI contract: exit codes, one-paragraph errors naming the thing, nothing written on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main
from tests.conftest import artifact_content_files

REPO = Path(__file__).resolve().parents[2]


def _build(tmp_path, *args):
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--out", str(out), *args])
    return code, out


def _nothing_written(tmp_path):
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_onnx_file_with_golden_dir_builds_and_verifies(tmp_path, tiny_onnx):
    model, golden = tiny_onnx
    code, out = _build(tmp_path, "--model", str(model), "--target", "cpu", "--golden", str(golden))
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["frontend"]["exporter"] == "onnx-file"
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["outputs"]["y"]["max_abs"] < 1e-5
    listed = {f["path"] for f in manifest["files"]}
    assert listed == artifact_content_files(out)
    assert main(["verify", "--artifact", str(out)]) == 0


def test_parity_failure_exits_1_keeps_artifact_marked_failed(tmp_path, tiny_onnx, capsys):
    model, golden = tiny_onnx
    y = np.load(golden / "outputs.npz")["y"]
    np.savez(golden / "outputs.npz", y=y + 0.01)  # the engine is right; the "golden" is off by 1e-2
    code, out = _build(tmp_path, "--model", str(model), "--target", "cpu", "--golden", str(golden))
    assert code == 1
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
    assert not json.loads((out / "parity.json").read_text())["passed"]
    assert "FAILED" in (out / "report.md").read_text()
    assert "max_abs" in capsys.readouterr().err


def test_missing_model_file(tmp_path, capsys):
    code, _ = _build(tmp_path, "--model", str(tmp_path / "nope.onnx"), "--target", "cpu")
    assert code == 2 and "nope.onnx' does not exist" in capsys.readouterr().err
    _nothing_written(tmp_path)


def test_malformed_onnx(tmp_path, tiny_onnx, capsys):
    _, golden = tiny_onnx
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    code, _ = _build(tmp_path, "--model", str(bad), "--target", "cpu", "--golden", str(golden))
    err = capsys.readouterr().err
    assert code == 2 and "bad.onnx" in err and "ONNX" in err
    _nothing_written(tmp_path)


def test_invalid_onnx_graph_names_checker_message(tmp_path, tiny_onnx, capsys):
    import onnx

    model, golden = tiny_onnx
    proto = onnx.load(str(model))
    proto.graph.node[0].input[0] = "no_such_tensor"
    bad = tmp_path / "dangling.onnx"
    onnx.save(proto, str(bad))
    code, _ = _build(tmp_path, "--model", str(bad), "--target", "cpu", "--golden", str(golden))
    err = capsys.readouterr().err
    assert code == 2 and "dangling.onnx" in err and "onnx.checker" in err and "no_such_tensor" in err
    _nothing_written(tmp_path)


def test_unknown_target_lists_known(tmp_path, tiny_onnx, capsys):
    model, golden = tiny_onnx
    code, _ = _build(tmp_path, "--model", str(model), "--target", "cpuu", "--golden", str(golden))
    err = capsys.readouterr().err
    assert code == 2 and "unknown target 'cpuu'" in err and "did you mean 'cpu'" in err and re.search(r"known: .*\bcpu\b", err)
    _nothing_written(tmp_path)


def test_unsupported_precision(tmp_path, tiny_onnx, capsys):
    model, golden = tiny_onnx
    code, _ = _build(tmp_path, "--model", str(model), "--target", "cpu", "--precision", "int3", "--golden", str(golden))
    assert code == 2 and "unknown precision 'int3'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda g, x: np.savez(g / "inputs.npz", image=x), "graph has ['x'], the file has ['image']; missing ['x']"),
        (lambda g, x: np.savez(g / "inputs.npz", x=x[:, :2]), "golden input 'x'"),
        (lambda g, x: np.savez(g / "inputs.npz", x=x.astype(np.float64)), "dtype float64"),
    ],
    ids=["wrong-name", "wrong-shape", "wrong-dtype"],
)
def test_golden_not_matching_graph(tmp_path, tiny_onnx, capsys, mutate, expected):
    model, golden = tiny_onnx
    mutate(golden, np.load(golden / "inputs.npz")["x"])
    code, _ = _build(tmp_path, "--model", str(model), "--target", "cpu", "--golden", str(golden))
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "inputs.npz" in err, err
    _nothing_written(tmp_path)


def test_golden_output_name_mismatch(tmp_path, tiny_onnx, capsys):
    model, golden = tiny_onnx
    y = np.load(golden / "outputs.npz")["y"]
    np.savez(golden / "outputs.npz", logits=y)
    code, _ = _build(tmp_path, "--model", str(model), "--target", "cpu", "--golden", str(golden))
    err = capsys.readouterr().err
    assert code == 2 and "outputs.npz" in err and "['logits']" in err
    _nothing_written(tmp_path)


def test_spec_with_typo_key(tmp_path, capsys):
    text = (REPO / "models/digits-cnn.toml").read_text().replace("[[outputs]]\nname", "[[outputs]]\nnmae")
    p = tmp_path / "typo.toml"
    p.write_text(text)
    code, _ = _build(tmp_path, "--model", str(p), "--target", "cpu")
    err = capsys.readouterr().err
    assert code == 2 and "typo.toml" in err and "'nmae'" in err
    _nothing_written(tmp_path)


def test_onnx_without_golden_says_how(tmp_path, tiny_onnx, capsys, monkeypatch):
    model, _ = tiny_onnx
    monkeypatch.chdir(tmp_path)
    code = main(["build", "--model", str(model), "--target", "cpu"])
    assert code == 2 and "--golden DIR" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()


def test_targets_lists_cpu_runnable(capsys):
    assert main(["targets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("cpu "))
    cols = line.split()
    prec = next(i for i, c in enumerate(cols) if c.startswith("fp32"))
    assert cols[1] == "onnxruntime" and cols[prec + 1 : prec + 3] == ["yes", "yes"]


def test_python_dash_m_entry_point_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "compiler", "build", "--model", "x.onnx", "--target", "cpu"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "x.onnx" in r.stderr


def test_onnx_with_external_data_builds(tmp_path, tiny_onnx, capsys):
    import onnx

    model, golden = tiny_onnx
    ext_dir = tmp_path / "ext"
    ext_dir.mkdir()
    proto = onnx.load(str(model))
    onnx.save(proto, str(ext_dir / "m.onnx"), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    assert (ext_dir / "m.onnx.data").stat().st_size > 0
    code, out = _build(tmp_path, "--model", str(ext_dir / "m.onnx"), "--target", "cpu", "--golden", str(golden))
    assert code == 0
    (ext_dir / "m.onnx.data").unlink()  # without its weights the file is bad input, named
    code = main(["build", "--quiet", "--out", str(tmp_path / "out2"), "--model", str(ext_dir / "m.onnx"),
                 "--target", "cpu", "--golden", str(golden)])
    err = capsys.readouterr().err
    assert code == 2 and "m.onnx" in err and not (tmp_path / "out2").exists()


def test_scalar_graph_input_builds(tmp_path, capsys):
    """A 0-d graph input (one sample, no batch axis) builds and verifies; the sample count is 1."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    model = helper.make_model(helper.make_graph([helper.make_node("Mul", ["x", "s"], ["y"])], "g", [x, s], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "scalar.onnx"))
    golden = tmp_path / "g"
    golden.mkdir()
    xs, ss = np.array([1.0, 2.0, 3.0], np.float32), np.array(2.0, np.float32)
    np.savez(golden / "inputs.npz", x=xs, s=ss)
    np.savez(golden / "outputs.npz", y=xs * ss)
    code, out = _build(tmp_path, "--model", str(tmp_path / "scalar.onnx"), "--target", "cpu", "--golden", str(golden))
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["golden"]["samples"] == 3 and manifest["interface"]["inputs"][1] == {"name": "s", "dtype": "float32", "shape": []}
    assert main(["verify", "--artifact", str(out)]) == 0


def test_a_mistyped_calib_factory_is_named_before_the_export(tmp_path, capsys):
    """Found by a new user: `--calib pkg.mod:typo` was reported only after the model was exported."""
    out = tmp_path / "out"
    code = main(["build", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8", "--no-cache",
                 "--calib", "models.unseen_mobile:calibx", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "data factory 'models.unseen_mobile:calibx'" in err and "has no attribute 'calibx'" in err
    assert "export" not in err  # the export stage never started


def test_the_manifest_does_not_record_where_the_model_was(tmp_path, tiny_onnx):
    """The manifest is inside the content hash: the same model and golden set from another
    directory (another machine, another checkout) give the same manifest."""
    import shutil

    model, golden = tiny_onnx
    manifests = []
    for where in ("a", "b/c"):
        d = tmp_path / where
        d.mkdir(parents=True)
        shutil.copy(model, d / model.name)
        shutil.copytree(golden, d / "golden")
        out = tmp_path / f"out-{where.replace('/', '-')}"
        assert main(["build", "--quiet", "--no-cache", "--model", str(d / model.name), "--target", "cpu",
                     "--golden", str(d / "golden"), "--out", str(out)]) == 0
        manifests.append((out / "manifest.json").read_text())
    assert manifests[0] == manifests[1]
    assert str(tmp_path) not in manifests[0]
    assert json.loads(manifests[0])["model"]["source"] == model.name
