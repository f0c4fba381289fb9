"""A small CNN for scikit-learn's 8×8 digits, trained here (no download).

`python -m models.digits_cnn` retrains it and rewrites ``digits_cnn.pt`` (≈3 s at 1 thread).
The held-out split (stratified 25 %, fixed seed) is never seen in training: it supplies the
golden inputs and the labelled evaluation set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("digits_cnn.pt")
SEED = 0


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(block(1, 16), block(16, 32), block(32, 64))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(image)), 1))


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, stratify=y, random_state=SEED)
    return x_tr, x_te, y_tr, y_te


def heldout() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The held-out 25 % split: ({"image": N×1×8×8 float32 in [0, 1]}, labels)."""
    _, x_te, _, y_te = _split()
    return {"image": x_te}, y_te


def train_split() -> dict[str, np.ndarray]:
    """The training split's images (calibration data: never the held-out split)."""
    x_tr, _, _, _ = _split()
    return {"image": x_tr}


def bench_views() -> dict[str, np.ndarray]:
    """Views no build step reads, for `make bench-versus` (bench/heldout/digits-cnn.toml): the
    held-out images after the 32 golden ones, each shifted one pixel right (the build's metric
    reads the unshifted held-out split; calibration reads the training split)."""
    _, x_te, _, _ = _split()
    views = np.zeros_like(x_te[32:96])
    views[..., 1:] = x_te[32:96, ..., :-1]
    return {"image": views}


def augmented(n: int = 2000, seed: int = 0):
    """An endless-style stream of `n` training images, shifted by up to one pixel: a Python
    iterator factory for calibration at sample counts beyond the 1347 training images."""
    x_tr, _, _, _ = _split()
    rng = np.random.default_rng(seed)
    for start in range(0, n, 100):
        idx = rng.integers(0, len(x_tr), min(100, n - start))
        shifts = rng.integers(-1, 2, (2,))
        yield {"image": np.roll(x_tr[idx], tuple(shifts), axis=(2, 3)).copy()}


def build() -> nn.Module:
    model = DigitsCNN()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def train(epochs: int = 10, batch: int = 64) -> float:
    """Adam + OneCycle; returns held-out top-1 accuracy. Writes WEIGHTS."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    x_tr, x_te, y_tr, y_te = _split()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * ((len(x_tr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean()
    torch.save(model.state_dict(), WEIGHTS)
    return float(acc)


if __name__ == "__main__":
    print(f"held-out top-1: {train():.4f} -> {WEIGHTS}")


def validation() -> dict[str, np.ndarray]:
    """Precision decisions' validation set (models/digits-cnn.toml [validation]): 64 held-out
    images after those `bench_views` shifts (golden reads the first 32, bench the next 64)."""
    _, x_te, _, _ = _split()
    return {"image": x_te[96:160]}
