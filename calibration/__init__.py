"""Calibration: INT8 (QDQ) and FP16 / mixed precision with accuracy-driven fallback.

Not built yet (issue 4). Until then targets allow only the precisions their backends run
without calibration, and `build --precision int8` is refused by the profile.
"""
