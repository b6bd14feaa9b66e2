"""symact.evaluation: per-image outcomes, cascades, compatibility, statistics, curves, sanity, the verdict rule."""
import copy
import json
import math

import numpy as np
import pytest
import torch
import torchattacks
from scipy import stats
from torch import nn

import legacy_evaluation as legacy
from symact import evaluation as ev
from symact.data import ImageData


def _fit(model, data, epochs=30, lr=0.5):
    """A few full-batch steps: the toy task is linearly separable, so this reaches ~100 %."""
    x, y = data.tensors()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture
def trained(toy_data, toy_model):
    return _fit(toy_model, toy_data)


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001])
def test_encode_decode_round_trip(n):
    v = np.random.default_rng(n).random(n) < 0.5
    s = ev.encode_outcomes(v)
    assert isinstance(s, str) and len(s) <= 4 * ((n + 7) // 8 + 2) // 3 + 4
    assert np.array_equal(ev.decode_outcomes(s, n), v)
    assert np.array_equal(ev.decode_outcomes(ev.encode_outcomes(torch.from_numpy(v)), n), v)


def test_decode_with_the_wrong_count_is_an_error():
    s = ev.encode_outcomes([True] * 9)
    with pytest.raises(ValueError, match="bytes"):
        ev.decode_outcomes(s, 17)
    with pytest.raises(ValueError, match="1-D boolean"):
        ev.encode_outcomes([[True]])


def test_evaluate_per_image_outcomes(trained, toy_data):
    data = toy_data.head(64)
    fgsm = torchattacks.FGSM(trained, eps=0.15)
    r = ev.evaluate(trained, data, {"fgsm": fgsm, "none": lambda x, y: x}, batch_size=24)
    n = r["n"]
    assert r["protocol"] == ev.EVAL_PROTOCOL and r["predict"] == "argmax" and n == 64
    clean = ev.decode_outcomes(r["outcome"], n)
    x, y = data.tensors()
    with torch.no_grad():
        assert np.array_equal(clean, (trained(x).argmax(1) == y).numpy())
    assert r["clean_correct"] == clean.sum()
    # the identity attack leaves exactly the clean-correct images robust
    none = r["attacks"]["none"]
    assert np.array_equal(ev.decode_outcomes(none["outcome"], n), clean) and none["fooled"] == 0
    assert math.isnan(none["psnr"]) and math.isnan(none["linf"]["median"])
    # FGSM is deterministic per image: its outcome is the brute-force one
    f = r["attacks"]["fgsm"]
    rob = ev.decode_outcomes(f["outcome"], n)
    adv = fgsm(x, y)
    with torch.no_grad():
        brute = (trained(adv).argmax(1) == y).numpy() & clean
    assert np.array_equal(rob, brute) and f["robust"] == rob.sum() and 0 < f["robust"] < f["fooled"] + f["robust"]
    assert f["robust_acc"] == rob.sum() / n and f["success_rate"] == f["fooled"] / r["clean_correct"]
    assert f["linf"]["median"] == pytest.approx(0.15, abs=1e-5) and f["mean_linf"] == f["linf"]["mean"]
    assert r["worst_case"]["robust"] == f["robust"] and r["worst_case"]["attacks"] == ["fgsm", "none"]
    assert trained.training is False


def test_stored_outcomes_give_mcnemar_and_worst_case(trained, toy_data):
    data = toy_data.head(64)
    torch.manual_seed(0)
    atks = {"fgsm": torchattacks.FGSM(trained, eps=0.12),
            "pgd": torchattacks.PGD(trained, eps=0.12, alpha=0.03, steps=5)}
    r = ev.evaluate(trained, data, atks)
    stored = json.loads(json.dumps(r))  # what the store keeps
    n = stored["n"]
    f, p = (ev.decode_outcomes(stored["attacks"][k]["outcome"], n) for k in ("fgsm", "pgd"))
    t = ev.mcnemar(stored["attacks"]["fgsm"]["outcome"], stored["attacks"]["pgd"]["outcome"], n=n)
    assert t["b"] == int((f & ~p).sum()) and t["c"] == int((~f & p).sum())
    assert t["p"] == pytest.approx(stats.binomtest(t["b"], t["b"] + t["c"]).pvalue if t["b"] + t["c"] else 1.0)
    w = ev.worst_case([stored["attacks"]["fgsm"]["outcome"], stored["attacks"]["pgd"]["outcome"]], n=n)
    assert np.array_equal(w, f & p)
    assert stored["worst_case"]["robust_acc"] == w.sum() / n
    assert np.array_equal(ev.decode_outcomes(stored["worst_case"]["outcome"], n), w)


def test_mcnemar_by_hand():
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 1, 1], bool)
    t = ev.mcnemar(a, b)
    assert (t["b"], t["c"], t["n"]) == (5, 1, 8)
    assert t["p"] == pytest.approx(2 * (1 + 6) / 64)  # two-sided exact: P(X <= 1) + P(X >= 5), X ~ Bin(6, 1/2)
    assert ev.mcnemar(a, a)["p"] == 1.0
    with pytest.raises(ValueError, match="equal length"):
        ev.mcnemar(a, b[:3])
    with pytest.raises(ValueError, match="needs n="):
        ev.worst_case([ev.encode_outcomes(a)])


