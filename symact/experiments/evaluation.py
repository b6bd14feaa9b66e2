"""Experiments of the Adversarial evaluation chapter: one model, every attack of symact.attacks; and the helpers
that turn other chapters' stored results into the chapter's case studies (:func:`shown`, :func:`saf_attacks`,
:func:`sapl_attacks`, :func:`fat_runs`, :func:`autoattack_breakdown`, :func:`near_threshold`)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from symact import attacks, data, models
from symact.device import seed_everything
from symact.evaluation import evaluate
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["LEADERBOARD_COLUMNS", "PUBLISHED", "SAF_ATTACKS", "SuiteConfig", "WONG_ANCHORS", "attack_suite",
           "autoattack_breakdown", "cascade_name", "fat_runs", "leaderboard_display", "leaderboard_reading",
           "leaderboard_view", "near_threshold", "plot_leaderboard", "protocol_rows", "protocol_table",
           "relu_verdicts", "saf_attacks", "sapl_attacks", "shown", "sortable_html"]


@dataclass(frozen=True)
class SuiteConfig:
    """LeNet-5 on MNIST (standard training), attacked at one L-infinity budget by every attack.

    FGSM (single step), PGD with restarts (step eps/4), AutoAttack (standard), Square
    (black-box, score-based) and CW-L2 (an L2 attack: its budget is unbounded, so only its
    success rate and median L2 norm are comparable). ``autoattack`` names the cascade: ``"autoattack"``,
    the authors' 100-iteration AutoAttack, or ``"cascade-10"``, torchattacks' 10-iteration defaults, which
    the stored quick result ran.
    """

    n_train: int | None = None
    epochs: int = 2
    n_test: int = 500
    eps: float = 0.1
    pgd_steps: int = 50
    pgd_restarts: int = 3
    square_queries: int = 1000
    cw_steps: int = 100
    autoattack: str = "autoattack"
    seed: int = 0


@experiment(
    "evaluation",
    "attack-suite",
    {
        "smoke": SuiteConfig(n_train=2000, epochs=1, n_test=32, pgd_steps=5, pgd_restarts=2, square_queries=50, cw_steps=5),
        "quick": SuiteConfig(autoattack="cascade-10"),
        "paper": SuiteConfig(epochs=20, n_test=10000, square_queries=5000),
    },
)
def attack_suite(cfg: SuiteConfig) -> dict:
    """Robust accuracy of one standard LeNet-5 under each attack of the toolkit."""
    seed_everything(cfg.seed)
    model = models.LeNet5("mnist")
    train(model, data.load("mnist").head(cfg.n_train), TrainConfig(epochs=cfg.epochs, lr=0.05, schedule="cosine", seed=cfg.seed))
    test = data.load("mnist", train=False).head(cfg.n_test)
    suite = {
        "FGSM": attacks.make_attack("fgsm", model, eps=cfg.eps),
        f"PGD-{cfg.pgd_steps} x{cfg.pgd_restarts}": attacks.make_attack(
            "pgd", model, eps=cfg.eps, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts
        ),
        # the key is the result's layout; tables name the cascade from the config (evaluation.cascade_label)
        "AutoAttack": attacks.make_attack(cfg.autoattack, model, eps=cfg.eps, seed=cfg.seed),
        "Square": attacks.make_attack("square", model, eps=cfg.eps, n_queries=cfg.square_queries, seed=cfg.seed),
        "CW-L2": attacks.make_attack("cw", model, steps=cfg.cw_steps),
    }
    rows = {name: evaluate(model, test, atk) for name, atk in suite.items()}
    return {"data": test.description, "n_test": len(test), "eps": cfg.eps, "attacks": rows}


# --------------------------------------------------------------------------- the chapter's case studies
#
# The first half of the chapter ("How to evaluate robustness") reads stored results of other chapters and never
# runs an experiment: the helpers below turn those results into the numbers and tables it shows.

#: Published numbers the chapter cites beside ours (never measured here): k-WTA (Xiao, Zhong and Zheng, ICLR
#: 2020), its adversarially trained CIFAR-10 ResNet-18 as RobustBench lists it, under AutoAttack and under the
#: adaptive attack of Tramer et al. (NeurIPS 2020; PGD on a margin loss with gradients averaged over
#: Gaussian-perturbed copies of the input). Source: ../shared/papers/kaf-thesis-results.md, "Related numbers".
PUBLISHED = {
    "kwta_robustbench_autoattack": 18.50,  # % robust accuracy, eps 8/255, RobustBench's AutoAttack entry
    "kwta_tramer_adaptive": 0.16,  # % robust accuracy under Tramer et al.'s adaptive attack (RobustBench note)
}


def shown(exp):
    """The stored result the book shows for ``exp`` without running anything: the fresh ``paper`` result, else
    the fresh ``quick`` one, else ``None`` (missing or stale). Unlike calling ``exp()``, never trains or attacks,
    whatever ``SYMACT_PROFILE`` says: the chapter that reads it cites other chapters' results and must not
    compute them again."""
    for prof in ("paper", "quick"):
        res = exp.stored(prof)
        if res is not None:
            return res
    return None


def cascade_name(res) -> str:
    """The cascade a stored result ran, as a sentence names it: "AutoAttack" only where it was the official
    100-iteration cascade (:func:`symact.evaluation.cascade_label`), else "the 10-iteration cascade (not
    AutoAttack)"."""
    from symact.attacks import attack_label
    from symact.evaluation import cascade_label

    return "AutoAttack" if cascade_label(res) == attack_label("autoattack") else \
        "the 10-iteration cascade (not AutoAttack)"


