"""OutputSlot: only our directories are replaced, the swap is atomic, leftovers are cleaned,
a failed result never replaces a passed one."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from compiler.artifact.files import file_table, sha256_file
from compiler.artifact.slot import OutputSlot, replace_dir
from compiler.errors import BadInput


def _artifact(path, status="passed", payload="x"):
    path.mkdir(parents=True)
    (path / "a.txt").write_text(payload)
    (path / "manifest.json").write_text(json.dumps({"schema": 2, "status": status, "files": []}))


def _write(slot, payload, failed=False):
    tmp = slot.staging()
    (tmp / "a.txt").write_text(payload)
    (tmp / "manifest.json").write_text(json.dumps({"schema": 2, "status": "failed" if failed else "passed", "files": []}))
    return slot.install(tmp, failed=failed)


def test_exception_leaves_nothing_and_keeps_previous(tmp_path):
    final = tmp_path / "out"
    with OutputSlot(final) as slot:
        _write(slot, "first")
    with pytest.raises(RuntimeError):
        with OutputSlot(final) as slot:
            (slot.staging() / "a.txt").write_text("half-written")
            raise RuntimeError("boom")
    assert (final / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dirs, no lock file left


def test_install_replaces_whole_directory(tmp_path):
    final = tmp_path / "out"
    with OutputSlot(final) as slot:
        _write(slot, "one")
        (final / "extra").write_text("from the first build")
    with OutputSlot(final) as slot:
        _write(slot, "two")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt", "manifest.json"]
    rows = file_table(final)
    assert rows == [{"path": "a.txt", "bytes": 3, "sha256": sha256_file(final / "a.txt")}]


@pytest.mark.parametrize("make", ["user_dir", "file", "golden_set"])
def test_refuses_what_is_not_ours_and_leaves_it_intact(tmp_path, make):
    target = tmp_path / "target"
    if make == "user_dir":
        target.mkdir()
        (target / "thesis.tex").write_text("years of work")
    elif make == "file":
        target.write_text("a file")
    else:
        target.mkdir()
        (target / "inputs.npz").write_bytes(b"")
        (target / "outputs.npz").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in ([target] if target.is_file() else target.iterdir())}
    with pytest.raises(BadInput, match="refusing to replace"):
        OutputSlot(target).check()
    with pytest.raises(BadInput, match="refusing to replace"):
        with OutputSlot(target):
            pass
    after = {p.name: p.read_bytes() for p in ([target] if target.is_file() else target.iterdir())}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_refuses_cwd_and_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad in (".", "/", str(tmp_path.parent)):
        with pytest.raises(BadInput):
            OutputSlot(type(tmp_path)(bad)).check()


def test_empty_directory_is_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    with OutputSlot(tmp_path / "out") as slot:
        _write(slot, "new")
    assert (tmp_path / "out" / "a.txt").read_text() == "new"


def test_failed_goes_beside_a_passed_artifact_and_a_pass_clears_it(tmp_path):
    final = tmp_path / "out"
    with OutputSlot(final) as slot:
        _write(slot, "good")
    with OutputSlot(final) as slot:
        where = _write(slot, "bad", failed=True)
    assert where == tmp_path / "out.failed"
    assert (final / "a.txt").read_text() == "good" and (where / "a.txt").read_text() == "bad"
    with OutputSlot(final) as slot:
        _write(slot, "good again")
    assert not where.exists() and (final / "a.txt").read_text() == "good again"


def test_failed_with_nothing_passed_goes_to_the_path(tmp_path):
    with OutputSlot(tmp_path / "out") as slot:
        assert _write(slot, "bad", failed=True) == tmp_path / "out"


def test_next_run_cleans_leftovers_and_restores_an_aside_copy(tmp_path):
    final = tmp_path / "out"
    # What a run SIGKILLed mid-way leaves: staging, work dirs, and (without RENAME_EXCHANGE)
    # the previous artifact renamed aside with nothing at the path.
    _artifact(tmp_path / f".out.old-{os.getpid() + 1}", payload="previous")
    (tmp_path / ".out.tmp-abc").mkdir()
    (tmp_path / ".out.work-def").mkdir()
    (tmp_path / ".other.tmp-keep").mkdir()  # another output's: not ours to touch
    with OutputSlot(final):
        assert (final / "a.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "out"]


def test_replace_dir_is_a_single_exchange(tmp_path):
    """With RENAME_EXCHANGE there is no instant at which the path is empty: killing the process
    right after the exchange (before the old copy is removed) leaves the new artifact in place."""
    final, new = tmp_path / "out", tmp_path / ".out.tmp-1"
    _artifact(final, payload="old")
    _artifact(new, payload="new")
    script = textwrap.dedent(f"""
        import os, shutil, signal
        from pathlib import Path
        from compiler.artifact import slot as artifacts
        shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        artifacts.replace_dir(Path({str(new)!r}), Path({str(final)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert proc.returncode == -9
    assert (final / "a.txt").read_text() == "new"
    with OutputSlot(final):  # the next run removes the old copy left in the staging name
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replace_dir_into_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    replace_dir(src, tmp_path / "dst")
    assert (tmp_path / "dst").is_dir() and not src.exists()
