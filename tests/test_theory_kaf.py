"""The KAF chapter's theory (symact.theory_kaf) and the KAF modules' bandwidth option."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from symact import theory
from symact.activations import create
from symact.activations import kaf as kaf_mod
from symact.activations.kaf import dictionary

BANDWIDTHS = ("kafnets", "thesis")


def dense_max_slope(alpha, d, gamma, points=1_000_000, width=8.0):
    """max |f'| on a grid of ``points`` over [d_min - width/sqrt(gamma), d_max + width/sqrt(gamma)], in chunks."""
    s = np.linspace(d.min() - width / math.sqrt(gamma), d.max() + width / math.sqrt(gamma), points)
    out = np.zeros(alpha.shape[0])
    for chunk in np.array_split(s, 10):
        t = chunk[None, :, None] - d[None, None, :]
        fp = -2 * gamma * (alpha[:, None, :] * t * np.exp(-gamma * t * t)).sum(-1)
        out = np.maximum(out, np.abs(fp).max(axis=1))
    return out


# ----------------------------------------------------------------------------------------- derivative


def test_derivatives_match_finite_differences_and_autograd():
    d, g = dictionary(9, 2.0, "thesis")
    alpha = np.random.default_rng(0).normal(0, 1, size=(2, 9))
    s = np.linspace(-4, 4, 41)
    h = 1e-5
    for order in (1, 2, 3):
        num = (theory.kaf_derivative(s + h, alpha, d, g, order - 1) - theory.kaf_derivative(s - h, alpha, d, g, order - 1)) / (2 * h)
        np.testing.assert_allclose(theory.kaf_derivative(s, alpha, d, g, order), num, rtol=1e-6, atol=1e-6)
    # f itself is the library's KAF, and f' its autograd derivative
    x = torch.tensor(np.tile(s, (1, 2, 1)), requires_grad=True)
    y = kaf_mod.kaf_naive(x, torch.tensor(alpha), 2.0, "thesis")
    np.testing.assert_allclose(y.detach().numpy()[0], theory.kaf_value(s, alpha, d, g), rtol=1e-12, atol=1e-14)
    (grad,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(grad.numpy()[0], theory.kaf_derivative(s, alpha, d, g), rtol=1e-12, atol=1e-14)
    assert theory.kaf_derivative(s, alpha[0], d, g).shape == (41,)


# ----------------------------------------------------------------------------------------- Lipschitz


@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
@pytest.mark.parametrize("seed,D,boundary,scale", [(0, 2, 1.0, 1.0), (1, 3, 3.0, 0.3), (2, 7, 2.0, 1.0),
                                                   (3, 20, 3.0, 0.3), (4, 33, 3.0, 3.0), (5, 64, 4.0, 0.3)])
def test_exact_lipschitz_equals_the_dense_grid_max_and_is_never_below_it(bandwidth, seed, D, boundary, scale):
    d, g = dictionary(D, boundary, bandwidth)
    alpha = np.random.default_rng(seed).normal(0, scale, size=(3, D))
    exact, where = theory.kaf_lipschitz(alpha, d, g, return_argmax=True)
    grid = dense_max_slope(alpha, d, g)
    assert np.all(exact >= grid - 1e-12 * grid)  # never below a value |f'| actually takes
    # a 1e6 grid misses the peak by at most (h/2)^2/2 sup|f'''|: far below 1e-8 relative here
    np.testing.assert_allclose(exact, grid, rtol=1e-8)
    np.testing.assert_allclose(np.abs([theory.kaf_derivative([w], a, d, g)[0] for w, a in zip(where, alpha)]), exact, rtol=1e-12)
    bounds = theory.kaf_lipschitz_bounds(alpha, d, g)
    for name in ("l1", "linf", "l2", "best"):
        assert np.all(bounds[name] >= exact * (1 - 1e-12)), name


def test_lipschitz_of_one_gaussian_is_the_l1_bound_and_scales():
    for g in (0.3, 1.0, 7.0):
        L = theory.kaf_lipschitz([2.0], [1.5], g)
        assert L == pytest.approx(2 * math.sqrt(2 * g / math.e), rel=1e-12)
        assert theory.kaf_lipschitz_bounds([2.0], [1.5], g)["l1"] == pytest.approx(L, rel=1e-12)
    assert theory.kaf_lipschitz(np.zeros(5), np.arange(5.0), 1.0) == 0.0


@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_bounds_hold_for_adversarial_coefficient_patterns(bandwidth):
    """Equal signs (no cancellation: the spacing bounds' worst case), alternating signs, and the ridge fits."""
    for D in (2, 5, 20, 64):
        d, g = dictionary(D, 3.0, bandwidth)
        patterns = np.stack([np.ones(D), (-1.0) ** np.arange(D), np.linspace(-1, 1, D),
                             kaf_mod.kernel_ridge_init("elu", D, 3.0, 1e-4, bandwidth)])
        exact = theory.kaf_lipschitz(patterns, d, g)
        np.testing.assert_allclose(exact, dense_max_slope(patterns, d, g, points=200_001), rtol=1e-6)
        for name, b in theory.kaf_lipschitz_bounds(patterns, d, g).items():
            assert np.all(b >= exact * (1 - 1e-12)), (D, name)
    # for equal coefficients on a long dictionary the spacing bound is close: within its 2U slack
    d, g = dictionary(200, 30.0, "kafnets")
    ones = np.ones(200)
    delta = d[1] - d[0]
    assert theory.kaf_lipschitz_bounds(ones, d, g)["linf"] == pytest.approx(2 / delta + 2 * math.sqrt(2 * g / math.e))


def test_lipschitz_is_exact_even_from_the_coarsest_grid():
    """At step 0.25 kernel widths, cells whose ends could hide a larger extremum are refined: still exact."""
    d, g = dictionary(20, 3.0, "kafnets")
    alpha = np.random.default_rng(7).normal(0, 1.0, size=(6, 20))
    coarse = theory.kaf_lipschitz(alpha, d, g, step=0.25)
    np.testing.assert_allclose(coarse, dense_max_slope(alpha, d, g, points=400_001), rtol=1e-8)
    np.testing.assert_allclose(coarse, theory.kaf_lipschitz(alpha, d, g, step=0.01), rtol=1e-12)


def test_lipschitz_of_a_module_per_channel_and_shared():
    torch.manual_seed(0)
    for bandwidth in BANDWIDTHS:
        m = create("kaf", channels=5, D=20, bandwidth=bandwidth)
        res = theory.lipschitz(m)
        d, g = dictionary(20, 3.0, bandwidth)
        np.testing.assert_allclose(res.per_channel, theory.kaf_lipschitz(m.alpha.detach().double().numpy(), d, g))
        assert res.max == res.per_channel.max() and res.per_channel.shape == (5,)
        # the module's own autograd slope on a grid never exceeds it, and comes close
        s = torch.linspace(-6, 6, 20001, dtype=torch.float64).reshape(1, 1, -1).expand(1, 5, -1).contiguous().requires_grad_()
        (grad,) = torch.autograd.grad(m.double()(s).sum(), s)
        slope = grad.abs().amax(dim=(0, 2)).numpy()
        assert np.all(slope <= res.per_channel * (1 + 1e-12)) and np.all(slope >= res.per_channel * (1 - 1e-4))
        assert np.array_equal(m.lipschitz().per_channel, res.per_channel)
    shared = create("kaf", init="elu")
    assert theory.lipschitz(shared).per_channel.shape == (1,)
    with pytest.raises(TypeError, match="KAF module"):
        theory.lipschitz(torch.nn.ReLU())


# ----------------------------------------------------------------------------------------- gain


def gain_by_quadrature(alpha, d, g):
    def integrand(s):
        return theory.kaf_derivative([s], alpha, d, g)[0] ** 2 * math.exp(-s * s / 2) / math.sqrt(2 * math.pi)
    return integrate.quad(integrand, -np.inf, np.inf, points=None, epsabs=1e-13, epsrel=1e-12, limit=400)[0]


@pytest.mark.parametrize("bandwidth", BANDWIDTHS + (2.5,))
@pytest.mark.parametrize("D,boundary", [(2, 1.0), (7, 2.0), (20, 3.0)])
def test_gain_closed_form_matches_quadrature_and_monte_carlo(bandwidth, D, boundary):
    d, g = dictionary(D, boundary, bandwidth)
    alpha = np.random.default_rng(D).normal(0, 0.5, size=(2, D))
    exact = theory.kaf_gain(alpha, d, g)
    for a, e in zip(alpha, exact):
        assert e == pytest.approx(gain_by_quadrature(a, d, g), rel=1e-8, abs=1e-12)
    mean, se = theory.kaf_gain_monte_carlo(alpha, d, g, samples=200_000, seed=1)
    assert np.all(np.abs(mean - exact) <= 4.5 * se)
    M = theory.kaf_gain_matrix(d, g)
    np.testing.assert_allclose(M, M.T)
    assert np.linalg.eigvalsh(M).min() > -1e-12 * np.abs(M).max()


@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_expected_gain_over_random_coefficients(bandwidth):
    d, g = dictionary(20, 3.0, bandwidth)
    for sigma in (0.1, 0.3, 1.0):
        exact = theory.kaf_expected_gain(sigma, d, g)
        assert exact == pytest.approx(sigma ** 2 * theory.kaf_expected_gain(1.0, d, g))
        mean, se = theory.kaf_expected_gain_monte_carlo(sigma, d, g, samples=200_000, seed=2)
        assert abs(mean - exact) <= 4.5 * se
    # the spread over channels: the standard deviation of alpha^T M alpha over many draws
    alpha = np.random.default_rng(3).normal(0, 0.3, size=(20_000, 20))
    G = theory.kaf_gain(alpha, d, g)
    assert G.mean() == pytest.approx(theory.kaf_expected_gain(0.3, d, g), rel=0.03)
    assert G.std() == pytest.approx(theory.kaf_gain_spread(0.3, d, g), rel=0.05)


def test_output_moments_match_quadrature():
    d, g = dictionary(12, 3.0, "thesis")
    alpha = np.random.default_rng(5).normal(0, 0.5, size=(2, 12))
    mean, second = theory.kaf_output_moments(alpha, d, g)
    for a, m1, m2 in zip(alpha, mean, second):
        for k, ref in ((1, m1), (2, m2)):
            q = integrate.quad(lambda s: theory.kaf_value([s], a, d, g)[0] ** k * math.exp(-s * s / 2) / math.sqrt(2 * math.pi),
                               -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=400)[0]
            assert ref == pytest.approx(q, rel=1e-8, abs=1e-12)
    a = np.random.default_rng(6).normal(0, 0.4, size=(40_000, 12))
    m, m2 = theory.kaf_output_moments(a, d, g)
    assert (m2 - m * m).mean() == pytest.approx(theory.kaf_expected_variance(0.4, d, g), rel=0.03)
    relu = theory.target_moments("relu")
    assert relu["gain"] == pytest.approx(0.5) and relu["second"] == pytest.approx(0.5)
    assert relu["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert theory.target_moments("elu")["gain"] == pytest.approx(theory.target_gain("elu"), rel=1e-9)


def test_target_gains():
    s_elu = integrate.quad(lambda s: math.exp(2 * s) * math.exp(-s * s / 2) / math.sqrt(2 * math.pi), -np.inf, 0)[0]
    assert theory.target_gain("elu") == pytest.approx(0.5 + s_elu, rel=1e-10)
    assert theory.target_gain("relu") == 0.5


# ----------------------------------------------------------------------------------------- kernel ridge conditioning


@pytest.mark.parametrize("c", [1 / 8, 1 / 6, 0.5, 2.0])
def test_kernel_condition_is_bounded_by_the_theta_limit_and_approaches_it(c):
    k = np.arange(-60, 61)
    for w in (0.0, 1.0, math.pi):
        assert theory.theta_symbol(w, c) == pytest.approx(float(np.sum(np.exp(-c * k * k) * np.cos(k * w))), rel=1e-9)
    limit = theory.kernel_condition_limit(c)
    conds = []
    for D in (2, 5, 20, 60, 200):
        points = np.arange(D, dtype=float)  # spacing 1, gamma = c
        lam = np.linalg.eigvalsh(theory.kernel_matrix(points, c))
        assert lam[0] >= theory.theta_symbol(math.pi, c) * (1 - 1e-6) - 1e-15 and lam[-1] <= theory.theta_symbol(0.0, c) * (1 + 1e-12)
        conds.append(theory.kernel_condition(points, c, ridge=1e-3))
        assert conds[-1] <= theory.kernel_condition_limit(c, ridge=1e-3) * (1 + 1e-9)
    assert conds == sorted(conds) and conds[-1] >= 0.9 * theory.kernel_condition_limit(c, ridge=1e-3)
    assert limit == pytest.approx(math.exp(math.pi ** 2 / (4 * c)) / 2, rel=0.02 if c < 1 else 1.0)
    assert theory.kernel_condition(np.arange(40.0), 0.02) == math.inf  # numerically singular: no made-up number


def test_ridge_study_uses_the_library_initialisation():
    rows = theory.ridge_study("elu", [1e-4, 1.0], D=20)
    assert rows[0]["max_abs_alpha"] == pytest.approx(np.abs(kaf_mod.kernel_ridge_init("elu")).max())
    assert rows[0]["max_abs_alpha"] > 10 > rows[1]["max_abs_alpha"]
    assert rows[0]["fit_error"] < 0.03
    for r in rows:
        assert r["lipschitz"] >= r["slope_inside"] - 1e-9
    with pytest.raises(ValueError, match="target"):
        theory.ridge_study("tanh", [1e-4])


@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_ridge_decomposition_rebuilds_the_library_coefficients(bandwidth):
    for target in ("elu", "relu"):
        r = theory.ridge_decomposition(target, 1e-4, 20, 3.0, bandwidth)
        d, g = dictionary(20, 3.0, bandwidth)
        V = np.linalg.eigh(theory.kernel_matrix(d, g))[1]
        np.testing.assert_allclose(V @ r["coef"], r["alpha"], atol=1e-8)
        np.testing.assert_allclose(r["alpha"], kaf_mod.kernel_ridge_init(target, 20, 3.0, 1e-4, bandwidth))
        assert r["sign_changes"][0] == 19 and r["sign_changes"][-1] == 0  # smallest eigenvalue: alternating signs


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call,match", [
    (lambda: theory.kaf_lipschitz([], [], 1.0), "shape"),
    (lambda: theory.kaf_lipschitz(np.zeros((0, 3)), [0, 1, 2], 1.0), "shape"),
    (lambda: theory.kaf_lipschitz([1.0, np.nan], [0, 1], 1.0), "finite"),
    (lambda: theory.kaf_lipschitz([1.0, np.inf], [0, 1], 1.0), "finite"),
    (lambda: theory.kaf_lipschitz([1.0, 2.0], [0, np.nan], 1.0), "finite"),
    (lambda: theory.kaf_lipschitz([1.0, 2.0], [0, 1, 2], 1.0), "D=2"),
    (lambda: theory.kaf_lipschitz([1.0], [0.0], 0.0), "gamma"),
    (lambda: theory.kaf_lipschitz([1.0], [0.0], -1.0), "gamma"),
    (lambda: theory.kaf_lipschitz([1.0], [0.0], float("nan")), "gamma"),
    (lambda: theory.kaf_lipschitz([1.0], [0.0], "wide"), "gamma"),
    (lambda: theory.kaf_lipschitz(np.ones((2, 2, 2)), [0, 1], 1.0), "shape"),
    (lambda: theory.kaf_lipschitz([1.0], [0.0], 1.0, step=0), "step"),
    (lambda: theory.kaf_lipschitz_bounds([], [], 1.0), "shape"),
    (lambda: theory.kaf_gain([1.0], [0.0], 0.0), "gamma"),
    (lambda: theory.kaf_gain([np.nan], [0.0], 1.0), "finite"),
    (lambda: theory.kaf_expected_gain(-1.0, [0.0], 1.0), "sigma"),
    (lambda: theory.kaf_gain_monte_carlo([1.0], [0.0], 1.0, samples=1), "samples"),
    (lambda: theory.kaf_derivative([0.0], [1.0], [0.0], 1.0, order=4), "order"),
    (lambda: theory.kernel_condition([0.0, 1.0], 1.0, ridge=-1), "ridge"),
    (lambda: theory.theta_symbol(0.0, 0.0), "gamma"),
    (lambda: theory.target_gain("tanh"), "target"),
])
def test_bad_input_gives_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------------- bandwidth option of the modules


