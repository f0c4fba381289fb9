"""Shared fixtures: one thread everywhere (the 2 cores are shared), a tiny real model."""

from __future__ import annotations

import os
from pathlib import Path

# Before numpy is imported: a process that ran OpenVINO's converter spun a float64 BLAS call
# at 100 % CPU for minutes with several BLAS threads (docs/toolchains.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TVM_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Every test builds from scratch unless it asks for a cache (--cache DIR): a served stage would
# hide what the test is about, and no test may write into the user's ~/.cache.
os.environ["MODEL_COMPILER_CACHE"] = "off"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


class TinyNet(torch.nn.Module):
    """Conv → ReLU → global pool → Linear: small enough to export in well under a second."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def tiny_factory():
    """`package.module:factory` form: (module, example inputs)."""
    return TinyNet().eval(), (torch.randn(2, 3, 6, 6),)


def make_tiny_onnx(directory: Path) -> tuple[Path, Path]:
    """A real .onnx (legacy exporter, dynamic batch) and a golden dir from PyTorch eager."""
    model = TinyNet().eval()
    x = np.random.default_rng(0).standard_normal((3, 3, 6, 6)).astype(np.float32)
    path = directory / "tiny.onnx"
    torch.onnx.export(model, (torch.from_numpy(x),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    golden = directory / "golden"
    golden.mkdir()
    np.savez(golden / "inputs.npz", x=x)
    np.savez(golden / "outputs.npz", y=y)
    return path, golden


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> tuple[Path, Path]:
    return make_tiny_onnx(tmp_path)


def artifact_content_files(out: Path) -> set[str]:
    """Every file of an artifact that its manifest must list (all but manifest.json and the
    volatile build.json), as relative POSIX paths."""
    from compiler.artifact.files import UNSEALED

    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - set(UNSEALED)
