"""The KAF chapter's tables and sentences (symact.claims.claim_sentence and the *_display / *_markdown / *_glue
functions of the kaf experiment modules), on small synthetic inputs shaped like the stored results."""
import math

import pandas as pd
import pytest

from symact import claims
from symact.evaluation import verdict
from symact.experiments import kaf, kaf_adaptive as ka, kaf_depth, kaf_fat, kaf_lipschitz as kl
from symact.experiments.verdicts import Judgement
from symact.report import MISSING
from symact.store.results import Result

NAN = float("nan")
PROV = {"commit": "0123456789abcdef", "profile": "quick", "device": "cpu", "date": "2026-01-02T00:00:00",
        "wall_seconds": 12.0, "seed": 0, "chapter": "kaf", "experiment": "x"}


def result(data, config=None):
    return Result(data, {**PROV, "config": config or {}})


def cells(md: str, row: int) -> list[str]:
    """The cells of the ``row``-th line of a Markdown table (0: the header)."""
    line = md.split("\n")[row if row == 0 else row + 1]
    return [c.strip() for c in line.strip().strip("|").split("|")]


# ------------------------------------------------------------------------------------------- claims


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(claims, "CLAIMS", {})
    stored = {"paper": None, "quick": None}
    claims.claim("kaf/x", chapter="kaf", section="s", source="src", text="X holds")(lambda p: stored[p])
    return stored


def test_claim_sentence_and_list(registry):
    assert claims.claim_sentence("kaf/x") == claims.NOT_STORED_SENTENCE
    assert claims.claim_sentence("kaf/x", label="A vs B") == "A vs B: **not run yet**."
    assert claims.claim_sentence("kaf/x", missing="none") == "none"
    assert claims.claim_list(["kaf/x"], missing="not stored.") == "- X holds: not stored."
    v = verdict([0.01, 0.02, 0.015], converged=False, published=0.03)
    registry["quick"] = Judgement(v, "A minus B", "quick", published=0.03)
    s = claims.claim_sentence("kaf/x")
    assert s.startswith("**not run at a converged protocol**.") and "quick profile" in s
    assert claims.claim_sentence("kaf/x", label="A vs B").startswith("A vs B: **not run")
    assert claims.claim_sentence("kaf/x", profiles=("paper",)) == claims.NOT_STORED_SENTENCE
    assert claims.claim_list("kaf/x", profiles=("paper",), missing="-") == "- X holds: -"


def test_claim_sentence_bad_input(registry):
    with pytest.raises(KeyError, match="kaf/nope"):
        claims.claim_sentence("kaf/nope")
    with pytest.raises(KeyError, match="kaf/nope"):
        claims.claim_list(["kaf/x", "kaf/nope"])
    with pytest.raises(TypeError, match="Claim or a claim key"):
        claims.claim_sentence(3)


# ------------------------------------------------------------------------------------------- kaf_fat


def fat_rows(stored=(True, False)):
    rows = []
    for name, s in zip(("ReLU", "KAF"), stored):
        rows.append({"activation": name, "row": f"cifar10-{name.lower()}", "thesis_clean": 78.1, "thesis_pgd": 45.414,
                     "stored": s, "seeds": 3 if s else None, "profile": "quick" if s else None,
                     "clean_mean": 0.4567 if s else None, "clean_sd": 0.012 if s else None,
                     "robust_mean": 0.25 if s else None, "robust_sd": NAN, "autoattack_mean": 0.2 if s else None,
                     "vs_relu_robust": "better" if s and name == "KAF" else None})
    return pd.DataFrame(rows)


def test_stored_words():
    assert kaf_fat.stored_words(fat_rows((True, False))) == "Stored (quick profile): ReLU. Not stored yet: KAF."
    assert kaf_fat.stored_words(fat_rows((True, True))).endswith("ReLU, KAF. Every row is stored.")
    assert "the rows ReLU, KAF wait" in kaf_fat.stored_words(fat_rows((False, False)))
    with pytest.raises(ValueError, match="stored"):
        kaf_fat.stored_words(pd.DataFrame({"activation": ["ReLU"]}))


