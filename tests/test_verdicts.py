"""The chapters' verdict adapters (symact.experiments.verdicts) on tiny hand-built stored results."""
import json
from pathlib import Path

import numpy as np
import pytest

from symact.evaluation import encode_outcomes
from symact.experiments import verdicts as vd
from symact.results import Result

REPO = Path(__file__).resolve().parents[1]
WORDS = {"reproduced", "reproduced in sign only", "not reproduced", "inconclusive", "better", "worse",
         "no detectable difference", "not run at a converged protocol"}


def stored(data, profile="paper"):
    """A stored JSON result as results/<chapter>/<name>.<profile>.json holds it."""
    return {"provenance": {"profile": profile, "config": {}}, "result": data}


def entry(outcome, **extra):
    o = np.asarray(outcome, bool)
    return {"robust_acc": float(o.mean()), "n": len(o), "outcome": encode_outcomes(o), **extra}


# --------------------------------------------------------------------------- convergence


def test_convergence_is_the_paper_profile_only():
    assert vd.converged(stored({}, "paper"))
    assert not vd.converged(stored({}, "quick")) and not vd.converged(stored({}, "smoke"))
    assert vd.converged(Result({}, {"profile": "paper"}))
    with pytest.raises(ValueError):
        vd.profile({"result": {}})


# --------------------------------------------------------------------------- DOME Table 2


def dome_pair(n=400, gain=0.2, outcomes=True, profile="paper"):
    rng = np.random.default_rng(0)
    base = rng.random(n) < 0.4
    better = base | (rng.random(n) < gain)
    mk = (lambda o: entry(o)) if outcomes else (lambda o: {"robust_acc": float(np.mean(o)), "n": n})
    return stored({"autoattack": mk(better)}, profile), stored({"autoattack": mk(base)}, profile)


def test_dome_table2_words():
    m, b = dome_pair()
    paper, paper_b = (90.0, 60.0, 55.0), (90.0, 50.0, 40.0)  # published effect +15 points
    j = vd.dome_table2(m, b, paper, paper_b, name="PDOME")
    assert j.verdict.design.startswith("one network per arm: the images are the sample")
    assert j.word in {"reproduced", "reproduced in sign only"}
    assert j.published == pytest.approx(0.15)
    assert "paper reports +15.00 points" in j.sentence() and "paper profile" in j.sentence()
    # against a paper effect of the opposite sign: not reproduced
    assert vd.dome_table2(m, b, (90, 50, 30.0), paper_b).word == "not reproduced"
    # no published effect: better
    assert vd.dome_table2(m, b).word == "better"
    # the same network twice: no detectable difference
    assert vd.dome_table2(b, b).word == "no detectable difference"


def test_dome_table2_without_outcomes_is_inconclusive_never_agrees():
    m, b = dome_pair(outcomes=False)
    j = vd.dome_table2(m, b, (90, 50, 55.0), (90, 50, 40.0))
    assert j.word == "inconclusive"
    assert j.verdict.note == vd.NO_OUTCOMES
    assert "cannot be tested" in j.sentence() and "no interval" in j.sentence()


def test_dome_table2_quick_is_not_converged_and_smoke_skips():
    m, b = dome_pair(profile="quick")
    assert vd.dome_table2(m, b, (90, 50, 55.0), (90, 50, 40.0)).word == "not run at a converged protocol"
    m, b = dome_pair(outcomes=False, profile="quick")
    assert vd.dome_table2(m, b).word == "not run at a converged protocol"
    assert vd.dome_table2(stored({"autoattack": None}, "smoke"), b) is None


def test_dome_table2_mdome_views_take_the_worst_case():
    m, b = dome_pair()
    o = np.ones(400, bool)
    o[:300] = False  # a view that breaks far more images
    m["result"]["autoattack_logit1"] = entry(o)
    j = vd.dome_table2(m, b)
    from symact.evaluation import decode_outcomes
    union = decode_outcomes(m["result"]["autoattack"]["outcome"], 400) & o  # robust only if it survives every run
    assert j.verdict.effect == pytest.approx(union.mean() - b["result"]["autoattack"]["robust_acc"])
    assert j.word == "worse"


# --------------------------------------------------------------------------- S-APL Table 1


