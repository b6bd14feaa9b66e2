"""PSSiLU (Dai et al. 2021) and GroupSort / MaxMin (Anil et al. 2019) against their definitions and properties.

The generic tests of every registered activation (gradcheck, dtypes, state dicts, NaN, limits) are in
test_activations_generic.py; here: the formulas (NumPy, float64), RobustBench's parametrisation, parameter
sharing, the limits at large inputs, the Lipschitz and gradient-norm properties, the native kernels against the
torch paths, and bad input.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from symact.activations import _native, create, factory, names
from symact.activations.groupsort import GroupSort, MaxMin, groupsort, maxmin
from symact.activations.pssilu import ROBUSTBENCH_INIT, PSSiLU, pssilu, pssilu_factory
from symact.models import swap_activations

RNG = np.random.default_rng(0)
INF = float("inf")


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def np_pssilu(x, alpha, beta):
    """Dai et al. 2021 (arXiv:2110.05626), as RobustBench's paf_wide_resnet.py computes it:
    x (sigmoid(|alpha| x) - beta) / (1 - beta)."""
    return x * (1.0 / (1.0 + np.exp(-abs(alpha) * x)) - beta) / (1.0 - beta)


# ----------------------------------------------------------------------------- PSSiLU


def test_registry_creates_the_new_activations_by_name():
    assert {"pssilu", "groupsort", "maxmin"} <= set(names())
    assert isinstance(create("pssilu", channels=4), PSSiLU)
    assert create("groupsort", group_size=4).group_size == 4
    assert isinstance(create("maxmin"), MaxMin) and create("maxmin").group_size == 2


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.1), (-0.7, 0.0), (2.5, 0.5), (0.3, 0.9), (0.0, 0.1)])
def test_pssilu_matches_its_formula(alpha, beta):
    x = np.concatenate([RNG.normal(0, 3, 500), [0.0, 40.0, -40.0, 1e-6]])
    torch.testing.assert_close(pssilu(t64(x), alpha, beta), t64(np_pssilu(x, alpha, beta)))
    torch.testing.assert_close(pssilu(t64(x).float(), alpha, beta), t64(np_pssilu(x, alpha, beta)).float(),
                               rtol=1e-5, atol=1e-5)
    # the modules keep float32 parameters (as torch.nn's), made float64 by .double()
    a32, b32 = float(np.float32(alpha)), float(np.float32(beta))
    m = PSSiLU(alpha=alpha, beta=beta).double()
    torch.testing.assert_close(m(t64(x)), t64(np_pssilu(x, a32, b32)))
    learned = PSSiLU(alpha=alpha, beta=-beta if beta else 0.0, learn_beta=True).double()  # enters as |beta|
    torch.testing.assert_close(learned(t64(x)), t64(np_pssilu(x, a32, b32)))


def test_pssilu_beta_zero_is_swish_and_per_channel_parameters_act_on_dim_1():
    from symact.activations.baselines import swish

    x = t64(RNG.normal(0, 2, (3, 4, 5)))
    torch.testing.assert_close(pssilu(x, 1.7, 0.0), swish(x, 1.7))
    m = PSSiLU(channels=4, learn_beta=True).double()
    alpha, beta = [1.0, -0.5, 2.0, 0.1], [0.0, 0.2, -0.4, 0.6]
    with torch.no_grad():
        m.alpha.copy_(t64(alpha))
        m.beta.copy_(t64(beta))
    y = m(x)
    for c in range(4):
        torch.testing.assert_close(y[:, c], t64(np_pssilu(x[:, c].numpy(), alpha[c], abs(beta[c]))))


def test_pssilu_robustbench_form():
    """RobustBench's Dai2021Parameterizing PSSiLU: alpha = 1, |beta| learned from 1e-8, one pair per network."""
    m = PSSiLU(**ROBUSTBENCH_INIT)
    assert isinstance(m.alpha, nn.Parameter) and isinstance(m.beta, nn.Parameter)
    assert m.alpha.tolist() == [1.0] and m.beta.item() == pytest.approx(1e-8)
    x = t64(RNG.normal(0, 2, 100))
    torch.testing.assert_close(m.double()(x), t64(np_pssilu(x.numpy(), 1.0, 1e-8)))
    assert PSSiLU().beta.item() == pytest.approx(0.1) and not isinstance(PSSiLU().beta, nn.Parameter)
    assert PSSiLU(learn_beta=True).beta.item() == pytest.approx(1e-8)


