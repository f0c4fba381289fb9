"""`python -m compiler matrix`: the acceptance fleet (digits-cnn cpu/intel × fp32/int8 +
efficientnet-lite0 cpu fp32) built with two jobs, verified, reported in JUnit; again from the
cache; a failing row among passing ones; a bad fleet file; an interrupted matrix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.cli import main
from tests.compiler.fleet import ray_processes
from tests.conftest import REPO

FLEET5 = """
[[build]]
model = "digits-cnn"
targets = ["cpu", "intel"]
precisions = ["fp32", "int8"]

[[build]]
model = "efficientnet-lite0"
targets = ["cpu"]
precisions = ["fp32"]
"""


def _content(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("build.json", "report.html")}


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    (root / "fleet.toml").write_text(FLEET5)
    cache = root / "cache"
    code = main(["matrix", str(root / "fleet.toml"), "--out", str(root / "m1"), "--jobs", "2", "--junit",
                 str(root / "junit.xml"), "--cache", str(cache), "--quiet"])
    return root, code


def test_five_rows_with_two_jobs_pass_verify_and_speak_junit(five):
    root, code = five
    assert code == 0
    s = json.loads((root / "m1" / "summary.json").read_text())
    assert s["rows"] == 5 and s["rows_passed"] == 5 and s["passed"] is True
    for r in s["results"]:
        assert Path(r["out"]) == root / "m1" / r["target"] / r["model"] / r["precision"]
        assert main(["verify", "--artifact", r["out"]]) == 0
    tree = ET.parse(root / "junit.xml")
    cases = tree.getroot().findall("./testsuite/testcase")
    assert len(cases) == 5 and {s.get("name") for s in tree.getroot().findall("testsuite")} == {"cpu", "intel"}
    assert all(c.find("failure") is None for c in cases)
    props = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    assert all(float(p["p50_ms"]) > 0 and float(p["build_seconds"]) > 0 for p in props.values())
    md = (root / "m1" / "summary.md").read_text()
    assert "5/5 rows passed" in md and md.count("✅ passed") == 5
    html = (root / "m1" / "index.html").read_text()
    assert html.count('<a href="') == 5 and "cpu/digits-cnn/int8/report" in html


def test_the_same_fleet_again_is_served_from_the_cache(five, tmp_path):
    root, _ = five
    assert main(["matrix", str(root / "fleet.toml"), "--out", str(tmp_path / "m2"), "--jobs", "2",
                 "--cache", str(root / "cache"), "--quiet"]) == 0
    s = json.loads((tmp_path / "m2" / "summary.json").read_text())
    for r in s["results"]:
        assert set(r["cache"].values()) == {"hit"}, (r["id"], r["cache"])
        assert _content(Path(r["out"])) == _content(root / "m1" / r["target"] / r["model"] / r["precision"])


def test_the_same_fleet_on_ray_local_gives_the_same_artifacts(five, tmp_path):
    pytest.importorskip("ray")
    root, _ = five
    assert main(["matrix", str(root / "fleet.toml"), "--out", str(tmp_path / "m3"), "--ray", "local", "--jobs", "2",
                 "--cache", str(root / "cache"), "--quiet"]) == 0
    s = json.loads((tmp_path / "m3" / "summary.json").read_text())
    assert s["executor"] == "ray local" and s["rows_passed"] == 5
    for r in s["results"]:
        assert _content(Path(r["out"])) == _content(root / "m1" / r["target"] / r["model"] / r["precision"])
    assert ray_processes() == []  # nothing left running


def _nan_model(tmp_path: Path) -> tuple[Path, Path]:
    """Sqrt of a negative input: NaN, where golden claims 0 — a correct engine fails parity."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    m = helper.make_model(helper.make_graph([helper.make_node("Sqrt", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "nan.onnx"))
    (tmp_path / "g").mkdir()
    np.savez(tmp_path / "g" / "inputs.npz", x=np.array([-1.0, 4.0], np.float32))
    np.savez(tmp_path / "g" / "outputs.npz", y=np.array([0.0, 2.0], np.float32))
    return tmp_path / "nan.onnx", tmp_path / "g"


