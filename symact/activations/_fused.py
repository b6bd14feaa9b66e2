"""Fused, memory-light element-wise activations (internal).

Written with plain autograd, an activation such as DOME runs a dozen
element-wise torch ops, each a pass over the whole tensor that allocates a
new one, and keeps several of them alive for backward. Here an activation is
a *kernel*: a forward formula and its hand-written derivatives. :func:`apply`
evaluates the kernel block by block (blocks of :data:`BLOCK` elements, small
enough to stay in cache), saves only its input and parameters for backward,
and recomputes the intermediate values in backward, block by block again.
Kernels take their temporaries from a :class:`Scratch` pool allocated once per
call (on CPU a fresh tensor costs page faults, several times the op itself)
and write with ``out=`` and in-place ops.

A kernel is an object with two methods, both working on one block ``x`` of
shape ``(n, C, P)`` (or ``(1, 1, P)`` for activations without per-channel
parameters) in the compute dtype (float32, or float64 when the input or a
parameter is float64; float16 and bfloat16 inputs are computed in float32 and
the result cast back)::

    forward(x, params, new, out) -> y
    backward(x, g, params, needs, new, out) -> (dx, [dparam or None for each param])

A kernel may define ``prepare(params) -> state``, computed once per call (not
per block) and passed to ``forward``/``backward`` in place of ``params``, for
constants derived from the parameters.

``new()`` returns a scratch tensor shaped like ``x`` (``new(k)``: shaped
``(k, *x.shape)``), valid until the next block; ``out`` is where the result
should go (or ``None``); the framework copies ``y`` or ``dx`` into place when
they are not ``out``. A kernel may also define ``limits(x, y, *params) -> y``:
it is called on the blocks whose input is not all finite, to replace the
formula's ``0 * inf`` results at ``x = +-inf`` by the formula's limits (on CPU
finite blocks never pay for it; on other devices it runs on every block, since
testing for infinities would synchronise with the host). It must not branch on
tensor values (``torch.where``, not boolean indexing).

``params`` are tensors broadcastable against ``x`` (``(1, 1, 1)`` for a shared
scalar, ``(1, C, 1)`` per channel, with extra leading dimensions for vectors
of parameters such as APL hinges); ``g`` is the incoming gradient of the
block; each ``dparam`` must already be summed to the shape of its parameter
(see :func:`sum_to`, :func:`dot_to`). ``needs[i]`` says whether parameter
``i`` needs a gradient.

A kernel may also define ``native(params) -> (name, constants) or None``:
the kernel of ``_native.cpp`` computing the same function, which then runs
instead on the CPU wherever :func:`._native.layout` allows (one pass forward,
one backward). The same spec (or the kernel's ``triton(params)``, where the two
differ) names the Triton kernel of :mod:`._triton` that runs instead on CUDA
tensors (``SYMACT_TRITON=0``: the torch kernels run there too). The kernel is
chosen by the input's device, here, for every functional form and Module.

Fused activations support first-order gradients (training, attacks), not
double backward; the DOME and KAF modules take ``fused=False`` to run the
plain autograd formula where higher-order gradients are needed.
"""
from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from symact.activations import _native, _triton

__all__ = ["BLOCK", "LOG2E", "Scratch", "apply", "as_param", "dot_to", "sum_to"]

#: Elements per block on CPU (1 MiB of float32 per temporary; measured best of 2^16..2^19 on 2 cores).
BLOCK = 1 << 18
#: Elements per block on other devices (fewer, larger kernel launches).
BLOCK_ACCELERATOR = 1 << 24
#: log2(e): ``exp(z) == exp2(z * LOG2E)``; torch's exp2 is several times faster than exp on CPU.
LOG2E = math.log2(math.e)