def _net(make):
    return nn.Sequential(nn.Conv2d(3, 6, 3), make(6), nn.Conv2d(6, 4, 3), make(4), nn.Flatten(), nn.Linear(4, 3),
                         make(3))


def test_pssilu_shared_per_network_is_one_parameter_pair():
    net = _net(pssilu_factory("network", **ROBUSTBENCH_INIT))
    acts = [m for m in net if isinstance(m, PSSiLU)]
    assert len(acts) == 3 and len({id(a) for a in acts}) == 3  # a module per position ...
    assert all(a.alpha is acts[0].alpha and a.beta is acts[0].beta for a in acts)  # ... one pair for all
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for m in (net[0], net[2], net[5])
                                                           for p in m.parameters()) + 2
    # gradients from every position add up in the one pair: equal to the sum of per-position gradients
    x = torch.randn(2, 3, 5, 5)
    net(x).square().sum().backward()
    shared_grad = acts[0].alpha.grad.clone()
    untied = copy.deepcopy(net)
    for i in (1, 3, 6):
        untied[i] = PSSiLU(**ROBUSTBENCH_INIT)
        untied[i].load_state_dict(net[i].state_dict())
    untied.zero_grad()
    untied(x).square().sum().backward()
    torch.testing.assert_close(shared_grad, sum(untied[i].alpha.grad for i in (1, 3, 6)))
    # an optimiser step moves every position; the sharing survives deepcopy, .double() and state dicts
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert all(a.alpha is acts[0].alpha for a in acts)
    twin = copy.deepcopy(net).double()
    tacts = [m for m in twin if isinstance(m, PSSiLU)]
    assert all(a.alpha is tacts[0].alpha for a in tacts) and tacts[0].alpha.dtype == torch.float64
    fresh = _net(pssilu_factory("network", **ROBUSTBENCH_INIT))
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh(x), net(x))
    # two networks from two factories share nothing
    assert fresh[1].alpha is not net[1].alpha


def test_pssilu_per_layer_and_per_channel_sharing():
    per_layer = _net(pssilu_factory("layer", learn_beta=True))
    assert [tuple(m.alpha.shape) for m in per_layer if isinstance(m, PSSiLU)] == [(1,)] * 3
    per_channel = _net(factory("pssilu", learn_beta=True))
    assert [tuple(m.beta.shape) for m in per_channel if isinstance(m, PSSiLU)] == [(6,), (4,), (3,)]
    # swap_activations into a ReLU model, shared per network
    relu = _net(lambda c: nn.ReLU())
    swapped = swap_activations(relu, pssilu_factory("network"))
    assert len({id(p) for p in swapped.parameters()}) == len(list(swapped.parameters()))
    assert sum(isinstance(m, PSSiLU) for m in swapped.modules()) == 3
    shared = PSSiLU(learn_beta=True)
    assert create("pssilu", channels=8, shared=shared).beta is shared.beta


def test_pssilu_limits_at_large_inputs():
    """f(x) - x -> 0 as x -> +inf; f(x)/x -> -beta/(1 - beta) as x -> -inf; alpha = 0: the line x (1/2 - b)/(1 - b)."""
    for beta in (0.0, 0.1, 0.5):
        big = t64([30.0, 60.0, 1e3])
        torch.testing.assert_close(pssilu(big, 1.0, beta), big, rtol=0, atol=1e-10)
        torch.testing.assert_close(pssilu(-big, 1.0, beta) / -big, t64([-beta / (1 - beta)] * 3), rtol=0, atol=1e-10)
        y = pssilu(torch.tensor([-INF, INF]), 1.0, beta)
        assert y.tolist() == [INF if beta > 0 else 0.0, INF]
        line = (0.5 - beta) / (1 - beta)
        assert pssilu(torch.tensor([-INF, INF, 2.0]), 0.0, beta).tolist() == [
            -INF if line > 0 else 0.0, INF if line > 0 else 0.0, pytest.approx(2 * line)]
    # the input gradient at +-inf is the limit of the slope: 1 at +inf, -beta/(1 - beta) at -inf
    for native in (True, False):
        x = torch.tensor([INF, -INF, 0.0], requires_grad=True)
        act = PSSiLU(beta=0.2)
        if not native:
            lib, _native._LIB = _native._LIB, None
        try:
            act(x).sum().backward()
        finally:
            if not native:
                _native._LIB = lib
        torch.testing.assert_close(x.grad, torch.tensor([1.0, -0.25, (0.5 - 0.2) / 0.8]))


