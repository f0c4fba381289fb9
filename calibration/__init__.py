"""Calibration: INT8 (QDQ) and FP16 / mixed precision with accuracy-driven fallback.

- `data`: calibration batches from the spec's source, checked (names, shapes, NaN/Inf) as they stream
- `ranges`: minmax / percentile / entropy (ORT calibrators, one batch per call) and MSE (ours)
- `qdq`: QDQ insertion by ORT's quantizer with the target profile's preset
- `sensitivity`, `fallback`: per-node local SNR loss; return the worst nodes to float until the gate holds
- `fp16`: ORT's float16 converter with range analysis and the target's fp32-kept ops
- `trt_cache`: TensorRT calibration cache (text format)
- `precision`: the `int8()` / `fp16()` entry points the build calls
"""
