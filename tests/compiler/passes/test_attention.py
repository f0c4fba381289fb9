"""Attention fusion on a real (small, randomly initialised) BERT layer exported by dynamo."""

import numpy as np
import pytest
import torch

from compiler import ir as irh
from tests.compiler.passes.helpers import assert_same, ops, run_pass


class TinyBert(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=16)
        self.bert = BertModel(cfg).eval()

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


@pytest.fixture(scope="module")
def bert_ir():
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.int64)
    prog = torch.onnx.export(TinyBert().eval(), (ids, mask), dynamo=True, input_names=["input_ids", "attention_mask"],
                             output_names=["hidden"], dynamic_shapes=({0: "batch", 1: "seq"}, {0: "batch", 1: "seq"}))
    return irh.to_proto(prog.model)


def test_attention_fuses_into_ort_attention(bert_ir):
    import onnx_ir as ir

    m = ir.from_proto(bert_ir)
    for name in ("shape_inference", "constant_folding", "shape_folding", "dead_code"):  # what precedes it in the pipeline
        m = run_pass(name, m)[1].model
    original, res = run_pass("attention", m)
    assert res.counts.get("sdpa") == 1 and res.counts.get("mha") == 1 and res.counts.get("attention") == 1
    assert ops(res.model).count("com.microsoft::Attention") == 1 and "Softmax" not in ops(res.model)
    rng = np.random.default_rng(0)
    mask = np.ones((3, 5), np.int64)
    mask[1, 3:] = 0  # padding must still be masked
    feeds = {"input_ids": rng.integers(0, 50, (3, 5)).astype(np.int64), "attention_mask": mask}
    assert_same(original, res.model, feeds, atol=1e-5)


def test_attention_not_run_for_targets_without_contrib_ops(bert_ir):
    import onnx_ir as ir

    from compiler.passes import PassContext
    from compiler.passes.manager import run

    res = run(ir.from_proto(bert_ir), "default", PassContext(frozenset({"LayerNormalization"})))
    assert {s["name"] for s in res.skipped} == {"attention", "gelu"}
    assert not any(n.domain == "com.microsoft" for n in res.model.graph)
