"""The Triton kernels (symact/activations/_triton_kernels.py) on the CPU, through Triton's interpreter.

No GPU is needed: with ``TRITON_INTERPRET=1`` set before the kernels are imported, ``@triton.jit`` kernels run
on CPU tensors, and adding ``"cpu"`` to ``_triton.DEVICES`` (the device check that sends CUDA tensors to Triton)
sends the Modules' CPU inputs through them. Each case compares the Triton path with the torch kernels of
``_fused`` (values, input and parameter gradients), and with the papers' formulas transcribed in NumPy.
Every launch is checked against the kernel's signature (the interpreter would silently drop an unknown keyword
that the compiler rejects), and ``test_kernels_compile_for_sm90`` compiles every kernel for an H100 (sm_90)
with Triton's own compiler, which needs no GPU either.

Tensors are tiny: the interpreter runs every program of the grid in Python.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton is not installed (it ships with torch's Linux wheels)")

from symact.activations import _native, _triton, create  # noqa: E402
from symact.activations import apl as apl_mod  # noqa: E402
from symact.activations import dome as dome_mod  # noqa: E402
from symact.activations import kaf as kaf_mod  # noqa: E402

# the interpreter computes with numpy, which warns where the formulas meet +-inf and NaN on purpose
pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]
CHANNELS = 6
MODULE = "symact.activations._triton_kernels"


@pytest.fixture(scope="module", autouse=True)
def interpreted_kernels():
    """The kernels module imported under ``TRITON_INTERPRET=1``; afterwards dropped, so that a later CUDA test
    imports it compiled again."""
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    sys.modules.pop(MODULE, None)
    _triton._MOD = importlib.import_module(MODULE)
    from triton.runtime.interpreter import InterpretedFunction

    assert isinstance(_triton._MOD.pdome_fwd, InterpretedFunction)
    yield _triton._MOD
    sys.modules.pop(MODULE, None)
    _triton._MOD = False
    if saved is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = saved


@pytest.fixture(autouse=True)
def strict_launches(monkeypatch, interpreted_kernels):
    """Every launch binds to the kernel's signature exactly (the compiler rejects what the interpreter drops)."""
    from triton.runtime.interpreter import InterpretedFunction

    run = InterpretedFunction.run

    def checked(self, *args, grid, warmup, **kwargs):
        inspect.signature(self.fn).bind(*args, **kwargs)
        return run(self, *args, grid=grid, warmup=warmup, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", checked)
    monkeypatch.delenv("SYMACT_TRITON", raising=False)


# (registry name, kwargs): every activation with a Triton kernel; shared and per channel, fixed and learnable
CASES = [
    ("dome", {}), ("dome1", {"learnable": False}), ("dome2", {}), ("pdome", {}), ("rbf", {}), ("mrelu", {}),
    ("sapl", {}), ("sapl", {"per_channel": True}), ("sapl", {"learnable_hinges": True}),
    ("sapl", {"per_channel": True, "learnable_hinges": True}), ("sapl_positive", {}), ("sapl_negative", {"S": 2}),
    ("apl", {}), ("apl", {"per_channel": False, "learnable_hinges": True}),
    ("kaf", {}), ("kaf", {"per_channel": False}), ("kaf", {"D": 64}), ("kaf", {"D": 7, "init": "elu"}),
    ("kaf", {"bandwidth": "thesis"}), ("kaf", {"D": 9, "bandwidth": 5.0}),
    ("swish", {"beta": 0.2}), ("swish", {"learnable": True}), ("swish", {"beta": -0.5, "learnable": True}),
    ("pssilu", {}), ("pssilu", {"learn_beta": True}), ("pssilu", {"sharing": "layer", "learn_beta": True}),
    ("pssilu", {"sharing": "layer", "beta": 0.0}),
]
IDS = [f"{n}-{k}" for n, k in CASES]


def _build(name, kwargs):
    kwargs = dict(kwargs)
    per_channel = kwargs.pop("per_channel", None)
    if name == "kaf" and per_channel is False:
        act = create(name, channels=None, **kwargs)
    elif per_channel is None:
        act = create(name, channels=CHANNELS, **kwargs)
    else:
        act = create(name, channels=CHANNELS, per_channel=per_channel, **kwargs)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # move every parameter off its initial value
        for p in act.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return act


def _step(act, x, triton_on, monkeypatch):
    """One forward and backward; ``triton_on``: CPU tensors go to the Triton kernels, else to the torch kernels."""
    calls = []
    with monkeypatch.context() as m:
        m.setattr(_native, "_LIB", None)  # the reference is the torch kernels of _fused
        m.setattr(_triton, "DEVICES", ("cuda", "cpu") if triton_on else ("cuda",))
        run = _triton.run
        m.setattr(_triton, "run", lambda *a: calls.append(a[0][0]) or run(*a))
        act = copy.deepcopy(act)
        xx = x.detach().clone().requires_grad_()
        y = act(xx)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
        y.backward(g)
    assert bool(calls) == triton_on, calls
    return y.detach(), xx.grad, [p.grad for p in act.parameters()]


def _assert_same(a, b, dtype, equal_nan=False):
    tol = {torch.float32: dict(rtol=1e-4, atol=2e-5), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2),
           torch.float16: dict(rtol=2e-3, atol=1e-3)}[dtype]
    (ya, dxa, ga), (yb, dxb, gb) = a, b
    assert ya.dtype == yb.dtype == dtype and dxa.dtype == dtype
    torch.testing.assert_close(ya, yb, equal_nan=equal_nan, **tol)
    torch.testing.assert_close(dxa, dxb, equal_nan=equal_nan, **tol)
    for u, v in zip(ga, gb):  # parameter gradients sum over every element: compare relative to their size
        assert (u is None) == (v is None)
        if u is not None:
            scale = max(1.0, v.abs().nan_to_num(0.0, 0.0, 0.0).max().item())
            torch.testing.assert_close(u, v, equal_nan=equal_nan, rtol=1e-3, atol=1e-4 * scale)


