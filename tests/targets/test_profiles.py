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
