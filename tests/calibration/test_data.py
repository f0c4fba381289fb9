import numpy as np
import onnx_ir as ir
import pytest

from calibration.data import checked_batches
from compiler import ir as irh
from compiler.datasets.npz import NpzSource
from compiler.errors import BadInput


def _inputs(digits_fp32):
    return irh.graph_inputs(ir.load(digits_fp32))


def test_nan_in_calibration_data_names_tensor_and_batch(tmp_path, digits_fp32):
    x = np.zeros((40, 1, 8, 8), np.float32)
    x[25, 0, 3, 3] = np.nan
    np.savez(tmp_path / "calib.npz", image=x)
    src = NpzSource(input_names=("image",), path=tmp_path / "calib.npz")
    with pytest.raises(BadInput, match=r"calibration input 'image' in batch 1 .*1 NaN"):
        list(checked_batches(src, _inputs(digits_fp32), 40, 16))


def test_wrong_shape_names_expected_shape(tmp_path, digits_fp32):
    np.savez(tmp_path / "calib.npz", image=np.zeros((4, 1, 9, 9), np.float32))
    src = NpzSource(input_names=("image",), path=tmp_path / "calib.npz")
    with pytest.raises(BadInput, match=r"shape \(4, 1, 9, 9\) but the graph expects \[batch×1×8×8\]"):
        list(checked_batches(src, _inputs(digits_fp32), 4, 4))


def test_missing_input_names_it(tmp_path, digits_fp32):
    np.savez(tmp_path / "calib.npz", pixels=np.zeros((4, 1, 8, 8), np.float32))
    src = NpzSource(input_names=("image",), path=tmp_path / "calib.npz")
    with pytest.raises(BadInput, match=r"has no input 'image'"):
        list(checked_batches(src, _inputs(digits_fp32), 4, 4))


def test_sample_limit_and_batching(tmp_path, digits_fp32):
    np.savez(tmp_path / "calib.npz", image=np.zeros((50, 1, 8, 8), np.float32))
    src = NpzSource(input_names=("image",), path=tmp_path / "calib.npz")
    sizes = [len(b["image"]) for b in checked_batches(src, _inputs(digits_fp32), 37, 16)]
    assert sizes == [16, 16, 5]
