"""Model specs are read strictly: typos and missing files are errors that name the thing."""

from pathlib import Path

import pytest

from compiler import spec
from compiler.errors import BadInput

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["digits-cnn", "efficientnet-lite0", "minilm-l6"])
def test_bundled_specs_load(name):
    s = spec.resolve(name)
    assert s.name == name and s.inputs and s.golden is not None


def test_typo_key_names_file_key_and_suggestion(tmp_path):
    text = (REPO / "models/digits-cnn.toml").read_text().replace("[golden]\nsource", "[golden]\nsourse")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(BadInput) as e:
        spec.load_spec(p)
    msg = str(e.value)
    assert str(p) in msg and "[golden]" in msg and "'sourse'" in msg and "'source'" in msg


def test_typo_optional_key_suggests_known(tmp_path):
    text = (REPO / "models/digits-cnn.toml").read_text().replace("limit = 32", "limt = 32")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(BadInput, match=r"\[golden\]: unknown key 'limt' \(did you mean 'limit'\?\)"):
        spec.load_spec(p)


def test_unknown_top_level_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text((REPO / "models/digits-cnn.toml").read_text() + '\nexporter = "dynamo"\n')
    with pytest.raises(BadInput, match="unknown key 'exporter'"):
        spec.load_spec(p)


def test_invalid_toml_names_file(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("name = \n")
    with pytest.raises(BadInput, match="broken.toml.*not valid TOML"):
        spec.load_spec(p)


def test_missing_model_file():
    with pytest.raises(BadInput, match="does-not-exist.onnx.*does not exist"):
        spec.resolve("does-not-exist.onnx")


def test_unknown_name_lists_bundled_models():
    with pytest.raises(BadInput, match="digits-cnn"):
        spec.resolve("no-such-model")


def test_bad_dtype_is_rejected(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text((REPO / "models/digits-cnn.toml").read_text().replace('dtype = "float32"', 'dtype = "float33"'))
    with pytest.raises(BadInput, match="'dtype' is 'float33'.*did you mean 'float32'"):
        spec.load_spec(p)
