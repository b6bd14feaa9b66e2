"""Lipschitz constants of sequential networks, the certified L2 radius they imply, and a Lipschitz penalty for KAFs.

The KAF chapter's section "Lipschitz certificates" (``book/kaf.md``, label ``kaf-lipschitz``; the thesis outline
``../shared/papers/kaf-robustness-thesis.txt`` names Lipschitz certificates as its first future work).

**Layers.** For a network ``f = f_n o ... o f_1`` that is a plain composition (an :class:`torch.nn.Sequential`,
nested allowed, or an explicit list of layers whose composition is the model's forward, which
:func:`lipschitz_bound` checks numerically), ``Lip(f) <= prod_k Lip(f_k)`` (the Lipschitz constant of a
composition is at most the product of the constants). Each factor, in the L2 norm:

- an affine layer (``Conv1d/2d/3d``, ``Linear``, ``AvgPool``, ``AdaptiveAvgPool``): the operator norm of its
  linear part, by **power iteration on the layer itself** (:func:`operator_norm`): ``v <- J^T J v`` with
  ``J v = layer(v) - layer(0)`` and ``J^T`` from autograd, on the layer's real input shape. For a convolution
  this is the norm of the map the network computes (zero padding, stride, the image size), which is NOT the
  largest singular value of the kernel reshaped to ``(out, in k k)`` (what
  ``torch.nn.utils.parametrizations.spectral_norm`` normalises): a 3x3 convolution's operator norm can be up to
  ``3`` (``sqrt(k_h k_w)``) times the reshaped kernel's norm (Tsuzuku, Sato and Sugiyama 2018, Prop. 2), and
  smaller when the image is small, so the reshaped norm is neither a bound nor the constant. We write the power
  iteration ourselves because torch has no operator norm of a module (``torch.linalg.matrix_norm`` needs the
  matrix, which for a 32x32x32 convolution has 32,768^2 entries). A dense layer's norm is also computed exactly
  (:func:`torch.linalg.matrix_norm`, ``ord=2``) as a check.
- :func:`conv_norm_bound`: a rigorous upper bound for a zero-padded convolution (the circular convolution on the
  padded grid, whose norm is the largest singular value over the 2-D DFT frequencies of the kernel, Sedghi, Gupta
  and Long 2019, Thm. 6): power iteration approaches the norm from below, this bounds it from above;
  :func:`lipschitz_bound` with ``conv="fft"`` uses it, for a certificate that owes nothing to convergence.
- batch normalisation in eval mode and the book's input normalisation (:class:`symact.models.Normalize`): a
  diagonal scale, ``max |weight / sqrt(running_var + eps)|`` and ``max 1/std``;
- max pooling: ``1`` when windows do not overlap (``stride >= kernel``; each output moves by at most the largest
  change in its window), ``sqrt(ceil(k_h/s_h) ceil(k_w/s_w))`` otherwise (each input is in at most that many
  windows); dropout (eval), flatten, identity: ``1``;
- activations, exactly: ReLU, tanh, Softplus and MaxMin/GroupSort (a permutation wherever values differ) ``1``;
  LeakyReLU ``max(1, |slope|)``; ELU ``max(1, alpha)``; sigmoid ``1/4``; a Gaussian KAF the exact
  ``sup_s |f'(s)|`` of :func:`symact.theory_kaf.lipschitz`, max over its channels (each element is a
  one-dimensional function, so the layer's L2 constant is the largest channel's).

Any other layer raises :class:`TypeError` naming it and the supported ones.

**Why the bound is loose.** The product assumes that the direction each layer stretches most is the direction the
previous layer's output moves in, and that every activation sits at its steepest point at once; in a trained
network neither holds, so the true constant (``sup_x ||J_f(x)||_2``) is usually far smaller. The bound is what
makes the certificate below valid, not an estimate of the network's sensitivity.

**Certificate** (Tsuzuku et al. 2018, Prop. 1; Li et al. 2019): if the logits ``z = f(x)`` are ``L``-Lipschitz in
L2, each difference ``z_y - z_j = (e_y - e_j)^T z`` is ``sqrt(2) L``-Lipschitz, so no perturbation of L2 norm below

    r(x) = (z_y - max_{j != y} z_j) / (sqrt(2) L)

changes the prediction from the true class ``y`` (:func:`certified_radius`; negative for a misclassified image).
The certified accuracy at radius ``eps`` is the fraction with ``r > eps`` (:func:`certified_accuracy`); it can
never exceed the accuracy under any attack of L2 norm ``eps`` (AutoAttack's included).

**Penalty** (:func:`kaf_lipschitz_penalty`): a differentiable surrogate of each KAF layer's Lipschitz constant, a
soft maximum (``logsumexp``) of ``|f'|`` over a fine grid and over the channels; see its docstring for why this
rather than the closed-form bound of :func:`symact.theory_kaf.kaf_lipschitz_bounds`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["LayerConstant", "NetworkBound", "activation_lipschitz", "certified_accuracy", "certified_radius",
           "conv_norm_bound", "kaf_layer_surrogate", "kaf_lipschitz_penalty", "layer_lipschitz", "lipschitz_bound",
           "operator_norm", "sequential_layers", "spectral_normalise"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL_LINEAR = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                nn.AdaptiveAvgPool3d)
_LINEAR = (*_CONV, nn.Linear, *_POOL_LINEAR)


def _shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError as err:
        raise TypeError(f"input_shape must be a sequence of positive integers (one input, no batch dimension), "
                        f"got {input_shape!r}") from err
    if not shape or any(s < 1 for s in shape) or any(s != t for s, t in zip(shape, input_shape)):
        raise ValueError(f"input_shape must be positive integers (one input, no batch dimension), got {input_shape!r}")
    return shape


# --------------------------------------------------------------------------------------------- linear layers


def operator_norm(layer: nn.Module, input_shape, method: str = "lanczos", iters: int = 1000, tol: float = 1e-7,
                  seed: int = 0, start: torch.Tensor | None = None) -> float:
    """The L2 operator norm of an affine layer's linear part on inputs of ``input_shape``, from the layer itself.

    The layer is only applied, never written out as a matrix: ``J v = layer(v) - layer(0)`` (the bias cancels)
    and ``J^T u`` from :func:`torch.func.vjp` (the vector-Jacobian product of an affine map is the same at every
    point), in float64 on a copy of the layer in eval mode. ``method``:

    - ``"lanczos"`` (default): :func:`scipy.sparse.linalg.svds` (ARPACK's implicitly restarted Lanczos
      bidiagonalisation, a Krylov refinement of power iteration) on a :class:`scipy.sparse.linalg.LinearOperator`
      made of those two products: the largest singular value to ``tol``, in tens of products where plain power
      iteration needs thousands when the top singular values are close (a convolution's often are); a layer with
      at most 64 inputs or outputs is written out as its matrix (one product per unit vector) and its norm taken
      exactly;
    - ``"power"``: plain power iteration ``v <- J^T J v / ||J^T J v||`` from a seeded Gaussian start, until
      ``||J v||`` changes by less than ``tol`` (relative) or after ``iters`` steps; ``||J v||`` approaches the
      norm from below (Golub and Van Loan, Sec. 8.2).

    :func:`conv_norm_bound` bounds a convolution's norm from above. The start vector is ``start`` (an input of
    ``input_shape``) where given, else seeded Gaussian; for a 2-D convolution :func:`layer_lipschitz` starts from
    the plane wave of the circular convolution's top singular vector (:func:`_fft_start`), which is close to the
    answer (the top singular values of a convolution are clustered, so a random start needs thousands of steps).

    Args:
        layer: ``nn.Conv1d/2d/3d`` (any padding, stride, dilation, groups), ``nn.Linear``, average pooling (other
            types raise: a layer that is not affine would give a meaningless number).
        input_shape: one input's shape without the batch dimension, e.g. ``(3, 32, 32)``.
    """
    from scipy.sparse.linalg import LinearOperator, svds

    if not isinstance(layer, _LINEAR):
        raise TypeError(f"operator_norm takes an affine layer ({', '.join(t.__name__ for t in _LINEAR)}), got "
                        f"{type(layer).__name__}")
    shape = _shape(input_shape)
    if method not in ("lanczos", "power"):
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    if int(iters) != iters or iters < 1 or not tol > 0:
        raise ValueError(f"need iters >= 1 (an integer) and tol > 0, got {iters!r} and {tol!r}")
    lay = copy.deepcopy(layer).cpu().double().eval()  # on the CPU in float64, wherever the network is
    for p in lay.parameters():
        p.requires_grad_(False)
    x0 = torch.zeros((1, *shape), dtype=torch.float64)
    try:
        zero, vjp = torch.func.vjp(lay, x0)
    except RuntimeError as err:
        raise ValueError(f"{type(layer).__name__} cannot take inputs of shape {shape}: {err}") from err
    n_in, n_out = x0.numel(), zero.numel()

    def mv(v):
        with torch.no_grad():
            return (lay(torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(x0.shape))) - zero).flatten().numpy()

    def rmv(u):
        (g,) = vjp(torch.as_tensor(np.asarray(u, dtype=np.float64).reshape(zero.shape)))
        return g.detach().flatten().numpy()

    rng = np.random.default_rng(seed)
    if method == "lanczos" and min(n_in, n_out) <= 64:  # too small for ARPACK: the matrix itself, by unit vectors
        eye = np.eye(min(n_in, n_out))
        mat = np.stack([mv(e) for e in eye], 1) if n_in <= n_out else np.stack([rmv(e) for e in eye], 1)
        return float(np.linalg.norm(mat, ord=2))
    if method == "lanczos":
        op = LinearOperator((n_out, n_in), matvec=mv, rmatvec=rmv, dtype=np.float64)
        v0 = rng.standard_normal(n_in) if start is None else start.detach().double().flatten().cpu().numpy()
        if n_out < n_in:  # svds iterates on A A^T: start from the image of the input start
            v0 = mv(v0)
        s = svds(op, k=1, tol=tol, v0=v0, ncv=min(20, min(n_in, n_out)), return_singular_vectors=False,
                 maxiter=int(iters), random_state=seed)
        return float(s[0])
    v = rng.standard_normal(n_in) if start is None else start.detach().double().flatten().cpu().numpy()
    v /= np.linalg.norm(v)
    sigma = 0.0
    for _ in range(int(iters)):
        u = mv(v)
        new = float(np.linalg.norm(u))
        w = rmv(u)
        nw = np.linalg.norm(w)
        if nw == 0:
            return 0.0
        v = w / nw
        if abs(new - sigma) <= tol * new:
            break
        sigma = new
    return float(np.linalg.norm(mv(v)))


def conv_norm_bound(conv: nn.Module, input_shape) -> float:
    """A rigorous upper bound on the L2 operator norm of a zero-padded 2-D convolution on ``input_shape``.

    The padded input ``xpad`` (``(H + 2p_h) x (W + 2p_w)``) is an isometric embedding of ``x``; every output of the
    stride-1 convolution is an output of the circular convolution of ``xpad`` on that grid (no index wraps
    around), and a stride only drops outputs. So ``||conv|| <= ||C||``, and the circular convolution ``C`` is
    block-diagonalised by the 2-D DFT: ``||C|| = max_{w} sigma_max(K_hat(w))`` with ``K_hat(w)`` the
    ``(out, in)`` matrix of the kernel's DFT at frequency ``w`` on that grid (Sedghi, Gupta and Long 2019,
    "The singular values of convolutional layers", Thm. 6). Computed with :func:`torch.fft.fft2` and
    :func:`torch.linalg.matrix_norm` (``ord=2``). ``nn.Conv2d`` only, with ``padding_mode="zeros"``,
    ``dilation=1`` and ``groups=1`` (else ``ValueError``; use :func:`operator_norm`).
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv_norm_bound takes an nn.Conv2d, got {type(conv).__name__}")
    c, h, w = _shape(input_shape) if len(input_shape) == 3 else (None, None, None)
    if c is None or c != conv.in_channels:
        raise ValueError(f"conv_norm_bound needs input_shape (in_channels={conv.in_channels}, H, W), got {input_shape!r}")
    if conv.padding_mode != "zeros" or conv.dilation != (1, 1) or conv.groups != 1 or isinstance(conv.padding, str):
        raise ValueError("conv_norm_bound supports zero padding given as numbers, dilation 1 and groups 1 only, got "
                         f"padding_mode={conv.padding_mode!r}, padding={conv.padding!r}, dilation={conv.dilation}, "
                         f"groups={conv.groups}")
    weight = conv.weight.detach().cpu().double()
    kh, kw = weight.shape[-2:]
    m = (max(h + 2 * conv.padding[0], kh), max(w + 2 * conv.padding[1], kw))
    spec = torch.fft.fft2(weight, s=m)  # (out, in, M_h, M_w)
    return float(torch.linalg.matrix_norm(spec.permute(2, 3, 0, 1), ord=2).max())


