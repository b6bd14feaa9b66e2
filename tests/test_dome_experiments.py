"""Helpers of the DOME chapter's experiments (symact.experiments.dome)."""
import numpy as np
import pytest
import torch

from symact.activations.dome import MDOME
from symact.experiments import dome as exp
from symact.models import LeNet5


def _two_clusters(spread):
    g = np.random.default_rng(0)
    z = np.concatenate([g.normal(0, spread, (100, 2)), g.normal(0, spread, (100, 2)) + [10, 0]])
    return z, np.repeat([0, 1], 100)


def test_distance_stats_separated_and_mixed_clusters():
    sep = exp.distance_stats(*_two_clusters(0.1))
    assert sep["intra_inter_ratio"] < 0.05 and sep["auc"] == 1.0 and sep["overlap"] < 0.01
    z = np.random.default_rng(1).normal(size=(200, 2))
    mixed = exp.distance_stats(z, np.repeat([0, 1], 100))
    assert 0.9 < mixed["intra_inter_ratio"] < 1.1 and 0.4 < mixed["auc"] < 0.6 and mixed["overlap"] > 0.8
    assert sep["radius_mean"] == pytest.approx(np.linalg.norm(_two_clusters(0.1)[0], axis=1).mean())


def test_class_likelihood_is_normalised_per_class():
    z, y = _two_clusters(1.0)
    lik = exp.class_likelihood(z, y)
    assert lik.shape == (200,) and (lik > 0).all()
    for c in (0, 1):
        assert lik[y == c].max() == pytest.approx(1.0)
    # the densest point of a Gaussian cloud is near its centre
    centre = np.argmax(lik[:100])
    assert np.linalg.norm(z[centre]) < 1.0


def test_distance_stats_auc_by_hand():
    # on a line: 0 and 1 in class 0, 2 in class 1 -> intra {1}, inter {2, 1}: one win and one tie, AUC 3/4
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert exp.distance_stats(line, np.array([0, 0, 1]))["auc"] == pytest.approx(0.75)
    # 0 and 1 in class 0, 3 in class 1 -> intra {1}, inter {3, 2}: disjoint, AUC 1
    far = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    assert exp.distance_stats(far, np.array([0, 0, 1]))["auc"] == 1.0
    # the class in the middle: 0 and 2 in class 0, 1 in class 1 -> intra {2}, inter {1, 1}: AUC 0
    assert exp.distance_stats(line, np.array([0, 1, 0]))["auc"] == 0.0


def test_class_likelihood_by_hand():
    # a square's corners and its centre: covariance I (ddof 1), Scott's bandwidth 5^(-1/6), so the kernel
    # covariance is h2 I with h2 = 5^(-1/3); squared distances: centre-corner 2, side 4, diagonal 8
    z = np.array([[0.0, 0.0], [1, 1], [1, -1], [-1, 1], [-1, -1]])
    h2 = 5 ** (-1 / 3)
    k = lambda d2: np.exp(-0.5 * d2 / h2)  # noqa: E731
    centre, corner = 1 + 4 * k(2), 1 + k(2) + 2 * k(4) + k(8)
    lik = exp.class_likelihood(z, np.zeros(5, dtype=int))
    assert lik == pytest.approx([1.0] + [corner / centre] * 4)
    with pytest.raises(ValueError, match="needs more than 2"):
        exp.class_likelihood(z[:2], np.array([0, 0]))
    with pytest.raises(ValueError, match="N labels"):
        exp.class_likelihood(z, np.zeros(4))


def test_paper_tables_cover_every_cell():
    cells = {(d, m) for d in exp.DATASETS for m in exp.MODELS}
    assert set(exp.PAPER_TABLE1) == cells and set(exp.PAPER_TABLE2) == cells
    assert set(exp.TABLE2) == {(n, d, m) for n in exp.REGISTERED_NETWORKS for d, m in cells}


def test_union_of_views_restores_the_view_and_tries_each():
    head = MDOME(n=3, dim=3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), head).eval()
    seen = []

    def make(m):
        def attack(x, y):
            seen.append(head.output)
            return x if head.output != "logit2" else torch.zeros_like(x)  # only the last view "finds" something
        return attack

    x = torch.rand(8, 1, 2, 2)
    y = model(x).argmax(1)
    adv = exp.union_of_views(model, head, make)(x, y)
    assert seen == list(exp.MDOME_VIEWS) and head.output == "normalized"
    fooled = model(torch.zeros_like(x)).argmax(1) != y
    assert torch.equal(adv[fooled], torch.zeros_like(x)[fooled])
    assert torch.equal(model(adv[~fooled]).argmax(1), y[~fooled])  # no view fooled these


