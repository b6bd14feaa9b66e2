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


# --------------------------------------------------------------------------- the leaderboard half


def _row(name, clean, robust, clean_sd=0.01, robust_sd=0.02, **extra):
    return {"row": name, "seeds": "3/3", "complete": True, "clean_mean": clean, "clean_sd": clean_sd,
            "robust_mean": robust, "robust_sd": robust_sd, "autoattack_mean": robust + 0.01, "linf_median": 0.31,
            "l2_median": 1.5, "sanity_failed": "", "early_stopped": 0, "epoch_seconds": 21.7, "params": 100,
            "params_added": 0, "vs_relu_robust": "", "vs_relu_clean": "", **extra}


def test_leaderboard_display_formats_and_marks_unrun_rows():
    import pandas as pd

    table = pd.DataFrame([_row("relu", 0.98, 0.85), _row("kaf", 0.97, 0.88, vs_relu_robust="better"),
                          {"row": "tanh", "seeds": "0/?", "complete": False}])
    shown_ = ev.leaderboard_display(table)
    assert list(shown_.columns) == [h for _, h in ev.LEADERBOARD_COLUMNS]
    first = shown_.iloc[0]
    assert first["clean acc. (%)"] == "98.0 ± 1.0" and first["worst-case robust acc. (%)"] == "85.0 ± 2.0"
    assert first["AutoAttack alone (%)"] == "86.0" and first["median L-inf distance"] == "0.310"
    assert shown_.iloc[1]["robust vs ReLU"] == "better"
    unrun = shown_.iloc[2]
    assert unrun["clean acc. (%)"] == "n/a" and unrun["sanity checks failed"] == "n/a" and unrun["seeds"] == "0/?"
    html = ev.sortable_html(shown_)
    assert 'class="dataframe sortable table"' in html and html.count("<tr") == 4


def test_plot_leaderboard_draws_stored_rows_only():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    table = pd.DataFrame([_row("relu", 0.98, 0.85), _row("kaf", 0.97, 0.88, robust_sd=math.nan, seeds="2/3",
                                                          complete=False),
                          {"row": "tanh", "seeds": "0/?", "complete": False}])
    assert ev.plot_leaderboard(ax, table, "MNIST") == 2
    assert ax.get_title() == "MNIST" and [t.get_text() for t in ax.texts] == ["relu", "kaf (2/3)"]
    assert [line.get_markerfacecolor() for line in ax.lines if line.get_marker() == "o"] == ["none"]
    fig2, ax2 = plt.subplots()
    assert ev.plot_leaderboard(ax2, pd.DataFrame([{"row": "tanh", "seeds": "0/?"}])) == 0
    plt.close("all")


def test_leaderboard_view_with_nothing_stored_lists_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    table, prof = ev.leaderboard_view("mnist")
    assert prof is None and "relu" in set(table["row"]) and (table["seeds"] == "0/?").all()


