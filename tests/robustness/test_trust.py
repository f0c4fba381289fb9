"""Trust, round 2: the README's contracts under the inputs and faults a user produces.

One test (or one parametrized family) per row of the issue's table, each a one-line repro: it
failed on the code before the fix. Row 16 (`best` with no passing candidate) lives in
test_parity_failures.py; row 18 (apple builds byte-identical) in test_reproducible.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.cli import main
from compiler.profile import known_profiles, load_profile
from targets import BACKENDS
from tests.conftest import REPO, make_tiny_onnx


def _strict(path: Path) -> dict:
    def refuse(c):
        raise AssertionError(f"non-standard JSON constant {c} in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _env(tmpdir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def _run(args: list[str], cwd: Path = REPO, tmpdir: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(tmpdir), timeout=900, **kw)


def _one_node(tmp: Path, name: str, node: onnx.NodeProto, x: np.ndarray, y: np.ndarray,
              inits: list[onnx.TensorProto] = (), ir_version: int | None = 8, opset: int | None = 17) -> tuple[Path, Path]:
    """A one-node .onnx and its golden set (the reference outputs given, not computed)."""
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))
    yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y.shape))
    kw = {} if opset is None else {"opset_imports": [helper.make_opsetid("", opset)]}
    model = helper.make_model(helper.make_graph([node], name, [xi], [yi], list(inits)), **kw)
    if ir_version is not None:
        model.ir_version = ir_version
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    golden = tmp / f"golden-{name}"
    golden.mkdir()
    np.savez(golden / "inputs.npz", x=x)
    np.savez(golden / "outputs.npz", y=y)
    return path, golden


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The tiny .onnx, its golden set and a passed cpu artifact of it."""
    root = tmp_path_factory.mktemp("tiny")
    model, golden = make_tiny_onnx(root)
    art = root / "art"
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(art)]) == 0
    return model, golden, art


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _copy_art(tiny, tmp_path: Path) -> Path:
    art = tmp_path / "art"
    shutil.copytree(tiny[2], art)
    return art


# --- 1: a signal while `best` builds its later candidates ------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_1_a_signal_during_best_candidates_stops_it_and_keeps_the_previous_output(tiny, tmp_path, sig):
    out = tmp_path / "out"
    shutil.copytree(tiny[2], out)
    before = _files(out)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "build", "--target", "cpu", "--precision", "best",
                             "--model", "digits-cnn", "--out", str(out)], cwd=REPO, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=_env(tmpdir))
    seen = []
    for line in proc.stderr:  # the first candidate is done (written to scratch) when the second starts
        seen.append(line)
        if line.startswith("» best: candidate fp16"):
            proc.send_signal(sig)
            break
    err = "".join(seen) + proc.communicate(timeout=600)[1]
    assert proc.returncode == 128 + sig, err
    assert "arrived after the output was installed" not in err and "nothing was installed" in err
    assert _files(out) == before  # the previous artifact, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tmpdir"] and list(tmpdir.iterdir()) == []


# --- 2: a model written by onnx.helper.make_model (IR 14, opset 28) ---------------------------
def _buildable_targets() -> list[str]:
    return [t for t in known_profiles() if load_profile(t).backend in BACKENDS]


