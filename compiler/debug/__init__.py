"""When parity fails, name the layer: localization on every backend, precision bisection.

- `observe`: intermediate tensors of the engine (built again with them exposed) and of the float
  reference, matched by ONNX value name.
- `divergence`: per-tensor statistics and the first divergence, with the PyTorch source.
- `localize`: the two together for an artifact → `debug.json`.
- `bisect`: the smallest keep-float list that makes the engine pass.
- `command`: `python -m compiler debug`.

Below the build (`compiler.build` calls `localize` when parity fails); above artifacts and targets.
"""
