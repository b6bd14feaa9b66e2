"""Experiments of the SAF chapter (``../shared/papers/saf.txt``).

- ``capacity``: measurements of the Lemma 1 construction (Section 3.3, Eq. 4 to 6)
  with :mod:`symact.theory`: the radius ratio of Eq. 6 against tau, the lambda and
  tau0 the construction needs for each dimension n, the misclassified volume
  fraction by Monte Carlo in float64 and float32, and how close mReLU blocks can
  come to a Euclidean ball.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symact import theory
from symact.attacks import progress_bar
from symact.results import experiment

__all__ = ["CapacityConfig", "capacity"]


@dataclass(frozen=True)
class CapacityConfig:
    """Lemma 1 measurements.

    ``ns``: dimensions; ``eps``: target error of Eq. 6; ``samples``: Monte Carlo
    points per dimension (float64), ``samples32`` in float32; ``l1_ns``: dimensions
    for the mReLU L1-ball bound; ``polygon_ms``: numbers of directions for the
    2-D mReLU repair; ``taus``: points of the Eq. 6 ratio curve (as ``1 - tau``).
    """

    ns: tuple[int, ...] = (2, 3, 5, 10, 20, 50, 100, 200, 784)
    eps: float = 0.01
    samples: int = 200_000
    samples32: int = 50_000
    l1_ns: tuple[int, ...] = (2, 3, 5, 10, 20, 50)
    l1_samples: int = 200_000
    polygon_ms: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
    one_minus_taus: tuple[float, ...] = tuple(float(v) for v in np.logspace(-8, np.log10(0.6), 60))
    seed: int = 0


@experiment(
    "saf",
    "capacity",
    {
        "smoke": CapacityConfig(ns=(2, 10, 50), samples=2000, samples32=2000, l1_ns=(2, 5), l1_samples=5000,
                                polygon_ms=(2, 4, 8)),
        "quick": CapacityConfig(),
        "paper": CapacityConfig(samples=1_000_000, samples32=200_000, l1_samples=1_000_000),
    },
)
def capacity(cfg: CapacityConfig) -> dict:
    """Measure the Lemma 1 construction; see :mod:`symact.theory` for each quantity."""
    taus = 1.0 - np.asarray(cfg.one_minus_taus)
    out = {"ratio_curve": {"one_minus_tau": list(cfg.one_minus_taus),
                           **{str(n): theory.sphere_ratio(taus, n).tolist() for n in cfg.ns}}}
    rows = []
    for n in progress_bar(cfg.ns, len(cfg.ns), "Lemma 1 Monte Carlo"):
        c = theory.construction(n, cfg.eps)
        row = {"n": n, "units": n + 1, "explicit": c["explicit"], "largest": c["largest"]}
        lam, tau = c["largest"]["lam"], c["largest"]["tau0"]
        row["mc64"] = theory.monte_carlo_error(n, lam, tau, samples=cfg.samples, seed=cfg.seed)
        row["mc32"] = theory.monte_carlo_error(n, lam, tau, samples=cfg.samples32, seed=cfg.seed, dtype=np.float32)
        row["tau0_float32"] = float(np.float32(tau))
        rows.append(row)
    out["rows"] = rows
    out["l1"] = [theory.l1_ball_iou(n, samples=cfg.l1_samples, seed=cfg.seed) for n in cfg.l1_ns]
    out["polygon"] = [theory.polygon_iou(m) for m in cfg.polygon_ms]
    return out
