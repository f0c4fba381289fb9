"""model-compiler: PyTorch / ONNX models to verified, hardware-targeted engines.

Stages (see ../shared/DESIGN.md): frontend → pass manager → calibration → backend, every
engine checked against stored golden vectors.
"""

__version__ = "0.1.0"
