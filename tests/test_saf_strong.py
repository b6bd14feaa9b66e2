"""The SAF chapter's strong evaluation (symact.experiments.saf_strong) and its claims."""
import numpy as np
import pytest
import torch

from symact import claims
from symact.evaluation import decode_outcomes
from symact.experiments import saf, saf_strong as ss
from symact.results import Result


def test_strong_units_run_at_smoke_and_combine(tmp_path, monkeypatch):
    """Every unit of strong-mnist at the smoke profile (one seed): the curve keeps per-image outcomes of every
    attack, the margin attack included, and the combine step lays the networks out as the verdicts read them."""
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    exp = ss.STRONG["mnist"]
    cfg = exp.configs["smoke"]
    r = exp.run(cfg)
    assert set(r["networks"]) == {"plain/seed0", "mrelu-r-m/seed0"}
    net = r["networks"]["mrelu-r-m/seed0"]
    pt = net["curve"]["points"][0]
    assert {"eq10", "pgd", "pgd-ce", "pgd-margin", "square"} <= set(pt["attacks"])
    w = decode_outcomes(pt["worst_case"]["outcome"], pt["n"])
    for e in pt["attacks"].values():                      # the worst case is robust under every attack
        assert not (w & ~decode_outcomes(e["outcome"], pt["n"])).any()
    assert len(net["distances"]["distances"]) == cfg.n_distance
    assert net["noise"]["eps"] == [0.0, *cfg.noise_eps] and len(net["noise"]["outcome"]) == 2
    assert {c["name"] for c in net["sanity"]} >= {"iterative-vs-single-step", "transfer-vs-white-box"}
    df = ss.seed_table(Result(r, {"profile": "smoke"}), cfg.eps_grid[0])
    assert list(df["model"]) == ["plain", "mrelu-r-m"] and df["robust_acc"].between(0, 1).all()


def test_strong_configs():
    for ds, exp in ss.STRONG.items():
        paper = exp.configs["paper"]
        assert paper.dataset == ds and len(paper.seeds) >= 3 and paper.cascade == "autoattack"
        assert paper.epochs is None                       # the paper's epochs (robust_run's paper profile)
        assert ss._train_config(paper, "mrelu-r-m", 2).epochs == saf.ROBUST[(ds, "mrelu-r-m")].configs["paper"].epochs
        assert ss._train_config(paper, "plain", 2).seed == 2
    with pytest.raises(ValueError, match="not trained on mnist"):
        ss._units(ss.StrongConfig(models=("plain", "mrelu-x")))
    with pytest.raises(ValueError, match="distinct"):
        ss._units(ss.StrongConfig(seeds=(0, 0)))


def test_noise_rejection_counts_the_rule():
    class Rejects(torch.nn.Module):  # log-confidences: every class at ln 0.1 < ln 0.5, so always nonsense
        def forward(self, x):
            return torch.full((len(x), 10), float(np.log(0.1))) + 0 * x.flatten(1)[:, :1]

    noise = torch.rand(8, 1, 4, 4)
    out = ss.noise_rejection(Rejects(), noise, robust=True, nonsense_class=False, eps_grid=(0.1,), steps=2)
    assert out["rejected"] == [1.0, 1.0] and out["top_confidence"][0] == pytest.approx(0.1)


def _stored(strong, profile="paper", **cfg):
    base = {"pgd_steps": 50, "pgd_restarts": 5, "autoattack": "cascade-10", "square_queries": 5000}
    return Result({"strong": strong}, {"profile": profile, "config": {**base, **cfg}})


def test_first_strong_and_masking_tables():
    st = {"eps": [0.2], "clean_acc": 0.99, "n": 1000,
          "0.2": {"pgd": {"acc": 0.263, "n": 1000, "wrong_class": 0.1}, "pgd-ce": {"acc": 0.002, "n": 1000,
                                                                                   "wrong_class": 0.9},
                  "worst": {"acc": 0.002, "n": 500}}}
    results = {("mnist", "mrelu-r-m"): _stored(st), ("mnist", "plain"): None}
    df = ss.first_strong_table(results, "mnist")
    assert list(df["attack"]) == ["pgd", "pgd-ce", "worst"] and (df["pgd"] == "PGD-50x5").all()
    assert not df["outcomes"].any() and df["cascade"].isna().all()     # no cascade entry at this eps
    m = ss.loss_masking_table(results, "mnist")
    assert len(m) == 1 and m.loc[0, "acc_loss"] == 0.263 and m.loc[0, "word"] == "inconclusive"


def test_saf_claims_are_registered_and_read_only_stored_results():
    keys = {k for k in claims.CLAIMS if k.startswith("saf/")}
    assert keys == {"saf/eq10-mnist", "saf/eq10-cifar10", "saf/nonsense-mnist", "saf/nonsense-cifar10",
                    "saf/strong-mnist", "saf/strong-cifar10", "saf/noise-confidence"}
    df = claims.conclusions(chapters=("saf",), profiles=("paper", "quick"))
    assert len(df) == len(keys)
    # nothing at the paper profile comes from a quick result, and no quick result gives a verdict
    assert not ((df["profile"] == "quick") & (df["verdict"] != "not run at a converged protocol")
                & (df["verdict"] != claims.NOT_STORED)).any()


def test_paper_cost_scales_with_the_config():
    paper = ss.STRONG["mnist"].configs["paper"]
    a = ss.paper_cost(paper, train_seconds=1000.0).set_index("part")
    assert a.loc["train", "seconds"] == 6000.0 and a.loc["total", "units"] == 18
    assert a.loc["total", "seconds"] == pytest.approx(a.seconds.drop("total").sum())
    import dataclasses
    half = ss.paper_cost(dataclasses.replace(paper, n_images=250), 1000.0).set_index("part")
    assert half.loc["curve", "seconds"] == pytest.approx(a.loc["curve", "seconds"] / 2)
    no_aa = ss.paper_cost(dataclasses.replace(paper, cascade=None), 1000.0).set_index("part")
    assert no_aa.loc["curve", "seconds"] < a.loc["curve", "seconds"]


def test_saf_claim_sections_are_labels_of_the_chapter():
    from symact.results import REPO_ROOT

    text = (REPO_ROOT / "book" / "saf.md").read_text()
    for c in claims.CLAIMS.values():
        if c.chapter == "saf":
            assert f"({c.section})=" in text, c.section
