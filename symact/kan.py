"""Kolmogorov-Arnold layers: a learnable function on every edge of a linear layer.

A KAN layer (Liu et al. 2024, "KAN: Kolmogorov-Arnold networks", arXiv:2404.19756, Eq. 2.10 and Section 2.2)
maps ``x`` in ``R^in`` to ``R^out`` with one univariate function per edge ``(i, j)``,

    y_j = sum_i phi_ij(x_i),

and the two published forms differ in the basis of ``phi``:

- :class:`KANLinear`, KAN's own form, as ``pykan`` 0.2.8's ``KANLayer`` (``kan/KANLayer.py``, ``kan/spline.py``):
  ``phi_ij(x) = scale_base_ij b(x) + scale_sp_ij sum_k coef_ijk B_k(x)``, with ``b`` the SiLU base branch and
  ``B_k`` the ``G + K`` B-splines of order ``K`` (cubic, ``K = 3``) on the uniform grid of ``G`` intervals on
  ``[lo, hi]``, extended by ``K`` knots on each side (``extend_grid``);
- :class:`FastKANLinear`, FastKAN's form (Li 2024, "Kolmogorov-Arnold networks are radial basis function
  networks", arXiv:2405.06721; code ``ZiyaoLi/fast-kan``, ``fastkan/fastkan.py``, ``FastKANLayer``):
  ``y = W_sp rbf(LayerNorm(x)) + W_base silu(x) + b`` with the Gaussian radial basis
  ``rbf(x)_ik = exp(-((x_i - g_k)/h)^2)`` on ``D`` grid points ``g_k`` evenly spaced on ``[grid_min, grid_max]``
  and ``h`` their spacing (FastKAN's ``denominator``), the LayerNorm optional (``use_layernorm``).

Both are written as one evaluation of the basis for every input, ``(..., in, n_basis)``, then one matrix
product with the flattened coefficients ``(out, in * n_basis)`` (plus the base branch's ``(out, in)`` product),
never one function call per edge; ``pykan``'s ``KANLayer`` materialises ``(batch, in, out)`` tensors instead.

Relation to the KAF (:mod:`symact.activations.kaf`): a FastKAN edge is a KAF, ``sum_k alpha_k exp(-gamma (x -
d_k)^2)`` with ``gamma = 1/h^2`` (``denominator = 1/sqrt(gamma)`` for any of the KAF's bandwidths; its rule of
thumb ``gamma = 1/(2 (2 Delta)^2)`` is ``denominator = 2 sqrt(2) Delta``). A KAF network applies one such function
per neuron (``out x D`` coefficients a layer, after a linear map of ``in x out`` weights); a KAN layer one per edge
(``in x out x D``). The tests check the identity edge by edge.

Why here and not in :mod:`symact.activations`: a KAN layer maps ``in`` features to ``out`` with weights, as a
``nn.Linear`` does; it replaces a linear layer together with its activation, so it is a layer, and
activations know nothing of layers (DESIGN.md).

Only the uniform grid is implemented (pykan's ``update_grid_from_samples``, which moves the knots to sample
quantiles, is not): the B-splines are then translates of one cardinal B-spline, evaluated in closed form.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

__all__ = ["FastKANLinear", "KANLinear", "bspline_basis", "kan_grid", "layer_parameters", "rbf_basis"]


def _check_grid(grid_size: int, spline_order: int, grid_range: Sequence[float]) -> tuple[float, float]:
    if int(grid_size) != grid_size or grid_size < 1:
        raise ValueError(f"a KAN grid needs grid_size >= 1 intervals, got {grid_size}")
    if int(spline_order) != spline_order or spline_order < 1:
        raise ValueError(f"a KAN spline needs spline_order >= 1 (3: cubic), got {spline_order}")
    try:
        lo, hi = (float(v) for v in grid_range)
    except (TypeError, ValueError):
        raise ValueError(f"grid_range must be two numbers (lo, hi), got {grid_range!r}") from None
    if not lo < hi:
        raise ValueError(f"grid_range must have lo < hi, got {grid_range!r}")
    return lo, hi


def kan_grid(grid_size: int = 5, spline_order: int = 3, grid_range: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    """The knots, float64: ``G + 1`` points evenly spaced on ``[lo, hi]`` extended by ``K`` on each side
    (``G + 2K + 1`` knots; pykan's ``extend_grid(linspace(lo, hi, G + 1), k_extend=K)``)."""
    lo, hi = _check_grid(grid_size, spline_order, grid_range)
    h = (hi - lo) / grid_size
    return lo + h * torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)