def _fft_start(conv: nn.Conv2d, input_shape) -> torch.Tensor:
    """The real plane wave ``Re(v exp(2 pi i (f_h i / M_h + f_w j / M_w)))`` on ``input_shape``, with ``f`` the
    frequency where the circular convolution of :func:`conv_norm_bound` has its largest singular value and ``v``
    that matrix's top right singular vector: a start for :func:`operator_norm` near the top singular vector. (The
    real part holds the wave at ``f`` and at ``-f``, so the convolution-or-correlation sign does not matter.)"""
    c, h, w = input_shape
    weight = conv.weight.detach().cpu().double()
    m = (max(h + 2 * conv.padding[0], weight.shape[-2]), max(w + 2 * conv.padding[1], weight.shape[-1]))
    spec = torch.fft.fft2(weight, s=m).permute(2, 3, 0, 1)  # (M_h, M_w, out, in)
    top = torch.linalg.matrix_norm(spec, ord=2)
    fh, fw = divmod(int(top.argmax()), m[1])
    v = torch.linalg.svd(spec[fh, fw])[2][0].conj()  # (in,)
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    phase = torch.exp(2j * math.pi * (fh * i / m[0] + fw * j / m[1]))
    return (v[:, None, None] * phase[None]).real[None]


def _diagonal_scale(layer: nn.Module) -> float:
    from symact.models import Normalize

    if isinstance(layer, Normalize):
        return float((1.0 / layer.std.double()).abs().max())
    if layer.training:
        raise ValueError(f"{type(layer).__name__} is in training mode (it normalises by the batch, not a fixed "
                         "scale): call model.eval() first")
    if layer.running_var is None:
        raise ValueError(f"{type(layer).__name__} without running statistics (track_running_stats=False) has no "
                         "fixed scale")
    scale = 1.0 / torch.sqrt(layer.running_var.double() + layer.eps)
    if layer.weight is not None:
        scale = scale * layer.weight.detach().double()
    return float(scale.abs().max())