@pytest.mark.parametrize("target", _buildable_targets())
def test_2_a_model_from_make_model_builds_on_every_target(tmp_path, capsys, target):
    profile = load_profile(target)
    avail = BACKENDS[profile.backend]().available(profile)
    if not avail.can_compile:
        pytest.skip(f"{target} cannot compile here: {avail.reason}")
    x = np.abs(np.random.default_rng(0).standard_normal((2, 3))).astype(np.float32) + 0.1
    model, golden = _one_node(tmp_path, "sqrt", helper.make_node("Sqrt", ["x"], ["y"]), x, np.sqrt(x),
                              ir_version=None, opset=None)
    assert onnx.load(str(model)).ir_version == 14  # what onnx 1.23 writes
    code = main(["build", "--target", target, "--precision", "fp32", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "IR version 14 → 13" in err and "opset 28 → 26" in err


def test_2_a_graph_that_needs_a_newer_ir_is_refused_naming_why(tmp_path, capsys):
    x = np.ones((2, 3), np.float32)
    cast = helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT6E2M3)
    back = helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    hi = helper.make_tensor_value_info("h", TensorProto.FLOAT6E2M3, [2, 3])
    m = helper.make_model(helper.make_graph([cast, back], "g", [xi], [yi], value_info=[hi]),
                          opset_imports=[helper.make_opsetid("", 25)])
    onnx.save(m, str(tmp_path / "f6.onnx"))
    (tmp_path / "g").mkdir()
    np.savez(tmp_path / "g" / "inputs.npz", x=x)
    np.savez(tmp_path / "g" / "outputs.npz", y=x)
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(tmp_path / "f6.onnx"), "--golden", str(tmp_path / "g"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "needs ONNX IR version 14" in err and "FLOAT6E2M3" in err and "'h'" in err
    assert not (tmp_path / "out").exists()


def test_2_onnxruntime_reads_exactly_what_the_frontend_stamps():
    """MAX_IR_VERSION / MAX_OPSET are facts about the pinned ORT: checked, so an upgrade shows."""
    import onnxruntime as ort

    from compiler.onnx_file import MAX_IR_VERSION, MAX_OPSET

    def loads(ir_version: int, opset: int) -> bool:
        xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [xi],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                              opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = ir_version
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            return True
        except Exception:  # noqa: BLE001
            return False

    assert loads(MAX_IR_VERSION, MAX_OPSET)
    assert not loads(MAX_IR_VERSION + 1, MAX_OPSET) and not loads(MAX_IR_VERSION, MAX_OPSET + 1)


# --- 3: an engine whose output is ±Inf --------------------------------------------------------
def test_3_an_infinite_engine_output_is_a_parity_failure_with_strict_json(tmp_path, capsys):
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    w = numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "w")
    model, golden = _one_node(tmp_path, "div", helper.make_node("Div", ["x", "w"], ["y"]), x,
                              np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), inits=[w])
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "non-finite" in err and "internal error" not in err
    parity = _strict(out / "parity.json")
    assert parity["passed"] is False and parity["outputs"]["y"]["snr_db"] == -200.0
    assert _strict(out / "manifest.json")["status"] == "failed"


@pytest.mark.parametrize("ref, got", [
    (np.array([1.0, 2.0]), np.array([np.inf, 2.0])),
    (np.array([1.0, 2.0]), np.array([-np.inf, np.nan])),
    (np.array([0.0, 0.0]), np.array([np.inf, 0.0])),
    (np.zeros((2, 3)), np.zeros((2, 3))),
    (np.zeros((0, 4)), np.zeros((0, 4))),
    (np.array(3.0), np.array(np.inf)),
    (np.array([1e308, 1e308]), np.array([-1e308, 1e308])),
])
def test_3_no_metric_raises_on_inf_nan_zero_or_empty(ref, got):
    from compiler.tolerances import Tolerance
    from compiler.verify import compare, cosine, snr_db, topk_agreement

    for fn in (cosine, snr_db):
        v = fn(ref, got)
        assert isinstance(v, float)
    topk_agreement(ref.reshape(1, -1) if ref.ndim < 2 else ref, got.reshape(1, -1) if got.ndim < 2 else got)
    r = compare("y", ref, got, Tolerance(max_abs=1e-4, cosine=0.99, snr_db=20.0))
    finite = np.all(np.isfinite(got))
    assert r.passed == (finite and np.array_equal(ref, got))


# --- 4 / 5: artifact integrity and a malformed manifest -------------------------------------
def _failed_artifact(tmp_path: Path) -> Path:
    x = np.array([[1.0, 2.0]], np.float32)
    model, golden = _one_node(tmp_path, "neg", helper.make_node("Neg", ["x"], ["y"]), x, x * -1.0001)
    out = tmp_path / "failed"
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(out),
                 "--precision", "fp32"]) == 1
    return out


