"""Finishing an artifact directory: parity.json, report.md, the sealed manifest, build.json.

The one writer of `manifest.json` (a build, `best`, `--from-artifact` all call `finalize`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

from compiler import report as report_mod
from compiler.artifact.files import MANIFEST, REPORT_HTML, UNSEALED, VOLATILE, file_table, json_safe, write_json
from compiler.artifact.integrity import seal
from compiler.verify import ParityReport

SCHEMA = 3  # 3: manifest_sha256 seals the manifest's own content


def volatile_facts(extra: dict[str, Any]) -> dict[str, Any]:
    """build.json: the facts that differ between two builds of the same inputs."""
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cwd": os.getcwd(), **extra}


def finalize(directory: Path, manifest: dict[str, Any], parity: ParityReport | None,
             volatile: dict[str, Any] | None = None) -> None:
    """Write parity.json, report.md, manifest.json (which hashes every other content file and
    itself) and build.json (the volatile facts, outside the hash)."""
    if parity is not None:
        write_json(directory / "parity.json", parity.as_dict())
    manifest["files"] = file_table(directory, exclude=(*UNSEALED, "report.md"))
    (directory / "report.md").write_text(report_mod.render(manifest, parity))
    manifest["files"] = file_table(directory)
    manifest.update(json_safe(manifest))  # strict JSON: a NaN statistic (a candidate's) becomes null
    seal(manifest)
    write_json(directory / MANIFEST, manifest)
    if volatile is not None:
        write_json(directory / VOLATILE, volatile_facts(volatile))
    write_report_html(directory, manifest)


def write_report_html(directory: Path, manifest: dict[str, Any], latency: list[dict[str, Any]] | None = None) -> Path:
    """report.html from what the directory holds (parity, calibration, debug, build facts)."""
    from compiler import report_html

    def load(name: str) -> Any:
        p = directory / name
        return json.loads(p.read_text()) if p.is_file() else None

    path = directory / REPORT_HTML
    path.write_text(report_html.render(manifest, load("parity.json"), load("calibration.json"), load("debug.json"),
                                       load(VOLATILE), latency))
    return path