def test_one_failing_row_fails_the_matrix_and_no_other_row(tmp_path, capsys):
    model, golden = _nan_model(tmp_path)
    (tmp_path / "fleet.toml").write_text(FLEET5.split("[[build]]")[0] + textwrap.dedent(f"""
        [[build]]
        model = "digits-cnn"
        targets = ["cpu"]
        precisions = ["fp32", "fp16"]

        [[build]]
        model = "{model.name}"
        golden = "g"
        targets = ["cpu"]
        precisions = ["fp32"]
    """))
    code = main(["matrix", str(tmp_path / "fleet.toml"), "--out", str(tmp_path / "m"), "--jobs", "2",
                 "--junit", str(tmp_path / "j.xml"), "--quiet"])
    assert code == 1
    assert "cpu/nan/fp32 (exit 1)" in capsys.readouterr().err
    failures = ET.parse(tmp_path / "j.xml").getroot().findall(".//failure")
    assert len(failures) == 1 and "non-finite" in failures[0].text
    for precision in ("fp32", "fp16"):
        assert main(["verify", "--artifact", str(tmp_path / "m" / "cpu" / "digits-cnn" / precision)]) == 0
    assert json.loads((tmp_path / "m" / "cpu" / "nan" / "fp32" / "manifest.json").read_text())["status"] == "failed"


def test_an_allowed_failure_does_not_fail_the_matrix(tmp_path):
    _nan_model(tmp_path)
    (tmp_path / "fleet.toml").write_text('[[build]]\nmodel = "nan.onnx"\ngolden = "g"\ntargets = ["cpu"]\n'
                                         'precisions = ["fp32"]\nallow_fail = true\n')
    assert main(["matrix", str(tmp_path / "fleet.toml"), "--out", str(tmp_path / "m"), "--jobs", "1", "--quiet"]) == 0
    assert "(allowed)" in (tmp_path / "m" / "summary.md").read_text()


