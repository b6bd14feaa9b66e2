"""The S-APL chapter's tables and sentences, built from stored results (../shared/papers/symmetric-apl.txt).

Each table builder returns a pandas DataFrame, and where the chapter shows Markdown a thin ``*_markdown(df)``
writes it with :func:`symact.report.markdown_table`; numbers are written through :mod:`symact.report`
(a value that is not stored is :data:`symact.report.MISSING`). Nothing here trains or attacks: the inputs are
the ``result`` dicts of the chapter's experiments (or the parts of them named in each docstring), so every
function runs on small synthetic dicts of the same shape, as ``tests/test_sapl_report.py`` does.

Sections, in the chapter's order: the approximation theorem (:func:`zigzag`, :func:`construction_error`,
:func:`interpolant_vs_fit`, :func:`hinge_fits`), Table 1 (:func:`table1_frame`), the training dynamics
(:func:`dynamics_frame`, :func:`stage_verdicts`, :func:`relu_distance`), Tables 5 and 6 (:func:`hinges_frame`,
:func:`hinges_cifar10_frame`, :func:`beyond_four`), Tables 2 to 4 (:func:`robustness_table`,
:func:`pooled_gap`, :func:`one_pixel_counted`) and Fig. 4 (:func:`tsne_frame`, :func:`tsne_wins`).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from symact.report import MISSING, is_missing, markdown_table, mean_sd, number

__all__ = [
    "zigzag", "construction_error", "interpolant_vs_fit", "interpolant_vs_fit_markdown", "hinge_fits",
    "hinge_fits_markdown", "HINGE_FIT_KINDS",
    "one_of", "table1_schedule", "table1_frame", "table1_markdown", "table1_paper_cell", "table1_ours_cell",
    "table1_progress_markdown", "table1_extra_markdown", "table1_robustness_markdown",
    "dynamics_frame", "dynamics_markdown", "stage_verdicts", "stage_verdicts_markdown", "loss_order",
    "relu_distance", "relu_distances", "lenet_ablations", "order_verdict",
    "hinges_frame", "hinges_markdown", "hinges_cifar10_frame", "hinges_cifar10_markdown", "beyond_four",
    "hinges_cifar10_findings",
    "rate_ci", "confidence_gap", "pooled_gap", "paper_value", "robustness_table", "robustness_table_markdown",
    "table2_cells", "table3_cells", "table4_cells", "strong_cells", "strong_header", "T2_HEADER", "T4_HEADER",
    "t3_header", "ACT_NAMES", "rows_by_attack", "lowest", "tally", "one_pixel_counted", "attack_keys", "judge_attack",
    "not_lowest_sentence", "underfit_sentence", "counting_sentence",
    "tsne_frame", "tsne_markdown", "tsne_wins", "tsne_mean",
]

#: how the chapter names the activations of Section 6
ACT_NAMES = {"relu": "ReLU", "apl": "APL", "swish": "Swish", "sapl": "S-APL"}


# --- the approximation theorem ---------------------------------------------------------------------------

def zigzag(x, period: float = 0.618):
    """The zig-zag of slope ±1 and period ``period``, ``period * |x/period - round(x/period)|``: 0 at every
    multiple of ``period``, ``period / 2`` half-way between. With ``period`` the grid spacing ``h`` its peaks sit
    at the grid midpoints, so the S-APL interpolant's error is exactly ``h/2``, the Lipschitz bound of the
    chapter's corrected Theorem 3.1 (symmetric-apl.txt Theorem 3.1)."""
    if not period > 0:
        raise ValueError(f"zigzag needs a positive period, got {period!r}")
    u = np.asarray(x, dtype=float) / period
    return period * np.abs(u - np.round(u))


def construction_error(f: Callable, A: float, B: float, S: int) -> float:
    """The largest error on ``[A, B]`` of the S-APL interpolant of ``f`` with ``S`` hinges a side
    (:func:`symact.theory.sapl_construction`), measured by :func:`symact.theory.max_error` on its dense grid plus
    every grid midpoint (where the error of a chord peaks)."""
    from symact import theory

    if int(S) != S or S < 1:
        raise ValueError(f"S (hinges a side) must be a positive integer, got {S!r}")
    p = theory.sapl_construction(f, A, B, int(S))
    mids = np.concatenate([(np.arange(S) + 0.5) * p["h_pos"], -(np.arange(S) + 0.5) * p["h_neg"]])
    return theory.max_error(f, A, B, lambda x: theory.sapl_value(x, p["a_pos"], p["b_pos"], p["a_neg"], p["b_neg"]),
                            extra=mids)


def interpolant_vs_fit(targets: Mapping[str, tuple], A: float, B: float, S: int) -> pd.DataFrame:
    """The interpolant against a least-squares S-APL on the same hinges
    (:func:`symact.theory.sapl_interpolant_vs_fit`), one row per target: ``targets`` maps a name to
    ``(key, f, bound)``; columns ``target``, ``key``, ``bound``, ``interpolant``, ``least_squares``, ``ratio``
    (least squares / bound)."""
    from symact import theory

    if not targets:
        raise ValueError("interpolant_vs_fit needs at least one target")
    rows = []
    for name, (key, f, bound) in targets.items():
        r = theory.sapl_interpolant_vs_fit(f, A, B, S)
        rows.append({"target": name, "key": key, "bound": bound, "interpolant": r["interpolant"],
                     "least_squares": r["least_squares"], "ratio": r["least_squares"] / bound})
    return pd.DataFrame(rows)


def interpolant_vs_fit_markdown(df: pd.DataFrame) -> str:
    """:func:`interpolant_vs_fit` as the chapter's table (4 significant digits, the ratio to 3 decimals)."""
    return markdown_table(["target", "bound", "interpolant", "least squares", "least squares / bound"],
                          [[r.target, f"{r.bound:.4g}", f"{r.interpolant:.4g}", f"{r.least_squares:.4g}",
                            f"{r.ratio:.3f}"] for r in df.itertuples()])


#: the fits of :func:`hinge_fits`, in the chapter's order
HINGE_FIT_KINDS = ("APL, hinges inside", "APL, one hinge past B", "APL, free hinges", "S-APL, fixed grid",
                   "S-APL, free hinges")


