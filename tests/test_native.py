"""The native CPU kernels (_native.cpp) against the torch kernels of _fused: same values, gradients and limits."""
import copy
import warnings

import pytest
import torch

from symact.activations import _native, create
from symact.activations import apl as apl_mod
from symact.activations import kaf as kaf_mod

# Where a compiler exists the kernels must build: test_native_kernels_build fails otherwise, it never skips.
pytestmark = pytest.mark.skipif(_native.compiler() is None, reason="no C++ compiler: native kernels unavailable")


@pytest.fixture(autouse=True)
def _native_on(monkeypatch):
    monkeypatch.delenv("SYMACT_NATIVE", raising=False)


def test_native_kernels_build():
    assert _native.library() is not None, "a C++ compiler is present but the native kernels did not build"

# (registry name, kwargs): every activation with a native kernel, shared and per channel
CASES = [
    ("dome", {}), ("dome2", {}), ("pdome", {}), ("rbf", {}), ("mrelu", {}),
    ("sapl", {}), ("sapl", {"per_channel": True}), ("sapl", {"learnable_hinges": True}),
    ("sapl", {"per_channel": True, "learnable_hinges": True}), ("sapl_negative", {}),
    ("apl", {}), ("apl", {"per_channel": False, "learnable_hinges": True}),
    ("kaf", {}), ("kaf", {"per_channel": False}), ("kaf", {"D": 50}), ("kaf", {"D": 7, "init": "elu"}),
    ("swish", {"beta": 0.2}), ("swish", {"learnable": True}), ("swish", {"beta": -0.5, "learnable": True}),
    ("pssilu", {}), ("pssilu", {"learn_beta": True}), ("pssilu", {"sharing": "layer", "learn_beta": True}),
    ("pssilu", {"sharing": "layer", "beta": 0.0}),
]
CHANNELS = 6


def _build(name, kwargs, dtype):
    kwargs = dict(kwargs)
    per_channel = kwargs.pop("per_channel", None)
    if name == "kaf" and per_channel is False:
        act = create(name, channels=None, **kwargs)
    elif per_channel is None:
        act = create(name, channels=CHANNELS, **kwargs)
    else:
        act = create(name, channels=CHANNELS, per_channel=per_channel, **kwargs)
    act = act.to(dtype)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # move every parameter off its initial value
        for p in act.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return act


def _step(act, x, native, monkeypatch):
    with monkeypatch.context() as m:
        if not native:
            m.setattr(_native, "_LIB", None)
        act = copy.deepcopy(act)
        xx = x.detach().clone().requires_grad_()
        y = act(xx)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
        y.backward(g)
        return y.detach(), xx.grad, [p.grad for p in act.parameters()]


def _assert_same(a, b, dtype, equal_nan=False):
    tol = dict(rtol=1e-4, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    (ya, dxa, ga), (yb, dxb, gb) = a, b
    torch.testing.assert_close(ya, yb, equal_nan=equal_nan, **tol)
    torch.testing.assert_close(dxa, dxb, equal_nan=equal_nan, **tol)
    for u, v in zip(ga, gb):  # parameter gradients sum over every element: compare relative to their size
        scale = max(1.0, v.abs().nan_to_num(0.0, 0.0, 0.0).max().item())
        torch.testing.assert_close(u, v, equal_nan=equal_nan, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "odd", "flat"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_native_equals_torch_kernels(name, kwargs, layout, dtype, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    shape = {"nchw": (3, CHANNELS, 16, 16), "channels_last": (3, CHANNELS, 16, 16), "odd": (5, CHANNELS, 7, 5),
             "flat": (4, CHANNELS)}[layout]
    x = 3 * torch.randn(shape, generator=gen, dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    act = _build(name, kwargs, dtype)
    _assert_same(_step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch), dtype)


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_native_limits_and_nan_equal_torch_kernels(name, kwargs, monkeypatch):
    special = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 88.0, -88.0, 1e-40,
               2.5, -3.0, 40.0, -40.0]
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(special, dtype=dtype).repeat(2, CHANNELS, 2).reshape(2, CHANNELS, 2 * len(special))
        act = _build(name, kwargs, dtype)
        _assert_same(_step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch), dtype, equal_nan=True)


def test_native_exp_accuracy():
    """RBF is exp(-x^2): the vectorised float32 exp stays within 2 ulp of float64, and flushes only below 2^-126."""
    x = torch.linspace(-9.5, 9.5, 200_003)
    y = create("rbf")(x).double()
    ref = torch.exp((-x * x).double())  # the float32 argument the kernel sees, exponentiated in float64
    normal = ref > 2.0 ** -126
    rel = ((y - ref).abs() / ref)[normal]
    assert rel.max().item() < 2.5e-7
    assert (y[~normal] <= 2.0 ** -126).all()


def test_native_gradcheck_per_channel():
    """gradcheck through the native path with per-channel parameters (rows of at least MIN_ROW elements)."""
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(3, 20, dtype=torch.float64, requires_grad=True)
    a_pos, b_pos = torch.rand(3, 4, dtype=torch.float64, requires_grad=True), torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    a_neg, b_neg = torch.rand(3, 4, dtype=torch.float64, requires_grad=True), torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    assert _native.layout(x, [alpha.t().reshape(20, 1, 3, 1)], True) == (3, 16)
    assert torch.autograd.gradcheck(lambda x, a: kaf_mod.kaf(x, a), (x, alpha))
    assert torch.autograd.gradcheck(apl_mod.sapl, (x, a_pos, b_pos, a_neg, b_neg))


def test_native_layout_rules():
    x = torch.randn(2, 4, 8, 8)
    shared, per_channel = [torch.ones(1, 1, 1)], [torch.ones(3, 1, 4, 1)]
    assert _native.layout(x, shared, False) == (1, x.numel())
    assert _native.layout(x.contiguous(memory_format=torch.channels_last), shared, False) == (1, x.numel())
    assert _native.layout(x, per_channel, True) == (4, 64)
    assert _native.layout(x.contiguous(memory_format=torch.channels_last), per_channel, True) is None
    assert _native.layout(torch.randn(2, 4, 3), per_channel, True) is None  # rows shorter than MIN_ROW
    assert _native.layout(x[:, :, ::2], shared, False) is None  # not dense
    assert kaf_mod._kaf_kernel(100, 3.0).native([]) is None  # beyond the native dictionary size


def test_native_half_precision_inputs_match_float32():
    x = torch.randn(2, CHANNELS, 16, 16)
    for name in ("pdome", "kaf", "sapl"):
        act = _build(name, {}, torch.float32)
        ref = act(x)
        for dtype in (torch.float16, torch.bfloat16):
            y = act(x.to(dtype))
            assert y.dtype == dtype and torch.isfinite(y).all()
            torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=2e-2)


