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
  nonsense output.

Notation: the template is ``Z``, the input ``X``, ``n`` the dimension and ``r``
the ball radius. With the RBF block, ``y(X) = exp(-g(X)^2)`` where
``g(X) = sum_k (1 - exp(-lam^2 (x_k - z_k)^2))``; everything below follows from
that form (see the chapter's proofs).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ACTS", "basic_block", "construction", "f1", "f2", "l1_ball_iou", "monte_carlo_error",
           "polygon_iou", "sphere_ratio", "template_classify", "uniform_ball"]

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
