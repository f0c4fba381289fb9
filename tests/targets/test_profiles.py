import pytest

from compiler.errors import BadInput
from compiler.profile import PROFILES_DIR, known_profiles, load_profile


@pytest.mark.parametrize("name", known_profiles())
def test_every_profile_loads_and_its_default_precision_is_allowed(name):
    p = load_profile(name)
    assert p.default_precision in p.precisions
    assert p.check_precision(None) == p.default_precision


def test_disallowed_precision_names_target_and_allowed():
    with pytest.raises(BadInput, match="target 'cpu' does not support precision 'bf16'; it supports fp32"):
        load_profile("cpu").check_precision("bf16")


def test_profile_typo_is_rejected(tmp_path, monkeypatch):
    import compiler.profile as prof

    text = (PROFILES_DIR / "cpu.toml").read_text().replace("[precision]\nallowed", "[precision]\nalowed")
    (tmp_path / "cpu.toml").write_text(text)
    monkeypatch.setattr(prof, "PROFILES_DIR", tmp_path)
    with pytest.raises(BadInput, match="missing required key 'allowed'.*'alowed'"):
        prof.load_profile("cpu")


@pytest.mark.parametrize("name", known_profiles())
def test_every_packaged_profile_passes_its_backends_option_check(name):
    """Each backend declares its [options]; every shipped profile is typed by them."""
    from targets import BACKENDS
    from targets import load_profile as typed

    if load_profile(name).backend not in BACKENDS:
        pytest.skip("backend not implemented")
    p = typed(name)
    assert p.option("intra_op_num_threads") >= 1 and p.option("precision_gate") in ("onnxruntime", "engine")


USER_PROFILE = """
name = "nuc-openvino"
backend = "openvino"
[device]
name = "intel-nuc"
arch = "x86_64"
[precision]
allowed = ["fp32", "fp16"]
default = "fp32"
[options]
{options}
"""


@pytest.mark.parametrize("options, says", [
    ('devcie = "CPU"', "unknown key 'devcie' (did you mean 'device'?) for backend 'openvino'"),
    ('intra_op_num_threads = "two"', "intra_op_num_threads = 'two' must be an integer"),
    ("intra_op_num_threads = 0", "intra_op_num_threads = 0 is outside [1, 1024]"),
    ('precision_gate = "device"', "precision_gate = 'device' must be one of 'onnxruntime', 'engine'"),
    ("static_shapes = { batch = [1, -8] }", "static_shapes = {'batch': [1, -8]}: 'batch' must map to a list of integers ≥ 1"),
])
def test_a_users_profile_with_a_bad_option_is_refused_naming_file_and_key(tmp_path, capsys, options, says):
    from compiler.cli import main

    path = tmp_path / "nuc.toml"
    path.write_text(USER_PROFILE.format(options=options))
    code = main(["build", "--quiet", "--model", "digits-cnn", "--target", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err and "[options]" in err and says in err
    assert not (tmp_path / "out").exists()


def test_a_valid_users_profile_builds_and_its_artifact_verifies_anywhere(tmp_path, capsys):
    import shutil

    from compiler.cli import main

    path = tmp_path / "nuc.toml"
    path.write_text(USER_PROFILE.format(options='device = "CPU"\nstatic_shapes = { batch = [1] }'))
    out = tmp_path / "out"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", str(path), "--out", str(out)]) == 0
    path.unlink()  # the artifact carries its profile (target.toml): it verifies without the user's file
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    assert main(["verify", "--artifact", str(moved)]) == 0
    assert "nuc-openvino" in (moved / "target.toml").read_text()
