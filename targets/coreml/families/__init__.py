"""One module per ONNX op family; importing this package registers every Core ML lowering."""

from targets.coreml.families import conv_pool, elementwise, gather, matmul, recurrent, reduce_norm, shape  # noqa: F401
