"""The pass manager: records, IR dumps, per-pass golden verification that names a wrong pass."""

from __future__ import annotations

import json

import onnx_ir as ir
import pytest

from compiler.cli import main
from compiler.passes import PASSES, PIPELINES, Pass, Phase
from compiler.passes.base import PassContext
from compiler.passes.manager import DumpIR, run
from tests.compiler.passes.helpers import model, ops


class FlipRelu(Pass):
    """Deliberately wrong: turns every Relu into Neg (changes the outputs)."""

    name = "flip_relu"
    description = "a broken pass used by tests"

    def call(self, m: ir.Model) -> ir.passes.PassResult:
        changed = False
        for n in m.graph:
            if n.op_type == "Relu":
                n.op_type = "Neg"
                changed = True
        return ir.passes.PassResult(m, changed)


@pytest.fixture
def broken_pipeline(monkeypatch):
    monkeypatch.setitem(PASSES, FlipRelu.name, FlipRelu)
    monkeypatch.setitem(PIPELINES, "broken", (Phase("cleanup", ("dead_code",)), Phase("oops", ("flip_relu",))))
    return "broken"


def test_verify_passes_names_the_wrong_pass(tmp_path, tiny_onnx, broken_pipeline, capsys):
    path, golden = tiny_onnx
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--model", str(path), "--target", "cpu", "--golden", str(golden), "--out", str(out),
                 "--pipeline", broken_pipeline, "--verify-passes"])
    err = capsys.readouterr().err
    assert code == 1
    assert "pass 'flip_relu' broke parity: output 'y'" in err and "max_abs" in err
    assert not out.exists()  # stopped at the pass: no artifact


def test_without_verify_passes_the_final_check_still_fails(tmp_path, tiny_onnx, broken_pipeline):
    path, golden = tiny_onnx
    out = tmp_path / "out"
    code = main(["build", "--quiet", "--model", str(path), "--target", "cpu", "--golden", str(golden), "--out", str(out),
                 "--pipeline", broken_pipeline])
    assert code == 1 and json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_records_and_ir_dumps(tmp_path):
    m = model("""
        <ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 3] x) => (float[2, 3] y) {
            a = Identity (x)
            unused = Neg (x)
            y = Relu (a)
        }""")
    dump = tmp_path / "ir"
    res = run(m, (Phase("p", ("identity_dropout", "dead_code"), steps=3),), PassContext(), [DumpIR(dump)])
    assert ops(res.model) == ["Relu"]
    names = sorted(p.name for p in dump.iterdir())
    assert names[0] == "000_input.onnx" and names[1] == "001_identity_dropout.onnx" and names[2] == "002_dead_code.onnx"
    first = res.records[0]
    assert first["name"] == "identity_dropout" and first["nodes_before"] == 3 and first["nodes_after"] == 2
    assert first["modified"] and first["counts"] == {"identity": 1}
    # fixpoint: the second sweep changes nothing and the manager stops there
    assert [r["name"] for r in res.records] == ["identity_dropout", "dead_code", "identity_dropout", "dead_code"]
    assert not any(r["modified"] for r in res.records[2:])


def test_unknown_pipeline_is_bad_input(tmp_path, tiny_onnx, capsys):
    path, golden = tiny_onnx
    code = main(["build", "--quiet", "--model", str(path), "--target", "cpu", "--golden", str(golden),
                 "--out", str(tmp_path / "o"), "--pipeline", "defualt"])
    assert code == 2 and "unknown pipeline 'defualt'" in capsys.readouterr().err


def test_passes_command_lists_every_pass(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for name, cls in PASSES.items():
        assert f"{name}" in out and cls.description in out
