"""Files of an artifact: sha256 of a file, the manifest's file table, strict JSON.

The core of the artifact format, imported by backends (a TensorRT plan's hash) and by the
readers and writers in this package alike.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
VOLATILE = "build.json"  # time, host, durations, input locations: excluded from the content hash
REPORT_HTML = "report.html"  # a view of manifest, parity and build.json (timeline, latency): outside the hash too
UNSEALED = (MANIFEST, VOLATILE, REPORT_HTML)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path, exclude: tuple[str, ...] = UNSEALED) -> list[dict[str, Any]]:
    """Every file under `root` (sorted), with size and sha256."""
    rows = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in exclude:
            rows.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return rows


def content_sha256(files: list[dict[str, Any]]) -> str:
    """One hash over the file table: equal for two artifacts with identical content files."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return h.hexdigest()


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (strict JSON has no NaN/Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (no NaN/Infinity: a non-finite statistic is written as null)."""
    path.write_text(json.dumps(json_safe(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
