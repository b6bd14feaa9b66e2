"""Baselines the chapters compare against, beyond the torch.nn ones registered in ``__init__``.

- :func:`swish` / :class:`Swish`: ``x * sigmoid(beta x)`` (Ramachandran et al.
  2017), ``beta`` fixed or learnable (``beta = 1`` is SiLU);
- :func:`maxout` / :class:`Maxout`: the maximum over ``k`` pieces
  (Goodfellow et al. 2013);
- :func:`kwta` / :class:`KWTA`: k-Winners-Take-All (Xiao, Zhong and Zheng,
  "Enhancing adversarial defense by k-winners-take-all", ICLR 2020):
  per sample, keep the ``k`` largest activations across all channels and
  positions and set the rest to 0;
- :func:`relu_softplus_grad` / :class:`ReLUSoftplusGrad`: ReLU in the forward
  pass, the derivative of the parametric softplus in the backward pass (the
  ablation of Xie et al. 2020, "Smooth adversarial training").

The torch.nn baselines keep torch's own behaviour at infinite inputs, where
it differs from the formula's limit: ``GELU`` gives NaN at +-inf and ``SiLU``
NaN at -inf. :class:`Swish` gives the limits (``beta > 0``:
``swish(+inf) = +inf``, ``swish(-inf) = 0``; mirrored for ``beta < 0``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from symact.activations import _fused, register
from symact.activations._fused import as_param, dot_to

__all__ = ["KWTA", "Maxout", "ReLUSoftplusGrad", "Swish", "kwta", "maxout", "relu_softplus_grad", "swish"]


class _SwishKernel:
    """``y = x s`` with ``s = sigmoid(beta x)``; ``dy/dx = s + beta x s (1 - s)``, ``dy/dbeta = x^2 s (1 - s)``."""

    @staticmethod
    def native(params):
        return "swish", ()

    @staticmethod
    def forward(x, params, new, out):
        (beta,) = params
        return torch.mul(x, beta, out=new() if out is None else out).sigmoid_().mul_(x)

    @staticmethod
    def backward(x, g, params, needs, new, out):
        (beta,) = params
        s = torch.mul(x, beta, out=new()).sigmoid_()
        xs1 = torch.addcmul(s, s, s, value=-1.0, out=new()).mul_(x)  # x s (1 - s)
        dbeta = dot_to(xs1, torch.mul(x, g, out=new()), beta) if needs[0] else None
        return torch.addcmul(s, xs1, beta, out=new() if out is None else out).mul_(g), [dbeta]

    @staticmethod
    def limits(x, y, beta):
        side = torch.sign(beta) * torch.sign(x)  # +1: the sigmoid tends to 1, -1: to 0
        lim = torch.where(side < 0, torch.zeros_like(x), x)
        return torch.where(torch.isinf(x), lim, y)


def swish(x: torch.Tensor, beta=1.0) -> torch.Tensor:
    """Swish (Ramachandran et al. 2017): ``x * sigmoid(beta * x)``; ``beta``: float or 0-d tensor. Any shape.

    Example:
        >>> swish(torch.tensor([0.0, 1.0]))
        tensor([0.0000, 0.7311])
    """
    return _fused.apply(_SwishKernel, x, [as_param(beta, x).reshape(1, 1, 1)])


class Swish(nn.Module):
    """Swish, ``x * sigmoid(beta * x)`` (Ramachandran et al. 2017, "Searching for activation functions").

    Args:
        beta: initial value (default 1.0: SiLU). The S-APL paper's robustness
            experiments use ``beta = 0.2`` (symmetric-apl.txt Appendix 8.2).
        learnable: ``beta`` is an ``nn.Parameter`` (one per layer) instead of a buffer.

    Shape: any.

    Example:
        >>> Swish(beta=1.0, learnable=True)(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False):
        super().__init__()
        t = torch.tensor(float(beta))
        if learnable:
            self.beta = nn.Parameter(t)
        else:
            self.register_buffer("beta", t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fused.apply(_SwishKernel, x, [self.beta.reshape(1, 1, 1)])

    def extra_repr(self) -> str:
        return f"beta={self.beta.item():.4g}, learnable={isinstance(self.beta, nn.Parameter)}"


def maxout(x: torch.Tensor, k: int) -> torch.Tensor:
    """Maxout (Goodfellow et al. 2013) over dim 1: ``(N, C, ...) -> (N, C/k, ...)``.

    Output channel ``j`` is the maximum of input channels ``j*k, ..., j*k + k - 1``.

    Example:
        >>> maxout(torch.tensor([[1.0, 3.0, -2.0, -5.0]]), k=2)
        tensor([[ 3., -2.]])

    The gradient goes to the largest piece of each unit (``torch.max``, whose backward writes one index per
    unit; ``amax`` would split a tie, which has probability zero, and its mask-and-divide backward made a
    nine-piece LeNet-5 training step about a third slower on CPU).
    """
    if x.dim() < 2 or x.shape[1] % k:
        raise ValueError(f"maxout with k={k} pieces needs a channel count (dim 1) divisible by {k}, got input shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels-last (what symact.train uses for CNNs): a unit's k pieces lie side by side in memory, so the
        # maximum runs over views, without the copy a reshape of dim 1 makes (3x faster on CPU, same values)
        return x.permute(0, 2, 3, 1).unflatten(3, (c // k, k)).max(dim=-1).values.permute(0, 3, 1, 2)
    return x.reshape(n, c // k, k, *x.shape[2:]).max(dim=2).values


class Maxout(nn.Module):
    """Maxout with ``k`` pieces (Goodfellow et al. 2013, "Maxout networks").

    Groups of ``k`` consecutive channels (dim 1) are reduced to their maximum:
    the preceding layer's ``C`` outputs are the pieces of ``C/k`` maxout units.

    Use with a model factory: with ``keep_channels=True`` (default) each of the
    ``C/k`` maxima is repeated ``k`` times, so the output has the input's
    shape and drops in wherever the model was built for ``C`` channels. That
    is exactly a maxout network with ``C/k`` units in that layer (the next
    layer's weights on the ``k`` copies act as one weight); to compare with a
    ReLU network of ``C`` units, build the model ``k`` times wider.
    ``keep_channels=False`` returns ``(N, C/k, ...)``, the paper's form, for
    models built for it.

    Args:
        k: pieces per unit (default 2), >= 1.
        keep_channels: see above.

    Shape: ``(N, C, ...)`` with ``C`` divisible by ``k`` -> ``(N, C, ...)`` or ``(N, C/k, ...)``.

    Example:
        >>> Maxout(k=2)(torch.tensor([[1.0, 3.0, -2.0, -5.0]]))
        tensor([[ 3.,  3., -2., -2.]])
    """

    def __init__(self, k: int = 2, keep_channels: bool = True):
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"maxout needs k >= 1 pieces, got k={k}")
        self.k, self.keep_channels = int(k), keep_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = maxout(x, self.k)
        return y.repeat_interleave(self.k, dim=1) if self.keep_channels else y

    def extra_repr(self) -> str:
        return f"k={self.k}, keep_channels={self.keep_channels}"


def kwta(x: torch.Tensor, ratio: float = 0.1) -> torch.Tensor:
    """k-Winners-Take-All (Xiao et al. 2020): per sample, keep the ``k`` largest entries, zero the rest.

    ``k = max(1, floor(ratio * M))`` with ``M`` the number of entries of one
    sample (all channels and positions), as in the authors' code; entries tied
    with the ``k``-th largest are kept too. The gradient flows to the winners.
    NaN entries stay NaN.

    Example:
        >>> kwta(torch.tensor([[1.0, 4.0, -2.0, 3.0]]), ratio=0.5)
        tensor([[0., 4., 0., 3.]])
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"the kWTA sparsity ratio must be in (0, 1], got {ratio}")
    if x.dim() < 1:
        raise ValueError("kWTA needs an input with a batch dimension")
    flat = x.reshape(x.shape[0], -1)
    k = max(1, int(ratio * flat.shape[1]))
    threshold = flat.detach().nan_to_num(nan=-math.inf).topk(k, dim=1).values[:, -1:]
    keep = (flat >= threshold) | flat.isnan()
    return torch.where(keep, flat, torch.zeros_like(flat)).reshape(x.shape)


class KWTA(nn.Module):
    """k-Winners-Take-All (Xiao, Zhong and Zheng, ICLR 2020), see :func:`kwta`.

    Args:
        ratio: sparsity ratio ``gamma = k / M`` (default 0.1), the fraction of a
            sample's activations kept, across channels and positions.

    Shape: ``(N, ...)``, any; output has the input's shape.

    Example:
        >>> KWTA(ratio=0.25)(torch.arange(8.0).reshape(1, 2, 4))
        tensor([[[0., 0., 0., 0.],
                 [0., 0., 6., 7.]]])
    """

    def __init__(self, ratio: float = 0.1):
        super().__init__()
        if not 0 < ratio <= 1:
            raise ValueError(f"the kWTA sparsity ratio must be in (0, 1], got {ratio}")
        self.ratio = float(ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kwta(x, self.ratio)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}"


class _ReLUSoftplusGradFn(torch.autograd.Function):
    """Forward ``relu(x)``; backward ``grad * sigmoid(beta x)``, the derivative of ``softplus_beta``."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(ctx.beta * x), None


def relu_softplus_grad(x: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """ReLU forward, parametric-softplus gradient backward (Xie, Tan, Gong, Yuille and Le 2020, "Smooth
    adversarial training", arXiv 2006.14536, Sec. 3, the ablation "ReLU forward, parametric softplus
    backward"; cited as recalled: the paper is not in ``../shared/papers``, whose ``anchors.md`` records only
    its SiLU result):

        forward   y = max(x, 0)                                       (bit for bit ``torch.relu``)
        backward  dL/dx = dL/dy * d/dx softplus_beta(x) = dL/dy * sigmoid(beta x),
        softplus_beta(x) = (1/beta) log(1 + exp(beta x)),

    so the network computes exactly ReLU's function, while every gradient (the attack's in adversarial training
    and the weights') is the one of its smooth approximation ``softplus_beta``, which tends to ReLU as
    ``beta -> inf``. ``beta = 10`` is the value Xie et al. use (as recalled). The backward is not ReLU's
    derivative, so ``torch.autograd.gradcheck`` against the forward fails by design; the test checks the
    backward against the softplus derivative. No double backward (the backward is not differentiated).

    Example:
        >>> x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
        >>> relu_softplus_grad(x).sum().backward(); x.grad
        tensor([4.5398e-05, 5.0000e-01, 1.0000e+00])
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta (the softplus sharpness) must be a finite number > 0, got {beta!r}")
    return _ReLUSoftplusGradFn.apply(x, float(beta))


class ReLUSoftplusGrad(nn.Module):
    """ReLU forward, parametric-softplus derivative backward (Xie et al. 2020's ablation), see
    :func:`relu_softplus_grad`.

    Args:
        beta: the softplus's sharpness (default 10), > 0.

    Shape: any; output has the input's shape.

    Example:
        >>> ReLUSoftplusGrad()(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, beta: float = 10.0):
        super().__init__()
        relu_softplus_grad(torch.zeros(1), beta)  # checks beta
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu_softplus_grad(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta:g}"


register("swish", Swish)
register("maxout", Maxout)
register("kwta", KWTA)
register("relu_softplus_grad", ReLUSoftplusGrad)
