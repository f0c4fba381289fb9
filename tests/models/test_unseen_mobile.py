"""The architectures the coverage issue met on phones (models/unseen_mobile.py: an MTCNN-style
PReLU net, a U-Net with InstanceNorm and nearest or bilinear Resize, a 2-layer bidirectional GRU tagger, a
whisper-style attention encoder) build and verify on `android` and `apple` at fp32, at each
target's default precision, and at int8 — through the CLI as bare factories, golden from eager."""

from __future__ import annotations

import json

import pytest

from compiler.cli import main

pytestmark = pytest.mark.coverage

CALIB = {"mtcnn_pnet": "calib_pnet", "unet": "calib_unet", "unet_bilinear": "calib_unet", "bigru_tagger": "calib_tagger",
         "attention_encoder": "calib_encoder"}
BUILDS = [("android", "fp32"), ("android", "int8"), ("apple", "fp32"), ("apple", "fp16"), ("apple", "int8")]


@pytest.mark.parametrize("name", list(CALIB))
def test_phone_architectures_build_and_verify(name, tmp_path, capsys):
    for target, precision in BUILDS:
        out = tmp_path / f"{target}-{precision}"
        code = main(["build", "--quiet", "--no-cache", "--model", f"models.unseen_mobile:{name}", "--target", target,
                     "--precision", precision, "--calib", f"models.unseen_mobile:{CALIB[name]}", "--out", str(out)])
        assert code == 0, (target, precision, capsys.readouterr().err[-600:])
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "passed" and manifest["precision"] == precision
        if (target, precision) == ("android", "int8"):  # integer kernels, not a float model labelled int8
            assert manifest["engine"]["info"]["int8_kernels"], manifest["engine"]["info"]
