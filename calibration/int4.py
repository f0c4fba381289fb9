"""Weight-only int4: block-wise 4-bit weights for MatMuls with a constant 2-D weight and for
embedding tables (Gather), activations in float, through ONNX Runtime's own quantizer (`MatMulNBitsQuantizer` → `com.microsoft::
MatMulNBits` / `GatherBlockQuantized`, which ORT's CPU provider runs).

Algorithms are the library's: "rtn" (round to nearest, asymmetric per block) and "hqq"
(half-quadratic quantization of the MatMuls, no calibration data; ORT's HQQ has no Gather, so
tables take RTN). Nothing here quantizes by hand;
this module chooses the MatMuls, passes the exclusions of the accuracy fallback, and ranks the
quantized MatMuls by the error each adds (for that fallback).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from calibration.sensitivity import NodeSensitivity
from calibration.weight_loss import loss_across

ALGORITHMS = ("rtn", "hqq")
BLOCK_SIZE = 32  # ORT's MatMulNBits block (16…256, a power of 2); 32 keeps MiniLM-sized layers accurate
MIN_K = BLOCK_SIZE  # a weight with fewer input rows than one block stays float
OPS = ("MatMul", "Gather")  # Gather: an embedding table, blocks along its rows (GatherBlockQuantized)
AXES = (("MatMul", 0), ("Gather", 1))


def candidates(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """What ORT's quantizer takes: MatMuls whose input 1 is a constant 2-D float32 [K, N] with
    K ≥ one block, and Gathers of rows of a constant 2-D float32 table (embeddings)."""
    inits = {t.name: t for t in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx") or len(n.input) < 2:
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        weight = n.input[1] if n.op_type == "MatMul" else n.input[0] if n.op_type == "Gather" and axis == 0 else None
        if weight not in inits:
            continue
        w = inits[weight]
        if len(w.dims) == 2 and w.data_type == onnx.TensorProto.FLOAT and w.dims[0 if n.op_type == "MatMul" else 1] >= MIN_K:
            out.append(n)
    return out


def _activation(n: onnx.NodeProto) -> str:
    """The input that carries data (a MatMul's left operand; a Gather's indices)."""
    return n.input[0] if n.op_type == "MatMul" else n.input[1]


def quantize(model: onnx.ModelProto, algorithm: str, exclude: list[str], block_size: int = BLOCK_SIZE) -> onnx.ModelProto:
    """`model` with every candidate not in `exclude` in 4-bit blocks (MatMulNBits, GatherBlockQuantized)."""
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    if algorithm not in ALGORITHMS:
        raise ValueError(f"int4 algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    if not [n for n in candidates(model) if n.name not in set(exclude)]:
        return model
    steps = [("MatMul",), ("Gather",)] if algorithm == "hqq" else [OPS]  # ORT's HQQ has no Gather: RTN for tables
    quiet = logging.getLogger("onnxruntime.quantization")
    level = quiet.level
    # one INFO line per node, and a WARNING that it lifts opset < 21 to 21 for the int4 type (the
    # ops it adds are com.microsoft's; the model runs, as the gate and verify check)
    quiet.setLevel(logging.ERROR)
    try:
        for ops in steps:
            if ops == ("MatMul",) and algorithm == "hqq":
                config = nbits.HQQWeightOnlyQuantConfig(block_size=block_size, bits=4, op_types_to_quantize=ops, quant_axes=AXES)
            else:
                # asymmetric blocks: measured on MiniLM (golden, min row cosine) 0.980 against 0.965
                # symmetric; accuracy_level 4 lets ORT's CPU kernel compute in int8 (its fast path;
                # it cost nothing measurable in accuracy there: 0.96500 against 0.96512)
                config = nbits.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False, accuracy_level=4,
                                                            op_types_to_quantize=ops, quant_axes=AXES)
            m = onnx.ModelProto()
            m.CopyFrom(model)
            # nodes_to_exclude, not nodes_to_include: the quantizer ORs the latter with its op types
            q = nbits.MatMulNBitsQuantizer(m, block_size=block_size, nodes_to_exclude=list(exclude), algo_config=config)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch.from_numpy on ORT's read-only arrays (HQQ)
                q.process()
            model = q.model.model
    finally:
        quiet.setLevel(level)
    return model


def rank(float_model: onnx.ModelProto, int4_model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> list[NodeSensitivity]:
    """Quantized MatMuls and tables (by their float model's name), worst first, by the SNR each
    loses across itself (`weight_loss.loss_across`)."""
    ranked = loss_across(float_model, int4_model, candidates(float_model), _activation, feeds)
    # tables last: a Gather's indices are exact, so its loss is measured from the 200 dB cap and
    # would rank it first, though its rows add little (MiniLM, golden: min row cosine 0.9801 with
    # the table in int4 against 0.9817 without) and it is most of the bytes int4 saves
    return sorted(ranked, key=lambda s: (s.op_type == "Gather", s.snr_db))


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's initializers (what int4 shrinks)."""
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))
