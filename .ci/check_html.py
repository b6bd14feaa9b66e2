"""Fail if the built book shows Markdown tables as text: rows of pipes where an HTML table belongs.

A table that a cell displays, or that a glue role puts inline, is rendered by whatever Markdown flavour reaches
it; CommonMark has no tables and prints ``| a | b |`` and ``|---|---|`` as a paragraph, which Sphinx does not
warn about. Code (``<pre>``, ``<code>``) may hold pipes and is skipped.

Usage: python .ci/check_html.py [HTML_DIR]   (default _build/html)
"""
import re
import sys
from html import unescape
from pathlib import Path

SKIP = re.compile(r"<(pre|code|script|style)\b.*?</\1>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")
RULE = re.compile(r"\|\s*:?-{3,}:?\s*\|")  # a Markdown table's header rule, |---| or | :--- |


def raw_tables(html: str) -> list[str]:
    """The header rules of Markdown tables left as text in ``html``, each with some context."""
    text = unescape(TAG.sub(" ", SKIP.sub(" ", html)))
    return [" ".join(text[max(0, m.start() - 80):m.end() + 40].split()) for m in RULE.finditer(text)]


def main(root: str = "_build/html") -> int:
    pages = sorted(p for p in Path(root).rglob("*.html") if "_static" not in p.parts)
    if not pages:
        print(f"check_html: no HTML pages under {root}: build the book first")
        return 1
    bad = {p: found for p in pages if (found := raw_tables(p.read_text(encoding="utf-8")))}
    for p, found in bad.items():
        for f in found:
            print(f"check_html: {p}: a Markdown table printed as text: ...{f}...")
    print(f"check_html: {len(pages)} pages, {sum(map(len, bad.values()))} tables printed as text")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
