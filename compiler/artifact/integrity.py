"""Integrity of an artifact: the manifest seals its own content and lists every file.

`seal` sets ``content_sha256`` (over the file table) and ``manifest_sha256`` (over the manifest's
own canonical JSON); `check_integrity` refuses an edited manifest, and a file edited, missing or
added after the build, naming it. Integrity, not authenticity: whoever recomputes every hash can
forge an artifact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compiler.artifact.files import UNSEALED, content_sha256, sha256_file
from compiler.errors import BadInput

SEAL = "manifest_sha256"  # the manifest's hash over its own content (every key but this one)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its seal: an edit of any key changes it."""
    body = {k: v for k, v in manifest.items() if k != SEAL}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()).hexdigest()


def seal(manifest: dict[str, Any]) -> None:
    """Set `content_sha256` (over the file table) and the manifest's own hash: `check_integrity`
    then detects an edited manifest, an edited, missing or added file."""
    manifest["content_sha256"] = content_sha256(manifest["files"])
    manifest[SEAL] = manifest_digest(manifest)


def check_integrity(root: Path, manifest: dict[str, Any], where: Path) -> None:
    """Refuse (BadInput, naming what) an artifact whose manifest was edited after the build, or
    whose files are not exactly the ones it lists, with their sha256. Integrity, not
    authenticity: whoever rewrites every hash can forge an artifact (sign it for that)."""
    if manifest.get(SEAL) != manifest_digest(manifest):
        why = "has no seal (written by an older model-compiler?)" if SEAL not in manifest else "was edited after the build"
        raise BadInput(f"{str(where)!r} {why}: its {SEAL} does not match its content; refusing to trust it. "
                       "Rebuild the artifact.")
    if manifest.get("content_sha256") != content_sha256(manifest["files"]):
        raise BadInput(f"{str(where)!r}: content_sha256 does not match its file table; refusing to trust it.")
    listed = {f["path"] for f in manifest["files"]}
    for f in manifest["files"]:
        p = root / f["path"]
        if not p.is_file() or p.is_symlink():
            raise BadInput(f"artifact file {str(p)!r} is missing (listed in {str(where)!r}).")
        if sha256_file(p) != f["sha256"]:
            raise BadInput(f"artifact file {str(p)!r} differs from its sha256 in the manifest (edited after the build).")
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if (p.is_file() or p.is_symlink()) and rel not in listed and rel not in UNSEALED:
            raise BadInput(f"{str(p)!r} is not listed in {str(where)!r}: a file was added after the build; "
                           "refusing to load the artifact.")
