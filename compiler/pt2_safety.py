"""Refuse `.pt2` archives that would run code when loaded, before torch opens them.

``torch.export.load`` unpickles with ``weights_only=False`` whatever the archive marks as
pickled: weights and tensor constants with ``use_pickle``, custom/opaque script objects, and
sample inputs that the restricted unpickler rejects (it then retries unrestricted); an
AOTInductor package carries shared libraries it loads; the pre-2.8 zip layout goes through the
same fallback. torch documents "never load data from an untrusted source" and offers no safe
mode, so this module reads the archive as a zip and its JSON configs, and allows only entries
that torch reads as raw bytes or through the restricted unpickler. Anything else is refused with
the entry named, unless the user passed ``--trust-pickle`` (trusting the file's author).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from compiler.errors import BadInput

# What torch.export.save writes, relative to the archive root (torch/_C/_export/pt2_archive_constants).
_PLAIN = ("archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id")
_RAW_DIRS = ("data/weights/", "data/constants/")  # raw tensor bytes, described by the *_config.json
_PICKLE_PREFIXES = ("custom_obj_", "opaque_obj_")  # constants that are always pickled objects


def _refuse(path: Path, entry: str, why: str) -> BadInput:
    return BadInput(
        f"{str(path)!r}: archive entry {entry!r} {why}; loading it would execute code from the file. "
        "model-compiler refuses pickled payloads in .pt2 archives. If you trust whoever made this file, "
        "pass --trust-pickle; otherwise re-save it with plain tensors (torch.export.save of a model "
        "without tensor subclasses or script objects)."
    )


def check(path: Path) -> None:
    """Raise BadInput naming the first entry of the .pt2 at `path` that torch would unpickle
    or load as native code."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BadInput(f"{str(path)!r} is not a torch.export .pt2 archive (not a zip file: {e}).") from None
    with zf:
        names = zf.namelist()
        roots = {n.split("/", 1)[0] for n in names if "/" in n}
        if len(roots) != 1 or not any(n.endswith("/archive_format") for n in names):
            raise BadInput(
                f"{str(path)!r} is not a torch.export .pt2 archive in the format torch ≥ 2.8 writes "
                "(one root folder with archive_format); older layouts load through pickle and are refused."
            )
        root = roots.pop() + "/"
        models = []
        for name in names:
            rel = name[len(root):] if name.startswith(root) else name
            if name.endswith("/") or rel in _PLAIN:
                continue
            if rel.startswith("models/") and rel.endswith(".json"):
                models.append(rel[len("models/"):-len(".json")])
            elif rel.startswith(_RAW_DIRS) or rel.startswith("data/sample_inputs/") or rel.startswith("extra/"):
                if rel.startswith("data/constants/") and rel.split("/")[-1].startswith(_PICKLE_PREFIXES):
                    raise _refuse(path, name, "is a pickled script object")
            else:
                raise _refuse(path, name, "is not part of a plain exported program (e.g. an AOTInductor library)")
        for model in models:
            for kind in ("weights", "constants"):
                cfg_name = f"{root}data/{kind}/{model}_{kind}_config.json"
                if cfg_name not in names:
                    continue
                try:
                    config = json.loads(zf.read(cfg_name)).get("config", {})
                except (ValueError, AttributeError) as e:
                    raise BadInput(f"{str(path)!r}: {cfg_name!r} is not valid JSON ({e}).") from None
                for fqn, meta in config.items():
                    if not isinstance(meta, dict):
                        raise BadInput(f"{str(path)!r}: {cfg_name!r} entry {fqn!r} is not an object.")
                    if meta.get("use_pickle") or str(meta.get("path_name", "")).startswith(_PICKLE_PREFIXES):
                        raise _refuse(path, f"{root}data/{kind}/{meta.get('path_name')}",
                                      f"holds {kind[:-1]} {fqn!r} as a pickle (use_pickle)")
            sample = f"{root}data/sample_inputs/{model}.pt"
            if sample in names:
                _check_sample_inputs(path, sample, zf.read(sample))


def _check_sample_inputs(path: Path, entry: str, data: bytes) -> None:
    """torch loads sample inputs with the restricted (weights-only) unpickler first and falls back
    to the unrestricted one if that fails: accept only what the restricted one reads."""
    if not data:
        return
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # noqa: BLE001 - the restricted unpickler raises UnpicklingError and others
        raise _refuse(path, entry, f"needs the unrestricted unpickler ({type(e).__name__})") from None