def test_proportion_interval():
    assert ev.proportion_interval(50, 100) == pytest.approx(legacy.wilson_interval(50, 100))
    lo, hi = ev.proportion_interval(0, 10, method="exact")
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))  # Clopper-Pearson at k = 0
    assert ev.proportion_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        ev.proportion_interval(3, 2)
    with pytest.raises(ValueError, match="method"):
        ev.proportion_interval(1, 2, method="wald")


# --------------------------------------------------------------------------- cascades and rules


class _MeanModel(nn.Module):
    """Class 1 when the mean of the pixels (the first excepted: it holds the image's id) is above 1/2."""

    def forward(self, x):
        m = x.flatten(1)[:, 1:].mean(1)
        return torch.stack([0.5 - m, m - 0.5], 1) * 10


def _id_data(n=16, wrong=(15,)):
    y = torch.arange(n) % 2
    x = torch.where(y[:, None, None, None] == 1, 200, 50).expand(n, 1, 4, 4).clone().to(torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n).to(torch.uint8)
    y = y.clone()
    for i in wrong:
        y[i] = 1 - y[i]
    return ImageData(x, y, "ids", ("dark", "bright"), "images that carry their id")


class _Fooler:
    """Fools (inverts) the images whose id is in ``ids``; records the ids it was shown."""

    def __init__(self, ids):
        self.ids, self.seen = set(ids), []

    def __call__(self, x, y):
        ids = (x[:, 0, 0, 0] * 255).round().long().tolist()
        self.seen += ids
        out = x.clone()
        for k, i in enumerate(ids):
            if i in self.ids:
                out[k, :, :, :] = 1 - x[k]
                out[k, 0, 0, 0] = x[k, 0, 0, 0]
        return out


class _Cascade:
    def __init__(self, components):
        self.components = components


