"""kaf/pgd-at-mnist (symact/experiments/kaf_overfit.py): the leaderboard's MNIST rows retrained by PGD."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from symact import benchmark as bm
from symact.experiments import kaf_overfit as ko
from symact.results import Result
from tests.test_benchmark import _fake


def test_config_holds_the_leaderboard_protocol_but_its_own_seeds_and_checks_its_rows():
    cfg = ko.pgd_at_mnist.configs["paper"]
    assert cfg.protocol == dataclasses.replace(bm.protocol("mnist", "paper"), seeds=(0, 1, 2))
    assert cfg.row_config("kaf").activation == "kaf" and cfg.row_config("kaf").protocol is cfg.protocol
    with pytest.raises(ValueError, match="start with 'relu'"):
        ko.OverfitConfig(cfg.protocol, rows=("kaf", "relu"))
    with pytest.raises(ValueError, match="pgd_steps"):
        ko.OverfitConfig(cfg.protocol, pgd_steps=1)
    with pytest.raises(ValueError, match="reach the ball's surface"):
        ko.OverfitConfig(cfg.protocol, pgd_steps=10, pgd_alpha=0.01)
    # the PGD step is Madry et al.'s 2.5 eps / steps, not the protocol's FGSM step of 1.25 eps
    assert cfg.pgd_alpha == pytest.approx(2.5 * 0.3 / 10) and cfg.protocol.alpha == pytest.approx(0.375)


def test_units_train_every_row_and_give_the_relu_network_as_transfer_surrogate():
    units = {u.key: u for u in ko._units(ko.pgd_at_mnist.configs["paper"])}
    assert {"lr-relu", "lr-kaf", "train-kaf-seed2", "eval-relu-seed0"} <= set(units)
    assert units["eval-kaf-seed1"].needs == ("train-kaf-seed1", "train-relu-seed1")
    assert units["eval-relu-seed1"].needs == ("train-relu-seed1",)
    assert units["train-kaf-seed0"].zoo and units["train-kaf-seed0"].needs == ("lr-kaf",)


_EVAL_UNIT = ko._eval_unit


def _stops_at_kaf(cfg, row, *a, **k):
    """The KAF row's evaluation unit fails, as if the run stopped there (module level: units are pickled)."""
    if row == "kaf":
        raise RuntimeError("stopped before the KAF evaluation")
    return _EVAL_UNIT(cfg, row, *a, **k)


def test_smoke_run_trains_by_pgd_and_evaluates_as_the_leaderboard(tmp_path, monkeypatch):
    from symact.store.units import UnitsFailed

    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    monkeypatch.setattr(ko, "_eval_unit", _stops_at_kaf)
    assert ko.partial_rows("smoke") is None  # nothing run yet
    with pytest.raises(UnitsFailed, match="eval-kaf-seed0"):
        ko.pgd_at_mnist(profile="smoke")
    part = ko.partial_rows("smoke")  # the ReLU row's seed is trained and evaluated, the KAF row's is not
    assert part["kaf"] is None and part["relu"].provenance["partial"]
    assert bm.leaderboard_row(part["relu"], "relu")["seeds"] == "1/1"
    assert not bm.leaderboard_row(part["relu"], "relu")["complete"]
    monkeypatch.setattr(ko, "_eval_unit", _EVAL_UNIT)
    res = ko.pgd_at_mnist(profile="smoke")  # resumes: only the KAF evaluation is left
    rows = ko.overfit_rows(res)
    assert rows["relu"]["seeds"][0]["eval"] == part["relu"]["seeds"][0]["eval"]
    assert ko.partial_rows("smoke") is None  # a finished run has no partial rows
    kaf = rows["kaf"]["seeds"][0]
    assert kaf["train"]["training"].startswith("PGD-2") and "check_robust_acc" not in kaf["train"]["history"]
    assert kaf["eval"]["transfer"].startswith("the PGD-trained relu network")
    assert set(kaf["eval"]["evaluation"]["attacks"]) == {"autoattack", "square", "pgd", "transfer"}
    assert bm.compare_to_relu(rows["kaf"], rows["relu"])["robust_acc"].word == "not run at a converged protocol"


def test_table_and_words_put_both_trainings_side_by_side():
    relu = _fake([0.76, 0.75, 0.77, 0.76, 0.76], [0.99] * 5)
    kaf = _fake([0.001, 0.0, 0.002, 0.001, 0.0], [0.94] * 5)
    p3 = dataclasses.replace(bm.protocol("mnist", "paper"), seeds=(0, 1, 2))

    def three(robust):
        r = _fake(robust, [0.98] * 3, seeds=(0, 1, 2))
        return Result({**dict(r), "protocol": bm._jsonable(p3)}, {"profile": "paper"})

    pgd = {"relu": three([0.80, 0.81, 0.79]), "kaf": three([0.70, 0.71, 0.69])}
    for s in kaf["seeds"]:
        s["train"]["history"]["train_acc"] = [0.5, 0.99]  # above its clean 94 %
    table = ko.overfit_table({"relu": relu, "kaf": kaf}, pgd)
    assert list(table["training"]) == ["fast (FGSM)"] * 2 + ["PGD"] * 2
    assert table.loc[1, "train_attack_acc"] == pytest.approx(0.99)
    words = ko.overfit_words(table)
    assert "training attack made better (99.0 %) than clean test images (94.0 %)" in words
    assert words.count("training attack made better") == 1
    assert "Under fast (FGSM) training, kaf leaves 0.1 % robust" in words and "worse" in words
    assert "Under PGD training, kaf leaves 70.0 % robust in the worst case against ReLU's 80.0 %: worse" in words
    assert "nothing is stored yet" in ko.overfit_words(ko.overfit_table({"relu": relu, "kaf": kaf}, None))
    relu_partial = _fake([0.76, 0.75], [0.99] * 2, partial=True, seeds=(0, 1))
    assert "no verdict yet (the ReLU row has 2/5 seeds)" in ko.overfit_words(
        ko.overfit_table({"relu": relu_partial, "kaf": kaf}, None))
    with pytest.raises(ValueError, match="pgd-at-mnist"):
        ko.overfit_rows({"nope": 1})


