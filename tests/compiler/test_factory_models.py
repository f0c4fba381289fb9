"""`package.module:factory` models through the CLI alone: forward(*args), golden from the
factory's example inputs, --calib on the command line, int8 refused early without data."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from compiler.cli import main

FACTORY = textwrap.dedent('''
    import numpy as np
    import torch

    class Wrapper(torch.nn.Module):
        """Like a wrapper around a Hugging Face model: forward(*args)."""
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 4)
        def forward(self, *args):
            (x,) = args
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    def build():
        g = torch.Generator().manual_seed(1)
        return Wrapper().eval(), (torch.randn(3, 3, 8, 8, generator=g),)

    def calib():
        return {"input_0": np.random.default_rng(2).standard_normal((32, 3, 8, 8)).astype(np.float32)}
''')


@pytest.fixture
def factory(tmp_path, monkeypatch):
    (tmp_path / "user_wrapper.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_wrapper:build"


def test_star_args_factory_golden_from_examples_then_builds(factory, tmp_path, capsys):
    assert main(["golden", "--model", factory]) == 0, capsys.readouterr().err
    meta = json.loads((tmp_path / "golden" / "user_wrapper" / "meta.json").read_text())
    assert meta["inputs"]["input_0"]["shape"] == [3, 3, 8, 8] and "example inputs" in meta["source"]
    for target in ("cpu", "intel"):
        code = main(["build", "--quiet", "--model", factory, "--target", target, "--out", str(tmp_path / target)])
        assert code == 0, capsys.readouterr().err


def test_int8_needs_calib_and_says_so_before_exporting(factory, tmp_path, capsys):
    assert main(["golden", "--model", factory]) == 0
    capsys.readouterr()
    code = main(["build", "--model", factory, "--target", "jetson", "--out", str(tmp_path / "j")])
    err = capsys.readouterr().err
    assert code == 2 and "--calib" in err and "frontend" not in err  # refused before any export step
    assert not (tmp_path / "j").exists()


@pytest.mark.parametrize("calib", ["user_wrapper:calib", "calib.npz"])
def test_calib_on_the_command_line(factory, tmp_path, capsys, calib):
    assert main(["golden", "--model", factory]) == 0
    np.savez(tmp_path / "calib.npz", input_0=np.random.default_rng(3).standard_normal((32, 3, 8, 8)).astype(np.float32))
    for target in ("cpu", "jetson"):
        out = tmp_path / f"{target}-int8"
        code = main(["build", "--quiet", "--model", factory, "--target", target, "--precision", "int8", "--calib", calib,
                     "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        manifest = json.loads((out / "manifest.json").read_text())
        # the graph was exported at the examples' batch of 3: 32 samples feed 10 full batches
        assert manifest["precision"] == "int8" and manifest["calibration"]["samples"] == 30
