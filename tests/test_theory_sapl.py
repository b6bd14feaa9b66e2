"""symact.theory against symmetric-apl.txt Section 3 (Eq. 1, 2, Theorem 3.1)."""
import math

import numpy as np
import pytest
import torch

from symact import theory
from symact.activations.apl import apl, sapl


def zigzag(x, period=0.618, slope=1.0):
    """A slope-Lipschitz triangle wave with zig-zag(0) = 0."""
    u = np.asarray(x) / period
    return slope * period * np.abs(u - np.round(u))


def test_numpy_eq1_eq2_match_the_library():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=2, size=200)
    a_pos, a_neg, b_pos, b_neg = rng.normal(size=4), rng.normal(size=4), rng.uniform(0, 2, 4), rng.uniform(0, 2, 4)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    want = sapl(t(x), t(a_pos), t(b_pos), t(a_neg), t(b_neg)).numpy()
    np.testing.assert_allclose(theory.sapl_value(x, a_pos, b_pos, a_neg, b_neg), want, rtol=1e-12, atol=1e-12)
    a, b = rng.normal(size=5), rng.normal(size=5)
    np.testing.assert_allclose(theory.apl_value(x, a, b), apl(t(x), t(a), t(b)).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("A,B", [(-3.0, 3.0), (-1.0, 2.5), (0.0, 2.0), (-2.0, 0.0)])
def test_sapl_construction_interpolates_on_the_grid(A, B):
    p = theory.sapl_construction(np.sin, A, B, 7)
    nodes = np.concatenate([-p["h_neg"] * np.arange(8), p["h_pos"] * np.arange(8)])
    got = theory.sapl_value(nodes, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"])
    np.testing.assert_allclose(got, np.sin(nodes), atol=1e-13)
    assert p["b_pos"][0] == 0 and p["b_neg"][0] == 0  # a hinge at 0 on each side


@pytest.mark.parametrize("S", [1, 3, 10, 40])
def test_sapl_error_within_the_tight_bounds(S):
    A, B = -3.0, 3.0
    h = 3.0 / S
    for f, lipschitz, second in ((np.sin, 1.0, 1.0), (np.tanh, 1.0, 4 / (3 * math.sqrt(3))), (zigzag, 1.0, None)):
        p = theory.sapl_construction(f, A, B, S)
        err = theory.max_error(f, A, B, lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"]))
        assert err <= lipschitz * h / 2 + 1e-12
        assert err <= 2 * lipschitz * (B - A) / (2 * S)  # the paper's bound, with 2S sub-intervals
        if second is not None:
            assert err <= second * h * h / 8 + 1e-12


def test_square_attains_the_second_derivative_bound():
    """x^2 has f'' = 2: the interpolation error is exactly h^2/4, at the midpoints."""
    S, B = 6, 3.0
    h = B / S
    p = theory.sapl_construction(np.square, -B, B, S)
    mids = h * (np.arange(S) + 0.5)
    err = theory.max_error(np.square, -B, B, lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"],
                                                                         p["b_neg"]), extra=mids)
    assert err == pytest.approx(h * h / 4, rel=1e-12)


def test_abs_is_exact_and_f0_nonzero_fails():
    p = theory.sapl_construction(np.abs, -2, 2, 3)
    fn = lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"])  # noqa: E731
    assert theory.max_error(np.abs, -2, 2, fn) < 1e-14
    for S in (1, 8, 64):
        p = theory.sapl_construction(np.cos, -2, 2, S)
        fn = lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"])  # noqa: E731
        assert theory.max_error(np.cos, -2, 2, fn) >= 1.0 - 1e-15  # |cos(0) - S-APL(0)| = 1 for every S


@pytest.mark.parametrize("f", [np.sin, np.cos, zigzag])
def test_free_hinge_apl_construction_approximates_anything(f):
    """APL with one hinge beyond B interpolates f on [A, B], even with f(0) != 0 (cos)."""
    A, B, K = -3.0, 3.0, 24
    q = theory.apl_construction(f, A, B, K)
    assert q["b"].max() > B
    grid = np.linspace(A, B, K + 1)
    np.testing.assert_allclose(theory.apl_value(grid, q["a"], q["b"]), f(grid), atol=1e-12)
    assert theory.max_error(f, A, B, lambda x: theory.apl_value(x, q["a"], q["b"])) <= q["h"] / 2 + 1e-12


def test_apl_with_hinges_up_to_B_is_stuck_at_B():
    """Every APL whose hinges are <= B has h(B) = max(0, B): the error is at least |f(B) - B|."""
    for S in (2, 8, 32):
        fit = theory.fit_hinges(np.sin, -3, 3, S, "apl")
        assert fit["b"].max() <= 3
        assert fit["max_error"] >= abs(math.sin(3) - 3) - 1e-9


def test_least_squares_fits():
    fixed = theory.fit_hinges(np.sin, -3, 3, 4, "sapl")
    free = theory.fit_hinges(np.sin, -3, 3, 4, "sapl", free=True)
    assert free["max_error"] < 0.2 and np.all(free["b_pos"] >= 0) and np.all(free["b_neg"] >= 0)
    x = np.linspace(-3, 3, 2001)
    rms = lambda fit: np.sqrt(np.mean((fit["fn"](x) - np.sin(x)) ** 2))  # noqa: E731
    assert rms(free) <= rms(fixed) + 1e-12  # started from the fixed solution, least squares cannot get worse
    beyond = theory.fit_hinges(np.cos, -3, 3, 8, "apl", hinges=-3 + 0.75 * (np.arange(8) + 2))
    assert beyond["max_error"] < 0.2 < abs(math.cos(3) - 3)  # a hinge past B frees APL


@pytest.mark.parametrize("call,match", [
    (lambda: theory.sapl_construction(np.sin, 1, 2, 4), "A <= 0 <= B"),
    (lambda: theory.sapl_construction(np.sin, -1, 1, 0), "S must be an integer"),
    (lambda: theory.sapl_construction(np.sin, 2, -2, 4), "A < B"),
    (lambda: theory.sapl_construction(np.sin, -np.inf, 1, 4), "finite"),
    (lambda: theory.apl_construction(np.sin, -1, 1, 2.5), "K must be an integer"),
    (lambda: theory.fit_hinges(np.sin, -1, 1, 3, "relu"), "kind must be"),
    (lambda: theory.fit_hinges(np.sin, -1, 1, 2, "sapl", hinges=[-1, 0]), "hinges must be 2"),
    (lambda: theory.sapl_construction(lambda x: 0.0, -1, 1, 4), "same shape"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    with pytest.raises(TypeError, match="callable"):
        theory.sapl_construction(3.0, -1, 1, 4)
