"""Adaptive piecewise linear units: APL and Symmetric-APL (``symmetric-apl.txt``).

- :func:`apl` / :class:`APL`: Agostinelli et al. (2014), as written in
  symmetric-apl.txt Eq. 1: ``h(x) = max(0, x) + sum_s a_s max(0, -x + b_s)``.
- :func:`sapl` / :class:`SAPL`: Symmetric-APL, Eq. 2:
  ``h(x) = sum_s a+_s max(0, x - b+_s) + sum_s a-_s max(0, -x - b-_s)``
  with ``b+_s, b-_s >= 0``; and its S-APL-positive and S-APL-negative
  variants of Section 5 (``a-`` replaced by ``+|a-|`` or ``-|a-|``).

Both run fused (:mod:`._fused`), keep only their input for backward, and take
their parameters either shared by the whole layer (``channels=None``) or one
set per channel (dim 1). Hinges are fixed (buffers) or learnable.

Hinge placements (fixed by default, in units of the input's standard
deviation, since the paper puts batch normalisation before every S-APL):

- S-APL: ``S = 4`` hinges a side at ``0, 1, 2, 2.5`` (Section 4: "hinges at
  x = -2.5, -2, -1, 0, +1, +2, +2.5 (0 considered as two hinges)"). For other
  ``S`` the default is the first ``S`` of ``0, 1, 2, 2.5, 3`` (Appendix 8.1
  adds ``3``; its list "on +-sigma, +-2 sigma, +-2.5 sigma, +-3 sigma, and ."
  is cut off in the source). ``hinges="appendix"`` gives the four legible
  Appendix 8.1 positions ``1, 2, 2.5, 3``. Any other placement: pass the
  ``S`` non-negative positions.
- APL: ``S = 5`` hinges at ``-2, -1, 0, 1, 2`` (Appendix 8.2, "APL (S = 5,
  with fixed hinges on 0, +-1, and +-2)"); other ``S``: ``S`` points evenly
  spaced on [-2, 2].

Initialisation mimics ReLU: S-APL ``a+_1 = 1`` (the slope at the first hinge,
``b+_1 = 0`` by default) and every other slope 0; APL all ``a_s = 0``.

Learnable S-APL hinges satisfy ``b >= 0`` by reflection: the stored
parameter ``b`` is used as ``|b|``, with the derivative of ``|b|`` at 0 taken
as +1 so that a hinge at 0 can still move. The variants' ``|a-|`` is
computed the same way (so ``a- = 0`` at initialisation still trains).

Limits at +-inf: beyond its last hinge each side is linear with slope
``A = sum_s a_s`` (``A+`` for ``x -> +inf``, ``A-`` for S-APL's left side,
and APL's ``sum_s a_s`` for ``x -> -inf``); the limit is ``+inf`` or
``-inf`` by the sign of the slope, and the constant ``-sum_s a_s b_s`` (APL:
``+sum_s a_s b_s``) when the slope is exactly 0. APL's ``x -> +inf`` limit
is ``+inf``.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
from torch import nn

from symact.activations import _fused, register
from symact.activations._fused import dot_to

__all__ = ["APL", "SAPL", "apl", "sapl"]

_SAPL_PLACEMENT = (0.0, 1.0, 2.0, 2.5, 3.0)
_SAPL_APPENDIX = (1.0, 2.0, 2.5, 3.0)
VARIANTS = ("plain", "positive", "negative")


class _HingeKernel:
    """``y = sum_s a+_s ReLU(x - b+_s) + sum_s a-_s ReLU(-x - b-_s)``.

    Parameters ``a_pos, b_pos, a_neg, b_neg`` have shape ``(S, 1, C, 1)``
    (or ``(S, 1, 1, 1)`` when shared). With ``H`` the unit step:

        dy/dx     = sum_s a+_s H(x - b+_s) - sum_s a-_s H(-x - b-_s)
        dy/da+_s  = ReLU(x - b+_s)              dy/db+_s = -a+_s H(x - b+_s)
        dy/da-_s  = ReLU(-x - b-_s)             dy/db-_s = -a-_s H(-x - b-_s)
    """

    @staticmethod
    def native(params):
        learnable_hinges = params[1].requires_grad or params[3].requires_grad
        return "hinge", (params[0].shape[0], params[2].shape[0], float(learnable_hinges))

    @staticmethod
    def _ramps(x, params, new):
        """``(a, b, s, sign, ReLU(sign x - b_s))`` for every hinge ``s``; the ramp lives in one reused scratch tensor."""
        a_pos, b_pos, a_neg, b_neg = params
        r = new()
        for a, b, sign in ((a_pos, b_pos, 1.0), (a_neg, b_neg, -1.0)):
            for s in range(a.shape[0]):
                ramp = torch.sub(x, b[s], out=r) if sign > 0 else torch.sub(-b[s], x, out=r)
                yield a, b, s, sign, ramp.clamp_min_(0.0)

    @staticmethod
    def forward(x, params, new, out):
        y = (new() if out is None else out).zero_()
        for a, _, s, _, ramp in _HingeKernel._ramps(x, params, new):
            y.addcmul_(ramp, a[s])
        return y

    @staticmethod
    def backward(x, g, params, needs, new, out):
        slope = (new() if out is None else out).zero_()
        tmp = new() if any(needs) else None
        sides = {1.0: (0, [], []), -1.0: (2, [], [])}
        for a, _, s, sign, ramp in _HingeKernel._ramps(x, params, new):
            first, da, db = sides[sign]
            if needs[first]:
                da.append(dot_to(g, ramp, a[s], tmp))
            step = ramp.sign_()  # H(sign x - b_s)
            slope.addcmul_(step, a[s], value=sign)
            if needs[first + 1]:
                db.append(dot_to(g, step, a[s], tmp) * -a[s])
        grads = []
        for first, da, db in sides.values():
            grads += [torch.stack(da) if needs[first] else None, torch.stack(db) if needs[first + 1] else None]
        return slope.mul_(g), grads

    @staticmethod
    def limits(x, y, a_pos, b_pos, a_neg, b_neg):
        for a, b, inf in ((a_pos, b_pos, float("inf")), (a_neg, b_neg, float("-inf"))):
            slope, const = a.sum(0), -(a * b).sum(0)
            lim = torch.where(slope > 0, float("inf"), torch.where(slope < 0, float("-inf"), const))
            y = torch.where(x == inf, lim.to(y.dtype), y)
        return y


def _kernel_shape(t: torch.Tensor) -> torch.Tensor:
    """``(S,)`` -> ``(S, 1, 1, 1)``; ``(C, S)`` -> ``(S, 1, C, 1)``."""
    if t.dim() == 1:
        return t.reshape(-1, 1, 1, 1)
    return t.t().reshape(t.shape[1], 1, t.shape[0], 1)


def _reflect(t: torch.Tensor) -> torch.Tensor:
    """``|t|`` with derivative +1 at 0 (so that parameters initialised at 0 still move)."""
    return torch.where(t >= 0, t, -t)


def _per_channel(x: torch.Tensor, params) -> bool:
    return any(p.dim() == 2 for p in params)


def sapl(x: torch.Tensor, a_pos: torch.Tensor, b_pos: torch.Tensor, a_neg: torch.Tensor, b_neg: torch.Tensor) -> torch.Tensor:
    """Symmetric-APL, symmetric-apl.txt Eq. 2.

    ``h(x) = sum_s a+_s max(0, x - b+_s) + sum_s a-_s max(0, -x - b-_s)``.

    Args:
        x: ``(N, C, ...)`` (any shape when the parameters are shared).
        a_pos, b_pos, a_neg, b_neg: ``(S,)`` shared, or ``(C, S)`` one set
            per channel (dim 1 of ``x``). Hinges ``b`` are used as given
            (the paper requires ``b >= 0``; :class:`SAPL` enforces it).

    Example:
        >>> a = torch.tensor([1.0, 0.0]); b = torch.tensor([0.0, 1.0])
        >>> sapl(torch.tensor([-1.0, 2.0]), a, b, a, b)  # |x| for these slopes
        tensor([1., 2.])
    """
    params = [_kernel_shape(p) for p in (a_pos, b_pos, a_neg, b_neg)]
    return _fused.apply(_HingeKernel, x, params, per_channel=_per_channel(x, (a_pos, b_pos, a_neg, b_neg)))


def apl(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """APL (Agostinelli et al. 2014), symmetric-apl.txt Eq. 1.

    ``h(x) = max(0, x) + sum_s a_s max(0, -x + b_s)``.

    Args:
        x: ``(N, C, ...)`` (any shape when the parameters are shared).
        a, b: ``(S,)`` shared or ``(C, S)`` per channel (dim 1 of ``x``).

    Example:
        >>> apl(torch.tensor([-1.0, 2.0]), torch.tensor([0.5]), torch.tensor([0.0]))
        tensor([0.5000, 2.0000])
    """
    one = torch.ones(1, 1, 1, 1, dtype=a.dtype, device=a.device)
    params = [one, torch.zeros_like(one), _kernel_shape(a), -_kernel_shape(b)]
    return _fused.apply(_HingeKernel, x, params, per_channel=_per_channel(x, (a, b)))


def _check_channels(name: str, channels: int | None, x: torch.Tensor) -> None:
    if channels is not None and (x.dim() < 2 or x.shape[1] != channels):
        got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
        raise ValueError(f"{name} expected {channels} channels (dim 1 of the input), got {got} (input shape {tuple(x.shape)})")


def _hinge_tensor(module: nn.Module, name: str, values: np.ndarray, channels: int | None, learnable: bool) -> None:
    t = torch.as_tensor(values, dtype=torch.float32)
    if channels is not None:
        t = t.repeat(channels, 1)
    if learnable:
        module.register_parameter(name, nn.Parameter(t))
    else:
        module.register_buffer(name, t)


def _check_common(S: int, channels: int | None) -> None:
    if int(S) != S or S < 1:
        raise ValueError(f"S (hinges a side) must be an integer >= 1, got {S}")
    if channels is not None and (int(channels) != channels or channels < 1):
        raise ValueError(f"channels must be a positive integer or None (shared), got {channels}")


class SAPL(nn.Module):
    """Symmetric-APL, symmetric-apl.txt Eq. 2, and its Section 5 variants.

    ``h(x) = sum_s a+_s max(0, x - b+_s) + sum_s a-_s max(0, -x - b-_s)``,
    ``b+_s, b-_s >= 0``; zero-centred (``h(0) = 0``) and even when
    ``a+ = a-`` and ``b+ = b-``.

    Args:
        channels: ``None`` (default): one set of ``4S`` parameters shared by the
            layer, as in the paper; an int: one set per channel (dim 1).
        S: hinges a side (default 4), >= 1.
        hinges: ``None`` (the paper's placement, see the module docstring),
            ``"section4"``, ``"appendix"``, or ``S`` non-negative positions,
            used on both sides.
        learnable_hinges: hinges are parameters (kept >= 0 by reflection)
            instead of fixed buffers (default, as in the paper).
        variant: ``"plain"`` (default), ``"positive"`` (S-APL-positive:
            ``a-`` used as ``+|a-|``, so the output is >= 0 for x < 0) or
            ``"negative"`` (S-APL-negative: ``-|a-|``), Section 5.

    Parameters: ``a_pos``, ``a_neg`` (and ``b_pos``, ``b_neg`` when
    learnable), shape ``(S,)`` or ``(channels, S)``; initialised to ReLU
    (``a_pos[..., 0] = 1``, all others 0).

    Shape: ``(N, C, ...)`` with ``C == channels``; any shape when shared.

    Example:
        >>> act = SAPL()
        >>> act(torch.tensor([-1.0, 0.0, 2.0])).tolist()  # initialised as ReLU
        [0.0, 0.0, 2.0]
    """

    def __init__(self, channels: int | None = None, S: int = 4, hinges: Union[None, str, Sequence[float]] = None,
                 learnable_hinges: bool = False, variant: str = "plain"):
        super().__init__()
        _check_common(S, channels)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        positions = self._placement(S, hinges)
        self.channels, self.S, self.variant, self.learnable_hinges = channels, int(S), variant, learnable_hinges
        init = np.zeros(self.S)
        init[0] = 1.0
        _hinge_tensor(self, "a_pos", init, channels, True)
        _hinge_tensor(self, "a_neg", np.zeros(self.S), channels, True)
        _hinge_tensor(self, "b_pos", positions, channels, learnable_hinges)
        _hinge_tensor(self, "b_neg", positions, channels, learnable_hinges)

    @staticmethod
    def _placement(S: int, hinges) -> np.ndarray:
        if hinges is None:
            if S > len(_SAPL_PLACEMENT):
                raise ValueError(f"no default hinge placement for S={S} > {len(_SAPL_PLACEMENT)}; pass hinges=[...]")
            return np.array(_SAPL_PLACEMENT[:S])
        if isinstance(hinges, str):
            named = {"section4": _SAPL_PLACEMENT[:4], "appendix": _SAPL_APPENDIX}
            if hinges not in named:
                raise ValueError(f"hinges must be None, 'section4', 'appendix' or a sequence of positions; got {hinges!r}")
            positions = np.array(named[hinges])
        else:
            positions = np.asarray(hinges, dtype=np.float64)
        if positions.shape != (S,):
            raise ValueError(f"expected S={S} hinge positions, got {positions.tolist()}")
        if (positions < 0).any() or not np.isfinite(positions).all():
            raise ValueError(f"S-APL hinge positions must be finite and >= 0, got {positions.tolist()}")
        return positions

    def effective(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a+, b+, a-, b-)`` as used in Eq. 2 (after the variant and the ``b >= 0`` reflection)."""
        a_neg = self.a_neg
        if self.variant == "positive":
            a_neg = _reflect(a_neg)
        elif self.variant == "negative":
            a_neg = -_reflect(a_neg)
        b_pos, b_neg = self.b_pos, self.b_neg
        if self.learnable_hinges:
            b_pos, b_neg = _reflect(b_pos), _reflect(b_neg)
        return self.a_pos, b_pos, a_neg, b_neg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_channels("SAPL", self.channels, x)
        return sapl(x, *self.effective())

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, S={self.S}, variant={self.variant!r}, "
                f"learnable_hinges={self.learnable_hinges}")