def test_fat_display_and_markdown():
    d = kaf_fat.fat_display(fat_rows((True, False)))
    assert list(d.iloc[0]) == ["ReLU", "`cifar10-relu`", "78.10", "45.41", "45.7 ± 1.2", "25.0", "20.0", "3", "quick", ""]
    assert list(d.iloc[1])[4:] == [MISSING, MISSING, MISSING, "not stored", "", ""]
    d = kaf_fat.fat_display(fat_rows((True, True)))
    assert d.iloc[1]["robust vs ReLU"] == "better"
    md = kaf_fat.fat_markdown(fat_rows(), "ResNet-20", 1234)
    assert cells(md, 1)[4] == "45.7 ± 1.2" and "| --- | --- | ---: |" in md
    assert "ResNet-20" in md and "first 1,234 and" in md
    with pytest.raises(TypeError, match="DataFrame"):
        kaf_fat.fat_display([{"activation": "ReLU"}])


def labels_result(missing=()):
    nets = {"a": {"row": "cifar10-relu", "seed": 0, "clean_acc": 0.5, "true_acc": 0.2, "thesis_acc": 0.3,
                  "predicted_robust_acc": 0.2, "rescued": 4},
            "b": {"row": "cifar10-resnet20-kaf", "seed": 1, "clean_acc": 0.6, "true_acc": 0.4, "thesis_acc": 0.35,
                  "predicted_robust_acc": 0.4, "rescued": 1}}
    return result({"networks": nets, "missing": list(missing), "n_test": 1000})


def test_labels_words_and_markdown():
    assert kaf_fat.labels_words(None).startswith("It has not run yet")
    assert kaf_fat.labels_markdown(None) == "*kaf/fat-predicted-labels: not stored yet.*"
    w = kaf_fat.labels_words(labels_result())
    assert "+10.0 points on the VGG-inspired network" in w and "-5.0 points on the ResNet-20 network" in w
    assert w.endswith("(5 misclassified images rescued over 2 networks).")
    assert kaf_fat.labels_words(labels_result(["cifar10-kaf-seed2"])).endswith(
        "; not in the zoo when it ran: cifar10-kaf-seed2.")
    md = kaf_fat.labels_markdown(labels_result())
    assert cells(md, 1) == ["VGG-inspired", "ReLU", "0", "50.0", "20.0", "30.0", "4"]
    assert "first 1,000 test images" in md and "Profile quick" in md


# ------------------------------------------------------------------------------------------- kaf_depth


def test_net_label():
    assert kaf_depth.net_label("kaf", "thesis") == "KAF (thesis rule)"
    assert kaf_depth.net_label("relu", "-") == "ReLU"
    with pytest.raises(ValueError, match="arm"):
        kaf_depth.net_label("gelu", "-")
    with pytest.raises(ValueError, match="rule"):
        kaf_depth.net_label("kaf", "other")


def test_gradient_glue():
    summary = pd.DataFrame([{"arm": "kaf", "bandwidth": "kafnets", "depth": 56, "growth": 7.2e10,
                             "measured_product": 123456.0, "predicted_product": NAN, "median_ratio": 1.5,
                             "first_conv": 0.04123}])
    g = kaf_depth.gradient_glue(summary, {"deep": 56, "shallow": 20})
    assert g["dk-kaf-deep-growth"] == "7.2e+10" and g["dk-kaf-deep-measured"] == "1.2e+05"
    assert g["dk-kaf-deep-first"] == "0.041" and g["dk-kaf-deep-ratio"] == 1.5
    assert g["dk-kaf-deep-predicted"] == "nan"          # stored but not finite: shown as computed
    assert g["dk-relu-deep-growth"] == MISSING and math.isnan(g["dk-kaf-shallow-ratio"])
    assert len(g) == 2 * len(kaf_depth.GRADIENT_NETS) * 5
    with pytest.raises(ValueError, match="growth"):
        kaf_depth.gradient_glue(summary.drop(columns="growth"), {"deep": 56})
    with pytest.raises(TypeError, match="depth tags"):
        kaf_depth.gradient_glue(summary, 56)


def test_first_nonfinite():
    it = pd.DataFrame({"arm": "kaf", "bandwidth": "kafnets", "depth": 56, "iteration": [2, 0, 1, 3],
                       "first_conv": [NAN, 1.0, 2.0, 0.0]})
    assert kaf_depth.first_nonfinite(it, "kaf", "kafnets", 56) == "from iteration 2 on"
    assert kaf_depth.first_nonfinite(it.assign(first_conv=1.0), "kaf", "kafnets", 56) == "never"
    assert kaf_depth.first_nonfinite(it.assign(first_conv=[1.0, 1.0, 0.0, 1.0]), "kaf", "kafnets", 56) == \
        "from iteration 1 on"
    with pytest.raises(ValueError, match="iteration_table"):
        kaf_depth.first_nonfinite(it.drop(columns="iteration"), "kaf", "kafnets", 56)