def table1(sapl, **others):
    rows = {"sapl": {"errors": list(sapl)}}
    rows.update({a: {"errors": list(e)} for a, e in others.items()})
    return rows


def test_sapl_table1_words():
    base = [0.0110, 0.0112, 0.0108, 0.0111, 0.0109]
    lower = [e - 0.0008 + d for e, d in zip(base, (0.0001, -0.0001, 0.0, 0.00005, -0.00005))]
    r = stored({"rows": table1(lower, prelu=base, relu=[e + 0.002 for e in base])})
    paper = ("prelu", 1.11, 1.03, 0.061)  # S-APL 0.08 points lower
    j = vd.sapl_table1(r, paper)
    assert j.what == "S-APL's test error minus prelu's"
    assert j.word == "reproduced" and j.verdict.design.startswith("paired over 5 seeds")
    assert vd.sapl_table1(r, ("prelu", 1.11, 0.71, 0.01)).word == "reproduced in sign only"
    assert vd.sapl_table1(r, ("prelu", 1.03, 1.11, 0.01)).word == "not reproduced"
    assert vd.sapl_table1(r).word == "better"  # lower error, no published effect
    noisy = stored({"rows": table1([0.010, 0.013, 0.009, 0.012, 0.008], prelu=base)})
    j = vd.sapl_table1(noisy, paper)
    assert j.word == "inconclusive" and "could detect about" in j.sentence()
    # the best baseline of the same width: exclude leaves maxout out
    r2 = stored({"rows": table1(lower, prelu=base, maxout=[0.001] * 5)})
    assert vd.sapl_table1(r2).what.endswith("maxout's")
    assert vd.sapl_table1(r2, exclude=("maxout",)).what.endswith("prelu's")


def test_sapl_table1_quick_and_few_seeds():
    r = stored({"rows": table1([0.5, 0.4], prelu=[0.6, 0.6])}, "quick")
    assert vd.sapl_table1(r, ("prelu", 1.11, 1.03, 0.061)).word == "not run at a converged protocol"
    r = stored({"rows": table1([0.5, 0.4], prelu=[0.6, 0.6])}, "paper")
    j = vd.sapl_table1(r)
    assert j.word == "inconclusive" and "underpowered" in j.verdict.note
    # a progress summary (no provenance): the profile its parts ran at is given
    prog = {"rows": table1([0.5, 0.4, 0.45], prelu=[0.6, 0.61, 0.62, 0.6])}
    assert vd.sapl_table1(prog, profile_="paper").verdict.n == 3


def test_sapl_table1_on_the_stored_paper_result():
    """The real stored MNIST LeNet-5 row (read-only, by path: the tests' SYMACT_RESULTS is a temp folder)."""
    d = json.loads((REPO / "results" / "sapl" / "table1-lenet-mnist.paper.json").read_text())
    j = vd.sapl_table1(d, ("prelu", 1.11, 1.03, 0.061))
    assert j.word in WORDS - {"not run at a converged protocol"}
    assert j.verdict.n == 5 and "paired over 5 seeds" in j.design


# --------------------------------------------------------------------------- S-APL Tables 2 to 4


def rob(success, clean, profile="paper", outcomes=True):
    clean, success = np.asarray(clean, bool), np.asarray(success, bool)
    robust = clean & ~success
    row = {"success_rate": float(success[clean].mean()), "n": len(clean)}
    s = {"n": len(clean), "onepixel": {"1": dict(row)}}
    if outcomes:
        s["outcome"] = encode_outcomes(clean)
        s["onepixel"]["1"]["outcome"] = encode_outcomes(robust)
    return stored({"sets": {str(len(clean)): s}}, profile)


def test_sapl_robustness_words():
    rng = np.random.default_rng(1)
    clean = rng.random(1000) < 0.75
    high = rng.random(1000) < 0.6
    low = high & (rng.random(1000) < 0.5)
    a, b = rob(low, clean), rob(high, clean)
    j = vd.sapl_robustness(a, b, "onepixel/1", 1000, paper_a=29, paper_b=61)
    assert j.word in {"reproduced", "reproduced in sign only"}
    assert vd.sapl_robustness(a, b, "onepixel/1", 1000).word == "better"  # lower success rate is better
    assert vd.sapl_robustness(b, a, "onepixel/1", 1000).word == "worse"
    assert vd.sapl_robustness(a, b, "onepixel/1", 1000, paper_a=61, paper_b=29).word == "not reproduced"


