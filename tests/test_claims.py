"""The claims registry (symact.claims) and the Conclusions table built from it."""
import pytest

from symact import claims
from symact.evaluation import verdict
from symact.experiments.verdicts import Judgement


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for the test (the chapters' claims are left alone)."""
    monkeypatch.setattr(claims, "CLAIMS", {})
    return claims.CLAIMS


def judgement(profile):
    v = verdict([0.01, 0.02, 0.015], converged=profile == "paper", published=0.03)
    return Judgement(v, "A minus B, robust accuracy", profile, published=0.03)


def test_register_and_judge_prefers_paper_then_quick(registry):
    stored = {"paper": None, "quick": judgement("quick")}
    claims.claim("dome/x", chapter="dome", section="dome-x", source="dome.txt, Table 2",
                 text="X | holds")(lambda prof: stored[prof])
    j, prof = claims.judge("dome/x")
    assert prof == "quick" and j.word == "not run at a converged protocol"
    stored["paper"] = judgement("paper")
    j, prof = claims.judge("dome/x")
    assert prof == "paper" and j.word == "reproduced in sign only"
    stored["paper"] = stored["quick"] = None
    assert claims.judge("dome/x") == (None, None)


def test_conclusions_table_has_a_row_per_claim_and_marks_missing(registry):
    claims.claim("dome/a", chapter="dome", section="s-a", source="dome.txt", text="a")(lambda p: None)
    claims.claim("saf/b", chapter="saf", section="s-b", source="saf.txt", text="b | c")(
        lambda p: judgement(p) if p == "paper" else None)
    df = claims.conclusions()
    assert list(df["key"]) == ["dome/a", "saf/b"]
    assert df.loc[0, "verdict"] == claims.NOT_STORED and df.loc[0, "ours"] == ""
    assert df.loc[1, "profile"] == "paper" and "points" in df.loc[1, "ours"]
    assert list(claims.conclusions(chapters=("saf",))["key"]) == ["saf/b"]
    md = claims.markdown_table(df)
    assert md.count("\n") == 3 and "b \\| c" in md and "{ref}`section <s-b>`" in md
    assert "**not run yet**" in md


@pytest.mark.parametrize("key,kw,match", [
    ("Dome/x", {}, "lower case"),
    ("dome-x", {}, "lower case"),
    ("saf/x", {}, "start with its chapter"),
    ("dome/x", {"text": " "}, "non-empty text"),
    ("dome/x", {"source": ""}, "non-empty source"),
])
def test_bad_claims_are_refused(registry, key, kw, match):
    args = dict(chapter="dome", section="s", source="dome.txt", text="t") | kw
    with pytest.raises(ValueError, match=match):
        claims.claim(key, **args)


def test_a_key_registered_twice_is_refused(registry):
    claims.claim("dome/x", chapter="dome", section="s", source="d", text="t")(lambda p: None)
    with pytest.raises(ValueError, match="twice"):
        claims.claim("dome/x", chapter="dome", section="s", source="d", text="t")(lambda p: None)


def test_the_books_claims_read_only_stored_results(tmp_path, monkeypatch):
    """Every registered claim of the book judges from stored results: with an empty results root, none is
    stored and every row says so (nothing is computed while the Conclusions chapter is built)."""
    monkeypatch.setenv("SYMACT_RESULTS", str(tmp_path))
    df = claims.conclusions()
    assert set(df["verdict"]) <= {claims.NOT_STORED}


def test_fundamentals_wong_claim_is_an_equivalence_test(monkeypatch):
    """Our unclamped FAT networks' AutoAttack accuracy against the AutoAttack authors' 82.93 %, within 3 points."""
    import pandas as pd

    from symact.experiments import fundamentals as fu

    exp = fu.fat_mnist_wong_robustness
    judge = claims.CLAIMS["fundamentals/wong-fat-mnist-autoattack"].judge
    monkeypatch.setattr(type(exp), "stored", lambda self, prof: {"data": "MNIST"} if prof == "quick" else None)
    for values, word in (([0.83, 0.825, 0.835], "reproduced"), ([0.70, 0.71, 0.69], "not reproduced"),
                         ([0.60, 0.83, 0.95], "inconclusive")):
        monkeypatch.setattr(fu, "fat_robustness_summary", lambda res, v=values: pd.DataFrame(
            {"start": ["unclamped"] * 3 + ["clamped"], "autoattack": [*v, 0.0]}))
        assert judge("quick").word == word  # quick is the whole recipe for this experiment: a verdict
    assert judge("paper") is None
