"""GroupSort and MaxMin (Anil, Lucas and Grosse, "Sorting out Lipschitz function approximation", ICML 2019;
arXiv:1811.05381).

GroupSort splits the channels (dim 1) into groups of ``g`` consecutive channels and sorts each group,
ascending, at every position:

    GroupSort_g(x)[n, j g : (j + 1) g, ...] = sort(x[n, j g : (j + 1) g, ...]),

and MaxMin is GroupSort with ``g = 2`` (each pair of channels becomes its minimum and its maximum; the paper writes
it ``(max(x_1, x_2), min(x_1, x_2))``, the same function up to the order of the two outputs). The output is a
permutation of the input, chosen by the input: GroupSort is piecewise linear, and wherever the values of every
group are distinct its Jacobian is a permutation matrix, so it is 1-Lipschitz in every ``l_p`` norm and
gradient-norm preserving (``||J^T v|| = ||v||``, the property the paper shows 1-Lipschitz networks need to be
expressive): the activation of 1-Lipschitz (certified-robust) networks, where ReLU loses gradient norm.

Ties keep their order (the gradient of a tie goes to one element: the Jacobian stays a permutation). A NaN in
a group makes the output NaN there: the native kernel (a sorting network that never swaps a NaN) leaves the
group's other values partly unsorted, ``torch.sort`` (the fallback) moves the NaN to the end; infinities sort
as numbers.

Implementation: on the CPU the native kernel of ``_native.cpp`` (odd-even transposition sort of ``g``
vectors, one pass forward; backward keeps only the input and applies the recomputed swaps to the incoming
gradient, in reverse order) for ``g <= 16`` in float32 and float64 (float16/bfloat16 sorted in float32), on
channel-first and channels-last inputs alike; elsewhere (CUDA, larger groups, ``SYMACT_NATIVE=0``)
``torch.sort``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from symact.activations import _native, register

__all__ = ["GroupSort", "MaxMin", "groupsort", "maxmin"]


def _check(x: torch.Tensor, group_size: int) -> None:
    if not x.is_floating_point():
        raise TypeError(f"GroupSort needs a floating-point input, got {x.dtype}")
    if x.dim() < 2 or x.shape[1] % group_size:
        got = x.shape[1] if x.dim() >= 2 else "no channel dimension"
        raise ValueError(f"GroupSort with group size {group_size} needs a channel count (dim 1) divisible by "
                         f"{group_size}, got {got} (input shape {tuple(x.shape)})")


def _native_view(x: torch.Tensor, group_size: int) -> tuple[torch.Tensor, tuple[int, int, int]] | None:
    """``x`` as the native kernel reads it, ``(outer, g, inner)`` in memory order, or ``None`` (torch.sort)."""
    if x.device.type != "cpu" or group_size > _native.MAX_GROUP or _native.library() is None:
        return None
    n, c = x.shape[:2]
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x, (x.numel() // group_size, group_size, 1)  # (N, H, W, C): a group's values side by side
    x = x.contiguous()
    inner = x.numel() // (n * c)
    return x, (n * c // group_size, group_size, inner)


class _GroupSortNative(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group_size):
        xc, shape = _native_view(x, group_size)
        dtype = _native.compute_dtype(xc, [])
        xd = xc.to(dtype)
        ctx.save_for_backward(xd)
        ctx.shape, ctx.dtype = shape, x.dtype
        return _native.groupsort(xd, None, *shape).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (xd,) = ctx.saved_tensors
        if g.dtype != xd.dtype or g.stride() != xd.stride():  # the input's memory layout and compute dtype
            g = torch.empty_like(xd).copy_(g)
        gd = g
        return _native.groupsort(xd, gd, *ctx.shape).to(ctx.dtype), None


def groupsort(x: torch.Tensor, group_size: int = 2) -> torch.Tensor:
    """GroupSort (Anil et al. 2019): sort groups of ``group_size`` consecutive channels (dim 1), ascending.

    Args:
        x: ``(N, C, ...)`` with ``C`` divisible by ``group_size``.
        group_size: ``g >= 1`` (2: MaxMin).

    Example:
        >>> groupsort(torch.tensor([[3.0, 1.0, -2.0, 5.0]]), group_size=2)
        tensor([[ 1.,  3., -2.,  5.]])
    """
    if int(group_size) != group_size or group_size < 1:
        raise ValueError(f"GroupSort needs a group size g >= 1, got {group_size}")
    group_size = int(group_size)
    _check(x, group_size)
    if group_size == 1 or x.numel() == 0:
        return x.clone()
    if _native_view(x, group_size) is not None:
        return _GroupSortNative.apply(x, group_size)
    n, c = x.shape[:2]
    return x.unflatten(1, (c // group_size, group_size)).sort(dim=2).values.flatten(1, 2)


def maxmin(x: torch.Tensor) -> torch.Tensor:
    """MaxMin (Anil et al. 2019): GroupSort with groups of 2, each pair of channels ``(2j, 2j + 1)`` becoming
    ``(min, max)``.

    Example:
        >>> maxmin(torch.tensor([[3.0, 1.0]]))
        tensor([[1., 3.]])
    """
    return groupsort(x, 2)


class GroupSort(nn.Module):
    """GroupSort (Anil, Lucas and Grosse 2019, "Sorting out Lipschitz function approximation").

    Sorts each group of ``group_size`` consecutive channels (dim 1), ascending, at every position: a
    1-Lipschitz, gradient-norm-preserving activation (its Jacobian is a permutation matrix wherever a group
    has no ties). No parameters.

    Args:
        group_size: ``g`` (default 2, MaxMin), ``>= 1``; the channel count must be divisible by it.

    Shape: ``(N, C, ...) -> (N, C, ...)``, ``C`` divisible by ``g``.

    Example:
        >>> GroupSort(group_size=3)(torch.tensor([[2.0, 0.0, 1.0, 5.0, 4.0, 3.0]]))
        tensor([[0., 1., 2., 3., 4., 5.]])
    """

    def __init__(self, group_size: int = 2):
        super().__init__()
        if int(group_size) != group_size or group_size < 1:
            raise ValueError(f"GroupSort needs a group size g >= 1, got {group_size}")
        self.group_size = int(group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return groupsort(x, self.group_size)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class MaxMin(GroupSort):
    """MaxMin (Anil et al. 2019): :class:`GroupSort` with groups of 2 channels.

    Example:
        >>> MaxMin()(torch.tensor([[3.0, 1.0, -2.0, 5.0]]))
        tensor([[ 1.,  3., -2.,  5.]])
    """

    def __init__(self):
        super().__init__(group_size=2)

    def extra_repr(self) -> str:
        return ""


register("groupsort", GroupSort)
register("maxmin", MaxMin)
