"""DOME Table 2 re-evaluated: seeds, the official AutoAttack, curves over epsilon, distances and sanity checks.

The paper's Table 2 (dome.txt, Section 7) compares a baseline (ReLU, softmax, cross-entropy), PDOME in every
hidden layer (Eq. 3) and MDOME at the output (Eq. 8 to 15, trained with MSE), each trained with fast
adversarial training (FAT, Wong et al. 2020) with the hyper-parameters of its Table 1, then attacked at
eps = 8/255 with PGD-50x10 and AutoAttack. One experiment per (network, dataset),
``dome/robust-<network>-<dataset>``, holds every model and seed as units of work
(:mod:`symact.store.units`):

- ``train-<model>-seed<s>``: the FAT network (a zoo network at the ``paper`` profile, resumable from its
  checkpoint);
- evaluation units, each needing it: ``clean-<model>-seed<s>`` (clean accuracy on the first ``n_clean`` test
  images); on the first ``n_eval``, ``eps=<e>-<model>-seed<s>``, one per epsilon of ``eps_grid``, the point of
  a robustness curve (:func:`symact.evaluation.robustness_curve`) under PGD on the training loss
  (``pgd_steps`` x ``pgd_restarts``, step eps/4, i.e. the paper's 2/255 at 8/255) and the official AutoAttack
  (:class:`symact.attacks.AutoAttack`; for MDOME run on each of the three views,
  :func:`symact.experiments.dome.union_of_views`), robust meaning the worst case per image over both;
  ``fab-<model>-seed<s>``, FAB minimum-norm L-infinity distances; ``sanity-<model>-seed<s>``, the sanity
  checks of Carlini et al. (2019) (:func:`symact.evaluation.run_sanity`, without a transfer surrogate). For
  MDOME the distances and sanity checks attack the LOGIT1 view (Eq. 14), whose softmax is a proper
  probability and whose prediction is the model's (dome.txt Eq. 12 to 15; the chapter's proposition on the
  views).

The chapter reads the Table 2 cell at ``eps`` from the curve; :func:`robust_summary` and
:func:`robust_means` turn a stored result into DataFrames, and :func:`symact.experiments.verdicts.dome_seeds`
judges a model against the baseline, paired over seeds.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from symact import attacks, data, models
from symact.activations import factory
from symact.device import seed_everything
from symact.evaluation import evaluate, min_norm_distances, robustness_curve, run_sanity
from symact.experiments.dome import (DATASETS, MODEL_NAMES, MODELS, NETWORKS, PAPER_TABLE1, PAPER_TABLE2,
                                     union_of_views)
from symact.results import experiment
from symact.store.units import Unit, gpu_resources
from symact.train import TrainConfig, loss_function, place, train

__all__ = ["ROBUST", "RobustConfig", "robust_means", "robust_run", "robust_summary", "seeds_markdown", "table2_network"]

#: the epsilons of each data set's robustness curve at the paper profile (L-infinity, pixels in [0, 1]):
#: the paper's 8/255 and, on MNIST, up to 0.3 (the budget MNIST defences are usually judged at, where 8/255
#: leaves robust accuracy close to clean accuracy)
EPS_GRIDS = {"mnist": (8 / 255, 0.1, 0.2, 0.3), "fashion-mnist": (8 / 255, 0.05, 0.1, 0.2),
             "cifar10": (2 / 255, 4 / 255, 8 / 255, 16 / 255)}


@dataclass(frozen=True)
class RobustConfig:
    """One (network, dataset) of Table 2 with ``seeds`` per model (see the module docstring).

    Training (dome.txt Section 7 and Table 1): FAT, FGSM from a random start with step ``train_alpha``
    (10/255) at ``eps`` (8/255), SGD with momentum 0.9, cyclic learning rate, ``epochs`` (30) with Wong et
    al.'s early stop, batch ``batch_size`` (128), on the first ``n_train`` training images (None: all); lr,
    weight decay and Nesterov per model from ``dome.PAPER_TABLE1``. Evaluation: clean accuracy on the first
    ``n_clean`` test images (None: all); the curve, the distances (FAB, ``fab_steps``) and the sanity checks
    (``sanity_steps``, Square with ``square_queries``) on the first ``n_eval``; attacks seeded with
    ``attack_seed``.
    """

    dataset: str = "mnist"
    network: str = "lenet"
    models: tuple[str, ...] = MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 30
    n_train: int | None = None
    batch_size: int = 128
    eps: float = 8 / 255
    train_alpha: float = 10 / 255
    n_clean: int | None = None
    n_eval: int = 1000
    pgd_steps: int = 50
    pgd_restarts: int = 10
    eps_grid: tuple[float, ...] = EPS_GRIDS["mnist"]
    fab_steps: int = 100
    sanity_steps: int = 50
    square_queries: int = 1000
    attack_seed: int = 0


def _check(cfg: RobustConfig) -> None:
    if cfg.dataset not in DATASETS or cfg.network not in NETWORKS:
        raise ValueError(f"dataset must be one of {DATASETS} and network one of {NETWORKS}, got {cfg.dataset!r} "
                         f"and {cfg.network!r}")
    bad = [m for m in cfg.models if m not in MODELS]
    if bad or not cfg.models or "baseline" not in cfg.models:
        raise ValueError(f"models must be among {MODELS} and include the baseline, got {cfg.models}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ValueError(f"seeds must be distinct integers, at least one, got {cfg.seeds}")
    if cfg.n_eval < 1 or cfg.epochs < 1 or not cfg.eps_grid or min(cfg.eps_grid) <= 0:
        raise ValueError(f"need n_eval >= 1, epochs >= 1 and a non-empty eps_grid of positive epsilons, got {cfg}")


def table2_network(network: str, model: str, classes: int, channels: int) -> torch.nn.Module:
    """The untrained network of a Table 2 cell: LeNet-5 (saf.txt Table 1 shape for 1 channel, Table 3 for 3) or
    ResNet-18, with PDOME in every hidden layer for ``model="pdome"`` (else ReLU) and MDOME (Eq. 8, normalised
    output Eq. 13) at the output for ``model="mdome"``. What ``symact.zoo.load("dome/robust-<network>-<dataset>",
    key="train-<model>-seed<s>")`` fills with the stored weights."""
    if network not in NETWORKS or model not in MODELS:
        raise ValueError(f"network must be one of {NETWORKS} and model one of {MODELS}, got {network!r}, {model!r}")
    act = "pdome" if model == "pdome" else "relu"
    out_act = factory("mdome", n=classes) if model == "mdome" else None
    if network == "resnet18":
        return models.ResNet18(num_classes=classes, act=act, in_channels=channels, out_act=out_act)
    return models.LeNet5("cifar" if channels == 3 else "mnist", num_classes=classes, act=act, out_act=out_act)


def _recipe(cfg: RobustConfig, model: str, seed: int) -> TrainConfig:
    lr, wd, nesterov = PAPER_TABLE1[(cfg.dataset, model)]
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       weight_decay=wd, nesterov=nesterov, schedule="cyclic", method="fgsm", eps=cfg.eps,
                       alpha=cfg.train_alpha, loss="mse" if model == "mdome" else "ce", seed=seed)


def _train_unit(cfg: RobustConfig, model: str, seed: int, checkpoint=None) -> dict:
    """Train one network with FAT: its history, learned DOME-family parameters and weights (a CPU state dict)."""
    train_set = data.load(cfg.dataset).head(cfg.n_train)
    classes, channels = len(train_set.classes), int(train_set.x.shape[1])
    seed_everything(seed)
    net = table2_network(cfg.network, model, classes, channels)
    tcfg = _recipe(cfg, model, seed)
    hist = train(net, train_set, tcfg, checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")
    learned = {name: {k: float(v.detach()) for k, v in mod.named_parameters(recurse=False) if v.numel() == 1}
               for name, mod in net.named_modules() if type(mod).__name__ in ("PDOME", "MDOME")}
    return {"model": model, "seed": seed,
            "history": {k: hist[k] for k in ("train_loss", "train_acc", "check_robust_acc", "stopped_early", "lr",
                                             "seconds") if k in hist},
            "hyper": {"lr": tcfg.lr, "weight_decay": tcfg.weight_decay, "nesterov": tcfg.nesterov, "loss": tcfg.loss},
            "learned": learned,
            "weights": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "builder": "symact.experiments.dome_robust:table2_network",
            "builder_kwargs": {"network": cfg.network, "model": model, "classes": classes, "channels": channels}}


@contextlib.contextmanager
def _view(net: torch.nn.Module, view: str | None):
    """MDOME's output set to ``view`` for the duration (nothing for the other models)."""
    out = getattr(net, "out_act", None)
    if view is None or out is None or not hasattr(out, "output"):
        yield net
        return
    home = out.output
    out.output = view
    try:
        yield net
    finally:
        out.output = home


