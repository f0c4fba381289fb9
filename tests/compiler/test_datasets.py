from pathlib import Path

import numpy as np
import pytest

from compiler import spec
from compiler.datasets import ImagesSource, resolve_file_ref
from compiler.errors import BadInput


def test_streamed_batches_equal_one_load():
    src = spec.resolve("efficientnet-lite0").golden
    whole = src.load()
    parts = list(src.batches(4))
    assert [len(p) for p in parts] == [4, 2]
    np.testing.assert_array_equal(np.concatenate([p.feeds["image"] for p in parts]), whole.feeds["image"])
    assert sum((p.descriptions for p in parts), ()) == whole.descriptions


def test_image_preprocessing_shape_and_range():
    x = spec.resolve("efficientnet-lite0").golden.load().feeds["image"]
    assert x.shape == (6, 3, 224, 224) and x.dtype == np.float32
    assert -1.0 <= x.min() < -0.9 and 0.9 < x.max() <= 1.0  # (x - 127) / 128 of 0..255


def test_sentences_pad_to_longest_with_mask():
    s = spec.resolve("minilm-l6").golden.load()
    ids, mask = s.feeds["input_ids"], s.feeds["attention_mask"]
    assert ids.shape == mask.shape and ids.dtype == np.int64
    assert mask.sum(1).max() == ids.shape[1] and (mask.sum(1) < ids.shape[1]).any()


def test_missing_package_file_names_it():
    with pytest.raises(BadInput, match="skimage:data/nope.png"):
        resolve_file_ref("skimage:data/nope.png", Path("."))


def test_unreadable_image_names_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    src = ImagesSource(input_names=("image",), files=(str(tmp_path / "broken.png"),))
    with pytest.raises(BadInput, match="broken.png"):
        src.load()
