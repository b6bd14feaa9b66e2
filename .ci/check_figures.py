"""Fail when a figure the book publishes is not committed under ``figures/<chapter>/`` as PDF, PNG and SVG.

The book build lists every figure it shows in ``<html>/figures.json`` (``symact/sphinxext.py``: one entry per
``glue:figure``, with the figure's stable name ``<chapter>/<name>``). Each must be in git as
``figures/<chapter>/<name>.{pdf,png,svg}``, so that a reader of the repository finds (and can cite) every figure of
the book. Only names are compared, never bytes: pixels differ across machines, and CI builds the book at the smoke
profile, whose figures go to ``_build/smoke-figures``. Committed figures the book no longer shows are listed as
a note (not an error).

Usage: python .ci/check_figures.py [HTML_DIR]   (default _build/html)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORMATS = ("pdf", "png", "svg")
REPO = Path(__file__).resolve().parent.parent


def published(manifest: Path) -> dict[str, str]:
    """The published figures' names (``chapter/name``), each with the page that shows it."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: build the book first (make book); symact.sphinxext, in "
                                f"_config.yml's extra_extensions, writes it")
    return {row["name"]: row["doc"] for row in json.loads(manifest.read_text(encoding="utf-8"))}


def tracked_figures(repo: Path = REPO) -> set[str]:
    """The files under ``figures/`` that git tracks, as paths relative to the repository."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "figures"], cwd=repo, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"git ls-files failed in {repo}: the figure check needs a git checkout ({exc})") from exc
    return set(filter(None, out.stdout.decode().split("\0")))


def missing(figures: dict[str, str], tracked: set[str]) -> list[str]:
    """Each file ``figures/<chapter>/<name>.<fmt>`` of a published figure that is not in ``tracked``."""
    return [f"figures/{name}.{fmt}" for name in sorted(figures) for fmt in FORMATS
            if f"figures/{name}.{fmt}" not in tracked]


def unpublished(figures: dict[str, str], tracked: set[str]) -> list[str]:
    """Committed figures (by name) that the book does not show."""
    names = {t.removeprefix("figures/").rsplit(".", 1)[0] for t in tracked if t.endswith(tuple(FORMATS))}
    return sorted(names - set(figures))


def main(root: str = "_build/html") -> int:
    try:
        figs = published(Path(root) / "figures.json")
        tracked = tracked_figures()
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"check_figures: {exc}")
        return 1
    gone = missing(figs, tracked)
    for path in gone:
        name = path.removeprefix("figures/").rsplit(".", 1)[0]
        print(f"check_figures: {path} is not in git: figure {name} is published in {figs[name]} (commit it: "
              f"make chapter NAME={name.split('/')[0]}, then git add figures/{name.split('/')[0]}/)")
    for name in unpublished(figs, tracked):
        print(f"check_figures: note: figures/{name}.* is committed but no page of the book shows it")
    if not figs:
        print(f"check_figures: {root}/figures.json lists no figure: is symact.sphinxext in _config.yml?")
    print(f"check_figures: {len(figs)} published figures, {len(gone)} files missing from git")
    return 1 if gone or not figs else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