def test_lenet_embed_act_none_keeps_a_linear_embedding():
    m = LeNet5("mnist", num_classes=2, embed_dim=2, embed_act=None)
    assert isinstance(m.hidden[-1], torch.nn.Identity)
    assert m.embed(torch.rand(3, 1, 28, 28)).shape == (3, 2)


# --------------------------------------------------------------------------- Table 2 with seeds (dome_robust)

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

from symact import claims  # noqa: E402
from symact.experiments import dome_robust as rob  # noqa: E402


def test_robust_experiments_cover_every_network_and_dataset():
    assert set(rob.ROBUST) == {(n, d) for n in exp.NETWORKS for d in exp.DATASETS}
    paper = rob.ROBUST[("lenet", "mnist")].configs["paper"]
    assert len(paper.seeds) >= 3 and paper.epochs == 30 and paper.n_train is None  # the paper's 30 epochs, all data
    assert max(paper.eps_grid) == pytest.approx(0.3) and any(abs(e - 8 / 255) < 1e-12 for e in paper.eps_grid)
    for ds in exp.DATASETS:  # the Table 2 budget is on every paper and quick grid
        for prof in ("quick", "paper"):
            cfg = rob.ROBUST[("lenet", ds)].configs[prof]
            assert any(abs(e - cfg.eps) < 1e-12 for e in cfg.eps_grid), (ds, prof)
    keys = [u.key for u in rob._units(paper)]
    per_net = 1 + 1 + len(paper.eps_grid) + 2  # train, clean, one per epsilon, fab, sanity
    assert len(keys) == per_net * 3 * len(paper.seeds) and len(set(keys)) == len(keys)
    assert {"train-pdome-seed2", "clean-mdome-seed0", "eps=0.3-baseline-seed1", "sanity-pdome-seed0"} <= set(keys)


def test_table2_network_and_bad_configs():
    for model in exp.MODELS:
        net = rob.table2_network("lenet", model, classes=10, channels=1)
        assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert type(rob.table2_network("lenet", "mdome", 10, 3).out_act).__name__ == "MDOME"
    with pytest.raises(ValueError, match="network"):
        rob.table2_network("vgg", "baseline", 10, 1)
    base = rob.ROBUST[("lenet", "mnist")].configs["smoke"]
    for bad in (dict(models=("pdome",)), dict(models=("baseline", "kaf")), dict(seeds=()), dict(seeds=(0, 0)),
                dict(eps_grid=()), dict(dataset="svhn")):
        with pytest.raises(ValueError):
            rob._units(dataclasses.replace(base, **bad))


def test_merge_curves_orders_the_points():
    def point(e, k):
        return {"protocol": 1, "predict": "argmax", "n": 4, "clean_acc": 1.0, "level": 0.95, "attacks": ["pgd"],
                "eps_grid": [e], "eps": [e], "stopped_early": False, "robust": {"pgd": [k], "worst_case": [k]},
                "robust_acc": {"pgd": [k / 4], "worst_case": [k / 4]}, "interval": {"pgd": [[0, 1]], "worst_case": [[0, 1]]},
                "points": [{"eps": e}]}
    c = rob._merge_curves([point(0.3, 0), point(0.1, 3)])
    assert c["eps"] == [0.1, 0.3] and c["robust_acc"]["worst_case"] == [0.75, 0.0] and c["points"][0] == {"eps": 0.1}
    assert rob._at(c, 0.3, "worst_case") == 0.0


def test_at_reads_the_curve():
    curve = {"eps_grid": [0.1, 0.2, 0.3], "eps": [0.1, 0.2], "stopped_early": True,
             "robust_acc": {"worst_case": [0.5, 0.0]}}
    assert rob._at(curve, 0.1, "worst_case") == 0.5
    assert rob._at(curve, 0.3, "worst_case") == 0.0  # past a curve stopped at zero
    assert np.isnan(rob._at(curve, 0.05, "worst_case"))