# --------------------------------------------------------------------------------------------- activations


def activation_lipschitz(module: nn.Module) -> float:
    """The exact L2 Lipschitz constant of an activation layer (see the module docstring); TypeError otherwise."""
    from symact.activations.groupsort import GroupSort
    from symact.activations.kaf import KAF

    if isinstance(module, (nn.ReLU, nn.Tanh, nn.Softplus, nn.Identity, nn.Hardtanh, GroupSort)):
        return 1.0
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(float(module.negative_slope)))
    if isinstance(module, nn.ELU):
        return max(1.0, float(module.alpha))
    if isinstance(module, nn.Sigmoid):
        return 0.25
    if isinstance(module, KAF):
        return float(module.lipschitz().max)
    raise TypeError(f"no exact Lipschitz constant for the activation {type(module).__name__}; supported: ReLU, "
                    "LeakyReLU, ELU, Tanh, Sigmoid, Softplus, Hardtanh, Identity, GroupSort/MaxMin, KAF")


# --------------------------------------------------------------------------------------------- one layer


def layer_lipschitz(layer: nn.Module, input_shape, conv: str = "operator", iters: int = 100) -> tuple[float, str]:
    """``(constant, method)``: the L2 Lipschitz constant of one layer on inputs of ``input_shape``.

    ``method`` says how it was found: ``"operator"`` (:func:`operator_norm`), ``"fft"`` (:func:`conv_norm_bound`),
    ``"svd"`` (a dense layer, exact), ``"diagonal"``, ``"pool"``, ``"exact"`` (activations), ``"identity"``.
    ``conv``: ``"operator"`` or ``"fft"`` for convolutions (``"fft"`` falls back to ``"operator"`` where
    :func:`conv_norm_bound` does not apply, and says so in ``method``). A ``Conv2d``'s ``"operator"`` value is
    ``iters`` steps of power iteration from :func:`_fft_start` (within about ``1e-3`` relative after 50 steps,
    ``1e-4`` after 200, on this chapter's layers, always from below); other affine layers use Lanczos.
    """
    from symact.models import Normalize

    if conv not in ("operator", "fft"):
        raise ValueError(f"conv must be 'operator' or 'fft', got {conv!r}")
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2)), "svd"
    if isinstance(layer, nn.Conv2d):
        try:
            bound = conv_norm_bound(layer, input_shape)
        except ValueError:
            return operator_norm(layer, input_shape, iters=iters), "operator (no fft bound)"
        if conv == "fft":
            return bound, "fft"
        return operator_norm(layer, input_shape, method="power", iters=iters, tol=1e-9,
                             start=_fft_start(layer, input_shape)), "operator"
    if isinstance(layer, _LINEAR):
        return operator_norm(layer, input_shape, iters=iters), "operator"
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, Normalize)):
        return _diagonal_scale(layer), "diagonal"
    if isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        dim = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(layer)]
        k = (layer.kernel_size,) * dim if isinstance(layer.kernel_size, int) else tuple(layer.kernel_size)
        s = (layer.stride,) * dim if isinstance(layer.stride, int) else tuple(layer.stride or k)
        d = (layer.dilation,) * dim if isinstance(layer.dilation, int) else tuple(layer.dilation)
        span = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
        return float(math.sqrt(math.prod(math.ceil(sp / ss) for sp, ss in zip(span, s)))), "pool"
    if isinstance(layer, (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)):
        return 1.0, "identity"
    try:
        return activation_lipschitz(layer), "exact"
    except TypeError:
        pass
    raise TypeError(f"no Lipschitz constant for the layer {type(layer).__name__}; supported: Conv1d/2d/3d, Linear, "
                    "AvgPool, AdaptiveAvgPool, MaxPool, BatchNorm (eval), Normalize, Dropout (eval), Flatten, Identity "
                    "and the activations of activation_lipschitz (ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Softplus, "
                    "GroupSort/MaxMin, KAF)")


