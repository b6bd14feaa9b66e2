"""Forward+backward time of Kolmogorov-Arnold layers (symact.kan) against a linear layer with ReLU, and against
pykan 0.2.8's ``KANLayer`` when it is installed (issue 34).

Run: ``python benchmarks/kan_layers.py [--threads 2] [--repeats 7] [--batch 256] [--no-pykan]``.

One step is ``y = layer(x); y.backward(g)`` on a float32 input ``(batch, 784)`` (``requires_grad``, as inside a
network) with a fixed incoming gradient, for a layer 784 -> 64: ``nn.Linear`` + ``nn.ReLU`` (the reference),
:class:`symact.kan.KANLinear` (G = 5, cubic, as pykan's defaults), :class:`symact.kan.FastKANLinear` (8
Gaussians, LayerNorm, FastKAN's defaults) and pykan's ``KANLayer`` (same G and order). The time is the minimum
and the median of ``--repeats`` steps after two warm-up steps; the Linear+ReLU reference is timed again before
each layer and ``time_vs_linear_relu`` divides by the median of those minima, as in benchmarks/activations.py.
Writes results/benchmarks/kan_layers.json (the script is not named kan.py: that would shadow pykan's package
``kan``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from symact.kan import FastKANLinear, KANLinear  # noqa: E402

IN, OUT = 784, 64


class _PykanLayer(nn.Module):
    """pykan's KANLayer returns (y, preacts, postacts, postspline): time the layer, keep y."""

    def __init__(self):
        super().__init__()
        from kan.KANLayer import KANLayer

        self.layer = KANLayer(in_dim=IN, out_dim=OUT, num=5, k=3)

    def forward(self, x):
        return self.layer(x)[0]


def layers(pykan: bool) -> dict:
    out = {"linear_relu": lambda: nn.Sequential(nn.Linear(IN, OUT), nn.ReLU()),
           "kan_linear": lambda: KANLinear(IN, OUT, grid_size=5, spline_order=3),
           "fastkan_linear": lambda: FastKANLinear(IN, OUT)}
    if pykan:
        try:
            import kan.KANLayer  # noqa: F401
            out["pykan_kanlayer"] = _PykanLayer
        except ImportError:
            print("pykan is not installed: no pykan row", file=sys.stderr)
    return out


def step(layer: nn.Module, x: torch.Tensor, g: torch.Tensor) -> float:
    x.grad = None
    layer.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    layer(x).backward(g)
    return time.perf_counter() - t0


def measure(make, x, g, repeats: int) -> tuple[list[float], int]:
    layer = make()
    for _ in range(2):
        step(layer, x, g)
    return [step(layer, x, g) for _ in range(repeats)], sum(p.numel() for p in layer.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-pykan", action="store_true", help="leave out pykan's KANLayer (about 100x slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, IN, generator=gen).mul_(2).sub_(1).requires_grad_()  # inside KAN's grid [-1, 1]
    g = torch.randn(args.batch, OUT, generator=gen)
    rows = []
    for name, make in layers(not args.no_pykan).items():
        torch.manual_seed(0)
        ref, _ = measure(layers(False)["linear_relu"], x, g, args.repeats)
        times, n_params = measure(make, x, g, args.repeats)
        rows.append({"layer": name, "batch": args.batch, "params": n_params, "time_ms": 1e3 * statistics.median(times),
                     "time_min_ms": 1e3 * min(times), "linear_relu_min_ms": 1e3 * min(ref)})
        print(f"  {name:16s} {rows[-1]['time_min_ms']:9.2f} ms (Linear+ReLU {rows[-1]['linear_relu_min_ms']:6.3f} ms)",
              file=sys.stderr)
    ref_ms = statistics.median(r["linear_relu_min_ms"] for r in rows)
    for r in rows:
        r["time_vs_linear_relu"] = r["time_min_ms"] / ref_ms
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    notes = (f"layer {IN} -> {OUT}, input float32 ({args.batch}, {IN}) in [-1, 1], forward+backward, CPU threads "
             f"{args.threads}, {args.repeats} timed steps after 2 warm-up steps"
             + (f"; 1-minute load average at the end: {load[0]:.2f} on {os.cpu_count()} cores" if load else ""))
    write("kan_layers", rows, notes)


if __name__ == "__main__":
    main()