def test_sapl_robustness_without_outcomes_and_quick():
    clean = np.ones(100, bool)
    a, b = rob(np.arange(100) < 30, clean, outcomes=False), rob(np.arange(100) < 60, clean, outcomes=False)
    j = vd.sapl_robustness(a, b, "onepixel/1", 100, paper_a=29, paper_b=61)
    assert j.word == "inconclusive" and j.verdict.note == vd.NO_OUTCOMES
    assert j.verdict.effect == pytest.approx(-0.3)
    qa, qb = rob(np.arange(100) < 30, clean, "quick"), rob(np.arange(100) < 60, clean, "quick")
    assert vd.sapl_robustness(qa, qb, "onepixel/1", 100).word == "not run at a converged protocol"


def test_sapl_paper_rate():
    assert vd.sapl_paper_rate("sapl", "onepixel/1") == 29
    assert vd.sapl_paper_rate("relu", "fgsm/0.04") == 64
    assert vd.sapl_paper_rate("relu", "cw") == 83
    assert vd.sapl_paper_rate("relu", "pgd") is None


# --------------------------------------------------------------------------- SAF


def saf(errors, outcomes=None, profile="paper"):
    pe = {"betas": [0.0, 0.1], "n": 200, "adversarial": {"error": list(errors)}}
    if outcomes is not None:
        pe["adversarial"]["outcome"] = [encode_outcomes(o) for o in outcomes]
    return stored({"paper_eval": pe}, profile)


def test_saf_robust_words():
    rng = np.random.default_rng(2)
    ok_plain = rng.random(200) < 0.3
    ok_robust = ok_plain | (rng.random(200) < 0.8)
    clean = np.ones(200, bool)
    plain = saf([0.0, 1 - ok_plain.mean()], [clean, ok_plain])
    robust = saf([0.0, 1 - ok_robust.mean()], [clean, ok_robust])
    j = vd.saf_robust(robust, plain, 0.1, paper=(0.01, 0.03), paper_plain=(0.01, 0.54))
    assert j.word in {"reproduced", "reproduced in sign only"}
    assert vd.saf_robust(robust, plain, 0.1).word == "better"
    j = vd.saf_robust(saf([0.0, 0.1]), saf([0.0, 0.5]), 0.1, paper=(0.01, 0.03), paper_plain=(0.01, 0.54))
    assert j.word == "inconclusive" and j.verdict.note == vd.NO_OUTCOMES
    q = vd.saf_robust(saf([0.0, 0.1], profile="quick"), saf([0.0, 0.5], profile="quick"), 0.1)
    assert q.word == "not run at a converged protocol"


def test_saf_masking():
    strong = {"0.1": {"pgd": {"acc": 0.6, "n": 1000}, "square": {"acc": 0.4, "n": 500}}}
    j = vd.saf_masking(stored({"strong": strong}), 0.1)
    assert j.word == "inconclusive" and "cannot be compared" in j.verdict.note
    o_sq, o_pgd = np.arange(500) < 200, np.arange(1000) < 600
    strong = {"0.1": {"pgd": entry(o_pgd, acc=0.6), "square": entry(o_sq, acc=0.4)}}
    assert vd.saf_masking(stored({"strong": strong}), 0.1).word == "worse"
    assert vd.saf_masking(stored({"strong": strong}, "quick"), 0.1).word == "not run at a converged protocol"
    assert vd.saf_masking(stored({"strong": {"0.1": {"pgd": entry(o_pgd, acc=0.6)}}}), 0.1) is None


# --------------------------------------------------------------------------- one network, no test


def test_single_network():
    j = vd.single_network(stored({}), effect=-0.2, what="DOME's intra/inter ratio minus sigmoid's")
    assert j.word == "inconclusive" and j.verdict.note == vd.ONE_NETWORK
    assert "-0.200 (no interval)" in j.sentence()
    assert vd.single_network(stored({}), stored({}, "quick"), effect=0.1, what="x").word == \
        "not run at a converged protocol"
    assert vd.count_words([j, j]) == {"inconclusive": 2}


