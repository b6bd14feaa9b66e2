"""The KAF chapter's KAN section (symact.experiments.kaf_kan): the edge identity, parameter counts, claims."""
import pytest

from symact import claims
from symact.experiments import kaf_kan
from tests.test_benchmark import _fake


@pytest.mark.parametrize("bandwidth", ["kafnets", "thesis", 0.7])
def test_edge_identity_holds_to_rounding(bandwidth):
    assert kaf_kan.edge_identity_error(D=12, boundary=2.0, bandwidth=bandwidth) < 1e-12


def test_parameter_table_ratios():
    t = kaf_kan.parameter_table(((800, 500), (50, 10)), D=20, grid_size=5, spline_order=3)
    assert list(t["KAN"]) == [800 * 500 * 10, 50 * 10 * 10]
    assert t.loc[0, "linear+KAF"] == 800 * 500 + 500 + 500 * 20
    assert t.loc[0, "KAN / KAF"] == pytest.approx(4_000_000 / 410_500)


def test_claims_registered_and_judged_from_stored_rows(monkeypatch):
    assert {"kaf/kan-matched-no-more-robust", "kaf/kan-large-more-robust"} <= set(claims.CLAIMS)
    judge = claims.CLAIMS["kaf/kan-matched-no-more-robust"].judge
    assert judge("paper") is None  # nothing stored (the tests' results root is empty)
    relu = _fake([0.80, 0.81, 0.79, 0.80, 0.82], [0.98] * 5)
    same = _fake([0.805, 0.805, 0.795, 0.80, 0.815], [0.98] * 5)
    better = _fake([0.85, 0.86, 0.84, 0.86, 0.87], [0.98] * 5)
    monkeypatch.setattr(kaf_kan, "_stored", lambda ds, prof: {"relu": relu, "kan": same, "kan-large": better})
    assert judge("paper").word == "reproduced"  # inside the 2-point margin
    assert claims.CLAIMS["kaf/kan-large-more-robust"].judge("paper").word == "better"
    monkeypatch.setattr(kaf_kan, "_stored", lambda ds, prof: {"relu": relu, "kan": better, "kan-large": None})
    assert judge("paper").word == "not reproduced"
    assert claims.CLAIMS["kaf/kan-large-more-robust"].judge("paper") is None


def test_kan_rows_with_nothing_stored():
    table, prof = kaf_kan.kan_rows("mnist")
    assert prof is None and list(table["row"]) == [r for r, _ in kaf_kan.KAN_ROWS]
