"""report.html as a person sees it: every artifact has one, self-contained (nothing fetched, no
script), and it renders in a real browser — Debian's Chromium, headless — with no console error,
its plots drawn (SVG in the DOM, a screenshot that is not blank)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "digits"
    assert main(["build", "--quiet", "--model", "digits-cnn", "--target", "cpu", "--precision", "int8", "--out", str(out),
                 "--no-cache"]) == 0
    return out


def test_every_artifact_has_a_self_contained_report(artifact):
    html = (artifact / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "digits-cnn → cpu (int8): " in html
    assert html.count("<svg") >= 2  # precision map and build timeline
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched
    for section in ("Parity", "Precision map", "Build timeline"):
        assert f"<h2>{section}</h2>" in html
    assert main(["verify", "--artifact", str(artifact)]) == 0  # outside the seal, like build.json


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make setup installs Debian's chromium where apt runs as root)")
def test_the_report_renders_in_chromium_with_its_plots(artifact, tmp_path):
    from PIL import Image

    url = (artifact / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 2 and "Precision map" in dom.stdout
    shot = tmp_path / "shot.png"
    r = subprocess.run([CHROMIUM, *FLAGS, *profile, "--enable-logging=stderr", "--v=0", "--window-size=1200,1600",
                        f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert console == [], console
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 5.0  # not a blank page
    assert (pixels < 128).mean() > 0.005  # text and plot lines are drawn
