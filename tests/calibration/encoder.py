"""A tiny attention encoder with no mask (whisper-style): its softmax sits between two int8
MatMuls, so LiteRT gets a quantized SOFTMAX, whose output parameters its kernel fixes."""

from __future__ import annotations

import numpy as np
import torch


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = torch.nn.Linear(16, 32)
        self.layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.out = torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.out(self.layer(self.inp(x)))


def build():
    return Encoder().eval(), (torch.randn(2, 10, 16),)


def calib():
    return {"x": np.random.default_rng(0).standard_normal((32, 10, 16)).astype(np.float32)}
