"""The KAF chapter's depth section (symact.experiments.kaf_depth): the gradient measurement against a hand
computation, the Gaussian-theory moments against Monte Carlo, the fix's gain property, bad input, and the two
experiments end to end at the smoke profile."""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from symact import theory_kaf
from symact.activations import create
from symact.activations.kaf import dictionary
from symact.experiments import kaf_depth as kd
from symact.experiments import verdicts
from symact.models import CifarResNet


def _tiny(act="relu", **kw):
    torch.manual_seed(0)
    return CifarResNet(8, act=act, width=4, **kw).train()


def _batch(n=6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_gradient_profile_against_a_hand_computation():
    model = _tiny()
    x, y = _batch()
    prof = kd.gradient_profile(model, x, y)
    # by hand: run the network module by module, keeping every block's input and output and the stem's
    # pre-activation, and differentiate the loss with respect to them
    conv, bn, act = model.stem[1], model.stem[2], model.stem[3]
    s = bn(conv(model.stem[0](x)))
    h = act(s)
    ins, outs = [], []
    for block in model.layers:
        ins.append(h)
        h = block(h)
        outs.append(h)
    loss = F.cross_entropy(model.classifier(model.pool(h)), y)
    g_s, g_h0, *g_blocks = torch.autograd.grad(loss, [s, ins[0], *outs])
    assert prof["loss"] == pytest.approx(float(loss.detach()), rel=1e-4)
    # the ReLU stem's gain by hand: the upstream gradient masked by 1[s > 0]
    by_hand = float((g_h0 * (s > 0)).pow(2).sum() / g_h0.pow(2).sum())
    assert prof["activations"][0]["gain"] == pytest.approx(by_hand, rel=1e-4)
    assert prof["activations"][0]["grad_in"] == pytest.approx(float(g_s.pow(2).sum()), rel=1e-4)
    for k, b in enumerate(prof["blocks"]):
        g_in = g_h0 if k == 0 else g_blocks[k - 1]
        assert b["grad_in"] == pytest.approx(float(g_in.pow(2).sum()), rel=1e-4)
        assert b["grad_out"] == pytest.approx(float(g_blocks[k].pow(2).sum()), rel=1e-4)
        assert b["factor"] == pytest.approx(b["grad_in"] / b["grad_out"], rel=1e-4)
    # convolution gradient norms: those of loss.backward(), and .grad untouched unless set_grads
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    norms = [float(m.weight.grad.norm()) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert prof["convs"] == pytest.approx(norms, rel=1e-4)
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    kd.gradient_profile(model, x, y, predict=False)
    assert all(torch.equal(before[n], p.grad) for n, p in model.named_parameters())
    model.zero_grad(set_to_none=True)
    kd.gradient_profile(model, x, y, predict=False, set_grads=True)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, before[n], rtol=1e-5, atol=1e-7)


def test_gradient_profile_predictions_for_relu_and_kaf():
    x, y = _batch(16)
    relu = kd.gradient_profile(_tiny(), x, y)
    stem = relu["activations"][0]  # batch-normalised: N(0, 1) per channel, ReLU's gain 1/2
    assert stem["predicted_gain"] == pytest.approx(0.5, abs=0.02)
    assert stem["pre_var"] == pytest.approx(1.0, abs=1e-3)
    b = relu["blocks"][0]
    assert b["predicted"] == pytest.approx(kd.block_factor(b["gain2"], b["chi1"], b["var_x"], b["beta2"]), rel=1e-3)
    assert b["chi1"] == pytest.approx(math.pi / (math.pi - 1), rel=0.05)  # ReLU's chi at N(0, 1), BN weight 1
    kaf = kd.gradient_profile(_tiny(lambda c: create("kaf", channels=c)), x, y)
    for a in kaf["activations"]:  # the empirical E f'(s)^2 and the theory on the layer's Gaussian moments
        assert a["empirical_gain"] == pytest.approx(a["predicted_gain"], rel=0.35)
    other = kd.gradient_profile(_tiny("elu"), x, y)  # no theory for ELU here: None, not a crash
    assert other["activations"][0]["predicted_gain"] is None and other["blocks"][0]["predicted"] is None


def test_kaf_gaussian_moments_against_monte_carlo():
    d, g = dictionary(20, 3.0, "thesis")
    alpha = np.random.default_rng(0).normal(0, 0.3, (3, 20))
    mean, var = np.array([0.0, 0.7, -1.2]), np.array([1.0, 2.5, 0.4])
    r = theory_kaf.kaf_gaussian_moments(alpha, d, g, mean, var)
    s = np.random.default_rng(1).standard_normal(400_000)
    for c in range(3):
        t = mean[c] + math.sqrt(var[c]) * s
        f1 = theory_kaf.kaf_derivative(t, alpha[c], d, g)
        f0 = theory_kaf.kaf_value(t, alpha[c], d, g)
        for key, v in (("gain", f1 ** 2), ("mean", f0), ("second", f0 ** 2)):
            se = v.std() / math.sqrt(len(v))
            assert abs(r[key][c] - v.mean()) < 5 * se + 1e-12, (key, c)
    # at N(0, 1) the closed forms of the chapter's proposition
    one = theory_kaf.kaf_gaussian_moments(alpha[0], d, g)
    assert one["gain"] == pytest.approx(theory_kaf.kaf_gain(alpha[0], d, g), rel=1e-12)
    assert (one["mean"], one["second"]) == pytest.approx(theory_kaf.kaf_output_moments(alpha[0], d, g), rel=1e-12)


def test_relu_gaussian_moments():
    r = theory_kaf.relu_gaussian_moments()
    assert (r["gain"], r["mean"], r["second"]) == pytest.approx((0.5, 1 / math.sqrt(2 * math.pi), 0.5))
    s = 0.4 + math.sqrt(1.7) * np.random.default_rng(0).standard_normal(400_000)
    r = theory_kaf.relu_gaussian_moments(0.4, 1.7)
    assert r["gain"] == pytest.approx((s > 0).mean(), abs=3e-3)
    assert r["mean"] == pytest.approx(np.maximum(s, 0).mean(), rel=5e-3)
    assert r["second"] == pytest.approx((np.maximum(s, 0) ** 2).mean(), rel=5e-3)


@pytest.mark.parametrize("rule", ["kafnets", "thesis"])
def test_fix_initialisation_preserves_the_targets_gain_monte_carlo(rule):
    """The fix's KAF (kernel ridge fit to ELU) has ELU's backward gain E[f'(s)^2], s ~ N(0, 1), by Monte Carlo
    through the library's module (autograd of the fused kernel)."""
    act = create("kaf", channels=None, init="elu", bandwidth=rule)
    s = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float32).requires_grad_(True)
    (g,) = torch.autograd.grad(act(s).sum(), s)
    v = g.double().pow(2)
    mc, se = float(v.mean()), float(v.std() / math.sqrt(len(v)))
    target = theory_kaf.target_gain("elu")
    assert abs(mc - target) < 0.03 * target
    d, gam = dictionary(20, 3.0, rule)
    assert abs(theory_kaf.kaf_gain(act.alpha.detach().double().numpy(), d, gam) - mc) < 5 * se