def hinge_fits(targets: Mapping[str, Callable], A: float, B: float, hinges: Sequence[int],
               points: int = 1001) -> pd.DataFrame:
    """Least-squares fits (:func:`symact.theory.fit_hinges`) of every target with ``S`` S-APL hinges a side and
    ``2S`` APL hinges, for each ``S`` in ``hinges``: APL with fixed hinges inside ``[A, B]``, APL with its fixed
    hinges shifted one step so that the last lies past ``B``, APL with free hinges (from the shifted ones), and
    S-APL on its construction grid, fixed and free. A long DataFrame: ``target``, ``fit``
    (:data:`HINGE_FIT_KINDS`), ``S``, ``max_error`` on ``points`` points."""
    from symact import theory

    if not targets or not hinges:
        raise ValueError("hinge_fits needs at least one target and one number of hinges")
    rows = []
    for name, f in targets.items():
        for S in hinges:
            n = 2 * S
            past = A + (B - A) / n * (np.arange(n) + 2)
            fits = {"APL, hinges inside": dict(n=n, kind="apl"),
                    "APL, one hinge past B": dict(n=n, kind="apl", hinges=past),
                    "APL, free hinges": dict(n=n, kind="apl", hinges=past, free=True),
                    "S-APL, fixed grid": dict(n=S, kind="sapl"),
                    "S-APL, free hinges": dict(n=S, kind="sapl", free=True)}
            for fit, kw in fits.items():
                n_, kind = kw.pop("n"), kw.pop("kind")
                err = theory.fit_hinges(f, A, B, n_, kind, points=points, **kw)["max_error"]
                rows.append({"target": name, "fit": fit, "S": S, "max_error": err})
    return pd.DataFrame(rows)


def hinge_fits_markdown(df: pd.DataFrame) -> str:
    """:func:`hinge_fits` as the chapter's table: one row per target and fit, one column per ``S`` (3
    significant digits)."""
    wide = df.pivot_table(index=["target", "fit"], columns="S", values="max_error", sort=False)
    return markdown_table(["target", "fit"] + [f"S = {S} ({2 * S} hinges)" for S in wide.columns],
                          [[t, k] + [f"{e:.3g}" for e in row] for (t, k), row in zip(wide.index, wide.values)])


# --- Table 1 ---------------------------------------------------------------------------------------------

def one_of(values: Iterable) -> str:
    """The distinct ``values`` (strings), sorted and joined by " or ": ``one_of(['3', '5', '3']) == '3 or 5'``."""
    values = sorted(set(values))
    if not values:
        raise ValueError("one_of needs at least one value")
    return " or ".join(values)


def table1_schedule(configs: Iterable) -> str:
    """What Table 1's rows train at a profile, from their configs (``epochs``, ``n_train``, ``seeds``):
    '2 epochs on 2,000 training images, with 2 seeds' (values that differ between rows joined by " or ")."""
    configs = list(configs)
    return (f"{one_of(str(c.epochs) for c in configs)} epochs on {one_of(f'{c.n_train:,}' for c in configs)} "
            f"training images, with {one_of(str(c.seeds) for c in configs)} seeds")


def table1_frame(results: Mapping, acts: Sequence[str]) -> pd.DataFrame:
    """Table 1 as a long DataFrame, from stored ``table1_run`` results (row key -> result with ``rows``:
    activation -> ``errors``, ``mean``, ``std``): one row per row key and activation of ``acts``, columns
    ``row``, ``activation``, ``mean`` and ``std`` (test error in %, NaN where the activation was not run) and
    ``seeds``."""
    out = []
    for k, r in results.items():
        for act in acts:
            row = r["rows"].get(act)
            out.append({"row": k, "activation": act,
                        "mean": np.nan if row is None else 100 * row["mean"],
                        "std": np.nan if row is None else 100 * row["std"],
                        "seeds": 0 if row is None else len(row["errors"])})
    return pd.DataFrame(out)


def table1_paper_cell(paper_row: Sequence) -> str:
    """The paper's cell of a Table 1 row, ``(best baseline, its error, S-APL's error, Table 7 p)``:
    'prelu 1.11, S-APL 1.03, p = 0.061'."""
    best, best_err, sapl_err, p = paper_row
    return f"{best} {best_err:.2f}, S-APL {sapl_err:.2f}, p = {p:.3f}"


def table1_ours_cell(result, judgement) -> str:
    """Our cell of a Table 1 row: the best baseline's and S-APL's mean error (%) and the verdict word with the
    paired p (``judgement`` from :func:`symact.experiments.verdicts.sapl_table1`; None gives MISSING)."""
    if judgement is None:
        return MISSING
    rows, best = result["rows"], judgement.arms[1]
    return (f"{best} {100 * rows[best]['mean']:.2f}, S-APL {100 * rows['sapl']['mean']:.2f}: "
            f"{judgement.word} (paired p = {judgement.verdict.p:.3f})")


