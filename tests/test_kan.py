"""Kolmogorov-Arnold layers (symact.kan): the B-spline form against pykan 0.2.8's KANLayer and scipy's B-splines,
the FastKAN form against its formula and, edge by edge, against the library's KAF; gradients, shapes, bad input."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.interpolate
import torch
from torch import nn

from symact.activations.kaf import dictionary, kaf
from symact.kan import FastKANLinear, KANLinear, bspline_basis, kan_grid, rbf_basis

RNG = np.random.default_rng(0)


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# ----------------------------------------------------------------------------- B-spline basis


@pytest.mark.parametrize("G,K,lo,hi", [(5, 3, -1.0, 1.0), (3, 1, 0.0, 2.0), (7, 2, -2.0, 3.0), (4, 4, -1.0, 1.0),
                                      (1, 3, -1.0, 1.0)])
def test_bspline_basis_equals_scipy(G, K, lo, hi):
    """The closed form against scipy.interpolate.BSpline on the same knots (one basis element per identity column)."""
    t = kan_grid(G, K, (lo, hi)).numpy()
    assert len(t) == G + 2 * K + 1
    np.testing.assert_allclose(np.diff(t), (hi - lo) / G)
    x = np.concatenate([RNG.uniform(lo - 2, hi + 2, 2000), t])
    ours = bspline_basis(torch.as_tensor(x), G, K, (lo, hi)).numpy()
    ref = scipy.interpolate.BSpline(t, np.eye(G + K), K, extrapolate=False)(x)  # NaN outside [t_K, t_G+K]
    inside = ~np.isnan(ref).any(axis=1)
    assert inside.sum() > 500
    np.testing.assert_allclose(ours[inside], ref[inside], rtol=0, atol=1e-12)
    # outside the extended grid every basis function is exactly 0; inside it they sum to 1 on [lo, hi]
    assert (ours[(x < t[0]) | (x > t[-1])] == 0).all()
    assert (np.abs(ours[(x == t[0]) | (x == t[-1])]) < 1e-12).all()  # at the end knots: 0 up to rounding
    np.testing.assert_allclose(ours[(x >= lo) & (x <= hi)].sum(1), 1.0, atol=1e-12)


def test_bspline_basis_float32_and_gradient():
    x = torch.linspace(-2.5, 2.5, 1001, dtype=torch.float64)
    b64 = bspline_basis(x)
    b32 = bspline_basis(x.float())
    assert b32.dtype == torch.float32 and b32.shape == (1001, 8)
    torch.testing.assert_close(b32.double(), b64, rtol=0, atol=1e-6)
    xs = (torch.rand(30, dtype=torch.float64) * 5 - 2.5).requires_grad_()
    assert torch.autograd.gradcheck(bspline_basis, (xs,))


# ----------------------------------------------------------------------------- KANLinear against pykan


def _copy_from_pykan(ref) -> KANLinear:
    ours = KANLinear(ref.in_dim, ref.out_dim, grid_size=ref.num, spline_order=ref.k,
                     grid_range=(ref.grid[0, ref.k].item(), ref.grid[0, -ref.k - 1].item()))
    with torch.no_grad():
        for name in ("coef", "scale_base", "scale_sp"):
            getattr(ours, name).copy_(getattr(ref, name))
    return ours


@pytest.mark.parametrize("in_dim,out_dim,num,k,grid_range", [(5, 3, 5, 3, (-1, 1)), (4, 6, 10, 3, (-2, 3)),
                                                           (3, 2, 4, 2, (0, 1)), (784, 4, 5, 3, (-1, 1))])
def test_kanlinear_equals_pykan_kanlayer(in_dim, out_dim, num, k, grid_range, float64_default):
    """Same grid, coefficients and base weights: the same outputs as pykan 0.2.8's KANLayer (kan/KANLayer.py)."""
    pykan = pytest.importorskip("kan.KANLayer", reason="pykan==0.2.8 (the test extra) is not installed")
    torch.manual_seed(0)
    ref = pykan.KANLayer(in_dim=in_dim, out_dim=out_dim, num=num, k=k, grid_range=list(grid_range))
    with torch.no_grad():  # trained-looking parameters, not the near-zero initial coefficients
        ref.coef.normal_()
        ref.scale_base.normal_()
        ref.scale_sp.uniform_(0.5, 1.5)
    ours = _copy_from_pykan(ref)
    torch.testing.assert_close(kan_grid(num, k, grid_range), ref.grid[0])  # the same knots
    lo, hi = grid_range
    x = torch.rand(300, in_dim) * (hi - lo + 4) + lo - 2  # inside, on the extension and outside the grid
    expected = ref(x)[0]
    torch.testing.assert_close(ours(x), expected, rtol=1e-10, atol=1e-10)
    # and the gradients with respect to the input and to every parameter
    xg = x.clone().requires_grad_()
    xr = x.clone().requires_grad_()
    g = torch.randn_like(expected)
    ours(xg).backward(g)
    ref(xr)[0].backward(g)
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-9, atol=1e-9)
    for name in ("coef", "scale_base", "scale_sp"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(ref, name).grad, rtol=1e-9, atol=1e-9)