SHAPES = {"nchw": (2, CHANNELS, 4, 5), "channels_last": (2, CHANNELS, 3, 3), "odd": (3, CHANNELS, 5),
          "flat": (5, CHANNELS), "strided": (2, 2 * CHANNELS, 3)}


def _input(layout, dtype=torch.float32):
    x = 3 * torch.randn(SHAPES[layout], generator=torch.Generator().manual_seed(0))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(dtype)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "odd", "flat"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_triton_equals_torch_kernels(name, kwargs, layout, monkeypatch):
    act, x = _build(name, kwargs), _input(layout)
    a, b = _step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch)
    _assert_same(a, b, torch.float32)
    if layout == "channels_last":
        assert a[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_triton_half_precision_inputs(name, kwargs, dtype, monkeypatch):
    """float16 and bfloat16 inputs, computed in float32 (as the torch kernels do) and stored in the input's dtype."""
    act, x = _build(name, kwargs), _input("nchw", dtype)
    _assert_same(_step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch), dtype)


SPECIAL = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 88.0, -88.0, 1e-40,
           2.5, -3.0, 40.0, -40.0]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_triton_limits_and_nan_equal_torch_kernels(name, kwargs, monkeypatch):
    x = torch.tensor(SPECIAL).repeat(1, CHANNELS, 1)
    act = _build(name, kwargs)
    _assert_same(_step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch), torch.float32, equal_nan=True)


def test_non_dense_input_is_copied_and_gradients_flow(monkeypatch):
    """A strided view (every other channel) with per-channel parameters runs on a contiguous copy."""
    x = _input("strided")[:, ::2]
    act = _build("sapl", {"per_channel": True, "learnable_hinges": True})
    _assert_same(_step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch), torch.float32)


def test_low_precision_parameters(monkeypatch):
    """A module cast to bfloat16 (parameters too) still runs Triton, in float32, with bfloat16 gradients."""
    act = _build("kaf", {}).to(torch.bfloat16)
    x = _input("nchw", torch.bfloat16)
    a, b = _step(act, x, True, monkeypatch), _step(act, x, False, monkeypatch)
    assert a[2][0].dtype == torch.bfloat16
    _assert_same(a, b, torch.bfloat16)


# ------------------------------------------------------------------ the papers' formulas in NumPy (float64)

