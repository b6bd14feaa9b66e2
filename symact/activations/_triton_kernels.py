"""The Triton kernels of the fused activations (internal; launched by :mod:`._triton`).

Imported only when a kernel is first needed. Under ``TRITON_INTERPRET=1`` (set
before this module is imported) ``@triton.jit`` gives Triton's interpreter,
which runs the same kernels on CPU tensors: the tests do that. Since ``import
torch`` imports Triton, its own ``@triton.jit`` helpers (``tl.sum``,
``tl.zeros``, ``tl.cdiv``) are compiled or interpreted as they were then; the
kernels here call only Triton's builtins and their own helpers, so that they
run interpreted whenever this module was imported with ``TRITON_INTERPRET=1``.

Every kernel works on the input viewed as a dense row-major ``(R, W)`` matrix,
one ``(BR, BW)`` tile per program, in float32 whatever the storage dtype
(float32, float16, bfloat16). The channel of an element, which selects its
parameters in the ``(C, NP)`` float32 table, is its column (``BY_COL``: the
channels are the fastest dimension, as in a channels-last or an ``(N, C)``
input, ``W == C``) or its row modulo ``C`` (a channel-first ``(N, C, P)``
input as ``(N C, P)``; ``C = 1``, ``R = 1``: shared parameters, the input in
memory order). Forward reads the input once and writes the output; backward
reads the input and the incoming gradient once, recomputes what it needs,
writes the input's gradient and, per tile, one partial sum per channel of the
tile and parameter into ``part`` (``(programs along the other axis, W or R,
NP)``), which :mod:`._triton` sums in one small second pass. Padding lanes load
``x = 0``, ``g = 0``: every parameter term carries ``g``, so they add nothing.

The formulas, and what they give at +-inf and NaN, are those of the native CPU
kernels (``_native.cpp``) and of the torch kernels in ``dome.py``, ``saf.py``,
``apl.py``, ``kaf.py``, ``baselines.py`` and ``pssilu.py``.
"""
from __future__ import annotations

import triton
import triton.language as tl



# ------------------------------------------------------------------ tiles, parameters, partial sums

@triton.jit
def _tile(R, W, BR: tl.constexpr, BW: tl.constexpr):
    pid = tl.program_id(0)
    nwb = (W + BW - 1) // BW
    pr = pid // nwb
    pw = pid - pr * nwb
    rows = pr * BR + tl.arange(0, BR)
    cols = pw * BW + tl.arange(0, BW)
    mask = (rows[:, None] < R) & (cols[None, :] < W)
    offs = rows[:, None].to(tl.int64) * W + cols[None, :]
    return pr, pw, rows, cols, offs, mask


@triton.jit
def _param(p_ptr, j, NP: tl.constexpr, rows, cols, C, BY_COL: tl.constexpr):
    """Parameter ``j`` of every element's channel, broadcastable against the tile."""
    if BY_COL:
        v = tl.load(p_ptr + (cols % C) * NP + j)[None, :]
    else:
        v = tl.load(p_ptr + (rows % C) * NP + j)[:, None]
    return v


@triton.jit
def _sum(v, axis: tl.constexpr):
    # tl.sum is itself a @triton.jit function, compiled or interpreted as triton.language was when torch
    # imported it; tl.reduce is a builtin, and with tl.standard._sum_combine (tl.sum's own combine function)
    # the interpreter sums with numpy
    return tl.reduce(v, axis, tl.standard._sum_combine)


@triton.jit
def _psum(v, part_ptr, j, NP: tl.constexpr, pr, pw, rows, cols, R, W, BY_COL: tl.constexpr):
    """The tile's sums of ``v`` per column (``BY_COL``) or per row, into ``part[program, column or row, j]``."""
    if BY_COL:
        tl.store(part_ptr + (pr.to(tl.int64) * W + cols) * NP + j, _sum(v, 0), mask=cols < W)
    else:
        tl.store(part_ptr + (pw.to(tl.int64) * R + rows) * NP + j, _sum(v, 1), mask=rows < R)


@triton.jit
def _exp(z):
    return tl.exp2(z * 1.4426950408889634)  # exp(z) = 2^(z log2(e))