def test_bandwidth_rules_and_defaults():
    delta = 6 / 19
    assert kaf_mod.bandwidth_gamma(20, 3.0) == pytest.approx(1 / (2 * (2 * delta) ** 2))  # kafnets' reference code
    assert kaf_mod.bandwidth_gamma(20, 3.0, "kafnets") == pytest.approx(1 / (8 * delta ** 2))
    assert kaf_mod.bandwidth_gamma(20, 3.0, "thesis") == pytest.approx(1 / (6 * delta ** 2))
    assert kaf_mod.bandwidth_gamma(20, 3.0, 2.5) == 2.5
    assert dictionary(20, 3.0)[1] == kaf_mod.bandwidth_gamma(20, 3.0, "kafnets")
    m = kaf_mod.KAF(channels=2)  # the default is unchanged: stored results keep their configs
    assert m.bandwidth == "kafnets" and m.gamma == pytest.approx(1 / (8 * delta ** 2)) and "bandwidth" not in repr(m)
    assert kaf_mod.KAF(bandwidth="thesis").gamma == pytest.approx(1 / (6 * delta ** 2))
    assert "thesis" in repr(kaf_mod.KAF(bandwidth="thesis"))
    assert kaf_mod.KAF2D(channels=2).gamma == pytest.approx(1 / (4 * (6 / 9) ** 2))  # kafnets' 2-D rule, D = 10
    assert kaf_mod._kaf_kernel(20, 3.0, 1 / 6).native([]) is None  # the native CPU kernel is kafnets' bandwidth only
    assert kaf_mod._kaf_kernel(20, 3.0).native([]) is not None


