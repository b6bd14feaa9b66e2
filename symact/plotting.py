"""One plotting theme and stable figure export.

:func:`savefig` writes ``figures/<chapter>/<name>.{pdf,png,svg}`` (PNG at 300
dpi) with fixed metadata, so the same figure gives the same files and a paper
can cite it by a stable path. Under the ``smoke`` profile figures go to
``_build/smoke-figures/`` instead, so CI and test runs never overwrite the
committed figures.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.rcParams["svg.hashsalt"] = "symact"

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from symact.results import REPO_ROOT  # noqa: E402

__all__ = ["FORMATS", "figures_dir", "files_key", "provenance_md", "publish", "savefig", "set_theme"]

FORMATS = ("pdf", "png", "svg")


def set_theme() -> None:
    """The book's one theme: seaborn ``whitegrid``, colour-blind palette, paper-sized text."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "axes.titlesize": "medium"})


def figures_dir() -> Path:
    """``$SYMACT_FIGURES``, else ``figures/`` at the repo root (``_build/smoke-figures`` under smoke)."""
    env = os.environ.get("SYMACT_FIGURES")
    if env:
        return Path(env)
    if os.environ.get("SYMACT_PROFILE") == "smoke":
        return REPO_ROOT / "_build" / "smoke-figures"
    return REPO_ROOT / "figures"


def savefig(fig: plt.Figure, name: str) -> list[Path]:
    """Save ``fig`` as ``<figures>/<name>.{pdf,png,svg}``; ``name`` is ``"chapter/figure-name"``.

    Returns the written paths.
    """
    parts = name.split("/")
    if len(parts) != 2 or not all(parts) or any(c in name for c in " \\.:"):
        raise ValueError(f"figure name must look like 'chapter/figure-name' (no spaces or dots), got {name!r}")
    out = figures_dir() / parts[0]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out / f"{parts[1]}.{fmt}"
        meta = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}, "png": {"Software": None}}[fmt]
        fig.savefig(path, dpi=300 if fmt == "png" else None, metadata=meta, bbox_inches="tight")
        paths.append(path)
    return paths


def publish(fig: plt.Figure, name: str, result=None) -> None:
    """Save ``fig`` (see :func:`savefig`) and glue it for the book.

    In a chapter, the figure is then shown, numbered and captioned, with::

        ```{glue:figure} <key>
        :name: fig-<key>

        Caption text. {glue:md}`<key>-provenance`
        ```

    where ``<key>`` is ``name`` with ``/`` replaced by ``-``; the provenance
    line comes from ``result.caption()`` (:class:`symact.results.Result`).
    The book's ``glue:figure`` (:mod:`symact.sphinxext`) adds links to the
    figure's PDF, SVG and PNG files under the caption.
    Returns nothing, so that a chapter cell ending in ``publish(...)`` prints
    no stray output under its figure.
    """
    from IPython.display import Markdown
    from myst_nb import glue

    paths = savefig(fig, name)
    key = name.replace("/", "-")
    glue(key, fig, display=False)
    # where the files are, for the book's figure directive (symact/sphinxext.py): download links under the
    # caption, and the list of published figures that CI checks against git
    glue(files_key(key), str(paths[0].with_suffix("")), display=False)
    if result is not None:
        glue(f"{key}-provenance", Markdown(provenance_md(result)), display=False)
    plt.close(fig)


def files_key(key: str) -> str:
    """The glue key under which :func:`publish` stores where the files of the figure glued as ``key`` are."""
    return f"{key}-files"


def provenance_md(result) -> str:
    """The one-line provenance caption of ``result``, emphasised, for Markdown output."""
    return f"*{result.caption()}*"
