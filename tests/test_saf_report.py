"""The SAF chapter's first-evaluation table helpers, moved from the notebook into symact.experiments.saf_strong,
on a small table shaped like first_strong_table's output for the stored results/saf/robust-*.json."""
import math

import pandas as pd
import pytest

from symact.experiments import saf_strong as ss

COLUMNS = ["model", "profile", "eps", "attack", "acc", "wrong_class", "n", "clean_acc", "pgd", "cascade",
           "square_queries", "outcomes"]


def _row(model, eps, attack, acc, wrong=0.0, n=100, cascade="cascade-10", profile="paper", pgd="PGD-50x5"):
    return [model, profile, eps, attack, acc, None if attack == "worst" else wrong, n, 0.987, pgd,
            cascade if attack == "autoattack" else None, 1000, False]


def _first():
    rows = [_row("plain", 0.1, "pgd", 0.50, 0.48), _row("plain", 0.1, "autoattack", 0.40, 0.40, n=50),
            _row("plain", 0.1, "square", 0.45, 0.44, n=50), _row("plain", 0.1, "worst", 0.40),
            _row("mrelu-r-m", 0.1, "eq10", 0.90, 0.01), _row("mrelu-r-m", 0.1, "pgd", 0.7, 0.054),
            _row("mrelu-r-m", 0.1, "worst", 0.6),
            _row("mrelu-r-m", 0.2, "pgd", 0.2, 0.1, profile="quick", pgd="PGD-20x1")]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_first_strong_acc():
    df = _first()
    assert ss.first_strong_acc(df, "plain", 0.1, "autoattack") == 0.40
    assert ss.first_strong_acc(df, "mrelu-r-m", 0.1, "square") is None          # not run
    assert ss.first_strong_acc(df.iloc[:0], "plain", 0.1, "pgd") is None
    with pytest.raises(ValueError, match="attack must be one of"):
        ss.first_strong_acc(df, "plain", 0.1, "fgsm")


def test_first_strong_cell():
    df = _first()
    cells = [ss.first_strong_cell(r) for r in df.itertuples()]
    assert cells[:5] == ["50.0 (48)", "40.0 (40)†", "45.0 (44)", "40.0", "90.0 (1)"]
    assert cells[5] == "70.0 (5)"
    official = df.iloc[[1]].assign(cascade="autoattack")
    assert ss.first_strong_cell(next(official.itertuples())) == "40.0 (40)"  # the official AutoAttack: no †


def test_first_strong_markdown_and_runs():
    df = _first()
    lines = ss.first_strong_markdown(df).splitlines()
    assert lines[0] == ("| model | profile | clean | eps | Eq. 10 (clipped) | PGD (training loss) | cascade | Square | "
                        "worst case |")
    assert lines[1] == "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    assert lines[2] == "| plain | paper | 98.7 | 0.1 | - | 50.0 (48) | 40.0 (40)† | 45.0 (44) | 40.0 |"
    assert lines[3] == "| mrelu-r-m | paper | 98.7 | 0.1 | 90.0 (1) | 70.0 (5) | - | - | 60.0 |"
    assert lines[4] == "| mrelu-r-m | quick | 98.7 | 0.2 | - | 20.0 (10) | - | - | - |"
    runs = ss.first_strong_runs(df)
    assert runs == ("paper profile (plain, mrelu-r-m): PGD-50x5 on the first 100 test images, the 10-iteration "
                    "cascade (torchattacks' AutoAttack defaults; not AutoAttack)† on the first 50, Square (1,000 "
                    "queries) on the first 50; quick profile "
                    "(mrelu-r-m): PGD-20x1 on the first 100 test images, no cascade")
    with pytest.raises(ValueError, match="empty"):
        ss.first_strong_markdown(df.iloc[:0])
    with pytest.raises(ValueError, match="no PGD run"):
        ss.first_strong_runs(df[df.attack != "pgd"])


def test_accuracy_se():
    assert ss.accuracy_se(0.5, 100) == pytest.approx(0.05)                # sqrt(0.25 / 100)
    assert ss.accuracy_se(0.0, 100) == pytest.approx(math.sqrt(0.01 / 100))  # floored at 1/n
    assert ss.accuracy_se(1.0, 4) == pytest.approx(0.25)
    for p, n in ((0.5, 0), (1.5, 10), (0.5, 2.5), (-0.1, 10)):
        with pytest.raises(ValueError):
            ss.accuracy_se(p, n)


def _strong_result(profile="quick"):
    from symact.store.results import Result

    def e(acc, n=100):
        return {"acc": acc, "n": n, "wrong_class": 0.0}

    strong = {"eps": [0.1, 0.3], "clean_acc": 0.99,
              "0.1": {"eq10": e(0.9), "pgd": e(0.5), "pgd-ce": e(0.6), "square": e(0.3), "worst": e(0.3)},
              "0.3": {"eq10": e(0.4), "pgd": e(0.35), "square": e(0.5), "worst": e(0.2)}}
    return Result({"strong": strong}, {"profile": profile, "config": {}})


def test_strong_findings():
    from symact.experiments import verdicts as vd

    out = ss.strong_findings({("mnist", "mrelu-r-m"): _strong_result(), ("mnist", "plain"): None}, {"mnist": "MNIST"})
    assert out[0].startswith("- MNIST mrelu-r-m, eps 0.1: Square (black-box) reaches 30.0 %, below every gradient "
                             f"attack (50.0 %) as measured; the verdict rule on the two attacks' accuracies gives "
                             f"**{vd.NOT_CONVERGED}** (quick profile), so this is no evidence of masking either way.")
    # Eq. 10 at 90 % against PGD at 50 %: above 0.5 + 2 * 0.05 + 0.1; at 0.3, 40 % against 35 % is not
    assert out[1] == "- MNIST mrelu-r-m, eps 0.1: the paper's one-step attack leaves 90.0 % accuracy, PGD 50.0 %."
    assert out[2] == "- MNIST mrelu-r-m: 20.0 % of images survive every attack at the largest budget, eps 0.3."
    assert len(out) == 3
    quiet = _strong_result()
    quiet["strong"]["0.3"]["worst"]["acc"] = 0.1                                # not more than 10 %
    assert len(ss.strong_findings({("mnist", "x"): quiet}, {"mnist": "MNIST"})) == 2
