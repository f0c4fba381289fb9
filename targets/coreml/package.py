"""Make a saved ``.mlpackage`` a function of its contents (same model → same bytes, same modes).

Hand-written because coremltools (9.0) has no deterministic-save option. What ``MLModel.save``
leaves that differs from run to run, and what `make_deterministic` does about it:

- ``Manifest.json``: every item (``model.mlmodel``, ``weights``) is keyed by a fresh random UUID
  (``ModelPackage::generateIdentifier``), and ``rootModelIdentifier`` names the model's. Each
  identifier becomes a name-based UUID of the item's path inside ``Data/``, the root keeps
  pointing at the same item, and the file is rewritten the way the package library writes it
  (keys sorted, 4-space indent, trailing newline).
- ``model.mlmodel``: the spec's ``userDefined`` metadata is a protobuf map, serialized in hash
  order, and holds ``com.github.apple.coremltools.conversion_date`` (a day: the time of a build
  belongs in ``build.json``). The date is dropped, and the spec is re-serialized with
  ``deterministic=True`` (map entries sorted by key, here and in the MIL program's maps). The
  coremltools version and source entries stay.
- Modes: the converter's temporary files and directories are 0600/0700 and ``save`` copies them
  with their modes; every file becomes 0666 and every directory 0777, less the umask, as any
  other file of the artifact.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

MANIFEST = "Manifest.json"
DATA = "Data"
CONVERSION_DATE = "com.github.apple.coremltools.conversion_date"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/apple/coremltools/mlpackage-item")


def item_identifier(path: str) -> str:
    """The identifier of the package item at `path` (relative to ``Data/``): a UUID, as the
    package library's own, but a function of the path."""
    return str(uuid.uuid5(_NAMESPACE, path))


def make_deterministic(package: Path) -> None:
    from coremltools.proto import Model_pb2

    manifest = json.loads((package / MANIFEST).read_text(encoding="utf-8"))
    entries = manifest.get("itemInfoEntries", {})
    renamed = {old: item_identifier(entry["path"]) for old, entry in entries.items()}
    if len(set(renamed.values())) != len(renamed):  # the package library refuses this; never guess
        raise ValueError(f"{package / MANIFEST}: two items share a path: {sorted(e['path'] for e in entries.values())}")
    manifest["itemInfoEntries"] = {renamed[old]: entry for old, entry in entries.items()}
    root = manifest.get("rootModelIdentifier")
    if root is not None:
        manifest["rootModelIdentifier"] = renamed[root]
        spec_path = package / DATA / entries[root]["path"]
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_path.read_bytes())
        spec.description.metadata.userDefined.pop(CONVERSION_DATE, None)
        spec_path.write_bytes(spec.SerializeToString(deterministic=True))
    (package / MANIFEST).write_text(json.dumps(manifest, indent=4, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")

    umask = os.umask(0)
    os.umask(umask)
    os.chmod(package, 0o777 & ~umask)
    for path in package.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
