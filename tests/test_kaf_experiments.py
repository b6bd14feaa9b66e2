"""The KAF chapter's experiment "KAFs may be good candidates" (symact.experiments.kaf): the thesis's small CNN,
the attacks written for it, the per-layer analysis on constructed inputs, bad input, and the experiment end to
end at the smoke profile."""
import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from symact.activations import KAF, KWTA
from symact.attacks import LossPGD
from symact.evaluation import decode_outcomes
from symact.experiments import kaf


def _toy_net():
    """A small network whose predictions on uniform random 3x2x2 images spread over three classes."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        net[1].weight.mul_(4)
        net[1].bias.zero_()
        net[3].bias.zero_()
    return net


# --------------------------------------------------------------------------------------------------- network


@pytest.mark.parametrize("act, cls", [("relu", nn.ReLU), ("kwta", KWTA), ("kaf", KAF)])
def test_small_cnn_shapes_layers_and_builder(act, cls):
    kwargs = {"kwta": {"ratio": 0.1}, "kaf": {"bandwidth": "thesis"}}.get(act, {})
    net = kaf.thesis_small_cnn(act, kwargs)
    out = net.eval()(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 10)
    mods = net.activation_modules()
    assert [n for n, _ in mods] == list(kaf.ThesisSmallCNN.layer_names)
    assert all(isinstance(m, cls) for _, m in mods)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64] and all(c.kernel_size == (3, 3) for c in convs)
    assert net.hidden[0].out_features == 128
    assert all(float(m.bias.detach().abs().max()) == 0 for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    if act == "kaf":
        assert mods[0][1].alpha.shape == (32, 20) and mods[-1][1].alpha.shape == (128, 20)
        assert mods[0][1].bandwidth == "thesis"


def test_small_cnn_bad_input():
    with pytest.raises(ValueError, match="widths"):
        kaf.ThesisSmallCNN(widths=(32,))
    with pytest.raises(ValueError, match="dropout"):
        kaf.ThesisSmallCNN(dropout=1.0)
    with pytest.raises(KeyError, match="unknown activation"):
        kaf.thesis_small_cnn("nonsense")


# --------------------------------------------------------------------------------------------------- attacks


def test_margin_loss_against_formula():
    z = torch.tensor([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]])
    y = torch.tensor([1, 0])
    assert torch.allclose(kaf.margin_loss(z, y), torch.tensor([2.0 - 3.0, 0.0 - 5.0]))


def test_predicted_label_pgd_is_true_label_pgd_on_correct_images_and_records_outcomes():
    net = _toy_net()
    x = torch.rand(32, 3, 2, 2)
    with torch.no_grad():
        pred = net(x).argmax(1)
    atk = kaf.PredictedLabelPGD(net, 0.1, 0.02, 5, restarts=2, seed=3)
    ref = LossPGD(net, 0.1, 0.02, 5, restarts=2, seed=3)(x, pred)
    wrong = (pred + 1) % 4  # "true" labels that the model gets wrong everywhere
    adv = atk(x, wrong)
    assert torch.equal(adv, ref)  # the attack follows the predictions, whatever labels it is given
    with torch.no_grad():
        assert torch.equal(atk.correct[0], net(adv).argmax(1) == wrong)
    atk(x, pred)
    assert len(atk.correct) == 2
    atk.reset()
    assert atk.correct == []
    with pytest.raises(ValueError):
        kaf.PredictedLabelPGD(net, -0.1, 0.01, 5)


def test_noise_averaged_pgd_stays_in_the_ball_reduces_accuracy_and_is_seeded():
    net = _toy_net()
    x = torch.rand(64, 3, 2, 2)
    with torch.no_grad():
        y = net(x).argmax(1)
    atk = kaf.NoiseAveragedPGD(net, 0.3, 0.05, 20, samples=4, sigma=0.05, restarts=2, seed=1)
    adv = atk(x, y)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert (net(adv).argmax(1) == y).float().mean() < 0.2
    assert torch.equal(adv, atk(x, y))


def test_noise_averaged_pgd_without_noise_is_margin_pgd():
    """One sample at sigma 0 is plain PGD on the margin loss; with one step and no chance to keep an earlier
    iterate it is one signed gradient step from the same random start."""
    net = _toy_net()
    x, y = torch.rand(8, 3, 2, 2), torch.randint(0, 4, (8,))
    adv = kaf.NoiseAveragedPGD(net, 0.1, 0.04, 1, samples=1, sigma=0.0, seed=5)(x, y)
    gen = torch.Generator().manual_seed(5)
    delta = ((torch.rand(x.shape, generator=gen) * 2 - 1) * 0.1)
    delta = (x + delta).clamp(0, 1) - x
    z = (x + delta).requires_grad_(True)
    (g,) = torch.autograd.grad(kaf.margin_loss(net(z), y).sum(), z)
    ref = x + ((x + (delta + 0.04 * g.sign()).clamp(-0.1, 0.1)).clamp(0, 1) - x)
    assert torch.allclose(adv, ref, atol=1e-7)


def test_noise_averaged_pgd_bad_input():
    net = _toy_net()
    for kwargs in ({"samples": 0}, {"sigma": -1.0}, {"samples": 1.5}):
        with pytest.raises(ValueError):
            kaf.NoiseAveragedPGD(net, 0.1, 0.01, 5, **kwargs)
    with pytest.raises(ValueError, match="steps"):
        kaf.NoiseAveragedPGD(net, 0.1, 0.01, 0)
    with pytest.raises(ValueError, match="images"):
        kaf.NoiseAveragedPGD(net, 0.1, 0.01, 1)(torch.rand(4, 12), torch.zeros(4, dtype=torch.long))


# --------------------------------------------------------------------------------------------------- analysis


def test_activation_distances_raw_scales_and_relative_does_not():
    g = torch.Generator().manual_seed(0)
    clean = {"a": torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64),
             "b": torch.randn(5, 7, generator=g, dtype=torch.float64)}
    adv = {k: v + 0.1 * torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in clean.items()}
    base = kaf.activation_distances(clean, adv)
    c = 7.5
    scaled = kaf.activation_distances({**clean, "a": c * clean["a"]}, {**adv, "a": c * adv["a"]})
    a0, a1 = base[base.layer == "a"], scaled[scaled.layer == "a"]
    np.testing.assert_allclose(a1["raw"].to_numpy(), c * a0["raw"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(a1["relative"].to_numpy(), a0["relative"].to_numpy(), rtol=1e-12)
    b0, b1 = base[base.layer == "b"], scaled[scaled.layer == "b"]
    np.testing.assert_array_equal(b0["raw"].to_numpy(), b1["raw"].to_numpy())
    # the formula, for one image
    d = float((adv["b"][2] - clean["b"][2]).double().norm() / clean["b"][2].double().norm())
    assert b0["relative"].iloc[2] == pytest.approx(d, rel=1e-12)
    assert list(base.columns) == ["layer", "image", "raw", "clean_norm", "relative"]
    assert list(dict.fromkeys(base.layer)) == ["a", "b"]


def test_activation_distances_zero_clean_layer_gives_nan_relative():
    df = kaf.activation_distances({"z": torch.zeros(2, 3)}, {"z": torch.ones(2, 3)})
    assert np.isnan(df["relative"]).all() and np.allclose(df["raw"], 3 ** 0.5)


def test_activation_distances_bad_input():
    with pytest.raises(ValueError, match="same layers"):
        kaf.activation_distances({"a": torch.zeros(2, 3)}, {"b": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="equal shapes"):
        kaf.activation_distances({"a": torch.zeros(2, 3)}, {"a": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="no layers"):
        kaf.activation_distances({}, {})
    with pytest.raises(TypeError):
        kaf.activation_distances([torch.zeros(2, 3)], [torch.zeros(2, 3)])


def test_layer_activations_records_inputs_and_outputs():
    net = kaf.thesis_small_cnn("relu").eval()
    x = torch.rand(2, 3, 32, 32)
    acts = kaf.layer_activations(net, x)
    assert list(acts) == list(kaf.ThesisSmallCNN.layer_names)
    assert acts["conv1"]["pre"].shape == (2, 32, 32, 32) and acts["dense"]["post"].shape == (2, 128)
    assert torch.equal(acts["conv3"]["post"], acts["conv3"]["pre"].clamp_min(0))
    with pytest.raises(ValueError, match="no registered activation"):
        kaf.layer_activations(nn.Sequential(nn.Flatten()), x)


def _fake_result():
    """A stored-result-shaped dict with two activations, one seed each: layer "l1" of "kaf" is the "relu"
    network's layer scaled by 10 (raw distances x10, relative equal); "l2" of "kaf" is closer in both."""
    def net(act, scale, l2):
        raw1, norm1 = [1.0 * scale, 2.0 * scale, 3.0 * scale], [10.0 * scale, 10.0 * scale, 10.0 * scale]
        layers = {"l1": {"distances": {"raw_post": raw1, "norm_post": norm1, "raw_pre": raw1, "norm_pre": norm1},
                         "edges": [0.0, 1.0, 2.0],
                         "preact": {c: {"quantiles": [0.1, 0.5], "hist": [3, 1], "n": 5, "mean": 0.5, "std": 1.0}
                                    for c in ("clean", "adversarial")}},
                  "l2": {"distances": {"raw_post": l2, "norm_post": [1.0, 1.0, 1.0], "raw_pre": l2,
                                       "norm_pre": [1.0, 1.0, 1.0]}, "edges": [0.0, 1.0, 2.0],
                         "preact": {c: {"quantiles": [0.2, 0.6], "hist": [2, 2], "n": 4, "mean": 0.5, "std": 1.0}
                                    for c in ("clean", "adversarial")}}}
        return {"act": act, "seed": 0, "history": {"train_acc": [0.5]}, "analysis": {"quantile_levels": [0.1, 0.5],
                                                                                     "layers": layers}}
    return {"networks": {"relu-seed0": net("relu", 1.0, [0.5, 0.5, 0.5]), "kaf-seed0": net("kaf", 10.0, [0.1] * 3)}}