def _np_step(name, act, x):
    """Value of the formula and its input gradient (for an incoming gradient of ones), in float64."""
    p = {k: v.detach().double().numpy() for k, v in [*act.named_parameters(), *act.named_buffers()]}
    # per-channel (C, S) parameters against x[..., None] of shape (N, C, H, W, 1)
    p = {k: v.reshape(1, -1, 1, 1, v.shape[1]) if v.ndim == 2 else v for k, v in p.items()}
    if name in ("dome", "pdome"):  # dome.txt Eq. 2 and 3
        mu, sigma, pi = p["mu"], p["sigma"], p.get("pi", 1.0)
        scale, shift = (0.5, 0.5) if name == "dome" else (1.0, 0.0)
        A, B = np.exp(-((x - mu) / sigma) ** 2), np.exp(-((x + mu) / sigma) ** 2)
        y = shift + scale * (A - pi * B)
        dy = scale * (-2 * (x - mu) / sigma ** 2 * A + pi * 2 * (x + mu) / sigma ** 2 * B)
        return y, dy
    if name == "rbf":  # saf.txt Section 3.1
        return np.exp(-x ** 2), -2 * x * np.exp(-x ** 2)
    if name == "mrelu":  # saf.txt Eq. 2 and 3
        y = np.minimum(np.maximum(1 - x, 0), np.maximum(1 + x, 0))
        return y, np.where((0 > x) & (x > -1), 1.0, np.where((1 > x) & (x > 0), -1.0, 0.0))
    if name == "sapl":  # symmetric-apl.txt Eq. 2, per channel (dim 1)
        ap, bp, an, bn = (p[k] for k in ("a_pos", "b_pos", "a_neg", "b_neg"))
        xe = x[..., None]
        y = (ap * np.maximum(0, xe - bp) + an * np.maximum(0, -xe - bn)).sum(-1)
        dy = (ap * (xe > bp) - an * (-xe > bn)).sum(-1)
        return y, dy
    if name == "apl":  # symmetric-apl.txt Eq. 1, per channel
        a, b = p["a"], p["b"]
        xe = x[..., None]
        return np.maximum(0, x) + (a * np.maximum(0, -xe + b)).sum(-1), (x > 0) - (a * (-xe + b > 0)).sum(-1)
    if name == "kaf":  # Kafnets: sum_i alpha_i exp(-gamma (x - d_i)^2), per channel
        d, gamma = kaf_mod.dictionary(act.D, act.boundary, act.bandwidth)
        alpha = p["alpha"]
        k = np.exp(-gamma * (x[..., None] - d) ** 2)
        return (alpha * k).sum(-1), (alpha * k * -2 * gamma * (x[..., None] - d)).sum(-1)
    raise KeyError(name)


@pytest.mark.parametrize("name,kwargs", [("dome", {}), ("pdome", {}), ("rbf", {}), ("mrelu", {}),
                                         ("sapl", {"per_channel": True}), ("apl", {}), ("kaf", {}),
                                         ("kaf", {"bandwidth": "thesis", "D": 11})])