def test_4_an_edited_manifest_is_refused(tmp_path, capsys):
    art = _failed_artifact(tmp_path)
    capsys.readouterr()
    assert main(["verify", "--artifact", str(art)]) == 1
    m = json.loads((art / "manifest.json").read_text())
    m["precision"] = "int8"  # looser tolerances: a failed artifact would "pass"
    m["status"] = "passed"
    (art / "manifest.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["verify", "--artifact", str(art)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "edited after the build" in err


@pytest.mark.parametrize("fault", ["added", "edited", "removed", "content_sha256"])
def test_4_an_added_edited_or_missing_file_is_refused_naming_it(tiny, tmp_path, capsys, fault):
    art = _copy_art(tiny, tmp_path)
    if fault == "added":
        (art / "extra.onnx").write_bytes(b"x")
        named = "extra.onnx"
    elif fault == "edited":
        (art / "report.md").write_text("edited")
        named = "report.md"
    elif fault == "removed":
        (art / "parity.json").unlink()
        named = "parity.json"
    else:
        m = json.loads((art / "manifest.json").read_text())
        m["content_sha256"] = "0" * 64
        (art / "manifest.json").write_text(json.dumps(m))
        named = "manifest.json"
    assert main(["verify", "--artifact", str(art)]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


@pytest.mark.parametrize("interface", [
    [], {"inputs": 3, "outputs": []}, {"inputs": [{"dtype": "float32", "shape": [1]}], "outputs": []},
    {"inputs": [{"name": "x", "dtype": "nonsense", "shape": [1]}], "outputs": []},
    {"inputs": [{"name": "x", "dtype": "float32", "shape": "big"}], "outputs": []},
    {"inputs": [{"name": "x", "shape": [1]}], "outputs": []},
    {"inputs": []},
], ids=["list", "inputs-int", "no-name", "bad-dtype", "bad-shape", "no-dtype", "no-outputs"])
def test_5_a_malformed_interface_is_refused_naming_the_key(tiny, tmp_path, capsys, interface):
    art = _copy_art(tiny, tmp_path)
    m = json.loads((art / "manifest.json").read_text())
    m["interface"] = interface
    from compiler.artifact.integrity import seal

    seal(m)  # as a forger would: the interface check itself must refuse it
    (art / "manifest.json").write_text(json.dumps(m))
    assert main(["verify", "--artifact", str(art)]) == 2
    err = capsys.readouterr().err
    assert "interface" in err and "Traceback" not in err


# --- 6: an .npz member that is not a .npy array -----------------------------------------------
def _npz_with_text_member(path: Path, **arrays) -> Path:
    """An .npz whose member named like the graph's tensor (no .npy suffix) holds text: np.load
    hands it back as bytes."""
    name = next(iter(arrays))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, b"not an array")
    return path


@pytest.mark.parametrize("where", ["golden-inputs", "golden-outputs", "golden-cli-inputs", "calib"])
def test_6_an_npz_member_that_is_not_an_array_is_named(tiny, tmp_path, capsys, where):
    model, golden, _ = tiny
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    x = np.load(golden / "inputs.npz")["x"]
    if where == "golden-inputs":
        _npz_with_text_member(g / "inputs.npz", x=x)
        argv = ["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(tmp_path / "o")]
    elif where == "golden-outputs":
        _npz_with_text_member(g / "outputs.npz", y=np.load(golden / "outputs.npz")["y"])
        argv = ["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(tmp_path / "o")]
    elif where == "golden-cli-inputs":
        argv = ["golden", "--model", "tests.conftest:tiny_factory", "--out", str(tmp_path / "gold"),
                "--inputs", str(_npz_with_text_member(tmp_path / "in.npz", x=x))]
    else:
        argv = ["build", "--quiet", "--target", "cpu", "--precision", "int8", "--model", str(model), "--golden", str(g),
                "--out", str(tmp_path / "o"), "--calib", str(_npz_with_text_member(tmp_path / "calib.npz", x=x))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "member 'x'" in err or "member 'y'" in err
    assert "is not a .npy array" in err and ".npz" in err and "Traceback" not in err


# --- 7 / 8: external data ---------------------------------------------------------------------
def _external(tmp: Path, edit=None, big_unused: int = 0, big_used: int = 0) -> tuple[Path, Path]:
    x = np.ones((1, 4), np.float32)
    w = numpy_helper.from_array(np.full((4,), 2.0, np.float32), "w")
    nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    inits = [w]
    if big_used:  # a huge weight a node reads (through a Shape, so golden stays tiny)
        nodes = [helper.make_node("Add", ["x", "w"], ["y0"]), helper.make_node("Shape", ["big"], ["s"], start=0, end=0),
                 helper.make_node("Identity", ["y0"], ["y"])]
    path, golden = _one_node(tmp, "ext", nodes[0], x, x + 2.0, inits)
    m = onnx.load(str(path))
    if big_used:
        del m.graph.node[:]
        m.graph.node.extend(nodes)
    onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data", size_threshold=0)
    m = onnx.load(str(path), load_external_data=False)
    if edit is not None:
        edit(m.graph.initializer[0])
    for n, size in (("big", big_unused), ("big", big_used)):
        if size:
            big = TensorProto(name=n, data_type=TensorProto.FLOAT, dims=[size // 4], data_location=TensorProto.EXTERNAL)
            big.external_data.add(key="location", value="big.data")
            m.graph.initializer.append(big)
            with open(tmp / "big.data", "wb") as f:
                f.truncate(size)  # sparse: costs no disk
    onnx.save(m, str(path))
    return path, golden


def _set(key: str, value: str):
    def edit(t: TensorProto) -> None:
        entries = {e.key: e for e in t.external_data}
        if key in entries:
            entries[key].value = value
        else:
            t.external_data.add(key=key, value=value)
    return edit


@pytest.mark.parametrize("edit, says", [
    (_set("length", "64"), "bytes 0–64 are declared but the file holds only 16"),
    (_set("offset", "100"), "offset 100 is past the end of the file (16 bytes)"),
    (_set("offset", "-4"), "offset -4 is negative"),
    (_set("length", "8"), "length 8 bytes, but [4] elements of its type need 16"),
], ids=["short", "offset-past-end", "negative-offset", "length-mismatch"])
def test_7_external_data_out_of_range_is_named(tmp_path, capsys, edit, says):
    model, golden = _external(tmp_path, edit)
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and "tensor 'w'" in err and "ext.data" in err


def test_8_an_unused_4_gb_initializer_is_never_read(tmp_path):
    model, golden = _external(tmp_path, big_unused=4 << 30)
    # the build runs as the only child of a fresh process, which reports the child's peak RSS
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stderr.write(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "compiler", "build", "--target", "cpu", "--model",
                        str(model), "--golden", str(golden), "--out", str(tmp_path / "o")],
                       cwd=REPO, capture_output=True, text=True, env=_env(), timeout=900)
    assert r.returncode == 0, r.stderr
    assert "dropped 1 initializer(s) no node reads (4096.0 MiB), without reading them" in r.stderr
    peak_kib = int(r.stdout.split()[-1])
    assert peak_kib < 3 << 20, f"peak RSS {peak_kib} KiB: the unused weight was read"


def test_8_weights_larger_than_memory_are_refused_before_reading(tmp_path, capsys):
    model, golden = _external(tmp_path, big_used=1 << 40)  # 1 TiB, sparse
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "needs 1024.0 GiB of weights in memory" in err and "Traceback" not in err


# --- 9: a streamed --calib iterator that fails ------------------------------------------------
@pytest.mark.parametrize("body, says", [
    ("def calib():\n    import numpy as np\n    yield {'x': np.zeros((2, 3, 6, 6), np.float32)}\n    raise OSError('disk gone')\n",
     "raised OSError while producing batch 1: disk gone"),
    ("def calib():\n    import numpy as np\n    yield {'x': np.zeros((2, 3, 6, 6), np.float32)}\n"
     "    yield {'x': np.zeros((2, 3, 5, 5), np.float32)}\n", "batch 1 differs from batch 0"),
], ids=["raises", "other-shape"])
def test_9_a_failing_calibration_iterator_is_named(tiny, tmp_path, capsys, monkeypatch, body, says):
    model, golden, _ = tiny
    module = f"calib_mod9_{tmp_path.name.replace('-', '_')}"  # a module name of its own per case
    (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["build", "--quiet", "--target", "cpu", "--precision", "int8", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "o"), "--calib", f"{module}:calib"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"'{module}:calib'" in err and says in err


# --- 10 / 11: bad tolerances, a bad golden set ------------------------------------------------
@pytest.mark.parametrize("line, key", [
    ("max_abs = nan", "max_abs"), ("max_abs = inf", "max_abs"), ("cosine = 2.0", "cosine"),
    ("max_abs = -1.0", "max_abs"), ("snr_db = -5.0", "snr_db"), ("topk_agreement = 1.5", "topk_agreement"),
    ("min_confidence = -0.1", "min_confidence"), ("k = 0", "k"),
])
def test_10_a_tolerance_that_gates_nothing_is_refused(tiny, tmp_path, capsys, line, key):
    model, golden, _ = tiny
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    (g / "tolerances.toml").write_text(f'[fp32.""]\n{line}\nreason = "test"\n')
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "tolerances.toml" in err and key in err and not (tmp_path / "o").exists()


def test_10_a_nan_max_drop_is_refused(tiny, tmp_path, capsys):
    model, golden, _ = tiny
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    (g / "tolerances.toml").write_text('[fp32."@metric"]\nmax_drop = nan\n')
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(tmp_path / "o")]) == 2
    assert "max_drop" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["inputs.npz", "outputs.npz"])
def test_11_a_golden_set_with_nan_is_bad_input(tiny, tmp_path, capsys, which):
    model, golden, _ = tiny
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    arrays = dict(np.load(golden / which))
    key = next(iter(arrays))
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] = np.nan
    np.savez(g / which, **arrays)
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "golden set" in err and which in err and "NaN" in err and not (tmp_path / "o").exists()


# --- 12: disk full ------------------------------------------------------------------------------
def test_12_disk_full_is_a_documented_exit_with_one_paragraph(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    try:
        r = _run(["build", "--quiet", "--target", "cpu", "--model", "digits-cnn", "--precision", "fp32",
                  "--out", str(mnt / "out")])
        assert r.returncode == 5, r.stderr
        assert "Traceback" not in r.stderr and "No space left on device" in r.stderr and "ENOSPC" in r.stderr
        assert str(mnt) in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in mnt.iterdir()) == []  # scratch removed, nothing installed
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# --- 13 / 14: --dump-ir and --out ownership ---------------------------------------------------
def test_13_dump_ir_never_writes_into_a_users_directory_or_a_golden_set(tiny, tmp_path, capsys):
    model, golden, _ = tiny
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    (g / "meta.json").write_text(json.dumps({"reference": "pytorch-eager-fp32"}))  # a golden set of ours
    snapshot = {p: p.read_bytes() for d in (mine, g) for p in d.iterdir()}
    for target_dir in (mine, g):
        code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden),
                     "--out", str(tmp_path / "o"), "--dump-ir", str(target_dir)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "refusing to replace" in err and str(target_dir) in err
    assert {p: p.read_bytes() for d in (mine, g) for p in d.iterdir()} == snapshot
    assert not (tmp_path / "o").exists()


def test_13_a_build_that_exits_2_leaves_no_dump_and_one_that_passes_installs_it(tiny, tmp_path, capsys):
    model, golden, _ = tiny
    dump = tmp_path / "dump"
    # exit 2 after the passes: int8 with calibration data whose layout differs from the model's
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros((2, 3, 5, 5), np.float32))
    code = main(["build", "--quiet", "--target", "cpu", "--precision", "int8", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "o"), "--dump-ir", str(dump), "--calib", str(bad)])
    assert code == 2, capsys.readouterr().err
    assert not dump.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".dump")] == []
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "o"), "--dump-ir", str(dump)]) == 0
    names = sorted(p.name for p in dump.iterdir())
    assert names[0] == "000_input.onnx" and "dump.json" in names
    # ours now: a second build replaces it
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "o"), "--dump-ir", str(dump)]) == 0


