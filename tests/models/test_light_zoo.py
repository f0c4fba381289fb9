"""The ONNX package's bundled model-zoo graphs (onnx/backend/test/data/light: AlexNet, DenseNet,
Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet — IR version 3, opset 9)
through `build --model file.onnx --golden DIR` at fp32 on cpu, intel and the jetson host half.
Golden: the inputs ONNX's own backend test feeds these models (`Runner.generate_dummy_data`)
and the expected outputs shipped beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.cli import main

pytestmark = pytest.mark.coverage

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = sorted(p.stem for p in LIGHT.glob("*.onnx"))


def _golden(name: str, directory: Path) -> Path:
    from onnx.backend.test.runner import Runner

    m = onnx.load(str(LIGHT / f"{name}.onnx"))
    inits = {i.name for i in m.graph.initializer}
    feeds = {x.name: Runner.generate_dummy_data(x, seed=0, name=name) for x in m.graph.input if x.name not in inits}
    outs = {o.name: onnx.numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"{name}_output_{i}.pb")))
            for i, o in enumerate(m.graph.output)}
    directory.mkdir()
    np.savez(directory / "inputs.npz", **feeds)
    np.savez(directory / "outputs.npz", **outs)
    return directory


@pytest.mark.parametrize("name", MODELS)
def test_light_model_builds_fp32(name, tmp_path, capsys):
    assert len(MODELS) == 9
    golden = _golden(name, tmp_path / "golden")
    for target in ("cpu", "intel", "jetson"):
        code = main(["build", "--quiet", "--model", str(LIGHT / f"{name}.onnx"), "--golden", str(golden),
                     "--target", target, "--precision", "fp32", "--out", str(tmp_path / target)])
        err = capsys.readouterr().err
        if name == "light_squeezenet" and target == "intel":
            # Not a conversion bug: with these dummy inputs the 1000 logits are all ≈ 9.48e9 and
            # differ only below fp32's resolution there (~1e3), so any change of summation order
            # turns ORT's uniform softmax (0.001 each) into a near one-hot one. OpenVINO f32 sums
            # in another order; the gate reports it (exit 1) rather than passing or crashing.
            # Whether the order differs is the CPU's: the Xeon's AVX-512 kernels gave exit 1, the
            # AVX2-only EPYC's matched ORT (exit 0, the CI run of 2026-12-08). Either is correct;
            # a crash or a refusal is not.
            assert code in (0, 1), err
            assert code == 0 or "softmaxout_1" in err, err
            continue
        assert code == 0, f"{target}: {err}"