def table1_markdown(df: pd.DataFrame, headers: Mapping, extra_rows: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """:func:`table1_frame` as the chapter's table: one row per activation, one column per row key (headed
    ``headers[key]``), 'mean ± std' to 2 decimals, MISSING where not run; ``extra_rows`` are appended as
    ``(label, cells)``."""
    keys = list(dict.fromkeys(df["row"]))
    missing = [k for k in keys if k not in headers]
    if missing:
        raise ValueError(f"no header for Table 1 row(s) {missing}")
    rows = []
    for act, g in df.groupby("activation", sort=False):
        cells = {r.row: MISSING if is_missing(r.mean) else f"{number(r.mean)} ± {number(r.std)}"
                 for r in g.itertuples()}
        rows.append([act] + [cells.get(k, MISSING) for k in keys])
    rows += [[label, *cells] for label, cells in extra_rows]
    return markdown_table(["activation"] + [headers[k] for k in keys], rows, align="l" * (len(keys) + 1))


def table1_progress_markdown(progress: Mapping, judgement=None) -> str:
    """The rows of an unfinished paper-profile Table 1 run (:func:`symact.experiments.sapl.table1_progress`):
    activation, seeds so far and mean error (%) ± standard deviation (one seed: no spread), and the verdict
    sentence on the seeds so far when ``judgement`` is given."""
    rows = []
    for act, row in progress["rows"].items():
        errs = row["errors"]
        rows.append([act, len(errs), number(100 * row["mean"])
                     + (f" ± {number(100 * row['std'])}" if len(errs) > 1 else "")])
    md = markdown_table(["activation", "seeds", "test error (%)"], rows)
    return md + ("" if judgement is None else "\n\nOn the seeds so far: " + judgement.sentence())


def table1_extra_markdown(extra: Mapping, paper: Mapping, judge: Callable) -> str:
    """The Table 1 rows run only at the paper profile (``extra``: (network, dataset, augment) -> stored result or
    None), beside the paper's (``paper``: the same keys -> (best, its error, S-APL's error, p)); ``judge(result,
    paper_row)`` gives the verdict (:func:`symact.experiments.verdicts.sapl_table1`)."""
    names = {"resnet18": "ResNet-18", "lenet": "LeNet-5"}
    rows = []
    for k, r in extra.items():
        label = f"{names.get(k[0], k[0])}, {k[1].upper().replace('CIFAR', 'CIFAR-')}{' + aug.' if k[2] else ''}"
        cell = table1_paper_cell(paper[k])
        if r is None:
            rows.append([label, "not run", "not run", MISSING, cell])
            continue
        best, rws = r["ttest"]["best_baseline"], r["rows"]
        j = judge(r, paper[k])
        rows.append([label, f"{best} {100 * rws[best]['mean']:.2f}", f"{100 * rws['sapl']['mean']:.2f}",
                     f"{j.word}: {j.ours}", cell])
    return markdown_table(["row", "best baseline (ours)", "S-APL (ours)", "verdict", "paper: best, S-APL, p"], rows,
                          align="lllll")


def table1_robustness_markdown(t1_rows: Mapping, overview: pd.DataFrame) -> str:
    """Table 1's CIFAR-10 row (``t1_rows``: activation -> row with ``mean``) beside the robustness networks
    (:func:`symact.experiments.sapl.robustness_overview`): mean error (%), the network's error (%) and its last
    training loss."""
    return markdown_table(
        ["activation", "Table 1 CIFAR-10 row, mean error (%)", "robustness network, error (%)",
         "its last training loss"],
        [[act, MISSING if t1_rows.get(act) is None else number(100 * t1_rows[act]["mean"]),
          number(overview.loc[act, "test_error"]), number(overview.loc[act, "train_loss"], 3)]
         for act in overview.index])


# --- training dynamics (Figs. 1 to 3) --------------------------------------------------------------------

def _negative_means(run: Mapping, layer: int) -> np.ndarray:
    return np.array([s["negative_mean"][layer] for s in run["snapshots"]], dtype=float)


def dynamics_frame(variants: Mapping, layer_names: Sequence[str]) -> pd.DataFrame:
    """Final training loss, test accuracy (%) and, per layer, the lowest and the last ``m-`` of every variant of
    a ``dynamics`` result (variant -> ``train_loss``, ``test_acc``, ``snapshots`` with ``negative_mean``), indexed
    by variant; columns ``train_loss``, ``test_acc``, ``m_min <layer>``, ``m_end <layer>`` (NaN for a variant
    without snapshots: ReLU and leaky ReLU)."""
    rows = {}
    for name, r in variants.items():
        row = {"train_loss": r["train_loss"][-1], "test_acc": 100 * r["test_acc"]}
        for i, layer in enumerate(layer_names):
            ms = _negative_means(r, i) if r["snapshots"] else np.array([])
            row[f"m_min {layer}"] = float(ms.min()) if ms.size else np.nan
            row[f"m_end {layer}"] = float(ms[-1]) if ms.size else np.nan
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def dynamics_markdown(df: pd.DataFrame, layer_names: Sequence[str]) -> str:
    """:func:`dynamics_frame` as the chapter's table ("n/a" for a layer without ``m-``)."""
    rows = []
    for name, r in df.iterrows():
        cells = ["n/a" if is_missing(r[f"m_min {layer}"]) else f"{r[f'm_min {layer}']:+.3f}, {r[f'm_end {layer}']:+.3f}"
                 for layer in layer_names]
        rows.append([name, number(r["train_loss"], 4), number(r["test_acc"])] + cells)
    return markdown_table(["variant", "final training loss", "test accuracy (%)"]
                          + [f"$m_-$ {layer}: min, end" for layer in layer_names], rows)


def stage_verdicts(run: Mapping, layer_names: Sequence[str]) -> pd.DataFrame:
    """The two-stage hypothesis of symmetric-apl.txt Section 5, layer by layer, from one S-APL run: ``early``, the
    sign of ``m-`` in the first third of training (snapshots 1 to a third, the initialisation left out:
    'negative', 'positive' or 'mixed in sign'), ``end``, its last value, and ``two_stages`` (negative somewhere
    early and positive at the end)."""
    if not run["snapshots"]:
        raise ValueError("stage_verdicts needs a run with snapshots (an S-APL variant)")
    rows = []
    for layer, name in enumerate(layer_names):
        ms = _negative_means(run, layer)
        early = ms[1: max(2, len(ms) // 3)]
        first = "negative" if np.all(early < 0) else ("positive" if np.all(early > 0) else "mixed in sign")
        rows.append({"layer": name, "early": first, "end": float(ms[-1]),
                     "two_stages": bool(np.any(early < 0) and ms[-1] > 0)})
    return pd.DataFrame(rows)


def stage_verdicts_markdown(df: pd.DataFrame) -> str:
    """:func:`stage_verdicts` as the chapter's sentence, one clause per layer."""
    return "; ".join(f"{r.layer}: $m_-$ is {r.early} in the first third of training and ends at {r.end:+.3f}, "
                     + ("the two stages the paper describes" if r.two_stages else
                        "which is **not** the paper's two-stage pattern") for r in df.itertuples()) + "."


def loss_order(variants: Mapping) -> list[str]:
    """The variants ordered by their final training loss, lowest first."""
    return sorted(variants, key=lambda n: variants[n]["train_loss"][-1])


def relu_distance(run: Mapping, layer: int) -> float:
    """``max |h(x) - ReLU(x)|`` over the run's grid ``x`` at the last snapshot of layer ``layer``."""
    if not run["snapshots"]:
        raise ValueError("relu_distance needs a run with snapshots (an S-APL variant)")
    x = np.asarray(run["x"], dtype=float)
    return float(np.max(np.abs(np.asarray(run["snapshots"][-1]["shape"][layer]) - np.maximum(x, 0))))


def relu_distances(variants: Mapping, n_layers: int) -> pd.DataFrame:
    """:func:`relu_distance` of every variant with snapshots (rows) and layer (columns 0 to ``n_layers - 1``)."""
    return pd.DataFrame({name: [relu_distance(r, i) for i in range(n_layers)]
                         for name, r in variants.items() if r["snapshots"]}).T


def lenet_ablations(variants: Mapping, layer_names: Sequence[str]) -> tuple[str, str]:
    """The chapter's two sentences on the LeNet-5 ablations of Fig. 2: whether S-APL-positive stays closer to
    ReLU than S-APL (:func:`relu_distance`, layer by layer), and whether S-APL-negative's ``m-`` in the last
    layer goes negative and comes back within half of its lowest value."""
    n = len(layer_names)
    if {"sapl", "sapl-positive"} <= set(variants):
        d = relu_distances({k: variants[k] for k in ("sapl", "sapl-positive")}, n)
        closer = int((d.loc["sapl-positive"] < d.loc["sapl"]).sum())
        fmt = lambda name: ", ".join(f"{v:.3f}" for v in d.loc[name])  # noqa: E731
        positive = (f"At the end of training S-APL-positive is within $d$ = {fmt('sapl-positive')} of ReLU "
                    f"({', '.join(layer_names)}), S-APL within {fmt('sapl')}: S-APL-positive stays closer to ReLU "
                    f"in {closer} of the {n} layers")
    else:
        positive = "S-APL-positive was not run at this profile"
    if "sapl-negative" in variants:
        neg = variants["sapl-negative"]
        ms = _negative_means(neg, -1)
        low = int(np.argmin(ms))
        back = ms.min() < 0 and abs(ms[-1]) <= abs(ms.min()) / 2
        negative = (f"in the fully connected layer S-APL-negative's $m_-$ is lowest, {ms.min():+.3f}, at "
                    f"{neg['snapshots'][low]['step'] / neg['steps']:.0%} of training and ends at {ms[-1]:+.3f} "
                    "(ReLU: 0), "
                    + ("back within half of its lowest value: it returns toward ReLU, as the paper says" if back else
                       "**not** back within half of its lowest value: it does not return toward ReLU as the paper "
                       "says"))
    else:
        negative = "S-APL-negative was not run at this profile"
    return positive, negative


def order_verdict(variants: Mapping, paper_order: Sequence[str] = ("sapl", "sapl-negative", "sapl-positive",
                                                                   "relu")) -> str:
    """Whether the final training losses of ``paper_order``'s variants fall in the paper's order (Fig. 3)."""
    if not set(paper_order) <= set(variants):
        return "cannot be set beside it: not all four of those variants were run at this profile"
    ours = [n for n in loss_order(variants) if n in paper_order]
    return "is the same order" if ours == list(paper_order) else "is a different order"


# --- Tables 5 and 6 --------------------------------------------------------------------------------------

def _hinge_counts(rows: Mapping) -> list[int]:
    S = sorted({int(k.split()[0][2:]) for k in rows if k.startswith("S=")})
    if not S:
        raise ValueError(f"expected rows named 'S=<n> <sharing>', got {sorted(rows)}")
    return S


def hinges_frame(rows: Mapping, paper: Mapping) -> pd.DataFrame:
    """Tables 5 and 6, MNIST row, from a stored ``hinges`` result's ``rows`` ('S=<n> shared', 'S=<n> per-neuron'
    and 'tanh' -> ``test_error``, ``added_parameters``, ``epoch_seconds``) beside the paper's (``paper``:
    :data:`symact.experiments.sapl.PAPER_TABLE5`), indexed by S: ``error_shared``, ``error_per`` (%),
    ``added_shared``, ``added_per``, ``time_shared`` (per epoch, as a ratio to tanh's) and the paper's
    ``paper_error_shared``, ``paper_error_per``, ``paper_added_shared``, ``paper_added_per``, ``paper_time``
    (its seconds over its tanh's 6 s), as printed there, None where the paper has no such row."""
    tanh = rows["tanh"]["epoch_seconds"]
    ours, theirs = {}, {}
    for S in _hinge_counts(rows):
        sh, pn = rows[f"S={S} shared"], rows[f"S={S} per-neuron"]
        ours[S] = {"hinges": 2 * S, "error_shared": 100 * sh["test_error"], "error_per": 100 * pn["test_error"],
                   "added_shared": sh["added_parameters"], "added_per": pn["added_parameters"],
                   "time_shared": sh["epoch_seconds"] / tanh}
        p = paper.get(2 * S)
        theirs[S] = _paper_columns(p, p and p[4] / 6)
    return _join(ours, theirs)


def _paper_columns(p, time) -> dict:
    """The paper's cells of a Table 5 row ``p`` (error shared, error per neuron, added shared, added per neuron,
    seconds), as printed there, and its time ratio ``time``; None everywhere when the paper has no such row."""
    names = ("paper_error_shared", "paper_error_per", "paper_added_shared", "paper_added_per")
    return {**dict(zip(names, p[:4] if p else (None,) * 4)), "paper_time": time if p else None}


def _join(ours: dict, theirs: dict) -> pd.DataFrame:
    """Our columns (numbers) beside the paper's (kept as printed there: object dtype, None where absent)."""
    cols = next(iter(theirs.values()))
    paper = pd.DataFrame({c: pd.Series({S: row[c] for S, row in theirs.items()}, dtype=object) for c in cols})
    return pd.DataFrame.from_dict(ours, orient="index").join(paper)


def _paper(v) -> str:
    """A cell of the paper's tables as printed there (``str``), 'n/a' where the paper has none (None or NaN)."""
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _paper_ratio(v) -> str:
    """The paper's time ratio to 2 decimals, 'n/a' where the paper has none."""
    return "n/a" if _paper(v) == "n/a" else number(v)


def hinges_markdown(df: pd.DataFrame, tanh_error: float) -> str:
    """:func:`hinges_frame` as the chapter's table, with the tanh row (``tanh_error``, a fraction) last."""
    rows = [[r.hinges, f"{number(r.error_shared)} / {_paper(r.paper_error_shared)}",
             f"{number(r.error_per)} / {_paper(r.paper_error_per)}",
             f"{r.added_shared}, {r.added_per} / {_paper(r.paper_added_shared)}, {_paper(r.paper_added_per)}",
             f"{number(r.time_shared)} / {_paper_ratio(r.paper_time)}"]
            for r in df.itertuples()]
    rows.append(["tanh", f"{number(100 * tanh_error)} / n/a", "", "0", "1 / 1"])
    return markdown_table(["hinges (2S)", "error % shared (ours / paper)", "error % per neuron (ours / paper)",
                           "added parameters shared, per neuron (ours / paper)",
                           "time per epoch, shared, vs tanh (ours / paper)"], rows)


def hinges_cifar10_frame(result: Mapping, paper5: Mapping, paper6: Mapping) -> pd.DataFrame:
    """Tables 5 and 6, CIFAR-10 row, from a stored ``hinges-cifar10`` result (``rows``: 'S=<n> shared',
    'S=<n> per-channel', 'tanh', 'maxout'; ``activation_units``) beside the paper's (``paper5``:
    :data:`~symact.experiments.sapl.PAPER_TABLE5_CIFAR10`, ``paper6``: ``PAPER_TABLE6_CIFAR10``), indexed by S:
    errors (%), added parameters (ours shared and per channel; ``added_per_unit``, what one set per unit of our
    network would add, counted), times per epoch as ratios to tanh's, and the paper's (its per-neuron error and
    count, which may be a string such as '>75k'; its time over its tanh's)."""
    rows = result["rows"]
    tanh = rows["tanh"]["epoch_seconds"]
    units = sum(result["activation_units"])
    ours, theirs = {}, {}
    for S in _hinge_counts(rows):
        sh, pc = rows[f"S={S} shared"], rows[f"S={S} per-channel"]
        ours[S] = {"hinges": 2 * S, "error_shared": 100 * sh["test_error"], "error_per": 100 * pc["test_error"],
                   "added_shared": sh["added_parameters"], "added_per_channel": pc["added_parameters"],
                   "added_per_unit": 2 * S * units, "time_shared": sh["epoch_seconds"] / tanh,
                   "time_per_channel": pc["epoch_seconds"] / tanh}
        p = paper5.get(2 * S)
        theirs[S] = _paper_columns(p, p and p[4] / paper6["tanh"])
    return _join(ours, theirs)


def hinges_cifar10_markdown(df: pd.DataFrame, result: Mapping, paper6: Mapping) -> str:
    """:func:`hinges_cifar10_frame` as the chapter's table, with tanh and maxout (their times as ratios to
    tanh's, ours and the paper's) last."""
    rows = [[r.hinges, f"{number(r.error_shared)} / {_paper(r.paper_error_shared)}",
             f"{number(r.error_per)} / {_paper(r.paper_error_per)}",
             f"{r.added_shared} / {_paper(r.paper_added_shared)}", f"{r.added_per_channel:,}",
             f"{r.added_per_unit:,} / {_paper(r.paper_added_per)}",
             f"{number(r.time_shared)} / {_paper_ratio(r.paper_time)}",
             number(r.time_per_channel)] for r in df.itertuples()]
    tanh = result["rows"]["tanh"]["epoch_seconds"]
    for name in ("tanh", "maxout"):
        r = result["rows"][name]
        rows.append([name, f"{number(100 * r['test_error'])} / n/a", "", "0", "", "",
                     f"{number(r['epoch_seconds'] / tanh)} / {number(paper6[name] / paper6['tanh'])}", ""])
    return markdown_table(["hinges (2S)", "error % shared (ours / paper)",
                           "error % per channel (ours) / per neuron (paper)", "added parameters shared (ours / paper)",
                           "per channel (ours)", "per unit (ours, counted) / per neuron (paper)",
                           "time per epoch vs tanh, shared (ours / paper)", "per channel (ours)"], rows)


def beyond_four(errs: Mapping[int, float], who: str) -> tuple[str, bool]:
    """How the error (``errs``: S -> error %) changes from S = 2 to 4 and from S = 4 to the best S > 4, and
    whether it falls up to S = 4 and less after it (the paper's "for S >= 4 the performance is not decreasing
    significantly", symmetric-apl.txt Appendix 8.1). Returns ``(sentence, stops)``."""
    if 2 not in errs or 4 not in errs or not any(S > 4 for S in errs):
        raise ValueError(f"beyond_four needs S = 2, 4 and some S > 4, got S = {sorted(errs)}")
    before, after = errs[4] - errs[2], min(errs[S] for S in errs if S > 4) - errs[4]
    stops = bool(before < 0 and after > before)
    verdict = ("it falls less beyond 8 hinges than up to them" if stops else
               "it falls as much or more beyond 8 hinges" if before < 0 else "it does not fall up to 8 hinges")
    return (f"{who} the error changes by {before:+.2f} points from 4 to 8 hinges and by {after:+.2f} from 8 hinges "
            f"to the best larger number ({verdict})", stops)


def hinges_cifar10_findings(df: pd.DataFrame, result: Mapping, paper5: Mapping, paper6: Mapping) -> dict[str, str]:
    """The chapter's three findings on Tables 5 and 6, CIFAR-10 row, from :func:`hinges_cifar10_frame`: ``four``
    (does the error stop falling at S = 4, ours and the paper's, :func:`beyond_four`), ``per`` (one set per channel
    against one shared set) and ``time`` (time per epoch against tanh and maxout, ours and the paper's)."""
    S_all = list(df.index)
    paper_S = sorted(h // 2 for h in paper5)
    if {2, 4} <= set(S_all) and max(S_all) > 4:
        ours = [beyond_four(df[col].to_dict(), f"{k}:") for col, k in (("error_shared", "shared"),
                                                                          ("error_per", "per-channel"))]
        agree = all(stops for _, stops in ours)
        theirs = [beyond_four({S: paper5[2 * S][i] for S in paper_S}, f"{k}:")[0]
                  for i, k in ((0, "shared"), (1, "per neuron"))]
        four = ("In our run, " + "; ".join(t for t, _ in ours) + ". In the paper, " + "; ".join(theirs) + ". "
                + ("Both of ours show the pattern of the paper's \"for S ≥ 4 the performance is not decreasing "
                   "significantly\", read as: the error falls less beyond S = 4 than up to it (one network per "
                   "cell: a pattern as measured, not a tested difference)." if agree else
                   "Ours does not show that pattern in both variants (one network per cell, as measured)."))
    else:
        four = (f"At this profile only S = {', '.join(map(str, S_all))} were run, so whether the error stops "
                "falling at S = 4 cannot be judged here.")
    lower = [S for S in S_all if df.loc[S, "error_per"] < df.loc[S, "error_shared"]]
    p_lower = sum(p[1] < p[0] for p in paper5.values())
    per = (f"One set per channel gives a lower error than one shared set for {len(lower)} of the {len(S_all)} "
           f"values of S ({', '.join(f'S = {S}' for S in lower) or 'none'}); in the paper one set per neuron is "
           f"lower for {p_lower} of {len(paper5)}.")
    rows, tanh = result["rows"], result["rows"]["tanh"]["epoch_seconds"]
    sh_ratio, pc_ratio = list(df["time_shared"]), list(df["time_per_channel"])
    mx = rows["maxout"]["epoch_seconds"] / tanh
    p_ratio = {2 * S: paper5[2 * S][4] / paper6["tanh"] for S in paper_S}
    p_not = [h for h, r in p_ratio.items() if r <= 1]
    p_mx = paper6["maxout"] / paper6["tanh"]
    time = (f"A shared S-APL network takes {min(sh_ratio):.2f} to {max(sh_ratio):.2f} times tanh's time per epoch "
            f"(one set per channel: {min(pc_ratio):.2f} to {max(pc_ratio):.2f}) and maxout {mx:.2f} times: the "
            f"shared S-APL is faster than maxout for {sum(r < mx for r in sh_ratio)} of the {len(S_all)} values of "
            f"S and slower than tanh for {sum(r > 1 for r in sh_ratio)}. The paper's ratios are "
            f"{min(p_ratio.values()):.2f} to {max(p_ratio.values()):.2f}, maxout {p_mx:.2f}: faster than maxout "
            f"for {sum(r < p_mx for r in p_ratio.values())} of five, slower than tanh for "
            f"{len(p_ratio) - len(p_not)}; its claim that S-APL \"is slightly slower than Tanh\" does not hold in "
            f"its own CIFAR-10 row for {' and '.join(map(str, p_not)) or 'no'} hinges.")
    return {"four": four, "per": per, "time": time}


# --- Tables 2 to 4 ---------------------------------------------------------------------------------------

def rate_ci(row: Mapping) -> str:
    """An attack row's success rate and Wilson interval in %, to whole points: '45 [35, 55]'."""
    lo, hi = row["interval"]
    return f"{100 * row['success_rate']:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def confidence_gap(row: Mapping) -> str:
    """The paper's avg |Z_true - Z_adv| of an attack row to 3 decimals, 'n/a' when nothing was fooled."""
    return "n/a" if row["confidence_gap"] is None else f"{row['confidence_gap']:.3f}"


def pooled_gap(rows: Iterable[Mapping]) -> float | None:
    """avg |Z_true - Z_adv| over the fooled images of several attacks of the same images: the rows' gaps
    weighted by their success rates (None when no row has a gap)."""
    w = [(r["success_rate"], r["confidence_gap"]) for r in rows if r["confidence_gap"] is not None]
    total = sum(a for a, _ in w)
    return None if not w or total == 0 else sum(a * g for a, g in w) / total


def paper_value(value) -> str:
    """A number of the paper's tables as printed there: rates in % (ints as is), gaps to three decimals."""
    return "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


T2_HEADER = ["activation", "images", "1 pixel", "3 pixels", "5 pixels", "avg abs(Z_true - Z_adv)",
             "paper: 1 pixel", "paper: 3", "paper: 5", "paper: avg"]
T4_HEADER = ["activation", "images", "CW-L2", "avg abs(Z_true - Z_adv)", "paper: CW-L2", "paper: avg"]


def t3_header(fgsm_eps: Sequence[float]) -> list[str]:
    """Table 3's header for the FGSM epsilons ``fgsm_eps``."""
    return (["activation", "images"] + [f"eps {e}" for e in fgsm_eps] + ["avg abs(Z_true - Z_adv), eps 0.04"]
            + [f"paper: {e}" for e in fgsm_eps] + ["paper: avg"])


def table2_cells(s: Mapping, paper_row: Sequence, pixels: Sequence[int]) -> list[str]:
    """Table 2's cells for one image set ``s``: the one-, three- and five-pixel success rates, the gap pooled over
    them (:func:`pooled_gap`), and the paper's row."""
    rows = [s["onepixel"][str(k)] for k in pixels]
    g = pooled_gap(rows)
    return [rate_ci(r) for r in rows] + ["n/a" if g is None else f"{g:.3f}"] + [paper_value(v) for v in paper_row]


def table3_cells(s: Mapping, paper_row: Sequence, fgsm_eps: Sequence[float]) -> list[str]:
    """Table 3's cells: FGSM success rates at every epsilon, the gap at 0.04, the paper's row."""
    return ([rate_ci(s["fgsm"][str(e)]) for e in fgsm_eps] + [confidence_gap(s["fgsm"]["0.04"])]
            + [paper_value(v) for v in paper_row])


def table4_cells(s: Mapping, paper_row: Sequence) -> list[str]:
    """Table 4's cells: the CW-L2 success rate and gap, the paper's."""
    rate, g = paper_row
    return [rate_ci(s["cw"]), confidence_gap(s["cw"]), paper_value(rate), paper_value(g)]


def strong_cells(s: Mapping) -> list[str]:
    """The strong-attack cells: images attacked, FGSM at 0.04, PGD, the cascade and robust accuracy under it."""
    return [f"{s['n_strong']:,}", rate_ci(s["fgsm"]["0.04"]), rate_ci(s["pgd"]), rate_ci(s["autoattack"]),
            f"{100 * s['autoattack']['robust_acc']:.0f}"]


def strong_header(cfg, aa_short: str) -> list[str]:
    """The strong-attack table's header for a robustness config (``pgd_steps``, ``pgd_restarts``) and the
    cascade's short name."""
    return ["activation", "images", "images attacked", "FGSM eps 0.04",
            f"PGD-{cfg.pgd_steps} x{cfg.pgd_restarts}, 8/255",
            f"{aa_short}, 8/255", f"robust accuracy under {aa_short} (%)"]


def robustness_table(header: Sequence[str], cells: Callable, by_act: Mapping) -> pd.DataFrame:
    """One row per image set and activation of ``by_act`` (activation -> image sets, as stored in a robustness
    result's ``sets``: size -> set with ``clean_acc``), smallest set first: ``activation`` (its name in
    :data:`ACT_NAMES`), ``images`` ('100 (49 correct)') and ``cells(act, image_set)`` under the rest of
    ``header``."""
    rows = []
    for n in sorted({int(n) for sets in by_act.values() for n in sets}):
        for act, sets in by_act.items():
            s = sets.get(str(n))
            if s is not None:
                row = [ACT_NAMES.get(act, act), f"{n:,} ({round(s['clean_acc'] * n)} correct)", *cells(act, s)]
                if len(row) != len(header):
                    raise ValueError(f"cells gave {len(row) - 2} cells, the header has {len(header) - 2} after "
                                     "activation and images")
                rows.append(row)
    return pd.DataFrame(rows, columns=list(header))


def robustness_table_markdown(df: pd.DataFrame) -> str:
    """:func:`robustness_table` in Markdown."""
    return markdown_table(df.columns, df.values.tolist(), align="l" * len(df.columns))


def rows_by_attack(s: Mapping, cfg, aa_name: str) -> dict:
    """An image set's attack rows by the names the chapter's sentences use: '<k>-pixel DE', 'FGSM at <eps>',
    'CW-L2', 'PGD-<steps>' and the cascade's name ``aa_name``."""
    out = {f"{k}-pixel DE": s["onepixel"][str(k)] for k in cfg.pixels}
    out.update({f"FGSM at {e}": s["fgsm"][str(e)] for e in cfg.fgsm_eps})
    out.update({"CW-L2": s["cw"], f"PGD-{cfg.pgd_steps}": s["pgd"], aa_name: s["autoattack"]})
    return out


def lowest(by_act: Mapping, attack: str) -> tuple[str, ...]:
    """The activations with the lowest success rate under ``attack`` (``by_act``: activation -> attack name -> row;
    all of them when all are equal)."""
    rates = {act: rows[attack]["success_rate"] for act, rows in by_act.items()}
    return tuple(act for act, r in rates.items() if r == min(rates.values()))


def tally(judgements) -> str:
    """'**word** for k' over verdicts (:func:`symact.experiments.verdicts.count_words`), joined by commas."""
    from symact.experiments import verdicts as vd

    return ", ".join(f"**{w}** for {k}" for w, k in vd.count_words(judgements).items())


def attack_keys(cfg, aa_name: str) -> dict[str, str]:
    """The stored key (as :func:`symact.experiments.verdicts.sapl_robustness` takes it) of every attack named as
    :func:`rows_by_attack` names it: '1-pixel DE' -> 'onepixel/1', 'FGSM at 0.04' -> 'fgsm/0.04', ..."""
    return {**{f"{k}-pixel DE": f"onepixel/{k}" for k in cfg.pixels},
            **{f"FGSM at {e}": f"fgsm/{e}" for e in cfg.fgsm_eps},
            "CW-L2": "cw", f"PGD-{cfg.pgd_steps}": "pgd", aa_name: "autoattack"}


def judge_attack(results: Mapping, attack: str, images, keys: Mapping[str, str], other: str = "relu",
                 attack_name: str | None = None):
    """The verdict on S-APL's success rate minus ``other``'s under ``attack`` (a name of ``keys``, from
    :func:`attack_keys`) on the image set ``images``, against the paper's difference
    (:func:`symact.experiments.verdicts.sapl_robustness`; ``results``: activation -> stored robustness result);
    ``attack_name`` is how the sentence names the attack (default ``attack``)."""
    from symact.experiments import verdicts as vd

    if attack not in keys:
        raise ValueError(f"unknown attack {attack!r}; expected one of {list(keys)}")
    key = keys[attack]
    return vd.sapl_robustness(results["sapl"], results[other], key, images, paper_a=vd.sapl_paper_rate("sapl", key),
                              paper_b=vd.sapl_paper_rate(other, key), names=("S-APL", ACT_NAMES.get(other, other)),
                              attack_name=attack_name or attack)


def not_lowest_sentence(lows: Mapping[str, tuple], n_acts: int, judge: Callable) -> str:
    """The attacks under which S-APL is not alone lowest or tied lowest with fewer than all, grouped by the
    activation(s) that are lowest (``lows``: attack -> :func:`lowest`, ``n_acts`` activations in all), each group
    with the verdicts ``judge(attack, activation)`` of S-APL against it (:func:`tally`)."""
    by_lowest = {}
    for a, tied in lows.items():
        if not ("sapl" in tied and len(tied) < n_acts):
            by_lowest.setdefault(tied, []).append(a)
    others = []
    for tied, attacks in by_lowest.items():
        if len(tied) == n_acts:
            others.append(f"all four are equal under {', '.join(attacks)}")
            continue
        js = [judge(a, t) for a in attacks for t in tied]
        one = len(tied) == 1
        others.append(f"{' and '.join(ACT_NAMES.get(t, t) for t in tied)} {'is' if one else 'are'} lowest under "
                      f"{', '.join(attacks)} (S-APL against {'it' if one else 'them'}: {tally(js)})")
    return ("Of the other attacks: " + "; ".join(others)) if others else "S-APL is lowest under every one of them"


def underfit_sentence(overview: pd.DataFrame) -> str:
    """Which networks of :func:`symact.experiments.sapl.robustness_overview` are underfit (its ``underfit``
    column), with their last training loss against the others' range."""
    uf = [a for a in overview.index if overview.loc[a, "underfit"]]
    if not uf:
        return "Every network reaches a training loss within a factor 3 of the others'"
    fit = [overview.loc[a, "train_loss"] for a in overview.index if a not in uf]
    return (f"The {' and '.join(ACT_NAMES.get(a, a) for a in uf)} network is underfit: its last training loss is "
            + ", ".join(f"{overview.loc[a, 'train_loss']:.2f}" for a in uf)
            + f" against {min(fit):.2f} to {max(fit):.2f} for the others (the same recipe and epochs), so its "
            "success rates compare a less trained network, not only another activation; the seeded paper run "
            "(next section) trains it again")


def counting_sentence(sets: Mapping[str, Mapping], paper1: Mapping[str, int]) -> str:
    """What the one-pixel rates on the paper's image set (``sets``: activation -> that image set) would be with
    every image misclassified before any attack counted as fooled (:func:`one_pixel_counted`), beside the paper's
    (``paper1``: activation -> its Table 2 one-pixel rate, %), and the ReLU - S-APL gap both ways."""
    counted = {a: one_pixel_counted(s) for a, s in sets.items()}
    n = next(iter(sets.values()))["n"]
    closer = [ACT_NAMES.get(a, a) for a in sets if abs(counted[a][1] - paper1[a]) < abs(counted[a][0] - paper1[a])]
    closer = ", ".join(closer[:-1]) + " and " + closer[-1] if len(closer) > 1 else "".join(closer)
    gaps = [counted["relu"][i] - counted["sapl"][i] for i in (1, 0)]
    return (f"If an image the network misclassifies before any attack counted as a successful attack, our one-pixel "
            f"rates on the paper's {int(n):,} images would be "
            + ", ".join(f"{ACT_NAMES.get(a, a)} {counted[a][1]:.0f} %" for a in sets)
            + " (the paper: " + ", ".join(f"{ACT_NAMES.get(a, a)} {paper1[a]}" for a in sets) + "). "
            + (f"That counting brings {closer} closer to the paper" if closer else
               "That counting brings no activation closer to the paper")
            + f"; the gap between ReLU and S-APL would be {gaps[0]:.0f} points ({gaps[1]:.0f} as we count) against "
            f"the paper's {paper1['relu'] - paper1['sapl']}")


def one_pixel_counted(s: Mapping) -> tuple[float, float]:
    """One-pixel success on an image set, in %, counted two ways: of the correctly classified images only (ours,
    as Su et al.'s code), and with every image misclassified before any attack counted as fooled."""
    rate, acc = s["onepixel"]["1"]["success_rate"], s["clean_acc"]
    return 100 * rate, 100 * (rate * acc + 1 - acc)


# --- Fig. 4 ----------------------------------------------------------------------------------------------

def tsne_frame(activations: Mapping) -> pd.DataFrame:
    """The separation scores of a stored ``tsne`` result (activation -> ``test_acc``, ``draws`` with ``tsne`` and
    ``logits`` scores, ``logits_all``), indexed by activation: ``test_acc`` (%), then for each of ``tsne`` and
    ``logits`` the mean and sample standard deviation over the draws of ``silhouette`` and ``knn`` (%; standard
    deviation NaN for one draw), and ``all_silhouette``, ``all_knn`` (%) on every image."""
    rows = {}
    for act, r in activations.items():
        row = {"test_acc": 100 * r["test_acc"]}
        for space in ("tsne", "logits"):
            for metric, scale in (("silhouette", 1), ("knn", 100)):
                v = scale * np.array([d[space][metric] for d in r["draws"]], dtype=float)
                row[f"{space}_{metric}"] = v.mean()
                row[f"{space}_{metric}_sd"] = v.std(ddof=1) if v.size > 1 else np.nan
        row["all_silhouette"] = r["logits_all"]["silhouette"]
        row["all_knn"] = 100 * r["logits_all"]["knn"]
        rows[act] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def tsne_markdown(activations: Mapping, n_all: int) -> str:
    """:func:`tsne_frame`'s scores as the chapter's table: mean ± standard deviation over the draws
    (:func:`symact.report.mean_sd`), and the scores on all ``n_all`` images."""
    df = tsne_frame(activations)
    rows = []
    for act, r in activations.items():
        draws = r["draws"]

        def cell(space, metric, scale=1, digits=3):
            return mean_sd([d[space][metric] for d in draws], digits, scale)
        rows.append([ACT_NAMES.get(act, act), number(df.loc[act, "test_acc"]), cell("tsne", "silhouette"),
                     cell("tsne", "knn", 100, 1), cell("logits", "silhouette"), cell("logits", "knn", 100, 1),
                     number(df.loc[act, "all_silhouette"], 3), number(df.loc[act, "all_knn"], 1)])
    return markdown_table(["activation", "test accuracy (%)", "t-SNE plane: silhouette", "t-SNE plane: k-NN (%)",
                           "logits, same images: silhouette", "logits, same images: k-NN (%)",
                           f"logits, all {n_all:,} images: silhouette", "k-NN (%)"], rows)


def tsne_wins(relu: Mapping, sapl: Mapping, space: str, metric: str) -> int:
    """Draws in which S-APL's score beats ReLU's (draw by draw: the same images for both)."""
    if len(relu["draws"]) != len(sapl["draws"]):
        raise ValueError(f"the two runs have {len(relu['draws'])} and {len(sapl['draws'])} draws: not paired")
    return int(sum(s[space][metric] > r[space][metric] for r, s in zip(relu["draws"], sapl["draws"])))


def tsne_mean(run: Mapping, space: str, metric: str) -> float:
    """The mean of one score over a run's draws."""
    return float(np.mean([d[space][metric] for d in run["draws"]]))
