"""kaf/pgd-at-mnist (symact/experiments/kaf_overfit.py): the leaderboard's MNIST rows retrained by PGD."""
from __future__ import annotations

import dataclasses

import pytest

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


def test_units_train_every_row_and_give_the_relu_network_as_transfer_surrogate():
    units = {u.key: u for u in ko._units(ko.pgd_at_mnist.configs["paper"])}
    assert {"lr-relu", "lr-kaf", "train-kaf-seed2", "eval-relu-seed0"} <= set(units)
    assert units["eval-kaf-seed1"].needs == ("train-kaf-seed1", "train-relu-seed1")
    assert units["eval-relu-seed1"].needs == ("train-relu-seed1",)
    assert units["train-kaf-seed0"].zoo and units["train-kaf-seed0"].needs == ("lr-kaf",)


def test_smoke_run_trains_by_pgd_and_evaluates_as_the_leaderboard(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    res = ko.pgd_at_mnist(profile="smoke")
    rows = ko.overfit_rows(res)
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
    table = ko.overfit_table({"relu": relu, "kaf": kaf}, pgd)
    assert list(table["training"]) == ["fast (FGSM)"] * 2 + ["PGD"] * 2
    words = ko.overfit_words(table)
    assert "Under fast (FGSM) training, kaf leaves 0.1 % robust" in words and "worse" in words
    assert "Under PGD training, kaf leaves 70.0 % robust in the worst case against ReLU's 80.0 %: worse" in words
    assert "nothing is stored yet" in ko.overfit_words(ko.overfit_table({"relu": relu, "kaf": kaf}, None))
    with pytest.raises(ValueError, match="pgd-at-mnist"):
        ko.overfit_rows({"nope": 1})
