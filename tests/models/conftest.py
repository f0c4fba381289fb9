"""Zoo tests run from the repository root (golden/<model> is relative to it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)


def build(tmp_path: Path, name: str, target: str, precision: str, *args: str) -> tuple[int, Path, dict | None]:
    """`compiler build` into tmp_path; (exit code, artifact dir, manifest or None)."""
    out = tmp_path / f"{name}-{target}-{precision}"
    code = main(["build", "--quiet", "--model", name, "--target", target, "--precision", precision, "--out", str(out), *args])
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else None
    return code, out, manifest
