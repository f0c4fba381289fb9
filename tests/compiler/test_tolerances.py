import pytest

from compiler import tolerances
from compiler.errors import BadInput
from compiler.spec import OutputKind


def test_overrides_merge_per_output_then_default_key(tmp_path):
    p = tmp_path / "tolerances.toml"
    p.write_text(
        '[fp32.""]\nmax_abs = 1e-3\nreason = "all"\n'
        '[fp32.logits]\ncosine = 0.5\nreason = "one"\n'
        '[int8."@metric"]\nmax_drop = 0.01\n'
    )
    t = tolerances.load(p)
    assert t.for_output("fp32", "logits", OutputKind.LOGITS).cosine == 0.5
    assert t.for_output("fp32", "other", OutputKind.TENSOR).max_abs == 1e-3
    assert t.for_output("fp16", "logits", OutputKind.LOGITS) == tolerances.DEFAULTS["fp16"][OutputKind.LOGITS]
    assert t.for_metric("int8").max_drop == 0.01
    assert t.for_metric("fp32") == tolerances.DEFAULT_METRIC["fp32"]


def test_rendered_file_round_trips():
    kinds = {"logits": OutputKind.LOGITS, "emb": OutputKind.EMBEDDING}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.toml"
        p.write_text(tolerances.render(kinds, with_metric=True))
        t = tolerances.load(p)
    for prec in tolerances.PRECISIONS:
        for name, kind in kinds.items():
            assert t.for_output(prec, name, kind) == tolerances.DEFAULTS[prec][kind]


def test_typo_gate_is_an_error(tmp_path):
    p = tmp_path / "tolerances.toml"
    p.write_text('[fp32.logits]\nmax_abz = 1e-3\n')
    with pytest.raises(BadInput, match="unknown key 'max_abz'.*did you mean 'max_abs'"):
        tolerances.load(p)
