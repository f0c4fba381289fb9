"""Small random-initialised models of architectures nobody here tuned the pipeline for, as
``package.module:factory`` models (no spec file): the coverage suite builds them through the CLI
alone (`golden --model models.unseen:gpt2`, then `build`). Weights are random (seeded): the
point is the graph, not the task. Each factory returns (module, example inputs) at batch 2.
"""

from __future__ import annotations

import torch

SEQ = 12


def _ids(vocab: int, batch: int = 2, seq: int = SEQ) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))


class _Hidden(torch.nn.Module):
    """input_ids → the model's first output, without caches (export- and compare-friendly)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False, return_dict=True)[0] if _takes_cache(self.model) \
            else self.model(input_ids=input_ids, return_dict=True)[0]


def _takes_cache(model: torch.nn.Module) -> bool:
    return getattr(model.config, "use_cache", None) is not None and not model.config.is_encoder_decoder \
        and model.config.model_type in ("gpt2",)


def gpt2():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    return _Hidden(GPT2Model(cfg).eval()).eval(), (_ids(100),)


def bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=32)
    return _Hidden(BertModel(cfg, add_pooling_layer=False).eval()).eval(), (_ids(100),)


def distilbert():
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=32)
    return _Hidden(DistilBertModel(cfg).eval()).eval(), (_ids(100),)


def t5_encoder():
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=100, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)
    return _Hidden(T5EncoderModel(cfg).eval()).eval(), (_ids(100),)


class _Pixels(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values, return_dict=True)[0]


def vit():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return _Pixels(ViTModel(cfg, add_pooling_layer=False).eval()).eval(), (x,)


class _Recurrent(torch.nn.Module):
    """A sequence classifier over an LSTM then a GRU (batch_first)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(8, 16, batch_first=True)
        self.gru = torch.nn.GRU(16, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        h, _ = self.gru(h)
        return self.head(h[:, -1])


def lstm_gru():
    return _Recurrent().eval(), (torch.randn(2, 10, 8, generator=torch.Generator().manual_seed(0)),)


class _DepthwiseCNN(torch.nn.Module):
    """MobileNet-style depthwise-separable blocks with BatchNorm and ReLU6."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        layers: list[torch.nn.Module] = [torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU6()]
        for cin, cout in ((16, 24), (24, 32)):
            layers += [torch.nn.Conv2d(cin, cin, 3, padding=1, groups=cin), torch.nn.BatchNorm2d(cin), torch.nn.ReLU6(),
                       torch.nn.Conv2d(cin, cout, 1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU6()]
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(32, 10)
        for m in self.modules():  # non-trivial BN statistics, so folding is really exercised
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def depthwise_cnn():
    return _DepthwiseCNN().eval(), (torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)),)


def calib_ids():
    """Calibration token ids for the text models (16 samples, disjoint seed from the examples)."""
    import numpy as np

    return {"input_ids": np.random.default_rng(7).integers(0, 100, (16, SEQ)).astype(np.int64)}


def calib_images():
    import numpy as np

    return {"x": np.random.default_rng(7).standard_normal((16, 3, 32, 32)).astype(np.float32)}


class _GruWithState(torch.nn.Module):
    """A GRU that takes and returns its state: h is (layers, batch, hidden) — batch on axis 1."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gru = torch.nn.GRU(8, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, h: torch.Tensor):
        y, h_next = self.gru(x, h)
        return self.head(y[:, -1]), h_next


def gru_with_state():
    g = torch.Generator().manual_seed(0)
    return _GruWithState().eval(), (torch.randn(2, 10, 8, generator=g), torch.randn(1, 2, 16, generator=g))


def gru_state_data():
    """Real-shaped sequences and states for golden/calibration: x (N, 10, 8), h (1, N, 16)."""
    import numpy as np

    rng = np.random.default_rng(11)
    return {"x": rng.standard_normal((24, 10, 8)).astype(np.float32),
            "h": (0.5 * rng.standard_normal((1, 24, 16))).astype(np.float32)}
