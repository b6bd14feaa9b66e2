"""Constructions of the math chapters, in NumPy (no training).

SAF chapter (``../shared/papers/saf.txt``, Section 3.3, Lemma 1, Eq. 4 to 6):

- :func:`basic_block`: the two-SAF-layer block of Fig. 5a, Eq. 4, for the
  1-D RBF or mReLU, on the coordinate axes (the paper's block) or on any set
  of unit directions (the repair for mReLU, and our reading of Fig. 6b);
- :func:`f1`, :func:`f2`: the block output along an axis and along the
  diagonal, Eq. 5, in closed form;
- :func:`sphere_ratio`: ``f2^-1(tau) / f1^-1(tau)`` of Eq. 6, in closed form;
- :func:`construction`: ``lambda`` and ``tau0`` for given ``(n, eps, r)``;
- :func:`monte_carlo_error`: the misclassified volume fraction of a block,
  by sampling;
- :func:`l1_ball_iou`, :func:`polygon_iou`: how well mReLU blocks can match
  a Euclidean ball (they decide membership in a polytope);
- :func:`template_classify`: the template network of Fig. 5b with its
  nonsense output;
- :func:`accepted_radius`: the radius ``f1^-1(tau)`` of the smallest ball
  around ``Z`` holding the accepted set ``{y >= tau}`` (the bound the
  boundedness argument needs);
- :func:`float32_threshold`: ``1 - tau0`` in float32 spacings (ulps) and how
  a shift of the threshold by one ulp moves the accepted radius and volume;
- :func:`arrangement_regions`, :func:`zonotope_ball_exponent`: the facet count
  of the set an mReLU block with ``m`` directions accepts (the regions of a
  central hyperplane arrangement) and the known order of the number of
  segments a zonotope needs to approximate a ball.

Notation: the template is ``Z``, the input ``X``, ``n`` the dimension and ``r``
the ball radius. With the RBF block, ``y(X) = exp(-g(X)^2)`` where
``g(X) = sum_k (1 - exp(-lam^2 (x_k - z_k)^2))``; everything below follows from
that form (see the chapter's proofs).

S-APL chapter (``../shared/papers/symmetric-apl.txt``, Section 3, Eq. 1 and 2,
Theorem 3.1):

- :func:`sapl_value`, :func:`apl_value`: Eq. 2 and Eq. 1 in float64 NumPy;
- :func:`sapl_construction`: the S-APL parameters that interpolate ``f`` on a
  uniform hinge grid of ``S`` hinges a side (the constructive proof of the
  corrected Theorem 3.1);
- :func:`apl_construction`: the free-hinge APL that interpolates ``f`` on
  ``[A, B]``, one hinge placed beyond ``B`` (why "APL cannot" is false once
  hinges are free);
- :func:`fit_hinges`: least-squares fits of APL or S-APL with fixed or free
  hinges;
- :func:`max_error`: the sup-norm error on a dense grid;
- :func:`sapl_interpolant_vs_fit`: the construction's error beside the
  least-squares S-APL's on the same hinges (the bound is tight for the
  interpolant only).

DOME chapter (``../shared/papers/dome.txt``, Eq. 2):

- :func:`dome_peak`: the unique positive maximiser ``z*`` of DOME (``z* > mu``);
- :func:`dome_bce_basin`: which examples sit in the spurious basin of the
  DOME binary cross-entropy (a positive example left of ``-z*``, a negative one
  right of ``z*``), where the loss falls towards ``log 2`` at infinity.

KAF chapter (``kaf-robustness-thesis.txt`` Section 2.4, ``kaf-thesis-results.md``):
the Gaussian KAF's derivative, exact Lipschitz constant and closed-form bounds,
backward gain at initialisation and the kernel ridge initialisation's
conditioning live in :mod:`symact.theory_kaf` (over 400 lines, so a module of
its own) and are re-exported here: :func:`kaf_value`, :func:`kaf_derivative`,
:func:`kaf_lipschitz`, :func:`lipschitz` (of a KAF module, per channel),
:func:`kaf_lipschitz_bounds`, :func:`kaf_gain_matrix`, :func:`kaf_gain`,
:func:`kaf_expected_gain`, :func:`kaf_gain_spread`,
:func:`kaf_gain_monte_carlo`, :func:`kaf_expected_gain_monte_carlo`,
:func:`kaf_output_moments`, :func:`kaf_expected_variance`, :func:`target_gain`, :func:`target_moments`, :func:`kernel_matrix`, :func:`kernel_condition`,
:func:`theta_symbol`, :func:`kernel_condition_limit`, :func:`ridge_decomposition`, :func:`ridge_study`.
"""
from __future__ import annotations

import math

import numpy as np

from symact import theory_kaf
from symact.theory_kaf import *  # noqa: F401,F403  (the KAF chapter's theory; listed in __all__ below)

