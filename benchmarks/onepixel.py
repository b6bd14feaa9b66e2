"""Differential-evolution pixel attacks: symact.attacks.PixelDE (all images at once) against torchattacks.OnePixel
(one image at a time), on S-APL LeNet-5 for CIFAR-10 (the S-APL paper's Table 2 network, untrained: the cost of
an attack does not depend on the weights except through early stopping, which the fooled-count column shows).

Run: ``python benchmarks/onepixel.py [--device cuda] [--images N] [--popsize P] [--steps S]``. Defaults: the
paper's population 400 and 40 generations, 1 and 5 pixels, 4 images on the CPU (2 threads), 100 on a GPU.
Both attacks see the same images; the time is wall-clock seconds per image.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchattacks

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from symact import attacks, models  # noqa: E402
from symact.activations import create  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--popsize", type=int, default=400)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    n = args.images or (4 if dev.type == "cpu" else 100)
    torch.manual_seed(0)
    model = models.LeNet5("cifar", 10, act=lambda c: create("sapl"), batchnorm="all").to(dev).eval()
    x = torch.rand(n, 3, 32, 32, device=dev)
    with torch.no_grad():
        y = model(x).argmax(1)
    rows = []
    for pixels in (1, 5):
        for name, atk in [("symact PixelDE", attacks.PixelDE(model, pixels, args.steps, args.popsize)),
                          ("torchattacks OnePixel", torchattacks.OnePixel(model, pixels, args.steps, args.popsize))]:
            np.random.seed(0)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            adv = atk(x, y)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            sec = (time.perf_counter() - start) / n
            with torch.no_grad():
                fooled = int((model(adv).argmax(1) != y).sum())
            population = attacks.de_population(args.popsize, pixels, x.shape[1])  # both attacks'
            # network evaluations per second: the initial population and one per generation, per image; only
            # where no image stopped early (an untrained network on random images is rarely fooled)
            rate = population * (args.steps + 1) / sec if fooled == 0 else None
            rows.append({"attack": name, "pixels": pixels, "images": n, "population": population,
                         "generations": args.steps, "s_per_image": round(sec, 3), "fooled": fooled,
                         "forwards_per_s": None if rate is None else round(rate)})
            print(rows[-1], flush=True)
    write(f"onepixel{'_cuda' if dev.type == 'cuda' else ''}", rows,
          notes=f"Population {args.popsize}, {args.steps} generations, S-APL LeNet-5 (CIFAR-10 shapes, untrained), "
                f"random images, {dev.type}; 1-minute load average at the end: {os.getloadavg()[0]:.2f} on "
                f"{os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
