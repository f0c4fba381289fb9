"""One module per ONNX op family; importing this package registers every lowering."""

from targets.stablehlo.families import conv_pool, elementwise, gather, matmul, quant, recurrent, reduce_norm, shape  # noqa: F401