def test_robust_smoke_run_baseline_and_mdome():
    e = rob.ROBUST[("lenet", "mnist")]
    cfg = dataclasses.replace(e.configs["smoke"], models=("baseline", "mdome"))
    res = e.run(cfg)
    df = rob.robust_summary(res)
    assert list(df["network"]) == ["baseline-seed0", "mdome-seed0"]
    assert df["robust@0.5"].between(0, 1).all() and np.isnan(df["worst_case"]).all()  # 8/255 not on the smoke grid
    for net in res["networks"].values():
        assert net["curve"]["attacks"] == ["pgd", "autoattack"] and net["sanity"]["checks"]
        assert 0 <= net["clean"]["clean_acc"] <= 1 and len(net["distances"]["distances"]) == cfg.n_eval
    assert set(res["networks"]["mdome-seed0"]["learned"]["out_act"]) == {"mu", "sigma"}
    means = rob.robust_means(res)
    assert list(means["model"]) == ["baseline", "mdome"] and (means["seeds"] == 1).all()
    assert means.loc[1, "paper_aa"] == exp.PAPER_TABLE2[("mnist", "mdome")][2]


def test_table2_claims_are_registered():
    keys = {c for c in claims.CLAIMS if c.startswith("dome/")}
    assert {f"dome/table2-{d}-{m}" for d in exp.DATASETS for m in ("pdome", "mdome")} <= keys
    assert {"dome/compact-dome", "dome/compact-pdome", "dome/compact-mdome"} <= keys
    assert "+2.97" in claims.CLAIMS["dome/table2-fashion-mnist-pdome"].text


def test_table2_cells_on_the_stored_paper_results(monkeypatch):
    monkeypatch.setenv("SYMACT_RESULTS", str(Path(__file__).resolve().parents[1] / "results"))
    results = {(d, m): exp.TABLE2[("lenet", d, m)].stored("paper") for d in ("mnist", "fashion-mnist")
               for m in exp.MODELS}
    if any(r is None for r in results.values()):
        pytest.skip("the paper-profile Table 2 cells are not stored (or stale)")
    df = exp.table2_cells(results).set_index(["dataset", "model"])
    assert len(df) == 6 and (df["profile"] == "paper").all() and (df["epochs"] <= 30).all()
    fp = df.loc[("fashion-mnist", "pdome")]
    # the numbers: PDOME's robust gain on Fashion-MNIST is about +0.2 points against the paper's +2.97
    assert fp["gain_cascade"] == pytest.approx(0.2, abs=0.05) and fp["paper_gain_aa"] == pytest.approx(2.97)
    assert df.loc[("mnist", "baseline"), "gain_cascade"] == 0.0
    assert df.loc[("fashion-mnist", "mdome"), "cascade"] <= 100 * results[("fashion-mnist", "mdome")]["autoattack"][
        "robust_acc"]  # the lowest of the union and per-view runs
    assert exp.table2_cells({("mnist", "pdome"): None}).empty


def test_paper_cost_adds_up():
    cost = rob.paper_cost().set_index("dataset")
    assert list(cost.index) == list(exp.DATASETS) and (cost["networks"] == 9).all()
    assert np.allclose(cost["total_hours"], cost["train_hours"] + cost["attack_hours"])
    cfg = rob.ROBUST[("lenet", "mnist")].configs["paper"]
    n_train = 60000
    expect = sum(3 * cfg.epochs * n_train * rob.CPU_SECONDS["train"][("mnist", m)] for m in exp.MODELS) / 3600
    assert cost.loc["mnist", "train_hours"] == pytest.approx(expect, rel=0.01)
    assert cost.loc["mnist", "units"] == len(rob._units(cfg))
    assert "| MNIST | 9 |" in rob.cost_markdown(cost.reset_index())
    with pytest.raises(ValueError, match="GPU"):
        rob.paper_cost("resnet18")


def test_device_script_names_registered_experiments():
    script = (Path(__file__).resolve().parents[1] / "tools" / "device_dome.sh").read_text()
    import re

    which = re.search(r"^\s*which=\((.*?)\);", script, re.M).group(1).split()
    assert which and all(tuple(w.split("-", 1)) in rob.ROBUST for w in which)
    assert "dome/robust-" in script
