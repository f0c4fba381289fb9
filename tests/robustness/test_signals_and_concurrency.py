"""Kills at every build stage, concurrent builds of one output, relocatable artifacts.

A real `python -m compiler build` runs in a subprocess; when its progress line for a stage
appears on stderr, the signal is sent. Whatever happens, the output path holds a complete,
verifiable artifact — the previous one, or the new one if the build won the race — and the
process's scratch (TMPDIR included) is gone after SIGTERM/SIGINT, or removed by the next run
after SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import REPO

STAGES = ["frontend", "passes", "precision", "compile"]


def _env(tmpdir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}


def _build_cmd(out: Path, precision: str = "int8") -> list[str]:
    return [sys.executable, "-m", "compiler", "build", "--model", "digits-cnn", "--target", "cpu",
            "--precision", precision, "--out", str(out)]


def _signal_at(stage: str, sig: int, out: Path, tmpdir: Path) -> tuple[int, str]:
    proc = subprocess.Popen(_build_cmd(out), cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=_env(tmpdir))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"» {stage}"):
            proc.send_signal(sig)
            break
    rest = proc.communicate(timeout=600)[1]
    return proc.returncode, "".join(seen) + rest


def _scratch_left(tmpdir: Path) -> list[str]:
    # onnxruntime's telemetry file `.ses` included: a build turns its telemetry off
    return sorted(p.name for p in tmpdir.iterdir())


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """A passed fp32 artifact: what every interrupted int8 rebuild must leave in place."""
    out = tmp_path_factory.mktemp("prev") / "digits"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "fp32", "--out", str(out)]) == 0
    return out


def _fresh(previous: Path, tmp_path: Path) -> Path:
    out = tmp_path / "art" / "digits"
    shutil.copytree(previous, out)
    return out


def _holds_valid_artifact(out: Path) -> str:
    assert main(["verify", "--artifact", str(out)]) == 0
    return json.loads((out / "manifest.json").read_text())["precision"]


# Every stage meets each signal once in the default run (≈ 10 s a case); the other half is slow.
_TERMINATE = [pytest.param(sig, stage, id=f"{sig.name}-{stage}",
                           marks=() if (sig is signal.SIGTERM) == (stage in ("precision", "compile")) else pytest.mark.slow)
              for sig in (signal.SIGTERM, signal.SIGINT) for stage in STAGES]


@pytest.mark.parametrize("sig, stage", _TERMINATE)
def test_terminate_at_each_stage_is_clean(previous, tmp_path, capsys, stage, sig):
    out = _fresh(previous, tmp_path)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    code, err = _signal_at(stage, sig, out, scratch)
    if code == 0:  # the build finished before the signal arrived (compile of a tiny model is fast)
        assert stage == "compile", err
        assert _holds_valid_artifact(out) == "int8"
    else:
        assert code == 128 + sig, err
        assert "interrupted" in err and "Traceback" not in err
        assert "falling back to the legacy exporter" not in err  # the interrupt was not swallowed
        assert _holds_valid_artifact(out) == "fp32"
    assert _leftovers(out) == [] and _scratch_left(scratch) == []


# the stages whose kill leaves the most behind (scratch of a quantizer, a half-written engine) run
# by default; frontend and passes (≈ 20 s each) in the slow run
@pytest.mark.parametrize("stage", [pytest.param(s, marks=() if s in ("precision", "compile") else pytest.mark.slow)
                                   for s in STAGES])
def test_sigkill_at_each_stage_leaves_a_valid_artifact_and_the_next_run_cleans(previous, tmp_path, stage):
    out = _fresh(previous, tmp_path)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    code, err = _signal_at(stage, signal.SIGKILL, out, scratch)
    assert code in (-signal.SIGKILL, 0), err
    assert _holds_valid_artifact(out) in ("fp32", "int8")
    assert _scratch_left(scratch) == []  # every tempfile of the build lives beside the output
    # the next run of the same output removes what the killed one left
    r = subprocess.run(_build_cmd(out, "fp32"), cwd=REPO, capture_output=True, text=True, env=_env(scratch), timeout=600)
    assert r.returncode == 0, r.stderr
    assert _leftovers(out) == [] and _holds_valid_artifact(out) == "fp32"


def test_two_concurrent_builds_of_one_output_both_end_cleanly(tmp_path):
    out = tmp_path / "art" / "digits"
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    procs = [subprocess.Popen(_build_cmd(out, "fp32"), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=_env(scratch)) for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert any("waiting for another run writing" in e for e in errs)
    assert _holds_valid_artifact(out) == "fp32"
    assert _leftovers(out) == [] and sorted(p.name for p in out.parent.iterdir()) == ["digits"]
    assert _scratch_left(scratch) == []


def test_artifact_verifies_from_any_directory_after_move_and_copy(previous, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "deep" / "a"
    shutil.copytree(previous, tmp_path / "orig")
    moved.parent.mkdir(parents=True)
    (tmp_path / "orig").rename(moved)
    monkeypatch.chdir("/")
    assert main(["verify", "--artifact", str(moved)]) == 0
    monkeypatch.chdir(moved.parent)
    assert main(["verify", "--artifact", "a"]) == 0
    copied = tmp_path / "copy"
    shutil.copytree(moved, copied)
    assert main(["verify", "--artifact", str(copied)]) == 0
    assert main(["bench", "--artifact", str(copied), "--iters", "2", "--warmup", "0"]) == 0
    text = (copied / "manifest.json").read_text()
    assert str(REPO) not in text and str(tmp_path) not in text  # no absolute paths in the content


def test_a_signal_during_or_after_the_install_does_not_undo_it(tmp_path, monkeypatch):
    """The install is the commit point: SIGINT while the directory is swapped in waits for the
    swap, and afterwards is only reported — so exit 130 always means "nothing installed"."""
    from compiler import interrupts
    from compiler.artifact import slot as artifacts

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    real_replace = artifacts.replace_dir

    def interrupted_replace(src, final):
        os.kill(os.getpid(), signal.SIGINT)  # lands mid-install: recorded, not raised
        assert interrupts.pending()
        real_replace(src, final)

    monkeypatch.setattr(artifacts, "replace_dir", interrupted_replace)
    previous = interrupts.install()
    try:
        with artifacts.OutputSlot(tmp_path / "out") as slot:
            staging = slot.staging()
            (staging / "manifest.json").write_text("{}")
            slot.install(staging)
            interrupts.check()  # committed: does not raise
        assert interrupts.late() and (tmp_path / "out" / "manifest.json").exists()
    finally:
        interrupts.restore(previous)
    # a swap that fails raises its own error; the signal stays pending for the CLI to report
    previous = interrupts.install()
    try:
        with pytest.raises(OSError, match="swap failed"):
            with interrupts.committing():
                os.kill(os.getpid(), signal.SIGINT)
                raise OSError("swap failed")
        assert interrupts.pending() and not interrupts.late()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.restore(previous)


def test_a_signal_after_the_program_has_its_exit_status_does_not_kill_it(capsys):
    """`python -m compiler` keeps its handler to the end: a SIGINT between main's return and the
    interpreter's exit (the default handler would end the process with -2 after a complete
    install) is recorded, not raised."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    from compiler import cli, interrupts

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main(["passes"], program=True) == 0
        os.kill(os.getpid(), signal.SIGINT)  # nothing raised: the run is over
        assert interrupts.pending()
    finally:
        interrupts.restore(before)