# --------------------------------------------------------------------------------------------- the network


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of an :class:`torch.nn.Sequential` (nested ones expanded), in forward order; TypeError for
    any other module (give :func:`lipschitz_bound` its layers explicitly)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"{type(model).__name__} is not an nn.Sequential: pass layers=[...] (the modules whose "
                        "composition is its forward) to lipschitz_bound")
    out: list[nn.Module] = []
    for m in model:
        out += sequential_layers(m) if isinstance(m, nn.Sequential) else [m]
    return out


@dataclass(frozen=True)
class LayerConstant:
    """One layer's factor of :class:`NetworkBound`: its index, type name, input shape, constant and method."""

    index: int
    layer: str
    input_shape: tuple[int, ...]
    constant: float
    method: str


@dataclass(frozen=True)
class NetworkBound:
    """``bound``: the product of the per-layer constants ``layers`` (an upper bound on the network's L2 Lipschitz
    constant, see the module docstring); :meth:`table` as a DataFrame."""

    bound: float
    layers: tuple[LayerConstant, ...]

    def table(self):
        import pandas as pd

        return pd.DataFrame([vars(c) for c in self.layers])

    def product(self, kind: str) -> float:
        """The product of the constants of the linear layers (``"linear"``: power/fft/svd/diagonal/pool) or of
        the activations (``"activation"``)."""
        if kind not in ("linear", "activation"):
            raise ValueError(f"kind must be 'linear' or 'activation', got {kind!r}")
        sel = [c.constant for c in self.layers if (c.method == "exact") == (kind == "activation")]
        return float(np.prod(sel)) if sel else 1.0


