"""The activation library against the source papers' equations (NumPy transcriptions, float64) and stated properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from symact.activations import apl as apl_mod
from symact.activations import baselines, create, factory, names
from symact.activations import dome as dome_mod
from symact.activations import kaf as kaf_mod
from symact.activations import saf

RNG = np.random.default_rng(0)


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def points(*shape, scale=3.0) -> np.ndarray:
    return RNG.normal(0.0, scale, size=shape)


# ----------------------------------------------------------------------------- DOME (dome.txt)


def np_dome(x, mu, sigma):  # Eq. 2
    return 0.5 * (1 + np.exp(-((x - mu) / sigma) ** 2) - np.exp(-((x + mu) / sigma) ** 2))


def np_pdome(x, mu, sigma, pi):  # Eq. 3
    return np.exp(-((x - mu) / sigma) ** 2) - pi * np.exp(-((x + mu) / sigma) ** 2)


def np_dome_12(x, mu, sigma):  # Eq. 4 and 5 with e_1 = 1, e_2 = -1
    e1, e2 = 1.0, -1.0
    d1 = 0.5 * (1 + np.exp(-((x - mu * e1) / sigma) ** 2) - np.exp(-((x - mu * e2) / sigma) ** 2))
    d2 = 0.5 * (1 + np.exp(-((x - mu * e2) / sigma) ** 2) - np.exp(-((x - mu * e1) / sigma) ** 2))
    return d1, d2


def np_mdome(x, mu, sigma, e):  # Eq. 8 and 9, literally; x: (N, dim), e: (n, dim)
    n = e.shape[0]
    kappa = np.stack([-np.sum(((x - mu * e[l]) / sigma) ** 2, axis=1) for l in range(n)], axis=1)
    out = np.empty_like(kappa)
    for i in range(n):
        others = sum(np.exp(kappa[:, j]) for j in range(n) if j != i)
        out[:, i] = (n - 1) / n * (np.exp(kappa[:, i]) - others / (n - 1) + 1 / (n - 1))
    return out, kappa


def np_mdome_normalized(d):  # Eq. 12 and 13
    tilde = d - np.min(np.minimum(d, 0), axis=1, keepdims=True)
    return tilde / tilde.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("mu,sigma", [(1.0, 1.0), (0.6, 2.5), (2.0, 0.7)])
def test_dome_pdome_dome12_match_equations(mu, sigma):
    x = points(500)
    torch.testing.assert_close(dome_mod.dome(t64(x), mu, sigma), t64(np_dome(x, mu, sigma)))
    for pi in (0.1, 1.0, 0.0, 2.0):
        torch.testing.assert_close(dome_mod.pdome(t64(x), mu, sigma, pi), t64(np_pdome(x, mu, sigma, pi)))
    d1, d2 = np_dome_12(x, mu, sigma)
    torch.testing.assert_close(dome_mod.dome1(t64(x), mu, sigma), t64(d1))
    torch.testing.assert_close(dome_mod.dome2(t64(x), mu, sigma), t64(d2))
    # the modules, unfused formula included
    for fused in (True, False):
        m = dome_mod.PDOME(mu, sigma, 0.3, fused=fused).double()
        torch.testing.assert_close(m(t64(x)), t64(np_pdome(x, mu, sigma, 0.3)))
        for cls, ref in ((dome_mod.DOME, np_dome(x, mu, sigma)), (dome_mod.DOME1, d1), (dome_mod.DOME2, d2)):
            torch.testing.assert_close(cls(mu, sigma, fused=fused).double()(t64(x)), t64(ref))


def test_dome_in_open_unit_interval_and_dome12_sum_to_one():
    x = np.concatenate([points(2000), points(200, scale=50.0), [0.0, 1.0, -1.0]])
    for mu, sigma in ((1.0, 1.0), (3.0, 0.5), (0.2, 4.0)):
        y = dome_mod.dome(t64(x), mu, sigma)
        assert (y > 0).all() and (y < 1).all()  # Eq. 6 / Section 4
        torch.testing.assert_close(dome_mod.dome1(t64(x), mu, sigma) + dome_mod.dome2(t64(x), mu, sigma), torch.ones(len(x), dtype=torch.float64))  # Eq. 7


def test_pdome_in_open_interval_minus_pi_one():
    x = np.concatenate([points(2000), np.linspace(-5, 5, 2001)])
    # (mu/sigma not so large that exp(-(2 mu/sigma)^2) rounds away next to 1 or pi in float64)
    for mu, sigma, pi in ((1.0, 1.0, 0.1), (0.5, 2.0, 1.0), (2.0, 1.5, 3.0), (1.0, 1.0, 1e-3), (0.0, 1.0, 0.5)):
        y = dome_mod.pdome(t64(x), mu, sigma, pi)
        assert (y > -pi).all() and (y < 1).all(), (mu, sigma, pi)
    # the interval is open only for pi > 0: with pi = 0, PDOME(mu) = 1
    assert float(dome_mod.pdome(torch.tensor(1.0, dtype=torch.float64), 1.0, 1.0, 0.0)) == 1.0


def test_simplex_vertices_are_a_regular_simplex_at_unit_distance():
    for n in range(2, 12):
        e = dome_mod.simplex_vertices(n)
        assert e.shape == (n, n - 1)
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0)
        gram = e @ e.T
        np.testing.assert_allclose(gram[~np.eye(n, dtype=bool)], -1.0 / (n - 1), atol=1e-12)
        np.testing.assert_allclose(e.sum(0), 0.0, atol=1e-12)
        padded = dome_mod.simplex_vertices(n, n + 2)
        np.testing.assert_allclose(padded[:, : n - 1], e)
        np.testing.assert_allclose(padded[:, n - 1:], 0.0)
    np.testing.assert_allclose(dome_mod.simplex_vertices(2), [[1.0], [-1.0]])  # e_1 = 1, e_2 = -1 of Eq. 4, 5
    with pytest.raises(ValueError, match="dim >= n-1"):
        dome_mod.simplex_vertices(4, 2)


@pytest.mark.parametrize("n,dim", [(2, 1), (3, 2), (3, 5), (10, 9), (10, 10)])
def test_mdome_matches_equations_8_to_15(n, dim):
    mu, sigma = 1.3, 2.0
    x = points(64, dim, scale=1.5)
    e = dome_mod.simplex_vertices(n, dim)
    d, kappa = np_mdome(x, mu, sigma, e)
    torch.testing.assert_close(dome_mod.mdome(t64(x), mu, sigma, n=n), t64(d))
    torch.testing.assert_close(dome_mod.mdome_normalized(t64(x), mu, sigma, n=n), t64(np_mdome_normalized(d)))
    torch.testing.assert_close(dome_mod.mdome_logit1(t64(x), mu, sigma, n=n), t64(kappa))  # Eq. 14
    torch.testing.assert_close(dome_mod.mdome_logit2(t64(x), mu, n=n), t64(x @ (mu * e).T))  # Eq. 15
    m = dome_mod.MDOME(n, dim, mu=mu, sigma=sigma).double()
    for output, ref in (("normalized", np_mdome_normalized(d)), ("mdome", d), ("logit1", kappa), ("logit2", x @ (mu * e).T)):
        m.output = output
        torch.testing.assert_close(m(t64(x)), t64(ref))


def test_mdome_on_feature_maps_works_along_dim_1():
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    y = dome_mod.MDOME(5, 4).double()(x)
    assert y.shape == (2, 5, 3, 3)
    flat = dome_mod.MDOME(5, 4).double()(x.permute(0, 2, 3, 1).reshape(-1, 4))
    torch.testing.assert_close(y.permute(0, 2, 3, 1).reshape(-1, 5), flat)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50])
def test_mdome_sums_to_one_and_respects_the_lower_bound(n):
    """Eq. 10 and 11, on random points, points near every reference point, and the numerical minimum."""
    mu, sigma = 1.0, 5.0
    e = dome_mod.simplex_vertices(n)
    x = np.concatenate([points(2000, n - 1, scale=2.0), mu * e + points(n, n - 1, scale=0.01), -mu * e / (n - 1)])
    d = dome_mod.mdome(t64(x), mu, sigma, n=n)
    torch.testing.assert_close(d.sum(1), torch.ones(len(x), dtype=torch.float64))  # Eq. 11
    assert (d > (2 - n) / n).all() and (d < 1).all()  # Eq. 10
    # The bound holds but is loose (as the paper says): the infimum over x and sigma of a component, found
    # numerically, is 0 for n = 2 and 3 (approached, not reached), about -0.039 for n = 4, -0.078 for n = 5
    # and -0.16 for n = 10, against (2-n)/n = 0, -1/3, -1/2, -3/5, -4/5.
    if n <= 10:
        def f(z):
            return float(dome_mod.mdome(t64(z[None, :-1]), mu, math.exp(z[-1]), n=n)[0, 0])
        starts = [np.r_[RNG.normal(size=n - 1), s] for s in (-1.0, 0.0, 1.0)]
        best = min(scipy.optimize.minimize(f, z0, method="Nelder-Mead").fun for z0 in starts)
        assert best >= (2 - n) / n


def test_mdome_normalized_is_non_negative_and_sums_to_one():
    for n in (3, 10, 50):
        x = t64(points(500, n - 1, scale=1.0))
        for sigma in (0.3, 1.0, 5.0):
            d = dome_mod.mdome_normalized(x, 1.0, sigma, n=n)
            assert (d >= 0).all()
            torch.testing.assert_close(d.sum(1), torch.ones(len(x), dtype=torch.float64))


def test_mdome_with_two_classes_in_one_dimension_is_dome1_dome2():
    x = points(300)
    for mu, sigma in ((1.0, 1.0), (0.7, 2.0)):
        d = dome_mod.mdome(t64(x[:, None]), mu, sigma, n=2)
        d1, d2 = np_dome_12(x, mu, sigma)
        torch.testing.assert_close(d[:, 0], t64(d1))
        torch.testing.assert_close(d[:, 1], t64(d2))


def test_dome_family_defaults_follow_section_7():
    p = dome_mod.PDOME()
    assert (p.mu.item(), p.sigma.item(), p.pi.item()) == (1.0, 1.0, pytest.approx(0.1))
    m = dome_mod.MDOME(10)
    assert (m.mu.item(), m.sigma.item()) == (1.0, 5.0)
    assert {n for n, _ in p.named_parameters()} == {"mu", "sigma", "pi"}
    fixed = dome_mod.DOME(learnable=False)
    assert list(fixed.parameters()) == [] and set(fixed.state_dict()) == {"mu", "sigma"}


# ----------------------------------------------------------------------------- SAF (saf.txt)


def np_mrelu_eq1(x):
    return np.where((0 > x) & (x > -1), 1 + x, np.where((1 > x) & (x > 0), 1 - x, 0.0))


def np_mrelu_eq2(x):
    return np.minimum(np.maximum(1 - x, 0), np.maximum(1 + x, 0))


def np_mrelu_eq3(x):
    return np.where((0 > x) & (x > -1), 1.0, np.where((1 > x) & (x > 0), -1.0, 0.0))


def test_rbf_and_mrelu_match_equations():
    x = np.concatenate([points(1000, scale=1.0), [0.0, 1.0, -1.0, 0.5, -0.5, 2.0]])
    torch.testing.assert_close(saf.rbf(t64(x)), t64(np.exp(-x ** 2)))
    torch.testing.assert_close(saf.mrelu(t64(x)), t64(np_mrelu_eq2(x)))
    nonzero = x != 0  # Eq. 1 and Eq. 2 disagree only at x = 0 (see saf.py): Eq. 1 literally gives 0 there, Eq. 2 gives 1
    torch.testing.assert_close(saf.mrelu(t64(x))[nonzero], t64(np_mrelu_eq1(x))[nonzero])
    assert float(saf.mrelu(torch.tensor(0.0))) == 1.0
    # derivatives: RBF -2x exp(-x^2) (Section 3.1) and mReLU Eq. 3, including x = 0 and +-1
    xt = t64(x).requires_grad_()
    (g,) = torch.autograd.grad(saf.rbf(xt).sum(), xt)
    torch.testing.assert_close(g, t64(-2 * x * np.exp(-x ** 2)))
    (g,) = torch.autograd.grad(saf.mrelu(xt).sum(), xt)
    torch.testing.assert_close(g, t64(np_mrelu_eq3(x)))
    torch.testing.assert_close(saf.mrelu_derivative(t64(x)), t64(np_mrelu_eq3(x)))


def test_mrelu_is_zero_outside_the_open_unit_interval():
    x = np.concatenate([np.linspace(1, 100, 500), -np.linspace(1, 100, 500), points(500, scale=10.0)])
    y = saf.mrelu(t64(x))
    assert (y[np.abs(x) >= 1] == 0).all() and (y[np.abs(x) < 1] > 0).all()


# ----------------------------------------------------------------------------- APL and S-APL (symmetric-apl.txt)


def np_apl(x, a, b):  # Eq. 1; x: (N, C, P), a, b: (C, S)
    out = np.maximum(0, x)
    for s in range(a.shape[1]):
        out = out + a[None, :, None, s] * np.maximum(0, -x + b[None, :, None, s])
    return out


def np_sapl(x, ap, bp, an, bn):  # Eq. 2
    out = np.zeros_like(x)
    for s in range(ap.shape[1]):
        out = out + ap[None, :, None, s] * np.maximum(0, x - bp[None, :, None, s])
        out = out + an[None, :, None, s] * np.maximum(0, -x - bn[None, :, None, s])
    return out


def test_apl_and_sapl_match_equations():
    x = points(8, 3, 20)
    a, b = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    torch.testing.assert_close(apl_mod.apl(t64(x), t64(a), t64(b)), t64(np_apl(x, a, b)))
    torch.testing.assert_close(apl_mod.apl(t64(x), t64(a[0]), t64(b[0])), t64(np_apl(x, a[:1].repeat(3, 0), b[:1].repeat(3, 0))))
    ap, an = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    bp, bn = RNG.uniform(0, 3, size=(3, 4)), RNG.uniform(0, 3, size=(3, 4))
    torch.testing.assert_close(apl_mod.sapl(t64(x), t64(ap), t64(bp), t64(an), t64(bn)), t64(np_sapl(x, ap, bp, an, bn)))


def test_sapl_is_zero_centred_and_even_when_symmetric():
    x = points(4, 3, 50)
    a, b = RNG.normal(size=(3, 4)), RNG.uniform(0, 3, size=(3, 4))
    zero = torch.zeros(1, 3, 1, dtype=torch.float64)
    for ap, bp, an, bn in ((a, b, RNG.normal(size=(3, 4)), RNG.uniform(0, 3, size=(3, 4))), (a, b, a, b)):
        assert (apl_mod.sapl(zero, t64(ap), t64(bp), t64(an), t64(bn)) == 0).all()  # S-APL(0) = 0
    even = apl_mod.sapl(t64(x), t64(a), t64(b), t64(a), t64(b))
    torch.testing.assert_close(even, apl_mod.sapl(t64(-x), t64(a), t64(b), t64(a), t64(b)))  # h(x) = h(-x)


def test_sapl_hinge_placements_initialisation_and_variants():
    m = apl_mod.SAPL()
    np.testing.assert_allclose(m.b_pos.numpy(), [0, 1, 2, 2.5])  # Section 4: -2.5, -2, -1, 0, +1, +2, +2.5
    np.testing.assert_allclose(m.b_neg.numpy(), [0, 1, 2, 2.5])
    np.testing.assert_allclose(apl_mod.SAPL(hinges="appendix").b_pos.numpy(), [1, 2, 2.5, 3])  # Appendix 8.1
    np.testing.assert_allclose(apl_mod.SAPL(S=5).b_pos.numpy(), [0, 1, 2, 2.5, 3])
    x = torch.linspace(-5, 5, 101)
    torch.testing.assert_close(m(x), torch.relu(x))  # initialised to mimic ReLU: a1+ = 1, others 0
    assert {n for n, _ in m.named_parameters()} == {"a_pos", "a_neg"}
    learn = apl_mod.SAPL(channels=3, learnable_hinges=True)
    assert learn.b_pos.shape == (3, 4) and {n for n, _ in learn.named_parameters()} == {"a_pos", "a_neg", "b_pos", "b_neg"}
    # b >= 0 is enforced by reflection, and a hinge at 0 still receives a gradient
    with torch.no_grad():
        learn.b_neg.fill_(-1.5)
    _, _, _, b_neg = learn.effective()
    assert (b_neg == 1.5).all()
    learn.b_pos.grad = None
    learn(torch.randn(4, 3, 10)).sum().backward()
    assert learn.b_pos.grad[:, 0].abs().sum() > 0
    # S-APL-positive / -negative: a- used as +|a-| / -|a-| (Section 5); gradients flow from a- = 0
    for name, sign in (("sapl_positive", 1.0), ("sapl_negative", -1.0)):
        v = create(name)
        with torch.no_grad():
            v.a_neg.copy_(torch.tensor([0.5, -0.25, 0.0, 1.0]))
        xn = -torch.linspace(0.01, 5, 50)
        y = v(xn)
        assert (sign * y >= 0).all() and (sign * y > 0).any()
        w = create(name)
        w(xn).sum().backward()
        assert w.a_neg.grad.abs().sum() > 0


def test_apl_defaults():
    m = apl_mod.APL(channels=4)
    np.testing.assert_allclose(m.b.numpy()[0], [-2, -1, 0, 1, 2])  # Appendix 8.2
    x = torch.randn(3, 4, 7)
    torch.testing.assert_close(m(x), torch.relu(x))


# ----------------------------------------------------------------------------- KAF (Kafnets)


def np_kaf(x, alpha, boundary):  # x: (N, C, P), alpha: (C, D)
    D = alpha.shape[1]
    d = np.linspace(-boundary, boundary, D)
    gamma = 1.0 / (2 * (2 * (d[1] - d[0])) ** 2)
    return sum(alpha[None, :, None, i] * np.exp(-gamma * (x - d[i]) ** 2) for i in range(D))


@pytest.mark.parametrize("D,boundary", [(20, 3.0), (2, 1.0), (7, 2.0), (50, 4.0)])
def test_kaf_is_its_kernel_expansion_and_equals_the_naive_reference(D, boundary):
    x = np.concatenate([points(6, 4, 30, scale=2.0), points(1, 4, 30, scale=10.0)])
    alpha = RNG.normal(0, 0.3, size=(4, D))
    ref = t64(np_kaf(x, alpha, boundary))
    torch.testing.assert_close(kaf_mod.kaf(t64(x), t64(alpha), boundary), ref)
    torch.testing.assert_close(kaf_mod.kaf_naive(t64(x), t64(alpha), boundary), ref)
    torch.testing.assert_close(kaf_mod.kaf(t64(x), t64(alpha[0]), boundary), t64(np_kaf(x, alpha[:1].repeat(4, 0), boundary)))
    # values and gradients (input and alpha) of the fused implementation equal the naive one
    xs = [t64(x).requires_grad_() for _ in range(2)]
    als = [t64(alpha).requires_grad_() for _ in range(2)]
    g = torch.randn(x.shape, dtype=torch.float64)
    grads = [torch.autograd.grad(f(xi, ai, boundary), (xi, ai), g) for f, xi, ai in zip((kaf_mod.kaf, kaf_mod.kaf_naive), xs, als)]
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_kaf_float32_fused_matches_float64_reference():
    x = torch.randn(8, 16, 12, 12) * 3
    alpha = torch.randn(16, 20) * 0.3
    y = kaf_mod.kaf(x, alpha)
    ref = kaf_mod.kaf_naive(x.double(), alpha.double())
    torch.testing.assert_close(y.double(), ref, atol=2e-5, rtol=1e-5)


def test_kaf_dictionary_bandwidth_and_initialisation():
    d, gamma = kaf_mod.dictionary(20, 3.0)
    np.testing.assert_allclose(d, np.linspace(-3, 3, 20))
    assert gamma == pytest.approx(1 / (2 * (2 * 6 / 19) ** 2))
    torch.manual_seed(0)
    m = kaf_mod.KAF(channels=64)
    assert m.alpha.shape == (64, 20) and abs(m.alpha.std().item() - 0.3) < 0.02
    xs = torch.linspace(-3, 3, 301, dtype=torch.float64)
    for target, ref, tol in (("elu", torch.nn.functional.elu(xs), 0.03), ("relu", torch.relu(xs), 0.08)):
        k = kaf_mod.KAF(init=target).double()
        assert (k(xs) - ref).abs().max() < tol
        assert torch.equal(kaf_mod.KAF(channels=3, init=target).alpha[1], kaf_mod.KAF(channels=3, init=target).alpha[2])


def np_kaf2d(x, alpha, boundary):  # x: (N, C, P), alpha: (C/2, D, D)
    D = alpha.shape[-1]
    d = np.linspace(-boundary, boundary, D)
    gamma = 0.5 / (2 * (d[1] - d[0]) / np.sqrt(2)) ** 2
    h = x.shape[1] // 2
    s1, s2 = x[:, :h], x[:, h:]
    out = np.zeros_like(s1)
    for a in range(D):
        for b in range(D):
            out += alpha[None, :, None, a, b] * np.exp(-gamma * ((s1 - d[a]) ** 2 + (s2 - d[b]) ** 2))
    return out


def test_kaf2d_matches_its_kernel_expansion():
    x = points(3, 6, 10, scale=2.0)
    alpha = RNG.normal(0, 0.3, size=(3, 10, 10))
    ref = t64(np_kaf2d(x, alpha, 3.0))
    torch.testing.assert_close(kaf_mod.kaf2d(t64(x), t64(alpha)), ref)
    torch.testing.assert_close(kaf_mod.kaf2d_naive(t64(x), t64(alpha)), ref)
    m = kaf_mod.KAF2D(channels=6).double()
    with torch.no_grad():
        m.alpha.copy_(t64(alpha))
    torch.testing.assert_close(m(t64(x)), torch.cat([ref, ref], 1))
    m.keep_channels = False
    torch.testing.assert_close(m(t64(x)), ref)


# ----------------------------------------------------------------------------- baselines


def test_swish_maxout_kwta_match_their_definitions():
    x = points(4, 6, 5)
    for beta in (1.0, 0.2, -0.7):
        torch.testing.assert_close(baselines.swish(t64(x), beta), t64(x / (1 + np.exp(-beta * x))))
    torch.testing.assert_close(baselines.Swish(1.0)(t64(x)), torch.nn.functional.silu(t64(x)))
    torch.testing.assert_close(baselines.maxout(t64(x), 3), t64(x.reshape(4, 2, 3, 5).max(2)))
    torch.testing.assert_close(baselines.Maxout(3)(t64(x)), t64(np.repeat(x.reshape(4, 2, 3, 5).max(2), 3, axis=1)))
    # channels-last images (symact.train's layout for CNNs) take another path: the same values and gradients
    img = torch.randn(2, 12, 5, 4, dtype=torch.float64)
    last = img.contiguous(memory_format=torch.channels_last).requires_grad_()
    first = img.clone().requires_grad_()
    out_last, out_first = baselines.maxout(last, 3), baselines.maxout(first, 3)
    assert out_last.is_contiguous(memory_format=torch.channels_last) and torch.equal(out_last, out_first)
    g = torch.randn_like(out_first)
    out_last.backward(g)
    out_first.backward(g)
    assert torch.equal(last.grad, first.grad)
    # the gradient goes to the largest piece of each unit; a tie gives it whole to one piece (torch.max's
    # subgradient), where amax would split it
    pieces = img.unflatten(1, (4, 3))
    onehot = torch.zeros_like(pieces).scatter_(2, pieces.argmax(2, keepdim=True), g.unsqueeze(2))
    assert torch.equal(first.grad, onehot.flatten(1, 2))
    tie = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    baselines.maxout(tie, 2).sum().backward()
    assert sorted(tie.grad[0].tolist()) == [0.0, 1.0]
    ratio = 0.2
    k = int(ratio * 30)
    flat = x.reshape(4, 30)
    thr = np.sort(flat, axis=1)[:, -k][:, None]
    torch.testing.assert_close(baselines.kwta(t64(x), ratio), t64(np.where(flat >= thr, flat, 0).reshape(x.shape)))
    assert (baselines.kwta(t64(x), ratio).reshape(4, -1) != 0).sum(1).tolist() == [k] * 4


# ----------------------------------------------------------------------------- registry and bad input


def test_registry_has_every_activation_of_the_issue():
    expected = {"relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus",
                "dome", "dome1", "dome2", "pdome", "mdome", "rbf", "mrelu", "apl", "sapl", "sapl_positive",
                "sapl_negative", "kaf", "kaf2d", "swish", "maxout", "kwta"}
    assert expected <= set(names())


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(KeyError, match="available: .*kaf.*mdome"):
        create("no_such_activation")


@pytest.mark.parametrize("build", [
    lambda: dome_mod.DOME(sigma=0.0), lambda: dome_mod.PDOME(sigma=-1.0), lambda: dome_mod.MDOME(3, sigma=0.0),
    lambda: dome_mod.MDOME(1), lambda: create("mdome"), lambda: kaf_mod.KAF(D=1), lambda: kaf_mod.KAF2D(D=1),
    lambda: kaf_mod.KAF(boundary=0.0), lambda: apl_mod.SAPL(S=0), lambda: apl_mod.APL(S=0),
    lambda: apl_mod.SAPL(hinges=[-1.0, 0.0, 1.0, 2.0]), lambda: apl_mod.SAPL(S=3, hinges="section4"),
    lambda: apl_mod.SAPL(variant="sideways"), lambda: baselines.Maxout(k=0), lambda: baselines.KWTA(ratio=0.0),
    lambda: kaf_mod.KAF2D(channels=5), lambda: dome_mod.MDOME(4, dim=2), lambda: kaf_mod.KAF(init="tanh"),
])
def test_impossible_hyper_parameters_raise_at_construction(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("name,kwargs", [("kaf", {}), ("kaf2d", {}), ("apl", {}), ("sapl", {"per_channel": True}),
                                         ("mdome", {"n": 10})])
def test_wrong_channel_count_names_expected_and_received(name, kwargs):
    act = create(name, channels=16, **kwargs)
    with pytest.raises(ValueError, match=r"16.*\b8\b"):
        act(torch.randn(2, 8, 3, 3))


def test_functional_forms_check_channels_too():
    with pytest.raises(ValueError, match=r"5 channels.*got 3"):
        kaf_mod.kaf(torch.randn(2, 3), torch.randn(5, 20))
    with pytest.raises(ValueError, match=r"expected 5 channels.*got 3"):
        apl_mod.sapl(torch.randn(2, 3), *(torch.rand(5, 4) for _ in range(4)))


def test_factories_keep_the_model_contract():
    for name in names():
        make = factory(name, **({"n": 10} if name == "mdome" else {}))
        x = torch.randn(2, 16, 4, 4)
        out = make(16)(x)
        assert out.shape == ((2, 10, 4, 4) if name == "mdome" else x.shape), name
    assert factory("sapl", per_channel=True)(8).a_pos.shape == (8, 4)
    assert factory("sapl")(8).a_pos.shape == (4,)
    assert factory("kaf")(8).alpha.shape == (8, 20)
    assert factory("apl", per_channel=False)(8).a.shape == (5,)
    assert factory("mdome", n=3)(2).dim == 2 and factory("mdome", n=10)(10).dim == 10


def test_float_parameters_keep_a_float64_input_in_float64():
    """Float mu and sigma given to the functional forms are not rounded to float32 for a float64 input
    (DOME, dome.txt Eq. 2, against its formula in double precision)."""
    import math

    from symact.activations.dome import dome, pdome

    x = torch.tensor([0.3, -1.7], dtype=torch.float64)
    want = [0.5 * (1 + math.exp(-((v - 1.1) / 0.7) ** 2) - math.exp(-((v + 1.1) / 0.7) ** 2)) for v in x.tolist()]
    got = dome(x, mu=1.1, sigma=0.7)
    assert got.dtype == torch.float64
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-15)
    want_p = [math.exp(-((v - 1.1) / 0.7) ** 2) - 0.3 * math.exp(-((v + 1.1) / 0.7) ** 2) for v in x.tolist()]
    assert torch.allclose(pdome(x, mu=1.1, sigma=0.7, pi=0.3), torch.tensor(want_p, dtype=torch.float64),
                          rtol=0, atol=1e-15)
