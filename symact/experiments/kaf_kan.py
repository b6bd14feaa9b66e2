"""The KAF chapter's section on Kolmogorov-Arnold networks (issue 34, item 3): node against edge.

A KAF network applies one learnable function per neuron after a linear map, ``y_j = f_j(sum_i w_ji x_i)``; a KAN
layer (Liu et al. 2024, Eq. 2.10) one per edge, ``y_j = sum_i phi_ij(x_i)``. FastKAN's edge (Li 2024) is a
Gaussian expansion on a uniform grid, the KAF's own form (:mod:`symact.kan`). This module computes what the
section shows, from the library and from stored leaderboard rows only:

- :func:`edge_identity_error`: the largest difference between one FastKAN edge and the KAF with the same
  dictionary, coefficients and bandwidth (0 up to rounding: the identity);
- :func:`parameter_table`: parameters of one layer as linear+KAF, KAN and FastKAN, for the layer shapes of the
  book's networks (:func:`symact.kan.layer_parameters`);
- :func:`kan_rows`: the leaderboard's ReLU, KAN (parameter-matched) and large-KAN rows side by side;
- two claims of Alter, Lapid and Sipper (2025; ``../shared/papers/anchors.md``, "Kolmogorov-Arnold networks and
  adversarial robustness"), registered with :func:`symact.claims.claim` and judged on the MNIST leaderboard rows
  (the data set the CPU can run with every seed): a KAN of the protocol network's size is no more robust than
  ReLU (a claim of no difference, margin :data:`KAN_MARGIN` stated here before any run), and a large KAN is
  more robust than ReLU.
"""
from __future__ import annotations

import math

import torch

from symact.claims import claim

__all__ = ["KAN_MARGIN", "KAN_ROWS", "edge_identity_error", "kan_rows", "parameter_table"]

#: the equivalence margin for "a parameter-matched KAN is no more robust than ReLU" (fraction: 2 points of
#: worst-case robust accuracy), fixed before any leaderboard run: about the seed-to-seed spread of fast
#: adversarial training on MNIST that Wong et al.'s recipe shows
KAN_MARGIN = 0.02
#: the leaderboard rows the section compares: (row, label)
KAN_ROWS = (("relu", "ReLU (protocol network)"), ("kan", "KAN, parameters matched"),
            ("kan-large", "KAN, four times the width"))


def edge_identity_error(D: int = 20, boundary: float = 3.0, bandwidth="kafnets", seed: int = 0,
                        points: int = 2001) -> float:
    """``max |FastKAN edge(s) - KAF(s)|`` over ``points`` inputs on ``[-2 L, 2 L]``, float64: the edge built with
    the KAF's dictionary as grid, its coefficients as weights and ``h = 1/sqrt(gamma)`` as denominator, no
    LayerNorm and no base branch; the KAF with random coefficients (``seed``)."""
    from symact.activations.kaf import dictionary, kaf
    from symact.kan import FastKANLinear

    d, gamma = dictionary(D, boundary, bandwidth)
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.randn(D, dtype=torch.float64, generator=gen)
    edge = FastKANLinear(1, 1, grid_min=-boundary, grid_max=boundary, num_grids=D, denominator=1 / math.sqrt(gamma),
                         use_layernorm=False, use_base_update=False).double()
    with torch.no_grad():
        edge.spline_weight.copy_(alpha.reshape(1, D))
        s = torch.linspace(-2 * boundary, 2 * boundary, points, dtype=torch.float64)
        return float((edge(s[:, None])[:, 0] - kaf(s, alpha, boundary, bandwidth)).abs().max())


def parameter_table(shapes=((800, 500), (500, 10), (800, 50), (50, 10)), D: int = 20, grid_size: int = 5,
                    spline_order: int = 3):
    """One row per layer shape ``(in, out)`` (default: LeNet-5's dense layers on MNIST, then the parameter-matched
    KAN row's, :data:`symact.benchmark.KAN_WIDTHS`): the parameters of linear+KAF, KAN and FastKAN
    (:func:`symact.kan.layer_parameters`) and the ratios KAN / linear+KAF and FastKAN / linear+KAF."""
    import pandas as pd

    from symact.kan import layer_parameters

    rows = []
    for n_in, n_out in shapes:
        p = layer_parameters(n_in, n_out, D=D, grid_size=grid_size, spline_order=spline_order)
        rows.append({"layer": f"{n_in} -> {n_out}", **p, "KAN / KAF": p["KAN"] / p["linear+KAF"],
                     "FastKAN / KAF": p["FastKAN"] / p["linear+KAF"]})
    return pd.DataFrame(rows)


def _stored(dataset: str, profile: str) -> dict:
    from symact import benchmark as bm

    return bm.stored_rows(dataset, profile, [r for r, _ in KAN_ROWS])


def kan_rows(dataset: str = "mnist", profiles: tuple[str, ...] = ("paper", "quick")):
    """``(table, profile)``: :func:`symact.benchmark.leaderboard` of the rows of :data:`KAN_ROWS` at the first
    profile of ``profiles`` at which any is stored (None: none is)."""
    from symact import benchmark as bm

    for prof in profiles:
        got = _stored(dataset, prof)
        if any(v is not None for v in got.values()):
            return bm.leaderboard(got), prof
    return bm.leaderboard(_stored(dataset, profiles[0])), None


def _judge(row: str, profile: str, margin: float | None, what: str):
    from symact.experiments.verdicts import benchmark_rows

    got = _stored("mnist", profile)
    if got.get(row) is None or got.get("relu") is None:
        return None
    try:
        return benchmark_rows(got[row], got["relu"], what=what, margin=margin,
                              paper="no effect size for this protocol (Alter et al. 2025 test other networks)")
    except ValueError:  # partial rows without a shared finished seed: nothing to judge yet
        return None


_SRC = "Alter, Lapid and Sipper (TMLR 2025), via anchors.md, 'Kolmogorov-Arnold networks and adversarial robustness'"


@claim("kaf/kan-matched-no-more-robust", chapter="kaf", section="kaf-kan", source=_SRC,
       text="Small and medium KANs are not consistently more robust than their standard counterparts "
            f"(tested: the parameter-matched KAN row against ReLU on MNIST, equivalence margin "
            f"{100 * KAN_MARGIN:g} points)")
def _kan_matched(profile):
    return _judge("kan", profile, KAN_MARGIN, "parameter-matched KAN minus ReLU, worst-case robust accuracy at "
                                              "eps 0.3 (MNIST leaderboard)")


@claim("kaf/kan-large-more-robust", chapter="kaf", section="kaf-kan", source=_SRC,
       text="Large KANs are more robust than their standard counterparts (tested: the four-times-wider KAN row "
            "against ReLU on MNIST)")
def _kan_large(profile):
    return _judge("kan-large", profile, None, "large KAN minus ReLU, worst-case robust accuracy at eps 0.3 "
                                              "(MNIST leaderboard)")