class APL(nn.Module):
    """Adaptive piecewise linear unit (Agostinelli et al. 2014), symmetric-apl.txt Eq. 1.

    ``h(x) = max(0, x) + sum_s a_s max(0, -x + b_s)``.

    Args:
        channels: an int: one set of ``a_s, b_s`` per channel (dim 1), as in
            Agostinelli et al. (one per hidden unit); ``None``: shared by the layer.
        S: number of hinges (default 5), >= 1.
        hinges: ``None`` (``S`` points evenly spaced on [-2, 2]; for ``S = 5``
            the paper's ``0, +-1, +-2``) or ``S`` positions.
        learnable_hinges: hinges are parameters instead of fixed buffers
            (default fixed, as in the S-APL paper's experiments).

    Parameters: ``a`` (init 0, so the unit starts as ReLU), and ``b`` when
    learnable; shape ``(S,)`` or ``(channels, S)``.

    Shape: ``(N, C, ...)`` with ``C == channels``; any shape when shared.

    Example:
        >>> act = APL(channels=8)
        >>> act(torch.randn(2, 8, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(self, channels: int | None = None, S: int = 5, hinges: Sequence[float] | None = None,
                 learnable_hinges: bool = False):
        super().__init__()
        _check_common(S, channels)
        positions = np.linspace(-2.0, 2.0, int(S)) if hinges is None else np.asarray(hinges, dtype=np.float64)
        if positions.shape != (S,) or not np.isfinite(positions).all():
            raise ValueError(f"expected S={S} finite hinge positions, got {positions.tolist()}")
        self.channels, self.S, self.learnable_hinges = channels, int(S), learnable_hinges
        _hinge_tensor(self, "a", np.zeros(self.S), channels, True)
        _hinge_tensor(self, "b", positions, channels, learnable_hinges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_channels("APL", self.channels, x)
        return apl(x, self.a, self.b)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, S={self.S}, learnable_hinges={self.learnable_hinges}"


def _builder(cls, default_per_channel: bool, **preset):
    def build(channels: int | None = None, per_channel: bool = default_per_channel, **kwargs):
        return cls(channels=channels if per_channel else None, **preset, **kwargs)

    return build


register("apl", APL, _builder(APL, True), per_channel=True)
register("sapl", SAPL, _builder(SAPL, False), per_channel=True)
register("sapl_positive", SAPL, _builder(SAPL, False, variant="positive"), per_channel=True)
register("sapl_negative", SAPL, _builder(SAPL, False, variant="negative"), per_channel=True)