def test_cascade_records_which_component_broke_each_image():
    data, model = _id_data(), _MeanModel()
    a, b, c = _Fooler({0, 1, 2, 3}), _Fooler({2, 3, 4, 5, 6, 15}), _Fooler(set())
    plain = _Fooler({5, 6, 7})
    r = ev.evaluate(model, data, {"aa": _Cascade([("a", a), ("b", b), ("c", c)]), "plain": plain}, batch_size=5)
    assert r["clean_correct"] == 15
    e = r["attacks"]["aa"]
    assert e["kind"] == "cascade" and e["broken_by"]["counts"] == {"a": 4, "b": 3, "c": 0}
    assert sorted(a.seen) == list(range(15))  # the clean-wrong image 15 is never attacked
    assert sorted(b.seen) == list(range(4, 15)) and sorted(c.seen) == list(range(7, 15))
    who = ev.decode_broken_by(e, r["n"])
    assert who == ["a"] * 4 + ["b"] * 3 + [None] * 9
    robust = ev.decode_outcomes(e["outcome"], r["n"])
    assert robust.tolist() == [False] * 7 + [True] * 8 + [False] and e["robust"] == 8
    assert sorted(plain.seen) == list(range(15)) and r["attacks"]["plain"]["robust"] == 12
    assert r["worst_case"]["robust"] == 7  # 7..14, minus 7 broken by the plain attack
    # a single cascade (not in a dict): the same bookkeeping, plus the flat keys
    one = ev.evaluate(model, data, _Cascade([("a", _Fooler({0, 1, 2, 3})), ("b", _Fooler({4, 5, 6}))]))
    assert one["robust_acc"] == 8 / 16 and one["attacks"]["attack"]["broken_by"]["counts"] == {"a": 4, "b": 3}
    # pooling two halves gives the whole
    halves = [ev.evaluate(model, ImageData(data.x[s], data.y[s], "ids", data.classes, ""),
                          {"aa": _Cascade([("a", _Fooler({0, 1, 2, 3})), ("b", _Fooler({2, 3, 4, 5, 6})),
                                           ("c", _Fooler(set()))]), "plain": _Fooler({5, 6, 7})})
              for s in (slice(0, 6), slice(6, 16))]
    pooled = ev.pool(halves)
    for key in ("n", "clean_correct", "clean_acc", "outcome"):
        assert pooled[key] == r[key]
    for name in ("aa", "plain"):
        for key in ("robust", "robust_acc", "fooled", "success_rate", "outcome", "mean_linf", "psnr"):
            assert pooled["attacks"][name][key] == pytest.approx(r["attacks"][name][key])
    assert pooled["attacks"]["aa"]["broken_by"] == r["attacks"]["aa"]["broken_by"]
    assert pooled["worst_case"] == r["worst_case"] and pooled["attacks"]["aa"]["linf"]["median"] is None


def test_prediction_rule_rejection_counts_as_wrong():
    data, model = _id_data(wrong=()), _MeanModel()

    def reject_even_ids(out):  # a rule that rejects every second image
        pred = out.argmax(1)
        pred[::2] = -1
        return pred

    r = ev.evaluate(model, data, {"a": _Fooler({1})}, predict=reject_even_ids)
    assert r["predict"] == "reject_even_ids" and r["clean_correct"] == 8 and r["attacks"]["a"]["robust"] == 7


def test_plain_module_with_view(toy_data):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))

    torch.manual_seed(0)
    model = _fit(Plain(), toy_data)
    data = toy_data.head(40)
    atks = {"fgsm": torchattacks.FGSM(model, eps=0.1), "pgd": torchattacks.PGD(model, eps=0.1, steps=3),
            "cascade": _Cascade([("pgd", torchattacks.PGD(model, eps=0.1, steps=3)),
                                 ("fgsm", torchattacks.FGSM(model, eps=0.1))])}
    r = ev.evaluate(model, data, atks, batch_size=16)
    assert r["n"] == 40 and set(r["attacks"]) == set(atks)
    assert sum(r["attacks"]["cascade"]["broken_by"]["counts"].values()) == r["attacks"]["cascade"]["fooled"]


def test_evaluate_rejects_non_attacks(trained, toy_data):
    with pytest.raises(TypeError, match="neither callable"):
        ev.evaluate(trained, toy_data.head(4), {"x": 3})


# --------------------------------------------------------------------------- compatibility