_PROTOCOL_NETWORKS = {"LeNet5": "LeNet-5 (batch norm before every activation)",
                      "VGGInspired": "the KAF thesis's VGG-inspired network"}


def _budget(p, eps: float) -> str:
    return f"{eps:.3g}" if p.dataset == "mnist" else f"{round(eps * 255)}/255"


def protocol_rows(p) -> dict:
    """The leaderboard protocol :class:`symact.benchmark.Protocol` ``p`` in words, keyed by what the chapter's
    table names (network, budget, FGSM start, epochs and batch, optimiser, augmentation, seeds, the images each
    evaluation runs on, the curve's budgets): MNIST budgets as numbers, CIFAR-10's in 255ths."""
    if p.network not in _PROTOCOL_NETWORKS:
        raise ValueError(f"expected a protocol whose network is one of {tuple(_PROTOCOL_NETWORKS)}, got {p.network!r}")
    return {"network": _PROTOCOL_NETWORKS[p.network], "L-inf budget eps": _budget(p, p.eps),
            "FGSM start": f"uniform, {p.start}", "epochs, batch": f"{p.epochs}, {p.batch_size}",
            "optimiser": (f"SGD, momentum {p.momentum}, weight decay {p.weight_decay}" if p.optimizer == "sgd"
                          else "Adam, no weight decay"),
            "augmentation": "random crop (4 px) and flip" if p.augment else "none",
            "seeds": ", ".join(map(str, p.seeds)),
            "AutoAttack, Square, PGD, transfer, curve on": f"first {p.n_eval:,} test images",
            "curve over eps": ", ".join(_budget(p, e) for e in p.curve_eps),
            "FAB distances and sanity checks on": f"first {p.n_extra:,} test images",
            "clean accuracy on": ("all 10,000 test images" if p.n_clean is None else
                                  f"first {p.n_clean:,} test images")}


def protocol_table(protocols: dict) -> "pd.DataFrame":
    """The protocols ``{dataset: Protocol}`` side by side (:func:`protocol_rows`): one column per data set, named
    as the chapter writes it ("MNIST", "CIFAR-10 (JPEG copy)"), one row per item."""
    import pandas as pd

    names = {"mnist": "MNIST", "cifar10": "CIFAR-10 (JPEG copy)"}
    return pd.DataFrame({names.get(ds, ds): protocol_rows(p) for ds, p in protocols.items()})


