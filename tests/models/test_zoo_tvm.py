"""TVM targets: the rpi build cross-compiles an aarch64 library and verifies its x86 twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.profile import load_profile
from targets import get_backend

REPO = Path(__file__).resolve().parents[2]
EM_AARCH64, EM_X86_64 = 183, 62


def elf_machine(path: Path) -> int:
    """e_machine from the ELF header (what `file` reports as 'ARM aarch64' / 'x86-64')."""
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[5] == 1  # little-endian
    return int.from_bytes(head[18:20], "little")


def test_rpi_builds_aarch64_library_and_verifies_the_host_twin(tmp_path, capsys):
    prof = load_profile("rpi")
    avail = get_backend(prof.backend).available(prof)
    if not avail.can_compile:
        pytest.skip(avail.reason)
    out = tmp_path / "rpi"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "rpi", "--out", str(out)]) == 0
    assert elf_machine(out / "model.so") == EM_AARCH64
    assert elf_machine(out / "model.host.so") == EM_X86_64
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "passed"
    (deferred,) = manifest["deferred"]
    assert deferred["step"] == "verify-on-device" and deferred["command"] == "python -m compiler verify --artifact {artifact} --on-device"
    assert json.loads((out / "parity.json").read_text())["outputs"]["logits"]["max_abs"] <= 1e-4
    capsys.readouterr()
    assert main(["verify", "--artifact", str(out), "--on-device"]) == 3  # an aarch64 library cannot run here
    assert "aarch64 library" in capsys.readouterr().err


def test_rpi_without_cross_compiler_exits_3_naming_it(tmp_path, monkeypatch, capsys):
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if "aarch64" in name else real(name, *a, **k))
    out = tmp_path / "rpi"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "rpi", "--out", str(out)]) == 3
    assert "aarch64-linux-gnu-gcc" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # ≈ 22 s of LLVM; the digits CNN and rpi tests run TVM in the default suite
def test_tvm_x86_efficientnet_parity(tmp_path):
    out = tmp_path / "tvm"
    assert main(["build", "--quiet", "--model", "efficientnet-lite0", "--target", "tvm-x86", "--out", str(out)]) == 0
    assert json.loads((out / "parity.json").read_text())["outputs"]["logits"]["max_abs"] <= 1e-4


def test_tvm_refuses_a_layernorm_whose_mean_is_read(tmp_path, capsys):
    """TVM's Relax frontend returns LayerNormalization's Mean/InvStdDev as shape (); a model that
    reads them is refused up front (it was a parity failure after a full compile)."""
    from tests.coverage import node_cases

    case = next(c for c in node_cases.all_cases() if c.name == "test_layer_normalization_2d_axis0")
    model, golden = node_cases.write(case, tmp_path / case.name)
    code = main(["build", "--quiet", "--no-cache", "--target", "tvm-x86", "--model", str(model), "--golden", str(golden),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "Mean / InvStdDev with the wrong shape" in capsys.readouterr().err