@pytest.mark.parametrize("kind", ["fgsm", "pgd", "none"])
def test_single_attack_matches_attacks_evaluate(trained, toy_data, kind):
    data = toy_data.head(50)
    make = {"fgsm": lambda: torchattacks.FGSM(trained, eps=0.1),
            "pgd": lambda: torchattacks.PGD(trained, eps=0.1, alpha=0.03, steps=4, random_start=True),
            "none": lambda: None}[kind]
    torch.manual_seed(1)
    old = legacy.evaluate(trained, data, make(), batch_size=16, return_examples=3)
    torch.manual_seed(1)
    new = ev.evaluate(trained, data, make(), batch_size=16, return_examples=3)
    for key, value in old.items():
        assert _same(new[key], value), key
    if kind == "none":
        assert new["attacks"] == {} and "worst_case" not in new
    else:
        assert new["attacks"]["attack"]["robust"] == round(old["robust_acc"] * old["n"])
        assert "examples" not in new["attacks"]["attack"]
        json.dumps(new)


def test_pool_matches_pool_evaluations(trained, toy_data):
    parts = [toy_data.head(60), ImageData(toy_data.x[60:100], toy_data.y[60:100], "toy", toy_data.classes, "")]
    atk = torchattacks.FGSM(trained, eps=0.1)
    old = legacy.pool_evaluations([legacy.evaluate(trained, p, atk) for p in parts])
    new = ev.pool([ev.evaluate(trained, p, atk) for p in parts])
    for key, value in old.items():
        assert new[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    whole = ev.evaluate(trained, toy_data.head(100), atk)
    assert new["attacks"]["attack"]["outcome"] == whole["attacks"]["attack"]["outcome"]
    with pytest.raises(ValueError):
        ev.pool([])


class _Interrupted(RuntimeError):
    pass


class _PGDThatStops:
    """PGD with a random start that raises on its ``stop_at``-th call: an evaluation interrupted mid-way."""

    def __init__(self, model, stop_at=None):
        self.pgd = torchattacks.PGD(model, eps=0.3, alpha=0.05, steps=3, random_start=True)
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, x, y):
        self.calls += 1
        if self.calls == self.stop_at:
            raise _Interrupted
        return self.pgd(x, y)


def test_interrupted_evaluation_resumes_to_the_uninterrupted_result(trained, toy_data, tmp_path):
    data, ckpt = toy_data.head(70), tmp_path / "eval.pt"

    def run(stop_at=None):
        atks = {"fgsm": torchattacks.FGSM(trained, eps=0.3), "pgd": _PGDThatStops(trained, stop_at)}
        return ev.evaluate(trained, data, atks, batch_size=16, checkpoint=ckpt, return_examples=20)

    torch.manual_seed(3)
    whole = run()
    assert 0 < whole["attacks"]["pgd"]["fooled"] < whole["clean_correct"]  # the random starts change numbers
    assert not ckpt.exists()  # removed once the evaluation returns
    torch.manual_seed(3)
    with pytest.raises(_Interrupted):
        run(stop_at=3)  # two batches done and saved, the third interrupted
    assert ckpt.exists()
    torch.manual_seed(99)  # the resumed run restores the random state of the interruption itself
    resumed = run()
    assert json.dumps(resumed, sort_keys=True) == json.dumps(whole, sort_keys=True)
    assert not ckpt.exists()
    torch.manual_seed(3)
    with pytest.raises(_Interrupted):
        run(stop_at=2)
    with pytest.raises(ValueError, match="another evaluation"):
        ev.evaluate(trained, data, {"fgsm": torchattacks.FGSM(trained, eps=0.1)}, batch_size=16, checkpoint=ckpt)
    other = copy.deepcopy(trained)
    with torch.no_grad():
        other[-1].bias += 1.0  # another network, the same attacks: not this checkpoint's evaluation either
    with pytest.raises(ValueError, match="another evaluation"):
        ev.evaluate(other, data, {"fgsm": torchattacks.FGSM(other, eps=0.3), "pgd": _PGDThatStops(other)},
                    batch_size=16, checkpoint=ckpt, return_examples=20)


# --------------------------------------------------------------------------- curves and distances


def _fgsm_pgd(model, eps):
    return {"fgsm": torchattacks.FGSM(model, eps=eps),
            "pgd": torchattacks.PGD(model, eps=eps, alpha=max(eps / 4, 1e-6), steps=4)}