@triton.jit
def _load(ptr, offs, mask):
    return tl.load(ptr + offs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store(ptr, offs, v, mask):
    tl.store(ptr + offs, v.to(ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------ PDOME family (dome.py)
# y = shift + scale (A - pi B), A = exp(-z1^2), B = exp(-z2^2), z1 = (x - mu)/sigma, z2 = (x + mu)/sigma;
# with f = 2 scale / sigma: dy/dx = f (pi z2 B - z1 A), dy/dmu = f (z1 A + pi z2 B),
# dy/dsigma = f (z1^2 A - pi z2^2 B), dy/dpi = -scale B. Parameters: mu, sigma, pi.

@triton.jit
def pdome_fwd(x_ptr, y_ptr, p_ptr, R, W, C, scale, shift, BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    mu = _param(p_ptr, 0, 3, rows, cols, C, BY_COL)
    inv = 1.0 / _param(p_ptr, 1, 3, rows, cols, C, BY_COL)
    pi = _param(p_ptr, 2, 3, rows, cols, C, BY_COL)
    z1 = (x - mu) * inv
    z2 = (x + mu) * inv
    y = shift + scale * (_exp(-z1 * z1) - pi * _exp(-z2 * z2))
    _store(y_ptr, offs, y, mask)


@triton.jit
def pdome_bwd(x_ptr, g_ptr, dx_ptr, p_ptr, part_ptr, R, W, C, scale, NEED_X: tl.constexpr, NEED_P: tl.constexpr,
              BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    mu = _param(p_ptr, 0, 3, rows, cols, C, BY_COL)
    inv = 1.0 / _param(p_ptr, 1, 3, rows, cols, C, BY_COL)
    pi = _param(p_ptr, 2, 3, rows, cols, C, BY_COL)
    z1 = (x - mu) * inv
    z2 = (x + mu) * inv
    a = z1 * _exp(-z1 * z1)
    b = _exp(-z2 * z2)
    pb = pi * z2 * b
    gf = g * (2.0 * scale) * inv
    if NEED_X:
        _store(dx_ptr, offs, gf * (pb - a), mask)
    if NEED_P:
        _psum(gf * (a + pb), part_ptr, 0, 3, pr, pw, rows, cols, R, W, BY_COL)
        _psum(gf * (z1 * a - z2 * pb), part_ptr, 1, 3, pr, pw, rows, cols, R, W, BY_COL)
        _psum(g * b * -scale, part_ptr, 2, 3, pr, pw, rows, cols, R, W, BY_COL)


# ------------------------------------------------------------------ RBF and mReLU (saf.py), no parameters

@triton.jit
def rbf_fwd(x_ptr, y_ptr, R, W, BR: tl.constexpr, BW: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    _store(y_ptr, offs, _exp(-x * x), mask)


@triton.jit
def rbf_bwd(x_ptr, g_ptr, dx_ptr, R, W, BR: tl.constexpr, BW: tl.constexpr):
    # dy/dx = -2 x exp(-x^2): NaN at x = +-inf (inf * 0), as the torch and native kernels
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    _store(dx_ptr, offs, -2.0 * x * _exp(-x * x) * g, mask)


@triton.jit
def mrelu_fwd(x_ptr, y_ptr, R, W, BR: tl.constexpr, BW: tl.constexpr):
    # y = 1 - min(|x|, 1) (saf.txt Eq. 2); NaN stays NaN (NaN > 1 is false)
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    a = tl.abs(x)
    _store(y_ptr, offs, 1.0 - tl.where(a > 1.0, 1.0, a), mask)


@triton.jit
def mrelu_bwd(x_ptr, g_ptr, dx_ptr, R, W, BR: tl.constexpr, BW: tl.constexpr):
    # dy/dx = -sign(x) on -1 < x < 1, else 0 (Eq. 3; 0 at x = 0, +-1, +-inf and NaN)
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    sgn = (x > 0.0).to(tl.float32) - (x < 0.0).to(tl.float32)
    inside = (x > -1.0) & (x < 1.0)
    _store(dx_ptr, offs, -tl.where(inside, sgn, 0.0) * g, mask)


# ------------------------------------------------------------------ hinges: APL and S-APL (apl.py)
# y = sum_s a+_s ReLU(x - b+_s) + sum_s a-_s ReLU(-x - b-_s); parameters a+ (SP), b+ (SP), a- (SN), b- (SN).
# At x = +inf (-inf) the limit of the right (left) side: +-inf by the sign of sum a, else -sum a b.

@triton.jit
def hinge_fwd(x_ptr, y_ptr, p_ptr, R, W, C, SP: tl.constexpr, SN: tl.constexpr, BR: tl.constexpr, BW: tl.constexpr,
              BY_COL: tl.constexpr):
    NP: tl.constexpr = 2 * SP + 2 * SN
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    y = tl.full([BR, BW], 0.0, tl.float32)
    slope_p = 0.0
    const_p = 0.0
    slope_n = 0.0
    const_n = 0.0
    for s in tl.static_range(SP):
        a = _param(p_ptr, s, NP, rows, cols, C, BY_COL)
        b = _param(p_ptr, SP + s, NP, rows, cols, C, BY_COL)
        r = x - b
        y += a * tl.where(r < 0.0, 0.0, r)  # NaN stays NaN
        slope_p += a
        const_p -= a * b
    for s in tl.static_range(SN):
        a = _param(p_ptr, 2 * SP + s, NP, rows, cols, C, BY_COL)
        b = _param(p_ptr, 2 * SP + SN + s, NP, rows, cols, C, BY_COL)
        r = -x - b
        y += a * tl.where(r < 0.0, 0.0, r)
        slope_n += a
        const_n -= a * b
    hi = tl.where(slope_p > 0.0, float("inf"), tl.where(slope_p < 0.0, -float("inf"), const_p))
    lo = tl.where(slope_n > 0.0, float("inf"), tl.where(slope_n < 0.0, -float("inf"), const_n))
    y = tl.where(x == float("inf"), hi, y)
    y = tl.where(x == -float("inf"), lo, y)
    _store(y_ptr, offs, y, mask)


@triton.jit
def hinge_bwd(x_ptr, g_ptr, dx_ptr, p_ptr, part_ptr, R, W, C, SP: tl.constexpr, SN: tl.constexpr,
              NEED_X: tl.constexpr, NEED_A: tl.constexpr, NEED_B: tl.constexpr, BR: tl.constexpr, BW: tl.constexpr,
              BY_COL: tl.constexpr):
    # dy/dx = sum a+ H(x - b+) - sum a- H(-x - b-); dy/da = ReLU(.), dy/db = -a H(.), H(r) = [r > 0]
    NP: tl.constexpr = 2 * SP + 2 * SN
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    slope = tl.full([BR, BW], 0.0, tl.float32)
    for s in tl.static_range(SP):
        a = _param(p_ptr, s, NP, rows, cols, C, BY_COL)
        b = _param(p_ptr, SP + s, NP, rows, cols, C, BY_COL)
        r = x - b
        h = tl.where(r > 0.0, 1.0, 0.0)
        slope += a * h
        if NEED_A:
            _psum(g * tl.where(r < 0.0, 0.0, r), part_ptr, s, NP, pr, pw, rows, cols, R, W, BY_COL)
        if NEED_B:
            _psum(-a * g * h, part_ptr, SP + s, NP, pr, pw, rows, cols, R, W, BY_COL)
    for s in tl.static_range(SN):
        a = _param(p_ptr, 2 * SP + s, NP, rows, cols, C, BY_COL)
        b = _param(p_ptr, 2 * SP + SN + s, NP, rows, cols, C, BY_COL)
        r = -x - b
        h = tl.where(r > 0.0, 1.0, 0.0)
        slope -= a * h
        if NEED_A:
            _psum(g * tl.where(r < 0.0, 0.0, r), part_ptr, 2 * SP + s, NP, pr, pw, rows, cols, R, W, BY_COL)
        if NEED_B:
            _psum(-a * g * h, part_ptr, 2 * SP + SN + s, NP, pr, pw, rows, cols, R, W, BY_COL)
    if NEED_X:
        _store(dx_ptr, offs, slope * g, mask)


# ------------------------------------------------------------------ KAF (kaf.py)
# f(x) = sum_i alpha_i exp(-gamma (x - d_i)^2), d_i = lo + i delta, by the direct formula (D exponentials an
# element, which a GPU's special-function units may well hide behind the memory traffic: not measured yet); df/dx = -2 gamma sum_i alpha_i (x - d_i) t_i with
# the product taken as 0 where t_i = 0 (so the gradient at +-inf is 0), df/dalpha_i = t_i. Any gamma.

@triton.jit
def kaf_fwd(x_ptr, y_ptr, p_ptr, R, W, C, lo, delta, gamma, D: tl.constexpr, BR: tl.constexpr, BW: tl.constexpr,
            BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    y = tl.full([BR, BW], 0.0, tl.float32)
    for i in tl.static_range(D):
        u = x - (lo + i * delta)
        y += _param(p_ptr, i, D, rows, cols, C, BY_COL) * _exp(-gamma * u * u)
    _store(y_ptr, offs, y, mask)


@triton.jit
def kaf_bwd(x_ptr, g_ptr, dx_ptr, p_ptr, part_ptr, R, W, C, lo, delta, gamma, D: tl.constexpr, NEED_X: tl.constexpr,
            NEED_P: tl.constexpr, BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    d = tl.full([BR, BW], 0.0, tl.float32)
    for i in tl.static_range(D):
        u = x - (lo + i * delta)
        t = _exp(-gamma * u * u)
        if NEED_X:
            d += _param(p_ptr, i, D, rows, cols, C, BY_COL) * tl.where(t == 0.0, 0.0, u * t)
        if NEED_P:
            _psum(g * t, part_ptr, i, D, pr, pw, rows, cols, R, W, BY_COL)
    if NEED_X:
        _store(dx_ptr, offs, d * (-2.0 * gamma) * g, mask)


# ------------------------------------------------------------------ Swish (baselines.py)
# y = x s, s = sigmoid(beta x); dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s); at x = +-inf the limit:
# 0 where the sigmoid tends to 0, else x.

@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + _exp(-z))


@triton.jit
def swish_fwd(x_ptr, y_ptr, p_ptr, R, W, C, BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    beta = _param(p_ptr, 0, 1, rows, cols, C, BY_COL)
    sb = (beta > 0.0).to(tl.float32) - (beta < 0.0).to(tl.float32)
    side = ((x > 0.0).to(tl.float32) - (x < 0.0).to(tl.float32)) * sb
    lim = tl.where(side < 0.0, 0.0, x)
    y = tl.where((x == float("inf")) | (x == -float("inf")), lim, x * _sigmoid(beta * x))
    _store(y_ptr, offs, y, mask)


@triton.jit
def swish_bwd(x_ptr, g_ptr, dx_ptr, p_ptr, part_ptr, R, W, C, NEED_X: tl.constexpr, NEED_P: tl.constexpr,
              BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    beta = _param(p_ptr, 0, 1, rows, cols, C, BY_COL)
    s = _sigmoid(beta * x)
    xs1 = (s - s * s) * x
    if NEED_X:
        _store(dx_ptr, offs, (s + xs1 * beta) * g, mask)
    if NEED_P:
        _psum(xs1 * x * g, part_ptr, 0, 1, pr, pw, rows, cols, R, W, BY_COL)


# ------------------------------------------------------------------ PSSiLU (pssilu.py)
# y = x (s - b) c, s = sigmoid(a x), c = 1/(1 - b), a >= 0, 0 <= b < 1; dy/dx = c (s - b + a x s (1 - s)),
# dy/da = c x^2 s (1 - s), dy/db = c^2 x (s - 1); products of x with a factor that is exactly 0 are 0.
# s from e = exp(-|a x|) <= 1: s = r = 1/(1 + e) for x > 0, else e r; s (1 - s) = e r^2; s - 1 = -e r or -r.

@triton.jit
def _times(x, t):
    return tl.where(t == 0.0, 0.0, x * t)


@triton.jit
def _pssilu_parts(x, a, b):
    """PSSiLU's shared pieces: c = 1/(1 - b), e = exp(-|a x|), r = 1/(1 + e), s = sigmoid(a x) (stable)."""
    e = _exp(-tl.abs(x * a))
    r = 1.0 / (1.0 + e)
    return 1.0 / (1.0 - b), e, r, tl.where(x > 0.0, r, e * r)


@triton.jit
def pssilu_fwd(x_ptr, y_ptr, p_ptr, R, W, C, BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    a = _param(p_ptr, 0, 2, rows, cols, C, BY_COL)
    b = _param(p_ptr, 1, 2, rows, cols, C, BY_COL)
    c, e, r, s = _pssilu_parts(x, a, b)
    d = s - b
    y = tl.where(d == 0.0, 0.0, x * d * c)
    # a = 0: the line x (1/2 - b) c (a x is NaN at x = +-inf); a zero slope keeps NaN and gives 0 elsewhere
    slope = (0.5 - b) * c
    line = tl.where(slope == 0.0, tl.where(x != x, x, 0.0), x * slope)
    _store(y_ptr, offs, tl.where(a == 0.0, line, y), mask)


@triton.jit
def pssilu_bwd(x_ptr, g_ptr, dx_ptr, p_ptr, part_ptr, R, W, C, NEED_X: tl.constexpr, NEED_P: tl.constexpr,
               BR: tl.constexpr, BW: tl.constexpr, BY_COL: tl.constexpr):
    pr, pw, rows, cols, offs, mask = _tile(R, W, BR, BW)
    x = _load(x_ptr, offs, mask)
    g = _load(g_ptr, offs, mask)
    a = _param(p_ptr, 0, 2, rows, cols, C, BY_COL)
    b = _param(p_ptr, 1, 2, rows, cols, C, BY_COL)
    c, e, r, s = _pssilu_parts(x, a, b)
    xt = _times(x, e * r * r)
    if NEED_X:
        _store(dx_ptr, offs, (s - b + a * xt) * c * g, mask)
    if NEED_P:
        _psum(_times(x, xt) * g * c, part_ptr, 0, 2, pr, pw, rows, cols, R, W, BY_COL)
        _psum(_times(x, tl.where(x > 0.0, -e * r, -r)) * g * (c * c), part_ptr, 1, 2, pr, pw, rows, cols, R, W, BY_COL)