def lipschitz_bound(model: nn.Module, input_shape, layers: Sequence[nn.Module] | None = None, conv: str = "operator",
                    iters: int = 100, check: bool = True) -> NetworkBound:
    """An upper bound on the L2 Lipschitz constant of a sequential network: the product of its layers' constants.

    Args:
        model: the network (put in eval mode for the computation, its mode restored).
        input_shape: one input's shape without the batch dimension, e.g. ``(3, 32, 32)``.
        layers: the modules whose composition, in order, is ``model``'s forward (default
            :func:`sequential_layers`); with ``check``, a random input is sent through both and they must agree,
            else ``ValueError`` (a residual or otherwise non-sequential forward has no product bound).
        conv: ``"operator"`` (each convolution's operator norm, :func:`operator_norm`) or ``"fft"`` (the rigorous upper
            bound of :func:`conv_norm_bound`).
        iters: the iteration budget of :func:`operator_norm` per layer.

    Returns a :class:`NetworkBound`. It is an upper bound because ``Lip(g o h) <= Lip(g) Lip(h)``; with
    ``conv="operator"`` each convolution's factor is its norm approached from below (:func:`layer_lipschitz`;
    the tests check :func:`operator_norm` against an exact SVD), with ``"fft"`` a bound from above that owes
    nothing to convergence: the two bracket the product of the layers' true norms, and a certificate that must
    hold whatever the convergence uses the ``"fft"`` one (:func:`symact.experiments.kaf_lipschitz.certify`).
    """
    shape = _shape(input_shape)
    layers = sequential_layers(model) if layers is None else list(layers)
    if not layers or not all(isinstance(m, nn.Module) for m in layers):
        raise TypeError("layers must be a non-empty sequence of nn.Module")
    was = model.training
    model.eval()
    try:
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(0)).to(dev)
        consts = []
        with torch.no_grad():
            h = x
            for i, layer in enumerate(layers):
                c, method = layer_lipschitz(layer, tuple(h.shape[1:]), conv, iters)
                consts.append(LayerConstant(i, type(layer).__name__, tuple(h.shape[1:]), float(c), method))
                h = layer(h)
            if check:
                y = model(x)
                if y.shape != h.shape or not torch.allclose(y, h, rtol=1e-4, atol=1e-5):
                    raise ValueError("the composition of the given layers is not the model's forward (a residual or "
                                     "otherwise non-sequential network has no product bound): give layers= in order")
    finally:
        model.train(was)
    return NetworkBound(float(np.prod([c.constant for c in consts])), tuple(consts))


