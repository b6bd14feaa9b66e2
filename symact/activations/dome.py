"""The DOME family: Difference Of Mirrored Exponential terms (``dome.txt``).

Hussein and AbdAlmageed, "Introducing the DOME activation functions":

- :func:`dome` / :class:`DOME`, Eq. 2: a bounded, non-monotonic output
  activation for binary classification, in (0, 1).
- :func:`pdome` / :class:`PDOME`, Eq. 3: Penalized DOME for hidden layers, in
  (-pi, 1) for pi > 0 (the paper's text calls it "Equation (13)"; the
  displayed equation is (3). The paper states the interval for every pi; at
  pi = 0 the upper end is reached, PDOME(mu) = 1, and for pi < 0 neither
  bound holds).
- :func:`dome1`, :func:`dome2` / :class:`DOME1`, :class:`DOME2`, Eq. 4 and 5:
  the two-output binary form (``dome1 == dome`` and ``dome2 == 1 - dome``).
- :func:`mdome` / :class:`MDOME`, Eq. 8 and 9: the multi-class form, with
  reference points at the vertices of a regular simplex
  (:func:`simplex_vertices`); :func:`mdome_normalized`, Eq. 12 and 13; and the
  two logit views of Eq. 14 and 15 (:func:`mdome_logit1`,
  :func:`mdome_logit2`) used to attack MDOME models;
  :func:`mdome_logit_affine`, the per-sample affine map from LOGIT2 to
  LOGIT1; :func:`mdome_rescale_`, the rescaling of an MDOME layer and the
  linear layer before it that leaves the network's function unchanged.

The element-wise members (DOME, PDOME, DOME1, DOME2) run fused (see
``_fused``): they keep only their input for backward.

Limits: ``dome(+-inf) = 0.5``, ``pdome(+-inf) = 0``, ``mdome`` of an input
with an infinite coordinate is ``1/n`` for every class (every kernel term
vanishes). Gradients at infinite inputs are not defined.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from symact.activations import _fused, register
from symact.activations._fused import LOG2E, as_param, dot_to

__all__ = [
    "DOME", "DOME1", "DOME2", "MDOME", "PDOME",
    "dome", "dome1", "dome2", "mdome", "mdome_logit1", "mdome_logit2", "mdome_logit_affine", "mdome_normalized",
    "mdome_rescale_", "pdome", "simplex_vertices",
]

_SQRT_LOG2E = math.sqrt(LOG2E)


def _check_sigma(sigma) -> None:
    if not isinstance(sigma, torch.Tensor) and not float(sigma) > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")


class _PDOMEKernel:
    """``y = shift + scale * (A - pi * B)`` with ``A = exp(-((x-mu)/sigma)^2)``, ``B = exp(-((x+mu)/sigma)^2)``.

    PDOME is ``scale=1, shift=0``; DOME is ``pi=1, scale=shift=0.5``. With
    ``u = sqrt(log2 e) (x-mu)/sigma`` and ``v = sqrt(log2 e) (x+mu)/sigma``,
    ``A = 2^(-u^2)``, ``B = 2^(-v^2)``, ``c = 2 scale / (sqrt(log2 e) sigma)``:

        dy/dx     = -c (u A - pi v B)
        dy/dmu    =  c (u A + pi v B)
        dy/dsigma =  c (u^2 A - pi v^2 B) / sqrt(log2 e)
        dy/dpi    = -scale B
    """

    def __init__(self, scale: float, shift: float):
        self.scale, self.shift = scale, shift

    def native(self, params):
        return "pdome", (self.scale, self.shift)

    @staticmethod
    def _terms(x, mu, sigma, new):
        inv = _SQRT_LOG2E / sigma
        m = mu * inv
        zero = x.new_zeros(())
        t = torch.mul(x, inv, out=new())
        u = torch.sub(t, m, out=new())
        v = t.add_(m)
        a = torch.addcmul(zero, u, u, value=-1.0, out=new()).exp2_()
        b = torch.addcmul(zero, v, v, value=-1.0, out=new()).exp2_()
        return u, v, a, b

    def forward(self, x, params, new, out):
        mu, sigma, pi = params
        _, _, a, b = self._terms(x, mu, sigma, new)
        y = torch.addcmul(a, b, -pi, out=new() if out is None else out)
        if self.scale != 1.0 or self.shift != 0.0:
            y.mul_(self.scale).add_(self.shift)
        return y

    def backward(self, x, g, params, needs, new, out):
        mu, sigma, pi = params
        u, v, a, b = self._terms(x, mu, sigma, new)
        grads = [None, None, None]
        if needs[2]:
            grads[2] = dot_to(g, b, pi) * -self.scale
        gc = torch.mul(g, 2.0 * self.scale / (_SQRT_LOG2E * sigma), out=new())
        ua = a.mul_(u)
        pvb = b.mul_(v).mul_(pi)
        if needs[0]:
            grads[0] = dot_to(torch.add(ua, pvb, out=new()), gc, mu)
        if needs[1]:
            w = torch.addcmul(u.mul_(ua), v, pvb, value=-1.0, out=u)  # u^2 A - pi v^2 B
            grads[1] = dot_to(w, gc, sigma) * (1.0 / _SQRT_LOG2E)
        return torch.sub(pvb, ua, out=new() if out is None else out).mul_(gc), grads


_PDOME_KERNEL = _PDOMEKernel(1.0, 0.0)
_DOME_KERNEL = _PDOMEKernel(0.5, 0.5)
_DOME2_KERNEL = _PDOMEKernel(-0.5, 0.5)


def _scalars(x, *values):
    return [as_param(v, x).reshape(1, 1, 1) for v in values]


def pdome(x: torch.Tensor, mu=1.0, sigma=1.0, pi=0.1) -> torch.Tensor:
    """Penalized DOME, dome.txt Eq. 3.

    ``PDOME(x) = exp(-((x - mu)/sigma)^2) - pi * exp(-((x + mu)/sigma)^2)``,
    in ``(-pi, 1)`` for ``pi > 0``. ``mu``, ``sigma``, ``pi``: floats or
    0-d tensors (differentiable). Any input shape.

    Example:
        >>> pdome(torch.tensor([1.0]), mu=1.0, sigma=1.0, pi=0.1)  # 1 - 0.1 e^-4
        tensor([0.9982])
    """
    _check_sigma(sigma)
    return _fused.apply(_PDOME_KERNEL, x, _scalars(x, mu, sigma, pi))


def dome(x: torch.Tensor, mu=1.0, sigma=1.0) -> torch.Tensor:
    """DOME, dome.txt Eq. 2.

    ``DOME(x) = 0.5 * (1 + exp(-((x - mu)/sigma)^2) - exp(-((x + mu)/sigma)^2))``,
    in ``(0, 1)``; ``DOME(0) = 0.5``, ``DOME(+-inf) = 0.5``. Any input shape.

    Example:
        >>> dome(torch.tensor([0.0, 1.0]))
        tensor([0.5000, 0.9908])
    """
    _check_sigma(sigma)
    mu_, sigma_, = _scalars(x, mu, sigma)
    return _fused.apply(_DOME_KERNEL, x, [mu_, sigma_, torch.ones_like(mu_)])


def dome1(x: torch.Tensor, mu=1.0, sigma=1.0) -> torch.Tensor:
    """DOME_1, dome.txt Eq. 4 (``e_1 = 1, e_2 = -1``): identical to :func:`dome` (Eq. 2)."""
    return dome(x, mu, sigma)


def dome2(x: torch.Tensor, mu=1.0, sigma=1.0) -> torch.Tensor:
    """DOME_2, dome.txt Eq. 5: ``0.5 * (1 + exp(-((x + mu)/sigma)^2) - exp(-((x - mu)/sigma)^2))``.

    Equals ``1 - dome(x)`` (Eq. 7) and ``dome(-x)``.
    """
    _check_sigma(sigma)
    mu_, sigma_, = _scalars(x, mu, sigma)
    return _fused.apply(_DOME2_KERNEL, x, [mu_, sigma_, torch.ones_like(mu_)])


def _parameter(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    t = torch.tensor(float(value))
    if learnable:
        module.register_parameter(name, nn.Parameter(t))
    else:
        module.register_buffer(name, t)


class DOME(nn.Module):
    """DOME, dome.txt Eq. 2: ``0.5 * (1 + exp(-((x-mu)/sigma)^2) - exp(-((x+mu)/sigma)^2))``.

    An output activation for binary classification, in (0, 1): its maxima sit
    near ``+mu`` and minima near ``-mu``, so the logits of each class stay in
    a bounded, compact range (Section 4).

    Args:
        mu: position of the two mirrored exponential terms (default 1, the
            paper's initial value, Section 7).
        sigma: their width, > 0 (default 1).
        learnable: ``mu`` and ``sigma`` are ``nn.Parameter`` s (default) or fixed buffers.
        fused: run the fused kernel (default); ``False`` runs the plain
            autograd formula (supports double backward).

    Shape: any; output has the input's shape.

    Example:
        >>> act = DOME(mu=1.0, sigma=1.0)
        >>> act(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """

    _kernel = _DOME_KERNEL

    def __init__(self, mu: float = 1.0, sigma: float = 1.0, learnable: bool = True, fused: bool = True):
        super().__init__()
        _check_sigma(sigma)
        _parameter(self, "mu", mu, learnable)
        _parameter(self, "sigma", sigma, learnable)
        self.fused = fused

    def _reference(self, x):
        a = torch.exp(-(((x - self.mu) / self.sigma) ** 2))
        b = torch.exp(-(((x + self.mu) / self.sigma) ** 2))
        return 0.5 * (1 + a - b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self._reference(x)
        mu, sigma = self.mu.reshape(1, 1, 1), self.sigma.reshape(1, 1, 1)
        return _fused.apply(self._kernel, x, [mu, sigma, torch.ones_like(mu)])

    def extra_repr(self) -> str:
        return f"mu={self.mu.item():.4g}, sigma={self.sigma.item():.4g}, learnable={isinstance(self.mu, nn.Parameter)}"


class DOME1(DOME):
    """DOME_1, dome.txt Eq. 4 (the class-1 output of the two-output binary form); equal to :class:`DOME`."""


class DOME2(DOME):
    """DOME_2, dome.txt Eq. 5: ``0.5 * (1 + exp(-((x+mu)/sigma)^2) - exp(-((x-mu)/sigma)^2)) = 1 - DOME(x)``.

    Same arguments as :class:`DOME`.
    """

    _kernel = _DOME2_KERNEL

    def _reference(self, x):
        return 1 - super()._reference(x)


class PDOME(nn.Module):
    """Penalized DOME, dome.txt Eq. 3: ``exp(-((x-mu)/sigma)^2) - pi * exp(-((x+mu)/sigma)^2)``.

    A hidden-layer activation with a learnable penalty ``pi`` on its negative
    lobe; in ``(-pi, 1)`` when ``pi > 0`` (``pi`` is not constrained during
    training; the bound, and the paper's reading of ``pi`` as a penalty, need
    ``pi > 0``). One set of parameters for the whole layer.

    Args:
        mu, sigma, pi: initial values; defaults 1, 1, 0.1 as in the paper's
            Section 7. ``sigma > 0``.
        learnable: parameters (default) or fixed buffers.
        fused: fused kernel (default) or the plain autograd formula.

    Shape: any; output has the input's shape.

    Example:
        >>> act = PDOME()
        >>> sorted(name for name, _ in act.named_parameters())
        ['mu', 'pi', 'sigma']
    """

    def __init__(self, mu: float = 1.0, sigma: float = 1.0, pi: float = 0.1, learnable: bool = True, fused: bool = True):
        super().__init__()
        _check_sigma(sigma)
        _parameter(self, "mu", mu, learnable)
        _parameter(self, "sigma", sigma, learnable)
        _parameter(self, "pi", pi, learnable)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            a = torch.exp(-(((x - self.mu) / self.sigma) ** 2))
            return a - self.pi * torch.exp(-(((x + self.mu) / self.sigma) ** 2))
        params = [p.reshape(1, 1, 1) for p in (self.mu, self.sigma, self.pi)]
        return _fused.apply(_PDOME_KERNEL, x, params)

    def extra_repr(self) -> str:
        return f"mu={self.mu.item():.4g}, sigma={self.sigma.item():.4g}, pi={self.pi.item():.4g}"


# --------------------------------------------------------------------------- MDOME


def simplex_vertices(n: int, dim: int | None = None) -> np.ndarray:
    """Vertices of a regular simplex with ``n`` vertices at unit distance from the origin.

    Returns an ``(n, dim)`` float64 array (``dim`` defaults to ``n - 1``, the
    smallest space holding the simplex; larger ``dim`` pads with zero
    coordinates). Every vertex has norm 1 and every pair has dot product
    ``-1/(n-1)``, so all pairwise distances are equal and the centroid is the
    origin.

    Construction (recursive): for ``n = 2`` the vertices are ``+1`` and ``-1``
    (so that MDOME with ``n = 2`` is dome.txt Eq. 4 and 5 with ``e_1 = 1,
    e_2 = -1``). For ``n > 2`` the first vertex is ``(1, 0, ..., 0)`` and the
    others are ``(-1/(n-1), sqrt(1 - 1/(n-1)^2) * w)`` for the vertices ``w``
    of the ``(n-1)``-vertex simplex in ``n - 2`` dimensions.

    Example:
        >>> simplex_vertices(3).round(3)
        array([[ 1.   ,  0.   ],
               [-0.5  ,  0.866],
               [-0.5  , -0.866]])
    """
    if n < 2:
        raise ValueError(f"a simplex needs n >= 2 vertices, got n={n}")
    dim = n - 1 if dim is None else dim
    if dim < n - 1:
        raise ValueError(f"a regular simplex with n={n} vertices needs dim >= n-1 = {n - 1}, got dim={dim}")
    if n == 2:
        v = np.array([[1.0], [-1.0]])
    else:
        w = simplex_vertices(n - 1)
        rest = np.hstack([np.full((n - 1, 1), -1.0 / (n - 1)), math.sqrt(1.0 - 1.0 / (n - 1) ** 2) * w])
        v = np.vstack([np.eye(1, n - 1), rest])
    return np.hstack([v, np.zeros((n, dim - (n - 1)))])


def _check_features(x: torch.Tensor, vertices: torch.Tensor) -> None:
    dim = vertices.shape[1]
    if x.dim() < 2 or x.shape[1] != dim:
        raise ValueError(
            f"MDOME expected input of shape (N, {dim}, ...) (dim 1 = the space of the reference points), "
            f"got shape {tuple(x.shape)}"
        )


def _kappa(x: torch.Tensor, mu, sigma, vertices: torch.Tensor) -> torch.Tensor:
    """dome.txt Eq. 9: ``kappa_l(x) = -|| (x - mu e_l) / sigma ||^2``, stacked along dim 1.

    Computed as ``-(||x||^2 - 2 mu x.e_l + mu^2) / sigma^2`` (``||e_l|| = 1``): one
    matrix product instead of an ``(N, n, dim, ...)`` tensor of differences.
    """
    _check_features(x, vertices)
    e = vertices.to(x.dtype)
    sq = (x * x).sum(dim=1, keepdim=True) - 2 * mu * torch.einsum("nd...,kd->nk...", x, e) + mu * mu
    sq = sq.clamp(min=0).masked_fill(torch.isinf(x).any(dim=1, keepdim=True), float("inf"))  # not inf - inf
    return -sq / (sigma * sigma)


def mdome(x: torch.Tensor, mu=1.0, sigma=5.0, vertices: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
    """Multi-class DOME, dome.txt Eq. 8 and 9.

    ``DOME_i^n(x) = (n-1)/n * (exp(kappa_i) - 1/(n-1) * sum_{j != i} exp(kappa_j) + 1/(n-1))``,
    ``kappa_l(x) = -||(x - mu e_l)/sigma||^2``, which simplifies to
    ``exp(kappa_i) + (1 - sum_j exp(kappa_j)) / n``. The components sum to 1
    (Eq. 11) and lie in ``((2-n)/n, 1)`` (Eq. 10).

    Args:
        x: ``(N, dim, ...)``; dim 1 holds the coordinates.
        mu, sigma: floats or 0-d tensors.
        vertices: ``(n, dim)`` reference directions ``e_l`` (default
            :func:`simplex_vertices` ``(n, dim)``; give ``vertices`` or ``n``).

    Returns:
        ``(N, n, ...)``.

    Example:
        >>> round(mdome(torch.zeros(1, 2), n=3).sum(1).item(), 6)
        1.0
    """
    vertices = _vertices(x, vertices, n)
    _check_sigma(sigma)
    k = torch.exp(_kappa(x, mu, sigma, vertices))
    return k + (1 - k.sum(dim=1, keepdim=True)) / vertices.shape[0]


def mdome_normalized(x: torch.Tensor, mu=1.0, sigma=5.0, vertices: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
    """Non-negative MDOME, dome.txt Eq. 12 and 13.

    ``D~_i = DOME_i^n - min_k(min(DOME_k^n, 0))`` (Eq. 13) and
    ``D^_i = D~_i / sum_i D~_i`` (Eq. 12): non-negative, summing to 1.
    Arguments and shapes as :func:`mdome`.
    """
    d = mdome(x, mu, sigma, vertices, n)
    d = d - d.amin(dim=1, keepdim=True).clamp(max=0)
    return d / d.sum(dim=1, keepdim=True)


def mdome_logit1(x: torch.Tensor, mu=1.0, sigma=5.0, vertices: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
    """MDOME logit view 1, dome.txt Eq. 14: ``-||(x - mu e_i)/sigma||^2`` (= ``kappa_i``), for attacks."""
    return _kappa(x, mu, sigma, _vertices(x, vertices, n))


def mdome_logit2(x: torch.Tensor, mu=1.0, vertices: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
    """MDOME logit view 2, dome.txt Eq. 15: ``x . (mu e_i)``, for attacks."""
    vertices = _vertices(x, vertices, n)
    _check_features(x, vertices)
    e = vertices.to(x.dtype)
    return torch.einsum("nd...,kd->nk...", x, e) * mu


def mdome_logit_affine(x: torch.Tensor, mu=1.0, sigma=5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``LOGIT1 = slope * LOGIT2 + intercept`` per sample (dome.txt Eq. 9, 14 and 15).

    With unit reference directions ``||e_i|| = 1``,
    ``-||(x - mu e_i)/sigma||^2 = (2 x.(mu e_i) - ||x||^2 - mu^2) / sigma^2``, so
    ``slope = 2 / sigma^2`` (the same for every sample and class) and
    ``intercept = -(||x||^2 + mu^2) / sigma^2`` (one value per sample, the same
    for every class). Any loss that sees the logits only through their
    differences up to a positive factor (the margin of CW and Square, DLR,
    the decision boundaries FAB projects on) sees the same view on both.

    Args:
        x: ``(N, dim, ...)``, the input of MDOME; ``mu``, ``sigma``: floats or 0-d tensors, ``sigma > 0``.

    Returns:
        ``(slope, intercept)``: a 0-d tensor and an ``(N, 1, ...)`` tensor.

    Example:
        >>> x = torch.randn(4, 2)
        >>> slope, b = mdome_logit_affine(x, 1.0, 2.0)
        >>> torch.allclose(mdome_logit1(x, 1.0, 2.0, n=3), slope * mdome_logit2(x, 1.0, n=3) + b, atol=1e-5)
        True
    """
    _check_sigma(sigma)
    if x.dim() < 2:
        raise ValueError(f"MDOME expected input of shape (N, dim, ...), got shape {tuple(x.shape)}")
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    mu = torch.as_tensor(mu, dtype=x.dtype, device=x.device)
    return 2 / sigma**2, -((x * x).sum(dim=1, keepdim=True) + mu**2) / sigma**2


@torch.no_grad()
def mdome_rescale_(linear: nn.Module, act: "MDOME", c: float) -> None:
    """Multiply ``linear.weight``, ``linear.bias``, ``act.mu`` and ``act.sigma`` by ``c > 0``, in place.

    dome.txt Eq. 9: ``kappa_l(x) = -||(x - mu e_l)/sigma||^2`` is unchanged
    when ``x``, ``mu`` and ``sigma`` are all multiplied by ``c``, and ``x =
    W h + b`` is multiplied by ``c`` when ``W`` and ``b`` are. So the network's
    output in the views ``"normalized"``, ``"mdome"`` and ``"logit1"`` is
    unchanged (``"logit2"`` is multiplied by ``c^2``): its parameters move
    along a one-parameter orbit of equivalent networks.

    Args:
        linear: the layer whose output ``act`` takes (``nn.Linear``, or any
            module whose output is linear in its ``weight`` and ``bias``, e.g. a 1x1 convolution).
        act: an :class:`MDOME`.
        c: the factor, ``> 0``.
    """
    if not isinstance(act, MDOME):
        raise TypeError(f"act must be an MDOME layer, got {type(act).__name__}")
    if getattr(linear, "weight", None) is None:
        raise TypeError(f"linear must have a weight (the layer whose output MDOME takes), got {type(linear).__name__}")
    if not float(c) > 0:
        raise ValueError(f"c must be > 0 (c <= 0 moves the reference points or makes sigma non-positive), got {c!r}")
    for t in (linear.weight, getattr(linear, "bias", None), act.mu, act.sigma):
        if t is not None:
            t.mul_(float(c))


def _vertices(x: torch.Tensor, vertices, n) -> torch.Tensor:
    if vertices is not None:
        return vertices
    if n is None:
        raise ValueError("give the reference points `vertices` or the number of classes `n`")
    dim = x.shape[1] if x.dim() >= 2 else n - 1
    return torch.as_tensor(simplex_vertices(n, max(dim, n - 1)), dtype=x.dtype, device=x.device)


class MDOME(nn.Module):
    """Multi-class DOME, dome.txt Eq. 8 and 9, as an output activation replacing softmax.

    Each class ``l`` has a reference point ``mu * e_l``; the ``e_l`` are the
    vertices of a regular simplex at unit distance from the origin (see
    :func:`simplex_vertices` for the construction), so every pair of
    reference points is equally far apart and ``mu`` scales them all.
    ``output`` selects what :meth:`forward` returns:

    - ``"normalized"`` (default): Eq. 12 and 13, non-negative and summing to
      1 (what the paper uses in practice, e.g. with an MSE loss, Section 7);
    - ``"mdome"``: Eq. 8 (sums to 1, may be negative);
    - ``"logit1"``: Eq. 14, ``-||(x - mu e_i)/sigma||^2``;
    - ``"logit2"``: Eq. 15, ``x . (mu e_i)``.

    The two logit views exist for attacks that expect logits (Section 7);
    switch with ``module.output = "logit1"``.

    Args:
        n: number of classes (>= 2).
        dim: size of dim 1 of the input, the space of the reference points;
            default ``n - 1``. With ``dim > n - 1`` the simplex is padded with
            zero coordinates.
        mu: initial reference distance (default 1, Section 7).
        sigma: initial width, > 0 (default 5, Section 7).
        learnable: ``mu`` and ``sigma`` are parameters (default) or buffers.
        output: see above.

    Shape: ``(N, dim, ...) -> (N, n, ...)``.

    Example:
        >>> act = MDOME(n=10, dim=10)
        >>> act(torch.randn(4, 10)).shape
        torch.Size([4, 10])
    """

    OUTPUTS = ("normalized", "mdome", "logit1", "logit2")

    def __init__(self, n: int, dim: int | None = None, mu: float = 1.0, sigma: float = 5.0,
                 learnable: bool = True, output: str = "normalized"):
        super().__init__()
        if n < 2:
            raise ValueError(f"MDOME needs n >= 2 classes, got n={n}")
        _check_sigma(sigma)
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}")
        self.n, self.dim, self.output = n, n - 1 if dim is None else dim, output
        self.register_buffer("vertices", torch.as_tensor(simplex_vertices(n, self.dim)), persistent=False)  # float64; cast to the input dtype on use
        _parameter(self, "mu", mu, learnable)
        _parameter(self, "sigma", sigma, learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {self.output!r}")
        if self.output == "logit2":
            return mdome_logit2(x, self.mu, self.vertices)
        if self.output == "logit1":
            return mdome_logit1(x, self.mu, self.sigma, self.vertices)
        d = mdome(x, self.mu, self.sigma, self.vertices)
        if self.output == "normalized":
            d = d - d.amin(dim=1, keepdim=True).clamp(max=0)
            d = d / d.sum(dim=1, keepdim=True)
        return d

    def extra_repr(self) -> str:
        return f"n={self.n}, dim={self.dim}, mu={self.mu.item():.4g}, sigma={self.sigma.item():.4g}, output={self.output!r}"


def _mdome(channels: int | None = None, n: int | None = None, dim: int | None = None, **kwargs) -> MDOME:
    if n is None:
        raise ValueError("MDOME needs the number of classes n, e.g. create('mdome', n=10) or factory('mdome', n=10)")
    if dim is None:
        dim = n - 1 if channels is None else max(channels, n - 1)
    return MDOME(n=n, dim=dim, **kwargs)


register("dome", DOME)
register("dome1", DOME1)
register("dome2", DOME2)
register("pdome", PDOME)
register("mdome", MDOME, _mdome, per_channel=True)