def test_sapl_table1_unpaired_for_a_run_in_progress():
    prog = {"rows": table1([0.0100, 0.0101, 0.0099], prelu=[0.012, 0.0125, 0.0118, 0.0121])}
    j = vd.sapl_table1(prog, profile_="paper", paired=False)
    assert j.word == "better" and j.design.startswith("unpaired") and j.arms == ("sapl", "prelu")


def test_outcomes_are_read_from_evaluate_s_own_layout(toy_model, toy_data):
    """A real evaluate() result: its top-level outcome is the clean one, the robust one is the worst case over
    its attacks, on its own images (an attack on the first images of a set has fewer than the set)."""
    from symact import attacks, evaluation

    res = evaluation.evaluate(toy_model, toy_data.head(12), attacks.make_attack("fgsm", toy_model, eps=0.5))
    robust = vd._outcome(res, n=100)  # the set's n must not override the entry's own
    assert len(robust) == 12
    assert robust.sum() == res["attacks"]["attack"]["robust"]
    assert (evaluation.decode_outcomes(res["outcome"], 12) >= robust).all()  # robust implies clean-correct


def _strong(values, profile="paper", eps=(1 / 255, 8 / 255)):
    """A stored strong-lenet-cifar10 result: per activation, per seed, CW distances with the given median, and a
    worst-case curve whose first point is that value / 10."""
    from symact.evaluation import encode_outcomes

    nets = {}
    for act, meds in values.items():
        nets[act] = {str(i): {"cw": {"distances": [m, m, m], "clean_outcome": encode_outcomes([True, True, True]),
                                     "n": 3},
                              "curve": {"eps": list(eps), "robust_acc": {"worst_case": [m / 10, 0.0]},
                                        "stopped_early": False}}
                     for i, m in enumerate(meds)}
    return {"provenance": {"profile": profile}, "result": {"networks": nets}}


def test_sapl_strong_paired_over_seeds():
    r = _strong({"sapl": [0.40, 0.42, 0.41], "relu": [0.30, 0.31, 0.33]})
    j = vd.sapl_strong(r, "cw")
    assert j.word == "better" and j.verdict.effect == pytest.approx((0.10 + 0.11 + 0.08) / 3)
    assert vd.sapl_strong(r, "robust", eps=1 / 255).word == "better"
    assert vd.sapl_strong(_strong({"sapl": [0.4, 0.4], "relu": [0.3, 0.3]}), "cw").word == "inconclusive"  # 2 seeds
    assert vd.sapl_strong(_strong({"sapl": [0.4] * 3, "relu": [0.3] * 3}, "quick"), "cw").word == vd.NOT_CONVERGED
    with pytest.raises(ValueError, match="needs eps"):
        vd.sapl_strong(r, "robust")
    with pytest.raises(ValueError, match="metric"):
        vd.sapl_strong(r, "psnr")


# --------------------------------------------------------------------------- SAF, strong evaluation


def _curve(model, seed, accs, outs=None, n=100):
    """A stored strong-<dataset> network: a one-point curve at eps 0.1 (worst case and two PGD attacks)."""
    outs = outs or {}
    pt = {"n": n, "attacks": {k: {"outcome": encode_outcomes(o)} for k, o in outs.items()},
          "worst_case": {"outcome": encode_outcomes(np.zeros(n, bool))}}
    return {"model": model, "seed": seed,
            "curve": {"eps": [0.1], "robust_acc": {"worst_case": [accs]}, "points": [pt]}}


def test_saf_seeds_words():
    nets = {f"{m}/seed{s}": _curve(m, s, acc) for m, accs in (("plain", (0.60, 0.62, 0.58)),
                                                              ("mrelu-r-m", (0.45, 0.47, 0.46)))
            for s, acc in enumerate(accs)}
    j = vd.saf_seeds(stored({"networks": nets}), 0.1)
    assert j.word == "worse" and j.verdict.effect == pytest.approx(-0.14, abs=1e-9)
    assert vd.saf_seeds(stored({"networks": nets}, "quick"), 0.1).word == "not run at a converged protocol"
    two = {k: v for k, v in nets.items() if not k.endswith("seed2")}
    assert vd.saf_seeds(stored({"networks": two}), 0.1).word == "inconclusive"
    one = {k: v for k, v in nets.items() if k.endswith("seed0")}
    assert vd.saf_seeds(stored({"networks": one}), 0.1).word == "inconclusive"
    with pytest.raises(ValueError, match="not on the stored curve"):
        vd.saf_seeds(stored({"networks": nets}), 0.2)
    with pytest.raises(ValueError, match="no network 'rbf'"):
        vd.saf_seeds(stored({"networks": nets}), 0.1, a="rbf")


