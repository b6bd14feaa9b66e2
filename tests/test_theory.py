"""symact.theory against saf.txt Section 3.3 (Lemma 1, Eq. 4 to 6)."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from symact import theory


def eq4_transcription(x, z, lam):
    """saf.txt Eq. 4 written out term by term for one point."""
    r = [lam * (xk - zk) for xk, zk in zip(x, z)]
    s = [math.exp(-rk ** 2) for rk in r]
    t = sum(s) - len(x)
    return math.exp(-t ** 2)


def test_basic_block_is_eq4():
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(50, 4)), rng.normal(size=4)
    got = theory.basic_block(x, z, lam=0.8)
    want = [eq4_transcription(row, z, 0.8) for row in x]
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("n", [2, 5, 20])
def test_sphere_bounds_corrected_eq5(n):
    """On ||X - Z|| = r the block lies between f2(r) (diagonal) and f1(r) (axis): the reverse of the paper's text."""
    rng = np.random.default_rng(n)
    lam, r = 0.7, 1.3
    x = theory.uniform_ball(rng, 20000, n)
    x *= r / np.linalg.norm(x, axis=1, keepdims=True)
    y = theory.basic_block(x, np.zeros(n), lam)
    lo, hi = theory.f2(r, lam, n), theory.f1(r, lam, n)
    assert lo < hi
    assert np.all(y >= lo - 1e-12) and np.all(y <= hi + 1e-12)
    axis, diag = np.eye(n)[0] * r, np.full(n, r / math.sqrt(n))
    assert theory.basic_block(axis[None], np.zeros(n), lam)[0] == pytest.approx(hi, rel=1e-12)
    assert theory.basic_block(diag[None], np.zeros(n), lam)[0] == pytest.approx(lo, rel=1e-12)


@pytest.mark.parametrize("n", [2, 7, 50])
def test_sphere_ratio_matches_numeric_inverses(n):
    lam = 0.9
    for tau in (0.4, 0.8, 0.99, 0.999999):
        r1 = brentq(lambda r: theory.f1(r, lam, n) - tau, 0, 100, xtol=1e-14)
        r2 = brentq(lambda r: theory.f2(r, lam, n) - tau, 0, 100, xtol=1e-14)
        assert theory.sphere_ratio(tau, n) == pytest.approx(r2 / r1, rel=1e-7)
    assert theory.sphere_ratio(1 - 1e-12, n) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("n", [2, 10, 100])
def test_construction_meets_eq6(n):
    c = theory.construction(n, 0.01, r=2.0)
    assert c["explicit"]["c"] <= c["largest"]["c"]
    for choice in c.values():
        assert choice["bound"] >= 0.99 - 1e-12
        assert choice["r0"] <= 2.0
        assert choice["tau0"] == pytest.approx(theory.f1(2.0, choice["lam"], n))
    assert c["largest"]["bound"] == pytest.approx(0.99, abs=1e-9)


@pytest.mark.parametrize("n", [2, 10])
def test_monte_carlo_within_the_proof(n):
    c = theory.construction(n, 0.05)["largest"]
    mc = theory.monte_carlo_error(n, c["lam"], c["tau0"], samples=20000, seed=3)
    assert mc["false_shell"] == 0.0
    assert 0 < mc["missed"] <= 0.05 + 4 * mc["missed_se"]


def test_mrelu_block_accepts_an_l1_ball():
    """With mReLU, y = max(0, 1 - lam ||X - Z||_1) near Z, so {y >= tau} is the L1 ball of radius (1 - tau)/lam."""
    rng = np.random.default_rng(0)
    lam, tau = 0.5, 0.2
    x = rng.uniform(-2, 2, size=(5000, 3))
    y = theory.basic_block(x, np.zeros(3), lam, act="mrelu")
    inside = np.abs(x).sum(axis=1) <= (1 - tau) / lam
    np.testing.assert_array_equal(y >= tau, inside)


def test_l1_iou_and_polygon_agree_in_2d():
    """In 2-D the L1 ball is the m = 2 polygon: two independent computations of the same number."""
    poly = theory.polygon_iou(2)["iou"]
    assert theory.l1_ball_iou(2, samples=200_000, seed=1)["iou"] == pytest.approx(poly, abs=0.005)
    # exact value: the square |x| + |y| <= a against the unit disk, maximised over a numerically
    assert 0.80 < poly < 0.85
    assert theory.polygon_iou(32)["iou"] > 0.999


def test_template_classify_nonsense():
    templates, labels = np.array([[0.0, 0.0], [3.0, 0.0]]), np.array([4, 7])
    c = theory.construction(2, 0.01, r=0.5)["largest"]
    pred, _ = theory.template_classify(np.array([[0.1, 0.0], [2.9, 0.1], [1.5, 0.0], [10.0, 10.0]]),
                                       templates, labels, c["lam"], c["tau0"])
    assert pred.tolist() == [4, 7, -1, -1]


def test_bad_input():
    with pytest.raises(ValueError, match="n must be"):
        theory.construction(0, 0.1)
    with pytest.raises(ValueError, match="eps"):
        theory.construction(3, 1.5)
    with pytest.raises(ValueError, match="tau must lie"):
        theory.sphere_ratio(0.2, 3)
    with pytest.raises(ValueError, match="lam must be > 0"):
        theory.basic_block(np.zeros((1, 2)), np.zeros(2), lam=0.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        theory.basic_block(np.zeros((1, 2)), np.zeros(3), lam=1.0)
    with pytest.raises(ValueError, match="act must be one of"):
        theory.basic_block(np.zeros((1, 2)), np.zeros(2), lam=1.0, act="relu")
    with pytest.raises(ValueError, match="m must be"):
        theory.polygon_iou(1)
