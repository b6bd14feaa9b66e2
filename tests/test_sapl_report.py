"""symact.experiments.sapl.report and .plots: the S-APL chapter's tables, sentences and plots, on small synthetic
results shaped like the stored ones under results/sapl/ (hand-checkable values, missing values, bad input)."""
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from symact.experiments.sapl import plots, report as R  # noqa: E402
from symact.report import MISSING  # noqa: E402


# --- approximation -----------------------------------------------------------------------------------------

def test_zigzag_values():
    assert np.allclose(R.zigzag([0.0, 0.25, 0.5, 0.75, 1.0, -0.25], period=1.0), [0, 0.25, 0.5, 0.25, 0, 0.25])
    assert R.zigzag(0.309) == pytest.approx(0.309)   # the default period 0.618: its peak
    with pytest.raises(ValueError, match="positive period"):
        R.zigzag(1.0, period=0)


def test_construction_error_hand_values():
    # x^2 on [-3, 3] with S hinges a side: the interpolant's error is exactly h^2/4 at the midpoints, h = 3/S
    for S in (1, 2, 4):
        assert R.construction_error(np.square, -3, 3, S) == pytest.approx((3 / S) ** 2 / 4, rel=1e-9)
    # |x| is an S-APL with a hinge at 0: no error at all
    assert R.construction_error(np.abs, -3, 3, 2) < 1e-12
    # f(0) = 1: never closer than |f(0)|
    assert R.construction_error(np.cos, -3, 3, 8) >= 1 - 1e-12
    with pytest.raises(ValueError, match="positive integer"):
        R.construction_error(np.sin, -3, 3, 0)


def test_interpolant_vs_fit_frame_and_markdown():
    h = 3 / 2
    df = R.interpolant_vs_fit({"x^2": ("x2", np.square, h ** 2 / 4)}, -3, 3, 2)
    assert list(df.columns) == ["target", "key", "bound", "interpolant", "least_squares", "ratio"]
    assert df.loc[0, "interpolant"] == pytest.approx(h ** 2 / 4, rel=1e-6)   # the interpolant attains the bound
    assert df.loc[0, "ratio"] <= 1 + 1e-9                                       # least squares does not exceed it
    md = R.interpolant_vs_fit_markdown(df)
    assert md.splitlines()[0] == "| target | bound | interpolant | least squares | least squares / bound |"
    assert "| x^2 | 0.5625 | 0.5625 |" in md
    with pytest.raises(ValueError):
        R.interpolant_vs_fit({}, -3, 3, 2)


def test_hinge_fits_apl_stuck_inside():
    df = R.hinge_fits({"sin": np.sin}, -3, 3, [1, 2], points=201)
    assert set(df["fit"]) == set(R.HINGE_FIT_KINDS) and len(df) == 2 * len(R.HINGE_FIT_KINDS)
    inside = df[(df["fit"] == "APL, hinges inside")]["max_error"]
    assert (inside >= abs(np.sin(3) - 3) - 1e-6).all()     # APL with its hinges inside is ReLU at B = 3
    md = R.hinge_fits_markdown(df)
    assert md.splitlines()[0] == "| target | fit | S = 1 (2 hinges) | S = 2 (4 hinges) |"
    assert len(md.splitlines()) == 2 + len(R.HINGE_FIT_KINDS)
    with pytest.raises(ValueError):
        R.hinge_fits({"sin": np.sin}, -3, 3, [])


# --- Table 1 -----------------------------------------------------------------------------------------------

def _t1(rows):
    return {"rows": {a: {"errors": e, "mean": float(np.mean(e)), "std": float(np.std(e, ddof=1)) if len(e) > 1 else 0.0}
                     for a, e in rows.items()}}


def test_one_of_and_schedule():
    assert R.one_of(["5", "3", "5"]) == "3 or 5"
    with pytest.raises(ValueError):
        R.one_of([])
    cfgs = [SimpleNamespace(epochs=2, n_train=2000, seeds=2), SimpleNamespace(epochs=3, n_train=2000, seeds=2)]
    assert R.table1_schedule(cfgs) == "2 or 3 epochs on 2,000 training images, with 2 seeds"