@pytest.mark.parametrize("text, says", [
    ('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu"]\nprecision = ["fp32"]\n',
     ":4: [[build]] #1 key 'precision': unknown key (did you mean 'precisions'?)"),
    ('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu"]\nprecisions = ["fp32"]\n\n[[build]]\nmodel = "digits-cnn"\n'
     'targets = ["cpu", "itnel"]\nprecisions = ["fp32"]\n',
     ":8: [[build]] #2 key 'targets': unknown target 'itnel' (did you mean 'intel'?)"),
    ('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu"]\nprecisions = ["fp64"]\n',
     ":4: [[build]] #1 key 'precisions': unknown precision 'fp64'"),
    ('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu"]\nprecisions = ["fp32", "fp32"]\n', "row cpu/digits-cnn/fp32 is already built"),
    ('[[build]]\nmodel = "digits-cnn"\ntargets = "cpu"\nprecisions = ["fp32"]\n',
     ":3: [[build]] #1 key 'targets': must be a non-empty list"),
    ('[[build]]\nmodel = "digits-cnn"\n', ":1: [[build]] #1: missing required key 'targets'"),
    ("[build\n", "not valid TOML"),
])
def test_a_bad_fleet_file_is_exit_2_naming_line_and_key(tmp_path, capsys, text, says):
    (tmp_path / "fleet.toml").write_text(text)
    assert main(["matrix", str(tmp_path / "fleet.toml"), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fleet.toml" in err and says in err
    assert not (tmp_path / "m").exists()


def test_ctrl_c_stops_the_matrix_keeps_installed_rows_and_exits_130(tmp_path):
    (tmp_path / "fleet.toml").write_text('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu", "intel"]\n'
                                         'precisions = ["fp32", "int8", "fp16"]\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "matrix", str(tmp_path / "fleet.toml"), "--out",
                             str(tmp_path / "m"), "--jobs", "2"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.lstrip().startswith("passed "):  # one row installed, others running or queued
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
            break
    err = "".join(seen) + proc.communicate(timeout=300)[1]
    assert proc.returncode == 130, err
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert s["interrupted"] is True and s["rows_passed"] >= 1
    for r in s["results"]:
        if r.get("code") == 0:
            assert main(["verify", "--artifact", r["out"]]) == 0
    leftovers = [p for p in (tmp_path / "m").rglob(".*") if p.name.startswith(".") and ".work-" in p.name or ".tmp-" in p.name]
    assert leftovers == []


# slow: ≈ 60 s; the cache-hit path is covered by test_the_same_fleet_again_is_served_from_the_cache
@pytest.mark.slow
def test_changing_one_models_weights_rebuilds_only_its_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = textwrap.dedent("""
        import torch
        def build():
            torch.manual_seed({seed})
            net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
            with torch.no_grad():
                net[0].bias[0] += {delta}
            return net, (torch.randn(2, 4),)
    """)
    (tmp_path / "fleet_a.py").write_text(src.format(seed=0, delta=0.0))
    (tmp_path / "fleet_b.py").write_text(src.format(seed=1, delta=0.0))
    (tmp_path / "fleet.toml").write_text('[[build]]\nmodel = "fleet_a:build"\ntargets = ["cpu", "intel"]\nprecisions = ["fp32"]\n\n'
                                         '[[build]]\nmodel = "fleet_b:build"\ntargets = ["cpu", "intel"]\nprecisions = ["fp32"]\n')
    args = [sys.executable, "-m", "compiler", "matrix", "fleet.toml", "--out", "m", "--jobs", "2", "--cache",
            str(tmp_path / "cache"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}

    def matrix() -> int:  # a process per run, as CI runs it (a module imported once is not re-read)
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600).returncode

    assert matrix() == 0
    assert matrix() == 0
    again = {r["id"]: r["cache"] for r in json.loads((tmp_path / "m" / "summary.json").read_text())["results"]}
    assert all(set(c.values()) == {"hit"} for c in again.values()), again  # an unchanged matrix rebuilds nothing
    (tmp_path / "fleet_b.py").write_text(src.format(seed=1, delta=0.25))  # one weight of one model
    import shutil

    shutil.rmtree(tmp_path / "golden" / "fleet_b")  # its reference changes with it: the matrix makes it anew
    assert matrix() == 0
    after = {r["id"]: r["cache"] for r in json.loads((tmp_path / "m" / "summary.json").read_text())["results"]}
    assert set(after) == {"cpu/fleet_a/fp32", "intel/fleet_a/fp32", "cpu/fleet_b/fp32", "intel/fleet_b/fp32"}
    for row, stages in after.items():
        if "fleet_a" in row:
            assert set(stages.values()) == {"hit"}, (row, stages)
    # fleet_b was exported again — once: its other row waited for that entry (the stage's claim)
    assert sorted(after[f"{t}/fleet_b/fp32"]["export"] for t in ("cpu", "intel")) == ["hit", "miss"], after


def test_a_worker_killed_mid_row_is_retried_and_nothing_partial_is_installed(tmp_path):
    (tmp_path / "fleet.toml").write_text('[[build]]\nmodel = "digits-cnn"\ntargets = ["cpu", "intel"]\nprecisions = ["fp32", "int8"]\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "matrix", str(tmp_path / "fleet.toml"), "--out",
                             str(tmp_path / "m"), "--jobs", "2"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    killed = False
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if not killed and line.lstrip().startswith("start "):
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            workers = [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")]
            if workers:
                os.kill(int(workers[0]), signal.SIGKILL)
                killed = True
    err = "".join(seen) + proc.communicate(timeout=600)[1]
    assert killed, err
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    for r in s["results"]:  # each row passed after its retry, or is reported failed — never half-installed
        if r.get("code") == 0:
            assert main(["verify", "--artifact", r["out"]]) == 0
        else:
            assert "died" in r["message"]
    assert proc.returncode in (0, 1), err
