"""Symmetric activation functions, SAF (``saf.txt``).

Zhao and Griffin, "Suppressing the unusual: towards robust CNNs using
symmetric activation functions", Section 3:

- :func:`rbf` / :class:`RBF`: the 1-D radial basis function
  ``exp(-x^2)`` (Section 3.1), derivative ``-2 x exp(-x^2)``;
- :func:`mrelu` / :class:`MReLU`: the mirrored ReLU, Eq. 1 and 2, with the
  derivative of Eq. 3 (:func:`mrelu_derivative`).

Both are parameter-free ("any needed flexibility can be achieved by argument
rescaling and shifting in the preceding convolutional layer"), run fused, and
keep only their input for backward. Limits: ``rbf(+-inf) = 0``,
``mrelu(+-inf) = 0``.

Note on Eq. 1 versus Eq. 2 at ``x = 0``: Eq. 1 uses strict inequalities
(``0 > x > -1`` and ``+1 > x > 0``), so read literally it gives 0 at
``x = 0``; Eq. 2, ``min(ReLU(1 - x), ReLU(1 + x))``, and Fig. 1c give the
continuous value 1. We follow Eq. 2 (``mrelu(0) = 1``). The derivative follows
Eq. 3 everywhere, including its "otherwise" cases: 0 at ``x = 0`` and at
``x = +-1``.
"""
from __future__ import annotations

import torch
from torch import nn

from symact.activations import _fused, register
from symact.activations._fused import LOG2E

__all__ = ["MReLU", "RBF", "mrelu", "mrelu_derivative", "rbf"]


class _RBFKernel:
    """``y = exp(-x^2) = 2^(-log2(e) x^2)``, ``dy/dx = -2 x y``."""

    @staticmethod
    def native(params):
        return "rbf", ()

    @staticmethod
    def forward(x, params, new, out):
        return torch.addcmul(x.new_zeros(()), x, x, value=-LOG2E, out=new() if out is None else out).exp2_()

    @staticmethod
    def backward(x, g, params, needs, new, out):
        zero = x.new_zeros(())
        y = torch.addcmul(zero, x, x, value=-LOG2E, out=new()).exp2_()
        return torch.addcmul(zero, y, torch.mul(x, g, out=new()), value=-2.0, out=new() if out is None else out), []


class _MReLUKernel:
    """``y = ReLU(1 - |x|) = 1 - min(|x|, 1)`` (Eq. 2); ``dy/dx = -sign(x)`` on ``0 < |x| < 1``, else 0 (Eq. 3)."""

    @staticmethod
    def native(params):
        return "mrelu", ()

    @staticmethod
    def _one_minus_clipped_abs(x, dest):
        a = torch.abs(x, out=dest).clamp_max_(1.0)
        return torch.addcmul(x.new_ones(()), a, x.new_full((), -1.0), out=a)

    @staticmethod
    def forward(x, params, new, out):
        return _MReLUKernel._one_minus_clipped_abs(x, new() if out is None else out)

    @staticmethod
    def backward(x, g, params, needs, new, out):
        # hardtanh's backward passes g on the open interval (-1, 1) and gives 0 elsewhere (also at
        # +-1); times -sign(x) that is Eq. 3, 0 at x = 0, and NaN for NaN (0 * NaN). Three passes.
        dest = new() if out is None else out
        inside = torch.ops.aten.hardtanh_backward.grad_input(g, x, -1.0, 1.0, grad_input=dest)
        return torch.addcmul(x.new_zeros(()), inside, torch.sign(x, out=new()), value=-1.0, out=dest), []


def rbf(x: torch.Tensor) -> torch.Tensor:
    """1-D RBF, saf.txt Section 3.1: ``exp(-x^2)``, in (0, 1]. Any input shape.

    Example:
        >>> rbf(torch.tensor([0.0, 1.0]))
        tensor([1.0000, 0.3679])
    """
    return _fused.apply(_RBFKernel, x, [])


def mrelu(x: torch.Tensor) -> torch.Tensor:
    """Mirrored ReLU, saf.txt Eq. 1 and 2: ``min(ReLU(1 - x), ReLU(1 + x))``.

    Zero outside (-1, 1), a tent of height 1 at 0. Any input shape.

    Example:
        >>> mrelu(torch.tensor([-1.5, -0.5, 0.0, 0.25, 2.0]))
        tensor([0.0000, 0.5000, 1.0000, 0.7500, 0.0000])
    """
    return _fused.apply(_MReLUKernel, x, [])


def mrelu_derivative(x: torch.Tensor) -> torch.Tensor:
    """saf.txt Eq. 3: ``+1`` on (-1, 0), ``-1`` on (0, 1), ``0`` otherwise (including 0 and +-1)."""
    inside = (x.abs() < 1) & (x != 0)
    return torch.where(inside, -torch.sign(x), torch.zeros_like(x))


class RBF(nn.Module):
    """1-D radial basis function, saf.txt Section 3.1: ``exp(-x^2)``.

    Parameter-free; used after convolutions and as the final layer of the
    SAF paper's robust CNNs. Shape: any.

    Example:
        >>> RBF()(torch.zeros(2, 4, 3, 3)).unique()
        tensor([1.])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rbf(x)


class MReLU(nn.Module):
    """Mirrored ReLU, saf.txt Eq. 1 and 2: ``min(ReLU(1 - x), ReLU(1 + x))``; derivative Eq. 3.

    Parameter-free. Shape: any.

    Example:
        >>> MReLU()(torch.tensor([[-0.5, 0.5, 3.0]]))
        tensor([[0.5000, 0.5000, 0.0000]])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mrelu(x)


register("rbf", RBF)
register("mrelu", MReLU)
