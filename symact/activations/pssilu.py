"""PSSiLU, the Parametric Shifted Sigmoidal Linear Unit (Dai, Mahloujifar and Mittal, "Parameterizing activation
functions for adversarial robustness", IEEE SPW 2022; arXiv:2110.05626, 2021).

    f(x) = x (sigmoid(|alpha| x) - beta) / (1 - beta),        0 <= beta < 1,

with a learnable ``alpha`` and ``beta`` either fixed (0.1, the paper's default) or learned as ``|beta|``. It is
Swish (``beta = 0``) shifted so that its negative side has the slope ``-beta/(1 - beta)`` far from 0, and
rescaled so that its positive side tends to the identity. The form learned by the network on RobustBench's
CIFAR-10 L-infinity leaderboard (entry ``Dai2021Parameterizing``: WRN-28-10, 87.02 % clean, 61.55 % AutoAttack)
is RobustBench's ``robustbench/model_zoo/architectures/paf_wide_resnet.py``: one ``PSSiLU`` instance, with
``alpha = nn.Parameter([1.0])`` and ``beta = nn.Parameter([1e-8])`` entering as ``|alpha|`` and ``|beta|``,
passed to every position of the network (``pssilu_wrn_28_10``), so the whole network shares one
``(alpha, beta)`` pair (the paper's abstract: "only 2 additional parameters into the network"; it reports
61.96 % AutoAttack accuracy for that network, RobustBench lists 61.55 %). The formula here is the one that
code computes.

Sharing (``sharing``):

- ``"channel"`` (the registry's default, the book's convention for learnable activations): one ``alpha`` (and
  a learned ``beta``) per channel, dim 1;
- ``"layer"``: one pair per activation layer;
- ``"network"``: one pair for the whole network, RobustBench's form. Every position gets its own
  :class:`PSSiLU` module (so that ``swap_activations`` and module hooks see each position), and every one of
  them holds the *same* ``nn.Parameter`` objects, those of the first: ``model.parameters()`` yields the pair
  once, every position adds to the same ``.grad``, and ``.to()``, ``deepcopy`` and ``load_state_dict`` keep
  the sharing. :func:`pssilu_factory` with ``sharing="network"`` returns such a factory, one fresh pair per
  call (so one call per network); ``create("pssilu", shared=module)`` gives one more module sharing
  ``module``'s parameters.

Derivatives, with ``a = |alpha|``, ``b = beta`` (or ``|beta|``), ``s = sigmoid(a x)``, ``c = 1/(1 - b)``:
``df/dx = c (s - b + a x s (1 - s))``, ``df/da = c x^2 s (1 - s)``, ``df/db = c^2 x (s - 1)``.

Limits: with ``a > 0``, ``f(x) - x -> 0`` as ``x -> +inf`` (``f(+inf) = +inf``) and ``f(x) / x -> -b/(1 - b)``
as ``x -> -inf``, so ``f(-inf) = +inf`` when ``b > 0`` and ``0`` when ``b = 0`` (Swish); with ``a = 0``, ``f``
is the line ``x (1/2 - b)/(1 - b)``. At ``x = +-inf`` the module returns these limits, and the input gradient
there is the limit of the slope (``1`` at ``+inf``, ``-b/(1 - b)`` at ``-inf``); NaN gives NaN.

Implementation: the fused kernel of :mod:`._fused` (keeps only the input for backward), run on the CPU by the
native kernel ``PSSiLU`` of ``_native.cpp`` (one pass forward, one backward).
"""
from __future__ import annotations

import torch
from torch import nn

from symact.activations import ActivationFactory, _fused, register
from symact.activations._fused import dot_to

__all__ = ["PSSiLU", "ROBUSTBENCH_INIT", "SHARINGS", "pssilu", "pssilu_factory"]

SHARINGS = ("channel", "layer", "network")
#: RobustBench's Dai2021Parameterizing initial values: alpha = 1, |beta| = 1e-8 (learned)
ROBUSTBENCH_INIT = {"alpha": 1.0, "beta": 1e-8, "learn_beta": True}