@pytest.mark.parametrize("bandwidth", ["thesis", 0.05, 0.8, 3.0, 40.0])
def test_fused_kaf_equals_the_direct_formula_for_every_bandwidth(bandwidth):
    torch.manual_seed(0)
    x = torch.cat([torch.randn(3, 4, 64) * 3, torch.randn(3, 4, 16) * 40], 2)
    x[0, 0, :3] = torch.tensor([float("inf"), -float("inf"), 0.0])
    alpha = torch.randn(4, 20) * 0.5
    ref = kaf_mod.kaf_naive(x.double(), alpha.double(), 3.0, bandwidth)
    torch.testing.assert_close(kaf_mod.kaf(x, alpha, 3.0, bandwidth).double(), ref, atol=3e-6, rtol=1e-5)
    xs = [x.double()[:, :, 3:].clone().requires_grad_() for _ in range(2)]
    als = [alpha.double().clone().requires_grad_() for _ in range(2)]
    g = torch.randn(xs[0].shape, dtype=torch.float64)
    grads = [torch.autograd.grad(f(xi, ai, 3.0, bandwidth), (xi, ai), g) for f, xi, ai in zip((kaf_mod.kaf, kaf_mod.kaf_naive), xs, als)]
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    m = kaf_mod.KAF(channels=4, bandwidth=bandwidth).double()
    xg = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: m(t), (xg,))