def _make_attacks(cfg: RobustConfig, model: str, classes: int):
    """``make(net, eps) -> {"pgd", "autoattack"}`` of the curve: PGD on the training loss and the official
    AutoAttack (for MDOME the union over its three views)."""
    loss_fn = loss_function("mse" if model == "mdome" else "ce")

    def aa(net, eps):
        return attacks.make_attack("autoattack", net, eps=eps, n_classes=classes, seed=cfg.attack_seed)

    def make(net, eps):
        pgd = attacks.LossPGD(net, eps, eps / 4, cfg.pgd_steps, restarts=cfg.pgd_restarts, loss_fn=loss_fn,
                              seed=cfg.attack_seed)
        if model == "mdome":
            auto = union_of_views(net, net.out_act, lambda m: aa(m, eps))
        else:
            auto = aa(net, eps)
        return {"pgd": pgd, "autoattack": auto}

    return make


def _trained(trained: dict) -> torch.nn.Module:
    """The network of :func:`_train_unit` from its weights, on the device, in eval mode."""
    net = table2_network(**trained["builder_kwargs"])
    net.load_state_dict(trained["weights"])
    place(net)
    return net.eval()


def _eval_part(cfg: RobustConfig, model: str, seed: int, part: str, trained: dict) -> dict:
    """One part of the evaluation of a trained network of :func:`_train_unit` (the module docstring):
    ``"clean"`` (accuracy on the first ``n_clean`` test images), ``"eps=<e>"`` (the curve's point at ``e``:
    :func:`symact.evaluation.robustness_curve` on one epsilon), ``"fab"`` (minimum-norm distances) or
    ``"sanity"`` (:func:`symact.evaluation.run_sanity` at ``eps``)."""
    net = _trained(trained)
    test = data.load(cfg.dataset, train=False)
    images = test.head(cfg.n_eval)
    torch.manual_seed(cfg.attack_seed)
    if part == "clean":
        clean = evaluate(net, test.head(cfg.n_clean), progress=False)
        return {k: clean[k] for k in ("n", "clean_correct", "clean_acc", "outcome")}
    if part.startswith("eps="):
        make = _make_attacks(cfg, model, trained["builder_kwargs"]["classes"])
        return robustness_curve(net, images, make, [float(part[4:])], stop_at_zero=False, progress=False)
    with _view(net, "logit1" if model == "mdome" else None):
        if part == "fab":
            return min_norm_distances(net, images, norm="Linf", method="fab", steps=cfg.fab_steps, progress=False)
        if part == "sanity":
            return run_sanity(net, images, cfg.eps, seed=cfg.attack_seed, steps=cfg.sanity_steps,
                              square_queries=cfg.square_queries, progress=False)
    raise ValueError(f"unknown evaluation part {part!r}; expected clean, eps=<e>, fab or sanity")