def training_result():
    def net(arm, depth, seed, acc, div=None):
        return {"arm": arm, "depth": depth, "seed": seed, "test_acc": acc, "diverged_at": div}
    nets = {"a": net("kaf", 56, 0, 0.10, 3), "b": net("kaf", 56, 1, 0.12), "c": net("relu", 20, 0, 0.9)}
    return result({"networks": nets, "data": "CIFAR-10"}, {"n_test": 2000})


def test_training_glue_and_markdown():
    g = kaf_depth.training_glue(training_result(), {"deep": 56, "shallow": 20})
    assert g["dt-kaf-deep-acc"] == pytest.approx(0.11)
    assert g["dt-kaf-deep-diverged"] == "1 of 2 run(s) stopped at a non-finite loss (iteration 3)"
    assert g["dt-relu-shallow-diverged"] == "no run was stopped" and math.isnan(g["dt-kaf-fix-deep-acc"])
    md = kaf_depth.training_markdown(training_result())
    assert cells(md, 1) == ["KAF, ResNet-56", "11.0 % (10.0 % to 12.0 %)", "2", "1", "10.0 %"]
    assert cells(md, 2) == ["ReLU, ResNet-20", "90.0 %", "1", "0", "91.8 %"]
    assert "first 2,000 test images of CIFAR-10" in md
    with pytest.raises(ValueError, match="networks"):
        kaf_depth.training_glue({"x": 1}, {"deep": 56})


# ------------------------------------------------------------------------------------------- kaf_adaptive


ATK = {"aa_steps": None, "kaf_taus": [0.0, 0.5]}


def adaptive_acc():
    return pd.DataFrame([
        {"name": "kaf", "seed": 0, "clean": 0.5, "pgd": 0.25, "autoattack": 0.2, "square": 0.3, "standard": 0.2,
         "bpda-tau0": 0.15, "bpda-tau0.5": NAN, "transfer": 0.4, "worst_case": 0.1},
        {"name": "relu", "seed": 0, "clean": 0.6, "pgd": 0.1, "autoattack": 0.05, "square": 0.2, "standard": 0.05,
         "worst_case": 0.05},
        {"name": "kwta", "seed": 1, "clean": 0.4, "pgd": 0.3, "autoattack": 0.2, "square": 0.25, "noise-pgd": 0.1,
         "bpda-st": 0.12, "transfer": 0.3, "worst_case": 0.08}])


def test_cascade_names():
    assert ka.cascade_key(ATK) == "autoattack" and ka.cascade_label(ATK) == "AutoAttack"
    assert ka.cascade_key({"aa_steps": 5}) == "aa-reduced"
    assert ka.cascade_label(ka.AdaptiveAttacks(aa_steps=5)) == "AutoAttack's cascade at 5 iterations (not AutoAttack)"
    assert ka.kwta_columns({"aa_steps": 5})[2] == ("aa-reduced", "reduced cascade")
    with pytest.raises(TypeError, match="aa_steps"):
        ka.cascade_key({"eps": 0.03})


def test_kwta_and_adaptive_tables():
    k = ka.kwta_display(adaptive_acc(), ATK)
    assert list(k.iloc[0]) == ["k-WTA, seed 1", "40.0 %", "30.0 %", "20.0 %", "25.0 %", "10.0 %", "12.0 %",
                               "30.0 %", "8.0 %"]
    assert k.iloc[1]["PGD"] == "≈50 % (as reported)" and k.iloc[1]["worst case"] == "≈0.16 % (their adaptive attack)"
    a = ka.adaptive_display(adaptive_acc(), ATK)
    assert list(a["network"]) == ["ReLU twin, seed 0", "KAF, seed 0"]
    assert list(a.columns)[6:8] == ["smoothed PGD, τ = 0", "smoothed PGD, τ = 0.5"]
    assert a.iloc[0]["smoothed PGD, τ = 0"] == MISSING and a.iloc[1]["smoothed PGD, τ = 0.5"] == MISSING
    assert a.iloc[1]["smoothed PGD, τ = 0"] == "15.0 %"
    md = ka.adaptive_markdown(adaptive_acc(), ATK, "CAPTION")
    assert md.endswith("\n\nCAPTION") and cells(md, 2)[0] == "KAF, seed 0"
    with pytest.raises(ValueError, match="name"):
        ka.kwta_display(adaptive_acc().drop(columns="name"), ATK)