def test_saf_strong_masking_and_first_strong():
    hybrid, ce = np.arange(100) < 30, np.arange(100) < 1
    nets = {f"mrelu-r-m/seed{s}": _curve("mrelu-r-m", s, 0.0, {"pgd": hybrid, "pgd-ce": ce}) for s in range(3)}
    j = vd.saf_strong_masking(stored({"networks": nets}), 0.1)
    assert j.word == "better" and j.verdict.n == 300
    assert vd.saf_strong_masking(stored({"networks": nets}), 0.1, against="square") is None
    rb = {"0.1": {"worst": {"acc": 0.46, "n": 500}}}
    pl = {"0.1": {"worst": {"acc": 0.60, "n": 500}}}
    j = vd.saf_first_strong(stored({"strong": rb}), stored({"strong": pl}), 0.1)
    assert j.word == "inconclusive" and j.verdict.note == vd.NO_OUTCOMES
    o_r, o_p = np.arange(500) < 230, np.arange(500) < 300
    rb = {"0.1": {"worst": {"acc": 0.46, "n": 500, "outcome": encode_outcomes(o_r)}}}
    pl = {"0.1": {"worst": {"acc": 0.60, "n": 500, "outcome": encode_outcomes(o_p)}}}
    assert vd.saf_first_strong(stored({"strong": rb}), stored({"strong": pl}), 0.1).word == "worse"
    assert vd.saf_first_strong(stored({"strong": rb}), stored({"strong": pl}), 0.3) is None


# --------------------------------------------------------------------------- DOME Table 2 with seeds


def robust_result(values, profile="paper", clean=0.9, eps=8 / 255):
    """A stored dome/robust-* result: ``values`` maps model -> per-seed worst-case robust accuracy at ``eps``."""
    nets = {}
    for model, accs in values.items():
        for seed, acc in enumerate(accs):
            curve = {"eps_grid": [eps, 0.3], "eps": [eps, 0.3], "stopped_early": False, "clean_acc": clean,
                     "robust_acc": {k: [acc, 0.0] for k in ("pgd", "autoattack", "worst_case")}}
            nets[f"{model}-seed{seed}"] = {"model": model, "seed": seed, "curve": curve}
    return stored({"eps": eps, "dataset": "fashion-mnist", "networks": nets}, profile)


def test_dome_seeds_words():
    base = [0.80, 0.81, 0.79, 0.80]
    paper, paper_b = (92.71, 88.26, 88.09), (92.86, 86.82, 85.12)  # Fashion-MNIST PDOME: +2.97 points
    same = robust_result({"baseline": base, "pdome": [b + 0.001 * (-1) ** i for i, b in enumerate(base)]})
    j = vd.dome_seeds(same, "pdome", paper=paper, paper_baseline=paper_b, name="PDOME")
    assert j.word == "not reproduced" and j.published == pytest.approx(0.0297)
    assert "paired over 4 seeds" in j.design and "+2.97 points" in j.theirs
    up = robust_result({"baseline": base, "pdome": [b + 0.03 + 0.002 * i for i, b in enumerate(base)]})
    assert vd.dome_seeds(up, "pdome", paper=paper, paper_baseline=paper_b).word == "reproduced"
    assert vd.dome_seeds(up, "pdome").word == "better"
    assert vd.dome_seeds(robust_result({"baseline": base, "pdome": base}, "quick"), "pdome").word == vd.NOT_CONVERGED


def test_dome_seeds_few_seeds_saturation_and_missing_eps():
    two = robust_result({"baseline": [0.8, 0.81], "pdome": [0.82, 0.84]})
    assert vd.dome_seeds(two, "pdome").word == "inconclusive"  # fewer than 3 seeds
    one = robust_result({"baseline": [0.8], "pdome": [0.82]})
    assert "underpowered" in vd.dome_seeds(one, "pdome").note
    sat = robust_result({"baseline": [0.89, 0.895, 0.89], "mdome": [0.95, 0.96, 0.97]}, clean=0.9)
    assert vd.saturated(sat)[0] and vd.saturated(sat)[1] == pytest.approx(0.9 - 0.8917, abs=1e-3)
    j = vd.dome_seeds(sat, "mdome")
    assert j.word == "inconclusive" and "saturated" in j.note
    assert vd.dome_seeds(sat, "mdome", eps=0.05) is None  # the curve never reached 0.05
    with pytest.raises(ValueError, match="networks"):
        vd.dome_seeds(sat, "pdome")