def _parts(cfg: RobustConfig) -> list[str]:
    """The evaluation units of one network: clean accuracy, one per epsilon of the curve, FAB, sanity."""
    return ["clean", *[f"eps={e:.6g}" for e in sorted(cfg.eps_grid)], "fab", "sanity"]


def _merge_curves(points: list[dict]) -> dict:
    """One :func:`symact.evaluation.robustness_curve` result from one-epsilon curves of the same network and
    images, in order of epsilon."""
    points = sorted(points, key=lambda c: c["eps"][0])
    first = points[0]
    keys = list(first["robust"])
    cat = lambda field: {k: [v for c in points for v in c[field][k]] for k in keys}  # noqa: E731
    eps = [c["eps"][0] for c in points]
    return {**{k: first[k] for k in ("protocol", "predict", "n", "clean_acc", "level", "attacks")},
            "eps_grid": eps, "eps": eps, "stopped_early": False, "robust": cat("robust"),
            "robust_acc": cat("robust_acc"), "interval": cat("interval"),
            "points": [p for c in points for p in c["points"]]}


def _units(cfg: RobustConfig) -> list[Unit]:
    _check(cfg)
    units = []
    for seed in cfg.seeds:
        for model in cfg.models:
            key = f"{model}-seed{seed}"
            units.append(Unit(f"train-{key}", _train_unit, (cfg, model, seed), checkpoint=True, zoo=True,
                              resources=gpu_resources()))
            units += [Unit(f"{part}-{key}", _eval_part, (cfg, model, seed, part), needs=(f"train-{key}",),
                           resources=gpu_resources()) for part in _parts(cfg)]
    return units


