"""White-box attacks on LeNet-5 in PyTorch's default layout against channels-last weights.

Run: ``SYMACT_DATA=../shared/datasets python benchmarks/attack_layout.py``. Training has run the library's
convolutional networks channels-last since :func:`symact.train.place` (oneDNN's convolutions and pooling are
fastest in that layout on a CPU); the evaluations now load their networks the same way. This script measures
what that saves an attack: PGD-20 (the attack AutoAttack's APGD steps cost the same as) on 250 MNIST test
images, one thread, for the leaderboard's ReLU, KAF and PSSiLU LeNet-5 (untrained: the speed does not depend
on the weights), each layout ``REPEATS`` times, alternating, the minimum kept. It also reports the largest
logit difference between the two layouts (rounding only: the same function). Target: channels-last at least
1.2x faster, logits within 1e-5.
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from symact import benchmark, data  # noqa: E402
from symact.attacks import make_attack  # noqa: E402
from symact.train import place  # noqa: E402

REPEATS = 3
ROWS = ("relu", "kaf", "pssilu")


def seconds(attack, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    attack(x, y)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    x, y = data.load("mnist", train=False).head(250).tensors()
    rows = []
    for act in ROWS:
        torch.manual_seed(0)
        plain = benchmark.build_network("LeNet5", act).eval()
        fast = copy.deepcopy(plain)
        place(fast, "cpu")
        fast.eval()
        with torch.no_grad():
            diff = float((plain(x) - fast(x)).abs().max())
        attacks = [make_attack("pgd", m, eps=0.3, alpha=0.075, steps=20, restarts=1) for m in (plain, fast)]
        times: list[list[float]] = [[], []]
        for _ in range(REPEATS):
            for t, atk in zip(times, attacks):
                t.append(seconds(atk, x, y))
        rows.append({"activation": act, "default_s": min(times[0]), "channels_last_s": min(times[1]),
                     "speedup": min(times[0]) / min(times[1]), "max_logit_diff": diff})
    write("attack_layout", rows, notes="PGD-20 on 250 MNIST test images, LeNet-5, one CPU thread: PyTorch's "
          "default layout against channels-last weights (symact.train.place).")


if __name__ == "__main__":
    main()
