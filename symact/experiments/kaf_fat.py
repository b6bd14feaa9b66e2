"""The KAF chapter's fast-adversarial-training tables as rows of the book's leaderboard (issue 27, items 4, 6
and 9; issue 28: one network, one zoo entry, used by both chapters).

The finished thesis (``../shared/papers/kaf-thesis-results.md``) trained two CIFAR-10 networks by fast
adversarial training (Wong et al. 2020) with ReLU, ELU, Swish and KAF variants: the VGG-inspired network
(section "VGG-inspired network, fast adversarial training (60 epochs)") and He et al.'s ResNet-20 (section
"ResNet-20, fast adversarial training (80 epochs, with augmentation)"). Here each (network, activation) is a
row of :mod:`symact.benchmark` under its CIFAR-10 protocol (Wong et al.'s 15-epoch cyclic recipe, the
converged reduced protocol the CPU runs):

- the VGG-inspired network is the leaderboard's own CIFAR-10 network: the rows ``benchmark/cifar10-<row>``;
- ResNet-20 is a second protocol, :func:`resnet20_protocol` (the same recipe on
  :class:`symact.models.CifarResNet` of depth 20), rows ``benchmark/cifar10-resnet20-<row>``, its own ReLU row
  the transfer surrogate of its other rows.

The thesis's names and the rows (:data:`THESIS_ROWS`): ReLU ``relu``, ELU ``elu``, Swish ``silu``
(``x sigmoid(x)``), KAF ``kaf`` (random coefficients), KAF_ELU ``kaf-elu``, KAF_ReLU ``kaf-relu``, KAF_Swish
``kaf-swish`` (kernel ridge initialisation onto ELU, ReLU, Swish: :func:`symact.activations.kaf.kernel_ridge_init`)
and KAF_Free ``kaf-free`` (:class:`symact.activations.KAFFree`: dictionary and bandwidth trainable). Every KAF
row uses the kafnets bandwidth ``1/(8 Delta^2)`` (the thesis: ``1/(6 Delta^2)``), ``D = 20`` on ``[-3, 3]``.
This module registers the rows the leaderboard lacked: ``kaf-swish`` and ``kaf-free`` on both data sets'
own networks, and the eight ResNet-20 rows.

:func:`fat_predicted_labels` (``kaf/fat-predicted-labels``) reads those rows' trained networks from the zoo and
runs PGD-50x10 at 8/255 once with the true labels and once with the predicted labels
(:class:`symact.attacks.PredictedLabelPGD`, the thesis's protocol) on the same images. :func:`fat_table` and
:func:`labels_table` are the chapter's tables (shown by :func:`fat_markdown`, :func:`labels_markdown`, with
:func:`stored_words` and :func:`labels_words` for its sentences); the claims of the thesis these rows test are registered at the
end (:mod:`symact.claims`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from symact import benchmark as bm
from symact import report
from symact.claims import claim
from symact.results import PROFILES, REGISTRY, Unit, config_hash, experiment

__all__ = ["COST_FACTOR", "FAT_ROWS", "LabelsConfig", "NETWORKS", "THESIS", "THESIS_ROWS", "fat_display",
           "fat_experiments", "fat_markdown", "fat_predicted_labels", "fat_table", "labels_display", "labels_markdown",
           "labels_result", "labels_table", "labels_words", "resnet20_protocol", "stored_fat_rows", "stored_words"]

#: the thesis's activation names -> (leaderboard row, registered activation, its kwargs)
THESIS_ROWS = {"ReLU": ("relu", "relu", ()), "ELU": ("elu", "elu", ()), "KAF": ("kaf", "kaf", ()),
               "KAF_ReLU": ("kaf-relu", "kaf", (("init", "relu"),)),
               "KAF_ELU": ("kaf-elu", "kaf", (("init", "elu"),)), "Swish": ("silu", "silu", ()),
               "KAF_Swish": ("kaf-swish", "kaf", (("init", "swish"),)),
               "KAF_Free": ("kaf-free", "kaf_free", ())}

#: the finished thesis's numbers, cited as theirs (kaf-thesis-results.md, the two fast-adversarial-training
#: tables): per network and activation, clean and PGD accuracy in % (PGD-50x10 at 8/255, step 2/255, against
#: the model's predicted labels; one network each; VGG: 60 epochs without augmentation, ResNet-20: 80 epochs
#: with augmentation)
THESIS = {
    "vgg": {"ReLU": (78.10, 45.41), "ELU": (73.99, 45.49), "KAF": (77.93, 46.80), "KAF_ELU": (74.93, 45.40),
            "Swish": (76.99, 47.73), "KAF_Swish": (78.85, 46.33), "KAF_Free": (77.54, 46.20)},
    "resnet20": {"ReLU": (77.52, 50.17), "ELU": (75.42, 51.69), "KAF": (78.08, 52.23), "KAF_ReLU": (79.65, 51.44),
                 "KAF_ELU": (78.69, 52.76), "Swish": (78.68, 53.88), "KAF_Swish": (79.21, 52.10),
                 "KAF_Free": (78.88, 52.07)},
}
#: the thesis's learning-rate range per activation, VGG-inspired network (min, max)
THESIS_LR = {"ReLU": (1e-4, 0.08), "ELU": (1e-4, 0.1), "KAF": (0.01, 1.0), "KAF_ELU": (1e-4, 0.1),
             "Swish": (1e-4, 0.3), "KAF_Swish": (1e-4, 0.8), "KAF_Free": (0.01, 2.0)}

#: network key -> (the benchmark row prefix, the thesis's table's name)
NETWORKS = {"vgg": ("", "VGG-inspired"), "resnet20": ("resnet20-", "ResNet-20")}
#: the rows of each network's table, in the thesis's order: network -> thesis name -> benchmark row name
FAT_ROWS = {net: {name: NETWORKS[net][0] + THESIS_ROWS[name][0] for name in THESIS[net]} for net in THESIS}


#: training and evaluation cost of an activation relative to ReLU on the same network, per image (forward and
#: backward, batch 64, the VGG-inspired network; ResNet-20 costs about 1.5 times the VGG network with ReLU and
#: KAF; KAF_Free about 9 to 11 times ReLU on either network, measured on a loaded machine), for
#: :func:`symact.benchmark.estimate_cpu_seconds`
COST_FACTOR = {"relu": 1.0, "elu": 1.0, "silu": 1.0, "kaf": 1.5, "kaf_free": 10.0}


def resnet20_protocol(profile: str) -> bm.Protocol:
    """The CIFAR-10 protocol of the leaderboard (:func:`symact.benchmark.protocol`) at ``profile`` with He et
    al.'s ResNet-20 (:class:`symact.models.CifarResNet`, depth 20, width 16) in place of the VGG-inspired
    network; everything else (recipe, epochs, augmentation, seeds, evaluation) the same."""
    return dataclasses.replace(bm.protocol("cifar10", profile), network="CifarResNet",
                               network_kwargs=(("depth", 20),))


def _register_rows() -> None:
    have = {n for c, n in REGISTRY if c == bm.CHAPTER}
    for ds in bm.DATASETS:  # the rows the leaderboard lacked, on each data set's own network
        for name in ("KAF_Swish", "KAF_Free"):
            row, act, kw = THESIS_ROWS[name]
            if f"{ds}-{row}" not in have:
                bm.register_row(ds, row, act, kw)
    protocols = {p: resnet20_protocol(p) for p in PROFILES}
    for name in THESIS["resnet20"]:  # ReLU first: the surrogate of the other ResNet-20 rows
        row, act, kw = THESIS_ROWS[name]
        if f"cifar10-resnet20-{row}" not in have:
            bm.register_row("cifar10", f"resnet20-{row}", act, kw, protocols=protocols)


_register_rows()


def fat_experiments() -> list[str]:
    """``benchmark/cifar10-<row>`` of every row of both tables (the device script's list)."""
    return [f"{bm.CHAPTER}/cifar10-{row}" for net in FAT_ROWS for row in FAT_ROWS[net].values()]


def stored_fat_rows(network: str, profiles: tuple[str, ...] = ("paper", "quick")) -> dict:
    """Thesis name -> the stored result of that row of ``network``'s table (``"vgg"`` or ``"resnet20"``) at the
    first of ``profiles`` where the ReLU row is stored (complete or partial), else None. Runs nothing."""
    rows = FAT_ROWS[network]
    for prof in profiles:
        got = bm.stored_rows("cifar10", prof, list(rows.values()))
        if got[rows["ReLU"]] is not None:
            return {name: got[row] for name, row in rows.items()}
    return {name: None for name in rows}


def fat_table(network: str, profiles: tuple[str, ...] = ("paper", "quick")):
    """The thesis's table of ``network`` beside ours: one row per activation with ``thesis_clean`` and
    ``thesis_pgd`` (%, :data:`THESIS`), and our :func:`symact.benchmark.leaderboard` columns (``clean_mean``,
    ``robust_mean`` (the worst case over every attack), ``autoattack_mean``, their sd, ``seeds``, ``profile``,
    ``vs_relu_robust``, ``vs_relu_clean``; fractions) where the row is stored; ``stored`` says which are. In the
    thesis's order."""
    import pandas as pd

    if network not in FAT_ROWS:
        raise ValueError(f"network must be one of {sorted(FAT_ROWS)}, got {network!r}")
    stored = stored_fat_rows(network, profiles)
    board = bm.leaderboard({name: r for name, r in stored.items()}, relu="ReLU")
    board = board.set_index("row")
    out = []
    for name, row in FAT_ROWS[network].items():
        b = board.loc[name].to_dict() if name in board.index else {}
        clean, pgd = THESIS[network][name]
        out.append({"activation": name, "row": f"cifar10-{row}", "thesis_clean": clean, "thesis_pgd": pgd,
                    "stored": stored[name] is not None, **{k: b.get(k) for k in (
                        "seeds", "profile", "clean_mean", "clean_sd", "robust_mean", "robust_sd", "autoattack_mean",
                        "vs_relu_robust", "vs_relu_clean", "params_added", "epoch_seconds")}})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- the thesis's label protocol


@dataclass(frozen=True)
class LabelsConfig:
    """``kaf/fat-predicted-labels``: the networks of the benchmark rows ``rows`` (experiment names without the
    chapter, ``"cifar10-relu"``) trained at the benchmark profile ``source``, seeds ``seeds``, attacked on the
    first ``n_test`` test images by L-infinity PGD (``steps`` of ``alpha``, ``restarts`` random restarts, seeded
    by ``attack_seed``) at ``eps``, with the true labels and with the predicted labels. The networks come from
    the zoo (kept at ``paper``); ``train_missing`` (smoke only) trains the rows' networks here instead."""

    rows: tuple[str, ...]
    source: str = "paper"
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 1000
    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 50
    restarts: int = 10
    attack_seed: int = 0
    train_missing: bool = False


def _row_network(cfg: LabelsConfig, row: str, seed: int):
    """(the row's config at ``cfg.source``, the zoo entry's name and key, whether the zoo holds it)."""
    from symact import zoo

    exp = REGISTRY[(bm.CHAPTER, row)]
    rcfg = exp.configs[cfg.source]
    name, key = f"{bm.CHAPTER}/{row}", f"train-seed{seed}"
    return rcfg, name, key, zoo.exists(name, key, config_hash=config_hash(rcfg))


def _labels_units(cfg: LabelsConfig) -> list[Unit]:
    for row in cfg.rows:
        if (bm.CHAPTER, row) not in REGISTRY:
            raise ValueError(f"no benchmark row {row!r}; expected names such as 'cifar10-relu'")
    keys = [(row, k) for row in cfg.rows for k in cfg.seeds
            if cfg.train_missing or _row_network(cfg, row, k)[3]]
    if not keys:
        raise ValueError(f"the zoo holds none of the networks of {', '.join(cfg.rows)} at the {cfg.source!r} "
                         "profile: run those benchmark rows first (python -m symact run benchmark/<row> --profile "
                         f"{cfg.source}, or tools/device_kaf.sh on a GPU)")
    return [Unit(f"{row}-seed{k}", _labels_unit, (cfg, row, k)) for row, k in keys]


def _labels_unit(cfg: LabelsConfig, row: str, seed: int) -> dict:
    """One network under true-label and predicted-label PGD on the same images."""
    from symact import data, zoo
    from symact.attacks import LossPGD, PredictedLabelPGD
    from symact.device import get_device
    from symact.evaluation import decode_outcomes, encode_outcomes, evaluate
    from symact.train import place

    rcfg, name, key, in_zoo = _row_network(cfg, row, seed)
    if in_zoo:
        weights, source = dict(zoo.load_state_dict(name, key)), f"zoo {name}/{key}"
    else:
        trained = bm._train_unit(rcfg, None, seed, bm._lr_unit(rcfg))
        weights, source = trained["weights"], f"trained here at the {cfg.source} profile (smoke)"
    dev = get_device()
    torch.manual_seed(cfg.attack_seed)
    model = bm._build(rcfg)
    model.load_state_dict(weights)
    place(model, dev)
    model.eval()
    test = data.load(rcfg.protocol.dataset, train=False).head(cfg.n_test)
    true = evaluate(model, test, {"pgd": LossPGD(model, cfg.eps, cfg.alpha, cfg.steps, cfg.restarts,
                                                 seed=cfg.attack_seed)}, device=dev, progress=False)
    pred_atk = PredictedLabelPGD(model, cfg.eps, cfg.alpha, cfg.steps, cfg.restarts, seed=cfg.attack_seed)
    evaluate(model, test, pred_atk, device=dev, progress=False)
    after = torch.cat(pred_atk.correct).numpy().astype(bool)
    clean = decode_outcomes(true["outcome"], true["n"])
    robust_true = decode_outcomes(true["attacks"]["pgd"]["outcome"], true["n"])
    return {"row": row, "seed": seed, "source": source, "n": int(true["n"]), "clean_acc": float(clean.mean()),
            "clean_outcome": true["outcome"], "true_acc": float(robust_true.mean()),
            "true_outcome": encode_outcomes(robust_true), "thesis_acc": float(after.mean()),
            "thesis_outcome": encode_outcomes(after), "predicted_robust_acc": float((after & clean).mean()),
            "rescued": int((after & ~clean).sum())}


_ALL_ROWS = tuple(f"cifar10-{row}" for net in FAT_ROWS for row in FAT_ROWS[net].values())


@experiment("kaf", "fat-predicted-labels", {
    "smoke": LabelsConfig(rows=("cifar10-relu", "cifar10-resnet20-relu"), source="smoke", seeds=(0,),
                          n_test=8, steps=3, restarts=1, train_missing=True),
    "quick": LabelsConfig(rows=_ALL_ROWS, source="paper", seeds=(0,), n_test=200, steps=20, restarts=2),
    "paper": LabelsConfig(rows=_ALL_ROWS),
}, units=_labels_units)
def fat_predicted_labels(cfg: LabelsConfig, outputs: dict) -> dict:
    """The thesis's label protocol on the fast-adversarially trained rows (:class:`LabelsConfig`): per network
    (``networks``, keyed ``<row>-seed<k>``) the clean accuracy, PGD accuracy with the true labels
    (``true_acc``), with the predicted labels counted as the thesis counted it (``thesis_acc``: classified
    correctly after the attack, whatever the clean prediction) and counted as robust accuracy
    (``predicted_robust_acc``: correct before and after), ``rescued`` (misclassified images the attack made
    correct), per-image outcomes, and where the network came from; ``missing``: the rows' networks the zoo did
    not hold when it ran (rerun with ``SYMACT_RECOMPUTE=1`` when they are there)."""
    nets = {k: v for k, v in outputs.items()}
    missing = [f"{row}-seed{k}" for row in cfg.rows for k in cfg.seeds if f"{row}-seed{k}" not in nets]
    return {"networks": nets, "missing": missing, "n_test": cfg.n_test}


def labels_result(profiles: tuple[str, ...] = ("paper", "quick")):
    """The stored :func:`fat_predicted_labels` result at the first of ``profiles`` holding one; at the ``smoke``
    profile (``SYMACT_PROFILE=smoke``) the smoke run itself (it trains its own tiny networks); else None. Never
    runs at quick or paper (those read the rows' networks from the zoo: run them explicitly)."""
    from symact.results import active_profile

    if active_profile() == "smoke":
        return fat_predicted_labels(profile="smoke")
    for prof in profiles:
        res = fat_predicted_labels.stored(prof)
        if res is not None:
            return res
    return None


def labels_table(res):
    """Per network of a :func:`fat_predicted_labels` result: ``row``, ``network`` (``"vgg"`` or
    ``"resnet20"``), ``activation`` (the thesis's name), ``seed``, ``clean``, ``true`` (PGD, true labels),
    ``thesis`` (PGD, predicted labels, the thesis's count), ``predicted_robust``, ``rescued`` and ``gain`` (thesis
    minus true, fractions)."""
    import pandas as pd

    names = {f"cifar10-{row}": (net, name) for net in FAT_ROWS for name, row in FAT_ROWS[net].items()}
    out = []
    for v in res["networks"].values():
        net, name = names.get(v["row"], ("?", v["row"]))
        out.append({"row": v["row"], "network": net, "activation": name, "seed": v["seed"], "clean": v["clean_acc"],
                    "true": v["true_acc"], "thesis": v["thesis_acc"], "predicted_robust": v["predicted_robust_acc"],
                    "rescued": v["rescued"], "gain": v["thesis_acc"] - v["true_acc"]})
    return pd.DataFrame(out, columns=["row", "network", "activation", "seed", "clean", "true", "thesis",
                                      "predicted_robust", "rescued", "gain"])


# --------------------------------------------------------------------------- the chapter's tables and sentences


def _check_columns(table, columns, what: str) -> None:
    """Raise TypeError unless ``table`` is a DataFrame and ValueError unless it has ``columns``."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected the pandas DataFrame of {what}, got {type(table).__name__}")
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise ValueError(f"{what} needs the columns {', '.join(lacking)} (has {', '.join(map(str, table.columns))})")


def stored_words(table) -> str:
    """The sentence under a :func:`fat_table`: which rows are stored, at which profile, and which wait."""
    _check_columns(table, ("activation", "stored", "profile"), "fat_table")
    done = [r.activation for r in table.itertuples() if r.stored]
    todo = [r.activation for r in table.itertuples() if not r.stored]
    profile = sorted({str(p) for p in table["profile"].dropna()})
    if not done:
        return ("No row of this table is stored yet (at the paper or the quick profile): the columns of our "
                f"numbers are empty, and the rows {', '.join(todo)} wait for their runs.")
    return (f"Stored ({' and '.join(profile)} profile): {', '.join(done)}. "
            + (f"Not stored yet: {', '.join(todo)}." if todo else "Every row is stored."))


def _points(v, sd=None) -> str:
    """A fraction in percentage points without the unit (the table's header says %), with `` ± sd`` when given:
    ``_points(0.4567, 0.012) == '45.7 ± 1.2'``; a missing mean is :data:`symact.report.MISSING`."""
    if report.is_missing(v):
        return report.MISSING
    return report.number(100 * v, 1) + ("" if report.is_missing(sd) else f" ± {report.number(100 * sd, 1)}")


#: the columns of :func:`fat_display` and their alignment (l or r) in :func:`fat_markdown`
FAT_COLUMNS = {"activation": "l", "row": "l", "thesis clean": "r", "thesis PGD (predicted labels)": "r",
               "clean": "r", "worst case": "r", "AutoAttack": "r", "seeds": "l", "profile": "l",
               "robust vs ReLU": "l"}


def fat_display(table):
    """A :func:`fat_table` as the chapter shows it, one string per cell (columns :data:`FAT_COLUMNS`): the
    thesis's clean and PGD accuracy (%, two decimals), our clean, worst-case and AutoAttack accuracy (%, mean
    ± sd over seeds, one decimal; :data:`symact.report.MISSING` where not stored), the seeds (``not stored``),
    the profile and the verdict's word against ReLU (blank where there is none). The seeds are written as an
    integer (a column with unstored rows holds them as floats)."""
    import pandas as pd

    _check_columns(table, ("activation", "row", "thesis_clean", "thesis_pgd", "clean_mean", "clean_sd",
                           "robust_mean", "robust_sd", "autoattack_mean", "seeds", "stored", "profile",
                           "vs_relu_robust"), "fat_table")
    rows = [[r.activation, f"`{r.row}`", report.number(r.thesis_clean, 2), report.number(r.thesis_pgd, 2),
             _points(r.clean_mean, r.clean_sd), _points(r.robust_mean, r.robust_sd), _points(r.autoattack_mean),
             f"{int(r.seeds)}" if r.stored else "not stored", str(r.profile) if r.stored else "",
             r.vs_relu_robust if isinstance(r.vs_relu_robust, str) else ""] for r in table.itertuples()]
    return pd.DataFrame(rows, columns=list(FAT_COLUMNS))


def fat_markdown(table, network: str, n_eval: int) -> str:
    """:func:`fat_display` as a Markdown table with its caption; ``network`` names the network (``"ResNet-20"``)
    and ``n_eval`` the number of test images the attacks ran on."""
    shown = fat_display(table)
    return report.markdown_table(shown.columns, shown.itertuples(index=False), "".join(FAT_COLUMNS.values())) + (
        f"\n\nFast adversarial training at ε = 8/255, {network}. Thesis columns: the finished thesis's numbers "
        "(kaf-thesis-results.md, its table for this network: one network each, PGD-50x10 against the predicted "
        "labels, the thesis's epochs). Our columns (%, mean ± sd over seeds): clean accuracy on all 10,000 test "
        "images, the worst case per image over every attack of the leaderboard on the first "
        f"{n_eval:,} and AutoAttack alone, with the true labels; 'robust vs ReLU': the verdict function's "
        "word for the paired difference over seeds (none at quick, none for a partial row).")


def labels_words(res) -> str:
    """The sentence on what the thesis's label protocol changes, from a :func:`fat_predicted_labels` result
    (None: it has not run, and the sentence says how to run it)."""
    if res is None:
        return ("It has not run yet: it needs the rows' networks, which the zoo keeps from their paper runs "
                "(`python -m symact run kaf/fat-predicted-labels --profile paper` once they are there).")
    lt = labels_table(res)
    gain = lt.groupby("network")["gain"].mean()
    words = " and ".join(f"{100 * g:+.1f} points on the {NETWORKS[n][1]} network" for n, g in gain.items())
    missing = res["missing"]
    return (f"Counted as the thesis counted them, the predicted labels change PGD accuracy, on average over the "
            f"networks, by {words} ({int(lt['rescued'].sum())} misclassified images rescued over {len(lt)} "
            "networks)" + (f"; not in the zoo when it ran: {', '.join(missing)}." if missing else "."))


def labels_display(res):
    """Per network of a :func:`fat_predicted_labels` result, as the chapter shows it: network, activation, seed,
    clean accuracy and PGD accuracy with the true and with the predicted labels (%, one decimal, no unit), and the
    misclassified images the attack rescued."""
    import pandas as pd

    rows = [[NETWORKS.get(r.network, ("", r.network))[1], r.activation, r.seed, _points(r.clean), _points(r.true),
             _points(r.thesis), r.rescued] for r in labels_table(res).itertuples()]
    return pd.DataFrame(rows, columns=["network", "activation", "seed", "clean", "PGD, true labels",
                                       "PGD, predicted labels (thesis's count)", "rescued"])


def labels_markdown(res) -> str:
    """:func:`labels_display` as a Markdown table with its caption (None: a line saying it is not stored)."""
    if res is None:
        return "*kaf/fat-predicted-labels: not stored yet.*"
    shown = labels_display(res)
    return (report.markdown_table(shown.columns, shown.itertuples(index=False), "lllrrrr")
            + f"\n\nPGD at ε = 8/255 on the first {res['n_test']:,} test images, once with the true labels and "
            f"once with the predicted labels. *{res.caption()}*")


# --------------------------------------------------------------------------- the thesis's claims these rows test


def _pts(a: float, b: float) -> float:
    return round(a - b, 2) / 100


def _judge_pair(network: str, a: str | list, b: str, profile: str, metric: str, what: str, paper_a=None,
                margin=None):
    from symact.experiments import verdicts

    rows = FAT_ROWS[network]
    names = [a] if isinstance(a, str) else list(a)
    got = bm.stored_rows("cifar10", profile, [rows[n] for n in (*names, b)])
    arm_a = [got[rows[n]] for n in names]
    arm_b = got[rows[b]]
    if arm_b is None or any(r is None for r in arm_a):
        return None
    col = 0 if metric == "clean_acc" else 1
    thesis = THESIS[network]
    pa = float(np.mean([thesis[n][col] for n in names]))
    pb = thesis[b][col]
    published = None if margin is not None or round(pa - pb, 2) == 0 else _pts(pa, pb)
    paper = (f"{pa - pb:+.2f} points ({' / '.join(names)} {pa:.2f} % against {b} {pb:.2f} %, one network each, "
             f"{'PGD-50x10 with predicted labels' if col else 'clean accuracy'}, {NETWORKS[network][1]})")
    try:
        return verdicts.benchmark_rows(arm_a if len(arm_a) > 1 else arm_a[0], arm_b, what=what, metric=metric,
                                       published=published, paper=paper, margin=margin)
    except ValueError:  # partial rows without a shared finished seed: nothing to judge yet
        return None


_SRC = "kaf-thesis-results.md"


@claim("kaf/fat-kaf-more-robust-vgg", chapter="kaf", section="kaf-fat-vgg",
       source=f"{_SRC}, VGG-inspired fast-adversarial-training table; 'What the thesis concluded'",
       text="KAFs are (marginally) more robust than ReLU under fast adversarial training (VGG-inspired network)")
def _kaf_robust_vgg(profile):
    return _judge_pair("vgg", "KAF", "ReLU", profile, "robust_acc",
                       "KAF minus ReLU, worst-case robust accuracy at 8/255 (VGG-inspired)")


@claim("kaf/fat-kaf-more-robust-resnet20", chapter="kaf", section="kaf-fat-resnet",
       source=f"{_SRC}, ResNet-20 fast-adversarial-training table; 'What the thesis concluded'",
       text="KAFs are (marginally) more robust than ReLU under fast adversarial training (ResNet-20)")
def _kaf_robust_resnet(profile):
    return _judge_pair("resnet20", "KAF", "ReLU", profile, "robust_acc",
                       "KAF minus ReLU, worst-case robust accuracy at 8/255 (ResNet-20)")


def _runner_up(network: str, profile: str) -> str | None:
    """The most robust stored row of ``network`` other than Swish (by mean worst-case robust accuracy)."""
    best, name = -1.0, None
    for n, r in stored_fat_rows(network, (profile,)).items():
        if n != "Swish" and r is not None:
            v = float(np.mean(list(bm._per_seed(r, "robust_acc").values())))
            if v > best:
                best, name = v, n
    return name


def _swish_most(network: str, profile: str):
    other = _runner_up(network, profile)
    if other is None:
        return None
    return _judge_pair(network, "Swish", other, profile, "robust_acc",
                       f"Swish minus the most robust other row ({other}), worst-case robust accuracy at 8/255 "
                       f"({NETWORKS[network][1]})")


@claim("kaf/fat-swish-most-robust-vgg", chapter="kaf", section="kaf-fat-vgg",
       source=f"{_SRC}, VGG-inspired table; 'What the thesis concluded'",
       text="Swish is the most robust activation under fast adversarial training (VGG-inspired network)")
def _swish_vgg(profile):
    return _swish_most("vgg", profile)


@claim("kaf/fat-swish-most-robust-resnet20", chapter="kaf", section="kaf-fat-resnet",
       source=f"{_SRC}, ResNet-20 table; 'What the thesis concluded'",
       text="Swish is the most robust activation under fast adversarial training (ResNet-20)")
def _swish_resnet(profile):
    return _swish_most("resnet20", profile)


_KAFS = ["KAF", "KAF_ReLU", "KAF_ELU", "KAF_Swish", "KAF_Free"]


@claim("kaf/fat-kaf-clean-accuracy", chapter="kaf", section="kaf-fat-resnet",
       source=f"{_SRC}, ResNet-20 table; 'What the thesis concluded'",
       text="KAF variants improve clean accuracy over ReLU, most clearly in ResNet-20")
def _kaf_clean(profile):
    return _judge_pair("resnet20", _KAFS, "ReLU", profile, "clean_acc",
                       "mean of the five KAF variants minus ReLU, clean accuracy (ResNet-20)")


@claim("kaf/fat-resnet-more-robust-than-vgg", chapter="kaf", section="kaf-fat-resnet",
       source=f"{_SRC}, the two fast-adversarial-training tables; 'What the thesis concluded'",
       text="ResNet-20 is more robust than the VGG-inspired network at similar accuracy and parameter count")
def _resnet_vs_vgg(profile):
    from symact.experiments import verdicts

    a = bm.stored_rows("cifar10", profile, [FAT_ROWS["resnet20"]["ReLU"]])[FAT_ROWS["resnet20"]["ReLU"]]
    b = bm.stored_rows("cifar10", profile, ["relu"])["relu"]
    if a is None or b is None:
        return None
    pa, pb = THESIS["resnet20"]["ReLU"][1], THESIS["vgg"]["ReLU"][1]
    try:
        return verdicts.benchmark_rows(a, b, what="ResNet-20 minus VGG-inspired, both ReLU, worst-case robust "
                                       "accuracy at 8/255 (unpaired over seeds)", published=_pts(pa, pb),
                                       paper=f"{pa - pb:+.2f} points (ReLU: {pa:.2f} % against {pb:.2f} %, PGD-50x10 "
                                       "with predicted labels, one network each)")
    except ValueError:
        return None


#: the margin of the flexibility claim, stated before any run: 1 point of worst-case robust accuracy
FLEX_MARGIN = 0.01


@claim("kaf/fat-flexibility-no-gain", chapter="kaf", section="kaf-fat-resnet",
       source=f"{_SRC}, 'What the thesis concluded' (its explanation); KAF_Free against KAF in both tables",
       text="A KAF's flexibility helps the attacker as much as the defender: the most flexible KAF (KAF_Free, "
            "trainable dictionary and bandwidth) is no more robust than the KAF (ResNet-20)")
def _flexibility(profile):
    return _judge_pair("resnet20", "KAF_Free", "KAF", profile, "robust_acc",
                       "KAF_Free minus KAF, worst-case robust accuracy at 8/255 (ResNet-20); no difference within "
                       f"{100 * FLEX_MARGIN:g} point", margin=FLEX_MARGIN)