def test_curve_stops_at_zero_and_compares(trained, toy_data):
    data = toy_data.head(48)
    torch.manual_seed(0)
    c = ev.robustness_curve(trained, data, _fgsm_pgd, [0.6, 0.0, 0.1, 0.8, 1.0])
    assert c["eps_grid"] == [0.0, 0.1, 0.6, 0.8, 1.0]
    assert c["stopped_early"] and c["eps"] == [0.0, 0.1, 0.6] and len(c["points"]) == 3
    assert c["robust"]["worst_case"][-1] == 0 and c["robust"]["fgsm"][-1] == 0
    assert c["robust_acc"]["worst_case"][0] == c["clean_acc"]
    assert all(lo <= a <= hi for a, (lo, hi) in zip(c["robust_acc"]["pgd"], c["interval"]["pgd"]))
    json.loads(json.dumps(c))
    full = ev.robustness_curve(trained, data, _fgsm_pgd, [0.0, 0.6, 1.0], stop_at_zero=False)
    assert full["eps"] == [0.0, 0.6, 1.0] and not full["stopped_early"]
    cmp = ev.compare_curves(c, full)
    assert cmp["eps"] == [0.0, 0.6] and cmp["p"] == [1.0, 1.0] and cmp["difference"] == [0.0, 0.0]


def test_min_norm_distances(trained, toy_data):
    data = toy_data.head(16)
    d = ev.min_norm_distances(trained, data, "Linf", "fab", steps=20)
    dist = np.array(d["distances"])
    ok = ev.decode_outcomes(d["clean_outcome"], d["n"])
    assert d["n"] == 16 and d["found"] == d["clean_correct"] == ok.sum()
    assert (dist[~ok] == 0).all() and (dist[ok] > 0).all() and (dist[ok] < 0.5).all()
    assert d["q1"] <= d["median"] <= d["q3"]
    assert ev.robust_acc_at(d, 0.0) == ok.mean() and ev.robust_acc_at(d, 1.0) == 0
    cw = ev.min_norm_distances(trained, data, "L2", "cw", steps=10)
    cd = np.array(cw["distances"])
    assert len(cd) == 16 and cw["norm"] == "L2" and (cd[~ok] == 0).all() and (cd[ok] > 0).all()
    assert cw["found"] == np.isfinite(cd[ok]).sum()
    with pytest.raises(ValueError, match="L2 attack"):
        ev.min_norm_distances(trained, data, "Linf", "cw")


# --------------------------------------------------------------------------- sanity


