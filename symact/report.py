"""Formatting of stored numbers for the book's text and tables: one place, so every chapter writes a missing
value, a percentage, an interval and a spread over seeds the same way.

Nothing here computes a result: these functions only turn stored numbers into strings. A missing value (None
or NaN) is written :data:`MISSING` ("—"), never 0 and never an error, so a chapter whose runs have not finished
still builds and says so in its tables.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from symact.evaluation import proportion_interval

__all__ = ["MISSING", "is_missing", "markdown_table", "mean_sd", "number", "pct", "pct_ci"]

#: how a value that is not stored (None or NaN) is written
MISSING = "—"


def is_missing(v) -> bool:
    """True for None and NaN (a value that is not stored)."""
    if v is None:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        raise TypeError(f"expected a number, None or NaN, got {type(v).__name__} {v!r}") from None


def pct(v, digits: int = 1) -> str:
    """A fraction as a percentage: ``pct(0.4567) == '45.7 %'``; None or NaN gives :data:`MISSING`."""
    return MISSING if is_missing(v) else f"{100 * float(v):.{digits}f} %"


def number(v, digits: int = 2) -> str:
    """A number with ``digits`` decimals; None or NaN gives :data:`MISSING`."""
    return MISSING if is_missing(v) else f"{float(v):.{digits}f}"


def pct_ci(k: int, n: int, digits: int = 1, level: float = 0.95) -> str:
    """``k`` of ``n`` as a percentage with its Wilson interval
    (:func:`symact.evaluation.proportion_interval`): ``'45.0 % (95 % interval 35.6-54.8 %)'``."""
    if n == 0:
        return MISSING
    lo, hi = proportion_interval(int(k), int(n), level=level)
    return (f"{100 * k / n:.{digits}f} % ({100 * level:.0f} % interval "
            f"{100 * lo:.{digits}f}-{100 * hi:.{digits}f} %)")


def mean_sd(values: Iterable, digits: int = 3, scale: float = 1.0) -> str:
    """Mean ± sample standard deviation (ddof 1) of ``values`` times ``scale``; one value alone is written
    without a spread, missing values are left out, none at all gives :data:`MISSING`."""
    v = np.array([scale * float(x) for x in values if not is_missing(x)])
    if v.size == 0:
        return MISSING
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def markdown_table(header: Iterable[str], rows: Iterable[Iterable], align: str | None = None) -> str:
    """A Markdown (MyST) table: ``header`` and ``rows`` of cells (strings, or anything ``str`` takes);
    ``align`` one character per column, ``l`` or ``r`` (default: the first column left, the rest right)."""
    header = [str(h) for h in header]
    rows = [[str(c) for c in r] for r in rows]
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of 'l' or 'r' per column ({len(header)}), got {align!r}")
    bad = [i for i, r in enumerate(rows) if len(r) != len(header)]
    if bad:
        raise ValueError(f"row {bad[0]} has {len(rows[bad[0]])} cells, the header {len(header)}")
    sep = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, sep, *rows])
