"""Every registered activation: gradients (gradcheck), shapes, dtypes, devices, parameters, state dicts and bad input."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.func import functional_call

from symact.activations import create, names

CHANNELS = 6  # even, and divisible by Maxout's default k = 2
KWARGS = {"mdome": {"n": 4}, "kaf2d": {"D": 5}}  # MDOME maps (N, 6, ...) to (N, 4, ...); a small 2-D KAF grid
# variants worth their own rows: learnable hinges, per-channel sharing, learnable beta, fixed parameters
VARIANTS = {
    "sapl_learnable_hinges": ("sapl", {"learnable_hinges": True, "per_channel": True}),
    "apl_shared_learnable": ("apl", {"per_channel": False, "learnable_hinges": True}),
    "kaf_shared": ("kaf", {"per_channel_alpha": None}),
    "swish_learnable": ("swish", {"learnable": True}),
    "dome_fixed": ("dome", {"learnable": False}),
    "kaf2d_halving": ("kaf2d", {"keep_channels": False, "D": 5}),
    "maxout_halving": ("maxout", {"keep_channels": False}),
    "mdome_logit1": ("mdome", {"n": 4, "output": "logit1"}),
    "mdome_logit2": ("mdome", {"n": 4, "output": "logit2"}),
    "mdome_raw": ("mdome", {"n": 4, "output": "mdome"}),
    "pssilu_learned_beta": ("pssilu", {"learn_beta": True}),
    "pssilu_layer": ("pssilu", {"sharing": "layer", "learn_beta": True}),
    "groupsort_3": ("groupsort", {"group_size": 3}),
    "groupsort_6": ("groupsort", {"group_size": 6}),
}
ALL = sorted(names()) + sorted(VARIANTS)
PIECEWISE = {"relu", "leaky_relu", "prelu", "mrelu", "apl", "sapl", "sapl_positive", "sapl_negative",
             "sapl_learnable_hinges", "apl_shared_learnable", "maxout", "maxout_halving", "kwta", "groupsort",
             "groupsort_3", "groupsort_6", "maxmin"}
#: activations whose backward is by design not the forward's derivative (a surrogate gradient); each is checked
#: against its surrogate's derivative in its own test (relu_softplus_grad: tests/test_kaf_adaptive.py)
SURROGATE_GRAD = {"relu_softplus_grad"}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make(name: str, dtype=torch.float32) -> torch.nn.Module:
    """The activation with its learnable parameters moved off their (often degenerate) initial values."""
    base, kwargs = VARIANTS.get(name, (name, KWARGS.get(name, {})))
    kwargs = dict(kwargs)
    channels = None if kwargs.pop("per_channel_alpha", 0) is None else CHANNELS
    if channels is None:
        kwargs["per_channel"] = False
    act = create(base, channels=channels, **kwargs)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for pname, p in act.named_parameters():
            if pname.startswith("b_") or pname == "b":  # hinges: keep them apart and, for S-APL, >= 0
                p.add_(0.1 * torch.rand(p.shape, generator=gen))
            elif pname in ("sigma", "mu"):
                p.mul_(1 + 0.2 * torch.rand(p.shape, generator=gen))
            else:
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return act.to(dtype)


def away_from_kinks(x: torch.Tensor, act: torch.nn.Module) -> torch.Tensor:
    """Move inputs at least 1e-3 away from every hinge, so finite differences see one linear piece."""
    kinks = [0.0, 1.0, -1.0]
    for pname, p in [*act.named_buffers(), *act.named_parameters()]:
        if pname.startswith("b"):
            kinks += [v for v in p.detach().flatten().tolist()] + [-v for v in p.detach().flatten().tolist()]
    for k in kinks:
        close = (x - k).abs() < 1e-3
        x = torch.where(close, x + 2e-3, x)
    return x


@pytest.mark.parametrize("name", ALL)
def test_gradcheck_input_and_every_parameter(name):
    if name in SURROGATE_GRAD:
        pytest.skip("a surrogate gradient by design: checked against the surrogate's derivative elsewhere")
    act = make(name, torch.float64)
    gen = torch.Generator().manual_seed(2)
    x = away_from_kinks(1.5 * torch.randn(3, CHANNELS, 2, 2, dtype=torch.float64, generator=gen), act)
    if name in ("kwta", "maxout", "maxout_halving", "groupsort", "groupsort_3", "groupsort_6", "maxmin"):
        # distinct values: no ties in the selection
        x = x + 0.01 * torch.arange(x.numel(), dtype=torch.float64).reshape(x.shape)
    params = dict(act.named_parameters())
    keys = list(params)

    def f(inp, *ps):
        return functional_call(act, {**dict(act.named_buffers()), **dict(zip(keys, ps))}, (inp,))

    inputs = (x.requires_grad_(),) + tuple(p.detach().clone().requires_grad_() for p in params.values())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("device", DEVICES)
def test_any_shape_and_low_precision(name, device):
    act = make(name).to(device)
    gen = torch.Generator().manual_seed(3)
    for shape in [(5, CHANNELS), (4, CHANNELS, 7), (2, CHANNELS, 5, 5), (2, CHANNELS, 3, 2, 2)]:
        x = (2 * torch.randn(shape, generator=gen)).to(device)
        y32 = act(x)
        assert y32.shape[0] == shape[0] and y32.shape[2:] == shape[2:], (name, shape)
        scale = 1 + y32.abs().max()
        for dtype in (torch.float16, torch.bfloat16):
            # torch's PReLU needs its weight in the input's dtype (cast the model); ours take low-precision
            # input with float32 parameters (as under autocast) and compute in float32
            y = (copy.deepcopy(act).to(dtype) if name == "prelu" else act)(x.to(dtype))
            assert y.dtype == dtype, (name, dtype)
            assert not y[torch.isfinite(y32)].isnan().any(), (name, dtype)
            tol = 0.05 if dtype == torch.float16 else 0.1
            assert ((y.float() - y32).abs() <= tol * scale).float().mean() > 0.99, (name, dtype)
        xg = x.clone().requires_grad_()
        (copy.deepcopy(act).to(torch.bfloat16) if name == "prelu" else act)(xg.to(torch.bfloat16)).float().sum().backward()
        assert xg.grad is not None and xg.grad.isfinite().all()


ELEMENTWISE_SHARED = ["dome", "dome1", "dome2", "pdome", "rbf", "mrelu", "swish", "pssilu", "elu", "gelu", "tanh"]


@pytest.mark.parametrize("name", ELEMENTWISE_SHARED)
def test_shared_elementwise_activations_take_any_rank(name):
    act = create(name)
    for shape in [(), (7,), (2, 3, 4, 5, 6)]:
        x = torch.randn(shape)
        y = act(x)
        assert y.shape == x.shape
        torch.testing.assert_close(y.flatten(), act(x.flatten()))


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_registered_and_state_dict_round_trips(name):
    act = make(name)
    x = torch.randn(4, CHANNELS, 3, 3)
    expected = act(x)
    base, kwargs = VARIANTS.get(name, (name, KWARGS.get(name, {})))
    learnable = [n for n, p in act.named_parameters()]
    if base in ("dome", "dome1", "dome2", "pdome", "mdome", "apl", "sapl", "sapl_positive", "sapl_negative", "kaf", "kaf_free",
                "kaf2d", "prelu", "pssilu") and kwargs.get("learnable", True):
        assert learnable, name
    state = act.state_dict()
    kwargs = dict(kwargs)
    channels = None if kwargs.pop("per_channel_alpha", 0) is None else CHANNELS
    if channels is None:
        kwargs["per_channel"] = False
    fresh = create(base, channels=channels, **kwargs)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), expected)
    # every learnable parameter gets a gradient and is seen by an optimiser
    if learnable:
        opt = torch.optim.SGD(act.parameters(), lr=0.1)
        act(x).square().sum().backward()
        for n, p in act.named_parameters():
            if (name, n) == ("mdome_logit2", "sigma"):  # Eq. 15 does not involve sigma
                continue
            assert p.grad is not None and p.grad.isfinite().all(), (name, n)
        opt.step()
        assert not torch.equal(act(x), expected)


@pytest.mark.parametrize("name", ALL)
def test_nan_in_gives_nan_out_without_raising(name):
    act = make(name)
    x = torch.randn(2, CHANNELS, 3, 3)
    x[0, 1, 1, 1] = float("nan")
    y = act(x)
    assert y.isnan().any()
    if name not in ("mdome", "mdome_logit1", "mdome_logit2", "mdome_raw", "kaf2d", "kaf2d_halving", "maxout",
                    "maxout_halving", "kwta", "groupsort", "groupsort_3", "groupsort_6",
                    "maxmin"):  # element-wise: exactly that position
        assert y[0, 1, 1, 1].isnan() and y.isnan().sum() == 1, name


INF = float("inf")
# The limits of the formulas at x = -inf and x = +inf (module defaults). GELU and SiLU are torch's own
# modules, which give NaN at the infinities (documented in baselines.py); they are listed with that
# behaviour so that a change in torch is noticed. GELU at +inf (None: not checked) depends on torch's CPU
# kernel: NaN with AVX-512, +inf with AVX2.
LIMITS = {
    "relu": (0.0, INF), "leaky_relu": (-INF, INF), "prelu": (-INF, INF), "elu": (-1.0, INF),
    "selu": (-1.0507009873554805 * 1.6732632423543772, INF), "tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
    "softplus": (0.0, INF), "gelu": (math.nan, None), "silu": (math.nan, INF), "swish": (0.0, INF),
    "dome": (0.5, 0.5), "dome1": (0.5, 0.5), "dome2": (0.5, 0.5), "pdome": (0.0, 0.0), "rbf": (0.0, 0.0),
    "mrelu": (0.0, 0.0), "kaf": (0.0, 0.0), "kaf_free": (0.0, 0.0), "sapl": (0.0, INF), "sapl_positive": (0.0, INF),
    "sapl_negative": (0.0, INF), "apl": (0.0, INF),  # at initialisation: ReLU
    "pssilu": (INF, INF),  # beta = 0.1 > 0: the negative side tends to -beta x / (1 - beta)
    "groupsort": (-INF, INF), "maxmin": (-INF, INF),  # a group of equal infinities sorts to itself
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_infinities_give_the_formulas_limits(name):
    act = create(name, channels=CHANNELS) if name in ("kaf", "apl", "prelu") else create(name)
    x = torch.zeros(2, CHANNELS)
    x[0], x[1] = -INF, INF
    y = act(x)
    for row, limit in enumerate(LIMITS[name]):
        if limit is None:
            continue
        expected = torch.full((CHANNELS,), limit)
        torch.testing.assert_close(y[row], expected, equal_nan=True, msg=f"{name} at {x[row, 0]}")


def test_infinities_of_trained_piecewise_linear_units():
    from symact.activations.apl import apl, sapl

    x = torch.tensor([-INF, INF])
    a = torch.tensor([0.5, -1.5, 0.0])  # slopes sum to -1
    b = torch.tensor([0.0, 1.0, 2.0])
    assert sapl(x, a, b, a, b).tolist() == [-INF, -INF]
    z = torch.tensor([1.0, -1.0, 0.0])  # slopes sum to 0: the limit is the constant -sum(a b) = 1
    assert sapl(x, z, b, z, b).tolist() == [1.0, 1.0]
    assert apl(x, z, b).tolist() == [-1.0, INF]  # APL: +sum(a b) at -inf
    assert apl(x, a, b).tolist() == [-INF, INF]
    from symact.activations.baselines import swish

    assert swish(x, -0.5).tolist() == [-INF, 0.0]
    from symact.activations.kaf import kaf

    assert kaf(torch.tensor([-INF, INF, -1e30, 1e30, 40.0]), torch.randn(20)).tolist() == [0.0] * 5


def test_mdome_limit_is_uniform():
    act = create("mdome", n=4)
    y = act(torch.tensor([[INF, 0.0, 0.0], [0.0, -INF, 1.0]]))
    torch.testing.assert_close(y, torch.full((2, 4), 0.25))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", ALL)
def test_cuda_matches_cpu(name):
    act = make(name)
    x = torch.randn(4, CHANNELS, 5, 5)
    expected = act(x)
    torch.testing.assert_close(act.cuda()(x.cuda()).cpu(), expected, atol=1e-5, rtol=1e-4)


def test_limits_leave_finite_inputs_alone():
    """Off the CPU the fused path applies ``limits`` to every block (no host sync), so on finite
    inputs it must return the formula's values unchanged."""
    from symact.activations.apl import _HingeKernel
    from symact.activations.baselines import _SwishKernel

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5)
    y = torch.randn(2, 3, 5)
    hinge_params = [torch.rand(4, 1, 3, 1), torch.rand(4, 1, 3, 1), torch.rand(4, 1, 3, 1), torch.rand(4, 1, 3, 1)]
    assert torch.equal(_HingeKernel.limits(x, y, *hinge_params), y)
    assert torch.equal(_SwishKernel.limits(x, y, torch.tensor(0.7)), y)
