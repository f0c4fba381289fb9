"""The zoo on the `android` target (our StableHLO lowering → litert-converter → .tflite),
verified in the LiteRT Interpreter with XNNPACK and with reference kernels."""

from __future__ import annotations

import json

import pytest

from compiler.cli import main
from targets.stablehlo import litert
from tests.models.conftest import build

CNNS = ["digits-cnn", "efficientnet-lite0"]


@pytest.mark.parametrize("name", CNNS)
def test_android_fp32_parity_with_both_kernel_sets(tmp_path, name):
    code, out, manifest = build(tmp_path, name, "android", "fp32")
    assert code == 0
    assert "model.tflite" in {f["path"] for f in manifest["files"]}
    parity = json.loads((out / "parity.json").read_text())
    runs = [parity, *parity["variants"].values()]
    assert len(runs) == 2  # XNNPACK (the engine) and the reference kernels
    for run in runs:
        (stats,) = run["outputs"].values()
        assert stats["max_abs"] <= 1e-4
    info = manifest["engine"]["info"]
    assert info["float_kernels"].get("CONV_2D", 0) > 0 and not info["int8_kernels"]
    assert info["op_versions"]["CONV_2D"] >= 1 and info["min_runtime_version"]
    assert [d["step"] for d in manifest["deferred"]] == ["verify-on-device"]
    # `verify` re-runs both kernel sets from the artifact alone
    assert main(["verify", "--artifact", str(out)]) == 0


@pytest.mark.parametrize("name", CNNS)
def test_android_int8_runs_integer_convolutions(tmp_path, name):
    code, out, manifest = build(tmp_path, name, "android", "int8")
    assert code == 0
    assert manifest["calibration"]["preset"] == "tflite"
    found = litert.inspect(out / "model.tflite")  # read back from the file, not the manifest
    assert found.int8_kernels.get("CONV_2D", 0) > 0
    # every convolution runs int8 except those the accuracy fallback returned to float
    n_float_convs = found.float_kernels.get("CONV_2D", 0) + found.float_kernels.get("DEPTHWISE_CONV_2D", 0)
    assert n_float_convs <= len(manifest["calibration"]["float_nodes"])
    # I/O is int8 where the graph's first/last op is quantized (the runner and an app apply the
    # recorded scale and zero point), float where the fallback kept that end in float
    io = manifest["engine"]["info"]["io"]
    assert all(v["dtype"] == "float32" or (v["dtype"] == "int8" and v["scale"] > 0) for v in io.values())
    assert any(v["dtype"] == "int8" for v in io.values())


def test_android_refuses_an_op_it_cannot_lower_by_name(tmp_path, capsys):
    """MiniLM's exported position-id lookup (GatherElements) has no lowering yet: exit 2 naming
    the node and the op, with the supported list — before anything is written."""
    code, out, manifest = build(tmp_path, "minilm-l6", "android", "fp32")
    err = capsys.readouterr().err
    assert code == 2 and manifest is None
    assert "GatherElements node 'node_gather'" in err and "Supported ops:" in err
