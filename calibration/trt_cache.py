"""TensorRT calibration cache (the text format of IInt8Calibrator.writeCalibrationCache).

Line 1 names the TensorRT version and calibrator (``TRT-<ver>-EntropyCalibration2``); then one
line per tensor: ``<name>: <hex>`` where <hex> is the big-endian IEEE-754 float32 of the
per-tensor scale = amax / 127 (symmetric INT8). TensorRT reads it on the implicit-quantization
(and DLA) path instead of calibrating on the device. Written by hand: no library here writes it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from calibration.ranges import Ranges

HEADER = "TRT-{version}-EntropyCalibration2"


def scale_hex(amax: float) -> str:
    return struct.pack(">f", np.float32(max(amax, 1e-12) / 127.0)).hex()


def render(ranges: Ranges, trt_version: str = "100300") -> str:
    lines = [HEADER.format(version=trt_version)]
    for name, r in ranges.as_dict().items():
        lines.append(f"{name}: {scale_hex(max(abs(r['min']), abs(r['max'])))}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> tuple[str, dict[str, float]]:
    """Header and {tensor: scale} (used by tests and to read caches back)."""
    head, *rows = text.strip().splitlines()
    scales = {}
    for row in rows:
        name, _, hexv = row.rpartition(": ")
        scales[name] = struct.unpack(">f", bytes.fromhex(hexv))[0]
    return head, scales


def write(ranges: Ranges, path: Path, trt_version: str = "100300") -> Path:
    path.write_text(render(ranges, trt_version))
    return path
