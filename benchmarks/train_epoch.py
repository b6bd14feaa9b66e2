"""One LeNet-5 (SAF paper Table 1 shape) epoch on MNIST: symact.train against a plain PyTorch loop.

Run: ``SYMACT_DATA=../shared/datasets python benchmarks/train_epoch.py``. Both loops use the same
model, batch size 128, SGD with momentum, float32 on the CPU; the plain loop indexes a float tensor
held in memory (the fastest plain way), symact.train uses its uint8 batches and channels-last
convolutions. Each is run ``REPEATS`` times, alternating, and the minimum is reported, since a
shared machine's timings are noisy.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from symact import data, models  # noqa: E402
from symact.train import TrainConfig, train  # noqa: E402

REPEATS = 2


def plain_epoch(x: torch.Tensor, y: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = models.LeNet5("mnist")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    start = time.perf_counter()
    perm = torch.randperm(len(y))
    for i in range(0, len(y), 128):
        idx = perm[i : i + 128]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def symact_epoch(train_set: data.ImageData) -> float:
    torch.manual_seed(0)
    model = models.LeNet5("mnist")
    hist = train(model, train_set, TrainConfig(epochs=1, batch_size=128, lr=0.05), device="cpu", progress=False)
    return hist["seconds"][0]


def main() -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train_set = data.load("mnist", train=True)
    x, y = train_set.tensors()
    plain, ours = [], []
    for _ in range(REPEATS):
        plain.append(plain_epoch(x, y))
        ours.append(symact_epoch(train_set))
    rows = [
        {"loop": "plain PyTorch (float tensor in memory)", "best_s": min(plain), "runs_s": [round(t, 2) for t in plain]},
        {"loop": "symact.train (uint8 batches, channels-last)", "best_s": min(ours), "runs_s": [round(t, 2) for t in ours]},
    ]
    write("train_epoch", rows, notes="One MNIST epoch (60,000 images) of LeNet-5, batch 128, 2 CPU threads.")


if __name__ == "__main__":
    main()