def test_distance_table_and_smallest_distance_on_constructed_result():
    res = _fake_result()
    t = kaf.distance_table(res)
    r = t.set_index(["act", "layer"])
    assert r.loc[("kaf", "l1"), "raw_median"] == pytest.approx(10 * r.loc[("relu", "l1"), "raw_median"])
    assert r.loc[("kaf", "l1"), "relative_median"] == pytest.approx(r.loc[("relu", "l1"), "relative_median"])
    assert r.loc[("relu", "l1"), "relative_median"] == pytest.approx(0.2)
    s = kaf.smallest_distance(res).set_index("layer")
    assert s.loc["l1", "smallest_raw"] == "relu" and s.loc["l2", "smallest_raw"] == "kaf"
    assert bool(s.loc["l2", "same"])
    with pytest.raises(ValueError, match="which"):
        kaf.distance_table(res, which="middle")
    with pytest.raises(ValueError, match="kaf_candidates"):
        kaf.distance_table({"runs": []})


def test_preactivation_tables_on_constructed_result():
    res = _fake_result()
    q = kaf.preactivation_quantiles(res)
    assert len(q) == 2 * 2 * 2 * 2  # networks x layers x conditions x levels
    h = kaf.preactivation_histograms(res)
    one = h[(h.network == "relu-seed0") & (h.layer == "l1") & (h.condition == "clean")]
    assert one["count"].tolist() == [3, 1]
    assert one["density"].tolist() == pytest.approx([3 / 5, 1 / 5])


