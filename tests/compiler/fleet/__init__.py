"""Helpers shared by the fleet tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ray_processes() -> list[str]:
    """Ray processes still running. A zombie (`<defunct>`: exited, not yet reaped by its new
    parent, this sandbox's init, which reaps late under load) holds nothing and is not counted."""
    out = subprocess.run(["pgrep", "-af", "raylet|gcs_server|ray::"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if "pgrep" not in ln and not _zombie(int(ln.split()[0]))]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True  # gone meanwhile