def test_14_out_inside_the_golden_set_is_refused(tiny, tmp_path, capsys):
    model, golden, _ = tiny
    g = tmp_path / "g"
    shutil.copytree(golden, g)
    before = sorted(p.name for p in g.iterdir())
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(g), "--out", str(g / "art")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "lies inside --golden" in err and sorted(p.name for p in g.iterdir()) == before


# --- 15 / 21: best on a static batch-2 factory, and what it prints ----------------------------
def test_15_best_on_a_factory_exported_at_batch_2_benchmarks_at_its_shapes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its golden set (made by the build itself) goes to ./golden/
    code = main(["build", "--target", "cpu", "--precision", "best", "--model", "tests.conftest:tiny_factory",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    best = _strict(tmp_path / "out" / "manifest.json")["best"]
    assert best["bench_shapes"] == "the engine's static input shapes"
    assert all(c["p50_ms"] is not None for c in best["candidates"] if c["passed"])
    # row 21: a candidate's scratch directory is never shown as the artifact
    artifact_lines = [ln for ln in err.splitlines() if "artifact:" in ln]
    assert artifact_lines == [f"  artifact: {tmp_path / 'out'}/ (best = {best['chosen']})"]
    assert "candidate fp32: passed" in err and ".work-" not in err


# --- 17: --from-artifact with nothing deferred ------------------------------------------------
def test_17_from_artifact_with_nothing_deferred_is_refused(tiny, tmp_path, capsys):
    art = _copy_art(tiny, tmp_path)
    before = _files(art)
    assert main(["build", "--quiet", "--target", "cpu", "--from-artifact", str(art)]) == 2
    assert "nothing is deferred" in capsys.readouterr().err
    assert _files(art) == before


# --- 19: nothing left in $TMPDIR ---------------------------------------------------------------
def test_19_a_build_leaves_nothing_in_tmpdir(tiny, tmp_path):
    model, golden, _ = tiny
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    r = _run(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(golden), "--out", str(tmp_path / "o")],
             tmpdir=tmpdir)
    assert r.returncode == 0, r.stderr
    r = _run(["verify", "--artifact", str(tmp_path / "o")], tmpdir=tmpdir)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmpdir.iterdir()) == []  # ORT's .ses included