def near_threshold(images: torch.Tensor, eps: float, threshold: float = 0.5) -> float:
    """The fraction of pixels within ``eps`` of ``threshold``: ``mean(|x - threshold| <= eps)``.

    A network that first binarises its input at ``threshold`` can change its input only where a pixel is
    this close to it, so on near-binary images (MNIST) the fraction bounds what an L-infinity attack of
    budget ``eps`` can do to such a network. ``images``: pixels in [0, 1] (float) or ``uint8`` in [0, 255].

    Example:
        >>> near_threshold(torch.tensor([0.0, 0.45, 0.5, 1.0]), 0.1)
        0.5
    """
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if not isinstance(images, torch.Tensor) or images.numel() == 0:
        raise ValueError("images must be a non-empty tensor of pixels (float in [0, 1] or uint8)")
    x = images.double() / 255 if images.dtype == torch.uint8 else images.double()
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"pixels must lie in [0, 1] (or be uint8), got the range [{x.min():.3g}, {x.max():.3g}]")
    return float(((x - threshold).abs() <= eps + 1e-12).double().mean())


#: the SAF chapter's strong attacks (saf.strong_eval), in the order the chapter's table shows them
SAF_ATTACKS = ("eq10", "pgd", "pgd-ce", "autoattack", "square", "worst")


def saf_attacks(res) -> "pd.DataFrame":
    """One row per epsilon of a stored SAF robust-CNN result (``symact.experiments.saf.robust_run``): the
    accuracy under each strong attack (:data:`SAF_ATTACKS`: ``eq10`` the paper's one step, clipped; ``pgd`` on
    the training loss; ``pgd-ce`` on the cross-entropy of the normalised confidences; ``autoattack`` the cascade
    the result's config names; ``square``; ``worst`` per image over all of them), the fraction decided as a
    wrong *real* class (``wrong:<attack>``, not nonsense) and the images each ran on (``n:<attack>``). Attacks a
    result did not run are NaN."""
    import pandas as pd

    st = res["strong"]
    rows = []
    for eps in st["eps"]:
        r = st[str(eps)]
        row = {"eps": float(eps), "clean": st["clean_acc"]}
        for name in SAF_ATTACKS:
            e = r.get(name)
            row[name] = e["acc"] if e else math.nan
            row[f"wrong:{name}"] = e.get("wrong_class", math.nan) if e else math.nan
            row[f"n:{name}"] = e["n"] if e else 0
        rows.append(row)
    return pd.DataFrame(rows).set_index("eps")


