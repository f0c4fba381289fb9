"""Table of bad inputs, one row per way a user (or a hostile file) can get it wrong.

Every row asserts: the exit code (2 unless stated), a message naming the culprit, and that
nothing under the test's directory was written, changed or removed (a full snapshot of names
and bytes before and after).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from compiler.artifact.integrity import seal
from compiler.cli import main


@dataclass
class Ctx:
    tmp: Path
    model: Path  # a real .onnx (x: [batch,3,6,6] → y: [batch,5])
    golden: Path  # its golden set
    art: Path  # a built, passing cpu artifact of it

    def module(self, name: str, body: str) -> str:
        (self.tmp / f"{name}.py").write_text(textwrap.dedent(body))
        return name

    def build(self, *args: str) -> list[str]:
        return ["build", "--quiet", "--target", "cpu", "--model", str(self.model), "--golden", str(self.golden),
                "--out", str(self.tmp / "out"), *args]


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if "__pycache__" in p.parts:
            continue
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() and not p.is_symlink() else hashlib.sha256(
            p.read_bytes() if p.is_file() else str(p.readlink()).encode()).hexdigest()
    return out


TINY = textwrap.dedent("""
    import torch
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)
        def forward(self, x):
            return self.fc(x)
""")


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _manifest(c: Ctx, edit: Callable[[dict], object]) -> list[str]:
    """An edited manifest, re-sealed as a forger would (an unsealed edit is refused before any of
    these checks: tests/robustness/test_trust.py), so each structural check is what refuses it."""
    m = json.loads((c.art / "manifest.json").read_text())
    new = edit(m)  # a list replaces the manifest; anything else was an in-place edit
    if not isinstance(new, list):
        seal(m)
    (c.art / "manifest.json").write_text(json.dumps(new if isinstance(new, list) else m))
    return ["verify", "--artifact", str(c.art)]


def _golden_copy(c: Ctx, **arrays) -> Path:
    g = c.tmp / "g2"
    shutil.copytree(c.golden, g)
    for name, a in arrays.items():
        np.savez(g / name, **a)
    return g


X = np.zeros((2, 3, 6, 6), np.float32)

# (id, setup(ctx) -> argv, substrings the message must contain)
CASES: list[tuple[str, Callable[[Ctx], list[str]], list[str]]] = [
    # --- data loss: --out / golden --out must only ever replace our own directories ----------
    ("out-user-dir", lambda c: ((c.tmp / "out").mkdir(), (c.tmp / "out" / "notes.txt").write_text("mine"), c.build())[-1],
     ["refusing to replace", "notes.txt", "not a artifact written by model-compiler"]),
    ("out-is-golden", lambda c: c.build()[:-1] + [str(c.golden)], ["refusing to write --out", "it is --golden"]),
    ("out-regular-file", lambda c: ((c.tmp / "out").write_text("a file"), c.build())[-1], ["refusing to replace", "is a file"]),
    ("out-dot", lambda c: c.build()[:-1] + ["."], ["'.'"]),
    ("out-empty-string", lambda c: c.build()[:-1] + [""], ["output path"]),
    ("out-root", lambda c: c.build()[:-1] + ["/"], ["'/'"]),
    ("out-parent-of-cwd", lambda c: c.build()[:-1] + [str(c.tmp.parent)], ["current directory or one of its parents"]),
    ("out-too-long", lambda c: c.build()[:-1] + [str(c.tmp / ("x" * 300))], ["File name too long"]),
    ("out-parent-is-file", lambda c: ((c.tmp / "f").write_text(""), c.build()[:-1] + [str(c.tmp / "f" / "out")])[-1],
     ["is a file, not a directory"]),
    ("out-symlink", lambda c: ((c.tmp / "link").symlink_to(c.art), c.build()[:-1] + [str(c.tmp / "link")])[-1],
     ["symbolic link"]),
    ("out-failed-slot-not-ours", lambda c: ((c.tmp / "out.failed").mkdir(), (c.tmp / "out.failed" / "x").write_text("x"),
                                            c.build())[-1], ["out.failed", "refusing to replace"]),
    ("golden-out-user-dir", lambda c: ((c.tmp / "gd").mkdir(), (c.tmp / "gd" / "data.csv").write_text("1,2"),
                                       ["golden", "--model", "tests.conftest:tiny_factory", "--out", str(c.tmp / "gd"),
                                        "--inputs", str(_npz(c.tmp / "in.npz", x=X))])[-1], ["refusing to replace", "data.csv"]),
    ("golden-out-artifact", lambda c: ["golden", "--model", "tests.conftest:tiny_factory", "--out", str(c.art),
                                       "--inputs", str(_npz(c.tmp / "in.npz", x=X))], ["refusing to replace", "build artifact"]),
    ("golden-out-file", lambda c: ((c.tmp / "gf").write_text(""), ["golden", "--model", "tests.conftest:tiny_factory",
                                   "--out", str(c.tmp / "gf"), "--inputs", str(_npz(c.tmp / "in.npz", x=X))])[-1], ["is a file"]),
    # --- user code that fails -----------------------------------------------------------
    ("factory-syntax-error", lambda c: ["golden", "--model", c.module("syn_mod", "def build(:\n    pass\n") + ":build",
                                        "--out", str(c.tmp / "g"), "--inputs", str(_npz(c.tmp / "in.npz", x=X))],
     ["syn_mod", "syntax error", "syn_mod.py:1"]),
    ("factory-raises", lambda c: ["golden", "--model",
                                  c.module("raise_mod", "def build():\n    raise RuntimeError('no weights here')\n") + ":build",
                                  "--out", str(c.tmp / "g"), "--inputs", str(_npz(c.tmp / "in.npz", x=X))],
     ["raise_mod:build", "RuntimeError: no weights here", "raise_mod.py:2"]),
    ("factory-import-raises", lambda c: ["golden", "--model",
                                         c.module("imp_mod", "import json\njson.loads('{')\ndef build(): pass\n") + ":build",
                                         "--out", str(c.tmp / "g"), "--inputs", str(_npz(c.tmp / "in.npz", x=X))],
     ["imp_mod", "JSONDecodeError"]),
    ("factory-not-callable", lambda c: ["golden", "--model", c.module("nc_mod", "build = 3\n") + ":build", "--out", str(c.tmp / "g"),
                                        "--inputs", str(_npz(c.tmp / "in.npz", x=X))], ["nc_mod:build", "not a callable"]),
    ("factory-wrong-type", lambda c: ["golden", "--model", c.module("wt_mod", "def build():\n    return 'a string'\n") + ":build",
                                      "--out", str(c.tmp / "g"), "--inputs", str(_npz(c.tmp / "in.npz", x=X))], ["returned str"]),
    ("eager-wrong-shape", lambda c: ["golden", "--model", c.module("lin_mod", TINY + "\ndef build():\n    return Net()\n") + ":build",
                                     "--out", str(c.tmp / "g"), "--inputs", str(_npz(c.tmp / "in.npz", x=np.zeros((2, 7), np.float32)))],
     ["raised RuntimeError when run in PyTorch", "x (2, 7) float32"]),
    ("build-eager-wrong-shape", lambda c: ["build", "--quiet", "--target", "cpu", "--out", str(c.tmp / "out"), "--model",
                                           c.module("lin2_mod", TINY + "\ndef build():\n    return Net()\n") + ":build",
                                           "--golden", str(_golden_copy(c, **{"inputs.npz": {"x": np.zeros((2, 7), np.float32)},
                                                                           "outputs.npz": {"output": np.zeros((2, 2), np.float32)}}))],
     ["raised RuntimeError when run in PyTorch", "(2, 7)"]),
    # --- golden files -------------------------------------------------------------------
    ("inputs-not-zip", lambda c: ((c.golden / "inputs.npz").write_bytes(b"garbage"), c.build())[-1], ["inputs.npz", "not a readable .npz"]),
    ("inputs-truncated", lambda c: ((c.golden / "inputs.npz").write_bytes((c.golden / "inputs.npz").read_bytes()[:100]), c.build())[-1],
     ["inputs.npz", "not a readable .npz"]),
    ("inputs-no-arrays", lambda c: (_npz(c.golden / "inputs.npz"), c.build())[-1], ["inputs.npz", "the file has []; missing ['x']"]),
    ("inputs-zero-samples", lambda c: (_npz(c.golden / "inputs.npz", x=X[:0]), c.build())[-1],
     ["inputs.npz", "0 samples along the batch axis"]),
    ("inputs-single-array", lambda c: (np.save((c.golden / "inputs.npz").open("wb"), X), c.build())[-1],
     ["inputs.npz", "not a readable .npz"]),
    ("outputs-empty-file", lambda c: ((c.golden / "outputs.npz").write_bytes(b""), c.build())[-1], ["outputs.npz", "not a readable .npz"]),
    ("meta-not-json", lambda c: ((c.golden / "meta.json").write_text("{oops"), c.build())[-1], ["meta.json", "not valid JSON"]),
    ("meta-a-list", lambda c: ((c.golden / "meta.json").write_text("[1, 2]"), c.build())[-1], ["meta.json", "JSON object"]),
    ("tolerances-bad-toml", lambda c: ((c.golden / "tolerances.toml").write_text("[fp32\nx="), c.build())[-1], ["tolerances.toml"]),
    ("golden-inputs-wrong-rank", lambda c: (_npz(c.golden / "inputs.npz", x=np.zeros((2, 3, 6), np.float32)), c.build())[-1],
     ["golden input 'x'", "shape (2, 3, 6)"]),
    ("golden-inputs-wrong-dtype", lambda c: (_npz(c.golden / "inputs.npz", x=X.astype(np.float16)), c.build())[-1],
     ["golden input 'x'", "float16"]),
    ("golden-inputs-npz-corrupt", lambda c: ((c.tmp / "in.npz").write_bytes(b"PK\x03\x04broken"),
                                             ["golden", "--model", "tests.conftest:tiny_factory", "--out", str(c.tmp / "g"),
                                              "--inputs", str(c.tmp / "in.npz")])[-1], ["in.npz", "not a readable .npz"]),
    # --- paths and arguments -------------------------------------------------------------
    ("dump-ir-at-file", lambda c: ((c.tmp / "dump").write_text(""), c.build("--dump-ir", str(c.tmp / "dump")))[-1],
     ["--dump-ir", "is a file"]),
    ("model-too-long", lambda c: ["build", "--quiet", "--target", "cpu", "--out", str(c.tmp / "out"), "--model", "m" * 5000 + ".onnx"],
     ["File name too long", "5005 characters"]),
    ("bench-json-at-dir", lambda c: ((c.tmp / "j").mkdir(), ["bench", "--artifact", str(c.art), "--json", str(c.tmp / "j")])[-1],
     ["--json", "file path"]),
    ("bench-absurd-batch", lambda c: ["bench", "--artifact", str(c.art), "--batch", str(10**12)], ["--batch", "GiB"]),
    ("bench-zero-batch", lambda c: ["bench", "--artifact", str(c.art), "--batch", "0"], ["batch ≥ 1"]),
    # --- artifacts and manifests -----------------------------------------------------------
    ("manifest-not-json", lambda c: ((c.art / "manifest.json").write_text("{"), ["verify", "--artifact", str(c.art)])[-1],
     ["manifest.json", "not valid JSON"]),
    ("manifest-a-list", lambda c: _manifest(c, lambda m: [m]), ["manifest.json", "JSON object"]),
    ("manifest-missing-engine", lambda c: _manifest(c, lambda m: m.pop("engine")), ["manifest.json", "'engine'"]),
    ("manifest-missing-target-name", lambda c: _manifest(c, lambda m: m["target"].pop("name")), ["'target.name'"]),
    ("manifest-entry-outside", lambda c: _manifest(c, lambda m: m["engine"].update(entry="../../evil.onnx")),
     ["engine.entry", "outside the artifact"]),
    ("manifest-file-outside", lambda c: _manifest(c, lambda m: m["files"].append({"path": "/etc/passwd", "sha256": "0"})),
     ["/etc/passwd", "outside the artifact"]),
    ("artifact-tampered", lambda c: ((c.art / "model.ort.onnx").write_bytes(b"x" + (c.art / "model.ort.onnx").read_bytes()[1:]),
                                     ["verify", "--artifact", str(c.art)])[-1], ["model.ort.onnx", "sha256"]),
    ("verify-golden-wrong-names", lambda c: ["verify", "--artifact", str(c.art), "--golden",
                                             str(_golden_copy(c, **{"inputs.npz": {"image": X}}))], ["graph has ['x']", "'image'"]),
    ("verify-golden-wrong-shape", lambda c: ["verify", "--artifact", str(c.art), "--golden",
                                             str(_golden_copy(c, **{"inputs.npz": {"x": np.zeros((2, 3, 5, 5), np.float32)}}))],
     ["golden input 'x'", "(2, 3, 5, 5)"]),
    ("verify-not-an-artifact", lambda c: ["verify", "--artifact", str(c.golden)], ["not an artifact directory"]),
    # --- .pt2 ------------------------------------------------------------------------------
    ("pt2-not-zip", lambda c: ((c.tmp / "m.pt2").write_bytes(b"not a zip"),
                               ["build", "--quiet", "--target", "cpu", "--model", str(c.tmp / "m.pt2"), "--golden", str(c.golden),
                                "--out", str(c.tmp / "out")])[-1], ["m.pt2", "not a zip"]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, Path]:
    from tests.conftest import make_tiny_onnx

    root = tmp_path_factory.mktemp("base")
    path, golden = make_tiny_onnx(root)
    art = root / "art"
    assert main(["build", "--quiet", "--target", "cpu", "--model", str(path), "--golden", str(golden), "--out", str(art)]) == 0
    return path, golden, art


def test_the_table_covers_every_class():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, built, tmp_path, monkeypatch, capsys):
    _, setup, expected = case
    model, golden, art = built
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(model, work / "tiny.onnx")
    shutil.copytree(golden, work / "golden")
    shutil.copytree(art, work / "art")
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    ctx = Ctx(work, work / "tiny.onnx", work / "golden", work / "art")
    argv = setup(ctx)
    before = _snapshot(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err
    for s in expected:
        assert s in err, f"{s!r} not in: {err}"
    assert _snapshot(tmp_path) == before, "a failed run wrote, changed or removed files"
