"""The SAF chapter's strong-attack evaluation on the evaluation engine, with seeds (issue 29).

``strong-<dataset>`` trains the plain network and mReLU-r-m of saf.txt Tables 1/3 (the training protocol of
``robust-<dataset>-<model>``, :mod:`symact.experiments.saf`) for several seeds and evaluates every network
with :mod:`symact.evaluation`, under the paper's decision rule (:func:`symact.experiments.saf.decide`):

- a robustness curve over ``eps_grid`` (:func:`symact.evaluation.robustness_curve`): Eq. 10 clipped, PGD on the
  training loss, PGD on the cross-entropy (robust networks), the nonsense-aware margin PGD
  (:class:`symact.attacks.NonsenseMarginPGD`), the official AutoAttack and Square, per image, and the worst case
  over all of them;
- minimum-norm L-infinity distances (FAB, :func:`symact.evaluation.min_norm_distances`);
- the gradient-masking checks of Carlini et al. (:func:`symact.evaluation.run_sanity`, the plain network of the
  same seed as the transfer surrogate);
- PGD from noise towards a confident class (:class:`symact.attacks.NoiseToClassPGD`): the fraction of nonsense
  images still rejected, over ``noise_eps``.

Units (:mod:`symact.store.units`): ``train-<model>-seed<s>`` (a zoo network), ``curve-<model>-seed<s>``,
``extra-<model>-seed<s>`` (distances, sanity, noise). Run at the paper profile with
``python -m symact run saf/strong-mnist --profile paper --workers 2`` (or ``tools/device_saf.sh`` on a GPU).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from symact import attacks, data
from symact.device import get_device
from symact.evaluation import decode_outcomes, min_norm_distances, robustness_curve, run_sanity
from symact.experiments import saf
from symact.experiments import verdicts as vd
from symact.results import experiment
from symact.store.units import Unit, gpu_resources
from symact.train import place

__all__ = ["EQ10_BETA", "FIRST_ATTACKS", "FIRST_ATTACK_NAMES", "STRONG", "STRONG_EPS", "StrongConfig", "accuracy_se",
           "first_strong_acc", "first_strong_cell", "first_strong_markdown", "first_strong_runs", "first_strong_table",
           "strong_findings",
           "loss_masking_table", "MEASURED_SECONDS_PER_IMAGE", "noise_rejection", "paper_cost", "outcomes_at", "seed_table", "strong_run"]


@dataclass(frozen=True)
class StrongConfig:
    """The strong evaluation of ``models`` on ``dataset`` over ``seeds``.

    Training: the paper profile of ``robust-<dataset>-<model>`` (:class:`symact.experiments.saf.RobustConfig`:
    optimiser, schedule, tricks) with ``epochs`` (None: that profile's, 20 on MNIST, 45 plain and 90 robust on
    CIFAR-10) on the first ``n_train`` training images (None: all) and the seed. Evaluation on the first
    ``n_images`` test images: at each ``eps_grid`` budget (L-infinity, clipped), PGD-``pgd_steps`` (step eps/4)
    with ``pgd_restarts``, the cascade ``cascade`` (``"autoattack"``: the official one; None: skipped) and
    Square with ``square_queries``; FAB distances (``fab_steps``) on the first ``n_distance``; the sanity checks
    at ``sanity_eps`` (``sanity_steps``, Square ``sanity_queries``); PGD-``pgd_steps`` from ``n_noise`` noise
    images at each ``noise_eps``.
    """

    dataset: str = "mnist"
    models: tuple[str, ...] = ("plain", "mrelu-r-m")
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    n_train: int | None = None
    n_images: int = 500
    eps_grid: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3)
    pgd_steps: int = 50
    pgd_restarts: int = 5
    cascade: str | None = "autoattack"
    square_queries: int = 5000
    n_distance: int = 500
    fab_steps: int = 100
    sanity_eps: float = 0.1
    sanity_steps: int = 50
    sanity_queries: int = 1000
    n_noise: int = 500
    noise_eps: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)
    eval_batch: int = 500


def _train_config(cfg: StrongConfig, model: str, seed: int) -> saf.RobustConfig:
    base = saf.ROBUST[(cfg.dataset, model)].configs["paper"]
    return dataclasses.replace(base, epochs=cfg.epochs or base.epochs, n_train=cfg.n_train, seed=seed)


def _train_unit(cfg: StrongConfig, model: str, seed: int, checkpoint=None) -> dict:
    """Train one network: its history and weights (a zoo network)."""
    net, _, hist = saf.train_network(_train_config(cfg, model, seed),
                                     checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")
    return {"history": hist, "weights": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "builder": "symact.experiments.saf:build_model", "builder_kwargs": {"dataset": cfg.dataset, "name": model}}


def _network(cfg: StrongConfig, model: str, trained: dict):
    net = saf.build_model(cfg.dataset, model)
    net.load_state_dict(trained["weights"])
    place(net)
    return net.eval()


def _kinds(model: str) -> tuple[bool, bool]:
    base, flags = saf.parse_model(model)
    return base != "plain", "m" in flags


def _curve_unit(cfg: StrongConfig, model: str, seed: int, trained: dict) -> dict:
    """The robustness curve of one network under every attack of :func:`saf.strong_attacks` (margin included)."""
    net = _network(cfg, model, trained)
    robust, ns = _kinds(model)
    loss_fn = saf.model_loss(cfg.dataset, model)
    test = data.load(cfg.dataset, train=False).head(cfg.n_images)

    def make(m, eps):
        return saf.strong_attacks(m, eps, loss_fn, robust, ns, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts,
                                  seed=seed, cascade=cfg.cascade, square_queries=cfg.square_queries, margin=True)

    return robustness_curve(net, test, make, cfg.eps_grid, predict=saf.decision_rule(robust, ns),
                            stop_at_zero=False, batch_size=cfg.eval_batch, progress=False)


def noise_rejection(model, noise: torch.Tensor, robust: bool, nonsense_class: bool, eps_grid, steps: int,
                    seed: int = 0, batch: int = 500) -> dict:
    """The fraction of noise images the paper's rule still rejects after :class:`symact.attacks.NoiseToClassPGD`
    (``steps``, step eps/4) at each budget in ``eps_grid``, and the mean top real-class confidence.

    Returns ``{"n", "eps": [0, *eps_grid], "rejected": [fraction per eps], "top_confidence": [...],
    "outcome": [per-image rejected, encoded, per eps]}``.
    """
    from symact.evaluation import encode_outcomes

    rule = saf.decision_rule(robust, nonsense_class)
    label = torch.full((len(noise),), saf.NONSENSE, dtype=torch.long, device=noise.device)
    out = {"n": len(noise), "eps": [0.0, *[float(e) for e in eps_grid]], "rejected": [], "top_confidence": [],
           "outcome": []}
    for eps in out["eps"]:
        kept, conf = [], []
        for i in range(0, len(noise), batch):
            x, y = noise[i:i + batch], label[i:i + batch]
            if eps > 0:
                x = attacks.NoiseToClassPGD(model, eps, eps / 4, steps, num_classes=10,
                                            nonsense=saf.NONSENSE if nonsense_class else None,
                                            outputs="log" if robust else "logits", seed=seed, predict=rule)(x, y)
            with torch.no_grad():
                o = model(x)
            kept.append((rule(o) == saf.NONSENSE).cpu())
            conf.append(saf.confidences(o, robust)[:, :10].amax(1).cpu())
        k = torch.cat(kept)
        out["rejected"].append(float(k.float().mean()))
        out["top_confidence"].append(float(torch.cat(conf).mean()))
        out["outcome"].append(encode_outcomes(k))
    return out


def _extra_unit(cfg: StrongConfig, model: str, seed: int, trained: dict, surrogate: dict | None = None) -> dict:
    """FAB distances, the sanity checks (the plain network of the same seed as surrogate) and the noise attack."""
    net = _network(cfg, model, trained)
    robust, ns = _kinds(model)
    rule = saf.decision_rule(robust, ns)
    test = data.load(cfg.dataset, train=False)
    dist = min_norm_distances(net, test.head(cfg.n_distance), norm="Linf", method="fab", steps=cfg.fab_steps,
                              predict=rule, batch_size=cfg.eval_batch, progress=False)
    sur = None if surrogate is None else _network(cfg, "plain", surrogate)
    san = run_sanity(net, test.head(cfg.n_images), cfg.sanity_eps, surrogate=sur, seed=seed, steps=cfg.sanity_steps,
                     square_queries=cfg.sanity_queries, predict=rule, batch_size=cfg.eval_batch, progress=False)
    noise = saf.nonsense_samples(cfg.n_noise, test.shape, torch.Generator().manual_seed(seed + 11))
    nr = noise_rejection(net, noise.to(get_device()), robust, ns, cfg.noise_eps, cfg.pgd_steps, seed=seed,
                         batch=cfg.eval_batch)
    return {"distances": dist, "sanity": san, "noise": nr}


def _units(cfg: StrongConfig) -> list[Unit]:
    if cfg.dataset not in saf.MODELS:
        raise ValueError(f"dataset must be one of {sorted(saf.MODELS)}, got {cfg.dataset!r}")
    for m in cfg.models:
        if m not in saf.MODELS[cfg.dataset]:
            raise ValueError(f"model {m!r} is not trained on {cfg.dataset}; expected one of {saf.MODELS[cfg.dataset]}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {cfg.seeds}")
    units = []
    for s in cfg.seeds:
        for m in cfg.models:
            units.append(Unit(f"train-{m}-seed{s}", _train_unit, (cfg, m, s), checkpoint=True, zoo=True,
                              resources=gpu_resources()))
    for s in cfg.seeds:
        for m in cfg.models:
            units.append(Unit(f"curve-{m}-seed{s}", _curve_unit, (cfg, m, s), needs=(f"train-{m}-seed{s}",),
                              resources=gpu_resources()))
            sur = (f"train-plain-seed{s}",) if "plain" in cfg.models and m != "plain" else ()
            units.append(Unit(f"extra-{m}-seed{s}", _extra_unit, (cfg, m, s), needs=(f"train-{m}-seed{s}", *sur),
                              resources=gpu_resources()))
    return units


def strong_run(cfg: StrongConfig, outputs: dict) -> dict:
    """Combine: per model and seed, the training history's last loss, the curve (with per-image outcomes), the
    distances, the sanity checks and the noise attack."""
    nets = {}
    for m in cfg.models:
        for s in cfg.seeds:
            tr, extra = outputs[f"train-{m}-seed{s}"], outputs[f"extra-{m}-seed{s}"]
            hist = tr["history"]
            nets[f"{m}/seed{s}"] = {
                "model": m, "seed": s, "train_loss": hist["train_loss"][-1] if hist.get("train_loss") else None,
                "curve": outputs[f"curve-{m}-seed{s}"], "distances": extra["distances"],
                "sanity": extra["sanity"]["checks"], "noise": extra["noise"]}
    return {"data": data.load(cfg.dataset, train=False).description, "networks": nets}


def _configs(dataset: str) -> dict:
    if dataset == "mnist":
        paper = StrongConfig()
    else:
        paper = StrongConfig(dataset="cifar10", eps_grid=(0.005, 0.01, 0.02, 0.03, 8 / 255), sanity_eps=0.01,
                             noise_eps=(0.01, 0.02, 0.03))
    smoke = dataclasses.replace(paper, seeds=(0,), epochs=1, n_train=512, n_images=16, eps_grid=paper.eps_grid[1:2],
                                pgd_steps=3, pgd_restarts=1, cascade=None, square_queries=20, n_distance=8,
                                fab_steps=5, sanity_steps=3, sanity_queries=20, n_noise=16,
                                noise_eps=paper.noise_eps[-1:], eval_batch=64)
    quick = dataclasses.replace(paper, epochs=3, n_train=10000, n_images=100, eps_grid=paper.eps_grid[1::2],
                                pgd_steps=10, pgd_restarts=1, cascade=None, square_queries=300, n_distance=100,
                                fab_steps=20, sanity_steps=10, sanity_queries=300, n_noise=100,
                                noise_eps=paper.noise_eps[1::2], eval_batch=100)
    return {"smoke": smoke, "quick": quick, "paper": paper}


#: the strong evaluations, by data set
STRONG = {ds: experiment("saf", f"strong-{ds}", _configs(ds), units=_units)(strong_run) for ds in saf.MODELS}


def seed_table(result, eps: float, key: str = "worst_case"):
    """Per network of a stored ``strong-<dataset>`` result: model, seed, clean accuracy and robust accuracy at
    ``eps`` under ``key`` (an attack name or ``"worst_case"``), as a :class:`pandas.DataFrame`."""
    import pandas as pd

    rows = []
    for name, net in result["networks"].items():
        c = net["curve"]
        if float(eps) not in [float(e) for e in c["eps"]]:
            raise ValueError(f"eps {eps} is not on the stored curve (eps {c['eps']})")
        i = [float(e) for e in c["eps"]].index(float(eps))
        rows.append({"model": net["model"], "seed": net["seed"], "clean_acc": c["clean_acc"],
                     "robust_acc": c["robust_acc"][key][i], "median_linf": net["distances"]["median"],
                     "noise_rejected": net["noise"]["rejected"][-1]})
    return pd.DataFrame(rows)


def outcomes_at(net: dict, eps: float, key: str) -> np.ndarray:
    """The per-image robust outcomes of one network of a stored result under ``key`` at ``eps``."""
    c = net["curve"]
    i = [float(e) for e in c["eps"]].index(float(eps))
    pt = c["points"][i]
    entry = pt["worst_case"] if key == "worst_case" else pt["attacks"][key]
    return decode_outcomes(entry["outcome"], pt["n"])



# --------------------------------------------------------------------------------------------
# What a paper-profile run costs on a CPU
# --------------------------------------------------------------------------------------------

#: CPU seconds per image of each attack at the paper profile's settings (eps 0.1, mReLU-r-m trained 3 epochs,
#: one thread, this project's shared 2-core machine under a load of about 12, 2026-12-07), measured on 20 test
#: images with :func:`symact.evaluation.evaluate`: the basis of :func:`paper_cost`. An attack on an image it
#: breaks early costs less (AutoAttack's later components and Square stop), so at large budgets these are
#: upper bounds.
MEASURED_SECONDS_PER_IMAGE = {"eq10": 0.012, "pgd": 0.24, "pgd-ce": 0.21, "pgd-margin": 0.21, "autoattack": 5.7,
                              "square": 3.2}


def paper_cost(cfg: StrongConfig, train_seconds: float, robust_fraction: float = 0.5):
    """The CPU seconds (one thread) of a run of ``cfg``, per part, as a :class:`pandas.DataFrame` (``part``,
    ``units``, ``seconds``): training (``train_seconds`` per network, e.g. a stored paper-profile run's), the
    curves (:data:`MEASURED_SECONDS_PER_IMAGE` scaled by images and by the PGD steps and restarts against the
    measured 50 x 5, with AutoAttack and Square at ``robust_fraction`` of their full cost over the budgets, as
    images broken early stop them), and the distances, sanity checks and noise attack (PGD-sized: 2, 3 and
    ``len(noise_eps)`` PGD runs per image)."""
    import pandas as pd

    nets = len(cfg.models) * len(cfg.seeds)
    pgd = cfg.pgd_steps * cfg.pgd_restarts / 250
    per_eps = {k: v * (pgd if k.startswith("pgd") else 1) for k, v in MEASURED_SECONDS_PER_IMAGE.items()}
    if not cfg.cascade:
        per_eps.pop("autoattack")
    per_eps["square"] *= cfg.square_queries / 5000
    full = sum(v for k, v in per_eps.items() if k not in ("autoattack", "square"))
    partial = sum(v for k, v in per_eps.items() if k in ("autoattack", "square")) * robust_fraction
    curve = (full + partial) * cfg.n_images * len(cfg.eps_grid)
    pgd_img = MEASURED_SECONDS_PER_IMAGE["pgd"] * pgd
    extra = pgd_img * (2 * cfg.n_distance + 3 * cfg.n_images + len(cfg.noise_eps) * cfg.n_noise)
    rows = [("train", nets, nets * train_seconds), ("curve", nets, nets * curve), ("extra", nets, nets * extra)]
    df = pd.DataFrame(rows, columns=["part", "units", "seconds"])
    return pd.concat([df, pd.DataFrame([{"part": "total", "units": int(df.units.sum()),
                                         "seconds": float(df.seconds.sum())}])], ignore_index=True)


# --------------------------------------------------------------------------------------------
# The first strong evaluation (robust_run's "strong" section): tables for the chapter
# --------------------------------------------------------------------------------------------

#: the attacks of the first strong evaluation, in the order the chapter shows them
FIRST_ATTACKS = ("eq10", "pgd", "pgd-ce", "autoattack", "square", "worst")


def first_strong_table(results: dict, dataset: str):
    """The first strong evaluation of every stored ``robust-<dataset>-<model>`` result as a
    :class:`pandas.DataFrame`, one row per network, budget and attack, each described by the config that ran
    it: ``model``, ``profile``, ``eps``, ``attack`` (:data:`FIRST_ATTACKS`), ``acc``, ``wrong_class`` (None for
    the worst case), ``n`` (images it ran on), ``clean_acc``, ``pgd`` (e.g. ``"PGD-50x5"``), ``cascade`` (the
    config's ``autoattack``, None where it did not run), ``square_queries`` and ``outcomes`` (whether per-image
    outcomes are stored: the evaluation engine's runs keep them, the first loop's did not).

    ``results``: ``{(dataset, model): stored result}`` (missing or None entries are left out)."""
    import pandas as pd

    rows = []
    for model in saf.MODELS[dataset]:
        res = results.get((dataset, model))
        if res is None:
            continue
        cfg, st = res.provenance["config"], res["strong"]
        for eps in st["eps"]:
            entry = st[str(eps)]
            for atk in FIRST_ATTACKS:
                r = entry.get(atk)
                if r is None:
                    continue
                rows.append({"model": model, "profile": res.provenance["profile"], "eps": float(eps), "attack": atk,
                             "acc": r["acc"], "wrong_class": r.get("wrong_class"), "n": r["n"],
                             "clean_acc": st["clean_acc"], "pgd": f"PGD-{cfg['pgd_steps']}x{cfg['pgd_restarts']}",
                             "cascade": cfg.get("autoattack") if "autoattack" in entry else None,
                             "square_queries": cfg["square_queries"], "outcomes": "outcome" in r})
    return pd.DataFrame(rows, columns=["model", "profile", "eps", "attack", "acc", "wrong_class", "n", "clean_acc",
                                       "pgd", "cascade", "square_queries", "outcomes"])


#: how the chapter's tables head each attack of :data:`FIRST_ATTACKS`
FIRST_ATTACK_NAMES = {"eq10": "Eq. 10 (clipped)", "pgd": "PGD (training loss)", "pgd-ce": "PGD-CE",
                      "autoattack": "cascade", "square": "Square", "worst": "worst case"}


def first_strong_acc(df, model: str, eps: float, attack: str) -> float | None:
    """The accuracy (a fraction) of ``model`` at budget ``eps`` under ``attack`` in a :func:`first_strong_table`,
    or None where that row is not stored."""
    if attack not in FIRST_ATTACKS:
        raise ValueError(f"attack must be one of {FIRST_ATTACKS}, got {attack!r}")
    if df.empty:
        return None
    g = df[(df["model"] == model) & (df["eps"] == eps) & (df["attack"] == attack)]
    return None if g.empty else float(g["acc"].iloc[0])


def first_strong_cell(row) -> str:
    """One cell of the chapter's first-evaluation table from a row of :func:`first_strong_table`: accuracy in %
    (one decimal) and, but for the worst case, the percentage decided as a wrong real class in brackets (no
    decimals), marked † where the cascade that ran was not the official AutoAttack."""
    if row.attack == "worst":
        return f"{100 * row.acc:.1f}"
    mark = "†" if row.attack == "autoattack" and row.cascade != "autoattack" else ""
    return f"{100 * row.acc:.1f} ({100 * row.wrong_class:.0f}){mark}"


def first_strong_markdown(df) -> str:
    """The chapter's first-evaluation table of one data set as Markdown: one row per model and budget (model,
    profile, clean accuracy in %, eps), one column per attack that ran (:data:`FIRST_ATTACK_NAMES`), each cell
    :func:`first_strong_cell`, "-" where an attack did not run on that row. ``df``: :func:`first_strong_table`."""
    from symact.report import markdown_table

    if df.empty:
        raise ValueError("no first strong evaluation is stored for this data set (empty table)")
    names = [a for a in FIRST_ATTACK_NAMES if a in set(df["attack"])]
    rows = []
    for (model, eps), g in df.groupby(["model", "eps"], sort=False):
        by = {r.attack: r for r in g.itertuples()}
        rows.append([model, g.profile.iloc[0], f"{100 * g.clean_acc.iloc[0]:.1f}", f"{eps:g}"]
                    + [first_strong_cell(by[a]) if a in by else "-" for a in names])
    return markdown_table(["model", "profile", "clean", "eps"] + [FIRST_ATTACK_NAMES[a] for a in names], rows,
                          align="llrr" + "r" * len(names))


def first_strong_runs(df) -> str:
    """What each group of rows of a :func:`first_strong_table` ran, from the configs stored with them, for the
    table's caption: per profile and PGD, the models, the images each attack ran on, the cascade (named by
    :func:`symact.attacks.attack_label`, marked †) and Square's queries; groups joined by "; "."""
    from symact.attacks import attack_label

    runs = []
    for (prof, pgd), g in df.groupby(["profile", "pgd"], sort=False):
        n = {a: int(g[g.attack == a].n.max()) for a in ("pgd", "autoattack", "square") if (g.attack == a).any()}
        if "pgd" not in n:
            raise ValueError(f"the {prof} rows ({pgd}) hold no PGD run")
        what = f"{pgd} on the first {n['pgd']:,} test images"
        what += (f", the {attack_label(g.cascade.dropna().iloc[0])}† on the first {n['autoattack']:,}"
                 if "autoattack" in n else ", no cascade")
        what += (f", Square ({int(g.square_queries.iloc[0]):,} queries) on the first {n['square']:,}"
                 if "square" in n else "")
        runs.append(f"{prof} profile ({', '.join(dict.fromkeys(g.model))}): {what}")
    return "; ".join(runs)


