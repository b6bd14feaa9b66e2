"""Adaptive attacks (BPDA through k-WTA and a smoothed KAF), the ReLU-forward softplus-backward activation, and
the analysis of symact.experiments.kaf_adaptive."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from symact import attacks, benchmark
from symact.activations import KAF, KWTA, ReLUSoftplusGrad, create
from symact.activations.baselines import relu_softplus_grad
from symact.activations.kaf import kaf_naive
from symact.evaluation import encode_outcomes
from symact.experiments import kaf as kexp
from symact.experiments import kaf_adaptive as ka
from symact.results import Result, config_hash


# --------------------------------------------------------------------------- ReLU forward, softplus backward


def test_relu_softplus_grad_forward_is_relu_bit_for_bit():
    x = torch.cat([torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 5,
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0])])
    for dtype in (torch.float32, torch.float64, torch.float16):
        xx = x.to(dtype)
        assert torch.equal(relu_softplus_grad(xx), torch.relu(xx))
        assert torch.equal(ReLUSoftplusGrad(beta=3.0)(xx), torch.relu(xx))
        assert relu_softplus_grad(xx).dtype == dtype


@pytest.mark.parametrize("beta", [10.0, 1.0, 2.5])
def test_relu_softplus_grad_backward_is_the_softplus_derivative(beta):
    """gradcheck in float64: h(x) = f(x) - relu(x) + softplus_beta(x) (the last two without gradient) has the value
    softplus_beta(x), so its numerical derivative is softplus_beta'(x), and its analytical one is f's custom
    backward alone: they agree only if the backward is the softplus derivative."""
    x = (torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()

    def h(inp):
        return relu_softplus_grad(inp, beta) - torch.relu(inp).detach() + F.softplus(inp, beta=beta).detach()

    assert torch.autograd.gradcheck(h, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)
    (g,) = torch.autograd.grad(relu_softplus_grad(x, beta).sum(), x)
    (ref,) = torch.autograd.grad(F.softplus(x, beta=beta).sum(), x)
    torch.testing.assert_close(g, ref, atol=1e-8, rtol=0)  # torch's softplus is linear beyond beta x > 20
    torch.testing.assert_close(g, torch.sigmoid(beta * x.detach()), atol=1e-14, rtol=0)


def test_relu_softplus_grad_registered_and_bad_input():
    assert isinstance(create("relu_softplus_grad"), ReLUSoftplusGrad)
    assert create("relu_softplus_grad").beta == 10.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="beta"):
            ReLUSoftplusGrad(beta=bad)


def test_the_ablation_row_is_registered_and_the_existing_rows_are_unchanged():
    for ds in benchmark.DATASETS:
        exp = benchmark.experiment_for(ds, "relu-softplus-grad")
        assert exp.configs["paper"].activation == "relu_softplus_grad"
        assert exp.configs["paper"].protocol == benchmark.protocol(ds, "paper")
    # the config hashes of rows whose paper runs are in progress must not move (values of commit 53cc835; the
    # CIFAR-10 ones of 2026-12-08, the range test's 400 steps, before any CIFAR-10 paper row was stored)
    assert config_hash(benchmark.experiment_for("cifar10", "relu").configs["paper"]) == "067811ec559a8e86"
    assert config_hash(benchmark.experiment_for("cifar10", "kaf").configs["paper"]) == "16ba6a4fb2dbdd38"
    assert config_hash(benchmark.experiment_for("cifar10", "silu").configs["paper"]) == "70a43bbdc26bf52a"
    assert config_hash(benchmark.experiment_for("mnist", "relu").configs["paper"]) == "a9df6b03f8c16984"
    assert config_hash(kexp.kaf_candidates.configs["quick"]) == "0fbeec550e61e8e7"
    assert config_hash(kexp.kaf_candidates.configs["paper"]) == "6f40ded2650f43ad"


# --------------------------------------------------------------------------- BPDA


def _kwta_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), KWTA(ratio=0.25), nn.Linear(16, 3)).eval()


def _kaf_net(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6), KAF(channels=6, bandwidth="thesis"),
                         nn.Linear(6, 3)).to(dtype).eval()


def _input(dtype=torch.float32):
    return torch.rand(5, 1, 3, 4, generator=torch.Generator().manual_seed(2)).to(dtype)


@pytest.mark.parametrize("make, rule", [(_kwta_net, attacks.straight_through_kwta),
                                        (_kaf_net, attacks.smoothed_kaf(0.5))])
def test_backward_surrogate_leaves_the_forward_pass_bit_for_bit(make, rule):
    net, x = make(), _input()
    ref = net(x)
    with attacks.backward_surrogate(net, rule) as n:
        assert n == 1
        assert torch.equal(net(x), ref)
        assert torch.equal(net(x.requires_grad_()), ref)
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed on exit


def test_straight_through_kwta_is_the_identity_backward():
    """y = kwta(x), L = <c, y>: the exact gradient is c on the winners and 0 elsewhere; straight through, c."""
    x = torch.randn(2, 20, generator=torch.Generator().manual_seed(3), requires_grad=True)
    c = torch.randn(2, 20, generator=torch.Generator().manual_seed(4))
    net = nn.Sequential(KWTA(ratio=0.2))
    (exact,) = torch.autograd.grad((net(x) * c).sum(), x)
    assert (exact == 0).sum() == 32  # 4 winners of 20 per row
    with attacks.backward_surrogate(net, attacks.straight_through_kwta):
        (st,) = torch.autograd.grad((net(x) * c).sum(), x)
    torch.testing.assert_close(st, c, atol=0, rtol=0)


def test_smoothed_kaf_is_the_gaussian_expectation():
    """f_tau(s) = E f(s + tau z), z ~ N(0, 1), against a dense trapezoid rule over z in [-12, 12] of the KAF itself
    (float64; the integrand is smooth and negligible beyond, so the rule is accurate to rounding)."""
    act = KAF(channels=None, bandwidth="thesis").double()
    with torch.no_grad():
        act.alpha.normal_(0, 1, generator=torch.Generator().manual_seed(5))
    s = torch.linspace(-5, 5, 41, dtype=torch.float64)
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    w = torch.full_like(z, float(z[1] - z[0]))
    w[0] = w[-1] = w[0] / 2
    w = w * torch.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    for tau in (0.3, 1.0, 2.0):
        g = attacks.smoothed_kaf_function(act, tau)
        vals = kaf_naive(s[:, None] + tau * z[None, :], act.alpha.detach(), act.boundary, "thesis")
        torch.testing.assert_close(g(s), (vals * w).sum(1), atol=1e-11, rtol=1e-9)
    torch.testing.assert_close(attacks.smoothed_kaf_function(act, 0.0)(s), act(s), atol=1e-12, rtol=0)


def test_bpda_at_tau_zero_is_the_exact_gradient_and_wider_smoothing_changes_it():
    net, x = _kaf_net(torch.float64), _input(torch.float64).requires_grad_()
    y = torch.tensor([0, 1, 2, 0, 1])

    def grad():
        return torch.autograd.grad(attacks.margin_loss(net(x), y).sum(), x)[0]

    exact = grad()
    with attacks.backward_surrogate(net, attacks.smoothed_kaf(0.0)):
        torch.testing.assert_close(grad(), exact, atol=1e-12, rtol=1e-10)
    with attacks.backward_surrogate(net, attacks.smoothed_kaf(1.0)):
        smooth = grad()
    assert not torch.allclose(smooth, exact, atol=1e-6)


def test_backward_surrogate_bad_input():
    with pytest.raises(ValueError, match="matches no module"):
        with attacks.backward_surrogate(_kwta_net(), attacks.smoothed_kaf(0.5)):
            pass
    with pytest.raises(TypeError, match="callable"):
        with attacks.backward_surrogate(_kwta_net(), "identity"):
            pass
    with pytest.raises(TypeError, match="must be a function"):
        with attacks.backward_surrogate(_kwta_net(), lambda m: 3 if isinstance(m, KWTA) else None):
            pass
    for bad in (-0.1, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="tau"):
            attacks.smoothed_kaf(bad)
    with pytest.raises(TypeError, match="KAF module"):
        attacks.smoothed_kaf_function(nn.ReLU(), 0.5)
    with pytest.raises(ValueError, match="loss"):
        attacks.BPDAPGD(_kwta_net(), 0.1, 0.01, 5, loss="dlr")
    with pytest.raises(ValueError, match="eps"):
        attacks.BPDAPGD(_kwta_net(), -0.1, 0.01, 5)


def test_bpda_pgd_stays_in_the_ball_is_seeded_and_not_weaker_than_nothing():
    net, x = _kaf_net(), _input()
    y = net(x).argmax(1)  # every image correct
    atk = attacks.BPDAPGD(net, 0.3, 0.05, 10, restarts=2, surrogate=attacks.smoothed_kaf(0.5), seed=1)
    adv = atk(x, y)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.3 + 1e-6
    assert torch.equal(adv, atk(x, y))
    with torch.no_grad():
        assert (net(adv).argmax(1) != y).any()
    ce = attacks.BPDAPGD(_kwta_net(), 0.3, 0.05, 3, loss="ce", seed=0)
    assert ce(x, y).shape == x.shape


# --------------------------------------------------------------------------- configs


def test_configs_check_their_input():
    with pytest.raises(ValueError, match="kaf_taus"):
        ka.AdaptiveAttacks(kaf_taus=(-1.0,))
    with pytest.raises(ValueError, match="aa_steps"):
        ka.AdaptiveAttacks(aa_steps=0)
    cand = kexp.kaf_candidates.configs["smoke"]
    with pytest.raises(ValueError, match="seeds"):
        ka.AdaptiveConfig(cand, ka.AdaptiveAttacks(n_test=8), seeds=(7,))
    with pytest.raises(ValueError, match="n_test"):
        ka.AdaptiveConfig(cand, ka.AdaptiveAttacks(n_test=10_000), seeds=(0,))
    with pytest.raises(ValueError, match="eps"):
        ka.AdaptiveConfig(cand, ka.AdaptiveAttacks(eps=0.1, n_test=8), seeds=(0,))
    with pytest.raises(ValueError, match="not a KAF row"):
        ka.FatAdaptiveConfig(ka.AdaptiveAttacks(eps=8 / 255), rows=("relu",))
    with pytest.raises(ValueError, match="kind"):
        ka.attack_names("gelu", ka.AdaptiveAttacks())
    assert ka.attack_names("kaf", ka.AdaptiveAttacks(kaf_taus=(0.0, 0.5))) == [
        "pgd", "autoattack", "square", "bpda-tau0", "bpda-tau0.5", "transfer"]


def test_the_fat_network_unit_names_the_missing_run():
    with pytest.raises(FileNotFoundError, match=r"symact run benchmark/cifar10-kaf --profile paper"):
        ka._fat_network("cifar10", "kaf", "paper", 0)


# --------------------------------------------------------------------------- analysis


def _net(name, seed, outcomes: dict, clean):
    n = len(clean)
    return {"name": name, "seed": seed, "source": "test", "deterministic": True,
            "evaluation": {"n": n, "clean_acc": float(np.mean(clean)),
                           "attacks": {k: {"outcome": encode_outcomes(np.asarray(v, bool))} for k, v in outcomes.items()}}}


def _result(profile="quick", seeds=(0,)):
    nets = {}
    for s in seeds:
        nets[f"relu-seed{s}"] = _net("relu", s, {"pgd": [1, 1, 0, 0], "autoattack": [1, 0, 0, 0],
                                                "square": [1, 1, 0, 0]}, [1, 1, 1, 0])
        nets[f"kwta-seed{s}"] = _net("kwta", s, {"pgd": [1, 1, 1, 0], "autoattack": [1, 1, 1, 0],
                                                "square": [1, 1, 0, 0], "noise-pgd": [0, 1, 0, 0],
                                                "bpda-st": [1, 0, 0, 0], "transfer": [1, 1, 1, 0]}, [1, 1, 1, 0])
        nets[f"kaf-seed{s}"] = _net("kaf", s, {"pgd": [1, 1, 1, 1], "autoattack": [1, 1, 1, 0],
                                              "square": [1, 1, 1, 1], "bpda-tau0": [1, 1, 1, 0],
                                              "bpda-tau0.5": [1, 0, 1, 0], "transfer": [1, 1, 1, 1]}, [1, 1, 1, 1])
    return Result({"data": "toy", "n_test": 4, "networks": nets}, {"profile": profile})


def test_accuracy_table_takes_the_worst_case_per_image():
    t = ka.accuracy_table(_result()).set_index("name")
    assert t.at["relu", "standard"] == 0.25 and t.at["relu", "worst_case"] == 0.25
    assert math.isnan(t.at["relu", "adaptive"]) and math.isnan(t.at["relu", "bpda-st"])
    assert t.at["kwta", "pgd"] == 0.75 and t.at["kwta", "standard"] == 0.5
    assert t.at["kwta", "adaptive"] == 0.0 and t.at["kwta", "worst_case"] == 0.0
    assert t.at["kaf", "standard"] == 0.75 and t.at["kaf", "adaptive"] == 0.5 and t.at["kaf", "worst_case"] == 0.5
    assert t["deterministic"].all()


def test_adaptive_gain_counts_images_only_the_adaptive_attack_breaks():
    g = ka.adaptive_gain(_result()).set_index(["name", "attack"])
    assert g.at[("kwta", "noise-pgd"), "standard_robust"] == 2
    assert g.at[("kwta", "noise-pgd"), "broken_only_by_it"] == 1
    assert g.at[("kwta", "bpda-st"), "broken_only_by_it"] == 1
    assert g.at[("kaf", "bpda-tau0.5"), "broken_only_by_it"] == 1
    assert g.at[("kaf", "transfer"), "broken_only_by_it"] == 0
    assert ("relu", "pgd") not in g.index


def test_advantage_table_and_errors():
    a = ka.advantage_table(_result(seeds=(0, 1)))
    assert list(a["seed"]) == [0, 1]
    assert a["standard_diff"].tolist() == [0.5, 0.5] and a["worst_diff"].tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match="no seed"):
        ka.advantage_table(_result(), name="gelu")
    with pytest.raises(ValueError, match="networks"):
        ka.accuracy_table({"rows": {}})


def test_claim_judges_follow_the_verdict_rule():
    j = ka._kwta_judge(_result("quick"))
    assert j.word == "not run at a converged protocol"
    assert j.verdict.effect == pytest.approx(-0.75)
    j = ka._kwta_judge(_result("paper"))  # one seed: on the images, McNemar; 4 images cannot decide
    assert "McNemar" in j.design and j.word in ("no detectable difference", "worse")
    j = ka._survives_judge(_result("paper", seeds=(0, 1)))  # two seeds: paired over seeds, underpowered
    assert j.word == "inconclusive" and j.verdict.effect == pytest.approx(0.25)


def test_smooth_at_table_says_which_rows_are_not_stored(monkeypatch):
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, p, rows: {r: None for r in rows})
    t = ka.smooth_at_table()
    assert list(t["row"]) == list(ka.SMOOTH_ROWS) and not t["stored"].any()


def test_claims_are_registered_with_sections_of_the_chapter_and_judge_nothing_unstored():
    from pathlib import Path

    from symact.claims import CLAIMS

    book = (Path(__file__).resolve().parents[1] / "book" / "kaf.md").read_text()
    keys = ["kaf/kwta-robust-under-pgd-only", "kaf/kaf-advantage-survives-adaptive",
            "kaf/kaf-fat-advantage-survives-adaptive", "kaf/smooth-at-helps", "kaf/smooth-backward-helps"]
    for key in keys:
        c = CLAIMS[key]
        assert f"({c.section})=" in book, key
        for prof in ("paper", "quick"):
            assert c.judge(prof) is None  # the tests' results folder is empty: nothing stored, nothing judged
