"""CUDA kernels of the fused activations, in Triton (internal).

On the GPU the torch kernels of :mod:`._fused` run a dozen element-wise torch
ops per activation (DOME) or over a hundred (KAF), each one more pass over
memory and one more kernel launch. The Triton kernels of
:mod:`._triton_kernels` compute each activation in one pass forward (one read
of the input, one write of the output) and one pass backward (one read of the
input and of the incoming gradient, recomputing what they need, one write of
the input's gradient), like the native CPU kernels of :mod:`._native`, with
the same formulas and the same values at +-inf and NaN. Parameter gradients
are summed per tile in the kernel and the tiles' sums added in one small
second pass (a ``(tiles, channels, parameters)`` tensor summed by torch).

The choice is made by :func:`._fused.apply` from the input's device, never by
a constructor flag: every functional form and Module calls ``_fused.apply``
with its kernel object, and a kernel with a Triton twin (:func:`spec`) runs it
on CUDA tensors of float32, float16 or bfloat16 (computed in float32; a
float64 input or parameter runs the torch kernels in float64), with parameters
shared by the layer or one set per channel, in any dense layout
(channel-first, channels-last, ``(N, C)``; other strides are copied to a
contiguous tensor first). ``SYMACT_TRITON=0`` turns the Triton kernels off
(the torch kernels run, same results, slower). Where Triton cannot be
imported the torch kernels run after one warning.

Kernels: the PDOME family (DOME, DOME1, DOME2, PDOME), RBF, mReLU, the hinges
(APL, S-APL and its variants; shared or per channel, fixed or learnable
hinges), KAF (shared or per channel, ``D <= MAX_KAF_D``, any bandwidth),
Swish and PSSiLU. Like every fused kernel they support first-order gradients
only (``fused=False`` gives the autograd formula).

Testing without a GPU: Triton's interpreter (``TRITON_INTERPRET=1``, set
before :mod:`._triton_kernels` is first imported) runs the same kernels on CPU
tensors; ``tests/test_triton.py`` adds ``"cpu"`` to :data:`DEVICES` to send
CPU tensors through them.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch
from torch.autograd.function import once_differentiable

from symact.activations._native import _channels, _unpack  # the same (C, NP) parameter tables

__all__ = ["BLOCK", "DEVICES", "MAX_KAF_D", "available", "kernels", "run", "spec"]

#: device types whose tensors run the Triton kernels (the tests add "cpu", with Triton's interpreter)
DEVICES: tuple[str, ...] = ("cuda",)
#: elements per tile (one program)
BLOCK = 1024
#: widest tile along the channels when they are the fastest dimension (channels-last, (N, C))
MAX_COLS = 64
#: largest KAF dictionary the Triton kernel takes (it unrolls a loop over the D points)
MAX_KAF_D = 64
#: kernels with a Triton twin: the names of the kernels' ``native`` specs (and ``triton`` specs)
NAMES = ("pdome", "rbf", "mrelu", "hinge", "kaf", "swish", "pssilu")

_MOD = False  # False: not imported yet; None: unavailable


def kernels():
    """The module of Triton kernels (imported on first use), or ``None`` where Triton cannot be imported."""
    global _MOD
    if _MOD is False:
        try:
            from symact.activations import _triton_kernels
        except ImportError as err:
            warnings.warn(f"symact: Triton unavailable ({err}); CUDA activations run the (slower) torch kernels",
                          RuntimeWarning, stacklevel=3)
            _MOD = None
        else:
            _MOD = _triton_kernels
    return _MOD


def available() -> bool:
    """Whether the Triton kernels are turned on (``SYMACT_TRITON`` is not ``0``) and Triton imports."""
    return os.environ.get("SYMACT_TRITON", "1") != "0" and kernels() is not None


def spec(kernel, x: torch.Tensor, params) -> tuple | None:
    """``(name, constants)`` of the Triton kernel to run ``kernel`` on ``x``, or ``None`` (torch kernels).

    Triton runs where ``x`` is on a device of :data:`DEVICES`, ``x`` is float32, float16 or bfloat16, no
    parameter is float64 (float64 anywhere computes in float64: torch kernels) and the kernel has a Triton twin:
    its ``triton(params)`` spec, else its ``native(params)`` spec (the same kernel names and constants).
    """
    if x.device.type not in DEVICES or x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return None
    if any(p.dtype == torch.float64 for p in params):
        return None
    make = getattr(kernel, "triton", None) or getattr(kernel, "native", None)
    found = make(params) if make is not None else None
    if found is None or found[0] not in NAMES or not available():
        return None
    if found[0] == "kaf" and found[1][0] > MAX_KAF_D:
        return None
    return found


def _dense(x: torch.Tensor) -> bool:
    return (x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
            or (x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d)))


def layout(x: torch.Tensor, params, per_channel: bool) -> tuple[torch.Tensor, tuple[int, int, int, bool]]:
    """``x`` (a contiguous copy where it is not dense) and its view ``(R, W, C, by_col)`` (see ``_triton_kernels``)."""
    C = max((_channels(p) for p in params), default=1) if per_channel else 1
    if C == 1:
        x = x if _dense(x) else x.contiguous()
        return x, (1, x.numel(), 1, False)
    if not x.is_contiguous() and not _dense(x):
        x = x.contiguous()
    if x.is_contiguous():
        P = x.numel() // (x.shape[0] * C)
        return x, ((x.shape[0], C, C, True) if P == 1 else (x.shape[0] * C, P, C, False))
    return x, (x.numel() // C, C, C, True)  # channels-last: the channels are the fastest dimension


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _tiles(R: int, W: int, by_col: bool) -> tuple[int, int, int, int]:
    """``(BR, BW, tiles along R, tiles along W)``."""
    BW = min(_pow2(W), MAX_COLS if by_col else BLOCK)
    BR = min(max(1, BLOCK // BW), _pow2(R))
    return BR, BW, -(-R // BR), -(-W // BW)


def _pack(params, C: int, device) -> torch.Tensor:
    """Parameters shaped ``(..., 1, C or 1, 1)`` as one ``(C, NP)`` contiguous float32 table."""
    cols = [p.detach().float().reshape(-1, _channels(p)).expand(-1, C) for p in params]
    if not cols:
        return torch.zeros(C, 1, dtype=torch.float32, device=device)  # a valid pointer, never read
    return torch.cat(cols).t().contiguous()


def _args(name: str, consts):
    """Per kernel: extra scalar arguments and constexprs after the layout, forward and backward."""
    if name == "pdome":
        scale, shift = consts
        return (scale, shift), {}, (scale,), {}
    if name == "hinge":
        sp, sn = int(consts[0]), int(consts[1])
        return (), dict(SP=sp, SN=sn), (), dict(SP=sp, SN=sn)
    if name == "kaf":
        D, boundary, c = consts
        delta = 2.0 * boundary / (D - 1)
        scalars = (-boundary, delta, c / (delta * delta))
        return scalars, dict(D=int(D)), scalars, dict(D=int(D))
    return (), {}, (), {}


def _device(x: torch.Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


class _Triton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec_, shape, x, *params):
        name, consts = spec_
        R, W, C, by_col = shape
        ctx.spec, ctx.shape = spec_, shape
        ctx.save_for_backward(x, *params)
        mod = kernels()
        BR, BW, nr, nw = _tiles(R, W, by_col)
        y = torch.empty_like(x)
        fwd = getattr(mod, name + "_fwd")
        with _device(x):
            if name in ("rbf", "mrelu"):
                fwd[(nr * nw,)](x, y, R, W, BR=BR, BW=BW)
            else:
                scalars, const, _, _ = _args(name, consts)
                fwd[(nr * nw,)](x, y, _pack(params, C, x.device), R, W, C, *scalars, **const, BR=BR, BW=BW,
                                BY_COL=by_col)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (name, consts), (R, W, C, by_col) = ctx.spec, ctx.shape
        x, *params = ctx.saved_tensors
        need_x, needs = ctx.needs_input_grad[2], ctx.needs_input_grad[3:]
        mod = kernels()
        BR, BW, nr, nw = _tiles(R, W, by_col)
        if g.dtype != x.dtype or g.stride() != x.stride():
            g = torch.empty_like(x).copy_(g)
        dx = torch.empty_like(x) if need_x else x  # x: a pointer never written (NEED_X is off)
        bwd = getattr(mod, name + "_bwd")
        if name in ("rbf", "mrelu"):
            if need_x:
                with _device(x):
                    bwd[(nr * nw,)](x, g, dx, R, W, BR=BR, BW=BW)
            return (None, None, dx if need_x else None)
        table = _pack(params, C, x.device)
        NP = table.shape[1]
        part = torch.zeros((nr, W, NP) if by_col else (nw, R, NP), dtype=torch.float32, device=x.device)
        _, _, scalars, const = _args(name, consts)
        if name == "hinge":  # parameters a+, b+, a-, b-: slopes and hinges need gradients separately
            flags = dict(NEED_X=need_x, NEED_A=bool(needs[0] or needs[2]), NEED_B=bool(needs[1] or needs[3]))
        else:
            flags = dict(NEED_X=need_x, NEED_P=any(needs))
        with _device(x):
            bwd[(nr * nw,)](x, g, dx, table, part, R, W, C, *scalars, **const, **flags, BR=BR, BW=BW, BY_COL=by_col)
        grads = [None] * len(params)
        if any(needs):
            sums = part.sum(0, dtype=torch.float64)  # (C, NP) along the columns, (R, NP) along the rows
            if not by_col:
                sums = sums.reshape(R // C, C, NP).sum(0)
            grads = _unpack(sums, params, needs)
        return (None, None, dx if need_x else None, *grads)


def run(spec_: tuple, x: torch.Tensor, params, per_channel: bool) -> torch.Tensor:
    """The Triton kernel ``spec_ = (name, constants)`` (see :func:`spec`) on ``x``, differentiable in ``x`` and ``params``."""
    x, shape = layout(x, params, per_channel)
    return _Triton.apply(spec_, shape, x, *params)