class _PSSiLUKernel:
    """``y = x (s - b) c`` with ``s = sigmoid(a x)``, ``c = 1/(1 - b)``; parameters ``a >= 0`` and ``0 <= b < 1``."""

    @staticmethod
    def native(params):
        # constants: whether a and b need their gradients (the native kernel skips the sums nobody reads)
        return "pssilu", tuple(float(p.requires_grad) for p in params)

    @staticmethod
    def triton(params):
        return "pssilu", ()

    @staticmethod
    def prepare(params):
        a, b = params
        return a, b, 1.0 / (1.0 - b)

    @staticmethod
    def forward(x, state, new, out):
        a, b, c = state
        y = torch.mul(x, a, out=new() if out is None else out).sigmoid_().sub_(b).mul_(x)
        return y.mul_(c)

    @staticmethod
    def _times(x, t):
        """``x t``, and 0 where ``t == 0`` (also at ``x = +-inf``, where the product would be NaN)."""
        return torch.where(t == 0, torch.zeros_like(t), x * t)

    @staticmethod
    def backward(x, g, state, needs, new, out):
        a, b, c = state
        s = torch.mul(x, a, out=new()).sigmoid_()
        xt = _PSSiLUKernel._times(x, torch.addcmul(s, s, s, value=-1.0, out=new()))  # x s (1 - s)
        da = dot_to(_PSSiLUKernel._times(x, xt).mul_(c), g, a) if needs[0] else None
        db = dot_to(_PSSiLUKernel._times(x, s - 1.0).mul_(c * c), g, b) if needs[1] else None
        dx = torch.sub(s, b, out=new() if out is None else out).addcmul_(xt, a).mul_(c).mul_(g)
        return dx, [da, db]

    @staticmethod
    def limits(x, y, a, b):
        c = 1.0 / (1.0 - b)
        slope = torch.where(a > 0, torch.where(x > 0, (1.0 - b) * c, -b * c), (0.5 - b) * c)
        lim = torch.where(slope == 0, torch.zeros_like(x), x * slope)
        return torch.where(torch.isinf(x), lim, y)


def _check_beta(beta: float) -> None:
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"PSSiLU needs 0 <= beta < 1 (it divides by 1 - beta), got beta={beta}")


def _view(p: torch.Tensor, x: torch.Tensor, per_channel: bool) -> torch.Tensor:
    if p.numel() == 1:
        return p.reshape(1, 1, 1)
    if not per_channel:
        raise ValueError(f"PSSiLU parameters of shape {tuple(p.shape)}: per-channel parameters need an (N, C, ...) "
                         "input")
    return p.reshape(1, -1, 1)


def pssilu(x: torch.Tensor, alpha, beta=0.1) -> torch.Tensor:
    """PSSiLU (Dai et al. 2021): ``x (sigmoid(|alpha| x) - beta) / (1 - beta)``.

    Args:
        x: any shape; ``(N, C, ...)`` when a parameter has ``C`` values (one per channel, dim 1).
        alpha: float or tensor, 0-d / one value, or ``(C,)``; enters as ``|alpha|``.
        beta: float in ``[0, 1)`` or tensor (0-d / one value, or ``(C,)``), used as it is (the module passes
            ``|beta|`` when it learns it).

    Example:
        >>> pssilu(torch.tensor([0.0, 1.0]), alpha=1.0, beta=0.0)  # Swish
        tensor([0.0000, 0.7311])
    """
    if not isinstance(beta, torch.Tensor):
        _check_beta(float(beta))
    a, b = (v if isinstance(v, torch.Tensor) else  # floats in the compute dtype (0.9 in float32 is not 0.9)
            torch.tensor(float(v), dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)
            for v in (alpha, beta))
    a = a.abs()
    per_channel = a.numel() > 1 or b.numel() > 1
    if per_channel and (x.dim() < 2 or any(p.numel() not in (1, x.shape[1]) for p in (a, b))):
        got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
        raise ValueError(f"PSSiLU expected {max(a.numel(), b.numel())} channels (dim 1 of the input), got {got} "
                         f"(input shape {tuple(x.shape)})")
    return _fused.apply(_PSSiLUKernel, x, [_view(a, x, per_channel), _view(b, x, per_channel)], per_channel=per_channel)