def test_paired_seeds_verdicts():
    paper = {"provenance": {"profile": "paper"}, "result": {}}
    quick = {"provenance": {"profile": "quick"}, "result": {}}
    a, b = {0: 0.10, 1: 0.11, 2: 0.09}, {0: 0.90, 1: 0.91, 2: 0.895}
    j = vd.paired_seeds(paper, a, b, what="A minus B", published=-0.80)
    assert j.word == "reproduced" and j.verdict.effect == pytest.approx(-0.805 / 3 - 1.6 / 3, abs=1e-9)
    assert vd.paired_seeds(quick, a, b, what="A minus B", published=-0.80).word == "not run at a converged protocol"
    assert vd.paired_seeds(paper, {0: 0.1}, {0: 0.9}, what="x", published=-0.8).word == "inconclusive"
    assert vd.paired_seeds(paper, {0: 0.1, 1: 0.1}, {0: 0.9, 1: 0.9}, what="x").word == "inconclusive"


# --------------------------------------------------------------------------- benchmark rows (KAF chapter)


def _row(robust, clean, profile="paper", network="VGGInspired", partial=False):
    """A stored leaderboard row (symact.benchmark's layout) with per-seed accuracies."""
    import dataclasses

    from symact import benchmark as bm

    p = dataclasses.replace(bm.protocol("cifar10", "paper"), network=network, seeds=tuple(range(len(robust))) or (0,))
    data = {"dataset": "cifar10", "protocol": bm._jsonable(p),
            "seeds": [{"seed": k, "eval": {"clean_acc": c, "worst_case": {"robust_acc": r}}}
                      for k, (r, c) in enumerate(zip(robust, clean))]}
    return Result(data, {"profile": profile, **({"partial": True} if partial else {})})


def test_benchmark_rows_pairs_one_protocol_and_averages_an_arm():
    relu = _row([0.40, 0.41, 0.42], [0.78, 0.79, 0.78])
    kaf = _row([0.45, 0.46, 0.47], [0.80, 0.80, 0.81])
    j = vd.benchmark_rows(kaf, relu, what="KAF minus ReLU")
    assert j.word == "better" and j.verdict.n == 3 and abs(j.verdict.effect - 0.05) < 1e-12
    # published effect: the interval around +5 points contains +1.39 -> not that; sign only or reproduced
    j = vd.benchmark_rows(kaf, relu, what="x", published=0.0139)
    assert j.word == "reproduced in sign only" and j.theirs == "+1.39 points"
    # an arm of two rows is their mean per seed
    other = _row([0.41, 0.42, 0.43], [0.80, 0.80, 0.81])
    j = vd.benchmark_rows([kaf, other], relu, what="x", metric="clean_acc")
    assert abs(j.verdict.effect - (0.8033333333 - 0.7833333333)) < 1e-6  # both KAF arms' clean mean 80.33 %
    # a claim of no difference within a margin
    same = _row([0.401, 0.409, 0.421], [0.78] * 3)
    assert vd.benchmark_rows(same, relu, what="x", margin=0.01).word == "reproduced"


def test_benchmark_rows_never_judges_quick_partial_or_too_few_seeds():
    relu = _row([0.40, 0.41, 0.42], [0.78] * 3)
    for a in (_row([0.5] * 3, [0.8] * 3, profile="quick"), _row([0.5] * 3, [0.8] * 3, partial=True)):
        assert vd.benchmark_rows(a, relu, what="x").word == vd.NOT_CONVERGED
    assert vd.benchmark_rows(_row([0.5], [0.8]), relu, what="x").word == "inconclusive"  # one seed, complete
    # two networks: unpaired (Welch), still a verdict with 3 seeds each
    res = _row([0.50, 0.51, 0.52], [0.8] * 3, network="CifarResNet")
    j = vd.benchmark_rows(res, relu, what="x")
    assert j.word == "better" and "welch" in j.design.lower()
    with pytest.raises(ValueError, match="share no finished seed"):
        vd.benchmark_rows(_row([], []), relu, what="x")