def test_table1_frame_and_markdown_missing():
    t1 = {"a": _t1({"relu": [0.01, 0.03], "sapl": [0.02, 0.02]}), "b": _t1({"relu": [0.10]})}
    df = R.table1_frame(t1, ["relu", "sapl"])
    assert list(df.columns) == ["row", "activation", "mean", "std", "seeds"]
    relu_a = df[(df["row"] == "a") & (df["activation"] == "relu")].iloc[0]
    assert relu_a["mean"] == pytest.approx(2.0) and relu_a["std"] == pytest.approx(100 * np.std([0.01, 0.03], ddof=1))
    assert np.isnan(df[(df["row"] == "b") & (df["activation"] == "sapl")]["mean"]).all()
    md = R.table1_markdown(df, {"a": "A (paper)", "b": "B (quick)"}, [("**paper**", ["x", "y"])])
    lines = md.splitlines()
    assert lines[0] == "| activation | A (paper) | B (quick) |"
    assert lines[2] == "| relu | 2.00 ± 1.41 | 10.00 ± 0.00 |"
    assert lines[3] == f"| sapl | 2.00 ± 0.00 | {MISSING} |"
    assert lines[4] == "| **paper** | x | y |"
    with pytest.raises(ValueError, match="no header"):
        R.table1_markdown(df, {"a": "A"})


def test_table1_cells():
    assert R.table1_paper_cell(("prelu", 1.11, 1.03, 0.061)) == "prelu 1.11, S-APL 1.03, p = 0.061"
    t1 = _t1({"prelu": [0.02, 0.02], "sapl": [0.01, 0.01]})
    j = SimpleNamespace(arms=("sapl", "prelu"), word="reproduced", verdict=SimpleNamespace(p=0.0123))
    assert R.table1_ours_cell(t1, j) == "prelu 2.00, S-APL 1.00: reproduced (paired p = 0.012)"
    assert R.table1_ours_cell(t1, None) == MISSING


def test_table1_progress_and_extra():
    prog = _t1({"relu": [0.01, 0.02], "sapl": [0.015]})
    md = R.table1_progress_markdown(prog)
    assert "| relu | 2 | 1.50 ± 0.71 |" in md and "| sapl | 1 | 1.50 |" in md
    j = SimpleNamespace(sentence=lambda: "inconclusive.")
    assert R.table1_progress_markdown(prog, j).endswith("\n\nOn the seeds so far: inconclusive.")
    paper = {("resnet18", "cifar10", True): ("prelu", 5.0, 4.5, 0.03)}
    md = R.table1_extra_markdown({("resnet18", "cifar10", True): None}, paper, judge=None)
    assert f"| ResNet-18, CIFAR-10 + aug. | not run | not run | {MISSING} | prelu 5.00, S-APL 4.50, p = 0.030 |" in md
    r = _t1({"prelu": [0.06], "sapl": [0.05]})
    r["ttest"] = {"best_baseline": "prelu"}
    md = R.table1_extra_markdown({("resnet18", "cifar10", True): r}, paper,
                                 judge=lambda res, row: SimpleNamespace(word="inconclusive", ours="-1.0 points"))
    assert "| prelu 6.00 | 5.00 | inconclusive: -1.0 points |" in md


def test_table1_robustness_markdown():
    import pandas as pd

    ov = pd.DataFrame({"test_error": [40.0, 45.5], "train_loss": [0.5, 1.25]}, index=["relu", "sapl"])
    md = R.table1_robustness_markdown({"relu": {"mean": 0.41}}, ov)
    assert "| relu | 41.00 | 40.00 | 0.500 |" in md and f"| sapl | {MISSING} | 45.50 | 1.250 |" in md


# --- training dynamics -------------------------------------------------------------------------------------

