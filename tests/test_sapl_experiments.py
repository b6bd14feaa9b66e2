"""The S-APL chapter's experiments (symact.experiments.sapl)."""
import dataclasses

import pytest
import torch

from symact.activations import create
from symact.experiments import sapl
from symact.models import MLP


def test_negative_side_mean():
    act = create("sapl")
    assert sapl.negative_side_mean(act) == 0.0  # the ReLU initialisation
    with torch.no_grad():
        act.a_neg.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # h(x) = |x| for x < 0
    assert sapl.negative_side_mean(act) == pytest.approx((2 / torch.pi) ** 0.5, rel=1e-4)  # E|X| = sqrt(2/pi)
    with torch.no_grad():
        act.a_neg.mul_(-1)
    assert sapl.negative_side_mean(act) < 0


def test_dynamics_records_snapshots():
    cfg = dataclasses.replace(sapl.dynamics.configs["smoke"], n_train=64, snapshots=3)
    res = sapl.dynamics.run(cfg)
    steps = res["variants"]["sapl"]["steps"]
    shots = res["variants"]["sapl"]["snapshots"]
    assert [s["step"] for s in shots] == [0, steps // 2, steps]  # the last mark is taken after the last step
    assert len(shots[0]["negative_mean"]) == 2 and shots[0]["negative_mean"] == [0.0, 0.0]  # ReLU at step 0
    assert res["variants"]["relu"]["snapshots"] == []


def test_bad_input():
    with pytest.raises(ValueError, match="unknown variants"):
        sapl.dynamics.run(dataclasses.replace(sapl.dynamics.configs["smoke"], variants=("relu", "swishy")))
    with pytest.raises(ValueError, match="dropout"):
        MLP(dropout=1.0)


def test_hinges_counts_parameters_like_the_paper():
    """Table 5 counts 2S slopes per layer (shared) or per neuron: 12 and 1408 for S = 2 on the 256-64-32 MLP."""
    cfg = dataclasses.replace(sapl.hinges.configs["smoke"], S=(2,), n_train=64)
    rows = sapl.hinges.run(cfg)["rows"]
    assert rows["S=2 shared"]["added_parameters"] == sapl.PAPER_TABLE5[4][2] == 12
    assert rows["S=2 per-neuron"]["added_parameters"] == sapl.PAPER_TABLE5[4][3] == 1408
    assert rows["tanh"]["added_parameters"] == 0
    with pytest.raises(ValueError, match="S must be integers"):
        sapl.hinges.run(dataclasses.replace(cfg, S=(7,)))


def test_table1_rows_and_ttest():
    exp = sapl.TABLE1[("lenet", "mnist", False)]
    cfg = dataclasses.replace(exp.configs["smoke"], n_train=64, n_test=100)
    res = exp.run(cfg)
    assert set(res["rows"]) == {"relu", "maxout", "sapl"}
    for row in res["rows"].values():
        assert len(row["errors"]) == 2 and 0 <= row["mean"] <= 1 and row["std"] >= 0
    assert res["ttest"]["best_baseline"] in ("relu", "maxout")
    assert res["ttest"]["p"] is None or 0 <= res["ttest"]["p"] <= 1
    assert set(sapl.TABLE1) == set(sapl.PAPER_TABLE1)
    with pytest.raises(ValueError, match="unknown activations"):
        exp.run(dataclasses.replace(cfg, activations=("relu", "softsign")))