def test_triton_equals_the_papers_formulas(name, kwargs, monkeypatch):
    act = _build(name, kwargs)
    x = _input("nchw")
    with monkeypatch.context() as m:
        m.setattr(_triton, "DEVICES", ("cuda", "cpu"))
        xx = x.clone().requires_grad_()
        y = act(xx)
        y.sum().backward()
    xs = x.double().numpy()
    ref_y, ref_dy = _np_step(name, act, xs)
    np.testing.assert_allclose(y.detach().double().numpy(), ref_y, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(xx.grad.double().numpy(), ref_dy, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ dispatch

def test_modules_call_triton_on_the_devices_of_the_device_check(monkeypatch):
    """The fake-CUDA check: with "cpu" among the Triton devices, every Module's forward and backward go
    through the Triton kernels; by default (CUDA only) and with SYMACT_TRITON=0 they do not."""
    from triton.runtime.interpreter import InterpretedFunction

    launched = []
    run = InterpretedFunction.run
    monkeypatch.setattr(InterpretedFunction, "run", lambda self, *a, **k: launched.append(self.fn.__name__) or run(self, *a, **k))
    x = _input("nchw")
    assert _triton.DEVICES == ("cuda",)
    for name, kwargs in [("dome", {}), ("dome1", {}), ("dome2", {}), ("pdome", {}), ("rbf", {}), ("mrelu", {}),
                         ("sapl", {}), ("apl", {}), ("kaf", {}), ("swish", {"learnable": True}), ("pssilu", {})]:
        act = _build(name, kwargs)
        act(x.clone().requires_grad_()).sum().backward()  # CPU: native or torch kernels
        assert launched == []
        with monkeypatch.context() as m:
            m.setattr(_triton, "DEVICES", ("cuda", "cpu"))
            act(x.clone().requires_grad_()).sum().backward()
            kernel = {"dome1": "pdome", "dome2": "pdome", "dome": "pdome", "sapl": "hinge", "apl": "hinge"}.get(name, name)
            assert launched == [kernel + "_fwd", kernel + "_bwd"], (name, launched)
            launched.clear()
            m.setenv("SYMACT_TRITON", "0")
            act(x.clone().requires_grad_()).sum().backward()
            assert launched == [], name


def test_what_stays_on_the_torch_kernels(monkeypatch):
    """float64 (inputs or parameters) and KAF dictionaries over MAX_KAF_D points keep the torch kernels."""
    monkeypatch.setattr(_triton, "DEVICES", ("cuda", "cpu"))
    k = dome_mod._PDOME_KERNEL
    p32 = [torch.ones(1, 1, 1)] * 3
    assert _triton.spec(k, torch.zeros(3), p32) == ("pdome", (1.0, 0.0))
    assert _triton.spec(k, torch.zeros(3, dtype=torch.float64), p32) is None
    assert _triton.spec(k, torch.zeros(3), [p.double() for p in p32]) is None
    assert _triton.spec(kaf_mod._kaf_kernel(_triton.MAX_KAF_D + 1, 3.0), torch.zeros(3), [torch.ones(1)]) is None
    assert _triton.spec(apl_mod._HingeKernel, torch.zeros(3, dtype=torch.int32), []) is None
    monkeypatch.setattr(_triton, "DEVICES", ("cuda",))
    assert _triton.spec(k, torch.zeros(3), p32) is None


def test_layouts():
    x = torch.zeros(2, 4, 3, 5)
    pc, shared = [torch.ones(3, 1, 4, 1)], [torch.ones(1, 1, 1)]
    assert _triton.layout(x, shared, False)[1] == (1, 120, 1, False)
    assert _triton.layout(x, pc, True)[1] == (8, 15, 4, False)
    assert _triton.layout(x.contiguous(memory_format=torch.channels_last), pc, True)[1] == (30, 4, 4, True)
    assert _triton.layout(torch.zeros(7, 4), pc, True)[1] == (7, 4, 4, True)
    y, shape = _triton.layout(torch.zeros(2, 8, 3)[:, ::2], pc, True)
    assert y.is_contiguous() and shape == (8, 3, 4, False)


# ------------------------------------------------------------------ the compiled kernels (no GPU needed)

COMPILE = textwrap.dedent("""
    import inspect, triton
    from triton.backends.compiler import GPUTarget
    from symact.activations import _triton_kernels as K

    def compile_one(fn, args):
        sig, const = {}, {}
        for n in inspect.signature(fn.fn).parameters:
            v = args[n]
            if isinstance(v, str):
                sig[n] = v
            elif n.isupper() or v == 1:  # constexprs, and integers equal to 1 (Triton specialises them)
                sig[n], const[n] = "constexpr", v
            else:
                sig[n] = "i32" if isinstance(v, int) else "fp32"
        triton.compile(triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=const),
                       target=GPUTarget("cuda", 90, 32))

    io = dict(x_ptr="*bf16", y_ptr="*bf16", g_ptr="*bf16", dx_ptr="*bf16", p_ptr="*fp32", part_ptr="*fp32")
    shared = dict(R=1, W=4096, C=1, BR=1, BW=1024, BY_COL=False)
    rows = dict(R=384, W=256, C=64, BR=4, BW=256, BY_COL=False)
    cols = dict(R=4096, W=64, C=64, BR=16, BW=64, BY_COL=True)
    kaf = dict(lo=-3.0, delta=0.3, gamma=1.2, D=20)
    on = dict(NEED_X=True, NEED_P=True)
    for f in (K.rbf_fwd, K.rbf_bwd, K.mrelu_fwd, K.mrelu_bwd):
        compile_one(f, {**io, **shared})
    compile_one(K.pdome_fwd, {**io, **shared, "scale": 0.5, "shift": 0.5})
    compile_one(K.pdome_bwd, {**io, **shared, "scale": 0.5, **on})
    for lay in (rows, cols):
        compile_one(K.hinge_fwd, {**io, **lay, "SP": 4, "SN": 4})
        compile_one(K.hinge_bwd, {**io, **lay, "SP": 4, "SN": 4, "NEED_X": True, "NEED_A": True, "NEED_B": True})
    for lay in (shared, cols):
        compile_one(K.kaf_fwd, {**io, **lay, **kaf})
        compile_one(K.kaf_bwd, {**io, **lay, **kaf, **on})
    compile_one(K.swish_fwd, {**io, **shared})
    compile_one(K.swish_bwd, {**io, **shared, **on})
    compile_one(K.pssilu_fwd, {**io, **rows})
    compile_one(K.pssilu_bwd, {**io, **rows, **on})
    print("compiled")
""")


def test_kernels_compile_for_sm90():
    """Triton's compiler turns every kernel into an H100 (sm_90) binary: catches what the interpreter accepts and
    the compiler does not (non-constexpr globals, Python control flow on tensors, ...). Needs no GPU."""
    try:
        from triton.backends.nvidia import compiler  # noqa: F401
    except ImportError as err:
        pytest.skip(f"Triton's NVIDIA backend is not installed: {err}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]