def sapl_attacks(rob: dict, images: str | None = None) -> "pd.DataFrame":
    """One row per activation of the S-APL chapter's robustness results (``rob``: activation -> stored
    ``symact.experiments.sapl.robustness_run`` result) on the image set ``images`` (default the largest all
    share): ``clean``, ``correct`` (the correctly classified images, the success rates' denominator), the FGSM
    success rate at each of its budgets (``fgsm@<eps>``) with its Wilson interval (``fgsm@<eps>:lo``/``:hi``),
    and the success rates under PGD (``pgd``) and the cascade (``autoattack``, the one the result's config
    names), with their intervals."""
    import pandas as pd

    if not rob:
        raise ValueError("sapl_attacks needs at least one stored result")
    sets = set.intersection(*(set(r["sets"]) for r in rob.values()))
    if images is None:
        if not sets:
            raise ValueError("the results share no image set")
        images = max(sets, key=int)
    elif str(images) not in sets:
        raise ValueError(f"image set {images!r} is not in every result (shared: {sorted(sets, key=int)})")
    rows = []
    for act, res in rob.items():
        s = res["sets"][str(images)]
        row = {"activation": act, "images": int(images), "clean": s["clean_acc"]}
        entries = {f"fgsm@{e}": v for e, v in s["fgsm"].items()}
        entries.update(pgd=s["pgd"], autoattack=s["autoattack"])
        for key, v in entries.items():
            row[key] = v["success_rate"]
            row[f"{key}:lo"], row[f"{key}:hi"] = v["interval"]
        row["correct"] = s["pgd"]["correct"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


def fat_runs(fat) -> "pd.DataFrame":
    """One row per network of a stored ``symact.experiments.fundamentals.fat_mnist_wong`` result: ``start``,
    ``seed``, ``fgsm_train`` (accuracy on the FGSM examples it trained on in its last epoch), ``check`` (PGD-5
    accuracy on 512 training images after the last epoch, the early-stop check of Wong et al.), ``clean`` and
    ``pgd`` (test images, PGD with restarts), sorted by start and seed."""
    import pandas as pd

    rows = [{"start": r["start"], "seed": r["seed"], "fgsm_train": r["history"]["train_acc"][-1],
             "check": r["history"]["check_robust_acc"][-1], "clean": r["clean_acc"], "pgd": r["pgd_acc"]}
            for r in fat["runs"]]
    return pd.DataFrame(rows).sort_values(["start", "seed"]).reset_index(drop=True)


def autoattack_breakdown(check: dict) -> "pd.DataFrame":
    """Which component of :class:`symact.attacks.AutoAttack` broke each image, from the stored
    ``results/benchmarks/autoattack_check.json`` (``benchmarks/autoattack_check.py``): one row per network with
    ``description``, ``eps``, ``n``, the images each component broke first (``apgd-ce``, ``apgd-t``, ``fab-t``,
    ``square``: counts of :attr:`~symact.attacks.AutoAttack.last_broken_by`), ``robust`` (no component broke
    it), ``misclassified`` (wrong before the attack, not attacked) and the seconds each component ran
    (``seconds:<component>``)."""
    import pandas as pd

    from symact.attacks import AUTOATTACK_COMPONENTS, MISCLASSIFIED, ROBUST

    rows = []
    for r in check["rows"]:
        d = check["details"][r["network"]]
        codes = list(d["ours_broken_by"])
        if len(codes) != r["n"]:
            raise ValueError(f"{r['network']}: {len(codes)} per-image codes for {r['n']} images")
        row = {"network": r["network"], "description": d["description"], "eps": r["eps"], "n": r["n"]}
        row.update({c: codes.count(k) for k, c in enumerate(AUTOATTACK_COMPONENTS)})
        row.update(robust=codes.count(ROBUST), misclassified=codes.count(MISCLASSIFIED))
        row.update({f"seconds:{c}": s for c, s in d.get("ours_component_seconds", {}).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("network")


# --------------------------------------------------------------------------- the second half: the leaderboard
#
# The second half of the chapter applies one protocol to every activation (symact.benchmark). It too reads only
# stored results: the rows are long runs of their own (python -m symact run benchmark/<dataset>-<row>).

#: Published numbers for the protocol's recipe (Wong, Rice and Kolter 2020, "Fast is better than free"), beside
#: our ReLU rows; ../shared/papers/anchors.md, "Fast adversarial training". Percent robust accuracy, L-infinity.
WONG_ANCHORS = {
    "cifar10": {"network": "PreAct ResNet-18 (ReLU)", "eps": "8/255", "epochs": 15, "clean": 83.34,
                "reported": 46.06, "reported_attack": "PGD-50x10", "autoattack": 43.21,
                "source": "RobustBench entry Wong2020Fast"},
    "mnist": {"network": "their MNIST CNN (ReLU)", "eps": "0.3", "epochs": 10, "clean": 98.50, "reported": 88.77,
              "reported_attack": "PGD-50x10", "autoattack": 82.93,
              "source": "the AutoAttack repository's table (RobustBench keeps no MNIST leaderboard)"},
}

#: the leaderboard's columns as the chapter shows them: (column of symact.benchmark.leaderboard, header)
LEADERBOARD_COLUMNS = (("row", "activation"), ("status", "status"), ("seeds", "seeds"), ("clean", "clean acc. (%)"),
                       ("robust", "worst-case robust acc. (%)"), ("autoattack_mean", "AutoAttack alone (%)"),
                       ("apgd_ce_mean", "APGD-CE alone (%)"), ("pgd_mean", "PGD alone (%)"),
                       ("square_mean", "Square alone (%)"),
                       ("linf_median", "median L-inf distance"), ("l2_median", "median L2 distance"),
                       ("vs_relu_robust", "robust vs ReLU"), ("vs_relu_clean", "clean vs ReLU"),
                       ("sanity_failed", "sanity checks failed"), ("early_stopped", "early stops"),
                       ("epoch_seconds", "s / epoch"), ("params_added", "parameters added"),
                       ("adaptive", "adaptive attacks"), ("note", "note"))


def leaderboard_view(dataset: str, profiles: tuple[str, ...] = ("paper", "quick")):
    """``(table, profile)``: :func:`symact.benchmark.leaderboard` of every registered row of ``dataset`` at the
    first profile of ``profiles`` at which any row has a stored result (complete, or the finished seeds of an
    unfinished run), with the rows not stored there listed last (``seeds`` "0/?"); ``(table of unrun rows,
    None)`` when no row is stored at any of them. Runs nothing."""
    from symact import benchmark

    for prof in profiles:
        stored = benchmark.stored_rows(dataset, prof)
        if any(v is not None for v in stored.values()):
            return benchmark.leaderboard(stored), prof
    return benchmark.leaderboard(benchmark.stored_rows(dataset, profiles[0])), None


def _mean_sd(mean, sd) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{100 * mean:.1f}" + ("" if sd is None or math.isnan(sd) else f" ± {100 * sd:.1f}")


def leaderboard_display(table) -> "pd.DataFrame":
    """The leaderboard as the chapter shows it: accuracies in percent as "mean ± sd" over seeds, distances to 3
    decimals, "n/a" where a row has no stored result, the headers of :data:`LEADERBOARD_COLUMNS`."""
    import pandas as pd

    def num(v, fmt):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    out = []
    for r in table.to_dict("records"):
        def get(k):  # rows of unrun activations lack most keys (NaN in the table)
            v = r.get(k)
            return None if isinstance(v, float) and math.isnan(v) else v

        out.append({"row": r["row"], "status": get("status") or "", "seeds": r["seeds"],
                    "clean": _mean_sd(get("clean_mean"), get("clean_sd")),
                    "robust": _mean_sd(get("robust_mean"), get("robust_sd")),
                    **{k: num(None if get(k) is None else 100 * get(k), ".1f")
                       for k in ("autoattack_mean", "apgd_ce_mean", "pgd_mean", "square_mean")},
                    "linf_median": num(get("linf_median"), ".3f"), "l2_median": num(get("l2_median"), ".3f"),
                    "vs_relu_robust": get("vs_relu_robust") or "", "vs_relu_clean": get("vs_relu_clean") or "",
                    "sanity_failed": get("sanity_failed") or ("" if get("clean_mean") is not None else "n/a"),
                    "early_stopped": num(get("early_stopped"), ".0f"),
                    "epoch_seconds": num(get("epoch_seconds"), ".0f"),
                    "params_added": num(get("params_added"), ".0f"), "adaptive": get("adaptive") or "",
                    "note": get("note") or ""})
    cols = dict(LEADERBOARD_COLUMNS)
    return pd.DataFrame(out, columns=list(cols)).rename(columns=cols)


#: how many points Square alone may leave robust below PGD alone before the reading calls the gap out (a
#: score-based attack that sees only outputs should not beat a white-box one: Carlini et al. 2019)
MASKING_GAP = 0.05


def leaderboard_reading(table, relu: str = "relu", rows: Iterable[str] | None = None) -> str:
    """The leaderboard in words (Markdown, one paragraph per stored row, ReLU's first): clean and worst-case
    accuracy (mean ± sd over seeds), AutoAttack, PGD and Square alone, the verdict words against ReLU, and two
    warnings, each only where the numbers show it:

    - gradient masking: Square alone leaves at least :data:`MASKING_GAP` fewer images robust than PGD alone, or
      a sanity check failed (named with the seeds it failed on); where APGD-CE alone does better than Square
      (``apgd_ce_mean``, and per image :func:`symact.benchmark.black_box_vs_apgd`), it says that PGD's fixed step
      fails, not the gradient, and it names the seeds on which Square beats even APGD-CE (``apgd_failed``);
    - catastrophic overfitting the early stop did not catch: seeds whose network classified its FGSM training
      images better than clean test images (``fgsm_above_clean`` of :func:`symact.benchmark.leaderboard_row`),
      with the PGD-5 check's reading at the epoch kept.

    A row without all its seeds says so and gets no verdict. ``table``: :func:`symact.benchmark.leaderboard`
    (or :func:`leaderboard_view`'s table); rows without a stored result are left out, and so are rows not in
    ``rows`` when it is given."""
    from symact.report import pct

    def ms(r, key):
        return _mean_sd(r.get(f"{key}_mean"), r.get(f"{key}_sd")) + " %"

    def has(r, key):
        v = r.get(key)
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    keep = None if rows is None else set(rows)
    stored = [r for r in table.to_dict("records") if has(r, "clean_mean") and (keep is None or r["row"] in keep)]
    stored.sort(key=lambda r: r["row"] != relu)
    base_done = any(r["row"] == relu and r.get("complete") for r in table.to_dict("records"))
    out = []
    for r in stored:
        alone = ", ".join(f"{name} alone {pct(r.get(key))}" for name, key in
                          (("AutoAttack", "autoattack_mean"), ("PGD", "pgd_mean"), ("Square", "square_mean"))
                          if has(r, key))
        ref = ", the reference" if r["row"] == relu else ""
        text = [f"**{r['row']}** ({r['seeds']} seeds{ref}): clean {ms(r, 'clean')}, worst case {ms(r, 'robust')} "
                f"({alone})."]
        if not ref and not r.get("complete"):
            text.append("Not all seeds have run: no verdict yet.")
        elif not ref and not base_done:
            text.append("No verdict yet: the ReLU row has not run all its seeds.")
        elif not ref and r.get("vs_relu_robust"):
            text.append(f"Against ReLU, seed by seed: robust accuracy **{r['vs_relu_robust']}**, clean accuracy "
                        f"**{r['vs_relu_clean']}**.")
        if has(r, "pgd_mean") and has(r, "square_mean") and r["square_mean"] <= r["pgd_mean"] - MASKING_GAP:
            gap = (f"Square, which sees only the network's outputs, leaves {pct(r['square_mean'])} robust where PGD "
                   f"with restarts leaves {pct(r['pgd_mean'])}")
            if has(r, "apgd_ce_mean") and r["apgd_ce_mean"] <= r["square_mean"]:
                text.append(f"{gap}; yet APGD-CE alone, the same cross-entropy gradient with AutoAttack's adaptive "
                            f"step size, leaves {pct(r['apgd_ce_mean'])}. The gradient points the way and PGD's "
                            "fixed step is what fails: PGD alone would have overstated the robustness, a "
                            "white-box attack with an adaptive step does not.")
            else:
                apgd = (f", and even APGD-CE alone leaves {pct(r['apgd_ce_mean'])}" if has(r, "apgd_ce_mean")
                        else "")
                text.append(f"{gap}{apgd}: the gradients mislead the white-box attacks (gradient masking), and "
                            "PGD alone would have overstated the robustness.")
        if r.get("sanity_failed"):
            text.append(f"Sanity checks failed: {r['sanity_failed']}.")
            n_seeds = int(r["seeds"].split("/")[0])
            if ("black-box-vs-white-box" in r["sanity_failed"] and "black-box-vs-apgd-ce" not in r["sanity_failed"]
                    and r.get("apgd_checked") == n_seeds):
                text.append("Square beats the sanity checks' fixed-step PGD but, on no seed, APGD-CE (an exact "
                            "McNemar test on each seed's evaluated images): the black-box check fails against PGD's "
                            "step, not against the gradient.")
            k = r.get("apgd_failed")
            if has(r, "apgd_failed") and k > 0:
                text.append(f"On {int(k)} of {n_seeds} seeds Square beats even APGD-CE on the same images (an "
                            "exact McNemar test): there the gradient itself misleads, a sign of gradient masking, "
                            "and the worst case rests on the black-box attack.")
        k = r.get("fgsm_above_clean")
        if has(r, "fgsm_above_clean") and k > 0:
            n = r["seeds"].split("/")[0]
            text.append(f"On {int(k)} of {n} seeds the network classified its FGSM training images better "
                        f"({pct(r.get('train_attack_acc'))} on average at the epoch kept) than clean test images: "
                        "the signature of catastrophic overfitting, which the early stop's PGD-5 check "
                        f"(reading {pct(r.get('check_acc'))}) did not catch.")
        out.append(" ".join(text))
    return "\n\n".join(out) if out else "*No row of this data set is stored yet.*"


def sortable_html(df) -> str:
    """``df`` as an HTML table whose columns sort on a click on their header in the book's HTML pages (the class
    ``sortable``, handled by ``symact-sortable.js``, which :mod:`symact.sphinxext` adds to every page)."""
    return df.to_html(index=False, classes=["sortable", "table"], border=0, escape=True, na_rep="n/a")


def plot_leaderboard(ax, table, title: str = "") -> int:
    """Clean against worst-case robust accuracy (percent), one point per stored row with the seeds' standard
    deviation as error bars in both directions, ReLU's row drawn as a reference cross; a row without all its
    seeds is drawn hollow and labelled with its seed count (``relu (2/5)``). Returns the number of rows drawn
    (0: the axes say that nothing is stored)."""
    done = table[table["clean_mean"].notna()] if "clean_mean" in table else table.iloc[0:0]
    if title:
        ax.set_title(title)
    if done.empty:
        ax.text(0.5, 0.5, "no row stored yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return 0
    for r in done.to_dict("records"):
        sd = lambda k: 0.0 if r.get(k) is None or math.isnan(r[k]) else 100 * r[k]  # noqa: E731
        relu, complete = r["row"] == "relu", bool(r.get("complete"))
        bar = ax.errorbar(100 * r["clean_mean"], 100 * r["robust_mean"], xerr=sd("clean_sd"), yerr=sd("robust_sd"),
                          fmt="X" if relu else "o", ms=8 if relu else 5, capsize=2, color="black" if relu else None)
        if not complete:
            bar[0].set_markerfacecolor("none")
        label = r["row"] if complete else f"{r['row']} ({r.get('seeds', '?')})"
        ax.annotate(label, (100 * r["clean_mean"], 100 * r["robust_mean"]), textcoords="offset points",
                    xytext=(4, 3), fontsize=7)
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel("worst-case robust accuracy (%)")
    return len(done)



def relu_verdicts(stored, relu: str = "relu") -> "pd.DataFrame":
    """Each stored row against the ReLU row of the same protocol (``stored``: row name -> stored result or None,
    as :func:`symact.benchmark.stored_rows` gives): one line per row and metric (worst-case robust and clean
    accuracy) with :func:`symact.benchmark.compare_to_relu`'s word, the effect (this row minus ReLU, points),
    its 95 % interval, ``p``, the seeds compared and the smallest effect the design could detect (``mde``,
    points). Empty when the ReLU row is not stored."""
    import pandas as pd

    from symact import benchmark

    cols = ["row", "metric", "verdict", "effect", "lo", "hi", "p", "seeds", "mde"]
    base = stored.get(relu)
    lines = []
    for name, res in stored.items():
        if res is None or base is None or name == relu:
            continue
        for metric, v in benchmark.compare_to_relu(res, base).items():
            lines.append({"row": name, "metric": metric.replace("_acc", ""), "verdict": v.word,
                          "effect": 100 * v.effect, "lo": 100 * v.interval[0], "hi": 100 * v.interval[1],
                          "p": v.p, "seeds": v.n, "mde": None if v.mde is None else 100 * v.mde})
    return pd.DataFrame(lines, columns=cols)
