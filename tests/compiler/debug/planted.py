"""A model with a planted fault: one layer (`spike`) reads an input feature that is zero in the
calibration data and large in the golden inputs, and amplifies it — its activations leave the
int8 calibration range and overflow fp16 (65504) on golden only. Every other layer is tame, so
the first divergence of any reduced-precision engine is `spike`."""

from __future__ import annotations

import numpy as np
import torch


class Planted(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(8, 16)
        self.spike = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 4)
        with torch.no_grad():
            self.fc1.weight[:, 0] = 0.0  # fc1 ignores feature 0
            self.spike.weight.zero_()
            self.spike.weight[:, 0] = 2000.0  # spike reads only feature 0: 50 × 2000 = 1e5 on golden
            self.spike.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.fc1(x))
        b = self.spike(x)
        # `b` has two readers, so it is a tensor every engine holds: OpenVINO folds a lone
        # constant scale into the MatMul's weights and fuses a lone chain of element-wise ops
        # into it (computed in f32), and its f16 engine would never hold the large value
        return self.fc2(a + torch.sqrt(b.abs() + 1.0) * 1e-2 + torch.tanh(b))


def golden_inputs(n: int = 4) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((n, 8)).astype(np.float32)
    x[:, 0] = 50.0
    return x


def calibration_inputs(n: int = 64) -> np.ndarray:
    x = np.random.default_rng(2).standard_normal((n, 8)).astype(np.float32)
    x[:, 0] = 0.0
    return x


def build():
    return Planted().eval(), (torch.from_numpy(golden_inputs(2)),)