# --------------------------------------------------------------------------------------------- certificates


def certified_radius(logits: torch.Tensor, labels: torch.Tensor, lipschitz: float) -> torch.Tensor:
    """``(z_y - max_{j != y} z_j) / (sqrt(2) L)`` per image: no L2 perturbation of smaller norm changes the
    prediction from ``y`` when ``L`` bounds the logits' L2 Lipschitz constant (Tsuzuku et al. 2018, Prop. 1).
    Negative for a misclassified image. ``logits``: ``(N, K)``, ``K >= 2``; ``labels``: ``(N,)`` in ``[0, K)``."""
    if not (isinstance(lipschitz, (int, float)) and math.isfinite(lipschitz) and lipschitz > 0):
        raise ValueError(f"lipschitz must be a finite number > 0, got {lipschitz!r}")
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, K) with K >= 2, got {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1] or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integers of shape ({logits.shape[0]},), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got {labels.min()} to {labels.max()}")
    z = logits.detach().double()
    true = z.gather(1, labels.long()[:, None])[:, 0]
    other = z.scatter(1, labels.long()[:, None], -math.inf).amax(1)
    return (true - other) / (math.sqrt(2.0) * lipschitz)


def certified_accuracy(radius, eps: float) -> float:
    """The fraction of images whose certified radius exceeds ``eps`` (``>= 0``): certified robust at L2 ``eps``."""
    r = torch.as_tensor(radius, dtype=torch.float64)
    if r.dim() != 1 or r.numel() == 0:
        raise ValueError(f"radius must be a non-empty 1-D array of per-image radii, got shape {tuple(r.shape)}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return float((r > eps).double().mean())


# --------------------------------------------------------------------------------------------- training


def spectral_normalise(model: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every ``nn.Conv*d`` and ``nn.Linear`` of ``model``, in place,
    by :func:`torch.nn.utils.parametrizations.spectral_norm`. For a convolution that normalises the kernel
    reshaped to ``(out, in k k)``, not the convolution's operator norm (see the module docstring): it keeps the
    weights near norm 1 during training; the certificate uses the layers' true norms (:func:`lipschitz_bound`).
    Returns ``model``."""
    from torch.nn.utils.parametrizations import spectral_norm

    found = False
    for name, m in list(model.named_modules()):
        if isinstance(m, (*_CONV, nn.Linear)):
            spectral_norm(m, n_power_iterations=n_power_iterations)
            found = True
    if not found:
        raise ValueError(f"{type(model).__name__} has no Conv or Linear layer to normalise")
    return model


def kaf_layer_surrogate(module: nn.Module, temperature: float = 50.0, step: float = 0.05) -> torch.Tensor:
    """A differentiable surrogate of a KAF layer's Lipschitz constant ``max_c sup_s |f_c'(s)|``.

    ``f_c'(s) = -2 gamma sum_i alpha_ci (s - d_i) exp(-gamma (s - d_i)^2)`` (``kaf-robustness-thesis.txt``
    Sec. 2.4; the chapter's Eq. for ``f'``) on a grid of spacing ``step / sqrt(gamma)`` over
    ``[d_1 - 4/sqrt(gamma), d_D + 4/sqrt(gamma)]``, then ``logsumexp(T |f'|) / T`` over the grid and the
    channels (``T = temperature / max|f'|`` is detached, so the soft maximum is at most ``log(n)/temperature``
    relative above the grid's maximum, ``n`` the number of grid points times channels). The grid maximum is
    within ``(h/2)^2/2 sup|f'''|`` of the exact constant of :func:`symact.theory_kaf.kaf_lipschitz` (its own
    margin), and outside the interval ``|f'|`` is below ``8 sqrt(gamma) e^-16 sum|alpha|``. Why this and not
    the closed-form bound (:func:`symact.theory_kaf.kaf_lipschitz_bounds`): that bound exceeds the exact
    constant by a factor that grows with the coefficients' oscillation (the chapter measures it), so a penalty
    on it flattens KAFs whose real slope is already small; the soft maximum follows the constant that enters the
    certificate, and spreads its gradient over the channels near the maximum instead of one channel a step.
    """
    from symact.activations.kaf import KAF, dictionary

    if not isinstance(module, KAF):
        raise TypeError(f"kaf_layer_surrogate takes a symact KAF module, got {type(module).__name__}")
    if not (temperature > 0 and step > 0):
        raise ValueError(f"temperature and step must be > 0, got {temperature!r} and {step!r}")
    d, g = dictionary(module.D, module.boundary, module.bandwidth)
    r = math.sqrt(g)
    s = np.arange(d.min() - 4 / r, d.max() + 4 / r + step / r, step / r)
    t = s[:, None] - d[None, :]
    basis = torch.as_tensor(-2 * g * t * np.exp(-g * t * t), dtype=module.alpha.dtype,
                            device=module.alpha.device)  # (grid, D)
    slope = (module.alpha.reshape(-1, module.D) @ basis.T).abs().flatten()
    scale = temperature / slope.detach().max().clamp_min(1e-12)
    return torch.logsumexp(scale * slope, 0) / scale


def kaf_lipschitz_penalty(model: nn.Module, target: float = 1.0, temperature: float = 50.0) -> torch.Tensor:
    """``sum_l max(0, log(S_l / target))`` over the KAF layers ``l`` of ``model``, ``S_l`` the soft maximum of
    :func:`kaf_layer_surrogate`: the log of the activations' factor of :func:`lipschitz_bound` above ``target``
    per layer (the log because the bound is a product over layers). Zero without KAF layers."""
    from symact.activations.kaf import KAF

    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"target must be a finite number > 0, got {target!r}")
    terms = [torch.relu(torch.log(kaf_layer_surrogate(m, temperature) / target)) for m in model.modules()
             if isinstance(m, KAF)]
    if not terms:
        p = next(model.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else "cpu")
    return torch.stack(terms).sum()
