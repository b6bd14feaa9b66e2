"""The leaderboard's claims (symact.experiments.leaderboard_claims): registered per row and data set, judged
from stored rows against ReLU, never from a partial or quick row."""
from symact import benchmark, claims
from symact.experiments import leaderboard_claims as lc
from tests.test_benchmark import _fake

RELU = _fake([0.80, 0.81, 0.79, 0.80, 0.82], [0.98] * 5)
BETTER = _fake([0.85, 0.86, 0.84, 0.86, 0.87], [0.98] * 5)


def test_every_row_is_a_claim_on_both_data_sets_except_those_the_kaf_chapter_tests():
    keys = {k for k in claims.CLAIMS if k.startswith("adversarial-evaluation/")}
    assert "adversarial-evaluation/kaf-vs-relu-mnist" in keys
    assert "adversarial-evaluation/kaf-vs-relu-cifar10" in keys
    assert "adversarial-evaluation/silu-vs-relu-cifar10" not in keys  # kaf/smooth-at-helps tests it
    assert len(keys) == 2 * len(lc.LEADERBOARD_CLAIMS) - 1
    assert all(r in benchmark.book_rows() for r in lc.LEADERBOARD_CLAIMS)


def test_judged_from_stored_rows(monkeypatch):
    judge = claims.CLAIMS["adversarial-evaluation/kaf-vs-relu-mnist"].judge
    assert judge("paper") is None  # nothing stored (the tests' results root is empty)
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, prof, rows: {"kaf": BETTER, "relu": RELU})
    j = judge("paper")
    assert j.word == "better" and "MNIST" in j.what and j.verdict.n == 5
    partial = _fake([0.85, 0.86, 0.84], [0.98] * 3, partial=True, seeds=(0, 1, 2))
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, prof, rows: {"kaf": partial, "relu": RELU})
    assert judge("paper").word == "not run at a converged protocol"
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, prof, rows: {"kaf": None, "relu": RELU})
    assert judge("paper") is None


def test_question_table_and_summary(monkeypatch):
    t = lc.question_table()
    assert len(t) == 2 * len(lc.LEADERBOARD_CLAIMS) and set(t["verdict"]) == {claims.NOT_STORED}
    assert "0 rest on complete runs" in lc.question_summary(t) and "KAF against ReLU on MNIST: not run yet" \
        in lc.question_summary(t)
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, prof, rows: {rows[0]: BETTER, "relu": RELU})
    t = lc.question_table()
    judged = t[t["verdict"] == "better"]
    assert len(judged) == 2 * len(lc.LEADERBOARD_CLAIMS) - 1  # SiLU on CIFAR-10 is the KAF chapter's claim
    s = lc.question_summary(t)
    assert f"{len(judged)} better, 0 worse, 0 no detectable difference" in s
    assert "The KAF against ReLU on MNIST: **better**, +5.20 points" in s


def test_anchors_name_registered_claims_and_compute_the_published_gains():
    for a in lc.ANCHORS:
        assert a.differences and all(k in claims.CLAIMS for keys in a.claims.values() for k in keys)
    kaf = next(a for a in lc.ANCHORS if a.label == "KAF")
    # 46.80 - 45.41 and 52.23 - 50.17 (kaf-thesis-results.md)
    assert "+1.39 points over ReLU (VGG-inspired network) and +2.06 (ResNet-20)" in kaf.finding
    assert "+9.3 points" in next(a for a in lc.ANCHORS if a.label == "SiLU").finding  # 42.3 - 33.0


def test_published_finding_is_the_papers_words_and_the_anchor_table_shows_ours(monkeypatch):
    t = lc.anchor_table()
    assert list(t["activation"]) == [a.label for a in lc.ANCHORS]
    assert all(cell.endswith(claims.NOT_STORED) for cell in t["MNIST"])  # the tests' results root is empty
    assert t.loc[t["activation"] == "KAN", "MNIST"].item().startswith("Small and medium KANs are not consistently")
    assert t.loc[t["activation"] == "KAN", "CIFAR-10"].item() == "not tested"
    monkeypatch.setattr(benchmark, "stored_rows", lambda ds, prof, rows: {rows[0]: BETTER, "relu": RELU})
    j = claims.CLAIMS["adversarial-evaluation/pssilu-vs-relu-mnist"].judge("paper")
    assert j.word == "better" and "+4.54 points over ReLU (ResNet-18)" in j.theirs and "not our protocol" in j.theirs
    assert claims.CLAIMS["adversarial-evaluation/sapl-vs-relu-mnist"].judge("paper").theirs == "no such comparison"
    t = lc.anchor_table()
    assert t.loc[t["activation"] == "PSSiLU", "MNIST"].item().startswith(
        "reproduced in direction: better, +5.20 points [95 % interval")
