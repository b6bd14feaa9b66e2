"""The checks CI runs on the built book (.ci/check_html.py, .ci/check_figures.py), on tiny sites made here.

The browser part needs Chromium: it is skipped where there is none, except in CI (CI=true), where .ci/run
installs it and a missing browser is a failure.
"""
import importlib.resources
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from symact.results import REPO_ROOT


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / ".ci" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_html = _load("check_html")
check_figures = _load("check_figures")


def _site(tmp_path, pages: dict[str, str]):
    for rel, body in pages.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    return tmp_path


def test_links_and_anchors_that_resolve_pass(tmp_path):
    root = _site(tmp_path, {
        "index.html": '<a href="book/dome.html#fig-x">Figure 2.1</a> <a href="#top" id="top">top</a>'
                      '<a href="https://example.org/x">ext</a> <a href="mailto:a@b.c">mail</a>',
        "book/dome.html": '<figure id="fig-x"><img src="../_images/x.png"></figure>'
                          '<a href="../index.html">home</a> <a href="../_downloads/x.pdf">PDF</a>',
        "_images/x.png": "", "_downloads/x.pdf": "",
    })
    assert check_html.static_check(root) == {}


def test_broken_links_anchors_and_images_are_named(tmp_path):
    root = _site(tmp_path, {
        "index.html": '<a href="book/dome.html#eq-missing">(2.1)</a> <a href="book/gone.html">gone</a>'
                      '<a href="#nowhere">x</a> <img src="_images/none.png">',
        "book/dome.html": '<span id="eq-dome"></span>',
    })
    found = check_html.broken_links(root / "index.html", root)
    assert any("no id 'eq-missing' in book/dome.html" in b for b in found)
    assert any("book/gone.html" in b for b in found)
    assert any("no id 'nowhere'" in b for b in found)
    assert any("_images/none.png" in b for b in found)
    assert len(found) == 4


def test_scripts_from_a_cdn_and_tables_as_text_fail(tmp_path):
    root = _site(tmp_path, {"index.html": '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex.js"></script>'
                                          "<p>| a | b |</p><p>|---|---|</p><pre>|---|---|</pre>"})
    (problems,) = check_html.static_check(root).values()
    assert any("loads from the network" in p and "cdn.jsdelivr.net" in p for p in problems)
    assert sum("Markdown table" in p for p in problems) == 1  # the one in <pre> is code


def test_raw_tex_patterns():
    assert check_html.raw_tex("the map \\(x \\mapsto 2x\\) and") != []
    assert check_html.raw_tex("\\[ y \\]") != [] and check_html.raw_tex("$$ y $$") != []
    assert check_html.raw_tex("\\begin{aligned} a \\end{aligned}") != []
    assert check_html.raw_tex("costs $5 (or 3 $) and [1] (2)") == []


def test_figure_check_names_the_missing_file(tmp_path):
    figs = {"dome/shapes": "book/dome", "saf/fig6": "book/saf"}
    tracked = {f"figures/dome/shapes.{f}" for f in ("pdf", "png", "svg")} | {"figures/saf/fig6.pdf",
                                                                               "figures/saf/fig6.svg",
                                                                               "figures/old/gone.png"}
    assert check_figures.missing(figs, tracked) == ["figures/saf/fig6.png"]
    assert check_figures.unpublished(figs, tracked) == ["old/gone"]
    manifest = tmp_path / "figures.json"
    manifest.write_text(json.dumps([{"doc": d, "name": n, "key": n.replace("/", "-"), "ids": []}
                                    for n, d in figs.items()]))
    assert check_figures.published(manifest) == figs
    with pytest.raises(FileNotFoundError, match="build the book first"):
        check_figures.published(tmp_path / "none.json")


def test_every_committed_figure_has_its_three_files():
    tracked = check_figures.tracked_figures()
    names = {t.removeprefix("figures/").rsplit(".", 1)[0] for t in tracked}
    assert names, "no figure in git"
    assert check_figures.missing(dict.fromkeys(names, ""), tracked) == []


def _chromium():
    found = check_html.find_chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser check: {check_html.NO_CHROMIUM}")
        pytest.skip(f"browser check skipped: {check_html.NO_CHROMIUM}")
    return found


def test_browser_finds_raw_tex_broken_images_js_errors_and_network_requests(tmp_path):
    chromium = _chromium()
    root = _site(tmp_path, {
        "good.html": "<p>plain text, no math</p>",
        "bad.html": '<p>the map \\(x \\mapsto 2x\\) left as TeX</p><img src="broken.png">'
                    "<script>undefined_function()</script>"
                    '<img src="http://example.invalid/remote.png">',
        "broken.png": "not a png",
    })
    found, _ = check_html.browser_check(root, tmp_path / "shots", chromium)
    assert list(found) == [root / "bad.html"]
    problems = "\n".join(found[root / "bad.html"])
    assert "raw TeX" in problems and "x \\mapsto 2x" in problems
    assert "image did not load: broken.png" in problems
    assert "undefined_function" in problems
    assert "requested from the network (blocked): http://example.invalid/remote.png" in problems
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["bad.png", "good.png"]


def test_browser_waits_for_mathjax_served_by_the_site(tmp_path):
    """MathJax from sphinx-mathjax-offline, as the book uses it: the formula is typeset, no TeX is left."""
    chromium = _chromium()
    try:
        mathjax = importlib.resources.files("sphinx-mathjax-offline") / "static" / "mathjax"
    except ModuleNotFoundError:
        pytest.skip("sphinx-mathjax-offline is not installed (pip install -e .[book])")
    shutil.copytree(mathjax, tmp_path / "_static" / "mathjax")
    root = _site(tmp_path, {"index.html": '<p>the map <span class="math">\\(x \\mapsto 2x\\)</span></p>'
                                          '<script defer src="_static/mathjax/tex-chtml.js"></script>'})
    found, formulas = check_html.browser_check(root, None, chromium)
    assert found == {} and formulas == {root / "index.html": 1}


def test_a_redirect_page_points_to_an_existing_page(tmp_path, monkeypatch):
    root = _site(tmp_path, {"index.html": '<meta http-equiv="Refresh" content="0; url=book/intro.html" />'})
    monkeypatch.chdir(tmp_path)  # relative paths, as on the command line
    assert check_html.broken_links(Path("index.html"), Path(".")) == ["book/intro.html (no file book/intro.html)"]
    (root / "book").mkdir()
    (root / "book" / "intro.html").write_text("<p>intro</p>")
    assert check_html.broken_links(Path("index.html"), Path(".")) == []