def test_kernel_ridge_init_with_the_thesis_bandwidth():
    d, g = dictionary(20, 3.0, "thesis")
    alpha = kaf_mod.kernel_ridge_init("elu", bandwidth="thesis")
    K = theory.kernel_matrix(d, g)
    t = np.where(d > 0, d, np.expm1(np.minimum(d, 0)))
    np.testing.assert_allclose((K + 1e-4 * np.eye(20)) @ alpha, t, atol=1e-10)
    m = kaf_mod.KAF(init="elu", bandwidth="thesis").double()
    s = torch.linspace(-3, 3, 301, dtype=torch.float64)
    assert (m(s) - torch.nn.functional.elu(s)).abs().max() < 0.03


def test_kaf2d_bandwidth():
    x = torch.randn(2, 6, 5, dtype=torch.float64)
    alpha = torch.randn(3, 10, 10, dtype=torch.float64)
    torch.testing.assert_close(kaf_mod.kaf2d(x, alpha, 3.0, 1.7), kaf_mod.kaf2d_naive(x, alpha, 3.0, 1.7))
    assert not torch.allclose(kaf_mod.kaf2d(x, alpha, 3.0, 1.7), kaf_mod.kaf2d(x, alpha))
    with pytest.raises(ValueError, match="2-D KAF"):
        kaf_mod.KAF2D(channels=6, bandwidth="thesis")


@pytest.mark.parametrize("bad", ["wide", "Thesis", 0.0, -1.0, float("nan"), float("inf"), True, None, [1.0]])
def test_bad_bandwidth_gives_a_clear_error(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        kaf_mod.KAF(bandwidth=bad)
    with pytest.raises(ValueError, match="bandwidth"):
        kaf_mod.kaf(torch.randn(3), torch.randn(20), 3.0, bad)
    with pytest.raises(ValueError, match="bandwidth"):
        kaf_mod.kernel_ridge_init("elu", bandwidth=bad)


def test_too_narrow_kernels_are_refused_by_the_fused_kernel_only():
    gamma = 20 / (6 / 19) ** 2  # c = 20 > 16
    with pytest.raises(ValueError, match="fused=False"):
        kaf_mod.kaf(torch.randn(2, 3), torch.randn(20), 3.0, gamma)
    m = kaf_mod.KAF(bandwidth=gamma, fused=False)
    assert torch.isfinite(m(torch.randn(5))).all()
    with pytest.raises(ValueError, match="ridge"):
        kaf_mod.kernel_ridge_init("elu", ridge=-1.0)
