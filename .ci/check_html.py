"""Check the built book as a reader sees it: every page of the HTML site, static and in headless Chromium.

Without a browser (plain Python, on the files):

- broken internal links and anchors: every ``href``/``src`` to a local file must exist, and every ``#id`` (a
  figure, equation, section or citation reference) must be an ``id`` of the page it points to;
- resources from the network: a ``<script>``, stylesheet or image loaded from ``http(s)://`` (a CDN) fails,
  since the site must work offline;
- Markdown tables printed as text: rows of pipes where an HTML table belongs (CommonMark, which renders what a
  cell displays unless told otherwise, has no tables and prints ``|---|`` as a paragraph; Sphinx does not warn).

In headless Chromium (each page served by a local HTTP server; any request that leaves this machine is blocked
and reported), after MathJax has finished typesetting:

- raw TeX left in the rendered text (``\\(``, ``\\[``, ``$$``, ``\\begin{``; code blocks excepted);
- images that did not load (``naturalWidth`` 0);
- JavaScript errors (uncaught exceptions and console errors, failed loads included);

and a full-page screenshot of every page goes to ``_build/screenshots/<page>.png`` for a person to look at.

Chromium comes from the system (Debian's ``chromium`` package, which ``.ci/run`` installs; ``$CHROMIUM`` names
another binary) and is driven by Playwright's Python package, which downloads nothing. Without Chromium the
browser part fails with a message saying how to install it; ``--static`` runs the checks on the files only.

Usage: python .ci/check_html.py [HTML_DIR] [--static] [--screenshots DIR]   (default _build/html)
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

SKIP = re.compile(r"<(pre|code|script|style)\b.*?</\1>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")
RULE = re.compile(r"\|\s*:?-{3,}:?\s*\|")  # a Markdown table's header rule, |---| or | :--- |
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\begin\{")
EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "tel:", "ftp:")


def raw_tables(html: str) -> list[str]:
    """The header rules of Markdown tables left as text in ``html``, each with some context."""
    text = unescape(TAG.sub(" ", SKIP.sub(" ", html)))
    return [" ".join(text[max(0, m.start() - 80):m.end() + 40].split()) for m in RULE.finditer(text)]


def raw_tex(text: str) -> list[str]:
    """Each piece of TeX source left in rendered ``text`` (a page's text without code), with some context."""
    return [" ".join(text[max(0, m.start() - 40):m.end() + 40].split()) for m in RAW_TEX.finditer(text)]


class _Page(HTMLParser):
    """The ids of a page, its links (``href``/``src``) and what it loads from the network."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.remote: list[str] = []
        self.redirect: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":  # e.g. index.html -> book/intro
            m = re.search(r"url\s*=\s*['\"]?([^'\";]+)", a.get("content") or "", re.I)
            if m:
                self.redirect = m.group(1).strip()
                self.links.append(self.redirect)
        for k in ("id", "name") if tag == "a" else ("id",):
            if a.get(k):
                self.ids.add(a[k])
        for k in ("href", "src"):
            url = a.get(k)
            if url is None:
                continue
            url = url.strip()
            loads = tag in ("script", "img", "iframe") or (tag == "link" and "stylesheet" in (a.get("rel") or ""))
            if loads and url.lower().startswith(("http:", "https:", "//")):
                self.remote.append(f"<{tag}> {url}")
            self.links.append(url)


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(page: Path, root: Path) -> list[str]:
    """Links of ``page`` (a file under ``root``) to a local file or anchor that does not exist."""
    bad = []
    root, page = root.resolve(), page.resolve()
    for url in _parse(page).links:
        if not url or url.lower().startswith(EXTERNAL) or url.startswith("//"):
            continue
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            continue
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if parts.path.endswith("/") or target.is_dir():
            target = target / "index.html"
        if root not in target.parents and target != root:
            bad.append(f"{url} (points outside the site)")
        elif not target.is_file():
            bad.append(f"{url} (no file {target.relative_to(root)})")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _parse(target).ids:
            bad.append(f"{url} (no id {unquote(parts.fragment)!r} in {target.relative_to(root)})")
    return bad


def pages_of(root: Path) -> list[Path]:
    """The site's pages: every HTML file outside ``_static`` and the downloads."""
    return sorted(p for p in root.rglob("*.html") if not {"_static", "_downloads", "_sources"} & set(p.parts))


def static_check(root: Path) -> dict[Path, list[str]]:
    """Everything wrong with each page that the files show (links, network resources, tables as text)."""
    out = {}
    for p in pages_of(root):
        html = p.read_text(encoding="utf-8", errors="replace")
        problems = [f"broken link: {b}" for b in broken_links(p, root)]
        problems += [f"loads from the network (the site must work offline): {r}" for r in _parse(p).remote]
        problems += [f"a Markdown table printed as text: ...{t}..." for t in raw_tables(html)]
        if problems:
            out[p] = problems
    return out


def find_chromium() -> str | None:
    """``$CHROMIUM``, else Debian's Chromium binary, else ``chromium``/``chromium-browser``/``google-chrome``."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    if os.access("/usr/lib/chromium/chromium", os.X_OK):  # Debian's binary, without its wrapper script
        return "/usr/lib/chromium/chromium"
    return next((b for n in ("chromium", "chromium-browser", "google-chrome") if (b := shutil.which(n))), None)


NO_CHROMIUM = ("no Chromium found: install Debian's package (apt-get install chromium; .ci/run does) or set "
               "CHROMIUM to a Chromium or Chrome binary")

# Text of the page outside code, math and scripts, once MathJax has typeset it (or at once if it is not there).
_RENDERED = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const skip = "pre, code, script, style, textarea, mjx-container, .MathJax";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) parts.push(n.textContent);
  }
  return {
    text: parts.join(" "),
    broken: imgs.filter(i => i.naturalWidth === 0).map(i => i.getAttribute("src")),
    math: document.querySelectorAll("mjx-container").length,
    mathjax: !!window.MathJax,
  };
}"""


def _listen(tab, base: str, problems: list[str]) -> None:
    """Record on ``problems`` the page's JavaScript errors, console errors and requests to the network."""
    def on_console(msg):
        if msg.type == "error":
            problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def on_request(req):
        if not req.url.startswith(base):
            problems.append(f"requested from the network (blocked): {req.url}")

    tab.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    tab.on("console", on_console)
    tab.on("request", on_request)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser_check(root: Path, shots: Path | None, chromium: str) -> tuple[dict[Path, list[str]], dict[Path, int]]:
    """Load every page in headless Chromium; the problems of each page, and how many formulas MathJax typeset."""
    from playwright.sync_api import sync_playwright

    pages = pages_of(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out, formulas = {}, {}
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(r):  # nothing leaves this machine
                if r.request.url.startswith(base):
                    r.continue_()
                else:
                    r.abort()
            ctx.route("**/*", route)
            for p in pages:
                if _parse(p).redirect is not None:  # a redirect (its target is checked as a link, and as a page)
                    continue
                rel = p.relative_to(root).as_posix()
                problems: list[str] = []
                tab = ctx.new_page()
                _listen(tab, base, problems)
                tab.goto(base + rel, wait_until="load")
                seen = tab.evaluate(_RENDERED)
                problems += [f"raw TeX in the rendered text: ...{t}..." for t in raw_tex(seen["text"])]
                problems += [f"image did not load: {src}" for src in seen["broken"]]
                has_math = "class=\"math" in p.read_text(encoding="utf-8", errors="replace")
                if has_math and not seen["mathjax"]:
                    problems.append("the page has math but MathJax did not load")
                formulas[p] = seen["math"]
                if shots:
                    tab.screenshot(path=str(shots / (rel.replace("/", "__").removesuffix(".html") + ".png")),
                                   full_page=True)
                tab.close()
                if problems:
                    out[p] = problems
            browser.close()
    finally:
        server.shutdown()
    return out, formulas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default="_build/html", help="the built site (default _build/html)")
    ap.add_argument("--static", action="store_true", help="check the files only, without a browser")
    ap.add_argument("--screenshots", default=None, help="where the screenshots go (default: screenshots beside "
                    "ROOT, i.e. _build/screenshots for _build/html)")
    args = ap.parse_args(argv)
    root = Path(args.root)
    pages = pages_of(root) if root.is_dir() else []
    if not pages:
        print(f"check_html: no HTML pages under {root}: build the book first (make book)")
        return 1
    bad = static_check(root)
    formulas = {}
    if not args.static:
        chromium = find_chromium()
        if chromium is None:
            print(f"check_html: {NO_CHROMIUM}")
            return 1
        shots = Path(args.screenshots) if args.screenshots else root.resolve().parent / "screenshots"
        found, formulas = browser_check(root, shots, chromium)
        for p, probs in found.items():
            bad.setdefault(p, []).extend(probs)
    for p, probs in bad.items():
        for pr in probs:
            print(f"check_html: {p.relative_to(root)}: {pr}")
    how = "static only" if args.static else f"in Chromium, {sum(formulas.values())} formulas typeset by MathJax"
    print(f"check_html: {len(pages)} pages ({how}), {sum(map(len, bad.values()))} problems on {len(bad)} pages")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