def test_pssilu_gradcheck_every_sharing_and_the_functional_form():
    x = (2 * torch.randn(3, 4, 5, 5, dtype=torch.float64)).requires_grad_()
    a = torch.randn(4, dtype=torch.float64, requires_grad=True)
    b = (0.4 * torch.rand(4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(pssilu, (x, a, b))
    assert torch.autograd.gradcheck(lambda x, a, b: pssilu(x, a, b), (x[:, :, 0, 0].detach().requires_grad_(), a, b))
    a1 = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, a: pssilu(x, a, 0.1), (x, a1))


def test_pssilu_bad_input():
    for beta in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="0 <= beta < 1"):
            PSSiLU(beta=beta)
        with pytest.raises(ValueError, match="0 <= beta < 1"):
            pssilu(torch.zeros(3), 1.0, beta)
    with pytest.raises(ValueError, match="sharing must be one of"):
        create("pssilu", sharing="neuron")
    with pytest.raises(ValueError, match="pssilu_factory"):
        create("pssilu", channels=4, sharing="network")
    with pytest.raises(ValueError, match="expected 4 channels"):
        create("pssilu", channels=4)(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        PSSiLU(channels=0)
    with pytest.raises(ValueError, match="leave channels"):
        PSSiLU(channels=3, shared=PSSiLU())
    with pytest.raises(TypeError, match="floating-point"):
        create("pssilu")(torch.arange(4))
    m = PSSiLU(learn_beta=True).double()
    with torch.no_grad():
        m.beta.fill_(-1.5)  # |beta| learned past 1 (unbounded, as RobustBench's): still the formula
    x = t64([-3.0, 0.5, 2.0])
    torch.testing.assert_close(m(x), t64(np_pssilu(x.numpy(), 1.0, 1.5)))


# ----------------------------------------------------------------------------- GroupSort / MaxMin


def np_groupsort(x, g):
    n, c = x.shape[:2]
    return np.sort(x.reshape(n, c // g, g, *x.shape[2:]), axis=2).reshape(x.shape)


@pytest.mark.parametrize("g", [1, 2, 3, 4, 6, 12, 24])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "flat", "odd"])
def test_groupsort_sorts_each_group(g, layout):
    shape = {"nchw": (3, 24, 8, 8), "channels_last": (3, 24, 8, 8), "flat": (5, 24), "odd": (3, 24, 5)}[layout]
    x = RNG.normal(0, 2, shape)
    t = t64(x)
    if layout == "channels_last":
        t = t.contiguous(memory_format=torch.channels_last)
    for dtype in (torch.float64, torch.float32):
        y = groupsort(t.to(dtype), g)
        assert torch.equal(y, t64(np_groupsort(x.astype(np.float32) if dtype == torch.float32 else x, g)).to(dtype))
    assert torch.equal(GroupSort(g)(t), groupsort(t, g))


def test_maxmin_is_groupsort_of_pairs_min_then_max():
    x = t64(RNG.normal(0, 1, (4, 6, 3)))
    y = maxmin(x)
    torch.testing.assert_close(y[:, 0::2], torch.minimum(x[:, 0::2], x[:, 1::2]))
    torch.testing.assert_close(y[:, 1::2], torch.maximum(x[:, 0::2], x[:, 1::2]))
    assert torch.equal(MaxMin()(x), groupsort(x, 2))


@pytest.mark.parametrize("g", [2, 3, 6])
def test_groupsort_jacobian_is_a_permutation_and_preserves_gradient_norms(g):
    """Anil et al. 2019: GroupSort is gradient-norm preserving (its Jacobian is a permutation matrix
    wherever the values of a group are distinct) and so 1-Lipschitz."""
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    for inp in (x, x.unsqueeze(-1).contiguous(memory_format=torch.channels_last)):
        J = torch.autograd.functional.jacobian(lambda t: groupsort(t, g), inp).reshape(inp.numel(), inp.numel())
        assert set(J.unique().tolist()) <= {0.0, 1.0}
        assert (J.sum(0) == 1).all() and (J.sum(1) == 1).all()
        v = torch.randn(inp.numel(), dtype=torch.float64)
        torch.testing.assert_close((J.t() @ v).norm(), v.norm())
    # 1-Lipschitz in l2 and l-infinity, on random pairs
    a, b = torch.randn(500, 6, dtype=torch.float64), torch.randn(500, 6, dtype=torch.float64)
    fa, fb = groupsort(a, g), groupsort(b, g)
    assert ((fa - fb).norm(dim=1) <= (a - b).norm(dim=1) + 1e-12).all()
    assert ((fa - fb).abs().amax(dim=1) <= (a - b).abs().amax(dim=1) + 1e-12).all()
    # the backward pass: the incoming gradient permuted back, norm kept exactly
    xg = torch.randn(4, 6, 5, 5, requires_grad=True)
    v = torch.randn(4, 6, 5, 5)
    groupsort(xg, g).backward(v)
    torch.testing.assert_close(xg.grad.norm(), v.norm())
    assert torch.equal(xg.grad.flatten().sort().values, v.flatten().sort().values)


def _gs_step(x, g, native, monkeypatch):
    with monkeypatch.context() as m:
        if not native:
            m.setattr(_native, "_LIB", None)
        xx = x.detach().clone().requires_grad_()
        y = groupsort(xx, g)
        grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
        y.backward(grad)
        return y.detach(), xx.grad


@pytest.mark.skipif(_native.compiler() is None, reason="no C++ compiler: native kernels unavailable")
@pytest.mark.parametrize("g", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "flat", "odd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_groupsort_native_equals_torch_sort(g, layout, dtype, monkeypatch):
    monkeypatch.delenv("SYMACT_NATIVE", raising=False)
    assert _native.available()
    shape = {"nchw": (3, 48, 9, 9), "channels_last": (3, 48, 9, 9), "flat": (7, 48), "odd": (5, 48, 3)}[layout]
    x = 3 * torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[0, :g] = torch.tensor([INF, -INF] * (g // 2) + [1.0] * (g % 2)).reshape(g, *([1] * (x.dim() - 2)))
    x = x.to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    (ya, da), (yb, db) = _gs_step(x, g, True, monkeypatch), _gs_step(x, g, False, monkeypatch)
    assert ya.dtype == dtype and torch.equal(ya, yb)
    if dtype != torch.bfloat16:  # bfloat16 has ties, and ties may go either way in torch.sort
        assert torch.equal(da, db)
    if layout == "channels_last":
        cl = torch.channels_last
        assert ya.is_contiguous(memory_format=cl) and da.is_contiguous(memory_format=cl)


def test_groupsort_ties_infinities_and_nan():
    x = torch.tensor([[2.0, 2.0, -INF, INF, 1.0, float("nan")]], requires_grad=True)
    y = groupsort(x, 2)
    assert y[0, :4].tolist() == [2.0, 2.0, -INF, INF] and y[0, 4:].isnan().any()
    y.backward(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]))
    # a tie: the gradient is still a permutation of the incoming one
    assert sorted(x.grad[0, :2].tolist()) == [1.0, 2.0] and x.grad[0, 2:4].tolist() == [3.0, 4.0]


def test_groupsort_bad_input():
    with pytest.raises(ValueError, match="divisible by 4, got 6"):
        GroupSort(4)(torch.randn(2, 6, 3))
    with pytest.raises(ValueError, match="divisible by 2"):
        MaxMin()(torch.randn(5))
    with pytest.raises(ValueError, match="group size g >= 1"):
        GroupSort(0)
    with pytest.raises(ValueError, match="group size g >= 1"):
        create("groupsort", group_size=2.5)
    with pytest.raises(TypeError, match="floating-point"):
        MaxMin()(torch.arange(4).reshape(1, 4))


def test_groupsort_large_groups_run_torch_sort():
    x = torch.randn(2, 40, 3, dtype=torch.float64, requires_grad=True)  # g = 20 > the native kernel's 16
    assert torch.equal(groupsort(x, 20), x.unflatten(1, (2, 20)).sort(dim=2).values.flatten(1, 2))
    assert torch.autograd.gradcheck(lambda t: groupsort(t, 20), (x,))