__all__ = ["ACTS", "accepted_radius", "apl_construction", "apl_value", "arrangement_regions", "basic_block",
           "construction", "dome_bce_basin", "dome_peak", "mdome_min", "f1", "f2", "fit_hinges", "float32_threshold",
           "l1_ball_iou", "max_error", "monte_carlo_error", "polygon_iou", "sapl_construction",
           "sapl_interpolant_vs_fit", "sapl_value", "sphere_ratio", "template_classify", "uniform_ball",
           "zonotope_ball_exponent"]
__all__ += theory_kaf.__all__

#: the two symmetric activation functions of saf.txt Section 3
ACTS = {
    "rbf": lambda u: np.exp(-u * u),                                   # Section 3.1
    "mrelu": lambda u: np.maximum(0.0, 1.0 - np.abs(u)),               # Eq. 2
}


def _act(act: str):
    if act not in ACTS:
        raise ValueError(f"act must be one of {sorted(ACTS)}, got {act!r}")
    return ACTS[act]


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def basic_block(x, center, lam: float, act: str = "rbf", directions=None, dtype=np.float64) -> np.ndarray:
    """The basic block of saf.txt Fig. 5a, Eq. 4, evaluated at the rows of ``x``.

    ``r_k = lam * w_k . (X - Z)``, ``s_k = act(r_k)``, ``t = sum_k s_k - m``,
    ``y = act(t)``, with ``m`` unit directions ``w_k``. ``directions=None``
    uses the coordinate axes (``m = n``, ``w_k = e_k``), which is exactly Eq. 4.

    Args:
        x: points, shape ``(..., n)``.
        center: the template ``Z``, shape ``(n,)``.
        lam: the scale ``lambda > 0``.
        act: ``"rbf"`` (``exp(-u^2)``) or ``"mrelu"`` (Eq. 2).
        directions: optional ``(m, n)`` array of unit vectors.
        dtype: arithmetic precision (``np.float32`` shows the rounding limits).

    Returns:
        ``y``, shape ``x.shape[:-1]``, in ``[0, 1]``.

    Example:
        >>> float(basic_block(np.zeros((1, 3)), np.zeros(3), lam=1.0)[0])
        1.0
    """
    f = _act(act)
    x = np.asarray(x, dtype=dtype)
    center = np.asarray(center, dtype=dtype)
    if x.shape[-1:] != center.shape:
        raise ValueError(f"x must have shape (..., {center.shape[0]}) to match center, got {x.shape}")
    d = x - center
    if directions is not None:
        directions = np.asarray(directions, dtype=dtype)
        if directions.ndim != 2 or directions.shape[1] != center.shape[0]:
            raise ValueError(f"directions must have shape (m, {center.shape[0]}), got {directions.shape}")
        d = d @ directions.T
    s = f(dtype(_positive("lam", lam)) * d)
    return f(s.sum(axis=-1) - dtype(s.shape[-1]))


def f1(r, lam: float, n: int) -> np.ndarray:
    """RBF block output at ``Z + r e_1`` (saf.txt Eq. 5, first line): ``exp(-(1 - e^(-lam^2 r^2))^2)``.

    The *largest* block output on the sphere ``||X - Z|| = r`` (the paper states the reverse).
    """
    r = np.asarray(r, dtype=np.float64)
    return np.exp(-(-np.expm1(-(lam * r) ** 2)) ** 2)


def f2(r, lam: float, n: int) -> np.ndarray:
    """RBF block output at ``Z + r (1, ..., 1)/sqrt(n)`` (Eq. 5, second line): ``exp(-n^2 (1 - e^(-lam^2 r^2 / n))^2)``.

    The *smallest* block output on the sphere ``||X - Z|| = r``.
    """
    r = np.asarray(r, dtype=np.float64)
    return np.exp(-(n * -np.expm1(-(lam * r) ** 2 / n)) ** 2)


def sphere_ratio(tau, n: int) -> np.ndarray:
    """``f2^-1(tau) / f1^-1(tau)`` of saf.txt Eq. 6 for the RBF block, for ``exp(-1) < tau < 1``.

    With ``q = sqrt(ln(1/tau))`` it is ``sqrt(n ln(1 - q/n) / ln(1 - q))``,
    independent of ``lambda``; it tends to 1 as ``tau -> 1``.
    """
    tau = np.asarray(tau, dtype=np.float64)
    if np.any((tau <= math.exp(-1)) | (tau >= 1)):
        raise ValueError("tau must lie in (exp(-1), 1): below exp(-1) the level set {y >= tau} is unbounded")
    q = np.sqrt(-np.log(tau))
    return np.sqrt(n * np.log1p(-q / n) / np.log1p(-q))


def _ratio_of_c(c, n):
    """``r0 / r`` as a function of ``c = (lam r)^2``."""
    return np.sqrt(-n * np.log1p(np.expm1(-c) / n) / c)