def robust_run(cfg: RobustConfig, outputs: dict) -> dict:
    """The combine step of ``dome/robust-<network>-<dataset>``: per network ``<model>-seed<s>``, its ``model``,
    ``seed``, training ``history``, ``hyper``-parameters, ``learned`` DOME-family parameters, ``clean``
    accuracy (with its per-image outcome), ``curve``, ``distances`` and ``sanity`` (the eval unit's value).
    Also ``data``, ``dataset``, ``network``, ``eps`` (the Table 2 budget) and ``n_eval``."""
    nets = {}
    for seed in cfg.seeds:
        for model in cfg.models:
            key = f"{model}-seed{seed}"
            tr = outputs[f"train-{key}"]
            nets[key] = {"model": model, "seed": seed, "history": tr["history"], "hyper": tr["hyper"],
                         "learned": tr["learned"], "clean": outputs[f"clean-{key}"],
                         "curve": _merge_curves([outputs[f"{part}-{key}"] for part in _parts(cfg)
                                                 if part.startswith("eps=")]),
                         "distances": outputs[f"fab-{key}"], "sanity": outputs[f"sanity-{key}"]}
    test = data.load(cfg.dataset, train=False)
    return {"data": test.description, "dataset": cfg.dataset, "network": cfg.network, "eps": cfg.eps,
            "n_eval": len(test.head(cfg.n_eval)), "networks": nets}


def _at(curve: dict, eps: float, key: str) -> float:
    """Robust accuracy under ``key`` at ``eps`` from a curve: its value where evaluated, 0 past a curve stopped
    at zero, NaN where the grid did not hold ``eps``."""
    for e, acc in zip(curve["eps"], curve["robust_acc"][key]):
        if abs(e - eps) < 1e-9:
            return float(acc)
    if curve["stopped_early"] and eps > curve["eps"][-1] and any(abs(e - eps) < 1e-9 for e in curve["eps_grid"]):
        return 0.0
    return math.nan


def robust_summary(res) -> "pd.DataFrame":
    """One row per network of a stored ``dome/robust-*`` result: ``model``, ``seed``, ``clean_acc`` (on the
    ``n_clean`` images), ``eval_clean_acc`` (on the ``n_eval`` attacked ones), at the Table 2 budget ``pgd``,
    ``autoattack`` and ``worst_case`` robust accuracy, the worst case at every epsilon of the curve
    (``robust@<eps>``), the FAB distance's ``fab_median``, the last training loss ``train_loss``,
    ``stopped_early`` and ``checks_failed`` (names of the failed sanity checks, "" if none)."""
    import pandas as pd

    eps = res["eps"]
    rows = []
    for key, net in res["networks"].items():
        c = net["curve"]
        row = {"network": key, "model": net["model"], "seed": net["seed"], "clean_acc": net["clean"]["clean_acc"],
               "eval_clean_acc": c["clean_acc"]}
        for name in ("pgd", "autoattack", "worst_case"):
            row[name] = _at(c, eps, name)
        row.update({f"robust@{e:.4g}": _at(c, e, "worst_case") for e in c["eps_grid"]})
        med = net["distances"]["median"]
        row["fab_median"] = math.inf if med is None else float(med)
        row["train_loss"] = net["history"]["train_loss"][-1]
        row["stopped_early"] = bool(net["history"].get("stopped_early", False))
        row["checks_failed"] = ", ".join(ch["name"] for ch in net["sanity"]["checks"] if ch["passed"] is False)
        rows.append(row)
    return pd.DataFrame(rows)


