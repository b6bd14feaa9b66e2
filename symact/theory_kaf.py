"""Theory of the Gaussian kernel activation function (KAF chapter), in NumPy and SciPy (no training).

A Gaussian KAF (Scardapane et al. 2019, "Kafnets"; the book's thesis outline
``../shared/papers/kaf-robustness-thesis.txt``, Section 2.4) is

    f(s) = sum_{i=1..D} alpha_i exp(-gamma (s - d_i)^2),

with dictionary points ``d_i`` (evenly spaced on ``[-L, L]`` in the library,
spacing ``Delta``), bandwidth ``gamma`` (``c = gamma Delta^2`` is 1/8 for the
kafnets rule and 1/6 for the finished thesis's, ``kaf-thesis-results.md``,
"Setting used throughout"; :func:`symact.activations.kaf.bandwidth_gamma`) and
mixing coefficients ``alpha``. Every function below takes the coefficients as
``(D,)`` (one function) or ``(C, D)`` (one per channel, as a KAF module's
``alpha``), and the ``points`` and ``gamma`` explicitly
(:func:`symact.activations.kaf.dictionary` gives the library's).

- :func:`kaf_value`, :func:`kaf_derivative`: ``f`` and its derivatives
  (orders 0 to 3) in closed form, ``g^(n)(t) = (-sqrt(gamma))^n H_n(sqrt(gamma) t)
  exp(-gamma t^2)`` for each Gaussian (``H_n`` the physicists' Hermite
  polynomials);
- :func:`kaf_lipschitz`: the exact Lipschitz constant ``sup_s |f'(s)|`` on the
  whole real line, per channel (zeros of ``f''`` by a sign scan and
  :func:`scipy.optimize.brentq`, with a certificate for the rest of the line);
  :func:`lipschitz`: the same for a :class:`~symact.activations.kaf.KAF` module;
- :func:`kaf_lipschitz_bounds`: three proved closed-form upper bounds (the
  chapter's theorem): the l1 bound ``sqrt(2 gamma/e) sum |alpha_i|`` and two
  that use the dictionary spacing (l-infinity and l2 in ``alpha``);
- :func:`kaf_gain_matrix`, :func:`kaf_gain`, :func:`kaf_expected_gain`: the
  backward gain ``G = E[f'(s)^2]`` for ``s ~ N(0, 1)``, exactly
  (``G = alpha^T M alpha``), and its mean ``sigma^2 tr M`` over
  ``alpha_i ~ N(0, sigma^2)``; :func:`kaf_gain_monte_carlo`,
  :func:`kaf_expected_gain_monte_carlo`: the Monte Carlo checks;
  :func:`kaf_output_moments`, :func:`target_moments`: ``E[f(s)]`` and
  ``E[f(s)^2]`` (with the gain, the per-layer factor of a batch-normalised
  network);
- :func:`kernel_matrix`, :func:`kernel_condition`, :func:`theta_symbol`,
  :func:`kernel_condition_limit`: the kernel ridge initialisation's Gram
  matrix and its conditioning (the Toeplitz symbol is a Jacobi theta function);
  :func:`ridge_decomposition`: the coefficients in ``K``'s eigenbasis;
  :func:`ridge_study`: coefficient size, fit, gain and Lipschitz constant of the
  library's kernel ridge initialisation (:func:`~symact.activations.kaf.kernel_ridge_init`)
  against the ridge.

The chapter ``book/kaf.md`` (section "Theory") states and proves what these
functions compute.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import numpy as np
from scipy import optimize, special

__all__ = ["H3_SUP", "KafLipschitz", "kaf_derivative", "kaf_expected_gain", "kaf_expected_gain_monte_carlo",
           "kaf_gain", "kaf_gain_matrix", "kaf_gaussian_moments", "relu_gaussian_moments", "kaf_gain_monte_carlo", "kaf_gain_spread", "kaf_expected_variance", "kaf_output_moments", "kaf_lipschitz", "kaf_lipschitz_bounds",
           "kaf_value", "kernel_condition", "kernel_condition_limit", "kernel_matrix", "lipschitz", "ridge_decomposition", "ridge_study",
           "target_gain", "target_moments", "theta_symbol"]

#: ``sup_x |H_3(x)| exp(-x^2)`` (``H_3 = 8x^3 - 12x``), attained at ``x^2 = (3 - sqrt(6))/2``; bounds ``|f'''|``
H3_SUP = float((lambda x: abs(8 * x ** 3 - 12 * x) * math.exp(-x * x))(math.sqrt((3 - math.sqrt(6)) / 2)))


# ----------------------------------------------------------------------------------------- checks


def _alpha(alpha) -> tuple[np.ndarray, bool]:
    """Coefficients as a float64 ``(C, D)`` array (checked), and whether the input was one function ``(D,)``."""
    try:
        a = np.asarray(alpha.detach().cpu() if hasattr(alpha, "detach") else alpha, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"KAF coefficients must be a numeric array of shape (D,) or (C, D), got {alpha!r}") from err
    if a.ndim not in (1, 2) or a.shape[-1] == 0 or a.size == 0:
        raise ValueError(f"KAF coefficients must have shape (D,) or (C, D) with D >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("KAF coefficients must be finite (got NaN or infinity)")
    return (a[None] if a.ndim == 1 else a), a.ndim == 1


def _points(points, D: int | None = None) -> np.ndarray:
    d = np.asarray(points, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"dictionary points must be a non-empty 1-D array, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("dictionary points must be finite")
    if D is not None and d.size != D:
        raise ValueError(f"the coefficients have D={D} entries but the dictionary has {d.size} points")
    return d


def _gamma(gamma) -> float:
    try:
        g = float(gamma)
    except (TypeError, ValueError) as err:
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}") from err
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    return g


def _setup(alpha, points, gamma):
    a, single = _alpha(alpha)
    return a, _points(points, a.shape[1]), _gamma(gamma), single


def _out(x: np.ndarray, single: bool):
    return (float(x[0]) if np.ndim(x) == 1 else x[0]) if single else x


# ----------------------------------------------------------------------------------------- f and f'


def _derivative(s: np.ndarray, a: np.ndarray, d: np.ndarray, g: float, order: int) -> np.ndarray:
    """``f^(order)`` at ``s`` (``(N,)``) for every row of ``a`` (``(C, D)``): ``(C, N)``; one Gaussian at a time."""
    out = np.zeros((a.shape[0], s.size))
    r = math.sqrt(g)
    for i in range(d.size):
        x = r * (s - d[i])
        e = np.exp(-x * x)
        if order == 1:
            e *= -2 * r * x
        elif order == 2:
            e *= g * (4 * x * x - 2)
        elif order == 3:
            e *= -g * r * (8 * x ** 3 - 12 * x)
        out += a[:, i:i + 1] * e[None]
    return out


def kaf_value(s, alpha, points, gamma):
    """``f(s) = sum_i alpha_i exp(-gamma (s - d_i)^2)`` at the points ``s``: ``(N,)`` for ``alpha (D,)``, ``(C, N)`` for ``(C, D)``."""
    return kaf_derivative(s, alpha, points, gamma, order=0)


def kaf_derivative(s, alpha, points, gamma, order: int = 1):
    """The ``order``-th derivative of the KAF (0 to 3), in closed form.

    ``f'(s) = -2 gamma sum_i alpha_i (s - d_i) exp(-gamma (s - d_i)^2)``,
    ``f''(s) = sum_i alpha_i (4 gamma^2 (s - d_i)^2 - 2 gamma) exp(-gamma (s - d_i)^2)``,
    and in general ``(-sqrt(gamma))^n H_n(sqrt(gamma)(s - d_i))`` times the Gaussian.

    Example:
        >>> float(kaf_derivative([0.5], [1.0], [0.0], 1.0)[0])  # -2 * 0.5 * exp(-0.25)
        -0.7788007830714049
    """
    a, d, g, single = _setup(alpha, points, gamma)
    if order not in (0, 1, 2, 3):
        raise ValueError(f"order must be 0, 1, 2 or 3, got {order!r}")
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    out = _derivative(s, a, d, g, order)
    return out[0] if single else out


# ----------------------------------------------------------------------------------------- Lipschitz


class KafLipschitz(NamedTuple):
    """Exact Lipschitz constants of a KAF module: one per channel (``per_channel``, ``(C,)``) and their ``max``."""

    per_channel: np.ndarray
    max: float


def kaf_lipschitz(alpha, points, gamma, *, step: float = 0.025, return_argmax: bool = False):
    """The exact Lipschitz constant ``sup_{s in R} |f'(s)|`` of a Gaussian KAF, per channel.

    Method. ``f'`` is smooth and tends to 0 at both infinities, so unless
    ``f' = 0`` its sup is attained at a local extremum of ``f'``, a zero of
    ``f''``. On the bracketing interval ``I_c = [d_min - c/sqrt(gamma),
    d_max + c/sqrt(gamma)]`` (``c = 5`` to start) ``f''`` and ``f'`` are
    evaluated on a grid of spacing ``h = step/sqrt(gamma)``; every grid cell
    where ``f''`` changes sign gets its root by :func:`scipy.optimize.brentq`
    and ``|f'|`` there. A cell where ``f''`` keeps its sign at both ends could
    still hide an even number of roots; at such a hidden extremum ``r``,
    Taylor's theorem with ``f''(r) = 0`` gives ``|f'(r)| <= |f'(g)| + (h/2)^2 / 2
    * sup|f'''|`` for the nearer end ``g``, and ``sup|f'''| <= gamma^(3/2)
    H3_SUP sum_i |alpha_i|``. Every cell whose ends plus this margin could beat
    the best value found is refined (``brentq`` on a sign change, else a
    bounded :func:`scipy.optimize.minimize_scalar` of ``-|f'|``), so no
    extremum inside ``I_c`` can be missed. The answer is the largest ``|f'|``
    at the grid points and the refined extrema.

    Why nothing outside ``I_c`` exceeds it. With ``u(t) = 2 gamma t
    exp(-gamma t^2)`` (the magnitude of one Gaussian's derivative at distance
    ``t``), ``|f'(s)| <= sum_i |alpha_i| u(|s - d_i|)`` (triangle inequality).
    ``u`` is decreasing for ``t >= 1/sqrt(2 gamma)``; for ``s >= d_max +
    c/sqrt(gamma)`` with ``c >= 1/sqrt(2)`` every distance is at least
    ``c/sqrt(gamma)``, so ``|f'(s)| <= T(c) = 2 c sqrt(gamma) exp(-c^2) sum_i
    |alpha_i|``, and the same on the left. If the best value inside is at
    least ``T(c)`` it is the sup over the whole line; otherwise ``c`` grows by
    2 and the scan is repeated (``T`` falls like ``exp(-c^2)``). All-zero
    coefficients give 0.

    Args:
        alpha: ``(D,)`` or ``(C, D)`` coefficients (array or tensor).
        points: the ``D`` dictionary points (any order, any spacing).
        gamma: the bandwidth, ``> 0``.
        step: grid spacing in units of the kernel width ``1/sqrt(gamma)``.
        return_argmax: also return where the sup is attained.

    Returns:
        A float for ``(D,)`` coefficients, else a ``(C,)`` array (and the
        arg-max points of the same shape when ``return_argmax``). The value is
        exact up to the root finder's tolerance (``xtol`` 1e-13, which moves
        ``|f'|`` by about ``1e-26 |f'''|`` since ``f''`` vanishes there).

    Example:
        >>> round(kaf_lipschitz([1.0], [0.0], 1.0), 12)  # one Gaussian: sqrt(2 gamma / e)
        0.857763884961
    """
    a, d, g, single = _setup(alpha, points, gamma)
    if not (math.isfinite(step) and 0 < step <= 0.25):
        raise ValueError(f"step must be in (0, 0.25] kernel widths, got {step!r}")
    r = math.sqrt(g)
    total = np.abs(a).sum(axis=1)
    margin = (step / r / 2) ** 2 / 2 * g ** 1.5 * H3_SUP * total  # (h/2)^2/2 * sup|f'''|, per channel
    c = 5.0
    while True:
        lo, hi = d.min() - c / r, d.max() + c / r
        s = np.linspace(lo, hi, int(math.ceil((hi - lo) * r / step)) + 1)
        f1 = _derivative(s, a, d, g, 1)
        f2 = _derivative(s, a, d, g, 2)
        mag = np.abs(f1)
        best = mag.max(axis=1)
        where = s[mag.argmax(axis=1)]
        for ch in range(a.shape[0]):
            if total[ch] == 0:
                continue
            row = a[ch]

            def fp(x, row=row):
                t = x - d
                return -2 * g * float(np.dot(row, t * np.exp(-g * t * t)))

            def fpp(x, row=row):
                t = x - d
                return float(np.dot(row, (4 * g * g * t * t - 2 * g) * np.exp(-g * t * t)))

            ends = np.maximum(mag[ch, :-1], mag[ch, 1:])
            for j in np.flatnonzero(ends + margin[ch] >= best[ch]):
                x0, x1 = s[j], s[j + 1]
                if f2[ch, j] == 0.0:
                    x = x0
                elif f2[ch, j] * f2[ch, j + 1] < 0:
                    x = optimize.brentq(fpp, x0, x1, xtol=1e-13, rtol=4 * np.finfo(float).eps)
                else:
                    x = optimize.minimize_scalar(lambda t: -abs(fp(t)), bounds=(x0, x1), method="bounded",
                                                 options={"xatol": 1e-12}).x
                v = abs(fp(x))
                if v > best[ch]:
                    best[ch], where[ch] = v, x
        tail = 2 * c * r * math.exp(-c * c) * total
        if np.all(best >= tail):
            break
        c += 2.0
    if return_argmax:
        return _out(best, single), _out(where, single)
    return _out(best, single)


def kaf_lipschitz_bounds(alpha, points, gamma) -> dict:
    """Closed-form upper bounds on ``sup_s |f'(s)|`` (the chapter's Lipschitz theorem), per channel.

    With ``u(t) = 2 gamma t exp(-gamma t^2)``, ``U = max u = sqrt(2 gamma / e)``
    and ``Delta`` the smallest spacing of the dictionary:

    - ``"l1"``: ``U sum_i |alpha_i|`` (each Gaussian's slope is at most ``U``);
    - ``"linf"``: ``max_i |alpha_i| min(D U, 2/Delta + 2U)`` (the slopes of
      Gaussians spaced ``Delta`` apart sum to at most ``2/Delta + 2U``: on each
      side of ``s`` the distances form a progression of step ``>= Delta``, and
      a unimodal ``u >= 0`` sampled that way sums to at most
      ``int_0^inf u / Delta + max u``, with ``int_0^inf u = 1``);
    - ``"l2"``: ``||alpha||_2 sqrt(min(D U^2, 2 sqrt(pi gamma / 8)/Delta + 2 U^2))``
      (Cauchy-Schwarz, then the same lemma for ``u^2``, whose integral is
      ``sqrt(pi gamma / 8)``);
    - ``"best"``: the smallest of the three.

    In units of the spacing (``gamma = c/Delta^2``) the spacing bounds read
    ``(2/Delta)(1 + sqrt(2c/e)) max|alpha|`` and
    ``(||alpha||_2/Delta) sqrt(2 sqrt(pi c/8) + 4c/e)``. One dictionary point
    (or coincident points) has no spacing: those bounds are then ``D U`` and
    ``D U^2`` times the norm.

    Returns ``{"l1", "linf", "l2", "best"}``: floats for ``(D,)`` coefficients, else ``(C,)`` arrays.
    """
    a, d, g, single = _setup(alpha, points, gamma)
    D = d.size
    U = math.sqrt(2 * g / math.e)
    gaps = np.diff(np.sort(d))
    delta = gaps.min() if D > 1 else 0.0
    s1 = D * U if delta <= 0 else min(D * U, 2 / delta + 2 * U)
    s2 = D * U * U if delta <= 0 else min(D * U * U, 2 * math.sqrt(math.pi * g / 8) / delta + 2 * U * U)
    out = {"l1": U * np.abs(a).sum(axis=1), "linf": np.abs(a).max(axis=1) * s1,
           "l2": np.sqrt((a * a).sum(axis=1) * s2)}
    out["best"] = np.minimum(np.minimum(out["l1"], out["linf"]), out["l2"])
    return {k: _out(v, single) for k, v in out.items()}


def lipschitz(module) -> KafLipschitz:
    """Exact Lipschitz constants of a :class:`symact.activations.kaf.KAF` module: one per channel and the max.

    A layer with one shared ``alpha`` gives one value. Computed by
    :func:`kaf_lipschitz` on the module's dictionary and bandwidth.
    """
    from symact.activations.kaf import KAF, dictionary

    if not isinstance(module, KAF):
        raise TypeError(f"lipschitz() takes a symact KAF module (symact.activations.kaf.KAF), got {type(module).__name__}")
    d, g = dictionary(module.D, module.boundary, module.bandwidth)
    per = np.atleast_1d(kaf_lipschitz(module.alpha.detach().cpu().double().reshape(-1, module.D).numpy(), d, g))
    return KafLipschitz(per, float(per.max()))


# ----------------------------------------------------------------------------------------- backward gain


def kaf_gain_matrix(points, gamma) -> np.ndarray:
    """``M`` with ``E_{s ~ N(0,1)}[f'(s)^2] = alpha^T M alpha``, in closed form.

    ``M_ij = 4 gamma^2 E[(s - a)(s - b) exp(-gamma (s - a)^2 - gamma (s - b)^2)]`` for
    ``a = d_i``, ``b = d_j``. With ``p = 1 + 4 gamma`` and ``mu = 2 gamma (a + b)/p``,
    completing the square in the Gaussian integral gives

        M_ij = 4 gamma^2 / sqrt(p) * exp(-(gamma (a^2 + b^2) + 2 gamma^2 (a - b)^2) / p)
               * ((mu - a)(mu - b) + 1/p).
    """
    d, g = _points(points), _gamma(gamma)
    p = 1 + 4 * g
    a, b = d[:, None], d[None, :]
    mu = 2 * g * (a + b) / p
    return 4 * g * g / math.sqrt(p) * np.exp(-(g * (a * a + b * b) + 2 * g * g * (a - b) ** 2) / p) * ((mu - a) * (mu - b) + 1 / p)


def kaf_gain(alpha, points, gamma):
    """The backward gain ``G = E[f'(s)^2]``, ``s ~ N(0, 1)``, exactly: ``alpha^T M alpha`` (:func:`kaf_gain_matrix`), per channel."""
    a, d, g, single = _setup(alpha, points, gamma)
    M = kaf_gain_matrix(d, g)
    return _out(np.einsum("ci,ij,cj->c", a, M, a), single)


def kaf_expected_gain(sigma: float, points, gamma) -> float:
    """``E_alpha[G] = sigma^2 tr M`` for ``alpha_i ~ N(0, sigma^2)`` independent, in closed form.

    ``M_ii = 4 gamma^2 / sqrt(p) exp(-2 gamma d_i^2 / p) (d_i^2/p^2 + 1/p)``, ``p = 1 + 4 gamma``.
    """
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    return float(sigma ** 2 * np.trace(kaf_gain_matrix(points, gamma)))


def kaf_gain_spread(sigma: float, points, gamma) -> float:
    """Standard deviation of ``G`` over ``alpha_i ~ N(0, sigma^2)``: ``sigma^2 sqrt(2 tr M^2)`` (a Gaussian quadratic form).

    ``G`` of one channel is ``alpha^T M alpha``; for ``alpha ~ N(0, sigma^2 I)`` its variance is ``2 sigma^4 tr(M^2)``.
    """
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    M = kaf_gain_matrix(points, gamma)
    return float(sigma ** 2 * math.sqrt(2 * np.sum(M * M)))


def kaf_gain_monte_carlo(alpha, points, gamma, samples: int = 100_000, seed: int = 0):
    """Monte Carlo estimate of ``E[f'(s)^2]`` over ``samples`` draws of ``s ~ N(0, 1)``: ``(mean, standard error)`` per channel."""
    a, d, g, single = _setup(alpha, points, gamma)
    if int(samples) != samples or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    s = np.random.default_rng(seed).standard_normal(int(samples))
    v = _derivative(s, a, d, g, 1) ** 2
    mean, se = v.mean(axis=1), v.std(axis=1, ddof=1) / math.sqrt(samples)
    return _out(mean, single), _out(se, single)


def kaf_expected_gain_monte_carlo(sigma: float, points, gamma, samples: int = 100_000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo estimate of ``E_{alpha, s}[f'(s)^2]`` (``alpha_i ~ N(0, sigma^2)``, ``s ~ N(0, 1)``, a fresh pair per sample).

    Returns ``(mean, standard error)``.
    """
    d, g = _points(points), _gamma(gamma)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if int(samples) != samples or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(int(samples))
    alpha = rng.normal(0.0, sigma, size=(int(samples), d.size))
    t = s[:, None] - d[None, :]
    v = (-2 * g * (alpha * t * np.exp(-g * t * t)).sum(axis=1)) ** 2
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(samples))


def kaf_output_moments(alpha, points, gamma):
    """``(E[f(s)], E[f(s)^2])`` for ``s ~ N(0, 1)``, in closed form, per channel.

    With ``q = 1 + 2 gamma`` and ``p = 1 + 4 gamma``:
    ``E[exp(-gamma (s - a)^2)] = exp(-gamma a^2 / q) / sqrt(q)`` and
    ``E[exp(-gamma (s - a)^2 - gamma (s - b)^2)] = exp(-(gamma (a^2 + b^2) + 2 gamma^2 (a - b)^2)/p) / sqrt(p)``
    (the same completed square as :func:`kaf_gain_matrix`). With the gain, the
    ratio ``G / Var f(s)`` is the factor by which a batch-normalised layer multiplies
    the squared gradient norm (the chapter's depth paragraph).
    """
    a, d, g, single = _setup(alpha, points, gamma)
    q, p = 1 + 2 * g, 1 + 4 * g
    m = np.exp(-g * d * d / q) / math.sqrt(q)
    x, y = d[:, None], d[None, :]
    M0 = np.exp(-(g * (x * x + y * y) + 2 * g * g * (x - y) ** 2) / p) / math.sqrt(p)
    return _out(a @ m, single), _out(np.einsum("ci,ij,cj->c", a, M0, a), single)


def kaf_gaussian_moments(alpha, points, gamma, mean=0.0, var=1.0) -> dict:
    """Gain ``E[f'(s)^2]``, ``E[f(s)]`` and ``E[f(s)^2]`` of each channel's KAF for ``s ~ N(mean_c, var_c)``.

    The pre-activations of a network are not always standard normal (after a residual addition, or during
    training); a change of variable brings them back to :func:`kaf_gain` and :func:`kaf_output_moments`.
    With ``s = m + sqrt(v) t``, ``f(s) = sum_i alpha_i exp(-gamma v (t - (d_i - m)/sqrt(v))^2) = h(t)``, a KAF
    of ``t ~ N(0, 1)`` with points ``(d_i - m)/sqrt(v)`` and bandwidth ``gamma v``, and ``h'(t) = sqrt(v)
    f'(s)``, so ``E[f'(s)^2] = E[h'(t)^2]/v`` (the chapter's gain proposition, ``book/kaf.md``, applied to
    ``h``).

    Args:
        alpha: ``(D,)`` or ``(C, D)`` coefficients.
        mean, var: a number (every channel) or one per channel (``(C,)``); ``var > 0``.

    Returns ``{"gain", "mean", "second"}``: floats for ``(D,)`` coefficients, else ``(C,)`` arrays.
    """
    a, d, g, single = _setup(alpha, points, gamma)
    C = a.shape[0]
    try:
        m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (C,))
        v = np.broadcast_to(np.asarray(var, dtype=np.float64), (C,))
    except ValueError as err:
        raise ValueError(f"mean and var must be numbers or one per channel ({C}), got shapes "
                         f"{np.shape(mean)} and {np.shape(var)}") from err
    if not (np.isfinite(m).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("mean must be finite and var finite and > 0")
    # vectorised over channels: the closed forms of kaf_gain_matrix and kaf_output_moments at the points
    # (d - m_c)/sqrt(v_c) and bandwidth gamma v_c
    pts = (d[None, :] - m[:, None]) / np.sqrt(v)[:, None]            # (C, D)
    gv = g * v[:, None, None]                                       # (C, 1, 1)
    p, q = 1 + 4 * gv, 1 + 2 * gv
    x, y = pts[:, :, None], pts[:, None, :]
    E = np.exp(-(gv * (x * x + y * y) + 2 * gv * gv * (x - y) ** 2) / p) / np.sqrt(p)
    mu_ij = 2 * gv * (x + y) / p
    M = 4 * gv * gv * E * ((mu_ij - x) * (mu_ij - y) + 1 / p)
    gain = np.einsum("ci,cij,cj->c", a, M, a) / v
    mvec = np.exp(-gv[:, :, 0] * pts * pts / q[:, :, 0]) / np.sqrt(q[:, :, 0])
    mu = (a * mvec).sum(axis=1)
    second = np.einsum("ci,cij,cj->c", a, E, a)
    return {"gain": _out(gain, single), "mean": _out(mu, single), "second": _out(second, single)}


def relu_gaussian_moments(mean=0.0, var=1.0) -> dict:
    """Gain ``E[relu'(s)^2] = Phi(m/sigma)``, ``E[relu(s)] = m Phi(m/sigma) + sigma phi(m/sigma)`` and
    ``E[relu(s)^2] = (m^2 + sigma^2) Phi(m/sigma) + m sigma phi(m/sigma)`` for ``s ~ N(m, sigma^2)``, elementwise
    over ``mean`` and ``var`` (``var > 0``); at ``N(0, 1)``: ``1/2``, ``1/sqrt(2 pi)``, ``1/2``.

    Returns ``{"gain", "mean", "second"}`` of the broadcast shape (floats for scalars).
    """
    m, v = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("mean must be finite and var finite and > 0")
    sd = np.sqrt(v)
    z = m / sd
    cdf, pdf = special.ndtr(z), np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    out = {"gain": cdf, "mean": m * cdf + sd * pdf, "second": (m * m + v) * cdf + m * sd * pdf}
    return {k: (float(x) if np.ndim(x) == 0 else x) for k, x in out.items()}


def kaf_expected_variance(sigma: float, points, gamma) -> float:
    """``E_alpha[Var_s f(s)] = sigma^2 (tr M0 - ||m||^2)`` for ``alpha_i ~ N(0, sigma^2)``, ``s ~ N(0, 1)``.

    ``m_i = E[k_i(s)]`` and ``M0_ij = E[k_i(s) k_j(s)]`` as in :func:`kaf_output_moments`. The ratio
    ``kaf_expected_gain / kaf_expected_variance`` does not depend on ``sigma``: it is the per-layer factor
    of a wide batch-normalised layer of random KAFs (the chapter's depth paragraph).
    """
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    d, g = _points(points), _gamma(gamma)
    eye = np.eye(d.size)
    mean, second = kaf_output_moments(eye, d, g)  # row i: the moments of k_i alone
    return float(sigma ** 2 * (second.sum() - (mean * mean).sum()))


def target_moments(name: str) -> dict:
    """``E[phi'(s)^2]`` (``"gain"``), ``E[phi(s)]`` (``"mean"``) and ``E[phi(s)^2]`` (``"second"``), ``s ~ N(0, 1)``,
    for the kernel ridge targets ``"relu"`` and ``"elu"`` (by :func:`scipy.integrate.quad`; ReLU's are
    ``1/2``, ``1/sqrt(2 pi)``, ``1/2``)."""
    from scipy import integrate

    fns = {"relu": (lambda t: max(t, 0.0), lambda t: float(t > 0)),
           "elu": (lambda t: t if t > 0 else math.expm1(t), lambda t: 1.0 if t > 0 else math.exp(t))}
    if name not in fns:
        raise ValueError(f"target must be one of {sorted(fns)}, got {name!r}")
    f, fp = fns[name]

    def ev(h):
        pdf = lambda t: h(t) * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        return integrate.quad(pdf, -np.inf, 0, epsabs=1e-13)[0] + integrate.quad(pdf, 0, np.inf, epsabs=1e-13)[0]

    return {"gain": ev(lambda t: fp(t) ** 2), "mean": ev(f), "second": ev(lambda t: f(t) ** 2)}


def target_gain(name: str) -> float:
    """``E[phi'(s)^2]``, ``s ~ N(0, 1)``, of the kernel ridge targets: ReLU ``1/2``; ELU ``1/2 + e^2 Phi(-2)``."""
    gains = {"relu": 0.5, "elu": 0.5 + math.exp(2.0) * special.ndtr(-2.0)}
    if name not in gains:
        raise ValueError(f"target must be one of {sorted(gains)}, got {name!r}")
    return float(gains[name])


# ----------------------------------------------------------------------------------------- kernel ridge conditioning


def kernel_matrix(points, gamma) -> np.ndarray:
    """The dictionary's Gram matrix ``K_ij = exp(-gamma (d_i - d_j)^2)``."""
    d, g = _points(points), _gamma(gamma)
    return np.exp(-g * (d[:, None] - d[None, :]) ** 2)


def kernel_condition(points, gamma, ridge: float = 0.0) -> float:
    """The 2-norm condition number of ``K + ridge I`` (symmetric positive definite: ratio of extreme eigenvalues).

    Where the smallest eigenvalue (plus ridge) is below ``100 eps lambda_max`` it is rounding noise
    (``eigvalsh`` is accurate to about ``eps lambda_max``), so the matrix is numerically singular and the
    result is ``inf``.
    """
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    lam = np.linalg.eigvalsh(kernel_matrix(points, gamma))
    low = lam[0] + ridge
    if low <= 100 * np.finfo(float).eps * lam[-1]:
        return math.inf
    return float((lam[-1] + ridge) / low)


def theta_symbol(omega, c: float):
    """The Toeplitz symbol ``theta_c(omega) = sum_{k in Z} exp(-c k^2) cos(k omega)`` of a uniform dictionary's ``K``.

    ``c = gamma Delta^2``. Evaluated by Poisson summation,
    ``theta_c(omega) = sqrt(pi/c) sum_n exp(-(omega + 2 pi n)^2 / (4c))``, a sum of
    positive terms (no cancellation even where ``theta`` is ``1e-30``). By the Jacobi triple product,
    ``theta_c`` is largest at ``omega = 0`` and smallest at ``omega = pi``.
    """
    c = _gamma(c)
    w = np.asarray(omega, dtype=np.float64)
    n = np.arange(-int(math.sqrt(200 * c) / math.pi) - 3, int(math.sqrt(200 * c) / math.pi) + 4)
    out = math.sqrt(math.pi / c) * np.exp(-(w[..., None] + 2 * math.pi * n) ** 2 / (4 * c)).sum(axis=-1)
    return float(out) if out.ndim == 0 else out


def kernel_condition_limit(c: float, ridge: float = 0.0) -> float:
    """``(theta_c(0) + ridge)/(theta_c(pi) + ridge)``: cond(K + ridge I) for every ``D`` is at most this, and tends to it.

    The eigenvalues of a symmetric Toeplitz matrix lie between the min and max of
    its symbol (:func:`theta_symbol`) and fill that range as ``D`` grows. Without
    ridge this is about ``exp(pi^2/(4c))/2``: ``1.9e8`` for the kafnets rule
    (``c = 1/8``), ``1.4e6`` for the thesis's (``c = 1/6``).
    """
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    return float((theta_symbol(0.0, c) + ridge) / (theta_symbol(math.pi, c) + ridge))


def _targets():
    return {"elu": lambda t: np.where(t > 0, t, np.expm1(np.minimum(t, 0))), "relu": lambda t: np.maximum(t, 0)}


def ridge_decomposition(target: Union[str, Callable], ridge: float = 1e-4, D: int = 20, boundary: float = 3.0,
                        bandwidth="kafnets") -> dict:
    """The kernel ridge coefficients in the eigenbasis of ``K``: why ``|alpha|`` is large.

    ``K = V diag(lam) V^T`` gives ``alpha = sum_k (v_k . t)/(lam_k + ridge) v_k``; directions
    with ``lam_k`` near or below ``ridge`` are amplified up to ``1/ridge``. Returns the
    eigenvalues ``"lam"`` (ascending), the target's projections ``"proj"``, the
    coefficient components ``"coef"`` (``alpha = V coef``), ``"alpha"`` (equal to
    :func:`~symact.activations.kaf.kernel_ridge_init`'s), and ``"sign_changes"`` of each
    eigenvector along the dictionary (the small-eigenvalue ones alternate in sign).
    """
    from symact.activations.kaf import dictionary, kernel_ridge_init

    d, g = dictionary(D, boundary, bandwidth)
    fn = _targets().get(target) if isinstance(target, str) else target
    alpha = kernel_ridge_init(target, D, boundary, ridge, bandwidth)  # checks target, ridge and bandwidth
    lam, V = np.linalg.eigh(kernel_matrix(d, g))
    proj = V.T @ np.asarray(fn(d), dtype=np.float64)
    coef = proj / (lam + ridge)
    return {"lam": lam, "proj": proj, "coef": coef, "alpha": alpha,
            "sign_changes": (np.diff(np.sign(V), axis=0) != 0).sum(axis=0)}


def ridge_study(target: Union[str, Callable], ridges, D: int = 20, boundary: float = 3.0,
                bandwidth="kafnets", grid: int = 2001) -> list[dict]:
    """The library's kernel ridge initialisation (:func:`~symact.activations.kaf.kernel_ridge_init`) against the ridge.

    For each ridge: ``max |alpha_i|``, ``||alpha||_2``, the fit error
    ``max |f - target|`` on ``[-L, L]`` (``grid`` points), the backward gain
    :func:`kaf_gain`, the exact Lipschitz constant :func:`kaf_lipschitz`, the
    largest ``|f'|`` on ``[-L, L]`` alone, and ``cond(K + ridge I)``.
    """
    from symact.activations.kaf import dictionary, kernel_ridge_init

    d, g = dictionary(D, boundary, bandwidth)
    if isinstance(target, str) and target not in _targets():
        raise ValueError(f"kernel ridge target must be one of {sorted(_targets())} or a callable, got {target!r}")
    fn = _targets()[target] if isinstance(target, str) else target
    s = np.linspace(-boundary, boundary, grid)
    rows = []
    for ridge in ridges:
        alpha = kernel_ridge_init(target, D, boundary, ridge, bandwidth)
        rows.append({"ridge": float(ridge), "max_abs_alpha": float(np.abs(alpha).max()),
                     "norm_alpha": float(np.linalg.norm(alpha)),
                     "fit_error": float(np.abs(kaf_value(s, alpha, d, g) - fn(s)).max()),
                     "gain": kaf_gain(alpha, d, g), "lipschitz": kaf_lipschitz(alpha, d, g),
                     "slope_inside": float(np.abs(kaf_derivative(s, alpha, d, g)).max()),
                     "condition": kernel_condition(d, g, ridge)})
    return rows