def _run(ms_by_layer, losses=(1.0, 0.5), steps=100, shape_end=None, x=(-1.0, 0.0, 1.0)):
    """A dynamics variant: ``ms_by_layer`` one list of m- per layer (the same length: the snapshots)."""
    n = len(ms_by_layer[0]) if ms_by_layer else 0
    shots = [{"step": steps * i // max(1, n - 1), "negative_mean": [ms[i] for ms in ms_by_layer],
              "shape": [list(np.maximum(x, 0)) for _ in ms_by_layer]} for i in range(n)]
    if shape_end is not None and shots:
        shots[-1]["shape"] = shape_end
    return {"snapshots": shots, "train_loss": list(losses), "test_acc": 0.9, "steps": steps, "x": list(x)}


def test_dynamics_frame_and_markdown():
    variants = {"relu": _run([], losses=(1.0, 0.3)),
                "sapl": _run([[0.0, -0.2, 0.1, 0.3]], losses=(1.0, 0.1))}
    df = R.dynamics_frame(variants, ["layer 1"])
    assert df.loc["sapl", "m_min layer 1"] == pytest.approx(-0.2) and df.loc["sapl", "m_end layer 1"] == 0.3
    assert np.isnan(df.loc["relu", "m_min layer 1"]) and df.loc["relu", "test_acc"] == pytest.approx(90)
    md = R.dynamics_markdown(df, ["layer 1"])
    assert "| relu | 0.3000 | 90.00 | n/a |" in md and "| sapl | 0.1000 | 90.00 | -0.200, +0.300 |" in md
    assert R.loss_order(variants) == ["sapl", "relu"]


def test_stage_verdicts():
    run = _run([[0.0, -0.1, -0.2, 0.0, 0.1, 0.3], [0.0, 0.1, 0.1, 0.1, 0.1, -0.1]])
    df = R.stage_verdicts(run, ["a", "b"])
    # first third: snapshots 1 (6 // 3 = 2, so [1:2])
    assert list(df["early"]) == ["negative", "positive"] and list(df["two_stages"]) == [True, False]
    md = R.stage_verdicts_markdown(df)
    assert md.startswith("a: $m_-$ is negative in the first third of training and ends at +0.300, the two stages")
    assert "b: $m_-$ is positive" in md and "**not** the paper's two-stage pattern" in md and md.endswith(".")
    with pytest.raises(ValueError):
        R.stage_verdicts(_run([]), ["a"])


