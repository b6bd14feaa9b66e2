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
