"""A crafted .pt2 must run nothing: torch.export.load would unpickle it (the test first shows
that it does, in a separate process), model-compiler refuses it naming the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.cli import main
from tests.conftest import TinyNet


class _Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload_bytes(marker: Path) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(_Payload(marker), buf)
    return buf.getvalue()


def _rewrite(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        entries = {i.filename: zin.read(i.filename) for i in zin.infolist()}
        edit(entries)
        for name, data in entries.items():
            zout.writestr(name, data)


def _find(entries: dict[str, bytes], suffix: str) -> str:
    return next(n for n in entries if n.endswith(suffix))


def _weights_pickled(entries, marker):
    cfg_name = _find(entries, "data/weights/model_weights_config.json")
    cfg = json.loads(entries[cfg_name])
    fqn, meta = next(iter(cfg["config"].items()))
    meta["use_pickle"] = True
    entries[cfg_name] = json.dumps(cfg).encode()
    entries[cfg_name.rsplit("/", 1)[0] + "/" + meta["path_name"]] = _payload_bytes(marker)


def _sample_inputs_pickled(entries, marker):
    entries[_find(entries, "data/sample_inputs/model.pt")] = _payload_bytes(marker)


def _aoti_library(entries, marker):
    root = _find(entries, "archive_format").rsplit("/", 1)[0]
    entries[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"


CRAFTS = {"weights-use-pickle": (_weights_pickled, "use_pickle"),
          "sample-inputs-unrestricted": (_sample_inputs_pickled, "unrestricted unpickler"),
          "aoti-library": (_aoti_library, "aotinductor")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pt2")
    model = TinyNet().eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    ep = torch.export.export(model, (torch.from_numpy(x),))
    torch.export.save(ep, str(root / "clean.pt2"))
    golden = root / "golden"
    golden.mkdir()
    np.savez(golden / "inputs.npz", x=x)
    with torch.no_grad():
        np.savez(golden / "outputs.npz", output=model(torch.from_numpy(x)).numpy())
    return root / "clean.pt2", golden


@pytest.mark.parametrize("craft", sorted(CRAFTS))
def test_crafted_pt2_runs_nothing(clean, tmp_path, capsys, craft):
    src, golden = clean
    edit, named = CRAFTS[craft]
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pt2"
    _rewrite(src, bad, lambda e: edit(e, marker))
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(bad), "--golden", str(golden), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and "model.pt2" in err and "--trust-pickle" in err
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "out").exists()
    code = main(["golden", "--model", str(bad), "--out", str(tmp_path / "g")])
    assert code == 2 and not marker.exists()
    if craft != "aoti-library":
        # The payload is live: torch itself runs it (in another process).
        subprocess.run([sys.executable, "-c", f"import torch; torch.export.load({str(bad)!r})"],
                       capture_output=True, timeout=300)
        assert marker.exists(), "the crafted file did not exercise torch's unpickling path"


def test_clean_pt2_builds(clean, tmp_path, capsys):
    src, golden = clean
    code = main(["build", "--quiet", "--target", "cpu", "--model", str(src), "--golden", str(golden), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