class PSSiLU(nn.Module):
    """PSSiLU (Dai, Mahloujifar and Mittal 2021), ``x (sigmoid(|alpha| x) - beta) / (1 - beta)``.

    Args:
        channels: one parameter set per channel (dim 1) when an int (``sharing="channel"``); ``None``: one
            set for the layer.
        alpha: initial ``alpha`` (default 1.0, the paper's and RobustBench's); learned, enters as ``|alpha|``.
        beta: initial ``beta``, in ``[0, 1)`` (``|beta|`` when learned); default 0.1 when fixed (the paper's
            default), 1e-8 when learned
            (RobustBench's initial value).
        learn_beta: ``beta`` is an ``nn.Parameter`` entering as ``|beta|`` (RobustBench's form) instead of a
            fixed buffer. As in RobustBench, training does not bound it: past ``|beta| = 1`` the formula is
            still a smooth function (``f(x) -> x`` at ``+inf`` and ``x |beta|/(|beta| - 1) -> -inf`` at
            ``-inf``), singular only at ``|beta| = 1`` exactly.
        shared: another :class:`PSSiLU` whose parameters (and ``beta`` buffer) this module uses as its own
            (the same ``nn.Parameter`` objects): per-network sharing, see the module docstring. The other
            arguments must then be left at their defaults.

    Parameters: ``alpha``, ``(channels,)`` or ``(1,)``; ``beta`` (parameter when learned, else a 0-d buffer).

    Shape: ``(N, C, ...)`` with ``C == channels``; any shape with one set for the layer.

    Example:
        >>> act = PSSiLU(channels=16)
        >>> act(torch.randn(8, 16, 4, 4)).shape
        torch.Size([8, 16, 4, 4])
        >>> net = PSSiLU(**ROBUSTBENCH_INIT); PSSiLU(shared=net).alpha is net.alpha
        True
    """

    def __init__(self, channels: int | None = None, alpha: float = 1.0, beta: float | None = None,
                 learn_beta: bool = False, shared: "PSSiLU | None" = None):
        super().__init__()
        if shared is not None:
            if not isinstance(shared, PSSiLU):
                raise TypeError(f"shared must be a PSSiLU module whose parameters to share, got "
                                f"{type(shared).__name__}")
            if (channels, alpha, beta, learn_beta) != (None, 1.0, None, False):
                raise ValueError("PSSiLU(shared=...) takes its parameters from the shared module: leave channels, "
                                 "alpha, beta and learn_beta at their defaults")
            self.channels, self.learn_beta = shared.channels, shared.learn_beta
            self.alpha = shared.alpha
            if shared.learn_beta:
                self.beta = shared.beta
            else:
                self.register_buffer("beta", shared.beta)
            return
        if channels is not None and (int(channels) != channels or channels < 1):
            raise ValueError(f"channels must be a positive integer or None (one set per layer), got {channels}")
        beta = (1e-8 if learn_beta else 0.1) if beta is None else float(beta)
        _check_beta(abs(beta) if learn_beta else beta)  # a learned beta enters as |beta|
        self.channels, self.learn_beta = (None if channels is None else int(channels)), bool(learn_beta)
        n = 1 if channels is None else int(channels)
        self.alpha = nn.Parameter(torch.full((n,), float(alpha)))
        if learn_beta:
            self.beta = nn.Parameter(torch.full((n,), beta))
        else:
            self.register_buffer("beta", torch.tensor(beta))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None and (x.dim() < 2 or x.shape[1] != self.channels):
            got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
            raise ValueError(f"PSSiLU expected {self.channels} channels (dim 1 of the input), got {got} "
                             f"(input shape {tuple(x.shape)})")
        b = self.beta.abs() if self.learn_beta else self.beta
        per_channel = self.channels is not None
        return _fused.apply(_PSSiLUKernel, x, [_view(self.alpha.abs(), x, per_channel), _view(b, x, per_channel)],
                            per_channel=per_channel)

    def extra_repr(self) -> str:
        beta = "learned" if self.learn_beta else f"{self.beta.item():.4g}"
        return f"channels={self.channels}, beta={beta}"


def pssilu_factory(sharing: str = "channel", **kwargs) -> ActivationFactory:
    """A factory ``channels -> PSSiLU`` for models, with parameters shared per ``"channel"``, ``"layer"`` or
    ``"network"`` (one ``(alpha, beta)`` pair for every module the factory makes; RobustBench's form is
    ``pssilu_factory("network", **ROBUSTBENCH_INIT)``). ``kwargs``: :class:`PSSiLU`'s ``alpha``, ``beta``,
    ``learn_beta``.

    Example:
        >>> make = pssilu_factory("network", learn_beta=True)
        >>> net = nn.Sequential(nn.Linear(4, 8), make(8), nn.Linear(8, 3), make(3))
        >>> sum(p.numel() for p in net.parameters()) - (4 * 8 + 8 + 8 * 3 + 3)
        2
    """
    if sharing not in SHARINGS:
        raise ValueError(f"PSSiLU sharing must be one of {', '.join(SHARINGS)}; got {sharing!r}")
    if "channels" in kwargs or "shared" in kwargs:
        raise TypeError("pssilu_factory sets channels and shared itself")
    if sharing == "network":
        root = PSSiLU(**kwargs)
        first = [True]

        def make(channels: int) -> PSSiLU:
            if first[0]:  # the first position holds the pair, the others share it
                first[0] = False
                return root
            return PSSiLU(shared=root)
    elif sharing == "layer":
        PSSiLU(**kwargs)  # fail now, not deep inside a model

        def make(channels: int) -> PSSiLU:
            return PSSiLU(**kwargs)
    else:
        PSSiLU(channels=1, **kwargs)

        def make(channels: int) -> PSSiLU:
            return PSSiLU(channels=channels, **kwargs)

    make.__name__ = make.__qualname__ = f"pssilu_factory({sharing!r})"
    return make


def _build(channels: int | None = None, sharing: str = "channel", **kwargs) -> PSSiLU:
    if sharing not in SHARINGS:
        raise ValueError(f"PSSiLU sharing must be one of {', '.join(SHARINGS)}; got {sharing!r}")
    if "shared" in kwargs:  # one more module on another's parameters (per-network sharing)
        return PSSiLU(**kwargs)
    if sharing == "network":
        raise ValueError("PSSiLU shared per network needs one parameter pair for every position: build the model "
                         "with symact.activations.pssilu.pssilu_factory('network'), or pass shared=<a PSSiLU> to "
                         "create()")
    return PSSiLU(channels=channels if sharing == "channel" else None, **kwargs)


register("pssilu", PSSiLU, _build, per_channel=True)
