"""The chapters' judgements, each through :func:`symact.evaluation.verdict` (the book's one verdict rule).

One adapter per rule a chapter applies to stored numbers. Each takes stored results (a
:class:`symact.results.Result`, or a stored JSON dict ``{"provenance": ..., "result": ...}``) and returns a
:class:`Judgement`: the :class:`~symact.evaluation.Verdict` and the pieces of the sentence the reader sees
(the word, our effect with its interval, the paper's effect, the design, the profile).

The evidence rules (DESIGN.md) as applied here:

* **Convergence** is read from ``provenance["profile"]`` and nothing else: only the ``paper`` profile (the
  source paper's protocol) counts as converged; ``quick`` and ``smoke`` give "not run at a converged protocol".
* **Seeds**: where an arm has per-seed values (S-APL Table 1), the arms are paired over their shared seeds
  (seed ``i`` of one arm with seed ``i`` of the other).
* **One network per arm** (DOME Table 2, S-APL Tables 2 to 4, SAF's robust networks): the comparison is on
  the same images, from stored per-image outcomes (an ``"outcome"`` key, :func:`symact.evaluation.evaluate`'s
  layout), with the exact McNemar test. Results stored before outcomes were kept have rates only; then the
  word is "inconclusive" with :data:`NO_OUTCOMES` as the note (no unpaired test is made up in their place).
* **A statistic without a test** (one trained network per arm, and a number such as an embedding's distance
  ratio that is not a per-image outcome): "inconclusive", with :data:`ONE_NETWORK` as the note.

Effects are kept as fractions (as stored) and shown in percentage points where ``scale=100``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from symact.evaluation import Verdict, _as_outcome, cascade_label, verdict

__all__ = ["Judgement", "NO_OUTCOMES", "ONE_NETWORK", "NOT_CONVERGED", "SATURATED", "profile", "converged",
           "dome_table2", "dome_seeds", "saturated", "sapl_table1", "sapl_robustness", "sapl_paper_rate",
           "sapl_strong", "sapl_strong_values", "saf_robust", "saf_masking", "saf_first_strong", "saf_seeds",
           "saf_strong_masking", "single_network", "paired_seeds", "benchmark_rows", "count_words",
           "per_seed_rates", "seeds_or_images", "leaderboard_vs_relu"]

#: the note of a one-network-per-arm comparison whose stored result has rates but no per-image outcomes
NO_OUTCOMES = ("one network per arm and no per-image outcomes stored (computed before outcomes were kept): "
               "the comparison cannot be tested")
#: the note of a comparison of one trained network per arm on a statistic that has no per-image test
ONE_NETWORK = ("one trained network per arm, one seed each, and a statistic that is not a per-image outcome: the "
               "comparison cannot be tested")
NOT_CONVERGED = "not run at a converged protocol"
#: the note of a comparison at an epsilon where the baseline's robust accuracy is within :data:`SATURATION` of its
#: clean accuracy (the attack removes almost nothing: such a budget cannot tell a defence from none)
SATURATED = "saturated epsilon: the attack leaves robust accuracy within {gap:.1f} points of clean accuracy"
#: how close (as a fraction) robust and clean accuracy must be for a budget to count as saturated
SATURATION = 0.02
_NAN = float("nan")


# --------------------------------------------------------------------------- stored results


def _provenance(stored) -> Mapping:
    prov = getattr(stored, "provenance", None)
    if prov is None and isinstance(stored, Mapping):
        prov = stored.get("provenance")
    if not isinstance(prov, Mapping) or "profile" not in prov:
        raise ValueError("a stored result needs provenance with its profile (a symact.results.Result, or a stored "
                         "JSON dict {'provenance': {...}, 'result': {...}})")
    return prov


def _data(stored) -> Mapping:
    if hasattr(stored, "provenance"):
        return stored
    return stored["result"]


def profile(stored) -> str:
    """The profile a stored result was computed at, from its provenance."""
    return str(_provenance(stored)["profile"])


def converged(stored) -> bool:
    """Whether a stored result counts as converged: computed at the ``paper`` profile, nothing else."""
    return profile(stored) == "paper"


def _outcome(entry, n: int | None = None) -> np.ndarray | None:
    """The per-image robust outcomes of a stored entry, or None when it has none: for an
    :func:`symact.evaluation.evaluate` result, its worst case over the attacks it ran (``entry["worst_case"]``,
    on the entry's own images; an image wrong before the attack is not robust), whose top-level ``"outcome"``
    is the clean one; otherwise ``entry["outcome"]``."""
    if isinstance(entry, Mapping) and isinstance(entry.get("worst_case"), Mapping):
        return _outcome(entry["worst_case"], entry.get("n"))
    if not isinstance(entry, Mapping) or entry.get("outcome") is None:
        return None
    o = entry["outcome"]
    return _as_outcome(o, n if n is not None else entry.get("n")) if isinstance(o, str) else _as_outcome(o)


# --------------------------------------------------------------------------- the judgement


@dataclass(frozen=True)
class Judgement:
    """A verdict and the pieces of its sentence.

    ``what``: the effect in words (arm A minus arm B, and the metric); ``scale``, ``unit``: how the effect is
    shown (100 and "points" for fractions); ``published``: the paper's effect (same sign convention, as a
    fraction), or None; ``paper``: the paper's effect in words; ``profile``: the stored results' profile(s);
    ``arms``: the names of arm A and arm B, where the adapter chose them (S-APL Table 1's best baseline).
    """

    verdict: Verdict
    what: str
    profile: str
    published: float | None = None
    paper: str | None = None
    scale: float = 100.0
    unit: str = "points"
    digits: int = 2
    arms: tuple[str, str] | None = None

    @property
    def word(self) -> str:
        return self.verdict.word

    def _num(self, x: float) -> str:
        return f"{self.scale * x:+.{self.digits}f}"

    @property
    def ours(self) -> str:
        """Our effect with its interval, e.g. ``+0.17 points [95 % interval -0.10 to +0.44]``."""
        v = self.verdict
        lo, hi = v.interval
        unit = f" {self.unit}" if self.unit else ""
        if math.isfinite(lo) and math.isfinite(hi):
            return f"{self._num(v.effect)}{unit} [95 % interval {self._num(lo)} to {self._num(hi)}]"
        return f"{self._num(v.effect)}{unit} (no interval)"

    @property
    def theirs(self) -> str:
        if self.paper:
            return self.paper
        if self.published is not None:
            return f"{self._num(self.published)}{f' {self.unit}' if self.unit else ''}"
        return "no such comparison"

    @property
    def design(self) -> str:
        return self.verdict.design

    @property
    def note(self) -> str:
        """Why the word is what it is, where the reader needs it (inconclusive, untested, not converged, no
        detectable difference), with the smallest effect the design could detect in the shown unit."""
        v = self.verdict
        if v.word not in ("inconclusive", NOT_CONVERGED, "no detectable difference"):
            return ""
        base = v.note.split("; the design could detect")[0]
        if base.startswith("the interval contains both 0 and the paper's"):
            base = "the interval contains both 0 and the paper's effect"
        if v.word != NOT_CONVERGED and v.mde is not None and math.isfinite(v.mde):
            unit = f" {self.unit}" if self.unit else ""
            return f"{base}; the design could detect about {self.scale * v.mde:.{self.digits}f}{unit}"
        return base

    def sentence(self, label: str | None = None) -> str:
        """The sentence shown to the reader: the word first, then the numbers, the design and the profile."""
        head = f"{label}: " if label else ""
        note = self.note
        return (f"{head}**{self.word}**. {self.what}: {self.ours} in our runs; the "
                f"paper reports {self.theirs}. Design: {self.design}; {self.profile} profile"
                + (f". {note[:1].upper() + note[1:]}." if note else "."))

    def __str__(self) -> str:
        return self.sentence()


def _untested(effect: float, n: int, design: str, is_converged: bool, note: str) -> Verdict:
    """The verdict where no test can be made: the unconverged word first (as :func:`verdict` orders it),
    else "inconclusive" with ``note``. No interval, no p."""
    if not is_converged:
        return Verdict(NOT_CONVERGED, float(effect), (_NAN, _NAN), _NAN, int(n), design, None,
                       "a smoke or quick profile: the numbers are shown, no verdict")
    return Verdict("inconclusive", float(effect), (_NAN, _NAN), _NAN, int(n), design, None, note)


def _profiles(*stored) -> str:
    ps = []
    for s in stored:
        p = profile(s)
        if p not in ps:
            ps.append(p)
    return " and ".join(ps)


def _images(a_out, b_out, *, effect_rate: float, n_rates: str, is_converged: bool, published, higher_is_better,
            level) -> Verdict:
    """The one-network-per-arm verdict: exact McNemar on the same images when both arms have outcomes."""
    if a_out is None or b_out is None:
        return _untested(effect_rate, 0, f"one network per arm, rates only ({n_rates})", is_converged,
                         NO_OUTCOMES)
    if len(a_out) != len(b_out):
        raise ValueError(f"the arms' outcomes cover {len(a_out)} and {len(b_out)} images: not the same images")
    return verdict(a_out, b_out, converged=is_converged, images=True, published=published,
                   higher_is_better=higher_is_better, level=level)


def count_words(judgements: Sequence[Judgement] | Mapping) -> dict:
    """How many judgements gave each word, in first-seen order."""
    js = judgements.values() if isinstance(judgements, Mapping) else judgements
    out: dict[str, int] = {}
    for j in js:
        out[j.word] = out.get(j.word, 0) + 1
    return out


# --------------------------------------------------------------------------- DOME, Table 2


def dome_table2(result, baseline, paper: Sequence[float] | None = None, paper_baseline: Sequence[float] | None = None,
                *, attack: str = "autoattack", name: str = "the model", level: float = 0.95) -> Judgement | None:
    """DOME Table 2: robust accuracy of one model minus the baseline's under ``attack`` (one network per arm).

    ``result``, ``baseline``: stored ``table2_run`` results (``result[attack]`` an attack entry with
    ``robust_acc``, ``n`` and, where stored, ``outcome``). For MDOME the attack also ran on each view
    (``attack_<view>`` keys): its accuracy is the lowest of the runs (the chapter's rule) and its per-image
    outcome the AND of the runs' outcomes (robust only if it survives every run). ``paper``,
    ``paper_baseline``: the paper's (benign, PGD, AutoAttack) accuracies in % (``dome.PAPER_TABLE2``); the
    published effect is their difference in the attack's column. Returns None where the attack was not run
    (the smoke profile skips AutoAttack).
    """
    a, b = _data(result), _data(baseline)
    if a.get(attack) is None or b.get(attack) is None:
        return None

    def runs(d):
        return [d[attack]] + [d[k] for k in sorted(d) if k.startswith(attack + "_") and isinstance(d[k], Mapping)]

    def rate_and_outcome(d):
        rs = runs(d)
        rate = min(r["robust_acc"] for r in rs)
        outs = [_outcome(r) for r in rs]
        return rate, (np.logical_and.reduce(outs) if all(o is not None for o in outs) else None), rs[0]["n"]

    ra, oa, na = rate_and_outcome(a)
    rb, ob, nb = rate_and_outcome(b)
    col = {"clean": 0, "pgd": 1, "autoattack": 2}.get(attack)
    published = paper_text = None
    if paper is not None and paper_baseline is not None and col is not None:
        d = (paper[col] - paper_baseline[col]) / 100
        published = d if d != 0 else None
        paper_text = (f"{100 * d:+.2f} points ({paper[col]:.2f} % against the baseline's {paper_baseline[col]:.2f} %, "
                      "ResNet-18)")
    v = _images(oa, ob, effect_rate=ra - rb, n_rates=f"{na:,} and {nb:,} images", is_converged=converged(result)
                and converged(baseline), published=published, higher_is_better=True, level=level)
    if attack == "autoattack":  # the cascade the result's config names: AutoAttack only if it is the official one
        label = cascade_label(result)
        attack = label if label == "AutoAttack" else f"the {label}"
    what = f"{name}'s robust accuracy minus the baseline's under {attack}"
    return Judgement(v, what, _profiles(result, baseline), published, paper_text)


def _seed_values(data: Mapping, model: str, eps: float, key: str) -> dict[int, float]:
    """Per seed: ``model``'s robust accuracy under ``key`` (an attack of the curve or ``"worst_case"``) at
    ``eps``, from a stored ``dome/robust-*`` result (NaN where the curve did not reach ``eps``)."""
    from symact.experiments.dome_robust import _at

    return {int(net["seed"]): _at(net["curve"], eps, key) for net in data["networks"].values()
            if net["model"] == model}


def saturated(result, eps: float | None = None, model: str = "baseline") -> tuple[bool, float]:
    """Whether ``eps`` (default the result's Table 2 budget) is saturated for ``model`` of a stored
    ``dome/robust-*`` result: its mean worst-case robust accuracy over seeds within :data:`SATURATION` of its
    mean clean accuracy on the same images. Returns ``(saturated, gap)`` with the gap as a fraction."""
    d = _data(result)
    eps = d["eps"] if eps is None else eps
    nets = [n for n in d["networks"].values() if n["model"] == model]
    if not nets:
        raise ValueError(f"the stored result has no {model!r} network")
    from symact.experiments.dome_robust import _at

    clean = float(np.mean([n["curve"]["clean_acc"] for n in nets]))
    robust = float(np.mean([_at(n["curve"], eps, "worst_case") for n in nets]))
    gap = clean - robust
    return bool(math.isfinite(gap) and gap < SATURATION), gap


def dome_seeds(result, model: str, *, eps: float | None = None, attack: str = "worst_case",
               paper: Sequence[float] | None = None, paper_baseline: Sequence[float] | None = None,
               name: str | None = None, level: float = 0.95) -> Judgement | None:
    """DOME Table 2 with seeds: ``model``'s robust accuracy minus the baseline's at ``eps`` (default the
    result's Table 2 budget, 8/255), paired over the seeds both arms share, t-interval
    (:func:`symact.evaluation.verdict`).

    ``result``: a stored ``dome/robust-<network>-<dataset>`` result (:mod:`symact.experiments.dome_robust`).
    ``attack``: ``"worst_case"`` (per image over PGD and AutoAttack; default), ``"autoattack"`` or ``"pgd"``.
    ``paper``, ``paper_baseline``: the paper's (benign, PGD, AA) accuracies in % (``dome.PAPER_TABLE2``);
    the published effect is their difference in the AA column (PGD for ``attack="pgd"``), and it is only
    compared at the paper's budget, 8/255. At a saturated budget (:func:`saturated`) no verdict is given:
    "inconclusive" with :data:`SATURATED` as the note. Returns None where a seed's curve did not reach ``eps``
    (the smoke profile's curve has one large epsilon only).
    """
    d = _data(result)
    eps = d["eps"] if eps is None else float(eps)
    a, b = _seed_values(d, model, eps, attack), _seed_values(d, "baseline", eps, attack)
    if not a or not b:
        raise ValueError(f"the stored result needs {model!r} and 'baseline' networks")
    seeds = sorted(set(a) & set(b))
    va, vb = [a[s] for s in seeds], [b[s] for s in seeds]
    if not seeds or not all(math.isfinite(v) for v in va + vb):
        return None
    published = paper_text = None
    at_paper_eps = abs(eps - 8 / 255) < 1e-9
    col = 1 if attack == "pgd" else 2
    if paper is not None and paper_baseline is not None and at_paper_eps:
        diff = (paper[col] - paper_baseline[col]) / 100
        published = diff if diff != 0 else None
        paper_text = (f"{100 * diff:+.2f} points ({paper[col]:.2f} % against the baseline's {paper_baseline[col]:.2f} %, "
                      "ResNet-18, one network each)")
    is_conv = converged(result)
    sat, gap = saturated(result, eps)
    k = len(seeds)
    design = f"{k} seed(s) per arm, paired over seeds"
    if k < 2:
        v = _untested(float(np.mean(va) - np.mean(vb)), k, design, is_conv,
                      f"underpowered: {k} seed(s) per arm, a verdict needs at least 3")
    elif sat and is_conv:
        v = verdict(va, vb, converged=True, published=published, paired=True, level=level)
        v = Verdict("inconclusive", v.effect, v.interval, v.p, v.n, v.design, v.mde, SATURATED.format(gap=100 * gap))
    else:
        v = verdict(va, vb, converged=is_conv, published=published, paired=True, level=level)
    what_attack = {"worst_case": "the worst case over PGD and AutoAttack", "autoattack": "AutoAttack",
                   "pgd": "PGD"}.get(attack, attack)
    what = f"{name or model}'s robust accuracy minus the baseline's under {what_attack} at eps = {eps:.4g}"
    return Judgement(v, what, profile(result), published, paper_text)


# --------------------------------------------------------------------------- S-APL, Tables 1 and 7


def sapl_table1(result, paper_row: Sequence | None = None, *, baseline: str | None = None,
                exclude: Sequence[str] = (), profile_: str | None = None, paired: bool = True,
                level: float = 0.95) -> Judgement:
    """S-APL Tables 1 and 7: S-APL's test error minus a baseline's, paired over the shared seeds.

    ``result``: a stored ``table1_run`` result (``rows[act]["errors"]``, one error per seed ``0, 1, ...``),
    or a :func:`symact.experiments.sapl.table1_progress` summary with ``profile_`` naming the profile its
    parts ran at (it has no provenance of its own). ``baseline``: the arm B; default the baseline with the
    lowest mean error, leaving out ``exclude`` (the paper's "best of the eight baselines"). ``paper_row``:
    ``(best baseline, its error %, S-APL's error %, p)`` (``sapl.PAPER_TABLE1``); the published effect is
    S-APL's error minus the paper's best baseline's. Lower error is better. ``paired=False`` (Welch's
    interval) where the arms' seeds need not be the same (a run in progress).
    """
    rows = _data(result)["rows"] if profile_ is None else result["rows"]
    prof = profile(result) if profile_ is None else profile_
    if "sapl" not in rows:
        raise ValueError("the stored Table 1 result has no S-APL row")
    if baseline is None:
        cands = [a for a in rows if a != "sapl" and a not in exclude]
        if not cands:
            raise ValueError("no baseline row to compare S-APL with")
        baseline = min(cands, key=lambda a: float(np.mean(rows[a]["errors"])))
    s, b = list(rows["sapl"]["errors"]), list(rows[baseline]["errors"])
    k = min(len(s), len(b))  # paired: seeds 0..k-1 are in both arms
    published = paper_text = None
    if paper_row is not None:
        best, b_err, s_err = paper_row[0], paper_row[1], paper_row[2]
        d = (s_err - b_err) / 100
        published = d if d != 0 else None
        paper_text = f"{100 * d:+.3f} points (S-APL {s_err:.2f} % against {best}'s {b_err:.2f} %)"
    if k < 2:  # no interval from one seed: verdict's underpowered word, without a t-interval
        v = _untested(float(np.mean(s) - np.mean(b)), k, f"{k} seed(s) per arm", prof == "paper",
                      f"underpowered: {k} seed(s) per arm, a verdict needs at least 3")
    else:
        v = verdict(s[:k] if paired else s, b[:k] if paired else b, converged=prof == "paper", published=published,
                    paired=paired,
                    higher_is_better=False, level=level)
    return Judgement(v, f"S-APL's test error minus {baseline}'s", prof, published, paper_text, digits=3,
                     arms=("sapl", baseline))


# --------------------------------------------------------------------------- S-APL, Tables 2 to 4


def sapl_paper_rate(act: str, attack: str, network: str = "lenet"):
    """The paper's success rate (%) of ``attack`` on ``act`` (symmetric-apl.txt Tables 2 to 4), or None.

    ``attack``: ``"onepixel/<k>"``, ``"fgsm/<eps>"`` or ``"cw"`` (the paper has no PGD or AutoAttack).
    """
    from symact.experiments import sapl as sexp

    kind, _, arg = attack.partition("/")
    try:
        if kind == "onepixel":
            return sexp.PAPER_TABLE2[(network, act)][(1, 3, 5).index(int(arg))]
        if kind == "fgsm":
            return sexp.PAPER_TABLE3[(network, act)][(0.02, 0.04, 0.06, 0.08).index(float(arg))]
        if kind == "cw":
            return sexp.PAPER_TABLE4[(network, act)][0]
    except (KeyError, ValueError):
        return None
    return None


def _sapl_row(data: Mapping, images, attack: str) -> tuple[Mapping, Mapping]:
    s = data["sets"][str(images)]
    row = s
    for part in attack.split("/"):
        row = row[part]
    return s, row


def _success(s: Mapping, row: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """Per image: (clean-correct, fooled while clean-correct); None without stored outcomes.

    Needs the set's clean outcome (``set["outcome"]`` or ``row["clean_outcome"]``) and the attack's robust
    outcome (``row["outcome"]``), :func:`symact.evaluation.evaluate`'s layout."""
    n = row.get("n", s.get("n"))  # an attack may run on the first images of the set only (PGD, AutoAttack)
    robust = _outcome(row, n)
    clean_src = row["outcome"] if isinstance(row.get("worst_case"), Mapping) else row.get("clean_outcome",
                                                                                            s.get("outcome"))
    clean = _outcome({"outcome": clean_src, "n": n}, n)
    if robust is None or clean is None:
        return None
    return clean, clean & ~robust


def sapl_robustness(result, other, attack: str, images, *, paper_a: float | None = None,
                    paper_b: float | None = None, names: tuple[str, str] = ("S-APL", "ReLU"),
                    attack_name: str | None = None, level: float = 0.95) -> Judgement:
    """S-APL Tables 2 to 4 (and the strong attacks): one network's attack success rate minus another's.

    ``result``, ``other``: stored ``robustness_run`` results (``sets[<images>][<attack>]`` rows with
    ``success_rate``, the fraction of the correctly classified images an attack fools). ``attack``:
    ``"onepixel/1"``, ``"fgsm/0.04"``, ``"cw"``, ``"pgd"``, ``"autoattack"``. With per-image outcomes the
    arms are compared on the images both networks classify correctly (the success rate's own denominator),
    exact McNemar; without them the word is "inconclusive" (:data:`NO_OUTCOMES`). ``paper_a``, ``paper_b``:
    the paper's rates in % (:func:`sapl_paper_rate`), whose difference is the published effect. A lower
    success rate is better for the network.
    """
    sa, ra = _sapl_row(_data(result), images, attack)
    sb, rb = _sapl_row(_data(other), images, attack)
    published = paper_text = None
    if paper_a is not None and paper_b is not None:
        d = (paper_a - paper_b) / 100
        published = d if d != 0 else None
        paper_text = f"{100 * d:+.0f} points ({names[0]} {paper_a} % against {names[1]} {paper_b} %, 100 images)"
    xa, xb = _success(sa, ra), _success(sb, rb)
    is_conv = converged(result) and converged(other)
    if xa is None or xb is None:
        v = _untested(ra["success_rate"] - rb["success_rate"], 0,
                      f"one network per arm, rates only ({sa['n']:,} images each)", is_conv, NO_OUTCOMES)
    elif not (xa[0] & xb[0]).any():  # a success rate counts the images a network gets right; none in common
        v = _untested(ra["success_rate"] - rb["success_rate"], 0, "one network per arm: no image that both "
                      "classify correctly", is_conv, "no image both networks classify correctly: nothing to compare")
    else:
        both = xa[0] & xb[0]
        v = verdict(xa[1][both], xb[1][both], converged=is_conv, images=True, published=published,
                    higher_is_better=False, level=level)
    what = f"{names[0]}'s success rate minus {names[1]}'s under {attack_name or attack.replace('/', ' ')}"
    return Judgement(v, what, _profiles(result, other), published, paper_text, digits=1)


def sapl_strong_values(result, act: str, metric: str, eps: float | None = None) -> list[float]:
    """Per seed, one number of a network of a stored ``strong-lenet-cifar10`` result (``networks[act][seed]``):
    ``metric`` ``"cw"`` (the median CW-L2 distance over the clean-correct images, ``inf`` where more than half
    were not fooled), ``"fab"`` (the same for FAB-L-infinity) or ``"robust"`` (worst-case robust accuracy at
    ``eps``, which must be a point of the curve)."""
    import math as _m

    from symact.evaluation import decode_outcomes, distance_values

    nets = _data(result)["networks"][act]
    out = []
    for seed in sorted(nets, key=int):
        r = nets[seed]
        if metric in ("cw", "fab"):
            d = distance_values(r[metric])
            ok = decode_outcomes(r[metric]["clean_outcome"], r[metric]["n"])
            out.append(float(np.median(d[ok])) if ok.any() else _m.nan)
        elif metric == "robust":
            if eps is None:
                raise ValueError("metric 'robust' needs eps, a point of the stored curve")
            grid = [round(e, 12) for e in r["curve"]["eps"]]
            if round(eps, 12) not in grid:  # the curve stopped earlier: every image fooled at a smaller eps
                out.append(0.0 if r["curve"].get("stopped_early") and eps > max(grid) else _m.nan)
            else:
                out.append(float(r["curve"]["robust_acc"]["worst_case"][grid.index(round(eps, 12))]))
        else:
            raise ValueError(f"metric must be 'cw', 'fab' or 'robust', got {metric!r}")
    return out


def sapl_strong(result, metric: str = "cw", *, eps: float | None = None, a: str = "sapl", b: str = "relu",
                names: tuple[str, str] = ("S-APL", "ReLU"), level: float = 0.95) -> Judgement:
    """The four Section 6 networks over seeds (``strong-lenet-cifar10``): ``a``'s per-seed number minus ``b``'s,
    paired over the seeds (seed ``i`` of one activation with seed ``i`` of the other), through :func:`verdict`.
    ``metric`` as :func:`sapl_strong_values`; higher is better for all three (a larger distance, a higher
    robust accuracy). The paper publishes no such number, so the word is better / worse / no detectable
    difference at a converged profile with at least 3 seeds per arm."""
    va, vb = sapl_strong_values(result, a, metric, eps), sapl_strong_values(result, b, metric, eps)
    pairs = [(x, y) for x, y in zip(va, vb) if math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        raise ValueError(f"no seed with a finite {metric} value in both arms")
    xa, xb = (np.array(v) for v in zip(*pairs))
    v = verdict(xa, xb, converged=converged(result), level=level, higher_is_better=True)
    what = {"cw": "median CW-L2 distance to the nearest adversarial image found",
            "fab": "median FAB L-infinity distance to the nearest adversarial image found",
            "robust": f"worst-case robust accuracy (AutoAttack and PGD) at eps = {255 * (eps or 0):g}/255"}[metric]
    scale, unit, digits = (100.0, "points", 1) if metric == "robust" else ((1.0, "", 3) if metric == "cw"
                                                                            else (255.0, "/255", 2))
    return Judgement(v, f"{names[0]}'s {what} minus {names[1]}'s", profile(result), None, None, scale=scale,
                     unit=unit, digits=digits)


# --------------------------------------------------------------------------- SAF, robust CNNs


def saf_robust(result, plain, beta: float, *, kind: str = "adversarial", paper: Sequence[float] | None = None,
               paper_plain: Sequence[float] | None = None, name: str = "the robust network",
               level: float = 0.95) -> Judgement:
    """SAF Tables 2 and 4: a robust network's error minus the plain network's at strength ``beta``.

    ``result``, ``plain``: stored ``robust_run`` results (``paper_eval[kind]["error"]``, one error per
    ``paper_eval["betas"]``; where stored, ``paper_eval[kind]["outcome"]``, one outcome per beta, True where
    the sample is decided correctly, on the same ``paper_eval["n"]`` test images). ``paper``,
    ``paper_plain``: the paper's error rows (``saf.PAPER_ERRORS``); the published effect is their difference
    at ``beta`` where both print it. Lower error is better.
    """
    pa, pb = _data(result)["paper_eval"], _data(plain)["paper_eval"]
    i, j = list(pa["betas"]).index(beta), list(pb["betas"]).index(beta)
    ea, eb = pa[kind]["error"][i], pb[kind]["error"][j]
    published = paper_text = None
    if paper is not None and paper_plain is not None and i < len(paper) and i < len(paper_plain):
        d = paper[i] - paper_plain[i]
        published = d if d != 0 else None
        paper_text = f"{100 * d:+.1f} points ({100 * paper[i]:.1f} % against {100 * paper_plain[i]:.1f} %)"

    def errors(pe, idx):
        outs = pe[kind].get("outcome")
        if not outs:
            return None
        ok = _outcome({"outcome": outs[idx], "n": pe["n"]})
        return None if ok is None else ~ok

    oa, ob = errors(pa, i), errors(pb, j)
    v = _images(oa, ob, effect_rate=ea - eb, n_rates=f"{pa['n']:,} images each",
                is_converged=converged(result) and converged(plain), published=published,
                higher_is_better=False, level=level)
    what = f"{name}'s {kind} error minus the plain network's at beta = {beta:g}"
    return Judgement(v, what, _profiles(result, plain), published, paper_text, digits=1)


def saf_masking(result, eps, *, attack: str = "square", against: Sequence[str] = ("eq10", "pgd", "pgd-ce",
                "autoattack"), level: float = 0.95) -> Judgement | None:
    """SAF's masked-gradient check: accuracy under ``attack`` (black-box Square) minus the lowest accuracy under
    the gradient attacks ``against``, one network, the same images (the first ``min(n)`` both ran on).

    A "worse" word (Square's accuracy lower, interval below 0) is the sign of masked gradients. Needs per-image
    outcomes (``strong[eps][name]["outcome"]``); without them "inconclusive" (no outcomes stored). Returns
    None where the network has no ``attack`` entry at ``eps``.
    """
    r = _data(result)["strong"][str(eps)]
    if attack not in r:
        return None
    grads = [k for k in against if k in r]
    if not grads:
        return None
    g = min(grads, key=lambda k: r[k]["acc"])
    diff = r[attack]["acc"] - r[g]["acc"]
    oa, ob = _outcome(r[attack]), _outcome(r[g])
    is_conv = converged(result)
    what = f"Accuracy under {attack} minus under the strongest gradient attack ({g}) at eps = {eps:g}"
    if oa is None or ob is None:
        v = _untested(diff, 0, f"one network, two attacks, rates only ({r[attack]['n']:,} and {r[g]['n']:,} images)",
                      is_conv, "no per-image outcomes stored (computed before outcomes were kept): the two attacks "
                               "cannot be compared on the same images")
    else:
        m = min(len(oa), len(ob))  # both ran on the first test images
        v = verdict(oa[:m], ob[:m], converged=is_conv, images=True, level=level)
    return Judgement(v, what, profile(result), None, None, digits=1)


def saf_first_strong(result, plain, eps, *, name: str = "mReLU-r-m", level: float = 0.95) -> Judgement | None:
    """The first strong evaluation (``robust_run``'s ``strong`` section, one network per arm): the robust
    network's worst-case accuracy over every attack minus the plain network's at ``eps``, on the same first test
    images. Exact McNemar from the ``worst`` entries' per-image outcomes where stored, else "inconclusive"
    (:data:`NO_OUTCOMES`). No published effect (the paper ran no strong attack); higher is better. None where
    either result has no entry at ``eps``."""
    ra, rb = _data(result)["strong"].get(str(eps)), _data(plain)["strong"].get(str(eps))
    if ra is None or rb is None:
        return None
    wa, wb = ra["worst"], rb["worst"]
    oa, ob = _outcome(wa), _outcome(wb)
    if oa is not None and ob is not None:
        m = min(len(oa), len(ob))
        oa, ob = oa[:m], ob[:m]
    v = _images(oa, ob, effect_rate=wa["acc"] - wb["acc"], n_rates=f"{wa['n']:,} and {wb['n']:,} images",
                is_converged=converged(result) and converged(plain), published=None, higher_is_better=True,
                level=level)
    what = f"{name}'s worst-case accuracy over every attack minus the plain network's at eps = {eps:g}"
    return Judgement(v, what, _profiles(result, plain), None, "no such comparison (the paper ran one-step attacks "
                     "only)", digits=1)


def _strong_nets(result, model: str) -> list[Mapping]:
    nets = [n for n in _data(result)["networks"].values() if n["model"] == model]
    if not nets:
        raise ValueError(f"the stored strong result has no network {model!r}")
    return sorted(nets, key=lambda n: n["seed"])


def _curve_index(net: Mapping, eps) -> int:
    grid = [float(e) for e in net["curve"]["eps"]]
    if float(eps) not in grid:
        raise ValueError(f"eps {eps} is not on the stored curve (eps {grid})")
    return grid.index(float(eps))


def saf_seeds(result, eps, *, a: str = "mrelu-r-m", b: str = "plain", key: str = "worst_case",
              level: float = 0.95) -> Judgement:
    """SAF's strong evaluation with seeds (``strong-<dataset>``): model ``a``'s robust accuracy minus model
    ``b``'s at ``eps`` under ``key`` (``"worst_case"`` over every attack, or an attack name), paired over the
    seeds both arms have (the t-interval of the per-seed differences; fewer than 3 seeds: "inconclusive").
    No published effect; higher is better."""
    na = {n["seed"]: n for n in _strong_nets(result, a)}
    nb = {n["seed"]: n for n in _strong_nets(result, b)}
    seeds = sorted(set(na) & set(nb))
    if not seeds:
        raise ValueError(f"no seed shared by {a!r} and {b!r}")

    def acc(n):
        return n["curve"]["robust_acc"][key][_curve_index(n, eps)]

    xa, xb = [acc(na[s]) for s in seeds], [acc(nb[s]) for s in seeds]
    prof = profile(result)
    if len(seeds) < 2:
        v = _untested(xa[0] - xb[0], len(seeds), f"{len(seeds)} seed per arm", prof == "paper",
                      f"underpowered: {len(seeds)} seed per arm, a verdict needs at least 3")
    else:
        v = verdict(xa, xb, converged=prof == "paper", paired=True, higher_is_better=True, level=level)
    label = "the worst case over every attack" if key == "worst_case" else key
    what = f"{a}'s robust accuracy minus {b}'s under {label} at eps = {eps:g}"
    return Judgement(v, what, prof, None, "no such comparison (the paper ran one-step attacks only)", digits=1,
                     arms=(a, b))


def saf_strong_masking(result, eps, *, model: str = "mrelu-r-m", attack: str = "pgd", against: str = "pgd-ce",
                       level: float = 0.95) -> Judgement | None:
    """Loss masking in the strong evaluation: accuracy under ``attack`` (PGD on the training loss) minus under
    ``against`` (PGD on the cross-entropy), for ``model``, on the same images of every seed (the per-image
    outcomes of all seeds concatenated; exact McNemar). "better" (the training-loss attack leaves more images
    robust) is the sign that the hybrid loss masks its own gradient. None where either attack was not run."""
    oa, ob = [], []
    for n in _strong_nets(result, model):
        pt = n["curve"]["points"][_curve_index(n, eps)]
        if attack not in pt["attacks"] or against not in pt["attacks"]:
            return None
        oa.append(_outcome(pt["attacks"][attack], pt["n"]))
        ob.append(_outcome(pt["attacks"][against], pt["n"]))
    v = verdict(np.concatenate(oa), np.concatenate(ob), converged=converged(result), images=True, level=level)
    what = f"{model}'s accuracy under {attack} minus under {against} at eps = {eps:g} ({len(oa)} network(s))"
    return Judgement(v, what, profile(result), None, None, digits=1)


# --------------------------------------------------------------------------- one network per arm, no test


def single_network(*stored, effect: float, what: str, paper: str | None = None, scale: float = 1.0,
                   unit: str = "", digits: int = 3) -> Judgement:
    """A comparison of one trained network per arm on a statistic without a per-image test (an embedding's
    distance ratio, a t-SNE separation score, an order of training losses): "not run at a converged protocol"
    unless every result is at the paper profile, else "inconclusive" (:data:`ONE_NETWORK`). ``effect``: the
    descriptive difference (A - B) shown beside the word."""
    if not stored:
        raise ValueError("single_network needs the stored result(s) the comparison comes from")
    is_conv = all(converged(s) for s in stored)
    v = _untested(effect, 1, "one trained network per arm (one seed)", is_conv, ONE_NETWORK)
    return Judgement(v, what, _profiles(*stored), None, paper, scale=scale, unit=unit, digits=digits)


# --------------------------------------------------------------------------- per-seed values, paired over seeds


def paired_seeds(stored, a: Mapping, b: Mapping, *, what: str, published: float | None = None,
                 paper: str | None = None, higher_is_better: bool = True, level: float = 0.95) -> Judgement:
    """Arm A minus arm B of a per-seed metric (``a``, ``b``: ``{seed: value}``, e.g. test accuracies as
    fractions), paired over the seeds both arms have (the KAF chapter's depth section). Fewer than two shared
    seeds: no interval, the underpowered word (or "not run at a converged protocol"); else
    :func:`symact.evaluation.verdict` (fewer than 3 seeds: "inconclusive"). ``stored``: the stored result the
    values come from (its profile decides convergence)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping) or not a or not b:
        raise ValueError("paired_seeds needs each arm's values as a non-empty {seed: value} mapping")
    prof = profile(stored)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(f"the arms share no seed (A: {sorted(a)}, B: {sorted(b)})")
    x = [float(a[s]) for s in shared]
    y = [float(b[s]) for s in shared]
    if len(shared) < 2:
        v = _untested(x[0] - y[0], 1, "1 seed per arm", prof == "paper",
                      "underpowered: 1 seed per arm, a verdict needs at least 3")
    else:
        v = verdict(x, y, converged=prof == "paper", published=published, higher_is_better=higher_is_better,
                    level=level)
    return Judgement(v, what, prof, published, paper, digits=2)


# --------------------------------------------------------------------------- benchmark rows (KAF chapter's FAT tables)


def benchmark_rows(arm_a, arm_b, *, what: str, metric: str = "robust_acc", published: float | None = None,
                   paper: str | None = None, margin: float | None = None, level: float = 0.95) -> Judgement:
    """Two arms of stored leaderboard rows (:mod:`symact.benchmark` results, complete or partial), per seed.

    ``arm_a``, ``arm_b``: a result or a sequence of results; an arm of several rows (the KAF variants) is
    their mean per seed, over the seeds every row of both arms finished. ``metric``: ``"robust_acc"`` (the
    worst case over every attack) or ``"clean_acc"``. Rows of one protocol are paired over seeds (seed ``k``
    of A with seed ``k`` of B, as :func:`symact.benchmark.compare_to_relu`); rows of two protocols (two
    networks) are compared unpaired (Welch). Converged only when every row is stored at the ``paper`` profile
    and complete; then ``published`` (the paper's A - B as a fraction; a thesis number of one seed, PGD with
    predicted labels) or ``margin`` (a claim of no difference) go to :func:`symact.evaluation.verdict`.
    Raises ValueError when the arms share no finished seed.
    """
    from symact.benchmark import _complete, _per_seed

    arms = [list(arm) if isinstance(arm, (list, tuple)) else [arm] for arm in (arm_a, arm_b)]
    if not arms[0] or not arms[1]:
        raise ValueError("each arm needs at least one stored row")
    per = [[_per_seed(r, metric) for r in arm] for arm in arms]
    shared = sorted(set.intersection(*(set(p) for arm in per for p in arm)))
    if not shared:
        raise ValueError("the rows of the two arms share no finished seed")
    a, b = ([float(np.mean([p[k] for p in arm])) for k in shared] for arm in per)
    rows = [r for arm in arms for r in arm]
    protocols = {repr(sorted(_data(r)["protocol"].items())) for r in rows}
    is_conv = all(converged(r) and _complete(r) for r in rows)
    v = verdict(a, b, converged=is_conv, paired=len(protocols) == 1, published=published, margin=margin,
                level=level)
    return Judgement(v, what, _profiles(*rows), published, paper)


# --------------------------------------------------------------------------- per-seed rates (KAF, Lipschitz)


def per_seed_rates(result, a: Mapping[int, float], b: Mapping[int, float], *, what: str,
                   paper: str | None = None, level: float = 0.95) -> Judgement:
    """Two arms with one rate per seed (``a``, ``b``: seed -> fraction, e.g. the certified accuracy of the KAF
    and the ReLU network of each seed), paired over their shared seeds; ``result``: the stored result they come
    from (its profile decides convergence). Fewer than 2 shared seeds: no interval ("inconclusive", or "not run
    at a converged protocol" below ``paper``); otherwise :func:`symact.evaluation.verdict` (fewer than 3 seeds
    is "inconclusive" there). No published effect: "better" / "worse" / "no detectable difference" for A."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"the arms share no seed (A has {sorted(a)}, B has {sorted(b)})")
    xa, xb = [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]
    is_conv = converged(result)
    if len(seeds) < 2:
        v = _untested(xa[0] - xb[0], len(seeds), f"{len(seeds)} seed per arm", is_conv,
                      f"underpowered: {len(seeds)} seed per arm, a verdict needs at least 3")
    else:
        v = verdict(xa, xb, converged=is_conv, paired=True, level=level)
    return Judgement(v, what, profile(result), None, paper)


# --------------------------------------------------------------------------- per seed, or per image of one seed


def seeds_or_images(stored, a: Mapping, b: Mapping, *, what: str, level: float = 0.95) -> Judgement:
    """Arm A minus arm B of one stored result, where each arm maps a seed to ``(robust rate, per-image outcome)``
    (the worst case over the attacks the claim counts, on the same images for both arms; the KAF chapter's
    adaptive attacks). With at least two shared seeds, the per-seed rates paired over seeds (the rule's seed
    design; fewer than 3 seeds: "inconclusive"); with one, the two networks' outcomes on the same images (exact
    McNemar). Converged only at the ``paper`` profile. Higher is better for arm A.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two arms share no seed")
    is_conv = converged(stored)
    if len(seeds) >= 2:
        v = verdict([float(a[s][0]) for s in seeds], [float(b[s][0]) for s in seeds], converged=is_conv,
                    paired=True, level=level)
    else:
        s = seeds[0]
        oa, ob = _as_outcome(a[s][1]), _as_outcome(b[s][1])
        if len(oa) != len(ob):
            raise ValueError(f"the arms' outcomes cover {len(oa)} and {len(ob)} images: not the same images")
        v = verdict(oa, ob, converged=is_conv, images=True, level=level)
    return Judgement(v, what, profile(stored))


def leaderboard_vs_relu(row_result, relu_result, *, row: str, dataset: str, level: float = 0.95) -> Judgement:
    """A leaderboard row's worst-case robust accuracy minus the ReLU row's, paired over their shared seeds:
    :func:`symact.benchmark.compare_to_relu`'s ``robust_acc`` verdict (converged only when both are complete
    ``paper`` results) as a Judgement."""
    from symact.benchmark import compare_to_relu

    v = compare_to_relu(row_result, relu_result, level=level)["robust_acc"]
    return Judgement(v, f"the {row} row's worst-case robust accuracy minus ReLU's ({dataset}, the leaderboard's fast "
                        "adversarial training, paired over seeds)", _profiles(row_result, relu_result))
