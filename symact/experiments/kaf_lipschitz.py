"""Lipschitz certificates for ReLU, KAF and MaxMin networks (the KAF chapter's section "Lipschitz certificates").

The thesis outline (``../shared/papers/kaf-robustness-thesis.txt``) names Lipschitz certificates as its first
future work; issue 27 (item 7) and issue 34 (item 4) ask for them with a MaxMin (GroupSort, Anil, Lucas and
Grosse 2019) network as the 1-Lipschitz baseline. The network is the thesis's small CNN
(:class:`symact.experiments.kaf.ThesisSmallCNN`: two blocks of two 3x3 convolutions, 32 then 64 filters, max
pooling, global average pooling, dense 128, dense 10) with ReLU, a per-channel KAF or MaxMin, under two trainings:

- ``standard``: the thesis's network as it is (batch normalisation, dropout), Adam, cross-entropy;
- ``lipschitz``: the same layers without batch normalisation and dropout, every convolution and dense layer under
  spectral normalisation (:func:`symact.lipschitz.spectral_normalise`), and for the KAF network the penalty
  :func:`symact.lipschitz.kaf_lipschitz_penalty` (weight ``penalty``) on its KAFs' Lipschitz constants; MaxMin
  and ReLU need none (their constant is 1).

Each network gets the upper bound on its Lipschitz constant (:func:`symact.lipschitz.lipschitz_bound`, the
layers' operator norms and the activations' exact constants, and the rigorous FFT variant), the certified radius
``margin / (sqrt(2) L)`` of every test image, and, for the ``aa_trainings``, official AutoAttack L2 at ``eps``
(36/255) on the same images. The certified accuracy can never exceed the AutoAttack accuracy:
:func:`sanity_table` checks it image by image (a certified image that AutoAttack breaks would mean a wrong
bound).

Tables from stored results: :func:`summary_table`, :func:`curve_table`, :func:`sanity_table`,
:func:`bound_table`. The published anchor, :data:`SOC_ANCHOR`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from symact import attacks, data, lipschitz, report
from symact.claims import claim
from symact.device import get_device, seed_everything
from symact.evaluation import decode_outcomes, encode_outcomes, evaluate
from symact.experiments.kaf import thesis_small_cnn
from symact.results import Unit, experiment, gpu_resources
from symact.train import TrainConfig, place, train

__all__ = ["LIPSCHITZ_ACTS", "LNAMES", "LipschitzConfig", "SOC_ANCHOR", "TRAININGS", "bound_table", "certified_by_seed",
           "certify", "curve_table", "kaf_lipschitz", "lipschitz_small_cnn", "model_layers", "sanity_table",
           "summary_display", "summary_glue", "summary_markdown", "summary_table"]

#: the activations of the experiment, by the name its units and tables use
LIPSCHITZ_ACTS = ("relu", "kaf", "maxmin")
#: the chapter's name of each activation
LNAMES = {"relu": "ReLU", "kaf": "KAF", "maxmin": "MaxMin"}
#: the two trainings
TRAININGS = ("standard", "lipschitz")
#: the published anchor (issue 27, item 7, which quotes it; ``anchors.md`` names SOC without numbers): SOC,
#: orthogonal convolutions with MaxMin (Singla and Feizi, ICML 2021), CIFAR-10, L2 eps 36/255, in %
SOC_ANCHOR = {"name": "SOC (Singla and Feizi 2021)", "clean": 76.9, "certified": 66.3, "eps": 36 / 255}


# --------------------------------------------------------------------------------------------------- the network


def lipschitz_small_cnn(act: str = "relu", act_kwargs: Mapping | None = None, training: str = "standard",
                        dropout: float = 0.25) -> nn.Module:
    """The thesis's small CNN (:func:`symact.experiments.kaf.thesis_small_cnn`) for ``training``:
    ``"standard"`` as it is (dropout ``dropout``); ``"lipschitz"`` without batch normalisation (replaced by
    identities: its eval-mode scale multiplies the bound) and dropout, with spectral normalisation of every
    convolution and dense layer. The zoo's builder (``"symact.experiments.kaf_lipschitz:lipschitz_small_cnn"``)."""
    if training not in TRAININGS:
        raise ValueError(f"training must be one of {TRAININGS}, got {training!r}")
    if training == "standard":
        return thesis_small_cnn(act, act_kwargs, dropout=dropout)
    model = thesis_small_cnn(act, act_kwargs, dropout=0.0)
    for i, m in enumerate(model.features):
        if isinstance(m, nn.BatchNorm2d):
            model.features[i] = nn.Identity()
    return lipschitz.spectral_normalise(model)


