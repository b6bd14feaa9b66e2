"""The claims the book tests, one registry for every chapter, and the Conclusions chapter's table of verdicts.

Each chapter registers the claims of its source paper (or of the KAF thesis) that it tests, with the function
that judges one from stored results::

    from symact.claims import claim

    @claim("dome/pdome-most-robust", chapter="dome", section="dome-table2",
           source="dome.txt, Table 2 and Sec. 4.2", text="PDOME is the most robust of the DOME variants")
    def _pdome_most_robust(profile):
        stored = TABLE2_EXP.stored(profile)           # never runs anything
        if stored is None:
            return None                               # not stored at this profile
        return verdicts.dome_table2(...)              # a symact.experiments.verdicts.Judgement

The judge takes a profile (``"paper"`` or ``"quick"``) and returns a :class:`~symact.experiments.verdicts.Judgement`
(the word of :func:`symact.evaluation.verdict` with its numbers), or None when the results it needs are not
stored at that profile. It must only read stored results (``Experiment.stored``): the Conclusions chapter is
built from what the chapters computed, and computes nothing itself.

:func:`judge` tries the ``paper`` profile first (the only one a verdict is given on) and falls back to
``quick`` (whose word is "not run at a converged protocol", the numbers shown); :func:`conclusions` gathers
every claim into one :class:`pandas.DataFrame`. Why a registry of our own: the claims are the book's content
(which paper says what, and where the book tests it), not a scheduling or storage concern a library covers.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CLAIMS", "Claim", "NOT_STORED", "NOT_STORED_SENTENCE", "claim", "claim_list", "claim_sentence", "conclusions", "judge",
           "markdown_table"]

#: the word of a claim whose results are stored at no profile yet
NOT_STORED = "not run yet"
_KEY = re.compile(r"^[a-z0-9-]+/[a-z0-9.-]+$")


@dataclass(frozen=True)
class Claim:
    """One claim: ``key`` (``"<chapter>/<short-name>"``), the ``chapter`` that tests it (its file stem in
    ``book/``), ``section`` (the MyST label of the section that shows the evidence), ``source`` (paper file
    and section, table or equation), ``text`` (the claim in one sentence, as the paper makes it) and ``judge``
    (profile -> Judgement or None)."""

    key: str
    chapter: str
    section: str
    source: str
    text: str
    judge: Callable


#: every registered claim by key, in registration order (importing :mod:`symact.experiments` fills it)
CLAIMS: dict[str, Claim] = {}


def claim(key: str, *, chapter: str, section: str, source: str, text: str) -> Callable[[Callable], Callable]:
    """Register the decorated ``judge(profile) -> Judgement | None`` as the claim ``key`` (see the module
    docstring). Raises ValueError for a malformed key, a key registered twice, or empty fields."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"a claim key is '<chapter>/<name>' in lower case, digits, '-' and '.', got {key!r}")
    if key.split("/")[0] != chapter:
        raise ValueError(f"the claim {key!r} must start with its chapter {chapter!r}")
    for field, value in (("section", section), ("source", source), ("text", text)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the claim {key!r} needs a non-empty {field}")

    def register(fn: Callable) -> Callable:
        if key in CLAIMS and CLAIMS[key].judge is not fn:
            raise ValueError(f"the claim {key!r} is registered twice")
        CLAIMS[key] = Claim(key, chapter, section, source, text, fn)
        return fn

    return register


def judge(c: Claim | str, profiles: tuple[str, ...] = ("paper", "quick")) -> tuple[object | None, str | None]:
    """``(judgement, profile)`` of the first profile in ``profiles`` whose results are stored, or
    ``(None, None)`` when none is."""
    c = CLAIMS[c] if isinstance(c, str) else c
    for prof in profiles:
        j = c.judge(prof)
        if j is not None:
            return j, prof
    return None, None


#: what :func:`claim_sentence` says of a claim whose results are stored at no profile
NOT_STORED_SENTENCE = "**not run yet**: the results this claim is judged on are stored at no profile."


def claim_sentence(c: Claim | str, profiles: tuple[str, ...] = ("paper", "quick"), label: str | None = None,
                   missing: str | None = None) -> str:
    """The sentence a chapter shows for one claim: its judgement's
    :meth:`~symact.experiments.verdicts.Judgement.sentence` (headed by ``label`` when given) at the first of
    ``profiles`` whose results are stored, else ``missing`` (default :data:`NOT_STORED_SENTENCE`, or
    ``"<label>: **not run yet**."`` when a label is given). Raises KeyError naming the key for an unknown claim."""
    if isinstance(c, str):
        if c not in CLAIMS:
            raise KeyError(f"no claim {c!r} is registered (import symact.experiments to register the chapters')")
        c = CLAIMS[c]
    if not isinstance(c, Claim):
        raise TypeError(f"expected a Claim or a claim key, got {type(c).__name__}")
    j, _ = judge(c, profiles)
    if j is not None:
        return j.sentence(label) if label else j.sentence()
    if missing is not None:
        return missing
    return f"{label}: **{NOT_STORED}**." if label else NOT_STORED_SENTENCE


def claim_list(keys, profiles: tuple[str, ...] = ("paper", "quick"), missing: str | None = None) -> str:
    """A Markdown list, one item per claim of ``keys``: ``- <the claim's text>: <its claim_sentence>``."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    lines = []
    for key in keys:
        c = CLAIMS.get(key) if isinstance(key, str) else key
        if c is None:
            raise KeyError(f"no claim {key!r} is registered (import symact.experiments to register the chapters')")
        lines.append(f"- {c.text}: " + claim_sentence(c, profiles, missing=missing))
    return "\n".join(lines)


def conclusions(chapters: tuple[str, ...] | None = None, profiles: tuple[str, ...] = ("paper", "quick")):
    """Every registered claim (of ``chapters``, all when None) as a DataFrame, one row per claim: ``chapter``,
    ``key``, ``claim``, ``source``, ``verdict`` (the verdict function's word, or :data:`NOT_STORED`),
    ``ours`` (our effect and its interval), ``paper`` (the paper's effect), ``evidence`` (the design: seeds or
    images and the test), ``profile`` (of the stored results judged), ``note`` and ``section``."""
    import pandas as pd

    import symact.experiments  # noqa: F401  (registers every chapter's claims)

    rows = []
    for c in CLAIMS.values():
        if chapters is not None and c.chapter not in chapters:
            continue
        j, prof = judge(c, profiles)
        rows.append({"chapter": c.chapter, "key": c.key, "claim": c.text, "source": c.source,
                     "verdict": j.word if j else NOT_STORED, "ours": j.ours if j else "",
                     "paper": j.theirs if j else "", "evidence": j.design if j else "",
                     "profile": j.profile if j else "", "note": j.note if j else "", "section": c.section})
    return pd.DataFrame(rows, columns=["chapter", "key", "claim", "source", "verdict", "ours", "paper",
                                       "evidence", "profile", "note", "section"])


def markdown_table(df, link: bool = True) -> str:
    """The Conclusions table as MyST Markdown: claim (with a reference to its section), source, verdict in bold,
    our effect, the paper's, evidence and profile. Pipes in cells are escaped."""
    def cell(s) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| claim | source | verdict | ours | paper | evidence | profile |", "|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        text = f"{cell(r.claim)} ({{ref}}`section <{r.section}>`)" if link else cell(r.claim)
        lines.append(f"| {text} | {cell(r.source)} | **{cell(r.verdict)}** | {cell(r.ours)} | {cell(r.paper)} | "
                     f"{cell(r.evidence)} | {cell(r.profile)} |")
    return "\n".join(lines)