def test_branch_scale_keeps_todays_networks_and_bounds_the_product():
    torch.manual_seed(3)
    a = CifarResNet(20).state_dict()
    torch.manual_seed(3)
    b = CifarResNet(20, branch_scale=None).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    net = CifarResNet(56, branch_scale=kd.fix_branch_scale(56))
    assert net.blocks == 27 and kd.fix_branch_scale(56) == pytest.approx(1 / math.sqrt(27))
    assert all(torch.all(blk.bn2.weight == 1 / math.sqrt(27)) for blk in net.layers)
    assert all(torch.all(blk.bn1.weight == 1) for blk in net.layers)
    # with beta^2 = 1/N and G2 = 1 the product of N block factors is (1 + c/N)^N <= e^c
    c, n = 2.5, 27
    prod = np.prod([kd.block_factor(1.0, c, 1.0, 1 / n) for _ in range(n)])
    assert prod <= math.exp(c) and prod == pytest.approx((1 + c / n) ** n)


def test_block_factor_formula():
    assert kd.block_factor(0.5, 2.0, 0.25) == pytest.approx(0.5 * (1 + 8))
    assert kd.block_factor(0.5, 2.0, 0.25, beta2=0.0) == pytest.approx(0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="var_x"):
        kd.block_factor(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="gain2"):
        kd.block_factor(-1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown arm"):
        kd.network_spec(20, "gelu")
    with pytest.raises(ValueError, match="6n"):
        kd.fix_branch_scale(21)
    with pytest.raises(ValueError, match="branch_scale"):
        CifarResNet(20, branch_scale=-0.1)
    with pytest.raises(TypeError, match="CifarResNet"):
        kd.gradient_profile(torch.nn.Linear(3, 3), *_batch())
    with pytest.raises(ValueError, match="images"):
        kd.gradient_profile(_tiny(), torch.rand(4, 3, 8), torch.zeros(4, dtype=torch.long))
    d, g = dictionary(20, 3.0)
    with pytest.raises(ValueError, match="var"):
        theory_kaf.kaf_gaussian_moments(np.zeros(20), d, g, 0.0, 0.0)
    with pytest.raises(ValueError, match="one per channel"):
        theory_kaf.kaf_gaussian_moments(np.zeros((3, 20)), d, g, [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="var"):
        theory_kaf.relu_gaussian_moments(0.0, -1.0)
    cfg = kd.kaf_depth_gradients.configs["smoke"]
    with pytest.raises(ValueError, match="bandwidth rule"):
        kd._gradients_units(dataclasses.replace(cfg, nets=(("kaf", "-"),)))
    with pytest.raises(ValueError, match="unknown arms"):
        kd._gradients_units(dataclasses.replace(cfg, nets=(("swish", "-"),)))
    tcfg = kd.kaf_depth_training.configs["smoke"]
    with pytest.raises(ValueError, match="6n"):
        kd._training_units(dataclasses.replace(tcfg, runs=(("relu", 10),)))
    with pytest.raises(ValueError, match="repeats"):
        kd._training_units(dataclasses.replace(tcfg, seeds=(0, 0)))
    with pytest.raises(ValueError, match="kaf-depth-gradients"):
        kd.layer_table({"x": 1})
    with pytest.raises(ValueError, match="seed"):
        verdicts.paired_seeds({"provenance": {"profile": "paper"}, "result": {}}, {0: 0.1}, {1: 0.2}, what="x")


def test_smoke_end_to_end(needs_data):
    g = kd.kaf_depth_gradients(profile="smoke")
    summary = kd.depth_summary(g)
    assert set(summary["depth"]) == {8, 14} and len(summary) == 6
    layers = kd.layer_table(g)
    assert {"gain", "empirical_gain", "predicted_gain"} <= set(layers.columns)
    blocks = kd.block_table(g)
    assert len(blocks) == 3 * (1 + 2) * 3  # (depth 8: 3 blocks, 14: 6 blocks) x 3 networks
    assert len(kd.iteration_table(g)) == 6 * 2
    t = kd.kaf_depth_training(profile="smoke")
    s = kd.training_summary(t)
    assert set(zip(s.arm, s.depth)) == {("relu", 8), ("kaf", 14), ("kaf-fix", 14)}
    assert ((s.test_acc >= 0) & (s.test_acc <= 1)).all()
    curves = kd.training_curves(t)
    assert set(curves.columns) >= {"iteration", "loss", "acc", "grad_first"}
    net = next(iter(t["networks"].values()))
    assert len(kd.decode_outcome(net)) == net["n_test"]


def test_gradient_profile_of_a_diverged_network_has_no_prediction():
    model = _tiny(lambda c: create("kaf", channels=c))
    with torch.no_grad():
        model.layers[0].bn1.weight.fill_(float("nan"))
    prof = kd.gradient_profile(model, *_batch())
    assert prof["loss"] is None
    assert prof["blocks"][0]["predicted"] is None and prof["activations"][1]["predicted_gain"] is None
