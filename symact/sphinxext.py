"""The book's Sphinx extension: every published figure links to its files, and the build lists them.

A chapter shows a figure with ``{glue:figure} <key>`` after :func:`symact.plotting.publish` saved it with
:func:`~symact.plotting.savefig` and glued, beside the figure, where its files are (``<key>-files``). This
extension replaces myst-nb's ``glue:figure`` directive with one that does the same and then

- adds a line under the caption, "Download: PDF · SVG · PNG (figures/<chapter>/<name>)", whose links are
  Sphinx download references (the files are copied into the site's ``_downloads/``);
- records the figure's stable name (``<chapter>/<name>``) and, when the build finishes, writes every
  published figure to ``<html>/figures.json`` (``.ci/check_figures.py`` checks that each is in git).

It also writes each script once per page (see :func:`_unique_scripts`), and adds ``symact-sortable.js``
(``symact/_static``) to every page: a table with the class ``sortable`` (as
:func:`symact.experiments.evaluation.sortable_html` writes the leaderboard) sorts by a column on a click on its
header.

A ``glue:figure`` whose figure was not saved by ``publish`` gets a warning (an error under ``-W``): a figure the
book shows must have files a reader can download and cite. Enable with ``extra_extensions: [symact.sphinxext]``.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from docutils import nodes
from myst_nb.core.variables import RetrievalError
from myst_nb.ext.glue.directives import PasteFigureDirective
from myst_nb.ext.glue.utils import retrieve_glue_data
from sphinx import addnodes
from sphinx.util import logging

from symact.plotting import files_key

logger = logging.getLogger(__name__)

MANIFEST = "figures.json"
LINKS = ("pdf", "svg", "png")  # in the order shown


def _glued_stem(document, key: str) -> Path | None:
    """The path without suffix of figure ``key``'s saved files, as glued by ``publish``; None if not glued."""
    try:
        data = retrieve_glue_data(document, files_key(key))
    except RetrievalError:
        return None
    text = data.data.get("text/plain")
    return Path(ast.literal_eval(text)) if text else None


def _download(env, path: Path, label: str) -> addnodes.download_reference:
    # A target starting with "/" is taken from the source directory (Sphinx's download role does the same).
    target = "/" + Path(os.path.relpath(path, env.srcdir)).as_posix()
    ref = addnodes.download_reference("", "", refdoc=env.docname, refdomain="", reftype="download",
                                      refexplicit=True, refwarn=False, reftarget=target)
    ref += nodes.inline(label, label)
    return ref


class FigureWithDownloads(PasteFigureDirective):
    """``glue:figure``, and under the caption the links to the figure's PDF, SVG and PNG files."""

    def run(self):
        out = super().run()
        figure = out[0] if out and isinstance(out[0], nodes.figure) else None
        if figure is None:  # myst-nb already reported the problem (unknown key, bad caption)
            return out
        env = self.state.document.settings.env
        key = self.arguments[0]
        stem = _glued_stem(self.state.document, key)
        if stem is None:
            logger.warning(f"figure {key!r} was not saved by symact.plotting.publish, so it has no files to "
                           f"download or cite: publish it with publish(fig, 'chapter/name')",
                           location=(env.docname, self.lineno), type="symact", subtype="figure")
            return out
        name = f"{stem.parent.name}/{stem.name}"
        line = nodes.paragraph(classes=["figure-downloads"])
        line += nodes.Text("Download: ")
        for i, fmt in enumerate(LINKS):
            if i:
                line += nodes.Text(" · ")
            line += _download(env, stem.with_suffix(f".{fmt}"), fmt.upper())
        line += nodes.Text(" (")
        line += nodes.literal(f"figures/{name}", f"figures/{name}")
        line += nodes.Text(")")
        legends = [n for n in figure.children if isinstance(n, nodes.legend)]
        if legends:
            legends[0] += line
        else:
            figure += nodes.legend("", line)
        published = env.__dict__.setdefault("symact_figures", {})
        published.setdefault(env.docname, []).append({"name": name, "key": key, "ids": list(figure["ids"])})
        return out


def _purge(app, env, docname):
    env.__dict__.get("symact_figures", {}).pop(docname, None)


def _merge(app, env, docnames, other):
    theirs = other.__dict__.get("symact_figures", {})
    env.__dict__.setdefault("symact_figures", {}).update({d: theirs[d] for d in docnames if d in theirs})


def _write_manifest(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    published = app.env.__dict__.get("symact_figures", {})
    rows = [{"doc": doc, **fig} for doc in sorted(published) for fig in published[doc]]
    (Path(app.outdir) / MANIFEST).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def _unique_scripts(app, pagename, templatename, context, doctree):
    """Each script once per page. Sphinx 7.3 adds an inline script registered during the build twice (its
    filename once as None, once as ""), and sphinx-thebe's inline ``const THEBE_JS_URL = ...`` declared twice is
    a JavaScript error on every page."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (getattr(js, "filename", js) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def _add_static(app, config):
    config.html_static_path.append(str(Path(__file__).parent / "_static"))


def setup(app):
    app.setup_extension("myst_nb")
    app.connect("config-inited", _add_static)
    app.add_js_file("symact-sortable.js")
    app.add_directive_to_domain("glue", "figure", FigureWithDownloads, override=True)
    app.add_directive("glue:figure", FigureWithDownloads, override=True)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("build-finished", _write_manifest)
    app.connect("html-page-context", _unique_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