def accuracy_se(p: float, n: int) -> float:
    """The binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on ``n`` images, with
    ``p (1 - p)`` floored at ``1/n`` so that an accuracy of 0 or 1 still gets a non-zero error (the chapter's
    rough "clearly above" rule, ``a > b + 2 se(b) + 0.1``; the book's verdicts use
    :func:`symact.evaluation.verdict`). A formula, not a test, so nothing from scipy is needed."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a number of images >= 1, got {n!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"p must be an accuracy in [0, 1], got {p!r}")
    return math.sqrt(max(p * (1 - p), 1 / n) / n)


def strong_findings(results: dict, names: dict) -> list[str]:
    """What the first strong evaluation of every stored ``robust-<dataset>-<model>`` result shows that needs
    comment, as Markdown bullet lines (empty when nothing does):

    - where black-box Square leaves a lower accuracy than every gradient attack (Eq. 10, PGD, PGD-CE, the
      cascade), the word of :func:`symact.experiments.verdicts.saf_masking` on the two ("worse": masked
      gradients);
    - where the paper's one-step Eq. 10 attack leaves clearly more accuracy than PGD (by more than twice
      :func:`accuracy_se` of PGD's plus 10 points);
    - where more than 10 % of the images survive every attack at the largest budget.

    ``results``: ``{(dataset, model): stored result}`` (None entries left out); ``names``: how the text writes
    each data set (e.g. ``{"mnist": "MNIST"}``)."""
    findings = []
    for (ds, model), res in results.items():
        if res is None:
            continue
        st = res["strong"]
        for eps in st["eps"]:
            r = st[str(eps)]
            grad = min(r[k]["acc"] for k in ("eq10", "pgd", "pgd-ce", "autoattack") if k in r)
            mask = vd.saf_masking(res, eps)
            if mask is not None and r["square"]["acc"] < grad:
                masked = mask.word == "worse"
                findings.append(f"- {names[ds]} {model}, eps {eps:g}: Square (black-box) reaches "
                                f"{100 * r['square']['acc']:.1f} %, below every gradient attack ({100 * grad:.1f} %) "
                                f"as measured; the verdict rule on the two attacks' accuracies gives **{mask.word}**"
                                + (": a sign of masked gradients." if masked else
                                   f" ({mask.profile} profile" + ("" if mask.word == vd.NOT_CONVERGED else
                                                                   f": {mask.note}") + "), so this is no evidence "
                                   "of masking either way."))
            eq10, pgd = r["eq10"]["acc"], r["pgd"]["acc"]
            if eq10 > pgd + 2 * accuracy_se(pgd, r["pgd"]["n"]) + 0.1:
                findings.append(f"- {names[ds]} {model}, eps {eps:g}: the paper's one-step attack leaves "
                                f"{100 * eq10:.1f} % accuracy, PGD {100 * pgd:.1f} %.")
        last = st[str(st["eps"][-1])]["worst"]["acc"]
        if last > 0.1:
            findings.append(f"- {names[ds]} {model}: {100 * last:.1f} % of images survive every attack at the "
                            f"largest budget, eps {st['eps'][-1]:g}.")
    return findings


def loss_masking_table(results: dict, dataset: str, attack: str = "pgd", against: str = "pgd-ce"):
    """PGD on the training loss against PGD on the cross-entropy, for every stored robust network of
    ``dataset`` and budget, through :func:`symact.experiments.verdicts.saf_masking` (one network, the same
    images): a :class:`pandas.DataFrame` with ``model``, ``profile``, ``eps``, ``acc_loss`` (under ``attack``),
    ``acc_ce`` (under ``against``), ``word`` ("better": the training loss's own gradient leaves more images
    robust, the sign that it masks it) and ``judgement`` (the :class:`~symact.experiments.verdicts.Judgement`)."""
    import pandas as pd

    rows = []
    for model in saf.MODELS[dataset]:
        res = results.get((dataset, model))
        if res is None:
            continue
        st = res["strong"]
        for eps in st["eps"]:
            e = st[str(eps)]
            if attack not in e or against not in e:
                continue
            j = vd.saf_masking(res, eps, attack=attack, against=(against,))
            rows.append({"model": model, "profile": res.provenance["profile"], "eps": float(eps),
                         "acc_loss": e[attack]["acc"], "acc_ce": e[against]["acc"], "word": j.word, "judgement": j})
    return pd.DataFrame(rows, columns=["model", "profile", "eps", "acc_loss", "acc_ce", "word", "judgement"])


# --------------------------------------------------------------------------------------------
# The claims of saf.txt the chapter tests (symact.claims), judged from stored results only
# --------------------------------------------------------------------------------------------

from symact.claims import claim  # noqa: E402

#: (data set, beta) of the Eq. 10 claims: MNIST at beta = 0.1 (Table 2), CIFAR-10 at 0.03 (Table 4)
EQ10_BETA = {"mnist": 0.1, "cifar10": 0.03}
#: the budget of the strong-attack claims (the first of the stored first evaluation's budgets)
STRONG_EPS = {"mnist": 0.1, "cifar10": 0.01}
_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


def _pair(ds: str, profile: str):
    a, b = saf.ROBUST[(ds, "mrelu-r-m")].stored(profile), saf.ROBUST[(ds, "plain")].stored(profile)
    return (a, b) if a is not None and b is not None else (None, None)


def _paper_pct(ds, kind, model, beta):
    row = saf.PAPER_ERRORS[(ds, kind, model)]
    return 100 * row[(0.0, *saf.BETAS[ds]).index(beta)]


def _register(ds: str) -> None:
    beta = EQ10_BETA[ds]
    table = "Table 2" if ds == "mnist" else "Table 4"

    @claim(f"saf/eq10-{ds}", chapter="saf", section="saf-robust-cnns", source=f"saf.txt, {table} and Section 5",
           text=f"On {_NAMES[ds]}, mReLU-r-m's error under the one-step attack of Eq. 10 at beta = {beta:g} is far "
                f"below the plain network's ({_paper_pct(ds, 'adversarial', 'mrelu-r-m', beta):.1f} % against "
                f"{_paper_pct(ds, 'adversarial', 'plain', beta):.1f} %)")
    def _eq10(profile):
        a, b = _pair(ds, profile)
        if a is None:
            return None
        return vd.saf_robust(a, b, beta, name="mReLU-r-m", paper=saf.PAPER_ERRORS[(ds, "adversarial", "mrelu-r-m")],
                             paper_plain=saf.PAPER_ERRORS[(ds, "adversarial", "plain")])

    @claim(f"saf/nonsense-{ds}", chapter="saf", section="saf-robust-cnns", source=f"saf.txt, {table}",
           text=f"On {_NAMES[ds]}, mReLU-r-m rejects the noise (nonsense) images the plain network accepts "
                f"(error {_paper_pct(ds, 'nonsense', 'mrelu-r-m', 0.0):.1f} % against "
                f"{_paper_pct(ds, 'nonsense', 'plain', 0.0):.1f} %)")
    def _nonsense(profile):
        a, b = _pair(ds, profile)
        if a is None:
            return None
        return vd.saf_robust(a, b, 0.0, kind="nonsense", name="mReLU-r-m",
                             paper=saf.PAPER_ERRORS[(ds, "nonsense", "mrelu-r-m")],
                             paper_plain=saf.PAPER_ERRORS[(ds, "nonsense", "plain")])

    @claim(f"saf/strong-{ds}", chapter="saf", section="saf-strong", source="saf.txt, Sections 4 and 5 (Eq. 9)",
           text=f"On {_NAMES[ds]}, the robust CNN mReLU-r-m is more robust to adversarial perturbations than the "
                "plain network (tested beyond the paper: the worst case over PGD, AutoAttack and Square, per image)")
    def _strong(profile):
        s = STRONG[ds].stored(profile)
        if s is not None:
            return vd.saf_seeds(s, STRONG_EPS[ds])
        a, b = _pair(ds, profile)
        if a is None:
            return None
        return vd.saf_first_strong(a, b, STRONG_EPS[ds])


for _ds in saf.MODELS:
    _register(_ds)


@claim("saf/noise-confidence", chapter="saf", section="saf-features", source="saf.txt, Section 3.2 and Fig. 3",
       text="A plain CNN gives pure-noise (nonsense) images about 99 % confidence, and their features lie outside "
            "the high-density region of the clean ones")
def _noise_confidence(profile):
    f = saf.features.stored(profile)
    if f is None:
        return None
    return vd.single_network(f, effect=f["nonsense_confidence"] - 0.99, scale=100, unit="points", digits=1,
                             what="The plain network's mean top confidence on noise images minus the paper's 99 %",
                             paper="about 99 % confidence on noise")