def test_native_off_switch_and_compiler_failure(monkeypatch):
    monkeypatch.setenv("SYMACT_NATIVE", "0")
    assert _native.library() is None
    monkeypatch.delenv("SYMACT_NATIVE")
    # a broken compiler: one warning, then the torch kernels give the same values
    monkeypatch.setattr(_native, "_LIB", False)
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setenv("SYMACT_CACHE", "/nonexistent-symact-cache")
    with pytest.warns(RuntimeWarning, match="native CPU activation kernels unavailable"):
        assert _native.library() is None
    x = torch.randn(4, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = create("dome")(x)
    monkeypatch.setattr(_native, "_LIB", False)
    monkeypatch.delenv("CXX")
    monkeypatch.delenv("SYMACT_CACHE")
    torch.testing.assert_close(y, create("dome")(x))


@pytest.mark.parametrize("D", [7, 20, 50])
def test_kaf_limits_at_infinity_in_both_paths(D, monkeypatch):
    """kaf.py: f(+-inf) = 0 and the gradient there is 0, for one or several anchor groups (D < 21 too)."""
    act = create("kaf", channels=CHANNELS, D=D, init="elu")
    x = torch.tensor([float("inf"), -float("inf"), 1e30, -1e30]).repeat(1, CHANNELS, 4)
    for native in (True, False):
        y, dx, (dalpha,) = _step(act, x, native, monkeypatch)
        assert (y == 0).all() and (dx == 0).all() and (dalpha == 0).all()


@pytest.mark.parametrize("flags, lanes", [("flags\t\t: fpu sse2 avx avx2 fma", 8), ("flags : sse2 avx512f avx2", 16),
                                          ("Features\t: fp asimd", 4), ("x86_64", 4)])
def test_lanes_follow_the_vector_width(monkeypatch, flags, lanes):
    monkeypatch.setattr(_native, "_cpu_features", lambda: flags)
    assert _native.lanes() == lanes


def test_native_runs_per_channel_on_channels_last_and_keeps_the_layout(monkeypatch):
    """Per-channel parameters on a channels-last input (symact.train's CNN layout) run the native kernel on a
    channel-first copy; the output and the gradient passed back keep the input's layout (a channel-first
    gradient would send the layers before it down slow paths)."""
    calls, run = [], _native.run
    monkeypatch.setattr(_native, "run", lambda *args: calls.append(1) or run(*args))
    act = _build("apl", {}, torch.float32)
    x = torch.randn(3, CHANNELS, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    h = x * 1.0  # not a leaf: its gradient is what autograd passes back, not re-laid out for a .grad
    grads = []
    h.register_hook(grads.append)
    y = act(h)
    y.backward(torch.randn_like(y))
    cl = torch.channels_last
    assert calls and y.is_contiguous(memory_format=cl) and grads[0].is_contiguous(memory_format=cl)