def test_relu_distance_and_lenet_ablations():
    run = _run([[0.0, -0.2]], shape_end=[[0.5, 0.0, 1.0]])   # ReLU would be 0, 0, 1: distance 0.5
    assert R.relu_distance(run, 0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        R.relu_distance(_run([]), 0)
    variants = {"sapl": run, "sapl-positive": _run([[0.0, 0.0]]),
                "sapl-negative": _run([[0.0, -0.4, -0.1]], steps=100)}
    positive, negative = R.lenet_ablations(variants, ["fc"])
    assert "S-APL-positive is within $d$ = 0.000 of ReLU (fc), S-APL within 0.500" in positive
    assert "closer to ReLU in 1 of the 1 layers" in positive
    assert "lowest, -0.400, at 50% of training and ends at -0.100" in negative and "returns toward ReLU" in negative
    positive, negative = R.lenet_ablations({"relu": _run([])}, ["fc"])
    assert positive == "S-APL-positive was not run at this profile"
    assert negative == "S-APL-negative was not run at this profile"


def test_order_verdict():
    v = {n: {"train_loss": [loss]} for n, loss in
         (("sapl", 0.1), ("sapl-negative", 0.2), ("sapl-positive", 0.3), ("relu", 0.4), ("leaky-relu", 0.05))}
    assert R.order_verdict(v) == "is the same order"
    v["relu"]["train_loss"] = [0.0]
    assert R.order_verdict(v) == "is a different order"
    assert R.order_verdict({"sapl": v["sapl"]}).startswith("cannot be set beside it")


# --- Tables 5 and 6 ----------------------------------------------------------------------------------------

def _hrow(err, added, secs, **kw):
    return {"test_error": err, "added_parameters": added, "epoch_seconds": secs, **kw}


def test_hinges_frame_and_markdown():
    rows = {"S=2 shared": _hrow(0.02, 12, 3.0), "S=2 per-neuron": _hrow(0.015, 1408, 4.0),
            "S=7 shared": _hrow(0.03, 42, 6.0), "S=7 per-neuron": _hrow(0.01, 4928, 6.0), "tanh": _hrow(0.05, 0, 2.0)}
    paper = {4: (1.73, 1.61, 12, 1408, 5)}
    df = R.hinges_frame(rows, paper)
    assert list(df.index) == [2, 7]
    assert df.loc[2, "time_shared"] == pytest.approx(1.5) and df.loc[2, "paper_time"] == pytest.approx(5 / 6)
    assert df.loc[7, "paper_error_shared"] is None            # the paper has no 14-hinge row
    assert df.loc[2, "paper_added_per"] == 1408 and isinstance(df.loc[2, "paper_added_per"], int)   # as printed
    md = R.hinges_markdown(df, 0.05).splitlines()
    assert md[2] == "| 4 | 2.00 / 1.73 | 1.50 / 1.61 | 12, 1408 / 12, 1408 | 1.50 / 0.83 |"
    assert md[3] == "| 14 | 3.00 / n/a | 1.00 / n/a | 42, 4928 / n/a, n/a | 3.00 / n/a |"
    assert md[4] == "| tanh | 5.00 / n/a |  | 0 | 1 / 1 |"
    with pytest.raises(ValueError, match="S=<n>"):
        R.hinges_frame({"tanh": _hrow(0.05, 0, 2.0)}, paper)


P5 = {4: (30.0, 29.0, 16, ">75k", 18), 6: (29.0, 28.5, 24, ">120k", 21), 8: (28.0, 28.5, 32, ">150k", 24),
      10: (27.9, 28.0, 40, ">190k", 20), 12: (27.8, 27.0, 48, ">230k", 25)}
P6 = {"tanh": 21, "maxout": 31}


def _hc(errs_shared, errs_channel):
    rows = {"tanh": _hrow(0.4, 0, 10.0, parameters=100), "maxout": _hrow(0.38, 0, 30.0, parameters=600)}
    for S, (a, b) in enumerate(zip(errs_shared, errs_channel), start=2):
        rows[f"S={S} shared"] = _hrow(a / 100, 8 * S, 12.0)
        rows[f"S={S} per-channel"] = _hrow(b / 100, 100 * 2 * S, 20.0)
    return {"rows": rows, "activation_units": [100, 50]}


def test_hinges_cifar10_frame_markdown_and_findings():
    hc = _hc([40, 39, 36, 35.5, 35.8], [41, 38, 37, 36.9, 36.5])
    df = R.hinges_cifar10_frame(hc, P5, P6)
    assert df.loc[2, "added_per_unit"] == 4 * 150 and df.loc[2, "paper_added_per"] == ">75k"
    md = R.hinges_cifar10_markdown(df, hc, P6).splitlines()
    assert md[2] == "| 4 | 40.00 / 30.0 | 41.00 / 29.0 | 16 / 16 | 400 | 600 / >75k | 1.20 / 0.86 | 2.00 |"
    assert md[-1] == "| maxout | 38.00 / n/a |  | 0 |  |  | 3.00 / 1.48 |  |"
    f = R.hinges_cifar10_findings(df, hc, P5, P6)
    # ours, shared: 40 -> 36 (-4.00), then best of 35.5, 35.8 (-0.50): falls less beyond
    assert "shared: the error changes by -4.00 points from 4 to 8 hinges and by -0.50" in f["four"]
    assert "per-channel: the error changes by -4.00 points from 4 to 8 hinges and by -0.50" in f["four"]
    assert "Both of ours show the pattern" in f["four"]
    assert f["per"].startswith("One set per channel gives a lower error than one shared set for 1 of the 5 values "
                               "of S (S = 3); in the paper one set per neuron is lower for 3 of 5.")
    assert ("takes 1.20 to 1.20 times tanh's time per epoch (one set per channel: 2.00 to 2.00) and maxout 3.00"
            in f["time"])
    assert "does not hold in its own CIFAR-10 row for 4 and 6 and 10 hinges"  # 6: 21 s = tanh's in f["time"]
    short = R.hinges_cifar10_frame(_hc([40, 39], [41, 38]), P5, P6)
    assert R.hinges_cifar10_findings(short, _hc([40, 39], [41, 38]), P5, P6)["four"].startswith(
        "At this profile only S = 2, 3 were run")


def test_beyond_four():
    text, stops = R.beyond_four({2: 2.0, 4: 1.0, 5: 0.9, 6: 1.2}, "x:")
    assert stops and text == ("x: the error changes by -1.00 points from 4 to 8 hinges and by -0.10 from 8 hinges to "
                              "the best larger number (it falls less beyond 8 hinges than up to them)")
    assert R.beyond_four({2: 1.0, 4: 1.5, 6: 1.0}, "")[0].endswith("(it does not fall up to 8 hinges)")
    assert R.beyond_four({2: 2.0, 4: 1.5, 6: 0.5}, "")[1] is False
    with pytest.raises(ValueError):
        R.beyond_four({2: 1.0, 4: 1.0}, "")


# --- Tables 2 to 4 -----------------------------------------------------------------------------------------

def _arow(rate, gap=0.1, lo=None, hi=None, **kw):
    return {"success_rate": rate, "confidence_gap": gap, "interval": [lo if lo is not None else rate - 0.1,
                                                                      hi if hi is not None else rate + 0.1], **kw}


def _set(scale=1.0, clean=0.5, n=100):
    return {"n": n, "clean_acc": clean, "n_strong": 50,
            "onepixel": {"1": _arow(0.1 * scale), "3": _arow(0.2 * scale, None), "5": _arow(0.3 * scale, 0.4)},
            "fgsm": {e: _arow(0.5 * scale) for e in ("0.02", "0.04")}, "cw": _arow(0.9 * scale, None),
            "pgd": _arow(1.0), "autoattack": _arow(1.0, robust_acc=0.0)}


CFG = SimpleNamespace(pixels=(1, 3, 5), fgsm_eps=(0.02, 0.04), pgd_steps=50, pgd_restarts=2)


def test_rate_gap_paper_value():
    assert R.rate_ci({"success_rate": 0.456, "interval": [0.356, 0.5549]}) == "46 [36, 55]"
    assert R.confidence_gap({"confidence_gap": None}) == "n/a"
    assert R.confidence_gap({"confidence_gap": 0.12345}) == "0.123"
    assert R.paper_value(None) == "n/a" and R.paper_value(61) == "61" and R.paper_value(0.7) == "0.700"


def test_pooled_gap():
    # weights 0.1 and 0.3 (the None gap is left out): (0.1 * 0.1 + 0.3 * 0.4) / 0.4
    assert R.pooled_gap(_set()["onepixel"].values()) == pytest.approx(0.325)
    assert R.pooled_gap([_arow(0.5, None)]) is None
    assert R.pooled_gap([_arow(0.0, 0.3)]) is None


def test_robustness_table_cells_and_missing_sets():
    by_act = {"relu": {"100": _set(), "1000": _set()}, "sapl": {"100": _set(0.5, clean=0.49)}}
    df = R.robustness_table(R.T2_HEADER, lambda act, s: R.table2_cells(s, (61, 88, 92, 0.721), CFG.pixels), by_act)
    assert list(df.columns) == R.T2_HEADER
    assert list(df["activation"]) == ["ReLU", "S-APL", "ReLU"]           # set by set, smallest first
    assert list(df["images"]) == ["100 (50 correct)", "100 (49 correct)", "1,000 (500 correct)"]
    assert list(df.iloc[0, 2:]) == ["10 [0, 20]", "20 [10, 30]", "30 [20, 40]", "0.325", "61", "88", "92", "0.721"]
    md = R.robustness_table_markdown(df)
    assert md.splitlines()[0].startswith("| activation | images | 1 pixel |")
    assert R.table3_cells(_set(), (1, 2, 0.5), CFG.fgsm_eps) == ["50 [40, 60]", "50 [40, 60]", "0.100", "1", "2",
                                                                 "0.500"]
    assert R.table4_cells(_set(), (80, 0.2)) == ["90 [80, 100]", "n/a", "80", "0.200"]
    assert R.strong_cells(_set()) == ["50", "50 [40, 60]", "100 [90, 110]", "100 [90, 110]", "0"]
    assert R.strong_header(CFG, "AutoAttack")[4:] == ["PGD-50 x2, 8/255", "AutoAttack, 8/255",
                                                      "robust accuracy under AutoAttack (%)"]
    assert R.t3_header(CFG.fgsm_eps)[2:4] == ["eps 0.02", "eps 0.04"]
    with pytest.raises(ValueError, match="header"):
        R.robustness_table(["activation", "images", "one"], lambda act, s: ["a", "b"], by_act)


def test_rows_by_attack_keys_lowest_tally():
    rows = R.rows_by_attack(_set(), CFG, "AutoAttack")
    assert list(rows) == ["1-pixel DE", "3-pixel DE", "5-pixel DE", "FGSM at 0.02", "FGSM at 0.04", "CW-L2", "PGD-50",
                          "AutoAttack"]
    keys = R.attack_keys(CFG, "AutoAttack")
    assert keys["3-pixel DE"] == "onepixel/3" and keys["FGSM at 0.04"] == "fgsm/0.04"
    assert keys["AutoAttack"] == "autoattack"
    by_act = {"relu": R.rows_by_attack(_set(), CFG, "AA"), "sapl": R.rows_by_attack(_set(0.5), CFG, "AA"),
              "apl": R.rows_by_attack(_set(0.5), CFG, "AA")}
    assert R.lowest(by_act, "1-pixel DE") == ("sapl", "apl")
    assert R.lowest(by_act, "PGD-50") == ("relu", "sapl", "apl")       # all equal: all of them
    js = [SimpleNamespace(word="inconclusive")] * 2 + [SimpleNamespace(word="reproduced")]
    assert R.tally(js) == "**inconclusive** for 2, **reproduced** for 1"
    with pytest.raises(ValueError, match="unknown attack"):
        R.judge_attack({}, "no such attack", "100", keys)


def test_not_lowest_sentence():
    judge = lambda a, t: SimpleNamespace(word="inconclusive")  # noqa: E731
    lows = {"1-pixel DE": ("sapl",), "CW-L2": ("relu",), "FGSM at 0.04": ("relu", "apl", "sapl", "swish"),
            "3-pixel DE": ("relu", "apl")}
    text = R.not_lowest_sentence(lows, 4, judge)
    assert text == ("Of the other attacks: ReLU is lowest under CW-L2 (S-APL against it: **inconclusive** for 1); "
                    "all four are equal under FGSM at 0.04; ReLU and APL are lowest under 3-pixel DE (S-APL against "
                    "them: **inconclusive** for 2)")
    assert R.not_lowest_sentence({"CW-L2": ("sapl",)}, 4, judge) == "S-APL is lowest under every one of them"


def test_underfit_sentence():
    import pandas as pd

    ov = pd.DataFrame({"train_loss": [0.5, 0.7, 2.5], "underfit": [False, False, True]}, index=["relu", "sapl", "apl"])
    assert R.underfit_sentence(ov).startswith("The APL network is underfit: its last training loss is 2.50 against "
                                              "0.50 to 0.70 for the others")
    ov["underfit"] = False
    assert R.underfit_sentence(ov) == "Every network reaches a training loss within a factor 3 of the others'"


def test_one_pixel_counted_and_counting_sentence():
    # 20 % of the 50 % correct images fooled; counting the other 50 % as fooled gives 60 %
    counted = R.one_pixel_counted({"onepixel": {"1": {"success_rate": 0.2}}, "clean_acc": 0.5})
    assert counted == pytest.approx((20.0, 60.0))
    sets = {"relu": {"n": 100, "clean_acc": 0.5, "onepixel": {"1": {"success_rate": 0.4}}},
            "sapl": {"n": 100, "clean_acc": 0.5, "onepixel": {"1": {"success_rate": 0.2}}}}
    text = R.counting_sentence(sets, {"relu": 61, "sapl": 39})
    assert "on the paper's 100 images would be ReLU 70 %, S-APL 60 % (the paper: ReLU 61, S-APL 39)" in text
    assert "That counting brings ReLU closer to the paper;" in text   # |70-61| < |40-61|; |60-39| > |20-39|
    assert text.endswith("the gap between ReLU and S-APL would be 10 points (20 as we count) against the paper's 22")


# --- Fig. 4 ------------------------------------------------------------------------------------------------

def _draw(ts, tk, ls, lk):
    return {"tsne": {"silhouette": ts, "knn": tk}, "logits": {"silhouette": ls, "knn": lk}}


TS = {"relu": {"test_acc": 0.6, "draws": [_draw(0.2, 0.8, 0.3, 0.9), _draw(0.4, 0.9, 0.3, 0.9)],
               "logits_all": {"silhouette": 0.25, "knn": 0.85, "n": 2000}},
      "sapl": {"test_acc": 0.62, "draws": [_draw(0.3, 0.7, 0.2, 0.95), _draw(0.5, 0.9, 0.4, 0.95)],
               "logits_all": {"silhouette": 0.3, "knn": 0.8, "n": 2000}}}


def test_tsne_frame_markdown_wins_mean():
    df = R.tsne_frame(TS)
    assert df.loc["relu", "tsne_silhouette"] == pytest.approx(0.3)
    assert df.loc["relu", "tsne_silhouette_sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert df.loc["sapl", "all_knn"] == pytest.approx(80.0)
    md = R.tsne_markdown(TS, 2000).splitlines()
    assert "logits, all 2,000 images: silhouette" in md[0]
    assert md[2] == "| ReLU | 60.00 | 0.300 ± 0.141 | 85.0 ± 7.1 | 0.300 ± 0.000 | 90.0 ± 0.0 | 0.250 | 85.0 |"
    one = {"relu": {**TS["relu"], "draws": TS["relu"]["draws"][:1]}}
    assert np.isnan(R.tsne_frame(one).loc["relu", "tsne_knn_sd"])
    assert "| 0.200 | 80.0 |" in R.tsne_markdown(one, 2000)                # one draw: no spread
    assert R.tsne_wins(TS["relu"], TS["sapl"], "tsne", "silhouette") == 2
    assert R.tsne_wins(TS["relu"], TS["sapl"], "tsne", "knn") == 0          # 0.7 < 0.8, 0.9 = 0.9
    assert R.tsne_mean(TS["sapl"], "logits", "silhouette") == pytest.approx(0.3)
    with pytest.raises(ValueError, match="not paired"):
        R.tsne_wins(one["relu"], TS["sapl"], "tsne", "knn")


# --- plots -------------------------------------------------------------------------------------------------

def test_plots():
    run = _run([[0.0, -0.1, 0.2], [0.0, 0.1, 0.3]])
    fig, ax = plt.subplots()
    assert plots.plot_shapes(ax, run, 0, "t") is ax
    assert len(ax.lines) == 3 + 1 and ax.get_title() == "t"               # a line per snapshot and the axis
    fig2, ax2 = plt.subplots()
    plots.plot_negative_means(ax2, {"relu": _run([]), "sapl": run})
    assert len(ax2.lines) == 2 + 1                                        # a line per layer of S-APL, and 0
    assert ax2.lines[0].get_color() == "C1"                               # ReLU keeps its colour: S-APL is C1
    assert list(ax2.lines[0].get_xdata()) == [0.0, 0.5, 1.0]
    fig3 = plots.plot_losses({"a": run, "b": _run([], losses=(2.0, 1.0, 0.5))}, "loss")
    ax3 = fig3.axes[0]
    assert ax3.get_yscale() == "log" and ax3.get_ylabel() == "loss" and len(ax3.lines) == 2
    with pytest.raises(ValueError):
        plots.plot_shapes(ax, _run([]), 0, "t")
    with pytest.raises(ValueError):
        plots.plot_losses({})
    plt.close("all")