def as_param(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """``value`` as a tensor: a float becomes a 0-d tensor on ``like``'s device, float64 for a float64 ``like``
    (so a float64 input is computed in float64 throughout), else float32 (half inputs compute in float32)."""
    if isinstance(value, torch.Tensor):
        return value
    device = like.device if like is not None else None
    dtype = torch.float64 if like is not None and like.dtype == torch.float64 else torch.float32
    return torch.tensor(float(value), dtype=dtype, device=device)


def sum_to(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the dimensions along which ``like`` is broadcast; result has ``like``'s shape."""
    lead = t.dim() - like.dim()
    dims = list(range(lead)) + [d + lead for d in range(like.dim()) if like.shape[d] == 1 and t.shape[d + lead] != 1]
    out = t.sum(dim=dims, keepdim=True) if dims else t
    return out.reshape(like.shape)


def dot_to(a: torch.Tensor, b: torch.Tensor, like: torch.Tensor, tmp: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_to(a * b, like)``: one BLAS dot product when ``like`` is a scalar, else the product (in ``tmp``) summed."""
    if like.numel() == 1 and a.shape == b.shape and a.is_contiguous() and b.is_contiguous():
        return torch.dot(a.reshape(-1), b.reshape(-1)).reshape(like.shape)
    return sum_to(torch.mul(a, b, out=tmp) if tmp is not None else a * b, like)


class Scratch:
    """Temporaries for one call of a kernel, reused from block to block."""

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype, self.device = dtype, device
        self.pool: dict[int, list[torch.Tensor]] = {}
        self.used: dict[int, int] = {}
        self.shape: tuple[int, ...] = ()

    def start(self, shape) -> None:
        """A new block of this shape: every temporary is free again."""
        self.shape = tuple(shape)
        self.used = {}

    def __call__(self, k: int | None = None) -> torch.Tensor:
        shape = self.shape if k is None else (k, *self.shape)
        numel = math.prod(shape)
        key = 1 if k is None else k
        bufs = self.pool.setdefault(key, [])
        i = self.used.get(key, 0)
        if i == len(bufs) or bufs[i].numel() < numel:
            buf = torch.empty(numel, dtype=self.dtype, device=self.device)
            if i == len(bufs):
                bufs.append(buf)
            else:
                bufs[i] = buf
        self.used[key] = i + 1
        return bufs[i][:numel].view(shape)


def _blocks(shape: torch.Size, block: int):
    """Index tuples cutting an ``(N, C, P)`` tensor into pieces of about ``block`` elements."""
    n, c, p = shape
    row = max(1, c * p)
    if row <= 2 * block:
        rows = max(1, block // row)
        for i in range(0, n, rows):
            yield (slice(i, i + rows),)
    else:  # one sample is large: cut along the last dimension as well
        width = max(1, block // max(1, c))
        for i in range(n):
            for j in range(0, p, width):
                yield (slice(i, i + 1), slice(None), slice(j, j + width))


def _block_size(x: torch.Tensor) -> int:
    return BLOCK if x.device.type == "cpu" else BLOCK_ACCELERATOR


def _place(result: torch.Tensor, dest: torch.Tensor) -> None:
    if result is not dest:
        dest.copy_(result)


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kernel, x3, *params):
        ctx.kernel = kernel
        ctx.save_for_backward(x3, *params)
        dtype = _native.compute_dtype(x3, params)
        ps = [p.to(dtype) for p in params]
        state = kernel.prepare(ps) if hasattr(kernel, "prepare") else ps
        new = Scratch(dtype, x3.device)
        y = torch.empty_like(x3)
        limits = getattr(kernel, "limits", None)
        # On CPU a block's sum tells cheaply whether it holds an infinity; elsewhere reading
        # it back would stall the device once per block, so the limits are always applied.
        check = x3.device.type == "cpu"
        for b in _blocks(x3.shape, _block_size(x3)):
            xb, yb = x3[b].to(dtype), y[b]
            new.start(xb.shape)
            res = kernel.forward(xb, state, new, yb if yb.dtype == dtype else None)
            if limits is not None and (not check or not torch.isfinite(xb.sum())):
                res = limits(xb, res, *ps)
            _place(res, yb)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x3, *params = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        dtype = _native.compute_dtype(x3, params)
        ps = [p.to(dtype) for p in params]
        state = ctx.kernel.prepare(ps) if hasattr(ctx.kernel, "prepare") else ps
        new = Scratch(dtype, x3.device)
        dx = torch.empty_like(x3) if ctx.needs_input_grad[1] else None
        dps = [torch.zeros_like(p) if need else None for p, need in zip(ps, needs)]
        for b in _blocks(x3.shape, _block_size(x3)):
            xb = x3[b].to(dtype)
            new.start(xb.shape)
            out = dx[b] if dx is not None and dx.dtype == dtype else None
            gx, gps = ctx.kernel.backward(xb, g[b].to(dtype), state, needs, new, out)
            if dx is not None:
                _place(gx, dx[b])
            for acc, gp in zip(dps, gps):
                if acc is not None:
                    acc += gp
        grads = [None if d is None else d.to(p.dtype) for d, p in zip(dps, params)]
        return (None, dx, *grads)


class _ChannelsFirst(torch.autograd.Function):
    """``x.contiguous()`` whose gradient comes back channels-last, the layout of a channels-last ``x``
    (plain ``contiguous`` passes a channel-first gradient on, and the layers before then take slow paths)."""

    @staticmethod
    def forward(ctx, x):
        return x.contiguous()

    @staticmethod
    def backward(ctx, g):
        return g.contiguous(memory_format=torch.channels_last)


def apply(kernel, x: torch.Tensor, params, per_channel: bool = False) -> torch.Tensor:
    """Evaluate ``kernel`` on ``x`` block by block, differentiable in ``x`` and ``params``.

    ``per_channel``: ``x`` is viewed as ``(N, C, P)`` (dim 1 is the channel
    dimension, parameters broadcast as ``(..., 1, C, 1)``); otherwise as
    ``(1, 1, numel)`` and parameters must be broadcastable to ``(..., 1, 1, 1)``.
    """
    if not x.is_floating_point():
        raise TypeError(f"activations need a floating-point input, got {x.dtype}")
    shape = x.shape
    if per_channel:
        if x.dim() < 2:
            raise ValueError(f"a per-channel activation needs an input of shape (N, C, ...), got shape {tuple(shape)}")
        for p in params:
            if p.dim() >= 2 and p.shape[-2] not in (1, shape[1]):
                raise ValueError(f"expected {p.shape[-2]} channels (dim 1 of the input), got {shape[1]} (input shape {tuple(shape)})")
    if x.numel() == 0:
        return x.clone()
    tspec = _triton.spec(kernel, x, params)
    if tspec is not None:
        return _triton.run(tspec, x, params, per_channel)
    spec = kernel.native(params) if hasattr(kernel, "native") else None
    if spec is not None:
        cp = _native.layout(x, params, per_channel)
        if cp is not None:
            return _native.run(spec, cp, x, params)
        if per_channel and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            # channels-last (symact.train's layout for CNNs), one parameter set per channel: the native kernel
            # on a channel-first copy; two copies cost less than the torch kernels' pass per hinge
            xc = _ChannelsFirst.apply(x)
            cp = _native.layout(xc, params, per_channel)
            if cp is not None:
                return _native.run(spec, cp, xc, params).contiguous(memory_format=torch.channels_last)
    x3 = x.reshape(shape[0], shape[1], -1) if per_channel else x.reshape(1, 1, -1)
    return _Fused.apply(kernel, x3, *params).view(shape)