def test_19_golden_from_a_pt2_leaves_nothing_in_tmpdir(tmp_path):
    import torch

    from tests.conftest import TinyNet

    ep = torch.export.export(TinyNet().eval(), (torch.randn(2, 3, 6, 6),))
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    np.savez(tmp_path / "in.npz", x=np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32))
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    r = _run(["golden", "--model", str(tmp_path / "m.pt2"), "--trust-pickle", "--inputs", str(tmp_path / "in.npz"),
              "--out", str(tmp_path / "g")], tmpdir=tmpdir)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmpdir.iterdir()) == []


# --- 20: --golden missing or a file -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_20_a_bad_golden_path_is_named(tiny, tmp_path, capsys, kind):
    model = tiny[0]
    path = tmp_path / "nope"
    if kind == "file":
        path.write_text("")
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(model), "--golden", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err
    assert ("does not exist" if kind == "missing" else "is a file") in err


# --- the paragraph below the table: a factory builds with one command --------------------------
def test_a_factory_without_a_golden_set_builds_in_one_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = tmp_path / "one_cmd_mod.py"
    pkg.write_text(textwrap.dedent("""
        import torch
        def build():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(4, 3)).eval(), (torch.randn(2, 4),)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["build", "--target", "cpu", "--model", "one_cmd_mod:build", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "no golden set at golden/one_cmd_mod" in err
    assert (tmp_path / "golden" / "one_cmd_mod" / "outputs.npz").is_file()
    assert _strict(tmp_path / "out" / "manifest.json")["status"] == "passed"