def test_stored_table_prefers_paper_then_quick_and_says_when_nothing_is_stored(monkeypatch):
    relu = _fake([0.76] * 5, [0.99] * 5)
    pgd = {"rows": {"relu": dict(_fake([0.8] * 3, [0.98] * 3, seeds=(0, 1, 2))),
                    "kaf": dict(_fake([0.7] * 3, [0.98] * 3, seeds=(0, 1, 2)))}}
    stored = {"quick": Result(pgd, {"profile": "quick"})}
    partial = {}
    monkeypatch.setattr(ko.pgd_at_mnist, "stored", lambda profile: stored.get(profile))
    monkeypatch.setattr(ko, "partial_rows", lambda profile: partial.get(profile))
    monkeypatch.setattr(bm, "stored_rows", lambda ds, prof, rows: {"relu": relu, "kaf": None})
    table, prof = ko.stored_overfit_table("paper")
    assert prof == "quick" and list(table["training"]) == ["fast (FGSM)"] * 2 + ["PGD"] * 2
    partial["paper"] = {"relu": _fake([0.8], [0.98], partial=True, seeds=(0,)), "kaf": None}
    table, prof = ko.stored_overfit_table("paper")  # an unfinished paper run comes before a finished quick one
    assert prof == "paper" and list(table["seeds"])[2:] == ["1/5", "0/?"]
    stored["paper"] = Result(pgd, {"profile": "paper"})
    assert ko.stored_overfit_table("paper")[1] == "paper"
    stored.clear()
    partial.clear()
    table, prof = ko.stored_overfit_table("paper")
    assert prof is None and "Under PGD training nothing is stored yet" in ko.overfit_words(table)


def _kaf_net(scale=1.0):
    import torch.nn as nn

    from symact.activations.kaf import KAF

    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.mul_(scale)
    return nn.Sequential(nn.Flatten(), lin, KAF(3), nn.Linear(3, 2))


def test_gradient_report_counts_kaf_inputs_beyond_the_dictionary_and_compares_gradients_a_step_apart():
    x, y = torch.rand(64, 1, 2, 2), torch.randint(0, 2, (64,))
    near = ko.gradient_report(_kaf_net(), x, y, step=0.0)
    assert list(near["beyond"]) == ["2"] and near["beyond"]["2"] == 0.0  # small inputs stay inside [-L, L]
    assert np.allclose(near["grad_cos"], 1.0, atol=1e-5)  # no step: the same gradient
    far = ko.gradient_report(_kaf_net(scale=1e3), x, y, step=0.1)
    assert far["beyond"]["2"] > 0.5  # inputs of size ~1e3: the KAF is ~0 there
    assert (far["grad_l1"] < 1e-6).mean() > 0.5  # and so is the gradient behind it
    with pytest.raises(ValueError, match="one label each"):
        ko.gradient_report(_kaf_net(), x, y[:3], step=0.1)


def test_gradient_table_and_words_summarise_per_row():
    import torch.nn as nn

    x, y = torch.rand(32, 1, 2, 2), torch.randint(0, 2, (32,))
    torch.manual_seed(1)
    relu = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    t = ko.gradient_table({("relu", 0): relu, ("kaf", 0): _kaf_net(), ("kaf", 1): _kaf_net(scale=1e3)}, x, y, 0.05)
    assert list(t["row"]) == ["relu", "kaf", "kaf"] and math.isnan(t.loc[0, "kaf_beyond"])
    words = ko.gradient_words(t, 0.05)
    assert words.startswith("relu (1 network)") and "kaf (2 networks)" in words and "beyond the dictionary" in words
    assert "times the median" in words and "KAF inputs lie beyond the dictionary" in words


def test_step_words_read_apgd_ce_against_pgd():
    import pandas as pd

    table = pd.DataFrame([{"row": "relu", "apgd_ce_mean": 0.771, "pgd_mean": 0.823},
                          {"row": "kaf", "apgd_ce_mean": 0.020, "pgd_mean": 0.233}, {"row": "tanh"}])
    words = ko.step_words(table, 0.075)
    assert ("leaves 77.1 % of the test images robust on the relu networks and 2.0 % of the test images robust on "
            "the kaf networks, where PGD's fixed step of 0.075 leaves 82.3 % and 23.3 %.") in words
    assert "what misleads PGD is its step" in words
    table.loc[1, "apgd_ce_mean"] = 0.3  # APGD-CE weaker than PGD on one row: no such conclusion
    assert "what misleads" not in ko.step_words(table, 0.075)
    assert ko.step_words(pd.DataFrame([{"row": "tanh"}]), 0.075) == ""


def test_pgd_training_takes_its_own_step_not_the_protocols_fgsm_step(needs_data, monkeypatch):
    import symact.train

    seen = {}

    def fake_train(model, data, cfg, **kw):
        seen["cfg"] = cfg
        return {"seconds": [1.0]}

    monkeypatch.setattr(symact.train, "train", fake_train)
    out = ko._train_unit(ko.pgd_at_mnist.configs["paper"], "relu", 0, {"lr_max": 1e-3})
    tc = seen["cfg"]
    assert tc.method == "pgd" and tc.pgd_steps == 10 and tc.alpha == pytest.approx(0.075) and tc.eps == 0.3
    assert out["training"] == "PGD-10 (step 0.075 at eps 0.3, random start)"