def test_smooth_tables():
    stored = pd.DataFrame([{"row": "relu", "stored": True, "profile": "quick", "seeds": 2, "clean_mean": 0.8,
                            "robust_mean": 0.4, "autoattack_mean": NAN, "vs_relu_robust": ""},
                           {"row": "silu", "stored": False}])
    empty = pd.DataFrame([{"row": "relu", "stored": False}])
    g = ka.smooth_glue({"cifar10": stored, "mnist": empty})
    assert g == {"ka-smooth-missing-cifar10": "SiLU (Swish)", "ka-smooth-stored-cifar10": 1,
                 "ka-smooth-missing-mnist": "ReLU", "ka-smooth-stored-mnist": 0}
    d = ka.smooth_display({"cifar10": stored, "mnist": empty})
    assert list(d.iloc[0]) == ["CIFAR-10", "ReLU", "quick", 2, "80.0 %", "**40.0 %**", MISSING, MISSING]
    assert d.iloc[-1]["worst-case robust"] == "33.0 % / 42.3 % / 35.9 % (PGD)"
    assert ka.smooth_display({"mnist": empty}).iloc[0]["profile"] == "not stored yet"
    assert "| --- | --- | --- | --- | ---: |" in ka.smooth_markdown({"mnist": empty})
    with pytest.raises(TypeError, match="dict"):
        ka.smooth_display(stored)


# ------------------------------------------------------------------------------------------- kaf (candidates)


def test_candidates_display():
    acc = pd.DataFrame([{"act": "kwta", "seed": 0, "clean": 0.37, "pgd": 0.07, "pgd_predicted_thesis": 0.17,
                         "rescued": 22, "autoattack": 0.02, "square": 0.12, "adaptive": NAN, "worst_case": 0.02}])
    d = kaf.candidates_display(acc, {"pgd_steps": 20, "pgd_restarts": 3, "aa_steps": 10})
    assert list(d.columns)[2:5] == ["PGD-20x3, true labels", "PGD-20x3, predicted labels (thesis's count)",
                                    "reduced cascade"]
    assert list(d.iloc[0]) == ["k-WTA, seed 0", "37.0 %", "7.0 %", "17.0 % (22 rescued)", "2.0 %", "12.0 %", MISSING,
                               "**2.0 %**"]
    assert list(d.iloc[1]) == ["ReLU, the finished thesis", "77.96 %", "", "11.0 %", "", "", "", ""]
    assert len(d) == 1 + len(kaf.KAF_CANDIDATES_REPORTED)
    md = kaf.candidates_markdown(acc, kaf.CandidatesConfig(pgd_steps=20, pgd_restarts=3), "C")
    assert cells(md, 0)[4] == "AutoAttack" and md.endswith("\n\nC")
    with pytest.raises(ValueError, match="rescued"):
        kaf.candidates_display(acc.drop(columns="rescued"), {"pgd_steps": 1, "pgd_restarts": 1, "aa_steps": None})


# ------------------------------------------------------------------------------------------- kaf_lipschitz


def lipschitz_summary():
    row = dict(training="lipschitz", act="kaf", clean=0.5, bound=12345.6, bound_fft=2.0, activation_product=1.23456,
               certified=0.2, autoattack=NAN)
    return pd.DataFrame([{**row, "seed": 0}, {**row, "seed": 1, "clean": 0.6, "certified": 0.3}])


def test_lipschitz_summary_glue_and_display():
    g = kl.summary_glue(lipschitz_summary())
    assert g["kl-lipschitz-kaf-clean"] == pytest.approx(0.55) and g["kl-lipschitz-kaf-clean-txt"] == "55.0 %"
    assert g["kl-lipschitz-kaf-bound-txt"] == "1.23e+04" and g["kl-lipschitz-kaf-activation_product-txt"] == "1.23"
    assert math.isnan(g["kl-lipschitz-kaf-autoattack"]) and g["kl-lipschitz-kaf-autoattack-txt"] == MISSING
    d = kl.summary_display(lipschitz_summary(), {"aa_steps": None, "square_queries": 100})
    assert list(d.iloc[1]) == ["KAF, seed 1", "lipschitz", "60.0 %", "1.23e+04", "2", "1.23", "**30.0 %**", MISSING]
    assert list(d.iloc[-1])[2:7] == ["76.9 %", "1", "", "", "**66.3 %**"]
    assert d.columns[-1] == "AutoAttack L2 at 36/255"
    with pytest.raises(ValueError, match="certified"):
        kl.summary_glue(lipschitz_summary().drop(columns="certified"))
