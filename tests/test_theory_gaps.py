"""The theory gaps of issue 29, item 5: DOME's scale orbit, its BCE basin and the LOGIT1/LOGIT2 relation
(dome.txt Eq. 2, 9, 14, 15); SAF's float32 threshold, the accepted radius and the zonotope counts (saf.txt
Eq. 4 to 6); S-APL's bound for the interpolant only and the A = 0 case (symmetric-apl.txt Theorem 3.1)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from symact import theory
from symact.activations.dome import MDOME, dome, mdome_logit1, mdome_logit2, mdome_logit_affine, mdome_rescale_
from symact.models import LeNet5

# --------------------------------------------------------------------------- DOME


def _mdome_lenet(seed=0):
    torch.manual_seed(seed)
    model = LeNet5("mnist", num_classes=10, act="relu", out_act=lambda c: MDOME(n=10, dim=c)).double().eval()
    with torch.no_grad():  # move off the initial mu = 1, sigma = 5 so that nothing depends on them
        model.out_act.mu.fill_(0.7)
        model.out_act.sigma.fill_(1.3)
    return model


@pytest.fixture
def mnist_batch(needs_data):
    from symact import data

    x, y = data.load("mnist", train=False).head(64).tensors()
    return x.double(), y


def _outputs(model, x):
    out = {}
    for view in MDOME.OUTPUTS:
        model.out_act.output = view
        with torch.no_grad():
            out[view] = model(x)
    model.out_act.output = "normalized"
    return out


@pytest.mark.parametrize("c", [0.048, 0.2, 3.0])
def test_rescaling_leaves_the_network_unchanged(mnist_batch, c):
    """(W, b, mu, sigma) -> c (W, b, mu, sigma) keeps every view but LOGIT2, which scales by c^2 (dome.txt Eq. 9)."""
    x, _ = mnist_batch
    model = _mdome_lenet()
    before = _outputs(model, x)
    mdome_rescale_(model.classifier, model.out_act, c)
    assert model.out_act.mu.item() == pytest.approx(0.7 * c) and model.out_act.sigma.item() == pytest.approx(1.3 * c)
    after = _outputs(model, x)
    for view in ("normalized", "mdome", "logit1"):
        torch.testing.assert_close(after[view], before[view], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(after["logit2"], c * c * before["logit2"], rtol=1e-10, atol=1e-10)
    # and the change is not trivially nothing: rescaling only mu and sigma changes the output
    with torch.no_grad():
        model.classifier.weight.div_(c)
        model.classifier.bias.div_(c)
    assert (_outputs(model, x)["normalized"] - before["normalized"]).abs().max() > 1e-3


def test_training_gradient_is_orthogonal_to_the_orbit(mnist_batch):
    """d/dc L(c theta_S) = <grad L, theta_S> = 0: the loss gives no push along the orbit, weight decay does."""
    x, y = mnist_batch
    model = _mdome_lenet()
    loss = F.mse_loss(model(x), F.one_hot(y, 10).double())  # the paper's MDOME loss (dome.txt Section 7)
    orbit = [model.classifier.weight, model.classifier.bias, model.out_act.mu, model.out_act.sigma]
    grads = torch.autograd.grad(loss, orbit)
    inner = sum((g * p.detach()).sum() for g, p in zip(grads, orbit))
    scale = math.sqrt(sum(float((g * g).sum()) for g in grads) * sum(float((p.detach() ** 2).sum()) for p in orbit))
    assert scale > 0 and abs(float(inner)) < 1e-9 * scale
    # one SGD step with weight decay: |theta'|^2 = (1 - lr wd)^2 |theta|^2 + lr^2 |g|^2 exactly
    lr, wd = 0.1, 5e-4
    norm2 = sum(float((p.detach() ** 2).sum()) for p in orbit)
    g2 = sum(float((g * g).sum()) for g in grads)
    new2 = sum(float(((p.detach() - lr * (g + wd * p.detach())) ** 2).sum()) for p, g in zip(orbit, grads))
    assert new2 == pytest.approx((1 - lr * wd) ** 2 * norm2 + lr**2 * g2, rel=1e-10)


def test_logit1_is_affine_in_logit2_on_a_forward_pass(mnist_batch):
    """LOGIT1 = (2 / sigma^2) LOGIT2 - (||x||^2 + mu^2) / sigma^2 per sample, on a LeNet-5 forward pass."""
    x, _ = mnist_batch
    model = _mdome_lenet(1)
    out = _outputs(model, x)
    with torch.no_grad():
        feats = model.classifier(model.embed(x))
    slope, intercept = mdome_logit_affine(feats, model.out_act.mu, model.out_act.sigma)
    assert intercept.shape == (len(x), 1)
    torch.testing.assert_close(out["logit1"], slope * out["logit2"] + intercept, rtol=1e-10, atol=1e-9)
    # the paper's formulas, written out (Eq. 14 and 15), agree with the views the model returns
    e = model.out_act.vertices
    mu, sigma = model.out_act.mu.item(), model.out_act.sigma.item()
    eq14 = -(((feats[:, None, :] - mu * e[None]) / sigma) ** 2).sum(-1)
    torch.testing.assert_close(out["logit1"], eq14, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(out["logit2"], feats @ (mu * e).T, rtol=1e-10, atol=1e-10)

    def margin(z, y):  # CW / Square margin: z_y - max_{i != y} z_i
        other = z.clone()
        other[torch.arange(len(y)), y] = -torch.inf
        return z[torch.arange(len(y)), y] - other.amax(1)

    def dlr(z, y):  # AutoAttack's DLR loss (Croce and Hein 2020, Eq. 6)
        s = z.sort(1, descending=True).values
        return -margin(z, y) / (s[:, 0] - s[:, 2])

    y = out["logit2"].argsort(1)[:, -2]  # a wrong class for most points
    torch.testing.assert_close(margin(out["logit1"], y), slope.item() * margin(out["logit2"], y), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(dlr(out["logit1"], y), dlr(out["logit2"], y), rtol=1e-9, atol=1e-9)


def test_logit_affine_and_rescale_bad_input():
    with pytest.raises(ValueError, match="sigma must be > 0"):
        mdome_logit_affine(torch.zeros(2, 3), 1.0, -1.0)
    with pytest.raises(ValueError, match="shape"):
        mdome_logit_affine(torch.zeros(3), 1.0, 1.0)
    act = MDOME(n=3)
    with pytest.raises(ValueError, match="c must be > 0"):
        mdome_rescale_(torch.nn.Linear(4, 2), act, 0.0)
    with pytest.raises(TypeError, match="MDOME"):
        mdome_rescale_(torch.nn.Linear(4, 2), torch.nn.ReLU(), 2.0)


@pytest.mark.parametrize("mu,sigma", [(1.0, 1.0), (1.05, 0.82), (1.0, 5.0), (0.3, 2.0), (4.0, 0.5)])
def test_dome_peak_is_the_unique_maximiser(mu, sigma):
    z = theory.dome_peak(mu, sigma)
    assert mu <= z <= mu + (z + mu) * math.exp(-4 * mu * mu / sigma**2)  # z* = mu in float64 once mu/sigma > 3
    t = torch.tensor([z], dtype=torch.float64, requires_grad=True)
    # float64 parameters: `dome` turns plain floats into float32 tensors (symact.activations._fused.as_param)
    mu64, sigma64 = torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64)
    (g,) = torch.autograd.grad(dome(t, mu64, sigma64).sum(), t)
    assert abs(float(g)) < 1e-9
    grid = torch.linspace(-z - 10 * sigma, z + 10 * sigma, 400001, dtype=torch.float64)
    d = dome(grid, mu, sigma)
    assert float(grid[d.argmax()]) == pytest.approx(z, abs=1e-3 * (1 + sigma))
    assert float(grid[d.argmin()]) == pytest.approx(-z, abs=1e-3 * (1 + sigma))


@pytest.mark.parametrize("mu,sigma", [(1.0, 1.0), (1.05, 0.82), (2.0, 1.5)])
def test_dome_bce_spurious_basin(mu, sigma):
    """A positive example left of -z*: its loss rises towards -z*, stays above log 2, and descent runs to -inf."""
    peak = theory.dome_peak(mu, sigma)
    z = torch.linspace(-peak - 2.5 * sigma, -peak, 20001, dtype=torch.float64)  # farther out DOME rounds to 1/2
    loss = -torch.log(dome(z, mu, sigma))
    assert bool((loss.diff() > 0).all()) and bool((loss > math.log(2)).all())
    assert float(-torch.log(dome(torch.tensor([-1e3], dtype=torch.float64), mu, sigma))) == pytest.approx(math.log(2))
    t = torch.tensor([-peak - 0.05 * sigma], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([t], lr=10 * sigma**2)
    start = float(t)
    for _ in range(200):
        opt.zero_grad()
        (-torch.log(dome(t, mu, sigma))).sum().backward()
        opt.step()
    assert float(t) < start  # pushed away from the barrier, further into the misclassified side
    mask = theory.dome_bce_basin([-peak - 1e-6, -peak + 1e-6, peak + 1e-6, peak + 1e-6], [1, 1, 0, 1], mu, sigma)
    assert mask.tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="0/1"):
        theory.dome_bce_basin([0.0], [2], mu, sigma)
    with pytest.raises(ValueError, match="same shape"):
        theory.dome_bce_basin([0.0, 1.0], [1], mu, sigma)
    with pytest.raises(ValueError, match="sigma"):
        theory.dome_peak(1.0, 0.0)


# --------------------------------------------------------------------------- SAF


def test_float32_threshold_at_n50():
    """saf.txt Lemma 1 at eps = 0.01, n = 50: 1 - tau0 is about 11 float32 ulps, and rounding it scales the volume."""
    c = theory.construction(50, 0.01)["largest"]
    q = theory.float32_threshold(c["tau0"], 50)
    assert q["spacing"] == 2.0**-24
    assert 10 < q["ulps"] < 12 and q["ulps_float32"] == round(q["ulps_float32"])
    assert q["volume_per_ulp"] == pytest.approx(50 / (4 * q["ulps"]))
    # the threshold's rounding alone, evaluated exactly (float64 block, float32-rounded threshold)
    mc = theory.monte_carlo_error(50, c["lam"], q["tau0_float32"], samples=100_000, seed=3)
    base = theory.monte_carlo_error(50, c["lam"], c["tau0"], samples=100_000, seed=3)
    predicted = 1 - q["volume_factor"] * (1 - base["missed"])
    assert mc["missed"] == pytest.approx(predicted, abs=4 * mc["missed_se"] + 0.01)
    with pytest.raises(ValueError, match="tau0"):
        theory.float32_threshold(1.0, 50)
    with pytest.raises(ValueError, match="n must"):
        theory.float32_threshold(0.99, 0)


@pytest.mark.parametrize("n", [2, 7, 30])
def test_accepted_radius_bounds_the_accepted_set(n):
    lam, tau = 0.6, 0.95
    R = theory.accepted_radius(tau, lam)
    rng = np.random.default_rng(n)
    g = rng.standard_normal((50_000, n))
    x = g / np.linalg.norm(g, axis=1, keepdims=True) * rng.uniform(0, 1.5 * R, (50_000, 1))  # radii, not volume
    y = theory.basic_block(x, np.zeros(n), lam)
    assert (y >= tau).any()
    assert np.linalg.norm(x[y >= tau], axis=1).max() <= R * (1 + 1e-12)
    axis = np.zeros((1, n))
    axis[0, 0] = R
    assert theory.basic_block(axis, np.zeros(n), lam)[0] == pytest.approx(tau, rel=1e-12)  # sharp on the axes
    with pytest.raises(ValueError, match="exp"):
        theory.accepted_radius(0.3, lam)


@pytest.mark.parametrize("m,n", [(2, 2), (5, 2), (3, 3), (4, 3), (5, 3), (6, 4)])
def test_arrangement_regions_by_counting_sign_patterns(m, n):
    """The accepted polytope has one facet per sign pattern of (w_1 . u, ..., w_m . u)."""
    rng = np.random.default_rng(10 * m + n)
    w = rng.standard_normal((m, n))
    u = rng.standard_normal((400_000, n))
    patterns = {tuple(row) for row in (u @ w.T > 0).astype(np.int8)}
    assert len(patterns) == theory.arrangement_regions(m, n)
    assert theory.arrangement_regions(n, n) == 2**n and theory.arrangement_regions(m, 2) == 2 * m


def test_zonotope_exponent_matches_the_polygon_in_2d():
    """n = 2: a regular 2m-gon is within 1 + pi^2/(8 m^2) of the disk, so m ~ delta^(-1/2), the exponent 2(n-1)/(n+2)."""
    assert theory.zonotope_ball_exponent(2) == 0.5
    ms = np.array([8, 16, 32, 64])
    err = np.array([1 - theory.polygon_iou(int(m), points=4000)["iou"] for m in ms])
    slope = np.polyfit(np.log(ms), np.log(err), 1)[0]  # error ~ m^-2, i.e. m ~ error^(-1/2)
    assert -1 / slope == pytest.approx(theory.zonotope_ball_exponent(2), rel=0.05)
    assert theory.zonotope_ball_exponent(784) == pytest.approx(2 * 783 / 786)
    with pytest.raises(ValueError):
        theory.zonotope_ball_exponent(0)


# --------------------------------------------------------------------------- S-APL


def _zigzag(period):
    return lambda x: period * np.abs(np.asarray(x) / period - np.round(np.asarray(x) / period))


@pytest.mark.parametrize("S", [2, 4, 8])
def test_least_squares_beats_the_interpolant_bound(S):
    """The bounds of Theorem 3.1 are attained by the interpolant; the least-squares S-APL on the same hinges is below them."""
    A, B = -3.0, 3.0
    h = B / S
    sq = theory.sapl_interpolant_vs_fit(np.square, A, B, S)
    assert sq["interpolant"] == pytest.approx(h * h / 4, rel=1e-9)  # f'' = 2: bound h^2 max|f''| / 8 attained
    assert sq["least_squares"] < 0.9 * h * h / 4
    zz = theory.sapl_interpolant_vs_fit(_zigzag(h), A, B, S)  # peaks at the grid midpoints: M h / 2 attained
    assert zz["interpolant"] == pytest.approx(h / 2, rel=1e-9)
    assert zz["least_squares"] < 0.75 * h / 2


@pytest.mark.parametrize("A,B", [(0.0, 2.0), (-2.0, 0.0)])
def test_sapl_construction_with_a_side_of_zero_length(A, B):
    """A = 0 (or B = 0): the empty side gets zero slopes, the other side interpolates, the bounds hold."""
    S = 8
    p = theory.sapl_construction(np.sin, A, B, S)
    empty = "neg" if A == 0 else "pos"
    assert np.all(p[f"a_{empty}"] == 0) and p[f"h_{empty}"] == 0 and not np.signbit(p[f"h_{empty}"])
    h = max(B, -A) / S
    fn = lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"])  # noqa: E731
    assert theory.max_error(np.sin, A, B, fn) <= h * h / 8 + 1e-12  # |sin''| <= 1
    side = h * np.arange(S + 1) * (1 if A == 0 else -1)
    np.testing.assert_allclose(fn(side), np.sin(side), atol=1e-13)  # S + 1 distinct grid points
    assert theory.max_error(np.cos, A, B, lambda x: theory.sapl_value(
        x, *(theory.sapl_construction(np.cos, A, B, S)[k] for k in ("a_pos", "b_pos", "a_neg", "b_neg")))) >= 1.0