def test_kanlinear_initialisation_follows_pykan(float64_default):
    pykan = pytest.importorskip("kan.KANLayer", reason="pykan==0.2.8 (the test extra) is not installed")
    torch.manual_seed(0)
    ours = KANLinear(50, 40, grid_size=5)
    ref = pykan.KANLayer(in_dim=50, out_dim=40, num=5, k=3)
    for name in ("coef", "scale_base", "scale_sp"):
        a, b = getattr(ours, name), getattr(ref, name)
        assert a.shape == b.shape, name
        assert a.abs().max().item() == pytest.approx(b.abs().max().item(), rel=0.3), name
        assert a.std().item() == pytest.approx(b.std().item(), rel=0.1, abs=1e-9), name
    # the spline part at initialisation is a least-squares fit of noise of size noise_scale / G at the grid points
    y = torch.einsum("pk,iok->pio", ours.basis(torch.linspace(-1, 1, 6)), ours.coef)
    assert 0.02 < y.abs().max().item() <= 0.5 / 5 / 2 + 1e-9


# ----------------------------------------------------------------------------- FastKAN and the KAF identity


def test_fastkan_matches_its_formula():
    """FastKANLayer (ZiyaoLi/fast-kan, fastkan/fastkan.py): W_sp rbf(LayerNorm(x)) + W_base silu(x) + b."""
    torch.manual_seed(0)
    layer = FastKANLinear(6, 4, grid_min=-2, grid_max=2, num_grids=8).double()
    with torch.no_grad():
        layer.layernorm.weight.normal_()
        layer.layernorm.bias.normal_()
    x = torch.randn(10, 6, dtype=torch.float64)
    z = nn.functional.layer_norm(x, (6,), layer.layernorm.weight, layer.layernorm.bias)
    grid = torch.linspace(-2, 2, 8, dtype=torch.float64)
    h = 4 / 7
    basis = torch.exp(-((z[..., None] - grid) / h) ** 2).reshape(10, 48)
    expected = basis @ layer.spline_weight.t() + nn.functional.silu(x) @ layer.base_weight.t() + layer.base_bias
    torch.testing.assert_close(layer(x), expected)
    assert layer.denominator == pytest.approx(h)
    bare = FastKANLinear(6, 4, use_layernorm=False, use_base_update=False).double()
    torch.testing.assert_close(bare(x), rbf_basis(x, grid, h).reshape(10, 48) @ bare.spline_weight.t())
    assert sum(p.numel() for p in bare.parameters()) == 4 * 6 * 8


@pytest.mark.parametrize("D,L,bandwidth", [(20, 3.0, "kafnets"), (7, 2.0, "kafnets"), (40, 4.0, "kafnets"),
                                         (20, 3.0, "thesis"), (12, 2.0, 0.7)])