def construction(n: int, eps: float, r: float = 1.0) -> dict:
    """``lambda`` and ``tau0`` of Lemma 1 for the RBF block: error at most ``eps`` in ``n`` dimensions.

    The proof needs ``(r0 / r)^n >= 1 - eps`` (Eq. 6), and ``r0 / r`` depends on
    ``c = (lam r)^2`` alone. Two choices are returned:

    - ``"explicit"``: ``c = 2 (1 - (1 - eps)^(2/n))``, which the chapter proves sufficient;
    - ``"largest"``: the largest ``c`` with ``(r0/r)^n >= 1 - eps``, found by bisection
      (the ratio decreases in ``c``).

    Each has ``lam = sqrt(c) / r``, ``tau0 = f1(r)``, ``r0`` and ``bound = (r0/r)^n``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    _positive("r", r)
    explicit = 2 * (-np.expm1(2 / n * np.log1p(-eps)))
    lo, hi = explicit, 50.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _ratio_of_c(mid, n) ** n >= 1 - eps else (lo, mid)
    out = {}
    for name, c in (("explicit", explicit), ("largest", lo)):
        lam = math.sqrt(c) / r
        ratio = float(_ratio_of_c(c, n))
        out[name] = {"c": float(c), "lam": lam, "tau0": float(f1(r, lam, n)),
                     "one_minus_tau0": float(-np.expm1(-(-np.expm1(-c)) ** 2)),
                     "r0": ratio * r, "bound": ratio ** n}
    return out


def uniform_ball(rng: np.random.Generator, size: int, n: int, radius: float = 1.0, inner: float = 0.0) -> np.ndarray:
    """``size`` points uniform in the shell ``inner <= ||X|| <= radius`` of R^n (``inner = 0``: the ball)."""
    g = rng.standard_normal((size, n))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    u = rng.uniform((inner / radius) ** n, 1.0, size=(size, 1))
    return g * radius * u ** (1.0 / n)


def monte_carlo_error(n: int, lam: float, tau: float, r: float = 1.0, samples: int = 100_000, seed: int = 0,
                      act: str = "rbf", dtype=np.float64, batch: int = 20_000) -> dict:
    """The block's errors against the ball ``||X|| <= r`` (template at the origin), by sampling.

    ``missed``: fraction of the ball with ``y < tau`` (wrongly called outside;
    equals ``1 - V(Omega')/V(Omega)`` of saf.txt Lemma 1 when ``Omega'`` lies in the ball).
    ``false_shell``: fraction of the shell ``r < ||X|| <= 1.25 r`` with ``y >= tau``
    (wrongly called inside; the corrected Eq. 5 proves it is 0). Each with its
    binomial standard error ``*_se``.
    """
    rng = np.random.default_rng(seed)
    center = np.zeros(n)
    counts = {"missed": 0, "false_shell": 0}
    done = 0
    while done < samples:
        k = min(batch, samples - done)
        inside = uniform_ball(rng, k, n, r)
        shell = uniform_ball(rng, k, n, 1.25 * r, inner=r)
        t = dtype(tau)
        counts["missed"] += int((basic_block(inside, center, lam, act, dtype=dtype) < t).sum())
        counts["false_shell"] += int((basic_block(shell, center, lam, act, dtype=dtype) >= t).sum())
        done += k
    out = {"samples": samples}
    for key, c in counts.items():
        p = c / samples
        out[key], out[key + "_se"] = p, math.sqrt(max(p * (1 - p), 1.0 / samples) / samples)
    return out


def l1_ball_iou(n: int, samples: int = 200_000, seed: int = 0, grid: int = 400) -> dict:
    """Best Jaccard index ``V(B1 & B2) / V(B1 | B2)`` of an L1 ball ``||X||_1 <= a`` and the unit L2 ball.

    The mReLU block of Eq. 4 accepts exactly an L1 ball (see the chapter), so this is the best
    ``1 - error`` any ``lambda`` and ``tau`` can reach. With ``X`` uniform in the L2 ball and
    ``P(a) = P(||X||_1 <= a)``, the index is ``P / (V1(a)/V2 + 1 - P)`` where
    ``V1(a)/V2 = (2a)^n Gamma(n/2 + 1) / (n! pi^(n/2))``; maximised over a grid of ``a`` in ``[1, sqrt(n)]``.
    """
    x = uniform_ball(np.random.default_rng(seed), samples, n)
    l1 = np.sort(np.abs(x).sum(axis=1))
    a = np.linspace(1.0, math.sqrt(n), grid)
    p = np.searchsorted(l1, a, side="right") / samples
    log_ratio = n * np.log(2 * a) + math.lgamma(n / 2 + 1) - math.lgamma(n + 1) - n / 2 * math.log(math.pi)
    iou = p / (np.exp(log_ratio) + 1 - p)
    i = int(np.argmax(iou))
    return {"n": n, "iou": float(iou[i]), "a": float(a[i]), "samples": samples}


def polygon_iou(m: int, points: int = 20_000) -> dict:
    """Best Jaccard index of the unit disk and the set accepted by an mReLU block with ``m`` directions in 2-D.

    With ``m`` unit directions at angles ``k pi / m`` the block accepts ``N(X) = sum_k |w_k . X| <= a``,
    a regular ``2m``-gon (``m = 2`` is the L1 ball of Eq. 4). In polar form its boundary radius is
    ``rho(theta) = a / N(u_theta)``, so the index is ``int min(rho, 1)^2 / int max(rho, 1)^2``,
    maximised over ``a``.
    """
    if int(m) != m or m < 2:
        raise ValueError(f"m must be an integer >= 2, got {m!r}")
    theta = (np.arange(points) + 0.5) * (2 * np.pi / points)
    w = np.pi * np.arange(m) / m
    norm = np.abs(np.cos(theta[:, None] - w[None, :])).sum(axis=1)       # N(u_theta)
    best = {"iou": 0.0}
    for a in np.linspace(norm.min() * 0.9, norm.max() * 1.1, 2001):
        rho = a / norm
        iou = float(np.mean(np.minimum(rho, 1) ** 2) / np.mean(np.maximum(rho, 1) ** 2))
        if iou > best["iou"]:
            best = {"iou": iou, "a": float(a)}
    return {"m": m, "units": m + 1, **best}


def template_classify(x, templates, labels, lam: float, tau: float, act: str = "rbf", directions=None):
    """The template network of saf.txt Fig. 5b: one basic block per template, then the maximum.

    Returns ``(label, y_max)`` per row of ``x``; ``label = -1`` (nonsense) where ``y_max < tau``.
    """
    templates = np.asarray(templates, dtype=np.float64)
    labels = np.asarray(labels)
    if templates.ndim != 2 or len(labels) != len(templates):
        raise ValueError(f"templates must be (N, n) with one label each, got {templates.shape} and {labels.shape}")
    ys = np.stack([basic_block(x, z, lam, act, directions) for z in templates], axis=-1)
    best = ys.argmax(axis=-1)
    ymax = ys.max(axis=-1)
    return np.where(ymax >= tau, labels[best], -1), ymax


def accepted_radius(tau, lam: float) -> np.ndarray:
    """``f1^-1(tau) = sqrt(-ln(1 - sqrt(ln(1/tau)))) / lam``: the accepted set of the RBF block lies in this ball.

    saf.txt Eq. 4 and 5. With ``q = sqrt(ln(1/tau))``, ``y(X) >= tau`` is
    ``g(X) <= q``; since ``g(X) >= psi(||X - Z||^2)`` (the chapter's corrected
    Eq. 5), ``psi(||X - Z||^2) <= q``, and ``psi(v) = 1 - exp(-lam^2 v)`` can
    be inverted only because ``q < 1``, i.e. ``tau > exp(-1)``. The radius is
    attained on the coordinate axes (``f1`` of it is ``tau``), so the bound is sharp.
    """
    tau = np.asarray(tau, dtype=np.float64)
    if np.any((tau <= math.exp(-1)) | (tau > 1)):
        raise ValueError("tau must lie in (exp(-1), 1]: for tau <= exp(-1) the accepted set holds every coordinate "
                         "axis and lies in no ball")
    q = np.sqrt(-np.log(tau))
    return np.sqrt(-np.log1p(-q)) / _positive("lam", lam)


def float32_threshold(tau0: float, n: int) -> dict:
    """How finely float32 resolves the Lemma 1 threshold ``tau0`` (saf.txt Eq. 4 to 6) in ``n`` dimensions.

    Near ``Z`` the block has ``1 - y = (lam rho)^4 (1 + O(c))`` at distance
    ``rho`` in every direction (``g = lam^2 rho^2 + O(lam^4 rho^4)`` and
    ``1 - exp(-g^2) = g^2 + O(g^4)``), so the accepted radius scales as
    ``(1 - tau)^(1/4)`` and the accepted volume as ``(1 - tau)^(n/4)``. A
    threshold error of ``k`` float32 spacings (ulps) therefore changes the
    radius by the relative ``k / (4 u)`` and the volume by about ``n k / (4 u)``,
    with ``u = (1 - tau0) / ulp`` the threshold's distance from 1 in ulps.

    Returns a dict: ``spacing`` (the float32 ulp at ``tau0``: ``2^-24`` just
    below 1), ``ulps`` (``u``), ``tau0_float32`` (``tau0`` rounded to float32)
    and ``ulps_float32`` (its distance from 1, a whole number of ulps),
    ``radius_per_ulp`` (``1 / (4 u)``), ``volume_per_ulp`` (``n / (4 u)``) and
    ``volume_factor``, ``((1 - tau0_float32) / (1 - tau0))^(n/4)``: the factor
    by which rounding the threshold alone scales the accepted volume.
    """
    tau0 = float(tau0)
    if not 0.5 <= tau0 < 1:
        raise ValueError(f"tau0 must lie in [0.5, 1), the thresholds of Lemma 1; got {tau0!r}")
    n = _count("n", n)
    spacing = float(np.spacing(np.float32(tau0)))
    t32 = float(np.float32(tau0))
    u = (1.0 - tau0) / spacing
    return {"spacing": spacing, "ulps": u, "tau0_float32": t32, "ulps_float32": (1.0 - t32) / spacing,
            "radius_per_ulp": 1.0 / (4 * u), "volume_per_ulp": n / (4 * u),
            "volume_factor": float(((1.0 - t32) / (1.0 - tau0)) ** (n / 4))}


def arrangement_regions(m: int, n: int) -> int:
    """Facets of the set ``{sum_j |w_j . u| <= a}`` an mReLU block with ``m`` directions accepts in ``R^n``.

    ``N(u) = sum_j |w_j . u|`` is linear on each region of the central
    arrangement of the ``m`` hyperplanes ``w_j . u = 0``, so the accepted set
    is a polytope with one facet per region. For directions in general
    position (every ``n`` of them independent) the arrangement has
    ``2 sum_{i=0}^{n-1} C(m-1, i)`` regions (Zaslavsky 1975); this is also the
    number of vertices of the zonotope ``sum_j [-w_j, w_j]``, whose polar the
    accepted set is. ``m = n`` axes give ``2^n`` (the L1 ball), ``n = 2`` gives ``2m``.
    """
    m, n = _count("m", m), _count("n", n)
    return 2 * sum(math.comb(m - 1, i) for i in range(n))


def zonotope_ball_exponent(n: int) -> float:
    """``2(n-1)/(n+2)``: a zonotope within a factor ``1 + delta`` of the ball of ``R^n`` needs of order
    ``delta^(-2(n-1)/(n+2))`` segments (Bourgain, Lindenstrauss and Milman 1989, lower bound; Bourgain and
    Lindenstrauss 1988 and Matousek 1996, upper bounds).

    ``n = 2`` gives ``1/2`` (a regular ``2m``-gon is within ``1 + pi^2/(8 m^2)`` of the disk); the exponent
    tends to 2 as ``n`` grows.
    """
    n = _count("n", n)
    return 2 * (n - 1) / (n + 2)


# --------------------------------------------------------------------------------------------
# S-APL (symmetric-apl.txt Section 3)


def sapl_value(x, a_pos, b_pos, a_neg, b_neg) -> np.ndarray:
    """S-APL, symmetric-apl.txt Eq. 2, in float64:
    ``h(x) = sum_s a+_s max(0, x - b+_s) + sum_s a-_s max(0, -x - b-_s)``.

    ``x`` any shape; the four parameter vectors have one entry per hinge.
    """
    x = np.asarray(x, dtype=np.float64)[..., None]
    a_pos, b_pos, a_neg, b_neg = (np.asarray(v, dtype=np.float64) for v in (a_pos, b_pos, a_neg, b_neg))
    return (a_pos * np.maximum(0.0, x - b_pos)).sum(-1) + (a_neg * np.maximum(0.0, -x - b_neg)).sum(-1)


def apl_value(x, a, b) -> np.ndarray:
    """APL (Agostinelli et al. 2014), symmetric-apl.txt Eq. 1, in float64:
    ``h(x) = max(0, x) + sum_s a_s max(0, -x + b_s)``."""
    x = np.asarray(x, dtype=np.float64)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.maximum(0.0, x) + (a * np.maximum(0.0, b - x[..., None])).sum(-1)


def _interval(f, A: float, B: float) -> tuple[float, float]:
    if not callable(f):
        raise TypeError(f"f must be a callable taking a NumPy array, got {type(f).__name__}")
    A, B = float(A), float(B)
    if not (math.isfinite(A) and math.isfinite(B) and A < B):
        raise ValueError(f"[A, B] must be a finite interval with A < B, got A={A}, B={B}")
    return A, B


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _slopes_to_hinges(nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Hinge weights ``a_s`` at ``nodes[:-1]`` so that ``sum_s a_s max(0, t - nodes_s)`` passes through ``values``."""
    step = np.diff(nodes)
    slopes = np.divide(np.diff(values), step, out=np.zeros_like(step), where=step > 0)
    return np.diff(slopes, prepend=0.0)


def sapl_construction(f, A: float, B: float, S: int) -> dict:
    """S-APL parameters that interpolate ``f`` on a uniform hinge grid (the corrected Theorem 3.1).

    symmetric-apl.txt Theorem 3.1, as stated and proved in the S-APL chapter:
    for ``A <= 0 <= B`` the right side gets hinges ``b+_s = (s - 1) h+``,
    ``h+ = B / S``, the left side ``b-_s = (s - 1) h-``, ``h- = -A / S``
    (a hinge at 0 on each side), and the slopes are successive differences,
    ``a+_1 = c_1``, ``a+_s = c_s - c_(s-1)`` with ``c_k`` the slope of the chord
    of ``f`` on ``[(k-1) h+, k h+]`` (the left side the same for
    ``t -> f(-t)``). The result is the piecewise-linear interpolant of ``f``
    at the ``2S + 1`` grid points, except at 0 where every S-APL is 0: when
    ``f(0) != 0`` the value there is 0 and the error is at least ``|f(0)|``.

    Returns a dict with ``a_pos, b_pos, a_neg, b_neg`` (length ``S`` each) and
    the spacings ``h_pos, h_neg``.

    Example:
        >>> p = sapl_construction(np.abs, -1.0, 1.0, 2)
        >>> float(max_error(np.abs, -1, 1, lambda x: sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"])))
        0.0
    """
    A, B = _interval(f, A, B)
    S = _count("S", S)
    if not A <= 0.0 <= B:
        raise ValueError(f"the S-APL construction needs A <= 0 <= B (S-APL(0) = 0 for any parameters), got [{A}, {B}]")
    out = {}
    for side, length, g in (("pos", B, f), ("neg", 0.0 - A, lambda t: f(-t))):  # 0.0 - A: no -0.0 when A = 0
        h = length / S
        nodes = h * np.arange(S + 1)
        values = np.asarray(g(nodes), dtype=np.float64)
        if values.shape != nodes.shape:
            raise ValueError(f"f must map an array of shape {nodes.shape} to the same shape, got {values.shape}")
        values[0] = 0.0
        out[f"a_{side}"], out[f"b_{side}"], out[f"h_{side}"] = _slopes_to_hinges(nodes, values), nodes[:-1], h
    return out


def apl_construction(f, A: float, B: float, K: int) -> dict:
    """A free-hinge APL (Eq. 1) equal to the interpolant of ``f`` on ``K`` equal pieces of ``[A, B]``.

    With ``p`` the interpolant, ``q = p - max(0, x)`` is piecewise linear on
    ``[A, B]``; continue it linearly to 0 at ``B + h`` (``h = (B - A) / K``)
    and by 0 beyond. A continuous piecewise-linear function that vanishes
    right of its last knot is exactly ``sum_s a_s max(0, b_s - x)`` with a
    hinge ``b_s`` at each knot and ``a_s`` the slope jump there. So APL with
    hinges free to sit beyond ``B`` approximates any continuous ``f``, even with
    ``f(0) != 0`` (S-APL cannot). Hinges: the ``K - 1`` interior grid points,
    0 when it is inside and not on the grid, ``B`` and ``B + h``.

    Returns a dict with ``a``, ``b`` and ``h``.
    """
    A, B = _interval(f, A, B)
    K = _count("K", K)
    h = (B - A) / K
    grid = A + h * np.arange(K + 1)
    values = np.asarray(f(grid), dtype=np.float64)
    knots = list(grid[1:-1]) + ([0.0] if A < 0.0 < B and not np.isclose(grid, 0.0, atol=1e-12 * h).any() else [])
    knots = np.array(sorted(knots) + [B, B + h])
    xs = np.concatenate([[A], knots])                     # the points through which q passes
    p = np.interp(xs[:-1], grid, values)
    q = np.concatenate([p - np.maximum(0.0, xs[:-1]), [0.0]])
    slopes = np.append(np.diff(q) / np.diff(xs), 0.0)     # slope right of each point; 0 beyond B + h
    return {"a": np.diff(slopes), "b": knots, "h": h}


def max_error(f, A: float, B: float, approx, points: int = 20_001, extra=()) -> float:
    """``max |f(x) - approx(x)|`` over ``points`` evenly spaced ``x`` in ``[A, B]`` plus the points ``extra``."""
    A, B = _interval(f, A, B)
    x = np.concatenate([np.linspace(A, B, _count("points", points, 2)), np.asarray(extra, dtype=np.float64)])
    return float(np.max(np.abs(np.asarray(f(x), dtype=np.float64) - approx(x))))


def fit_hinges(f, A: float, B: float, S: int, kind: str = "apl", hinges=None, free: bool = False,
               points: int = 2001, max_nfev: int = 200) -> dict:
    """Least-squares fit of APL (Eq. 1) or S-APL (Eq. 2) to ``f`` on ``points`` evenly spaced ``x`` in ``[A, B]``.

    The slopes ``a`` enter linearly, so for given hinges they are the
    least-squares solution; with ``free=True`` slopes and hinges are then
    optimised jointly from there (``scipy.optimize.least_squares`` with the
    exact Jacobian, S-APL hinges kept ``>= 0`` by bounds, at most
    ``max_nfev`` evaluations): a local optimum, ``converged`` says whether
    scipy's tolerances were met.

    ``hinges``: APL, ``S`` positions (default ``A + (s - 1)(B - A)/S``, every
    hinge inside ``[A, B)``); S-APL, ``S`` non-negative positions used on both
    sides (default the grid of :func:`sapl_construction` for ``max(-A, B)``).
    APL's fixed term ``max(0, x)`` is subtracted from the target first.

    Returns a dict with ``a`` (APL) or ``a_pos, a_neg``, the hinges ``b`` (APL) or
    ``b_pos, b_neg``, the fitted function ``fn``, ``max_error`` on the fit points and ``converged``.
    """
    from scipy.optimize import least_squares

    A, B = _interval(f, A, B)
    S = _count("S", S)
    if kind not in ("apl", "sapl"):
        raise ValueError(f"kind must be 'apl' or 'sapl', got {kind!r}")
    if hinges is None:
        hinges = A + (B - A) * np.arange(S) / S if kind == "apl" else max(-A, B) * np.arange(S) / S
    hinges = np.asarray(hinges, dtype=np.float64)
    if hinges.shape != (S,) or not np.all(np.isfinite(hinges)) or (kind == "sapl" and np.any(hinges < 0)):
        raise ValueError(f"hinges must be {S} finite positions (S-APL: >= 0), got {hinges.tolist()}")
    x = np.linspace(A, B, _count("points", points, 2))
    target = np.asarray(f(x), dtype=np.float64) - (np.maximum(0.0, x) if kind == "apl" else 0.0)
    b = hinges if kind == "apl" else np.concatenate([hinges, hinges])
    sign = np.repeat([1.0, -1.0], S)   # S-APL: the right side's max(0, x - b), the left side's max(0, -x - b)

    def design(b):
        return np.maximum(0.0, sign * x[:, None] - b) if kind == "sapl" else np.maximum(0.0, b - x[:, None])

    a, converged = np.linalg.lstsq(design(b), target, rcond=None)[0], True
    if free:  # joint (a, b) with the exact Jacobian: d/db of a max(0, b - x) is a [b > x]; of a max(0, +-x - b), -a [+-x > b]
        n = len(b)

        def jac(theta):
            a, b = theta[:n], theta[n:]
            active = design(b) > 0
            return np.concatenate([design(b), active * (a if kind == "apl" else -a)], axis=1)

        lo = np.concatenate([np.full(n, -np.inf), np.full(n, -np.inf if kind == "apl" else 0.0)])
        fit = least_squares(lambda t: design(t[n:]) @ t[:n] - target, np.concatenate([a, b]), jac=jac,
                            bounds=(lo, np.inf), max_nfev=max_nfev)
        a, b, converged = fit.x[:n], fit.x[n:], bool(fit.status > 0)
    residual = design(b) @ a - target
    if kind == "apl":
        out = {"a": a, "b": b, "fn": lambda z: apl_value(z, a, b)}
    else:
        out = {"a_pos": a[:S], "b_pos": b[:S], "a_neg": a[S:], "b_neg": b[S:],
               "fn": lambda z: sapl_value(z, a[:S], b[:S], a[S:], b[S:])}
    out["max_error"], out["converged"] = float(np.abs(residual).max()), converged
    return out


def sapl_interpolant_vs_fit(f, A: float, B: float, S: int, points: int = 20_001) -> dict:
    """The S-APL construction's max error beside the least-squares S-APL's, on the same hinges.

    symmetric-apl.txt Theorem 3.1 as corrected in the S-APL chapter: its bounds
    ``M h / 2`` and ``h^2 max|f''| / 8`` are attained by the interpolant
    (:func:`sapl_construction`), not by the best S-APL with those hinges. The
    least-squares fit (:func:`fit_hinges`, ``kind="sapl"``, on the
    construction's hinge grid) is one S-APL with the same hinges; where its
    error is smaller, the bound is not a lower bound for S-APL.

    Returns ``h`` (``max(B, -A) / S``), ``interpolant`` and ``least_squares``,
    each the max error over ``points`` evenly spaced ``x`` plus every grid
    midpoint (:func:`max_error`).
    """
    A, B = _interval(f, A, B)
    S = _count("S", S)
    p = sapl_construction(f, A, B, S)
    mids = np.concatenate([(np.arange(S) + 0.5) * p["h_pos"], -(np.arange(S) + 0.5) * p["h_neg"]])
    fit = fit_hinges(f, A, B, S, "sapl", points=max(points // 5, 2))
    return {"h": max(B, -A) / S,
            "interpolant": max_error(f, A, B, lambda x: sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"]),
                                     points=points, extra=mids),
            "least_squares": max_error(f, A, B, fit["fn"], points=points, extra=mids)}


# --------------------------------------------------------------------------------------------
# DOME (dome.txt Eq. 2)


def dome_peak(mu: float, sigma: float) -> float:
    """The unique maximiser ``z* > 0`` of DOME (dome.txt Eq. 2); ``-z*`` is its unique minimiser, and ``z* > mu``.

    ``DOME'(z) = 0`` for ``z > 0`` is ``(z - mu) A = (z + mu) B`` with
    ``A = exp(-((z - mu)/sigma)^2)``, ``B = exp(-((z + mu)/sigma)^2)``, that is
    ``(z - mu)/(z + mu) = exp(-4 mu z / sigma^2)``: the left side increases from
    -1 to 1 and the right side decreases from 1 to 0, so there is exactly one
    root, and it lies beyond ``mu`` (at ``mu`` the left side is 0 < right side), by at most
    ``(z* + mu) exp(-4 mu^2 / sigma^2)``: in float64, ``z* = mu`` once ``mu / sigma`` exceeds about 3.
    Solved with ``scipy.optimize.brentq`` for ``(z - mu) - (z + mu) exp(-4 mu z / sigma^2)``, which is
    negative at ``mu`` and positive at ``mu + sigma^2 / mu + 10 sigma``.
    """
    from scipy.optimize import brentq

    mu, sigma = _positive("mu", mu), _positive("sigma", sigma)

    def gap(z):  # (z - mu) - (z + mu) exp(-4 mu z / sigma^2): < 0 left of z*, > 0 right of it
        return (z - mu) - (z + mu) * math.exp(-4 * mu * z / sigma**2)

    hi = mu + sigma**2 / mu + 10 * sigma
    return float(brentq(gap, mu, hi, xtol=1e-14 * hi, rtol=4 * np.finfo(float).eps))


def dome_bce_basin(z, y, mu: float, sigma: float) -> np.ndarray:
    """Which examples lie in the spurious basin of the DOME binary cross-entropy (dome.txt Eq. 2 with BCE).

    For a positive example (``y = 1``) the loss ``-log DOME(z)`` increases on
    ``(-inf, -z*]`` from its infimum ``log 2`` (at ``z -> -inf``) to its
    maximum at ``-z*`` (:func:`dome_peak`); gradient descent from any
    ``z < -z*`` drives ``z`` to ``-inf``, misclassified (``DOME < 1/2``). A
    negative example (``y = 0``, loss ``-log(1 - DOME(z))``) mirrors it on
    ``(z*, inf)``. ``z``: one logit per example; ``y``: 0/1 labels.
    Returns a boolean array, ``True`` for examples in the basin.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    if z.shape != y.shape:
        raise ValueError(f"z and y must have the same shape (one logit and one 0/1 label per example), got "
                         f"{z.shape} and {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y must hold 0/1 labels, got values {np.unique(y).tolist()}")
    peak = dome_peak(mu, sigma)
    return ((y == 1) & (z < -peak)) | ((y == 0) & (z > peak))


def mdome_min(n: int, sigma: float, steps: int = 300, mu: float = 1.0) -> float:
    """The smallest value of MDOME's first component (dome.txt Eq. 8, 9) found numerically over the embedding,
    for ``n`` classes on the vertices of a regular simplex (:func:`symact.activations.dome.simplex_vertices`)
    scaled by ``mu``, and width ``sigma``; the chapter sets it beside the lower bound ``(2 - n)/n`` of Eq. 10.

    Adam (learning rate ``0.05 max(sigma, 0.2)``, ``steps`` steps, float64) from 128 standard-normal starts
    times 2 (seeded), from 9 points each on the rays through every vertex and through the mean of the other
    vertices (the direction of ``-e_1``), at distances 0 to 2. The result is an upper bound on the true minimum
    (a local search), never below ``(2 - n)/n``; an input on another class's reference point gives about 0 when
    ``sigma`` is small.
    """
    import torch

    from symact.activations.dome import mdome, simplex_vertices

    n = _count("n", n, low=2)
    sigma, mu = _positive("sigma", sigma), _positive("mu", mu)
    steps = _count("steps", steps)
    V = torch.as_tensor(simplex_vertices(n), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    starts = [torch.randn(128, n - 1, generator=g, dtype=torch.float64) * 2]
    scales = torch.linspace(0, 2, 9, dtype=torch.float64)[:, None]
    away = V[1:].mean(0)
    starts += [scales * V[j] for j in range(n)] + [scales * (away / away.norm())]
    x = torch.cat(starts).requires_grad_()
    opt = torch.optim.Adam([x], lr=0.05 * max(sigma, 0.2))
    for _ in range(steps):
        opt.zero_grad()
        mdome(x, mu, sigma, V)[:, 0].sum().backward()
        opt.step()
    with torch.no_grad():
        return float(mdome(x, mu, sigma, V)[:, 0].min())
