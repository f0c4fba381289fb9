from pathlib import Path

import numpy as np
import pytest

from compiler import spec
from compiler.datasets.images import ImagesSource, resolve_file_ref
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


def test_corner_views_and_flips_come_from_the_same_photo():
    src = spec.resolve("efficientnet-lite0").validation.groups[0][1]
    one = ImagesSource(input_names=("image",), files=src.files[:1], resize_short=288, crop=224, mean=127.0, std=128.0,
                       corner_views_short=320, flip=True)
    s = one.load()
    x = s.feeds["image"]
    assert one.views_per_file == 10 and x.shape == (10, 3, 224, 224) and len(s.descriptions) == 10
    np.testing.assert_array_equal(x[5:], x[:5, :, :, ::-1])  # the second half mirrors the first
    centre = ImagesSource(input_names=("image",), files=src.files[:1], resize_short=288, crop=224, mean=127.0, std=128.0)
    np.testing.assert_array_equal(x[0], centre.load().feeds["image"][0])
    assert len({v.tobytes() for v in x}) == 10  # ten different views


def test_sentences_padded_to_each_validation_length():
    groups = spec.resolve("minilm-l6").validation.groups
    assert [g for g, _ in groups] == ["16 tokens", "64 tokens", "128 tokens"]
    for (label, src), n in zip(groups, (16, 64, 128)):
        s = src.load()
        assert s.feeds["input_ids"].shape == (len(src.sentences), n)
        real = s.feeds["attention_mask"].sum(1)
        assert real.max() >= min(n, 40) and real.min() < 16  # real text in every group, short ones too