def test_one_fastkan_edge_is_a_kaf(D, L, bandwidth):
    """The identity: a Gaussian-RBF KAN edge with the KAF's dictionary, coefficients and bandwidth is that KAF.

    KAF: f(s) = sum_i alpha_i exp(-gamma (s - d_i)^2) (Kafnets; symact.activations.kaf), e.g. with the rule of
    thumb gamma = 1/(2 (2 Delta)^2). FastKAN edge: sum_k w_k exp(-((s - g_k)/h)^2); with g = d, w = alpha and
    h = 1/sqrt(gamma) (2 sqrt(2) Delta for the rule of thumb) the two are the same function.
    """
    d, gamma = dictionary(D, L, bandwidth)
    h = 1 / math.sqrt(gamma)
    if bandwidth == "kafnets":
        assert h == pytest.approx(2 * math.sqrt(2) * (d[1] - d[0]))
    torch.manual_seed(1)
    alpha = torch.randn(D, dtype=torch.float64)
    edge = FastKANLinear(1, 1, grid_min=-L, grid_max=L, num_grids=D, denominator=h, use_layernorm=False,
                         use_base_update=False).double()
    with torch.no_grad():
        edge.spline_weight.copy_(alpha.reshape(1, D))
    s = torch.linspace(-2 * L, 2 * L, 2001, dtype=torch.float64)
    torch.testing.assert_close(edge(s[:, None])[:, 0], kaf(s, alpha, L, bandwidth), rtol=1e-12, atol=1e-12)
    # a whole layer: output j is the sum over inputs i of the KAF with coefficients W[j, i D : (i + 1) D]
    layer = FastKANLinear(5, 3, grid_min=-L, grid_max=L, num_grids=D, denominator=h, use_layernorm=False,
                          use_base_update=False).double()
    x = torch.randn(50, 5, dtype=torch.float64) * L
    W = layer.spline_weight.detach().reshape(3, 5, D)
    # a per-channel KAF whose channels are the inputs, summed over them
    expected = torch.stack([kaf(x, W[j], L, bandwidth).sum(1) for j in range(3)], dim=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- both layers: gradients, shapes, input


@pytest.mark.parametrize("make", [lambda: KANLinear(4, 3, grid_size=4, bias=True),
                                  lambda: KANLinear(4, 3, spline_order=2, base_activation=None),
                                  lambda: FastKANLinear(4, 3, num_grids=5),
                                  lambda: FastKANLinear(4, 3, use_layernorm=False, use_base_update=False)])
def test_gradcheck_input_and_every_parameter(make):
    from torch.func import functional_call

    layer = make().double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    params = dict(layer.named_parameters())
    x = (1.5 * torch.randn(5, 4, dtype=torch.float64)).requires_grad_()

    def f(inp, *ps):
        return functional_call(layer, {**dict(layer.named_buffers()), **dict(zip(params, ps))}, (inp,))

    inputs = (x, *(p.detach().clone().requires_grad_() for p in params.values()))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [KANLinear, FastKANLinear])
def test_shapes_dtypes_and_parameter_counts(cls):
    layer = cls(7, 5)
    for shape in [(7,), (3, 7), (2, 3, 7)]:
        y = layer(torch.randn(shape))
        assert y.shape == (*shape[:-1], 5) and y.dtype == torch.float32
    assert copy.deepcopy(layer).double()(torch.randn(3, 7, dtype=torch.float64)).dtype == torch.float64
    if cls is KANLinear:  # pykan's count: in x out x (G + K) coefficients + 2 in x out scales
        assert sum(p.numel() for p in layer.parameters()) == 7 * 5 * (5 + 3 + 2)
    else:  # in x out x D spline weights, in x out + out base weights, 2 in LayerNorm
        assert sum(p.numel() for p in layer.parameters()) == 7 * 5 * 8 + 7 * 5 + 5 + 2 * 7
    loss = layer(torch.randn(4, 7)).square().sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in layer.parameters())


def test_bad_input():
    with pytest.raises(ValueError, match="expected 4 input features"):
        KANLinear(4, 3)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="expected 4 input features"):
        FastKANLinear(4, 3)(torch.randn(2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        KANLinear(4, 3)(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="grid_size >= 1"):
        KANLinear(4, 3, grid_size=0)
    with pytest.raises(ValueError, match="spline_order >= 1"):
        KANLinear(4, 3, spline_order=0)
    with pytest.raises(ValueError, match="lo < hi"):
        KANLinear(4, 3, grid_range=(1, -1))
    with pytest.raises(ValueError, match="two numbers"):
        KANLinear(4, 3, grid_range=(1,))
    with pytest.raises(ValueError, match="in_features >= 1"):
        KANLinear(0, 3)
    with pytest.raises(ValueError, match="num_grids >= 2"):
        FastKANLinear(4, 3, num_grids=1)
    with pytest.raises(ValueError, match="use_layernorm=False"):
        FastKANLinear(1, 3)
    with pytest.raises(ValueError, match="denominator > 0"):
        FastKANLinear(4, 3, denominator=-1.0)
    with pytest.raises(TypeError, match="base_activation"):
        KANLinear(4, 3, base_activation=3)


@pytest.mark.parametrize("n_in,n_out,D,G,K", [(784, 64, 20, 5, 3), (7, 3, 4, 2, 1)])
def test_layer_parameters_match_the_closed_forms(n_in, n_out, D, G, K):
    from symact.kan import layer_parameters

    p = layer_parameters(n_in, n_out, D=D, grid_size=G, spline_order=K)
    assert p["linear+KAF"] == n_in * n_out + n_out + n_out * D
    assert p["KAN"] == n_in * n_out * (G + K + 2)
    assert p["FastKAN"] == n_in * n_out * (D + 1) + n_out


def test_layer_parameters_bad_input():
    from symact.kan import layer_parameters

    with pytest.raises(ValueError, match="in_features"):
        layer_parameters(0, 3)
    with pytest.raises(ValueError, match="D"):
        layer_parameters(3, 3, D=2.5)