def robust_means(res) -> "pd.DataFrame":
    """Per model of a stored ``dome/robust-*`` result: the number of ``seeds``, the mean and standard deviation
    over seeds (in %) of clean, PGD, AutoAttack and worst-case accuracy at the Table 2 budget, and the paper's
    benign, PGD and AA accuracy (``PAPER_TABLE2``, ResNet-18)."""
    import pandas as pd

    df = robust_summary(res)
    rows = []
    for model in dict.fromkeys(df["model"]):
        d = df[df["model"] == model]
        row = {"model": model, "seeds": len(d)}
        for col in ("clean_acc", "pgd", "autoattack", "worst_case"):
            v = 100 * d[col].to_numpy(dtype=float)
            row[f"{col}_mean"] = float(np.mean(v))
            row[f"{col}_sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
        p = PAPER_TABLE2[(res["dataset"], model)]
        row.update({"paper_clean": p[0], "paper_pgd": p[1], "paper_aa": p[2]})
        rows.append(row)
    return pd.DataFrame(rows)


def seeds_markdown(res, title: str) -> str:
    """The chapter's table of a stored ``dome/robust-*`` result as Markdown: per model (:func:`robust_means`) the
    seeds, mean ± standard deviation over seeds of clean, PGD, AutoAttack and worst-case accuracy (%) at the
    Table 2 budget (no spread with one seed; :data:`symact.report.MISSING` where not stored) and the paper's
    numbers, then a caption naming the sanity checks any network failed (:func:`robust_summary`) and the
    result's provenance. ``title`` heads the first column."""
    from symact.report import is_missing, markdown_table, number

    def spread(r, key):
        sd = r[f"{key}_sd"]
        return number(r[f"{key}_mean"]) + ("" if is_missing(sd) else f" ± {sd:.2f}")

    rows = [[MODEL_NAMES[r.model], r.seeds, spread(r, "clean_acc"), spread(r, "pgd"), spread(r, "autoattack"),
             spread(r, "worst_case"), f"{r.paper_clean:.2f} / {r.paper_pgd:.2f} / {r.paper_aa:.2f}"]
            for _, r in robust_means(res).iterrows()]
    table = markdown_table([title, "seeds", "clean", "PGD", "AutoAttack", "worst case", "paper (benign / PGD / AA)"],
                           rows)
    summ = robust_summary(res)
    failed = [f"{n} ({c})" for n, c in zip(summ.network, summ.checks_failed) if c]
    return (table + f"\n\nMean ± standard deviation over seeds of accuracy (%) at $\\varepsilon$ = "
            f"{res['eps']:.4g} on the first {res['n_eval']:,} test images ({res['data']}); clean accuracy on the "
            "test images the config names. Sanity checks failed (a sign of gradient masking): "
            + (", ".join(failed) if failed else "none") + f". *{res.caption()}*")


def _configs(network: str, dataset: str) -> dict:
    paper = RobustConfig(dataset=dataset, network=network, eps_grid=EPS_GRIDS[dataset])
    if network == "resnet18":  # a GPU job: AutoAttack on 500 images, three epsilons, so a unit fits one call
        grid = {"mnist": (8 / 255, 0.1, 0.3), "fashion-mnist": (8 / 255, 0.1, 0.2),
                "cifar10": (4 / 255, 8 / 255, 16 / 255)}[dataset]
        paper = dataclasses.replace(paper, n_eval=500, eps_grid=grid)
    # quick: 2 epochs on 5,000 images, attacks on 50 images at 8/255 and the largest epsilon. By CPU_SECONDS at most
    # about 42 CPU-minutes per LeNet-5 MNIST experiment for AutoAttack at 8/255 (9 networks; MDOME's three views are
    # 60 % of it), under 50 with training and the rest (about 25 minutes on two cores): it is not part of the
    # chapter's quick build, which only shows stored results
    quick = dataclasses.replace(paper, epochs=2, n_train=5000, n_clean=1000, n_eval=50, pgd_steps=10,
                                pgd_restarts=1, eps_grid=(8 / 255, max(paper.eps_grid)), fab_steps=20, sanity_steps=10,
                                square_queries=200)
    # smoke: every code path in seconds. One seed; the curve at one large epsilon, where APGD-CE breaks every
    # image and AutoAttack's Square (5,000 queries, however few the images) never runs
    smoke = dataclasses.replace(quick, seeds=(0,), n_train=256, n_clean=64, n_eval=8, epochs=1, pgd_steps=3,
                                eps_grid=(0.5,), fab_steps=3, sanity_steps=2, square_queries=10)
    if network == "resnet18":  # the LeNet-5 smoke runs cover every model's code path; here the network's
        smoke = dataclasses.replace(smoke, models=("baseline",), n_train=32, batch_size=32, n_clean=8, n_eval=2)
    return {"smoke": smoke, "quick": quick, "paper": paper}


#: every registered experiment, keyed (network, dataset): ``dome/robust-<network>-<dataset>``. ResNet-18 is a
#: GPU job at quick and paper (tools/device_dome.sh); its smoke profile is kept small enough for CPU tests.
ROBUST = {(net, ds): experiment("dome", f"robust-{net}-{ds}", _configs(net, ds), units=_units)(robust_run)
          for net in NETWORKS for ds in DATASETS}


# --------------------------------------------------------------------------- the claims of Table 2

from symact.claims import claim  # noqa: E402
from symact.experiments import verdicts as _vd  # noqa: E402

_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_MODEL_NAMES = {"pdome": "PDOME", "mdome": "MDOME"}


def table2_judgement(dataset: str, model: str, profile: str, network: str = "lenet"):
    """The Table 2 judgement of ``model`` against the baseline on ``dataset`` at ``profile``, from stored results
    only: the seeds of ``dome/robust-<network>-<dataset>`` (:func:`symact.experiments.verdicts.dome_seeds`) where
    stored, else the earlier one-network cells ``dome/table2-lenet-<dataset>-<model>`` (rates only, the
    10-iteration cascade: :func:`symact.experiments.verdicts.dome_table2`, which then says "inconclusive" or
    "not run at a converged protocol"); None when neither is stored at ``profile``."""
    from symact.experiments import dome

    paper, paper_b = PAPER_TABLE2[(dataset, model)], PAPER_TABLE2[(dataset, "baseline")]
    seeds = ROBUST[(network, dataset)].stored(profile)
    if seeds is not None:
        return _vd.dome_seeds(seeds, model, paper=paper, paper_baseline=paper_b, name=_MODEL_NAMES[model])
    if network != "lenet":
        return None
    old, base = (dome.TABLE2[("lenet", dataset, m)].stored(profile) for m in (model, "baseline"))
    if old is None or base is None:
        return None
    return _vd.dome_table2(old, base, paper, paper_b, name=_MODEL_NAMES[model])


def _register(dataset: str, model: str) -> None:
    paper, base = PAPER_TABLE2[(dataset, model)][2], PAPER_TABLE2[(dataset, "baseline")][2]
    extra = {("fashion-mnist", "pdome"): ' ("PDOME emerges as the most robust")',
             ("cifar10", "mdome"): ' ("MDOME supersedes the baseline")'}.get((dataset, model), "")
    text = (f"Under fast adversarial training, {_MODEL_NAMES[model]} changes AutoAttack accuracy at eps 8/255 on "
            f"{_NAMES[dataset]} by {paper - base:+.2f} points against the baseline ({paper:.2f} % against "
            f"{base:.2f} %){extra}.")
    claim(f"dome/table2-{dataset}-{model}", chapter="dome", section="dome-table2", source="dome.txt, Table 2, Sec. 7",
          text=text)(lambda profile: table2_judgement(dataset, model, profile))


for _ds in DATASETS:
    for _m in ("pdome", "mdome"):
        _register(_ds, _m)


# --------------------------------------------------------------------------- what the paper profile costs

#: CPU seconds on one thread of this project's shared two-core machine (2026-12-07, under the load of other jobs),
#: measured on units made small: ``train`` per image and epoch of FAT (one epoch on 2,000 images per model;
#: Fashion-MNIST has MNIST's shapes), and, per image and epsilon, ``pgd`` (PGD-50 x 10 on the training loss) and
#: ``autoattack`` (the official cascade) on 12 MNIST images at 1/255, which breaks none of them, so that every
#: attack runs to its end (MDOME runs AutoAttack on three views: three times that); ``fab`` per image (FAB, 100
#: steps). The sanity checks (FGSM, PGD-50 and PGD-100, Square 1,000 queries, a PGD curve) are counted as one more
#: PGD-50 x 10. CIFAR-10's attacks are scaled by its training cost relative to MNIST's.
CPU_SECONDS = {
    "train": {("mnist", "baseline"): 1.22e-3, ("mnist", "pdome"): 1.04e-3, ("mnist", "mdome"): 0.99e-3,
              ("cifar10", "baseline"): 2.85e-3, ("cifar10", "pdome"): 3.57e-3, ("cifar10", "mdome"): 3.18e-3},
    "pgd": 0.33,
    "autoattack": 3.39,
    "fab": 0.58,
}


def paper_cost(network: str = "lenet") -> "pd.DataFrame":
    """The CPU cost of the ``paper`` profile of ``dome/robust-<network>-<dataset>``, extrapolated from
    :data:`CPU_SECONDS`, one row per data set: ``dataset``, ``networks``, ``units``, ``train_hours`` (every
    epoch run; the early stop can only shorten it) and ``attack_hours`` (an upper bound: every image robust at
    every epsilon until the last component of every attack), ``total_hours``; CPU-hours on one thread."""
    import pandas as pd

    if network != "lenet":
        raise ValueError("CPU costs are measured for the LeNet-5 experiments only (ResNet-18 is a GPU job)")
    rows = []
    for ds in DATASETS:
        cfg = ROBUST[(network, ds)].configs["paper"]
        kind = "cifar10" if ds == "cifar10" else "mnist"
        n_train = len(data.load(ds).head(cfg.n_train))
        rate = {m: CPU_SECONDS["train"][(kind, m)] for m in cfg.models}
        scale = (np.mean([CPU_SECONDS["train"][("cifar10", m)] for m in cfg.models])
                 / np.mean([CPU_SECONDS["train"][("mnist", m)] for m in cfg.models])) if kind == "cifar10" else 1.0
        train_s = attack_s = 0.0
        for m in cfg.models:
            train_s += len(cfg.seeds) * cfg.epochs * n_train * rate[m]
            aa = CPU_SECONDS["autoattack"] * (3 if m == "mdome" else 1)
            per_image = len(cfg.eps_grid) * (CPU_SECONDS["pgd"] + aa) + CPU_SECONDS["fab"] + CPU_SECONDS["pgd"]
            attack_s += len(cfg.seeds) * cfg.n_eval * per_image * scale
        rows.append({"dataset": ds, "networks": len(cfg.seeds) * len(cfg.models), "units": len(_units(cfg)),
                     "train_hours": train_s / 3600, "attack_hours": attack_s / 3600,
                     "total_hours": (train_s + attack_s) / 3600})
    return pd.DataFrame(rows)


def cost_markdown(cost) -> str:
    """:func:`paper_cost` as a Markdown table."""
    lines = ["| data set | networks | units | training (CPU-h) | attacks, upper bound (CPU-h) | total (CPU-h) |",
             "|---|---|---|---|---|---|"]
    for _, r in cost.iterrows():
        lines.append(f"| {_NAMES[r.dataset]} | {r.networks} | {r.units} | {r.train_hours:.1f} | {r.attack_hours:.0f} "
                     f"| {r.total_hours:.0f} |")
    return "\n".join(lines)
