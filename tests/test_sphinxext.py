"""The book's Sphinx extension (symact/sphinxext.py); the download links themselves are checked on the built
site by .ci/check_html.py (every link must resolve) and .ci/check_figures.py (the list of published figures)."""
from sphinx.builders.html._assets import _JavaScript

from symact import sphinxext


def test_each_script_once_per_page():
    body = 'const THEBE_JS_URL = "x"'
    ctx = {"script_files": [_JavaScript("a.js"), _JavaScript(None, body=body), _JavaScript("", body=body),
                            _JavaScript("a.js"), _JavaScript("b.js", defer="defer")]}
    sphinxext._unique_scripts(None, "page", "page.html", ctx, None)
    assert [(js.filename, js.attributes) for js in ctx["script_files"]] == [
        ("a.js", {}), (None, {"body": body}), ("b.js", {"defer": "defer"})]

