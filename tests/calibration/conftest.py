from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def digits_fp32(tmp_path_factory) -> Path:
    """The digits CNN as optimized by the cpu pipeline (float), the input to calibration."""
    out = tmp_path_factory.mktemp("digits") / "fp32"
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--out", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return out / "model.onnx"


def digits_batches(n: int, batch: int = 50):
    from models.digits_cnn import train_split

    x = train_split()["image"]
    for i in range(0, n, batch):
        yield {"image": np.ascontiguousarray(x[i : i + batch])}
