"""The DOME chapter's tables, plots and numerical checks, moved from the notebook into the library
(symact.experiments.dome, symact.experiments.dome_robust, symact.theory.mdome_min), on small synthetic inputs
shaped like the stored results under results/dome/."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from symact import theory  # noqa: E402
from symact.activations.dome import MDOME  # noqa: E402
from symact.experiments import dome as exp  # noqa: E402
from symact.experiments import dome_robust as rob  # noqa: E402
from symact.models import LeNet5  # noqa: E402
from symact.report import MISSING  # noqa: E402
from symact.store.results import Result  # noqa: E402


def _prov(profile="quick", device="cpu (2 threads)", autoattack="cascade-10"):
    return {"profile": profile, "device": device, "date": "2025-01-01T00:00:00", "commit": "0123456789abcdef",
            "wall_seconds": 12.0, "seed": 0, "chapter": "dome", "experiment": "x",
            "config": {"autoattack": autoattack}}


# --------------------------------------------------------------------------- theory.mdome_min


def test_mdome_min_between_the_bound_and_zero():
    # for small sigma an input on another vertex gives about 0; the bound (2 - n)/n is never crossed
    m = theory.mdome_min(3, 0.2, steps=50)
    assert -1 / 3 < m < 1e-3 and m == pytest.approx(0.0, abs=1e-3)
    # wide kernels: every k_j is near 1 near the origin, so component 1 is near 1/n + (1 - 1/n) k_1 - ... > 0
    assert theory.mdome_min(5, 0.3, steps=50) > -0.6


@pytest.mark.parametrize("bad", [{"n": 1, "sigma": 1.0}, {"n": 2.5, "sigma": 1.0}, {"n": 3, "sigma": 0.0},
                                 {"n": 3, "sigma": 1.0, "steps": 0}])
def test_mdome_min_bad_input(bad):
    with pytest.raises(ValueError):
        theory.mdome_min(**bad)


# --------------------------------------------------------------------------- mdome_views


def test_mdome_views_every_output_and_restores():
    torch.manual_seed(0)
    net = LeNet5("mnist", num_classes=3, out_act=lambda c: MDOME(n=3, dim=c)).double().eval()
    net.out_act.output = "logit1"
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    views = exp.mdome_views(net, x)
    assert list(views) == list(MDOME.OUTPUTS) and all(v.shape == (4, 3) for v in views.values())
    assert net.out_act.output == "logit1"                                  # put back as it was
    assert torch.allclose(views["normalized"].sum(1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(views["mdome"].sum(1), torch.ones(4, dtype=torch.float64))  # Eq. 10: sums to 1
    assert (views["logit1"] <= 0).all()                                    # Eq. 14: minus a squared norm
    with pytest.raises(TypeError, match="MDOME"):
        exp.mdome_views(LeNet5("mnist", num_classes=3), x.float())


# --------------------------------------------------------------------------- the embedding figures


def _panel():
    g = np.random.default_rng(0)
    z = np.r_[g.normal(0, 1, (20, 2)), g.normal(0, 1, (20, 2)) + [5, 0]]
    y = np.repeat([0, 1], 20)
    return {"z": z.tolist(), "y": y.tolist(), **exp.distance_stats(z, y, bins=6)}


def test_plot_embedding_and_distances():
    r = _panel()
    fig, (a, b) = plt.subplots(1, 2)
    exp.plot_embedding(a, r, "DOME")
    assert a.get_title() == "DOME" and len(a.collections) == 2
    alpha = a.collections[0].get_facecolors()[:, 3]
    assert alpha.max() == pytest.approx(1.0) and alpha.min() >= 0.03     # opacity: the normalised likelihood
    exp.plot_distances(b, r, "DOME")
    assert len(b.patches) == 2 and [t.get_text() for t in b.get_legend().get_texts()] == ["intra-class", "inter-class"]
    with pytest.raises(ValueError, match="one value per bin"):
        exp.plot_distances(b, {**r, "hist_intra": r["hist_intra"][:-1]}, "x")
    with pytest.raises(ValueError, match="labels must be 0 to 2"):
        exp.plot_embedding(a, {**r, "y": [5] * 40}, "x")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        exp.plot_embedding(a, {"z": [[0.0, 1.0, 2.0]], "y": [0]}, "x")
    plt.close(fig)


# --------------------------------------------------------------------------- the first Table 2 runs


def _table2(clean, pgd, aa, views=None, epochs=2):
    r = {"clean": {"clean_acc": clean}, "pgd": {"robust_acc": pgd, "n": 200},
         "autoattack": None if aa is None else {"robust_acc": aa, "n": 50}, "train": {"train_loss": [1.0] * epochs}}
    for v, acc in (views or {}).items():
        r[f"autoattack_{v}"] = {"robust_acc": acc, "n": 50}
    return Result(r, _prov())


def test_table2_cell_and_markdown():
    results = {("mnist", "baseline"): _table2(0.99, 0.95, 0.94),
               ("mnist", "mdome"): _table2(0.98, 0.96, 0.97, views={"logit1": 0.955}),
               ("mnist", "pdome"): _table2(0.97, 0.90, None),
               ("cifar10", "baseline"): None}
    cells = exp.table2_cells(results)
    c = exp.table2_cell(cells, "mnist", "mdome")
    assert c.cascade == pytest.approx(95.5) and c.gain_cascade == pytest.approx(1.5)  # the lowest view
    assert exp.table2_cell(cells, "cifar10", "baseline") is None
    assert exp.table2_cell(cells.iloc[:0], "mnist", "mdome") is None
    with pytest.raises(ValueError, match="dataset in"):
        exp.table2_cell(cells, "svhn", "mdome")
    md = exp.table2_markdown(cells)
    lines = md.splitlines()
    assert lines[0].startswith("| dataset | model | epochs |") and lines[1].startswith("| --- | --- | ---: |")
    assert f"| MNIST | Baseline | 2 | 99.00 / 99.70 | 95.00 / 99.53 | 94.00 | 99.53 | {MISSING} | quick, cpu |" in md
    assert "| MNIST | MDOME | 2 | 98.00 / 99.74 | 96.00 / 99.55 | 95.50 | 99.52 | +1.50 / -0.01 | quick, cpu |" in md
    assert f"| 90.00 / 99.52 | {MISSING} |" in md                              # PDOME: no cascade ran
    assert "PGD on the first 200 test images, the cascade (" in md and "on the first 0/50;" in md
    assert exp.table2_markdown(cells.iloc[:0]).startswith("*No one-network Table 2 result")


# --------------------------------------------------------------------------- the seeded re-evaluation


def _network(model, seed, pgd, aa, checks=()):
    worst = min(pgd, aa)
    return {"model": model, "seed": seed, "clean": {"clean_acc": 0.9},
            "curve": {"eps": [8 / 255], "eps_grid": [8 / 255], "clean_acc": 0.9, "stopped_early": False,
                      "robust_acc": {"pgd": [pgd], "autoattack": [aa], "worst_case": [worst]}},
            "distances": {"median": 0.1}, "history": {"train_loss": [0.5]},
            "sanity": {"checks": [{"name": c, "passed": False} for c in checks]}}


def _robust():
    nets = {"baseline-seed0": _network("baseline", 0, 0.50, 0.40),
            "baseline-seed1": _network("baseline", 1, 0.60, 0.50, checks=("fgsm-vs-pgd",)),
            "pdome-seed0": _network("pdome", 0, 0.70, 0.65)}
    return Result({"eps": 8 / 255, "n_eval": 1000, "data": "MNIST test", "dataset": "mnist", "networks": nets},
                  _prov(profile="paper"))


def test_seeds_markdown():
    md = rob.seeds_markdown(_robust(), "MNIST")
    lines = md.splitlines()
    assert lines[0] == "| MNIST | seeds | clean | PGD | AutoAttack | worst case | paper (benign / PGD / AA) |"
    # baseline: PGD 50, 60 -> 55.00 ± 7.07; AutoAttack 40, 50 -> 45.00 ± 7.07; clean 90, 90 -> sd 0
    assert lines[2] == ("| Baseline | 2 | 90.00 ± 0.00 | 55.00 ± 7.07 | 45.00 ± 7.07 | 45.00 ± 7.07 | "
                        "99.70 / 99.53 / 99.53 |")
    assert lines[3] == "| PDOME | 1 | 90.00 | 70.00 | 65.00 | 65.00 | 99.63 / 99.52 / 99.51 |"  # one seed: no spread
    assert "at $\\varepsilon$ = 0.03137 on the first 1,000 test images (MNIST test)" in md
    assert "gradient masking): baseline-seed1 (fgsm-vs-pgd)." in md and "*Profile paper, " in md
    clean = _robust()
    for net in clean["networks"].values():
        net["sanity"]["checks"] = []
    assert "gradient masking): none." in rob.seeds_markdown(clean, "MNIST")
    # a worst case not stored at the budget is written as missing
    nan = _robust()
    nan["networks"]["pdome-seed0"]["curve"]["eps"] = [0.1]
    nan["networks"]["pdome-seed0"]["curve"]["eps_grid"] = [0.1]
    assert f"| PDOME | 1 | 90.00 | {MISSING} | {MISSING} | {MISSING} |" in rob.seeds_markdown(nan, "MNIST")
    assert math.isnan(rob.robust_means(nan)["pgd_mean"].iloc[1])


# --------------------------------------------------------------------------- the embedding table


def _emb():
    base = {"test_acc": 0.98765, "intra_inter_ratio": 0.41234, "overlap": 0.1, "auc": 0.987654,
            "radius_mean": 3.14159, "radius_p95": 6.0, "y": [0, 1, 0, 1]}
    return Result({"softmax": {**base, "activations": {}},
                   "dome": {**base, "auc": 1.0, "activations": {"out_act": {"type": "DOME", "mu": 1.23456,
                                                                            "sigma": 0.5}}}},
                  _prov(profile="paper"))


def test_embedding_table_and_markdown():
    t = exp.embedding_table(_emb())
    assert list(t.panel) == ["softmax (2 units)", "DOME (1 unit)"]
    assert t.test_acc.iloc[0] == pytest.approx(98.765) and list(t.output_params) == ["-", "mu = 1.23, sigma = 0.5"]
    lines = exp.embedding_markdown(_emb()).splitlines()
    assert lines[0].startswith("| panel | test acc. (%) | intra/inter ratio | overlap | AUC |")
    assert lines[2] == "| softmax (2 units) | 98.77 | 0.412 | 0.100 | 0.9877 | 3.14 | 6.00 | - |"
    assert lines[3] == "| DOME (1 unit) | 98.77 | 0.412 | 0.100 | 1.0000 | 3.14 | 6.00 | mu = 1.23, sigma = 0.5 |"
    assert lines[5].startswith("Embedding statistics over 4 test images per panel. *Profile paper, ")
    with pytest.raises(ValueError, match="unknown panel"):
        exp.embedding_table({"tanh": _emb()["dome"]})


def test_mdome_learned():
    r = _table2(0.98, 0.96, 0.97)
    r["mdome"] = {"mu": 0.5, "sigma": 2.0}                                   # from mu 1, sigma 5 (Section 7)
    grew = _table2(0.98, 0.96, 0.97)
    grew["mdome"] = {"mu": 2.0, "sigma": 4.0}
    t = exp.mdome_learned({("mnist", "mdome"): r, ("mnist", "baseline"): _table2(0.9, 0.8, 0.7),
                           ("cifar10", "mdome"): grew, ("fashion-mnist", "mdome"): None})
    assert list(t.dataset) == ["mnist", "cifar10"] and list(t.shrank) == [True, False]
    row = t.iloc[0]
    assert (row.mu0, row.sigma0, row.ratio0) == (1.0, 5.0, 0.2)
    assert (row.mu_factor, row.sigma_factor, row.ratio) == (0.5, 0.4, 0.25) and row.profile == "quick"
    assert exp.mdome_learned({}).empty
