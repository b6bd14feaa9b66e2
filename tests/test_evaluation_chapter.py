"""The helpers of the Adversarial evaluation chapter's first half (symact/experiments/evaluation.py): they read
other chapters' stored results and never run an experiment."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from symact.experiments import evaluation as ev
from symact.results import REPO_ROOT


class _Stub:
    """An experiment whose stored results are given: ``stored(prof)`` as the registry's, never running."""

    def __init__(self, **stored):
        self._stored = stored
        self.asked = []

    def stored(self, prof):
        self.asked.append(prof)
        return self._stored.get(prof)

    def __call__(self, *a, **k):  # pragma: no cover - shown() must never run an experiment
        raise AssertionError("shown() ran the experiment")


def test_shown_prefers_paper_then_quick_and_never_runs():
    assert ev.shown(_Stub(paper="P", quick="Q")) == "P"
    stub = _Stub(quick="Q")
    assert ev.shown(stub) == "Q" and stub.asked == ["paper", "quick"]
    assert ev.shown(_Stub()) is None


def test_near_threshold_formula_uint8_and_float_agree():
    x = torch.tensor([0.0, 0.45, 0.5, 0.61, 1.0])
    assert ev.near_threshold(x, 0.1) == pytest.approx(2 / 5)  # 0.45 and 0.5; 0.61 is 0.11 away
    assert ev.near_threshold(x, 0.0) == pytest.approx(1 / 5)
    assert ev.near_threshold(x, 0.5) == 1.0
    u = torch.arange(256, dtype=torch.uint8)
    eps = 8 / 255
    expected = float(np.mean(np.abs(np.arange(256) / 255 - 0.5) <= eps + 1e-12))
    assert ev.near_threshold(u, eps) == pytest.approx(expected)
    assert ev.near_threshold(u, eps) == pytest.approx(ev.near_threshold(u.float() / 255, eps))


@pytest.mark.parametrize("images, eps, match", [
    (torch.tensor([0.2, 1.5]), 0.1, r"\[0, 1\]"),
    (torch.tensor([0.2]), -0.1, "eps"),
    (torch.tensor([0.2]), float("nan"), "eps"),
    (torch.zeros(0), 0.1, "non-empty"),
    ([0.2, 0.3], 0.1, "tensor"),
])
def test_near_threshold_bad_input(images, eps, match):
    with pytest.raises(ValueError, match=match):
        ev.near_threshold(images, eps)


def _saf_result():
    return {"strong": {"eps": [0.1, 0.3], "n": 4, "clean_acc": 1.0,
                       "0.1": {"eq10": {"acc": 0.75, "wrong_class": 0.25, "n": 4},
                               "pgd": {"acc": 0.5, "wrong_class": 0.5, "n": 4},
                               "square": {"acc": 0.5, "wrong_class": 0.0, "n": 2},
                               "worst": {"acc": 0.5, "n": 2}},
                       "0.3": {"eq10": {"acc": 0.5, "wrong_class": 0.5, "n": 4},
                               "pgd": {"acc": 0.0, "wrong_class": 1.0, "n": 4},
                               "square": {"acc": 0.0, "wrong_class": 0.5, "n": 2},
                               "worst": {"acc": 0.0, "n": 2}}}}


def test_saf_attacks_table():
    t = ev.saf_attacks(_saf_result())
    assert list(t.index) == [0.1, 0.3]
    assert t.loc[0.1, "eq10"] == 0.75 and t.loc[0.3, "pgd"] == 0.0 and t.loc[0.3, "wrong:square"] == 0.5
    assert t.loc[0.1, "n:square"] == 2 and t.loc[0.1, "n:pgd-ce"] == 0
    assert math.isnan(t.loc[0.1, "pgd-ce"]) and math.isnan(t.loc[0.1, "autoattack"])  # not run: NaN, not 0
    assert math.isnan(t.loc[0.1, "wrong:worst"])


def _sapl_set(rate):
    row = lambda r: {"success_rate": r, "interval": [r - 0.1, r + 0.05], "correct": 8}  # noqa: E731
    return {"clean_acc": 0.8, "fgsm": {"0.02": row(rate), "0.04": row(rate + 0.1)}, "pgd": row(1.0),
            "autoattack": row(1.0)}


def test_sapl_attacks_table_and_image_set():
    rob = {"relu": {"sets": {"10": _sapl_set(0.8), "100": _sapl_set(0.7)}},
           "sapl": {"sets": {"10": _sapl_set(0.5), "100": _sapl_set(0.4)}}}
    t = ev.sapl_attacks(rob)
    assert (t["images"] == 100).all()  # the largest shared set by default
    assert t.loc["sapl", "fgsm@0.02"] == 0.4 and t.loc["relu", "fgsm@0.04"] == pytest.approx(0.8)
    assert t.loc["sapl", "fgsm@0.02:lo"] == pytest.approx(0.3) and t.loc["relu", "pgd"] == 1.0
    assert t.loc["relu", "correct"] == 8
    assert ev.sapl_attacks(rob, images="10").loc["sapl", "fgsm@0.02"] == 0.5
    with pytest.raises(ValueError, match="not in every result"):
        ev.sapl_attacks(rob, images="1000")
    with pytest.raises(ValueError, match="at least one"):
        ev.sapl_attacks({})


def test_fat_runs_table():
    run = lambda start, seed, pgd: {"start": start, "seed": seed, "clean_acc": 0.97, "pgd_acc": pgd,  # noqa: E731
                                    "history": {"train_acc": [0.5, 0.96], "check_robust_acc": [0.3, pgd]}}
    t = ev.fat_runs({"runs": [run("unclamped", 0, 0.8), run("clamped", 1, 0.0), run("clamped", 0, 0.4)]})
    assert list(zip(t["start"], t["seed"])) == [("clamped", 0), ("clamped", 1), ("unclamped", 0)]
    assert t.loc[1, "fgsm_train"] == 0.96 and t.loc[1, "pgd"] == 0.0 and t.loc[2, "check"] == 0.8


def test_autoattack_breakdown_counts():
    check = {"rows": [{"network": "a", "eps": 0.1, "n": 6}],
             "details": {"a": {"description": "net a", "ours_broken_by": [0, 0, 1, 3, -1, -2],
                               "ours_component_seconds": {"apgd-ce": 1.0, "square": 2.0}}}}
    t = ev.autoattack_breakdown(check)
    row = t.loc["a"]
    assert (row["apgd-ce"], row["apgd-t"], row["fab-t"], row["square"]) == (2, 1, 0, 1)
    assert (row["robust"], row["misclassified"], row["seconds:square"]) == (1, 1, 2.0)
    check["rows"][0]["n"] = 7
    with pytest.raises(ValueError, match="per-image codes"):
        ev.autoattack_breakdown(check)


def test_autoattack_breakdown_of_the_stored_check_adds_up():
    path = REPO_ROOT / "results" / "benchmarks" / "autoattack_check.json"
    if not path.exists():
        pytest.skip("no stored AutoAttack check")
    d = json.loads(path.read_text())
    t = ev.autoattack_breakdown(d)
    for r in d["rows"]:
        row = t.loc[r["network"]]
        parts = ["apgd-ce", "apgd-t", "fab-t", "square", "robust", "misclassified"]
        assert sum(int(row[c]) for c in parts) == r["n"]
        assert int(row["robust"]) == r["robust_ours"]
        assert int(row["misclassified"]) == r["n"] - r["clean_correct"]