# --------------------------------------------------------------------------------------------------- experiment


def test_config_bad_input():
    cfg = kaf.kaf_candidates.configs["smoke"]
    with pytest.raises(ValueError, match="unknown activations"):
        kaf._candidate_units(dataclasses.replace(cfg, acts=("relu", "swish")))
    with pytest.raises(ValueError, match="n_analysis"):
        kaf._candidate_units(dataclasses.replace(cfg, n_analysis=cfg.n_test + 1))
    with pytest.raises(ValueError, match="aa_steps"):
        kaf._candidate_units(dataclasses.replace(cfg, aa_steps=0))
    units = kaf._candidate_units(kaf.kaf_candidates.configs["paper"])
    assert len(units) == 2 * 3 * 3 and all(u.zoo for u in units if not u.key.startswith("eval-"))
    assert kaf.autoattack_name(kaf.kaf_candidates.configs["paper"]) == "autoattack"
    assert kaf.autoattack_label(kaf.kaf_candidates.configs["quick"]) == "AutoAttack"
    assert "not AutoAttack" in kaf.autoattack_label(cfg)


def test_smoke_end_to_end(needs_data, monkeypatch):
    monkeypatch.setenv("SYMACT_DEVICE", "cpu")
    res = kaf.kaf_candidates(profile="smoke", n_test=16, n_analysis=8, square_queries=10)
    assert res["data"] == "CIFAR-10 (JPEG q75 copy)"
    json.dumps(dict(res))  # JSON-able
    acc = kaf.accuracy_table(res)
    assert list(acc["act"]) == list(kaf.CANDIDATE_ACTS)
    shuffled = {"networks": dict(sorted(res["networks"].items()))}  # as a stored result holds them
    assert list(kaf.accuracy_table({**res, **shuffled})["act"]) == list(kaf.CANDIDATE_ACTS)
    assert res["networks"]["kaf-seed0"]["analysis"]["layer_order"] == list(kaf.ThesisSmallCNN.layer_names)
    for r in acc.itertuples():
        assert r.worst_case <= min(r.pgd, r.autoattack, r.square) + 1e-12
        assert r.pgd_predicted_robust <= r.clean + 1e-12
    assert np.isnan(acc.set_index("act").loc["relu", "adaptive"])
    assert not np.isnan(acc.set_index("act").loc["kwta", "adaptive"])
    net = res["networks"]["kwta-seed0"]
    ev = net["evaluation"]
    worst = decode_outcomes(ev["worst_case"]["outcome"], ev["n"])
    assert set(ev["worst_case"]["attacks"]) == {"pgd", "aa-reduced", "square", "adaptive"}
    assert worst.sum() == ev["worst_case"]["robust"]
    clean = decode_outcomes(ev["outcome"], ev["n"])
    after = decode_outcomes(net["pgd_predicted"]["correct_after"], ev["n"])
    assert net["pgd_predicted"]["rescued"] == int((after & ~clean).sum())
    d = kaf.distance_table(res)
    assert len(d) == 3 * 5 and (d["n"] == 8).all() and (d["raw_median"] >= 0).all()
    assert len(kaf.smallest_distance(res)) == 5
    assert set(kaf.preactivation_quantiles(res)["condition"]) == {"clean", "adversarial"}
    assert net["analysis"]["linf"] <= 0.031 + 1e-6