# --------------------------------------------------------------------------- per-seed rates (KAF, Lipschitz)


def test_per_seed_rates_words():
    a = {0: 0.30, 1: 0.32, 2: 0.31, 3: 0.33}
    b = {0: 0.20, 1: 0.21, 2: 0.22, 3: 0.20}
    j = vd.per_seed_rates(stored({}), a, b, what="KAF minus ReLU")
    assert j.word == "better" and j.verdict.effect == pytest.approx(0.1075)
    assert vd.per_seed_rates(stored({}), b, a, what="x").word == "worse"
    assert vd.per_seed_rates(stored({}, "quick"), a, b, what="x").word == "not run at a converged protocol"
    two = vd.per_seed_rates(stored({}), {0: 0.3, 1: 0.31}, {0: 0.2, 1: 0.2}, what="x")
    assert two.word == "inconclusive"
    one = vd.per_seed_rates(stored({}), {0: 0.3}, {0: 0.2, 5: 0.1}, what="x")
    assert one.word == "inconclusive" and "underpowered" in one.note and one.word in WORDS
    assert vd.per_seed_rates(stored({}, "quick"), {0: 0.3}, {0: 0.2}, what="x").word == "not run at a converged protocol"
    with pytest.raises(ValueError, match="share no seed"):
        vd.per_seed_rates(stored({}), {0: 0.3}, {1: 0.2}, what="x")


# --------------------------------------------------------------------------- seeds or images (KAF chapter)


def test_seeds_or_images_pairs_seeds_or_falls_back_to_the_images():
    n = 400
    a_out = np.zeros(n, bool); a_out[:60] = True      # A robust on 60 images
    b_out = np.zeros(n, bool); b_out[:200] = True     # B on 200, those 60 among them
    one = vd.seeds_or_images(stored({}), {0: (0.15, a_out)}, {0: (0.5, b_out)}, what="A minus B")
    assert one.word == "worse" and "McNemar" in one.design
    assert one.verdict.effect == pytest.approx(-0.35)
    assert vd.seeds_or_images(stored({}, "quick"), {0: (0.15, a_out)}, {0: (0.5, b_out)},
                              what="x").word == "not run at a converged protocol"
    seeds_a = {s: (0.30 + 0.01 * s, None) for s in range(3)}
    seeds_b = {s: (0.20 + 0.012 * s, None) for s in range(3)}
    three = vd.seeds_or_images(stored({}), seeds_a, seeds_b, what="x")
    assert three.word == "better" and three.verdict.n == 3
    two = vd.seeds_or_images(stored({}), {0: (0.3, None), 1: (0.31, None)}, {0: (0.2, None), 1: (0.2, None)},
                             what="x")
    assert two.word == "inconclusive"
    with pytest.raises(ValueError, match="share no seed"):
        vd.seeds_or_images(stored({}), {0: (0.3, a_out)}, {1: (0.3, b_out)}, what="x")
    with pytest.raises(ValueError, match="same images"):
        vd.seeds_or_images(stored({}), {0: (0.3, a_out)}, {0: (0.3, b_out[:10])}, what="x")


def _lb_row(profile, robust, proto=None):
    from symact import benchmark

    seeds = [{"seed": k, "eval": {"clean_acc": 0.8, "worst_case": {"robust_acc": r}}} for k, r in enumerate(robust)]
    p = proto or benchmark._jsonable(benchmark.protocol("cifar10", "paper"))
    return Result({"protocol": p, "seeds": seeds}, {"profile": profile})


def test_leaderboard_vs_relu_is_compare_to_relu():
    j = vd.leaderboard_vs_relu(_lb_row("paper", [0.45, 0.46, 0.47]), _lb_row("paper", [0.40, 0.405, 0.41]), row="silu",
                               dataset="cifar10")
    assert j.word == "better" and j.profile == "paper" and "silu" in j.what
    assert j.verdict.effect == pytest.approx(0.055)
    q = vd.leaderboard_vs_relu(_lb_row("quick", [0.45]), _lb_row("quick", [0.40]), row="silu", dataset="cifar10")
    assert q.word == "not run at a converged protocol"
