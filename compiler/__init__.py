"""model-compiler: PyTorch / ONNX models to verified, hardware-targeted engines.

Stages: frontend → pass manager → calibration → backend, every engine checked against stored
golden vectors.
"""

import os as _os

# onnxruntime 1.31 on Linux starts Microsoft's 1DS telemetry when imported: it writes a device id
# to $TMPDIR/.ses and would upload events to mobile.events.data.microsoft.com. A build talks to
# no host and leaves nothing behind, so it is off unless the user turns it on themselves.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
