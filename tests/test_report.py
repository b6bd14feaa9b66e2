import math

import pytest

from symact import report


def test_pct_and_missing():
    assert report.pct(0.4567) == "45.7 %"
    assert report.pct(0.4567, digits=2) == "45.67 %"
    assert report.pct(None) == report.MISSING
    assert report.pct(float("nan")) == report.MISSING
    assert report.number(math.pi, 3) == "3.142"
    assert report.number(None) == report.MISSING


def test_pct_rejects_text():
    with pytest.raises(TypeError, match="expected a number"):
        report.pct("45 %")


def test_pct_ci_is_wilson():
    # Wilson interval of 50/100 at 95 %: 40.4 % to 59.6 %
    assert report.pct_ci(50, 100) == "50.0 % (95 % interval 40.4-59.6 %)"
    assert report.pct_ci(0, 0) == report.MISSING


def test_mean_sd():
    assert report.mean_sd([1.0, 2.0, 3.0], digits=2) == "2.00 ± 1.00"
    assert report.mean_sd([0.5], digits=1, scale=100) == "50.0"
    assert report.mean_sd([None, float("nan")]) == report.MISSING
    assert report.mean_sd([1.0, None, 3.0], digits=1) == "2.0 ± 1.4"


def test_markdown_table():
    t = report.markdown_table(["a", "b"], [["x", 1], ["y", 2]])
    assert t.splitlines() == ["| a | b |", "| --- | ---: |", "| x | 1 |", "| y | 2 |"]
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        report.markdown_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align"):
        report.markdown_table(["a", "b"], [], align="c")