def _cardinal(r: torch.Tensor, k: int, power: int) -> torch.Tensor:
    """``sum_{i < (k+1)/2} (-1)^i C(k+1, i) ((k+1)/2 - r - i)_+^power`` for ``r = |.| >= 0`` (new tensors,
    written in place)."""
    half = (k + 1) / 2
    out = None
    for i in range(k // 2 + 1):
        term = torch.sub(half - i, r).clamp_(min=0)
        if power > 1:
            term.pow_(power)
        elif power == 0:
            term = (term > 0).to(r.dtype)
        if i:
            out.add_(term, alpha=(-1) ** i * math.comb(k + 1, i))
        else:
            out = term
    return out


class _BSplineBasis(torch.autograd.Function):
    """The basis in closed form; backward recomputes ``dB/dx`` from ``x`` (nothing else is kept)."""

    @staticmethod
    def forward(ctx, x, centres, h, k):
        ctx.save_for_backward(x, centres)
        ctx.h, ctx.k = h, k
        r = torch.sub(x.unsqueeze(-1), centres).mul_(1.0 / h).abs_()
        return _cardinal(r, k, k).mul_(1.0 / math.factorial(k))

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, centres = ctx.saved_tensors
        h, k = ctx.h, ctx.k
        z = torch.sub(x.unsqueeze(-1), centres).mul_(1.0 / h)
        # d beta_k(|z|)/dz = -sign(z) / (k-1)! sum_i (-1)^i C(k+1, i) ((k+1)/2 - |z| - i)_+^(k-1)
        d = _cardinal(z.abs(), k, k - 1).mul_(z.sign_()).mul_(g)
        return d.sum(-1).mul_(-1.0 / (h * math.factorial(k - 1))), None, None, None


def bspline_basis(x: torch.Tensor, grid_size: int = 5, spline_order: int = 3,
                  grid_range: Sequence[float] = (-1.0, 1.0)) -> torch.Tensor:
    """The ``G + K`` B-splines of order ``K`` on the extended uniform grid (:func:`kan_grid`) at ``x``:
    ``(...) -> (..., G + K)``.

    On a uniform grid of spacing ``h``, ``B_j(x) = beta_K((x - c_j)/h)`` with ``c_j`` the centre of the
    ``j``-th spline's support ``[t_j, t_{j+K+1}]`` and ``beta_K`` the centred cardinal B-spline, written with
    truncated powers (de Boor, "A practical guide to splines", Ch. IX) in its symmetric form,

        beta_K(r) = 1/K! sum_{i < (K+1)/2} (-1)^i C(K+1, i) ((K+1)/2 - |r| - i)_+^K,

    which is exactly 0 outside the support (``|r| >= (K+1)/2``), so that ``x`` outside the extended grid gives
    0, as pykan's Cox-de Boor recursion (``kan/spline.py``, ``B_batch``) does. For ``K = 3``:
    ``((2 - |r|)_+^3 - 4 (1 - |r|)_+^3) / 6``. Differentiable in ``x`` (``C^{K-1}``; first derivatives only:
    backward recomputes ``dB/dx`` from ``x`` in closed form and keeps nothing else).
    """
    lo, hi = _check_grid(grid_size, spline_order, grid_range)
    if not x.is_floating_point():
        raise TypeError(f"a B-spline basis needs a floating-point input, got {x.dtype}")
    k = int(spline_order)
    h = (hi - lo) / grid_size
    centres = lo + h * (torch.arange(grid_size + k, dtype=torch.float64, device=x.device) - k + (k + 1) / 2)
    return _BSplineBasis.apply(x, centres.to(x.dtype), h, k)


def rbf_basis(x: torch.Tensor, grid: torch.Tensor, denominator: float) -> torch.Tensor:
    """FastKAN's Gaussian radial basis ``exp(-((x - g_k)/h)^2)``: ``(...) -> (..., D)`` (``grid``: ``(D,)``)."""
    return torch.exp(-((x.unsqueeze(-1) - grid) / denominator) ** 2)


def _base(base_activation: Union[Callable, type, None]) -> Callable:
    if base_activation is None:
        return None
    if isinstance(base_activation, type):
        base_activation = base_activation()
    if not callable(base_activation):
        raise TypeError(f"base_activation must be a callable, an nn.Module class or None, got {base_activation!r}")
    return base_activation


def _check_input(x: torch.Tensor, in_features: int, layer: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{layer} needs a floating-point tensor input, got "
                        f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] != in_features:
        raise ValueError(f"{layer} expected {in_features} input features (last dimension), got input shape "
                         f"{tuple(x.shape)}")


class KANLinear(nn.Module):
    """A KAN layer in KAN's published form (Liu et al. 2024, Section 2.2; pykan 0.2.8's ``KANLayer``).

    ``y_j = sum_i [scale_base_ij b(x_i) + scale_sp_ij sum_k coef_ijk B_k(x_i)] (+ bias_j)``, with ``b`` the base
    activation (SiLU) and ``B_k`` the ``G + K`` B-splines of order ``K`` on ``G`` uniform intervals of
    ``grid_range`` extended by ``K`` knots a side (:func:`bspline_basis`). Computed as one basis evaluation
    ``(..., in, G + K)`` and one matrix product with ``scale_sp * coef`` flattened to ``(out, in (G + K))``, plus
    ``b(x) @ scale_base``.

    Args:
        in_features, out_features: widths.
        grid_size: ``G`` (pykan's ``num``, default 5).
        spline_order: ``K`` (pykan's ``k``, default 3: cubic).
        grid_range: ``(lo, hi)`` (default ``(-1, 1)``, pykan's).
        base_activation: ``b`` (default ``nn.SiLU``; a class, a callable, or ``None`` for no base branch).
        noise_scale, scale_base_mu, scale_base_sigma, scale_sp: pykan's initialisation (defaults 0.5, 0, 1,
            1): ``coef`` the least-squares (minimum-norm) B-spline fit of uniform noise
            ``(U(0,1) - 1/2) noise_scale / G`` at the ``G + 1`` grid points, ``scale_base =
            (scale_base_mu + scale_base_sigma U(-1, 1)) / sqrt(in)``, ``scale_sp = scale_sp / sqrt(in)``.
        bias: add a learnable bias (default ``False``, as ``KANLayer``; pykan's ``MultKAN`` adds one per node).

    Parameters (pykan's names and shapes): ``coef`` ``(in, out, G + K)``, ``scale_base`` ``(in, out)``,
    ``scale_sp`` ``(in, out)``, and ``bias`` ``(out,)``.

    Shape: ``(..., in) -> (..., out)``.

    Example:
        >>> layer = KANLinear(784, 64, grid_size=5)
        >>> layer(torch.rand(8, 784)).shape
        torch.Size([8, 64])
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: Union[Callable, type, None] = nn.SiLU,
                 noise_scale: float = 0.5, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0,
                 scale_sp: float = 1.0, bias: bool = False):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"KANLinear needs {name} >= 1, got {v}")
        self.grid_range = _check_grid(grid_size, spline_order, grid_range)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.grid_size, self.spline_order = int(grid_size), int(spline_order)
        self.base_activation = _base(base_activation)
        self.init = dict(noise_scale=noise_scale, scale_base_mu=scale_base_mu, scale_base_sigma=scale_base_sigma,
                         scale_sp=scale_sp)
        n = self.grid_size + self.spline_order
        self.coef = nn.Parameter(torch.empty(self.in_features, self.out_features, n))
        self.scale_base = nn.Parameter(torch.empty(self.in_features, self.out_features))
        self.scale_sp = nn.Parameter(torch.empty(self.in_features, self.out_features))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None
        self.reset_parameters()

    @property
    def n_basis(self) -> int:
        return self.grid_size + self.spline_order

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """The B-splines at ``x``: ``(..., in) -> (..., in, G + K)``."""
        return bspline_basis(x, self.grid_size, self.spline_order, self.grid_range)

    def reset_parameters(self) -> None:
        G, K, n_in = self.grid_size, self.spline_order, self.in_features
        with torch.no_grad():
            points = torch.linspace(*self.grid_range, G + 1, dtype=torch.float64)
            fit = torch.linalg.pinv(self.basis(points))  # (G + K, G + 1): the minimum-norm least-squares fit
            noise = torch.rand(G + 1, n_in, self.out_features, dtype=torch.float64) - 0.5
            noise *= self.init["noise_scale"] / G
            self.coef.copy_(torch.einsum("kp,pio->iok", fit, noise))
            u = torch.rand(n_in, self.out_features) * 2 - 1
            self.scale_base.copy_((self.init["scale_base_mu"] + self.init["scale_base_sigma"] * u) / math.sqrt(n_in))
            self.scale_sp.fill_(self.init["scale_sp"] / math.sqrt(n_in))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_features, "KANLinear")
        weight = (self.scale_sp.unsqueeze(-1) * self.coef).transpose(0, 1).reshape(self.out_features, -1)
        y = F.linear(self.basis(x).flatten(-2), weight.to(x.dtype))
        if self.base_activation is not None:
            y = y + F.linear(self.base_activation(x), self.scale_base.t().to(x.dtype))
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid_size={self.grid_size}, "
                f"spline_order={self.spline_order}, grid_range={self.grid_range}, bias={self.bias is not None}")


class FastKANLinear(nn.Module):
    """A KAN layer in FastKAN's form (Li 2024; ``ZiyaoLi/fast-kan``, ``fastkan/fastkan.py``, ``FastKANLayer``).

    ``y = W_sp rbf(LayerNorm(x)) + W_base b(x) + bias``, ``rbf(x)_ik = exp(-((x_i - g_k)/h)^2)`` with ``D``
    points ``g_k`` evenly spaced on ``[grid_min, grid_max]`` and ``h`` (``denominator``) their spacing by
    default. Every edge ``(i, j)`` is the function ``sum_k W_sp[j, i D + k] exp(-((x_i - g_k)/h)^2)``: a KAF
    on ``x_i`` with dictionary ``g``, coefficients ``W_sp[j, i D : (i + 1) D]`` and ``gamma = 1/h^2``.

    Args:
        in_features, out_features: widths.
        grid_min, grid_max, num_grids: the grid (defaults -2, 2, 8, FastKAN's).
        denominator: ``h`` (default: the grid spacing, FastKAN's default; ``2 sqrt(2) Delta`` gives KAF's
            bandwidth).
        use_layernorm: LayerNorm over the ``in`` features before the basis (default ``True``, FastKAN's; only
            the spline branch sees it).
        use_base_update: the base branch ``W_base b(x) + bias`` (default ``True``, FastKAN's).
        base_activation: ``b`` (default SiLU).
        spline_weight_init_scale: ``W_sp ~ truncated N(0, s^2)`` (default 0.1, FastKAN's); ``W_base`` and
            ``bias`` as ``nn.Linear``.

    Parameters: ``spline_weight`` ``(out, in D)``, ``base_weight`` ``(out, in)``, ``base_bias`` ``(out,)``, and
    the LayerNorm's.

    Shape: ``(..., in) -> (..., out)``.

    Example:
        >>> FastKANLinear(784, 64)(torch.rand(8, 784)).shape
        torch.Size([8, 64])
    """

    def __init__(self, in_features: int, out_features: int, grid_min: float = -2.0, grid_max: float = 2.0,
                 num_grids: int = 8, denominator: float | None = None, use_layernorm: bool = True,
                 use_base_update: bool = True, base_activation: Union[Callable, type, None] = F.silu,
                 spline_weight_init_scale: float = 0.1):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"FastKANLinear needs {name} >= 1, got {v}")
        if int(num_grids) != num_grids or num_grids < 2:
            raise ValueError(f"FastKANLinear needs num_grids >= 2 grid points, got {num_grids}")
        if not grid_min < grid_max:
            raise ValueError(f"FastKANLinear needs grid_min < grid_max, got {grid_min}, {grid_max}")
        if use_layernorm and in_features < 2:
            raise ValueError("a LayerNorm over one input feature makes it 0: use use_layernorm=False (as FastKAN says)")
        self.in_features, self.out_features, self.num_grids = int(in_features), int(out_features), int(num_grids)
        self.denominator = float(denominator) if denominator is not None else (grid_max - grid_min) / (num_grids - 1)
        if not self.denominator > 0:
            raise ValueError(f"FastKANLinear needs denominator > 0, got {denominator}")
        self.grid_min, self.grid_max = float(grid_min), float(grid_max)
        self.layernorm = nn.LayerNorm(self.in_features) if use_layernorm else None
        self.spline_weight = nn.Parameter(torch.empty(self.out_features, self.in_features * self.num_grids))
        self.spline_weight_init_scale = float(spline_weight_init_scale)
        self.base_activation = _base(base_activation) if use_base_update else None
        if use_base_update:
            self.base_weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
            self.base_bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.base_weight = self.base_bias = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.spline_weight, mean=0.0, std=self.spline_weight_init_scale)
        if self.base_weight is not None:  # nn.Linear's initialisation
            nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.base_bias, -bound, bound)
        if self.layernorm is not None:
            self.layernorm.reset_parameters()

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """The radial basis at (the LayerNorm of) ``x``: ``(..., in) -> (..., in, D)``."""
        z = self.layernorm(x) if self.layernorm is not None else x
        return rbf_basis(z, self.grid(z.dtype, z.device), self.denominator)

    def grid(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """The ``D`` grid points, computed in ``dtype`` (not a stored buffer, so that ``.double()`` gives the
        float64 points, not float32 ones widened)."""
        return torch.linspace(self.grid_min, self.grid_max, self.num_grids, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_features, "FastKANLinear")
        y = F.linear(self.basis(x).flatten(-2), self.spline_weight.to(x.dtype))
        if self.base_activation is not None:
            y = y + F.linear(self.base_activation(x), self.base_weight.to(x.dtype), self.base_bias.to(x.dtype))
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid=({self.grid_min}, "
                f"{self.grid_max}, {self.num_grids}), denominator={self.denominator:.4g}, "
                f"layernorm={self.layernorm is not None}, base={self.base_activation is not None}")


def layer_parameters(in_features: int, out_features: int, D: int = 20, grid_size: int = 5,
                     spline_order: int = 3) -> dict:
    """Trainable parameters of one layer ``in -> out`` in the three forms, counted from the modules built:

    - ``"linear+KAF"``: ``nn.Linear`` and a per-channel KAF with ``D`` dictionary points, ``in out + out + out D``
      (a function per node);
    - ``"KAN"``: :class:`KANLinear` with ``G = grid_size`` and order ``K = spline_order``, ``in out (G + K + 2)``
      (a function per edge, with its base and spline scales);
    - ``"FastKAN"``: :class:`FastKANLinear` with ``D`` Gaussians, no LayerNorm, ``in out (D + 1) + out``.

    The ratio of a KAN layer to a KAF layer grows as ``in (G + K + 2) / (in + 1 + D)``: about ``G + K + 2`` for
    wide layers (the KAF chapter's section on KANs)."""
    from symact.activations import create

    for name, v in (("in_features", in_features), ("out_features", out_features), ("D", D)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"layer_parameters needs an integer {name} >= 1, got {v!r}")
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    kaf = nn.Sequential(nn.Linear(in_features, out_features), create("kaf", channels=out_features, D=D))
    return {"linear+KAF": count(kaf),
            "KAN": count(KANLinear(in_features, out_features, grid_size=grid_size, spline_order=spline_order)),
            "FastKAN": count(FastKANLinear(in_features, out_features, num_grids=D, use_layernorm=False))}
