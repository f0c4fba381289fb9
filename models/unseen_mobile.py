"""Architectures the coverage issue met on phones (`android`, `apple`), tiny and random-init,
as `package.module:factory` models: an MTCNN-style face proposal net (PReLU), a U-Net with
InstanceNorm and upsampling (Resize), a 2-layer bidirectional GRU tagger, and a whisper-style
attention encoder (no mask). Each has a calibration factory for int8."""

from __future__ import annotations

import numpy as np
import torch


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _PNet(torch.nn.Module):
    """MTCNN's P-Net shape: conv → PReLU → max-pool → conv → PReLU → conv → PReLU → two heads."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 10, 3), torch.nn.PReLU(10), torch.nn.MaxPool2d(2, 2, ceil_mode=False),
            torch.nn.Conv2d(10, 16, 3), torch.nn.PReLU(16), torch.nn.Conv2d(16, 32, 3), torch.nn.PReLU(32))
        self.prob = torch.nn.Conv2d(32, 2, 1)
        self.box = torch.nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return torch.softmax(self.prob(h), dim=1), self.box(h)


def mtcnn_pnet():
    return _PNet().eval(), (torch.randn(2, 3, 24, 24, generator=_gen()),)


class _UNet(torch.nn.Module):
    """Two levels: conv + InstanceNorm + ReLU down, upsampling (Resize: nearest, or bilinear as
    segmentation decoders use) and a skip up."""

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        torch.manual_seed(0)

        def block(cin: int, cout: int) -> torch.nn.Module:
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.InstanceNorm2d(cout, affine=True),
                                       torch.nn.ReLU())

        self.down1, self.down2 = block(3, 8), block(8, 16)
        self.pool = torch.nn.MaxPool2d(2)
        self.up = torch.nn.Upsample(scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
        self.dec = block(24, 8)
        self.out = torch.nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(self.pool(d1))
        return self.out(self.dec(torch.cat([self.up(d2), d1], dim=1)))


def unet():
    return _UNet().eval(), (torch.randn(2, 3, 32, 32, generator=_gen()),)


def unet_bilinear():
    return _UNet("bilinear").eval(), (torch.randn(2, 3, 32, 32, generator=_gen()),)


class _Tagger(torch.nn.Module):
    """A sequence tagger: embedding-free features → 2-layer bidirectional GRU → per-step tags."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gru = torch.nn.GRU(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        return self.head(h)


def bigru_tagger():
    return _Tagger().eval(), (torch.randn(2, 12, 8, generator=_gen()),)


class _Encoder(torch.nn.Module):
    """A whisper-style encoder layer without a mask: its softmax sits between two int8 MatMuls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = torch.nn.Linear(16, 32)
        self.layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.out = torch.nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layer(self.inp(x)))


def attention_encoder():
    return _Encoder().eval(), (torch.randn(2, 10, 16, generator=_gen()),)


def calib_pnet():
    return {"x": np.random.default_rng(7).standard_normal((16, 3, 24, 24)).astype(np.float32)}


def calib_unet():
    return {"x": np.random.default_rng(7).standard_normal((16, 3, 32, 32)).astype(np.float32)}


def calib_tagger():
    return {"x": np.random.default_rng(7).standard_normal((16, 12, 8)).astype(np.float32)}


def calib_encoder():
    return {"x": np.random.default_rng(7).standard_normal((32, 10, 16)).astype(np.float32)}