def test_leaderboard_reading_names_masking_and_overfitting_only_where_the_numbers_show_them():
    from symact import benchmark as bm
    from tests.test_benchmark import _fake

    relu = _fake([0.76, 0.75, 0.77, 0.76, 0.76], [0.99] * 5, fgsm=0.97, pgd=0.82, square=0.79)
    masked = _fake([0.001, 0.002, 0.0, 0.001, 0.003], [0.94, 0.95, 0.96, 0.94, 0.95], fgsm=0.995, pgd=0.31,
                   square=0.02)
    partial = _fake([0.5, 0.6], [0.9, 0.9], partial=True, seeds=(0, 1), fgsm=0.8, pgd=0.6, square=0.58)
    text = ev.leaderboard_reading(bm.leaderboard({"kaf": masked, "relu": relu, "tanh": partial, "gelu": None}))
    paras = text.split("\n\n")
    assert len(paras) == 3 and paras[0].startswith("**relu** (5/5 seeds, the reference)")
    kaf = next(p for p in paras if p.startswith("**kaf**"))
    assert "robust accuracy **worse**" in kaf and "gradient masking" in kaf and "2.0 %" in kaf and "31.0 %" in kaf
    assert "On 5 of 5 seeds" in kaf and "catastrophic overfitting" in kaf and "70.0 %" in kaf
    assert "more-iterations (1/5)" in kaf  # the fake's failed sanity check, on seed 0
    tanh = next(p for p in paras if p.startswith("**tanh**"))
    assert "no verdict yet" in tanh and "masking" not in tanh and "overfitting" not in tanh
    assert "masking" not in paras[0] and "overfitting" not in paras[0]
    relu_partial = _fake([0.76, 0.75], [0.99] * 2, partial=True, seeds=(0, 1))
    early = ev.leaderboard_reading(bm.leaderboard({"kaf": masked, "relu": relu_partial}), rows=["kaf"])
    assert "the ReLU row has not run all its seeds" in early and "**not run" not in early
    only = ev.leaderboard_reading(bm.leaderboard({"kaf": masked, "relu": relu}), rows=["kaf"])
    assert only.startswith("**kaf**") and "\n\n" not in only
    assert "No row" in ev.leaderboard_reading(bm.leaderboard({"gelu": None}))
    # APGD-CE (the same gradient, an adaptive step) at or below Square: PGD's step fails, not the gradient
    step = _fake([0.27] * 5, [0.99] * 5, fgsm=0.9, pgd=0.68, square=0.42, apgd_ce=0.36)
    said = ev.leaderboard_reading(bm.leaderboard({"pssilu": step, "relu": relu}), rows=["pssilu"])
    assert "APGD-CE alone" in said and "36.0 %" in said and "fixed step is what fails" in said
    assert "gradient masking" not in said
    masked_too = _fake([0.27] * 5, [0.99] * 5, fgsm=0.9, pgd=0.68, square=0.42, apgd_ce=0.6)
    said = ev.leaderboard_reading(bm.leaderboard({"pssilu": masked_too, "relu": relu}), rows=["pssilu"])
    assert "even APGD-CE alone leaves 60.0 %" in said and "gradient masking" in said
    row = bm.leaderboard({"pssilu": step, "relu": relu})
    row.loc[row["row"] == "pssilu", ["sanity_failed", "apgd_checked"]] = ["black-box-vs-white-box (5/5)", 5]
    assert "fails against PGD's step, not against the gradient" in ev.leaderboard_reading(row, rows=["pssilu"])
    row.loc[row["row"] == "pssilu", ["sanity_failed", "apgd_failed"]] = [
        "black-box-vs-apgd-ce (1/5), black-box-vs-white-box (5/5)", 1]
    said = ev.leaderboard_reading(row, rows=["pssilu"])
    assert "not against the gradient" not in said and "On 1 of 5 seeds Square beats even APGD-CE" in said
    # from the stored outcomes: Square (42 %) beats APGD-CE (60 %) on every seed's images, not on step's (36 %)
    assert bm.leaderboard_row(masked_too)["apgd_failed"] == 5 and bm.leaderboard_row(step)["apgd_failed"] == 0
    assert "On 5 of 5 seeds Square beats even APGD-CE" in ev.leaderboard_reading(
        bm.leaderboard({"pssilu": masked_too, "relu": relu}), rows=["pssilu"])


def test_relu_verdicts_from_stored_rows():
    from tests.test_benchmark import _fake

    relu = _fake([0.80, 0.81, 0.79, 0.80, 0.82], [0.98] * 5)
    better = _fake([0.85, 0.86, 0.84, 0.86, 0.87], [0.97, 0.98, 0.97, 0.98, 0.98])
    v = ev.relu_verdicts({"relu": relu, "kaf": better, "tanh": None})
    assert list(v["row"]) == ["kaf", "kaf"] and list(v["metric"]) == ["robust", "clean"]
    rob = v.iloc[0]
    assert rob["verdict"] == "better" and rob["seeds"] == 5 and rob["lo"] < rob["effect"] < rob["hi"]
    assert rob["effect"] == pytest.approx(100 * (np.mean([0.85, 0.86, 0.84, 0.86, 0.87]) - 0.804))
    assert ev.relu_verdicts({"kaf": better}).empty