class _Rounding(nn.Module):
    """A masked model: rounds its input to 4 grey levels first, so its input gradient is zero."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


def test_sanity_flags_a_masked_model(trained, toy_data):
    data = toy_data.head(32)
    masked = _Rounding(trained).eval()
    out = ev.run_sanity(masked, data, eps=0.3, surrogate=trained, steps=3, square_queries=100,
                        curve_eps=[0.3, 1.0])
    checks = {c["name"]: c for c in out["checks"]}
    assert set(checks) == {"iterative-vs-single-step", "more-iterations", "large-epsilon",
                           "black-box-vs-white-box", "transfer-vs-white-box"}
    attacks = out["report"]["evaluation"]["attacks"]
    assert attacks["fgsm"]["fooled"] == 0  # zero gradient: FGSM does nothing
    for name in ("black-box-vs-white-box", "transfer-vs-white-box"):
        assert checks[name]["passed"] is False and "gradient masking" in checks[name]["detail"], checks[name]
    json.dumps(out)


def test_sanity_passes_an_honest_model(trained, toy_data):
    out = ev.run_sanity(trained, toy_data.head(32), eps=0.15, surrogate=trained, steps=3, square_queries=100,
                        curve_eps=[0.15, 1.0])
    for c in out["checks"]:
        assert c["passed"] is True, c


def test_sanity_on_constructed_reports():
    n = 40
    enc = lambda v: ev.encode_outcomes(np.asarray(v, bool))  # noqa: E731
    robust = lambda k: enc([True] * k + [False] * (n - k))  # noqa: E731
    report = {"evaluation": {"n": n, "attacks": {
        "fgsm": {"outcome": robust(5)}, "pgd": {"outcome": robust(30)}, "pgd_2x": {"outcome": robust(10)}}},
        "curve": {"n": n, "eps": [0.5], "robust": {"worst_case": [12]}}}
    checks = {c["name"]: c for c in ev.sanity(report)}
    assert checks["iterative-vs-single-step"]["passed"] is False
    assert checks["iterative-vs-single-step"]["detail"].startswith("iterative-vs-single-step failed")
    assert checks["more-iterations"]["passed"] is False and "gradient masking" in checks["more-iterations"]["detail"]
    assert checks["large-epsilon"]["passed"] is False
    assert checks["black-box-vs-white-box"]["passed"] is None and "skipped" in checks["black-box-vs-white-box"]["detail"]
    # within the noise: one image of difference is not flagged
    report["evaluation"]["attacks"] = {"fgsm": {"outcome": robust(10)}, "pgd": {"outcome": robust(11)},
                                       "pgd_2x": {"outcome": robust(10)}, "square": {"outcome": robust(9)}}
    report["curve"]["robust"]["worst_case"] = [0]
    assert all(c["passed"] in (True, None) for c in ev.sanity(report))


# --------------------------------------------------------------------------- the verdict


ONE = [1.0, 1.1, 0.9, 1.05, 0.95]       # an effect of about 1, clearly away from 0
NULL = [0.1, -0.1, 0.05, -0.05, 0.0]    # about 0, precisely
WIDE = [2.0, -1.0, 1.5, -0.5, 0.5]      # about 0.5, imprecisely: the interval holds 0 and 1


def test_verdict_words_against_a_published_effect():
    zeros = [0.0] * 5
    assert ev.verdict(ONE, zeros, converged=True, published=1.0).word == "reproduced"
    assert ev.verdict(ONE, converged=True, published=1.0).word == "reproduced"  # differences given directly
    v = ev.verdict(ONE, zeros, converged=True, published=3.0)
    assert v.word == "reproduced in sign only"
    assert ev.verdict(NULL, converged=True, published=1.0).word == "not reproduced"
    assert ev.verdict([-x for x in ONE], converged=True, published=1.0).word == "not reproduced"
    assert ev.verdict([-x for x in ONE], converged=True, published=-1.0).word == "reproduced"
    v = ev.verdict(WIDE, converged=True, published=1.0)
    assert v.word == "inconclusive" and v.mde is not None and v.mde > abs(v.effect)
    assert v.mde == pytest.approx((stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * np.std(WIDE, ddof=1) / math.sqrt(5))
    # fewer seeds than the rule needs
    v = ev.verdict(ONE[:2], converged=True, published=1.0)
    assert v.word == "inconclusive" and "underpowered" in v.note


def test_verdict_paired_interval_is_scipys():
    a, b = np.array([0.9, 0.8, 0.85, 0.95]), np.array([0.7, 0.75, 0.7, 0.8])
    v = ev.verdict(a, b, converged=True)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert v.interval == pytest.approx((ci.low, ci.high)) and v.p == pytest.approx(ref.pvalue)
    assert v.word == "better" and v.n == 4 and "paired over 4 seeds" in v.design
    w = ev.verdict(a, b, converged=True, paired=False)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert w.interval == pytest.approx((ci.low, ci.high)) and w.p == pytest.approx(ref.pvalue) and "Welch" in w.design
    assert ev.verdict(a, b, converged=True, higher_is_better=False).word == "worse"
    assert ev.verdict(b, a, converged=True).word == "worse"
    v = ev.verdict(NULL, converged=True)
    assert v.word == "no detectable difference" and v.mde > 0


def test_verdict_against_a_margin():
    assert ev.verdict(NULL, converged=True, margin=0.5).word == "reproduced"
    assert ev.verdict(ONE, converged=True, margin=0.5).word == "not reproduced"
    assert ev.verdict(WIDE, converged=True, margin=0.5).word == "inconclusive"


def test_verdict_on_images():
    rng = np.random.default_rng(0)
    a = rng.random(400) < 0.8
    b = a.copy()
    b[np.flatnonzero(a)[:60]] = False  # B loses 60 images A keeps
    v = ev.verdict(a, b, converged=True, images=True)
    assert v.word == "better" and v.n == 400 and "the images are the sample, not the training" in v.design
    assert v.effect == pytest.approx(a.mean() - b.mean()) and v.interval[0] < v.effect < v.interval[1]
    assert v.p == ev.mcnemar(a, b)["p"] and v.p < 1e-10
    assert ev.verdict(a, b, converged=True, images=True, published=0.15).word == "reproduced"
    same = ev.verdict(a, a, converged=True, images=True)
    assert same.word == "no detectable difference" and same.p == 1.0 and same.mde is not None


def test_no_verdict_from_quick_results():
    cases = [dict(a=ONE, published=1.0), dict(a=ONE, published=3.0), dict(a=NULL, published=1.0),
             dict(a=NULL, margin=0.5), dict(a=ONE), dict(a=NULL), dict(a=ONE[:1]),
             dict(a=[True] * 30 + [False] * 10, b=[False] * 40, images=True)]
    for case in cases:
        v = ev.verdict(**case, converged=False)
        assert v.word == "not run at a converged protocol", case
    words = {ev.verdict(**case, converged=False).word for case in cases}
    assert words.isdisjoint(set(ev.WORDS) - {"not run at a converged protocol"})


def test_verdict_bad_inputs():
    with pytest.raises(ValueError, match="not both"):
        ev.verdict(ONE, converged=True, published=1.0, margin=0.1)
    with pytest.raises(ValueError, match="non-empty"):
        ev.verdict([], converged=True)
    with pytest.raises(ValueError, match="equal lengths"):
        ev.verdict([1.0, 2.0, 3.0], [1.0, 2.0], converged=True)
    with pytest.raises(ValueError, match="NaN"):
        ev.verdict([1.0, float("nan"), 2.0], converged=True)
    with pytest.raises(ValueError, match="margin"):
        ev.verdict(ONE, converged=True, published=0.0)
    with pytest.raises(ValueError, match="margin must be"):
        ev.verdict(ONE, converged=True, margin=-1)
    with pytest.raises(ValueError, match="both arms"):
        ev.verdict([True, False], converged=True, images=True)
    with pytest.raises(ValueError, match="same images"):
        ev.verdict([True, False], [True], converged=True, images=True)
    with pytest.raises(ValueError, match="paired=False needs both arms"):
        ev.verdict(ONE, converged=True, paired=False)


def test_cascade_label_never_calls_an_old_result_autoattack():
    old = {"provenance": {"config": {"n_aa": 50}}, "result": {}}           # stored before the config named it
    assert ev.cascade_label(old).startswith("10-iteration cascade")
    assert ev.cascade_label({"provenance": {"config": {"autoattack": "autoattack"}}}) == "AutoAttack"
    with pytest.raises(ValueError, match="unknown cascade"):
        ev.cascade_label({"provenance": {"config": {"autoattack": "aa-lite"}}})


def test_distances_read_back_from_json_keep_failed_attacks_as_infinite():
    """A stored min_norm_distances result has null where the attack found nothing (JSON has no infinity):
    distance_values and robust_acc_at read it as inf, so such an image counts as robust at every budget."""
    from symact.store.registry import _jsonable

    d = {"distances": [0.0, 0.2, math.inf, 0.5], "clean_outcome": ev.encode_outcomes([0, 1, 1, 1]), "n": 4}
    stored = json.loads(json.dumps(_jsonable(d)))
    assert stored["distances"][2] is None
    assert np.array_equal(ev.distance_values(stored), [0.0, 0.2, math.inf, 0.5])
    assert ev.robust_acc_at(stored, 0.3) == ev.robust_acc_at(d, 0.3) == 0.5  # images 2 (failed) and 3 (0.5)
