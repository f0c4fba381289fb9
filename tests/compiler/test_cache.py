"""The persistent stage cache: served when nothing changed (byte-identical artifact), missed
when a weight changed, a damaged entry detected and rebuilt, concurrent builds sharing it,
and its size cap. Speed is measured in `make bench-cache`, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler.cache import Cache, Entry
from compiler.cli import main
from tests.conftest import REPO

STAGES = ("export", "optimize", "validation", "precision", "compile", "verify")


def _build(out: Path, cache: Path, *extra: str) -> int:
    return main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8", "--out", str(out),
                 "--cache", str(cache), *extra])


def _stages(out: Path) -> dict[str, str]:
    return json.loads((out / "build.json").read_text())["cache"]["stages"]


def _content(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("build.json", "report.html")}


def test_an_unchanged_rebuild_is_served_from_the_cache_and_byte_identical(tmp_path):
    cache = tmp_path / "cache"
    assert _build(tmp_path / "a", cache) == 0
    assert set(_stages(tmp_path / "a").values()) == {"miss"}
    assert _build(tmp_path / "b", cache) == 0
    assert _stages(tmp_path / "b") == {s: "hit" for s in STAGES}
    assert _content(tmp_path / "a") == _content(tmp_path / "b")
    assert main(["verify", "--artifact", str(tmp_path / "b")]) == 0
    # --no-cache reads nothing from it
    assert _build(tmp_path / "c", cache, "--no-cache") == 0
    assert set(_stages(tmp_path / "c").values()) == {"miss"}


def test_a_damaged_entry_is_detected_and_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    assert _build(tmp_path / "a", cache) == 0
    model = next((cache / "precision").glob("*/*/model.onnx"))
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    model.write_bytes(bytes(data))
    assert _build(tmp_path / "b", cache) == 0
    assert _stages(tmp_path / "b")["precision"] == "corrupt entry, rebuilt"
    assert _content(tmp_path / "a") == _content(tmp_path / "b")
    assert _build(tmp_path / "c", cache) == 0  # the rebuilt entry is whole again
    assert _stages(tmp_path / "c")["precision"] == "hit"


def test_changing_one_weight_of_a_factory_misses_at_export(tmp_path, monkeypatch):
    """A factory's key is its state, not its import path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = textwrap.dedent("""
        import torch
        def build():
            torch.manual_seed(0)
            net = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
            with torch.no_grad():
                net[0].bias[0] += {delta}
            return net, (torch.randn(2, 4),)
    """)
    cache = tmp_path / "cache"

    def build(name: str, delta: float) -> dict[str, str]:
        mod = f"weights_mod_{name}"
        (tmp_path / f"{mod}.py").write_text(src.format(delta=delta))
        out = tmp_path / name
        assert main(["build", "--quiet", "--target", "cpu", "--model", f"{mod}:build", "--out", str(out),
                     "--golden", str(_golden(tmp_path, mod)), "--cache", str(cache)]) == 0
        return _stages(out)

    assert build("a", 0.0)["export"] == "miss"
    assert build("b", 0.0)["export"] == "hit"  # same weights under another import path
    assert build("c", 0.5)["export"] == "miss"  # one weight changed


def _golden(tmp_path: Path, module: str) -> Path:
    g = tmp_path / f"golden-{module}"
    assert main(["golden", "--model", f"{module}:build", "--out", str(g)]) == 0
    return g


def test_two_concurrent_builds_with_one_cache_both_succeed(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "compiler", "build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8",
           "--cache", str(cache)]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"o{i}")], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    for i in range(2):
        assert main(["verify", "--artifact", str(tmp_path / f"o{i}")]) == 0
    assert _content(tmp_path / "o0") == _content(tmp_path / "o1")
    assert not list((cache / "tmp").iterdir())  # no half-written entry left


def test_the_size_cap_evicts_the_least_recently_used(tmp_path):
    cache = Cache(tmp_path / "c", max_bytes=2500)
    for i in range(3):
        cache.put("s", f"{i:064d}", Entry({"i": i}, {"blob": bytes(1000)}))
        os.utime(next((tmp_path / "c" / "s").glob(f"*/{i:064d}/entry.json")), (1000 + i, 1000 + i))
    fresh = Cache(tmp_path / "c", max_bytes=2500)
    assert fresh.get("s", f"{0:064d}")[0] is None  # the oldest went first
    assert fresh.get("s", f"{2:064d}")[0].facts == {"i": 2}


@pytest.mark.parametrize("value", ["off", "OFF", "0"])
def test_the_environment_can_turn_it_off(monkeypatch, value):
    from compiler.cache import default_dir

    monkeypatch.setenv("MODEL_COMPILER_CACHE", value)
    assert default_dir() is None
