"""Kernel activation functions, KAF and 2-D KAF.

Scardapane, Van Vaerenbergh, Totaro and Uncini (2019), "Kafnets: kernel-based
non-parametric activation functions for neural networks", Neural Networks
110: each activation is a kernel expansion over a fixed dictionary,

    f(s) = sum_{i=1..D} alpha_i exp(-gamma (s - d_i)^2),

with ``D`` dictionary points ``d_i`` evenly spaced on ``[-L, L]`` (spacing
``Delta = 2L/(D-1)``), a bandwidth ``gamma`` (see :func:`bandwidth_gamma`) and
mixing coefficients ``alpha`` learned, one set per channel (per neuron of a
linear layer). The book's thesis outline (``kaf-robustness-thesis.txt``) uses
KAFs as smooth trainable activations for robustness.

Bandwidth rules (``bandwidth=`` of every function and module here):

- ``"kafnets"`` (default): ``gamma = 1/(2 (2 Delta)^2) = 1/(8 Delta^2)``, the
  rule of thumb of the authors' reference code (kafnets, ``sigma = 2 Delta``,
  ``gamma = 0.5/sigma^2``); for the 2-D KAF the same code uses
  ``sigma = 2 Delta/sqrt(2)``, ``gamma = 1/(4 Delta^2)``;
- ``"thesis"``: ``gamma = 1/(6 Delta^2)``, the finished thesis's bandwidth
  (``../shared/papers/kaf-thesis-results.md``, "Setting used throughout");
  1-D KAF only (the thesis states no 2-D rule);
- a positive number: ``gamma`` itself.

Every rule fixes ``c = gamma Delta^2`` (1/8 or 1/6), the bandwidth measured in
dictionary spacings, which is what the kernel matrix's conditioning and the
fused kernel below depend on.

Implementations:

- :func:`kaf_naive`: the direct formula, which materialises a tensor ``D``
  times the input's size (as the authors' reference code does) and keeps it
  for backward. Used as the test reference, and for double backward.
- :func:`kaf` (default of :class:`KAF`): the same function, fused. With
  ``tau = (s - d_m)/Delta`` measured from an anchor point ``d_m`` of the
  dictionary, ``k = i - m`` and ``c = gamma Delta^2``, every kernel term
  factorises as ``exp(-c (tau - k)^2) = exp(-c tau^2) * p^k * exp(-c k^2)``
  with ``p = exp(2 c tau)``, so ``f`` is ``exp(-c tau^2)`` times a polynomial
  in ``p`` and ``1/p``, evaluated by Horner's rule: two exponentials per
  element instead of ``D``. The derivative is ``df/ds = -(2c/Delta)
  exp(-c tau^2) sum_k (tau - k) alpha_k p^k exp(-c k^2)`` and ``df/dalpha_i``
  is the kernel term itself; backward recomputes them block by block, so only
  the input (and ``alpha``) is kept. Anchors sit at the middle of groups of at
  most ``2K + 1`` dictionary points (``|k| <= K``, ``K = 10`` for the kafnets
  bandwidth, ``K = min(10, floor(4/sqrt(c)))`` in general), and ``tau`` is
  clamped at ``B = (log(max) - 4)/(2 c K)``, where ``p^K`` is still finite and
  every term is below ``exp(-c (B - K)^2) < 1e-17`` (``sqrt(c) K <= 4`` makes
  ``c (B - K)^2 >= 40`` in float32); the result equals the direct formula to
  rounding (tested against :func:`kaf_naive`). Kernels narrower than
  ``c = 16`` (a quarter of the spacing) are refused by the fused kernel (use
  ``fused=False``). On the CPU the kafnets bandwidth runs as one native pass
  forward and one backward (``_native.cpp``, for ``D <= 64``), where every
  group is padded to ``|k| <= 10`` (so ``tau`` is clamped at the bound for
  ``|k| = 10`` in both implementations); other bandwidths run the torch
  kernel. On CUDA every bandwidth runs the Triton kernel of ``_triton_kernels.py``
  (``D <= 64``), one pass forward and one backward by the direct formula (``D``
  exponentials an element, no clamping; its speed is not measured yet).

Limits: ``f(+-inf) = 0`` (every Gaussian vanishes); NaN gives NaN.
Gradients at infinite inputs are 0.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Union

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from symact.activations import _fused, _native, register
from symact.activations._fused import LOG2E, sum_to

__all__ = ["BANDWIDTHS", "KAF", "KAF2D", "KAFFree", "RIDGE_TARGETS", "bandwidth_gamma", "dictionary", "kaf", "kaf2d",
           "kaf2d_naive", "kaf_free", "kaf_naive", "kernel_ridge_init"]

_GROUP = 21  # dictionary points per Horner anchor for the kafnets bandwidth: |k| <= 10

#: ``c = gamma Delta^2`` of each named bandwidth rule (1-D KAF; see the module docstring)
BANDWIDTHS = {"kafnets": 1.0 / 8.0, "thesis": 1.0 / 6.0}


def _check_dictionary(D: int, boundary: float) -> None:
    if int(D) != D or D < 2:
        raise ValueError(f"the KAF dictionary needs D >= 2 points, got D={D}")
    if not boundary > 0:
        raise ValueError(f"the KAF dictionary boundary L must be > 0, got {boundary}")


Bandwidth = Union[str, float]


def _spacing_ratio(D: int, boundary: float, bandwidth: Bandwidth, two_d: bool = False) -> float:
    """``c = gamma Delta^2`` for a bandwidth rule name or a numeric ``gamma`` (checked)."""
    if isinstance(bandwidth, str):
        if bandwidth not in BANDWIDTHS:
            raise ValueError(f"bandwidth must be one of {sorted(BANDWIDTHS)} or a positive number (gamma), got {bandwidth!r}")
        if two_d:
            if bandwidth == "thesis":
                raise ValueError("the thesis states no bandwidth rule for the 2-D KAF; use 'kafnets' "
                                 "(gamma = 1/(4 Delta^2)) or a positive number (gamma)")
            return 0.25  # kafnets' 2-D rule, sigma = 2 Delta / sqrt(2)
        return BANDWIDTHS[bandwidth]
    if isinstance(bandwidth, (bool, np.bool_)) or not isinstance(bandwidth, (int, float, np.integer, np.floating)):
        raise ValueError(f"bandwidth must be one of {sorted(BANDWIDTHS)} or a positive number (gamma), got {bandwidth!r}")
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"a numeric bandwidth is gamma and must be finite and > 0, got {bandwidth!r}")
    delta = 2.0 * boundary / (D - 1)
    return float(bandwidth) * delta * delta


def bandwidth_gamma(D: int = 20, boundary: float = 3.0, rule: Bandwidth = "kafnets") -> float:
    """``gamma`` of a dictionary of ``D`` points on ``[-L, L]`` (spacing ``Delta = 2L/(D-1)``) under ``rule``.

    ``"kafnets"``: ``1/(8 Delta^2)`` (the authors' reference code: ``sigma = 2 Delta``, ``gamma = 0.5/sigma^2``);
    ``"thesis"``: ``1/(6 Delta^2)`` (``kaf-thesis-results.md``, "Setting used throughout"); a positive number is
    ``gamma`` itself. Any other value raises ``ValueError``.

    Example:
        >>> round(bandwidth_gamma(20, 3.0, "thesis") * (6 / 19) ** 2, 12)
        0.166666666667
    """
    _check_dictionary(D, boundary)
    c = _spacing_ratio(D, boundary, rule)
    if isinstance(rule, str):
        delta = 2.0 * boundary / (D - 1)
        return c / (delta * delta)
    return float(rule)


def dictionary(D: int = 20, boundary: float = 3.0, bandwidth: Bandwidth = "kafnets") -> tuple[np.ndarray, float]:
    """The fixed dictionary and bandwidth: ``D`` points evenly spaced on ``[-L, L]`` and ``gamma`` (see :func:`bandwidth_gamma`).

    The default is the kafnets rule ``gamma = 1/(2 (2 Delta)^2)``.
    """
    _check_dictionary(D, boundary)
    d = np.linspace(-boundary, boundary, int(D))
    return d, bandwidth_gamma(D, boundary, bandwidth)


#: the named targets of :func:`kernel_ridge_init` (NumPy functions of the dictionary points)
RIDGE_TARGETS = {"elu": lambda t: np.where(t > 0, t, np.expm1(np.minimum(t, 0))),
                 "relu": lambda t: np.maximum(t, 0),
                 "swish": lambda t: t / (1.0 + np.exp(-t))}


def kernel_ridge_init(target: Union[str, Callable], D: int = 20, boundary: float = 3.0, ridge: float = 1e-4,
                      bandwidth: Bandwidth = "kafnets") -> np.ndarray:
    """Coefficients ``alpha = (K + ridge I)^-1 t`` making the KAF approximate ``target`` (Kafnets, kernel ridge regression).

    ``K`` is the dictionary's kernel matrix and ``t = target(d)``; ``target``
    is a name of :data:`RIDGE_TARGETS` (``"elu"``, ``"relu"``, ``"swish"``:
    ``s sigmoid(s)``, the finished thesis's KAF_ELU, KAF_ReLU and KAF_Swish,
    ``kaf-thesis-results.md``, "Setting used throughout") or a NumPy-vectorised
    callable. ``ridge`` (default 1e-4) keeps ``|alpha|`` moderate (about 30 for
    ELU with D = 20; the fit error on ``[-L, L]`` is about 0.01 for ELU and
    Swish, 0.05 for ReLU's kink); :func:`symact.theory.kernel_condition`
    explains the size. ``bandwidth``: see :func:`bandwidth_gamma`.
    """
    if isinstance(target, str):
        if target not in RIDGE_TARGETS:
            raise ValueError(f"kernel ridge target must be one of {sorted(RIDGE_TARGETS)} or a callable, got {target!r}")
        target = RIDGE_TARGETS[target]
    if not (isinstance(ridge, (int, float, np.integer, np.floating)) and math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    d, gamma = dictionary(D, boundary, bandwidth)
    K = np.exp(-gamma * (d[:, None] - d[None, :]) ** 2)
    return np.linalg.solve(K + ridge * np.eye(len(d)), np.asarray(target(d), dtype=np.float64))


def _alpha_view(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(D,)`` or ``(C, D)`` -> broadcastable against ``x.unsqueeze(-1)``."""
    if alpha.dim() == 1:
        return alpha
    return alpha.reshape(1, alpha.shape[0], *([1] * (x.dim() - 2)), alpha.shape[1])


def kaf_naive(x: torch.Tensor, alpha: torch.Tensor, boundary: float = 3.0, bandwidth: Bandwidth = "kafnets") -> torch.Tensor:
    """KAF by the direct formula (materialises a ``D``-fold tensor; the test reference).

    ``f(s) = sum_i alpha_i exp(-gamma (s - d_i)^2)``; ``alpha``: ``(D,)``
    shared or ``(C, D)`` per channel (dim 1 of ``x``); ``bandwidth``: see :func:`bandwidth_gamma`.
    """
    d, gamma = dictionary(alpha.shape[-1], boundary, bandwidth)
    d = torch.as_tensor(d, dtype=x.dtype, device=x.device)
    if alpha.dim() == 2:
        _check_kaf_channels(x, alpha.shape[0])
    k = torch.exp(-gamma * (x.unsqueeze(-1) - d) ** 2)
    return (k * _alpha_view(alpha, x)).sum(-1)


class _KAFKernel:
    """Fused KAF: Horner's rule in ``p = exp(tau/4)`` around anchors of the dictionary (see the module docstring).

    The parameter is ``alpha`` shaped ``(D, 1, C, 1)`` (``C = 1`` when shared); ``c = gamma Delta^2``.
    """

    def __init__(self, D: int, boundary: float, c: float = BANDWIDTHS["kafnets"]):
        _check_dictionary(D, boundary)
        if not (math.isfinite(c) and 0 < c <= 16):
            raise ValueError(f"the fused KAF kernel needs 0 < gamma Delta^2 <= 16 (kernels at least a quarter of the "
                             f"dictionary spacing wide), got {c}; use fused=False (the direct formula) for narrower kernels")
        self.D, self.boundary, self.c = int(D), float(boundary), float(c)
        self.delta = 2.0 * boundary / (self.D - 1)
        # |k| <= K with sqrt(c) K <= 4: at the clamp every term is below exp(-40) (module docstring)
        self.K = min(_GROUP // 2, int(4.0 / math.sqrt(self.c)))
        self.groups = []  # (anchor position, [k...], [dictionary index...])
        for idx in np.array_split(np.arange(self.D), math.ceil(self.D / (2 * self.K + 1))):
            m = int(idx[len(idx) // 2])
            self.groups.append((-boundary + m * self.delta, [int(i) - m for i in idx], [int(i) for i in idx]))

    def native(self, params):
        # _native.cpp implements the kafnets bandwidth (c = 1/8) only
        return ("kaf", (self.D, self.boundary)) if self.D <= _native.MAX_KAF_D and self.c == BANDWIDTHS["kafnets"] else None

    def triton(self, params):
        # the Triton kernel (CUDA) computes the direct formula for any bandwidth
        return "kaf", (self.D, self.boundary, self.c)

    def _clamp(self, dtype: torch.dtype) -> float:
        # for the largest |k| of any group, K: p^K * exp(-c K^2) * |alpha| stays finite, and beyond the bound every
        # term is below exp(-c (B - K)^2) < exp(-40); for c = 1/8, K = 10 this is _native.cpp's bound
        return (math.log(torch.finfo(dtype).max) - 4.0) / (2.0 * self.c * self.K)

    def _terms(self, x, anchor, new):
        bound = self._clamp(x.dtype)
        tau = torch.sub(x, anchor, out=new()).mul_(1.0 / self.delta).clamp_(-bound, bound)
        e0 = torch.addcmul(x.new_zeros(()), tau, tau, value=-LOG2E * self.c, out=new()).exp2_()
        p = torch.mul(tau, LOG2E * 2.0 * self.c, out=new()).exp2_()
        return tau, e0, p, torch.reciprocal(p, out=new())

    @staticmethod
    def _horner(coefs, z, new):
        """``sum_j coefs[j] z^j`` (``coefs``: broadcastable tensors, at least two), in a new scratch tensor."""
        h = torch.mul(z, coefs[-1], out=new()).add_(coefs[-2])
        for c in reversed(coefs[:-2]):
            torch.addcmul(c, h, z, out=h)
        return h

    @staticmethod
    def _poly(coefs, p, pinv, new):
        """``sum_k c_k p^k`` for ``coefs = (c_0, c_1, ...), (c_-1, c_-2, ...)``, in a scratch tensor."""
        pos, neg = coefs
        h = _KAFKernel._horner(pos, p, new) if len(pos) > 1 else new().zero_().add_(pos[0])
        if len(neg) > 1:
            h.addcmul_(_KAFKernel._horner(neg, pinv, new), pinv)
        elif neg:
            h.addcmul_(pinv, neg[0])
        return h

    def prepare(self, params):
        """Per group: Horner coefficients ``alpha_i exp(-c k^2)`` and ``k alpha_i exp(-c k^2)``, split by the sign of ``k``."""
        (alpha,) = params
        groups = []
        for anchor, ks, idx in self.groups:
            c = {k: alpha[i] * math.exp(-self.c * k * k) for k, i in zip(ks, idx)}
            order = ([k for k in ks if k >= 0], sorted((k for k in ks if k < 0), reverse=True))
            coefs = tuple([c[k] for k in side] for side in order)
            kcoefs = tuple([c[k] * k for k in side] for side in order)
            groups.append((anchor, ks, idx, coefs, kcoefs))
        return alpha, groups

    def forward(self, x, state, new, out):
        _, groups = state
        y = None
        for anchor, ks, _, coefs, _ in groups:
            _, e0, p, pinv = self._terms(x, anchor, new)
            h = self._poly(coefs, p, pinv, new)
            if y is None:
                y = torch.mul(h, e0, out=new() if out is None else out)
            else:
                y.addcmul_(h, e0)
        return y

    def backward(self, x, g, state, needs, new, out):
        alpha, groups = state
        dx = None
        moments = x.new_empty(self.D, alpha.shape[2]) if needs[0] else None
        for anchor, ks, idx, coefs, kcoefs in groups:
            tau, e0, p, pinv = self._terms(x, anchor, new)
            h = self._poly(coefs, p, pinv, new)
            hk = self._poly(kcoefs, p, pinv, new)
            # df/dtau = -2c e0 (tau h - hk)
            d = h.mul_(tau).sub_(hk).mul_(e0)
            if dx is None:
                dx = torch.mul(d, g, out=new() if out is None else out)
            else:
                dx.addcmul_(d, g)
            if moments is not None:
                # sum g e0 p^k for every k: powers of p (then of 1/p) by repeated products, each reduced at once
                start = torch.mul(g, e0, out=new())
                j0 = ks.index(0)
                for steps, z in ((range(j0, len(ks)), p), (range(j0 - 1, -1, -1), pinv)):
                    w, buf = start, new()
                    for j in steps:
                        if j != j0:
                            w = torch.mul(start, z, out=buf) if w is start else w.mul_(z)
                        torch.sum(w, dim=(0, 2), out=moments[idx[j]])  # shared alpha: blocks are (1, 1, P)
        dalpha = None
        if moments is not None:
            # dalpha_i = exp(-c k^2) sum g e0 p^k
            dalpha = (moments * self.kernel_scale(x)).reshape(alpha.shape)
        return dx.mul_(-2.0 * self.c / self.delta), [dalpha]

    def kernel_scale(self, x):
        """``exp(-c k_i^2)`` for every dictionary point ``i``, as a ``(D, 1)`` column."""
        ks = [k for _, group_ks, _ in self.groups for k in group_ks]
        return torch.tensor([math.exp(-self.c * k * k) for k in ks], dtype=x.dtype, device=x.device).reshape(-1, 1)


@functools.lru_cache(maxsize=None)
def _kaf_kernel(D: int, boundary: float, c: float = BANDWIDTHS["kafnets"]) -> _KAFKernel:
    return _KAFKernel(D, boundary, c)


def _fused_c(D: int, boundary: float, bandwidth: Bandwidth) -> float:
    """``c = gamma Delta^2``; a numeric gamma within rounding of a named rule gets the rule's exact ``c``."""
    c = _spacing_ratio(D, boundary, bandwidth)
    for exact in BANDWIDTHS.values():
        if abs(c - exact) <= 1e-12 * exact:
            return exact
    return c


def _check_kaf_channels(x: torch.Tensor, channels: int) -> None:
    if x.dim() < 2 or x.shape[1] != channels:
        got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
        raise ValueError(f"KAF expected {channels} channels (dim 1 of the input), got {got} (input shape {tuple(x.shape)})")


def kaf(x: torch.Tensor, alpha: torch.Tensor, boundary: float = 3.0, bandwidth: Bandwidth = "kafnets") -> torch.Tensor:
    """Kernel activation function (Kafnets), fused: ``f(s) = sum_i alpha_i exp(-gamma (s - d_i)^2)``.

    Args:
        x: ``(N, C, ...)``; any shape when ``alpha`` is shared.
        alpha: ``(D,)`` shared, or ``(C, D)`` one set per channel (dim 1).
        boundary: ``L``; the dictionary is ``D`` points evenly spaced on ``[-L, L]``.
        bandwidth: ``"kafnets"`` (default, ``gamma = 1/(2 (2 Delta)^2)``), ``"thesis"``
            (``gamma = 1/(6 Delta^2)``) or a positive ``gamma``; see :func:`bandwidth_gamma`.

    Keeps only ``x`` and ``alpha`` for backward. Equal to :func:`kaf_naive`.

    Example:
        >>> alpha = torch.zeros(20); alpha[10] = 1.0
        >>> kaf(torch.tensor([0.0]), alpha).shape
        torch.Size([1])
    """
    D = int(alpha.shape[-1])
    _check_dictionary(D, boundary)
    kernel = _kaf_kernel(D, float(boundary), _fused_c(D, boundary, bandwidth))
    if alpha.dim() == 2:
        _check_kaf_channels(x, alpha.shape[0])
        return _fused.apply(kernel, x, [alpha.t().reshape(alpha.shape[1], 1, alpha.shape[0], 1)], per_channel=True)
    return _fused.apply(kernel, x, [alpha.reshape(-1, 1, 1, 1)])



def _init_coefficients(m: nn.Module) -> None:
    """``m.alpha`` (a KAF's or a KAFFree's coefficients) from ``m.init``: N(0, 0.3^2) for ``"normal"``, else the
    kernel ridge fit of that function on the module's dictionary and bandwidth, in every channel."""
    with torch.no_grad():
        if isinstance(m.init, str) and m.init == "normal":
            m.alpha.normal_(0.0, 0.3)
        else:
            coef = kernel_ridge_init(m.init, m.D, m.boundary, m.ridge, m.bandwidth)
            m.alpha.copy_(torch.as_tensor(coef, dtype=m.alpha.dtype).expand_as(m.alpha))


class KAF(nn.Module):
    """Kernel activation function (Scardapane et al. 2019, "Kafnets").

    ``f(s) = sum_{i=1..D} alpha_i exp(-gamma (s - d_i)^2)``, with a fixed
    dictionary of ``D`` points evenly spaced on ``[-L, L]`` and, by default,
    ``gamma = 1/(2 (2 Delta)^2)`` (``Delta`` the spacing).

    Args:
        channels: an int: one ``alpha`` (``D`` coefficients) per channel, dim 1
            (per neuron for linear layers), as in the paper; ``None``: one
            set shared by the layer.
        D: dictionary size (default 20), >= 2.
        boundary: ``L`` (default 3.0).
        init: ``"normal"`` (default: ``alpha ~ N(0, 0.3^2)``), ``"elu"``,
            ``"relu"`` or ``"swish"`` (kernel ridge regression onto that
            function, the same coefficients for every channel; the thesis's
            KAF_ELU, KAF_ReLU, KAF_Swish), or a NumPy callable.
        ridge: the kernel ridge regularisation (default 1e-4).
        fused: the fused implementation (default, keeps only the input for
            backward); ``False`` uses :func:`kaf_naive` (keeps a ``D``-fold
            tensor; supports double backward).
        bandwidth: ``"kafnets"`` (default: ``gamma = 1/(8 Delta^2)``, the
            authors' reference code), ``"thesis"`` (``gamma = 1/(6 Delta^2)``,
            ``kaf-thesis-results.md``) or a positive number, ``gamma`` itself;
            see :func:`bandwidth_gamma`. The kafnets rule runs the native CPU kernel,
            the others the torch kernel (same results, slower on the CPU); on
            CUDA every rule runs the Triton kernel.

    Parameter: ``alpha``, shape ``(channels, D)`` or ``(D,)``. Attribute
    ``gamma``: the bandwidth in use. :meth:`lipschitz`: the exact Lipschitz
    constant of each channel's function (:func:`symact.theory.lipschitz`).

    Shape: ``(N, C, ...)`` with ``C == channels``; any shape when shared.

    Example:
        >>> act = KAF(channels=16, init="elu")
        >>> act(torch.randn(8, 16, 4, 4)).shape
        torch.Size([8, 16, 4, 4])
    """

    def __init__(self, channels: int | None = None, D: int = 20, boundary: float = 3.0,
                 init: Union[str, Callable] = "normal", ridge: float = 1e-4, fused: bool = True,
                 bandwidth: Bandwidth = "kafnets"):
        super().__init__()
        _check_dictionary(D, boundary)
        self.gamma = bandwidth_gamma(D, boundary, bandwidth)  # checks the rule
        self.bandwidth = bandwidth
        if channels is not None and (int(channels) != channels or channels < 1):
            raise ValueError(f"channels must be a positive integer or None (shared), got {channels}")
        if not (init == "normal" or (isinstance(init, str) and init in RIDGE_TARGETS) or callable(init)):
            raise ValueError(f"init must be 'normal', {', '.join(map(repr, RIDGE_TARGETS))} or a callable, got {init!r}")
        self.channels, self.D, self.boundary, self.init, self.ridge, self.fused = channels, int(D), float(boundary), init, ridge, fused
        shape = (self.D,) if channels is None else (int(channels), self.D)
        self.alpha = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_coefficients(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None:
            _check_kaf_channels(x, self.channels)
        if self.fused:
            return kaf(x, self.alpha, self.boundary, self.bandwidth)
        alpha = self.alpha.to(torch.promote_types(x.dtype, self.alpha.dtype))
        return kaf_naive(x, alpha, self.boundary, self.bandwidth).to(x.dtype)

    def lipschitz(self):
        """The exact Lipschitz constant ``sup_s |f'(s)|`` of each channel's KAF (see :func:`symact.theory.lipschitz`)."""
        from symact.theory_kaf import lipschitz

        return lipschitz(self)

    def extra_repr(self) -> str:
        bw = "" if self.bandwidth == "kafnets" else f", bandwidth={self.bandwidth!r}"
        return f"channels={self.channels}, D={self.D}, boundary={self.boundary}, init={self.init!r}, fused={self.fused}{bw}"


# --------------------------------------------------------------------------- KAF with a trainable dictionary


def kaf_free(x: torch.Tensor, alpha: torch.Tensor, dictionary: torch.Tensor, log_gamma: torch.Tensor) -> torch.Tensor:
    """KAF whose dictionary and bandwidth are parameters too (the finished thesis's KAF_Free):

        f(s) = sum_{i=1..D} alpha_i exp(-exp(lg) (s - d_i)^2),

    the KAF formula (Scardapane et al. 2019, "Kafnets", Eq. of the KAF; ``kaf-thesis-results.md``, "Setting
    used throughout": "dictionary points and bandwidth trainable as well as the coefficients") with
    ``gamma = exp(lg)`` (a log parametrisation keeps it positive under gradient steps) and free points ``d_i``.

    ``alpha`` and ``dictionary``: ``(D,)`` shared or ``(C, D)`` per channel (dim 1 of ``x``); ``log_gamma``:
    ``(1,)`` shared or ``(C,)``. Memory-light: evaluated in blocks of rows, each recomputed for backward, so
    only ``x`` and the parameters are kept (the ``D``-fold tensor of kernel values never is); first-order
    gradients only.
    """
    if alpha.shape != dictionary.shape or alpha.dim() not in (1, 2):
        raise ValueError(f"alpha and dictionary must share one shape, (D,) or (C, D); got {tuple(alpha.shape)} and "
                         f"{tuple(dictionary.shape)}")
    want = (alpha.shape[0],) if alpha.dim() == 2 else (1,)
    if tuple(log_gamma.shape) != want:
        raise ValueError(f"log_gamma must have shape {want} for alpha of shape {tuple(alpha.shape)}, got "
                         f"{tuple(log_gamma.shape)}")
    if alpha.dim() == 2:
        _check_kaf_channels(x, alpha.shape[0])
    compute = torch.promote_types(torch.promote_types(x.dtype, torch.float32), alpha.dtype)

    def fn(xb, a, d, lg):
        xb, a, d, lg = xb.to(compute), a.to(compute), d.to(compute), lg.to(compute)
        gamma = _alpha_view(lg.exp()[:, None], xb) if a.dim() == 2 else lg.exp()
        k = torch.exp(-gamma * (xb.unsqueeze(-1) - _alpha_view(d, xb)) ** 2)
        return (k * _alpha_view(a, xb)).sum(-1).to(x.dtype)

    if x.dim() == 0 or x.shape[0] == 0:
        return fn(x, alpha, dictionary, log_gamma)
    per_row = max(1, x[0].numel() * alpha.shape[-1])
    rows = max(1, (1 << 22) // per_row)
    return _KAFFreeFn.apply(x, alpha, dictionary, log_gamma, rows, compute)


class _KAFFreeFn(torch.autograd.Function):
    """:func:`kaf_free` by blocks of rows, its gradients written out (``k_i = exp(-gamma (s - d_i)^2)``):

        df/ds = -2 gamma sum_i alpha_i k_i (s - d_i),    df/dalpha_i = k_i,
        df/dd_i = 2 gamma alpha_i k_i (s - d_i),         df/dlg = -gamma sum_i alpha_i k_i (s - d_i)^2.

    Only ``x`` and the parameters are kept; backward recomputes the kernel values block by block."""

    @staticmethod
    def _views(x, alpha, d, lg):
        if alpha.dim() == 2:
            return _alpha_view(alpha, x), _alpha_view(d, x), _alpha_view(lg.exp()[:, None], x)
        return alpha, d, lg.exp()

    @staticmethod
    def forward(ctx, x, alpha, d, lg, rows, compute):
        ctx.rows, ctx.compute = rows, compute
        ctx.save_for_backward(x, alpha, d, lg)
        a, dd, lgc = alpha.to(compute), d.to(compute), lg.to(compute)
        out = torch.empty_like(x)
        for i in range(0, x.shape[0], rows):
            xb = x[i:i + rows].to(compute)
            A, Dv, G = _KAFFreeFn._views(xb, a, dd, lgc)
            k = (xb.unsqueeze(-1) - Dv).square_().mul_(-G).exp_()
            out[i:i + rows] = k.mul_(A).sum(-1).to(x.dtype)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, alpha, d, lg = ctx.saved_tensors
        compute = ctx.compute
        need_x, need_a, need_d, need_g = ctx.needs_input_grad[:4]
        a, dc, lgc = alpha.to(compute), d.to(compute), lg.to(compute)
        dx = torch.empty_like(x) if need_x else None
        da, ddict, dlg = (torch.zeros(t.shape, dtype=compute, device=t.device) for t in (alpha, d, lg))
        for i in range(0, x.shape[0], ctx.rows):
            xb, gb = x[i:i + ctx.rows].to(compute), g[i:i + ctx.rows].to(compute)
            A, Dv, G = _KAFFreeFn._views(xb, a, dc, lgc)
            diff = xb.unsqueeze(-1) - Dv
            k = diff.square().mul_(-G).exp_()
            g1 = gb.unsqueeze(-1)
            if need_a:
                da += sum_to(g1 * k, A).reshape(alpha.shape)
            t = k.mul_(A).mul_(diff)  # alpha_i k_i (s - d_i)
            if need_x:
                dx[i:i + ctx.rows] = (t.sum(-1, keepdim=True).mul_(-2 * G).squeeze(-1) * gb).to(x.dtype)
            t.mul_(g1)
            if need_d:
                ddict += (sum_to(t, Dv) * (2 * G)).reshape(d.shape)
            if need_g:
                dlg += (-G * sum_to(t.mul_(diff).sum(-1, keepdim=True), G)).reshape(lg.shape)
        return (dx, da.to(alpha.dtype) if need_a else None, ddict.to(d.dtype) if need_d else None,
                dlg.to(lg.dtype) if need_g else None, None, None)


class KAFFree(nn.Module):
    """KAF with trainable dictionary points and bandwidth as well as coefficients: the finished thesis's
    KAF_Free (``kaf-thesis-results.md``, "Setting used throughout"), :func:`kaf_free`.

    At initialisation it is a :class:`KAF`: ``D`` points evenly spaced on ``[-L, L]``, ``gamma`` by
    ``bandwidth`` (:func:`bandwidth_gamma`), ``alpha`` by ``init`` (as :class:`KAF`: ``"normal"``, a name of
    :data:`RIDGE_TARGETS` or a callable); then the points and ``log gamma`` train with ``alpha``. The thesis does
    not record KAF_Free's initialisation; random coefficients are chosen here, as its learning-rate range
    (0.01 to 2, the same as KAF's and not KAF_ELU's) suggests.

    Parameters: ``alpha`` and ``dictionary``, ``(channels, D)`` (``(D,)`` when shared); ``log_gamma``,
    ``(channels,)`` (``(1,)`` when shared): ``2 D + 1`` per channel, about twice a KAF's ``D`` (the thesis:
    "twice the KAF parameters").

    Example:
        >>> act = KAFFree(channels=16)
        >>> act(torch.randn(8, 16, 4, 4)).shape
        torch.Size([8, 16, 4, 4])
    """

    def __init__(self, channels: int | None = None, D: int = 20, boundary: float = 3.0,
                 init: Union[str, Callable] = "normal", ridge: float = 1e-4, bandwidth: Bandwidth = "kafnets"):
        super().__init__()
        _check_dictionary(D, boundary)
        gamma = bandwidth_gamma(D, boundary, bandwidth)  # checks the rule
        if channels is not None and (int(channels) != channels or channels < 1):
            raise ValueError(f"channels must be a positive integer or None (shared), got {channels}")
        if not (init == "normal" or (isinstance(init, str) and init in RIDGE_TARGETS) or callable(init)):
            raise ValueError(f"init must be 'normal', {', '.join(map(repr, RIDGE_TARGETS))} or a callable, got {init!r}")
        self.channels, self.D, self.boundary, self.init, self.ridge = channels, int(D), float(boundary), init, ridge
        self.bandwidth, self.gamma0 = bandwidth, gamma
        shape = (self.D,) if channels is None else (int(channels), self.D)
        self.alpha = nn.Parameter(torch.empty(shape))
        self.dictionary = nn.Parameter(torch.empty(shape))
        self.log_gamma = nn.Parameter(torch.empty(shape[:-1] or (1,)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            d = torch.as_tensor(np.linspace(-self.boundary, self.boundary, self.D), dtype=self.dictionary.dtype)
            self.dictionary.copy_(d.expand_as(self.dictionary))
            self.log_gamma.fill_(math.log(self.gamma0))
        _init_coefficients(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kaf_free(x, self.alpha, self.dictionary, self.log_gamma)

    def extra_repr(self) -> str:
        bw = "" if self.bandwidth == "kafnets" else f", bandwidth={self.bandwidth!r}"
        return f"channels={self.channels}, D={self.D}, boundary={self.boundary}, init={self.init!r}{bw}, trainable dictionary and bandwidth"


# --------------------------------------------------------------------------- 2-D KAF


def _kaf2d_gamma(D: int, boundary: float, bandwidth: Bandwidth = "kafnets") -> float:
    """``gamma`` of the 2-D KAF: kafnets' ``0.5/(2 Delta/sqrt(2))^2 = 1/(4 Delta^2)``, or a positive number."""
    _check_dictionary(D, boundary)
    delta = 2.0 * boundary / (D - 1)
    return _spacing_ratio(D, boundary, bandwidth, two_d=True) / (delta * delta)


def _pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dim() < 2 or x.shape[1] % 2:
        raise ValueError(f"2-D KAF pairs channel c with channel c + C/2 and needs an even channel count C, got input shape {tuple(x.shape)}")
    half = x.shape[1] // 2
    return x[:, :half], x[:, half:]


def _alpha2d_view(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(D, D)`` or ``(C/2, D, D)`` -> broadcastable against ``(N, C/2, ..., D, D)``."""
    if alpha.dim() == 2:
        return alpha
    return alpha.reshape(1, alpha.shape[0], *([1] * (x.dim() - 2)), *alpha.shape[1:])


def kaf2d_naive(x: torch.Tensor, alpha: torch.Tensor, boundary: float = 3.0, bandwidth: Bandwidth = "kafnets") -> torch.Tensor:
    """2-D KAF by the direct formula (a ``D^2``-fold tensor; the test reference).

    ``f(s1, s2) = sum_{a,b} alpha_ab exp(-gamma ((s1 - d_a)^2 + (s2 - d_b)^2))``
    on the ``D x D`` grid, ``s1`` = channel ``c`` and ``s2`` = channel
    ``c + C/2`` of ``x``. ``(N, C, ...) -> (N, C/2, ...)``.
    """
    D = alpha.shape[-1]
    gamma = _kaf2d_gamma(D, boundary, bandwidth)
    d = torch.linspace(-boundary, boundary, D, dtype=x.dtype, device=x.device)
    s1, s2 = _pair(x)
    k = torch.exp(-gamma * ((s1[..., None, None] - d[:, None]) ** 2 + (s2[..., None, None] - d[None, :]) ** 2))
    return (k * _alpha2d_view(alpha, s1)).sum((-2, -1))


def _kaf2d_separable(x: torch.Tensor, alpha: torch.Tensor, boundary: float, gamma: float) -> torch.Tensor:
    """The same function through the kernel's separability: ``k1(s1)^T A k2(s2)`` (``D``-fold, not ``D^2``)."""
    D = alpha.shape[-1]
    d = torch.linspace(-boundary, boundary, D, dtype=x.dtype, device=x.device)
    s1, s2 = _pair(x)
    n, half = s1.shape[:2]
    k1 = torch.exp(-gamma * (s1.reshape(n, half, -1, 1) - d) ** 2)  # (N, C/2, P, D)
    k2 = torch.exp(-gamma * (s2.reshape(n, half, -1, 1) - d) ** 2)
    t = torch.matmul(k2, alpha.transpose(-1, -2))  # t[..., a] = sum_b alpha_ab k2_b; alpha (C/2, D, D) or (D, D)
    return (k1 * t).sum(-1).reshape(s1.shape)


class _Blockwise(torch.autograd.Function):
    """Evaluate ``fn`` over blocks of rows without keeping intermediates; backward recomputes each block."""

    @staticmethod
    def forward(ctx, fn, rows, x, *params):
        ctx.fn, ctx.rows = fn, rows
        ctx.save_for_backward(x, *params)
        return torch.cat([fn(x[i:i + rows], *params) for i in range(0, x.shape[0], rows)])

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, *params = ctx.saved_tensors
        need_x, *need_p = ctx.needs_input_grad[2:]
        dx = torch.empty_like(x) if need_x else None
        dps = [torch.zeros_like(p) if n else None for p, n in zip(params, need_p)]
        for i in range(0, x.shape[0], ctx.rows):
            with torch.enable_grad():
                xb = x[i:i + ctx.rows].detach().requires_grad_(need_x)
                ps = [p.detach().requires_grad_(n) for p, n in zip(params, need_p)]
                inputs = [t for t in (xb, *ps) if t.requires_grad]
                grads = list(torch.autograd.grad(ctx.fn(xb, *ps), inputs, g[i:i + ctx.rows]))
            if need_x:
                dx[i:i + ctx.rows] = grads.pop(0)
            for acc, n in zip(dps, need_p):
                if n:
                    acc += grads.pop(0)
        return (None, None, dx, *dps)


def kaf2d(x: torch.Tensor, alpha: torch.Tensor, boundary: float = 3.0, bandwidth: Bandwidth = "kafnets") -> torch.Tensor:
    """2-D KAF (Kafnets), memory-light: ``(N, C, ...) -> (N, C/2, ...)``.

    ``f(s1, s2) = sum_{a,b} alpha_ab exp(-gamma ((s1 - d_a)^2 + (s2 - d_b)^2))``
    over a ``D x D`` grid of dictionary points on ``[-L, L]^2``, with the
    authors' bandwidth ``gamma = 1/(2 (sqrt(2) Delta)^2)`` (their reference
    code's rule of thumb for the 2-D case, ``bandwidth="kafnets"``) or a
    positive number ``gamma`` (the thesis states no 2-D rule, so
    ``"thesis"`` raises). Channel ``c`` is paired with
    channel ``c + C/2``. ``alpha``: ``(D, D)`` shared or ``(C/2, D, D)``.
    Keeps only ``x`` and ``alpha`` for backward; equal to :func:`kaf2d_naive`.
    """
    compute = torch.promote_types(torch.promote_types(x.dtype, torch.float32), alpha.dtype)
    gamma = _kaf2d_gamma(int(alpha.shape[-1]), boundary, bandwidth)

    def fn(xb, a):
        return _kaf2d_separable(xb.to(compute), a.to(compute), boundary, gamma).to(x.dtype)

    per_row = max(1, x[0].numel() * alpha.shape[-1] // 2)
    rows = max(1, (1 << 20) // per_row)
    return _Blockwise.apply(fn, rows, x, alpha)


class KAF2D(nn.Module):
    """2-D kernel activation function (Scardapane et al. 2019, "Kafnets", Section on 2D-KAFs).

    Each output is a kernel expansion over a pair of inputs,
    ``f(s1, s2) = sum_{a,b} alpha_ab exp(-gamma ((s1 - d_a)^2 + (s2 - d_b)^2))``,
    on a ``D x D`` grid over ``[-L, L]^2``; channel ``c`` is paired with
    channel ``c + C/2``, so the paper's layer halves the channel count.

    Use with a model factory: ``keep_channels=True`` (default) returns the
    ``C/2`` outputs twice (concatenated along dim 1), so the next layer sees
    ``C`` channels as built. That is exactly a 2-D KAF network whose layer
    has ``C/2`` units (the next layer's weights on the two copies act as
    one); ``keep_channels=False`` returns ``C/2`` channels, for models
    built for it.

    Args:
        channels: even channel count of the input (one ``alpha`` grid per
            output channel), or ``None``: one ``alpha`` shared by the layer.
        D: grid points a side (default 10, as in the authors' code), >= 2.
        boundary: ``L`` (default 3.0).
        keep_channels: see above.
        fused: memory-light blockwise evaluation (default) or
            :func:`kaf2d_naive` (keeps a ``D^2``-fold tensor).
        bandwidth: ``"kafnets"`` (default, ``gamma = 1/(4 Delta^2)``) or a
            positive number, ``gamma`` itself (``"thesis"`` raises: the thesis
            uses 1-D KAFs only).

    Parameter: ``alpha``, ``(channels/2, D, D)`` or ``(D, D)``, init ``N(0, 0.3^2)``.

    Shape: ``(N, C, ...) -> (N, C, ...)`` (``keep_channels``) or ``(N, C/2, ...)``.

    Example:
        >>> KAF2D(channels=8)(torch.randn(2, 8, 3, 3)).shape
        torch.Size([2, 8, 3, 3])
    """

    def __init__(self, channels: int | None = None, D: int = 10, boundary: float = 3.0,
                 keep_channels: bool = True, fused: bool = True, bandwidth: Bandwidth = "kafnets"):
        super().__init__()
        _check_dictionary(D, boundary)
        self.gamma = _kaf2d_gamma(D, boundary, bandwidth)  # checks the rule
        self.bandwidth = bandwidth
        if channels is not None and (int(channels) != channels or channels < 2 or channels % 2):
            raise ValueError(f"2-D KAF needs an even channel count (or None, shared), got {channels}")
        self.channels, self.D, self.boundary, self.keep_channels, self.fused = channels, int(D), float(boundary), keep_channels, fused
        shape = (self.D, self.D) if channels is None else (int(channels) // 2, self.D, self.D)
        self.alpha = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.alpha.normal_(0.0, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None and (x.dim() < 2 or x.shape[1] != self.channels):
            got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
            raise ValueError(f"KAF2D expected {self.channels} channels (dim 1 of the input), got {got} (input shape {tuple(x.shape)})")
        if self.fused:
            y = kaf2d(x, self.alpha, self.boundary, self.bandwidth)
        else:
            alpha = self.alpha.to(torch.promote_types(x.dtype, self.alpha.dtype))
            y = kaf2d_naive(x, alpha, self.boundary, self.bandwidth).to(x.dtype)
        return torch.cat([y, y], dim=1) if self.keep_channels else y

    def extra_repr(self) -> str:
        bw = "" if self.bandwidth == "kafnets" else f", bandwidth={self.bandwidth!r}"
        return f"channels={self.channels}, D={self.D}, boundary={self.boundary}, keep_channels={self.keep_channels}{bw}"


def _kaf(channels: int | None = None, per_channel: bool = True, **kwargs) -> KAF:
    return KAF(channels=channels if per_channel else None, **kwargs)


def _kaf2d(channels: int | None = None, per_channel: bool = True, **kwargs) -> KAF2D:
    # an odd width (e.g. the registry's own check with channels=1) gets a shared alpha; the
    # forward pass still rejects an odd channel count with a clear error
    even = channels is not None and channels % 2 == 0
    return KAF2D(channels=channels if per_channel and even else None, **kwargs)


def _kaf_free(channels: int | None = None, per_channel: bool = True, **kwargs) -> KAFFree:
    return KAFFree(channels=channels if per_channel else None, **kwargs)


register("kaf", KAF, _kaf, per_channel=True)
register("kaf_free", KAFFree, _kaf_free, per_channel=True)
register("kaf2d", KAF2D, _kaf2d, per_channel=True)