def model_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of a :class:`~symact.experiments.kaf.ThesisSmallCNN` in forward order (its forward is
    ``classifier(hidden(features(x)))``), for :func:`symact.lipschitz.lipschitz_bound`."""
    return [*model.features, *model.hidden, model.classifier]


# --------------------------------------------------------------------------------------------------- the experiment


@dataclass(frozen=True)
class LipschitzConfig:
    """ReLU, KAF and MaxMin networks (``acts``) under the trainings ``trainings``, one per seed of ``seeds``.

    Networks: :func:`lipschitz_small_cnn`; the KAF is per channel, ``kaf_D`` points on
    ``[-kaf_boundary, kaf_boundary]``, bandwidth rule ``kaf_bandwidth`` (``"thesis"``: ``gamma = 1/(6 Delta^2)``),
    initialised ``kaf_init`` (``"normal"``: ``N(0, 0.3^2)``, the thesis's). Training: Adam at ``lr`` (constant),
    no weight decay, mini-batches of ``batch_size``, ``epochs`` epochs on the first ``n_train`` CIFAR-10 training
    images (all when None), no augmentation; the ``lipschitz`` training adds ``penalty`` times
    :func:`symact.lipschitz.kaf_lipschitz_penalty` (target ``penalty_target`` per KAF layer) to the
    cross-entropy of the KAF network.

    Evaluation on the first ``n_test`` test images: the bound (operator norms by
    :func:`symact.lipschitz.operator_norm` and, beside it, the FFT bound), the certified radius of every image,
    certified accuracy at L2 ``eps``; for ``aa_trainings``, official AutoAttack L2 at ``eps``
    (:class:`symact.attacks.AutoAttack`, seed ``attack_seed``), or with ``aa_steps`` set (smoke only) its cascade
    at reduced strength (not AutoAttack).
    """

    acts: tuple[str, ...] = LIPSCHITZ_ACTS
    trainings: tuple[str, ...] = TRAININGS
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int | None = None
    n_test: int = 1000
    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3
    kaf_D: int = 20
    kaf_boundary: float = 3.0
    kaf_bandwidth: str = "thesis"
    kaf_init: str = "normal"
    penalty: float = 1.0
    penalty_target: float = 1.0
    eps: float = 36 / 255
    aa_trainings: tuple[str, ...] = ("lipschitz",)
    aa_steps: int | None = None
    square_queries: int = 5000
    attack_seed: int = 0


def _check_config(cfg: LipschitzConfig) -> None:
    bad = [a for a in cfg.acts if a not in LIPSCHITZ_ACTS] + [t for t in (*cfg.trainings, *cfg.aa_trainings)
                                                               if t not in TRAININGS]
    if bad:
        raise ValueError(f"unknown activations or trainings {bad}; expected some of {list(LIPSCHITZ_ACTS)} and "
                         f"{list(TRAININGS)}")
    if not cfg.acts or not cfg.seeds or not cfg.trainings or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ValueError("acts, trainings and seeds must be non-empty, seeds without repeats")
    if cfg.n_test < 1 or not (cfg.eps > 0 and math.isfinite(cfg.eps)) or cfg.penalty < 0:
        raise ValueError(f"need n_test >= 1, eps > 0 and penalty >= 0, got {cfg.n_test}, {cfg.eps}, {cfg.penalty}")
    if cfg.aa_steps is not None and (int(cfg.aa_steps) != cfg.aa_steps or cfg.aa_steps < 1):
        raise ValueError(f"aa_steps must be None (official AutoAttack) or an integer >= 1, got {cfg.aa_steps!r}")


def _spec(cfg: LipschitzConfig, act: str, training: str) -> dict:
    kwargs = {"relu": {}, "maxmin": {},
              "kaf": {"D": cfg.kaf_D, "boundary": cfg.kaf_boundary, "bandwidth": cfg.kaf_bandwidth,
                      "init": cfg.kaf_init}}[act]
    return {"act": act, "act_kwargs": kwargs, "training": training}


def _train_unit(cfg: LipschitzConfig, act: str, training: str, seed: int, checkpoint=None) -> dict:
    """One network of :func:`lipschitz_small_cnn`, trained as :class:`LipschitzConfig` says."""
    seed_everything(seed)
    spec = _spec(cfg, act, training)
    model = lipschitz_small_cnn(**spec)
    train_set = data.load("cifar10", train=True).head(cfg.n_train)
    test_set = data.load("cifar10", train=False).head(cfg.n_test)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer="adam", lr=cfg.lr, weight_decay=0.0,
                       schedule="constant", method="standard", early_stop=False, seed=seed)
    loss_fn = None
    if training == "lipschitz" and act == "kaf" and cfg.penalty > 0:
        def loss_fn(out, y):
            return F.cross_entropy(out, y) + cfg.penalty * lipschitz.kaf_lipschitz_penalty(model, cfg.penalty_target)
    history = train(model, train_set, tcfg, test=test_set, loss_fn=loss_fn,
                    checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")
    return {"act": act, "training": training, "seed": seed, "history": history, "n_train": len(train_set),
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.experiments.kaf_lipschitz:lipschitz_small_cnn", "builder_kwargs": spec}


def certify(model: nn.Module, test, eps: float, layers=None, batch_size: int = 250) -> dict:
    """The bound and the certificates of ``model`` on ``test`` (:class:`symact.data.ImageData`): ``bound``
    (operator norms), ``bound_fft`` (the rigorous FFT bound of the convolutions), the per-layer constants
    (``layers``: index, layer, constant, method, and ``fft`` where it differs), the activations' and linear
    layers' products, per-image ``radius`` (5 significant digits; negative: misclassified), ``certified``
    outcomes at ``eps`` (encoded) and ``certified_acc``. The certificate uses the larger of the two bounds."""
    model.eval()
    layers = model_layers(model) if layers is None else layers
    shape = tuple(test.x.shape[1:])
    start = time.perf_counter()
    b = lipschitz.lipschitz_bound(model, shape, layers=layers)
    bf = lipschitz.lipschitz_bound(model, shape, layers=layers, conv="fft")
    seconds = time.perf_counter() - start
    L = max(b.bound, bf.bound)
    dev = next(model.parameters()).device
    with torch.no_grad():
        r = torch.cat([lipschitz.certified_radius(model(x), y, L).cpu() for x, y in test.batches(batch_size, device=dev)])
    return {"bound": b.bound, "bound_fft": bf.bound, "bound_used": L, "bound_seconds": round(seconds, 2),
            "activation_product": b.product("activation"), "linear_product": b.product("linear"),
            "layers": [{"index": c.index, "layer": c.layer, "constant": float(f"{c.constant:.8g}"), "method": c.method,
                        "fft": float(f"{cf.constant:.8g}")} for c, cf in zip(b.layers, bf.layers)],
            "radius": [float(f"{v:.5g}") for v in r.tolist()],
            "certified": encode_outcomes((r > eps).numpy()), "certified_acc": lipschitz.certified_accuracy(r, eps),
            "n": int(len(r))}


def _cascade(cfg: LipschitzConfig, model: nn.Module):
    aa = attacks.AutoAttack(model, norm="L2", eps=cfg.eps, seed=cfg.attack_seed)
    if cfg.aa_steps is not None:  # smoke: the same components, fewer iterations and queries (not AutoAttack)
        for _, comp in aa.components[:3]:
            comp.steps = cfg.aa_steps
        aa.components[3][1].n_queries = cfg.square_queries
    return aa


def autoattack_label(cfg) -> str:
    """How prose and captions name the cascade that ``cfg`` (a config or its stored dict) ran."""
    steps = cfg["aa_steps"] if isinstance(cfg, Mapping) else cfg.aa_steps
    queries = cfg["square_queries"] if isinstance(cfg, Mapping) else cfg.square_queries
    if steps is None:
        return "AutoAttack"
    return (f"AutoAttack's cascade at reduced strength ({steps} iterations, Square with {queries:,} queries; "
            "not AutoAttack)")


def _eval_unit(cfg: LipschitzConfig, act: str, training: str, seed: int, trained: dict) -> dict:
    """Bound, certificates and (for ``aa_trainings``) AutoAttack L2 of one network of :func:`_train_unit`."""
    torch.manual_seed(cfg.attack_seed)
    dev = get_device()
    model = lipschitz_small_cnn(**trained["builder_kwargs"])
    model.load_state_dict(trained["weights"])
    place(model, dev)
    model.eval()
    test = data.load("cifar10", train=False).head(cfg.n_test)
    out = {"act": act, "training": training, "seed": seed, "certificate": certify(model, test, cfg.eps)}
    if training in cfg.aa_trainings:
        start = time.perf_counter()
        ev = evaluate(model, test, {"autoattack": _cascade(cfg, model)}, progress=False)
        out["evaluation"] = {k: v for k, v in ev.items() if k != "examples"}
        out["attack_seconds"] = round(time.perf_counter() - start, 2)
    return out


def _units(cfg: LipschitzConfig) -> list[Unit]:
    _check_config(cfg)
    units = []
    for seed in cfg.seeds:
        for training in cfg.trainings:
            for act in cfg.acts:
                key = f"{training}-{act}-seed{seed}"
                units.append(Unit(key, _train_unit, (cfg, act, training, seed), checkpoint=True, zoo=True,
                                  resources=gpu_resources()))
                units.append(Unit(f"eval-{key}", _eval_unit, (cfg, act, training, seed), needs=(key,),
                                  resources=gpu_resources()))
    return units


# Cost, measured at quick on this project's 2-core machine while other sessions loaded it (load average 12 to 27),
# one thread per unit, two workers: training 4,000 images x 2 epochs took 299 s (ReLU), 274 s (MaxMin) and 941 s
# (KAF, thesis bandwidth) standard, 89 s (ReLU) and 577 s (KAF, with the penalty) certification-trained; a bound
# and the certificates 12 to 15 s per network; AutoAttack L2 on the certification-trained networks dominates (its
# images are robust, so every component runs on them). That quick run (4,000 images, 200 test images) took over
# an hour; quick now trains on 2,000 images and certifies and attacks 100 (about half the cost, still more than
# the 15 minutes a quick profile should take when the machine is loaded). Paper is about 40 CPU-hours: a GPU run
# (tools/device_kaf.sh).
@experiment(
    "kaf",
    "kaf-lipschitz",
    {
        "smoke": LipschitzConfig(seeds=(0,), n_train=256, n_test=16, epochs=1, aa_steps=3, square_queries=20),
        "quick": LipschitzConfig(seeds=(0,), n_train=2000, n_test=100, epochs=2),
        "paper": LipschitzConfig(),
    },
    units=_units,
    converged=("paper",),
)
def kaf_lipschitz(cfg: LipschitzConfig, outputs: dict) -> dict:
    """:class:`LipschitzConfig`'s networks: one training unit per (training, activation, seed),
    ``<training>-<act>-seed<seed>`` (zoo ``kaf/kaf-lipschitz`` at ``paper``), and one evaluation unit each,
    ``eval-<training>-<act>-seed<seed>``.

    Returns ``data``, ``n_train``, ``n_test``, ``eps``, ``autoattack`` (the cascade's name) and ``networks``: per
    key, ``act``, ``training``, ``seed``, the training ``history``, ``certificate`` (:func:`certify`) and, for
    the ``aa_trainings``, ``evaluation`` (:func:`symact.evaluation.evaluate` with per-image outcomes).
    """
    nets = {}
    for seed in cfg.seeds:
        for training in cfg.trainings:
            for act in cfg.acts:
                key = f"{training}-{act}-seed{seed}"
                tr, ev = outputs[key], outputs[f"eval-{key}"]
                nets[key] = {"act": act, "training": training, "seed": seed, "history": tr["history"],
                             **{k: v for k, v in ev.items() if k not in ("act", "training", "seed")}}
    first = outputs[f"{cfg.trainings[0]}-{cfg.acts[0]}-seed{cfg.seeds[0]}"]
    return {"data": data.load("cifar10", train=False).description, "autoattack": autoattack_label(cfg),
            "n_train": first["n_train"], "n_test": cfg.n_test, "eps": cfg.eps, "networks": nets}


# --------------------------------------------------------------------------------------------------- tables


def _networks(res) -> list[tuple[str, dict]]:
    if not isinstance(res, Mapping) or "networks" not in res:
        raise ValueError("expected a stored kaf_lipschitz result (a dict with 'networks')")
    rank = {a: i for i, a in enumerate(LIPSCHITZ_ACTS)}
    trank = {t: i for i, t in enumerate(TRAININGS)}
    return sorted(res["networks"].items(), key=lambda kv: (trank.get(kv[1]["training"], 9),
                                                           rank.get(kv[1]["act"], 9), kv[1]["seed"]))


def summary_table(res):
    """One row per network: ``network``, ``training``, ``act``, ``seed``, ``clean`` (accuracy on the
    certified images), ``bound``, ``bound_fft``, ``activation_product``, ``linear_product``,
    ``median_radius`` (over correctly classified images; NaN if none), ``certified`` (at the result's eps) and
    ``autoattack`` (robust accuracy, NaN where not run). Fractions."""
    import pandas as pd

    rows = []
    for key, net in _networks(res):
        c = net["certificate"]
        r = np.asarray(c["radius"], dtype=float)
        ev = net.get("evaluation")
        aa = None
        if ev:
            entry = ev["attacks"]["autoattack"]
            aa = entry["robust_acc"]
        rows.append({"network": key, "training": net["training"], "act": net["act"], "seed": net["seed"],
                     "clean": float((r > 0).mean()), "bound": c["bound"], "bound_fft": c["bound_fft"],
                     "activation_product": c["activation_product"], "linear_product": c["linear_product"],
                     "median_radius": float(np.median(r[r > 0])) if (r > 0).any() else float("nan"),
                     "certified": c["certified_acc"], "autoattack": float("nan") if aa is None else aa})
    return pd.DataFrame(rows)


#: the columns of :func:`summary_table` that are accuracies (the rest are Lipschitz constants)
_ACCURACIES = ("clean", "certified", "autoattack")


def _constant(v) -> str:
    """A Lipschitz constant with three significant digits and thousands separators (``12,300``, ``1.23``);
    :data:`symact.report.MISSING` when missing."""
    return report.MISSING if report.is_missing(v) else f"{float(v):,.3g}"


def _check_summary(lsum) -> None:
    import pandas as pd

    if not isinstance(lsum, pd.DataFrame):
        raise TypeError(f"expected the DataFrame of summary_table, got {type(lsum).__name__}")
    missing = [c for c in ("training", "act", "seed", *_ACCURACIES, "bound", "bound_fft", "activation_product")
               if c not in lsum.columns]
    if missing:
        raise ValueError(f"expected a summary_table DataFrame; it lacks {', '.join(missing)}")


def summary_glue(lsum) -> dict:
    """Glue names and values from a :func:`summary_table`, per (training, activation), the mean over seeds of
    each of ``clean``, ``bound``, ``bound_fft``, ``certified``, ``autoattack`` and ``activation_product``:
    ``kl-<training>-<act>-<column>`` as a float and ``...-txt`` as text (accuracies as percentages, constants
    with three significant digits; :data:`symact.report.MISSING` when missing)."""
    _check_summary(lsum)
    out = {}
    means = lsum.groupby(["training", "act"], sort=False).mean(numeric_only=True)
    for (training, act), row in means.iterrows():
        for col in ("clean", "bound", "bound_fft", "certified", "autoattack", "activation_product"):
            v = float(row[col])
            out[f"kl-{training}-{act}-{col}"] = v
            out[f"kl-{training}-{act}-{col}-txt"] = report.pct(v) if col in _ACCURACIES else _constant(v)
    return out


def summary_display(lsum, cfg):
    """A :func:`summary_table` as the chapter shows it, one string per cell: network and seed, training, clean
    accuracy, the bound (operator norms and FFT), the activations' product, the certified accuracy (bold) and
    the cascade's accuracy (``cfg``: the experiment's config, for its name); then :data:`SOC_ANCHOR`'s row."""
    import pandas as pd

    _check_summary(lsum)
    cols = ["network", "training", "clean", "bound on $L$ (operator norms)", "bound (FFT)", "activations' product",
            "certified at 36/255", autoattack_label(cfg) + " L2 at 36/255"]
    rows = [[f"{LNAMES.get(r.act, r.act)}, seed {r.seed}", r.training, report.pct(r.clean), _constant(r.bound),
             _constant(r.bound_fft), _constant(r.activation_product), f"**{report.pct(r.certified)}**",
             report.pct(r.autoattack)] for r in lsum.itertuples()]
    soc = SOC_ANCHOR
    rows.append([f"{soc['name']}, published", "1-Lipschitz by construction", f"{report.number(soc['clean'], 1)} %",
                 "1", "", "", f"**{report.number(soc['certified'], 1)} %**", ""])
    return pd.DataFrame(rows, columns=cols)


def summary_markdown(lsum, cfg, caption: str) -> str:
    """:func:`summary_display` as a Markdown table followed by ``caption``."""
    shown = summary_display(lsum, cfg)
    return report.markdown_table(shown.columns, shown.itertuples(index=False), "llrrrrrr") + "\n\n" + caption


def curve_table(res, radii=None):
    """Certified accuracy against the L2 radius, one row per network and radius: ``network``, ``training``,
    ``act``, ``seed``, ``radius``, ``certified``. ``radii``: default 0 to 0.5 in 101 steps."""
    import pandas as pd

    radii = np.linspace(0, 0.5, 101) if radii is None else np.asarray(radii, dtype=float)
    rows = []
    for key, net in _networks(res):
        r = np.asarray(net["certificate"]["radius"], dtype=float)
        for eps in radii:
            rows.append({"network": key, "training": net["training"], "act": net["act"], "seed": net["seed"],
                         "radius": float(eps), "certified": float((r > eps).mean())})
    return pd.DataFrame(rows)


def sanity_table(res):
    """Per network with AutoAttack: ``certified``, ``autoattack``, ``certified_broken`` (images certified at eps
    that AutoAttack broke; must be 0) and ``ok`` (certified accuracy <= AutoAttack accuracy and none broken)."""
    import pandas as pd

    rows = []
    for key, net in _networks(res):
        ev = net.get("evaluation")
        if not ev:
            continue
        n = net["certificate"]["n"]
        cert = decode_outcomes(net["certificate"]["certified"], n)
        entry = ev["attacks"]["autoattack"]
        robust = decode_outcomes(entry["outcome"], ev["n"])
        broken = int((cert & ~robust).sum())
        rows.append({"network": key, "act": net["act"], "seed": net["seed"], "certified": float(cert.mean()),
                     "autoattack": entry["robust_acc"], "certified_broken": broken,
                     "ok": bool(broken == 0 and cert.mean() <= entry["robust_acc"] + 1e-12)})
    return pd.DataFrame(rows)


def bound_table(res, key: str):
    """The per-layer factors of one network's bound: ``index``, ``layer``, ``constant``, ``method``, ``fft``."""
    import pandas as pd

    nets = dict(_networks(res))
    if key not in nets:
        raise KeyError(f"no network {key!r}; the result has {list(nets)}")
    return pd.DataFrame(nets[key]["certificate"]["layers"])


# --------------------------------------------------------------------------------------------------- the claim


def certified_by_seed(res, act: str, training: str = "lipschitz") -> dict[int, float]:
    """Seed -> certified accuracy (at the result's eps) of the ``act`` network under ``training``."""
    return {net["seed"]: net["certificate"]["certified_acc"] for _, net in _networks(res)
            if net["act"] == act and net["training"] == training}


@claim("kaf/lipschitz-certified", chapter="kaf", section="kaf-lipschitz",
       source="kaf-robustness-thesis.txt, future work (Lipschitz certificates); issue 27 item 7",
       text="Under the same Lipschitz training (spectral normalisation, and a penalty on the KAFs' Lipschitz "
            "constants), a KAF network certifies more test images at L2 36/255 than a ReLU network")
def _lipschitz_certified(profile: str):
    """KAF minus ReLU certified accuracy at L2 eps, Lipschitz training, paired over seeds (stored results only)."""
    from symact.experiments import verdicts

    stored = kaf_lipschitz.stored(profile)
    if stored is None:
        return None
    a, b = certified_by_seed(stored, "kaf"), certified_by_seed(stored, "relu")
    if not a or not b:
        return None
    return verdicts.per_seed_rates(stored, a, b, what="KAF's certified accuracy at L2 36/255 minus ReLU's "
                                   "(Lipschitz training)",
                                   paper="none: the thesis names Lipschitz certificates as future work")
