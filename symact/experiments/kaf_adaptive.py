"""Adaptive attacks on k-WTA and KAF networks, and the smooth-adversarial-training rows (KAF chapter, issue 27
items 2 and 8).

**k-WTA, broken by an adaptive attack.** Xiao, Zhong and Zheng (2020) proposed k-Winners-Take-All as a defence;
Tramer, Carlini, Brendel and Madry (2020, "On adaptive attacks to adversarial example defenses") broke it: its
gradient jumps whenever the winners change, so PGD follows an uninformative direction, and an attack that
averages the gradient over Gaussian-perturbed inputs (:class:`symact.attacks.NoiseAveragedPGD`) or passes the
gradient straight through k-WTA (:class:`symact.attacks.BPDAPGD` with
:func:`symact.attacks.straight_through_kwta`) finds the adversarial images PGD misses.

**Adaptive attacks on KAF networks** (the thesis's last "future work", ``kaf-robustness-thesis.txt``): a KAF is
smooth, but a random or trained KAF can be wiggly (its slope changes sign many times on the dictionary's
interval), which can make its local gradient a poor guide. The attacks that use its structure: (a) PGD through
the KAF's exact Gaussian smoothing in the backward pass only (:func:`symact.attacks.smoothed_kaf`: the same
KAF with its bandwidth widened and its coefficients shrunk; the forward pass is the network's own), at a few
smoothing widths ``tau`` (``tau = 0`` is the exact gradient on the margin loss, the control); (b) EOT is not
needed: nothing in these networks is random at test time (dropout off, batch normalisation in eval mode; the
evaluation checks that two forward passes agree bit for bit); (c) transfer from the ReLU twin, the ReLU network
of the same experiment, architecture, training and seed (:class:`symact.evaluation.Transfer`). Every network
is also attacked by PGD, official AutoAttack and Square, and robustness is the worst case per image.

Two experiments:

- ``kaf/kaf-adaptive`` (:func:`kaf_adaptive`): the networks of ``kaf/kaf-candidates`` (standard training, the
  thesis's small CNN with ReLU, k-WTA and KAF), from the zoo where it holds them (the ``paper`` profile), else
  retrained by that experiment's own training unit (same config, same seed: the same recipe). Its stored
  result and config hash are not touched.
- ``kaf/kaf-adaptive-fat`` (:func:`kaf_adaptive_fat`): the leaderboard's KAF rows under fast adversarial
  training (``benchmark/cifar10-kaf``, ``benchmark/cifar10-kaf-elu``) and their ReLU twins
  (``benchmark/cifar10-relu``), read from the zoo at the leaderboard's ``paper`` protocol; at ``smoke`` the
  networks are trained here by the leaderboard's own units at its smoke protocol. Where the zoo lacks a network
  the unit stops with an error naming the command that trains it.

Smooth adversarial training (Xie, Tan, Gong, Yuille and Le 2020): the leaderboard rows ``relu``, ``softplus``,
``silu``, ``gelu`` and ``elu`` are registered by :mod:`symact.benchmark`; this module adds the ablation row
``relu-softplus-grad`` (ReLU forward, the parametric softplus's derivative backward,
:class:`symact.activations.ReLUSoftplusGrad`) for both data sets with :func:`symact.benchmark.register_row`.
:func:`smooth_at_table` reads the rows that are stored.

The analysis reads stored results and returns pandas DataFrames: :func:`accuracy_table`,
:func:`adaptive_gain`, :func:`advantage_table`, :func:`smooth_at_table`; the chapter's tables built from them
(:func:`kwta_display`, :func:`adaptive_display`, :func:`smooth_display`, each with a ``*_markdown``); the claims
the chapter tests are registered at the end of the module.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torchattacks
from torch import nn

from symact import attacks, benchmark, data, report
from symact.claims import claim
from symact.device import get_device
from symact.evaluation import Transfer, decode_outcomes, evaluate, worst_case
from symact.experiments import kaf as kexp
from symact.experiments import verdicts
from symact.results import Unit, config_hash, experiment, gpu_resources
from symact.train import place

__all__ = ["ADAPTIVE_ROWS", "AdaptiveAttacks", "AdaptiveConfig", "FatAdaptiveConfig", "SMOOTH_ROWS", "STANDARD",
           "TRAMER_KWTA_RECALLED", "XIE_RECALLED", "accuracy_table", "adaptive_columns", "adaptive_display",
           "adaptive_gain", "adaptive_markdown", "advantage_table", "attack_names", "cascade_key", "cascade_label",
           "kaf_adaptive", "kaf_adaptive_fat", "kwta_columns", "kwta_display", "kwta_markdown", "smooth_at_table",
           "smooth_display", "smooth_glue", "smooth_markdown"]

#: the standard attacks (the rest of an evaluation's attacks are the adaptive ones)
STANDARD = ("pgd", "autoattack", "aa-reduced", "square")
#: the leaderboard rows of the smooth-adversarial-training comparison (Xie et al. 2020), and the ablation
SMOOTH_ROWS = ("relu", "softplus", "silu", "gelu", "elu", "relu-softplus-grad")
#: the leaderboard's KAF rows the FAT experiment attacks
ADAPTIVE_ROWS = ("kaf", "kaf-elu")

#: Published numbers, as recalled (neither paper is in ``../shared/papers``; ``anchors.md`` records only the
#: SiLU result): Xie et al. 2020, "Smooth adversarial training" (arXiv 2006.14536), ResNet-50 on ImageNet,
#: PGD robustness under adversarial training. ``relu`` and ``silu`` are from ``anchors.md``; the ablation's
#: ``relu_softplus_grad`` (ReLU forward, parametric softplus with alpha 10 backward) is recalled, unverified.
XIE_RECALLED = {"relu": 0.330, "silu": 0.423, "relu_softplus_grad": 0.359,
                "source": "Xie et al. 2020 (arXiv 2006.14536), ResNet-50, ImageNet, PGD; ReLU and SiLU from "
                          "../shared/papers/anchors.md; the ablation's number recalled, not verified at the source"}
#: Tramer et al. 2020, k-WTA on CIFAR-10 (adversarially trained, eps 0.031): the robust accuracy Xiao et al.
#: reported under PGD and the one Tramer et al.'s adaptive attack left, as recalled (not in ../shared/papers).
TRAMER_KWTA_RECALLED = {"reported": 0.50, "adaptive": 0.0016,
                        "source": "Tramer et al. 2020, Sec. 'k-Winners Take All' (recalled, not verified at the "
                                  "source: about 50 % claimed, about 0.16 % under their attack)"}


# --------------------------------------------------------------------------------------------------- attacks


@dataclass(frozen=True)
class AdaptiveAttacks:
    """The attacks of both experiments, L-infinity at ``eps`` on the first ``n_test`` test images, seeded with
    ``attack_seed``:

    - ``pgd``: PGD on cross-entropy (:class:`symact.attacks.LossPGD`), ``pgd_steps`` of ``pgd_alpha``,
      ``pgd_restarts`` restarts;
    - ``autoattack``: official AutoAttack; with ``aa_steps`` (smoke only) ``aa-reduced``, its cascade at
      ``aa_steps`` iterations and ``square_queries`` queries (not AutoAttack);
    - ``square``: Square alone, ``square_queries`` queries;
    - on k-WTA networks: ``noise-pgd`` (:class:`symact.attacks.NoiseAveragedPGD`, ``noise_steps`` of
      ``bpda_alpha``, ``noise_samples`` samples of standard deviation ``noise_sigma``) and ``bpda-st``
      (:class:`symact.attacks.BPDAPGD`, straight-through k-WTA, margin loss);
    - on KAF networks: ``bpda-tau<t>`` for every ``t`` of ``kaf_taus`` (BPDA through the KAF's Gaussian
      smoothing of width ``t``, margin loss; ``t = 0`` is the exact gradient);
    - both (not the ReLU twin itself): ``transfer``, PGD on the ReLU twin (cross-entropy, ``pgd_steps`` of
      ``pgd_alpha``, ``transfer_restarts`` restarts judged on the twin) shown to the network.

    BPDA attacks: ``bpda_steps`` steps of ``bpda_alpha`` from ``bpda_restarts`` random starts.
    """

    eps: float = 0.031
    n_test: int = 1000
    pgd_alpha: float = 0.003
    pgd_steps: int = 40
    pgd_restarts: int = 10
    square_queries: int = 5000
    aa_steps: int | None = None
    bpda_steps: int = 100
    bpda_alpha: float = 0.003
    bpda_restarts: int = 5
    kaf_taus: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    noise_steps: int = 100
    noise_samples: int = 32
    noise_sigma: float = 0.031
    transfer_restarts: int = 1
    attack_seed: int = 0

    def __post_init__(self):
        if self.n_test < 1 or not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"need n_test >= 1 and a finite eps > 0, got {self.n_test} and {self.eps}")
        if not self.kaf_taus or any(not (math.isfinite(t) and t >= 0) for t in self.kaf_taus):
            raise ValueError(f"kaf_taus must be finite smoothing widths >= 0, got {self.kaf_taus}")
        if self.aa_steps is not None and (int(self.aa_steps) != self.aa_steps or self.aa_steps < 1):
            raise ValueError(f"aa_steps must be None (official AutoAttack) or an integer >= 1, got {self.aa_steps!r}")


def _tau_name(tau: float) -> str:
    return f"bpda-tau{tau:g}"


def attack_names(kind: str, a: AdaptiveAttacks) -> list[str]:
    """The attacks run on a network whose activation is ``kind`` (``"relu"``, ``"kwta"`` or ``"kaf"``;
    ``kind="relu-twin"`` for a ReLU network that is itself the twin: no transfer)."""
    aa = "autoattack" if a.aa_steps is None else "aa-reduced"
    names = ["pgd", aa, "square"]
    if kind == "kwta":
        names += ["noise-pgd", "bpda-st", "transfer"]
    elif kind == "kaf":
        names += [*(_tau_name(t) for t in a.kaf_taus), "transfer"]
    elif kind == "relu":
        names += ["transfer"]
    elif kind != "relu-twin":
        raise ValueError(f"kind must be 'relu', 'relu-twin', 'kwta' or 'kaf', got {kind!r}")
    return names


def _make_attacks(a: AdaptiveAttacks, kind: str, model: nn.Module, twin: nn.Module | None) -> dict:
    aa = attacks.AutoAttack(model, norm="Linf", eps=a.eps, seed=a.attack_seed)
    if a.aa_steps is not None:  # a smoke run's cascade: fewer iterations and queries, not AutoAttack
        for _, comp in aa.components[:3]:
            comp.steps = a.aa_steps
        aa.components[3][1].n_queries = a.square_queries
    out = {"pgd": attacks.LossPGD(model, a.eps, a.pgd_alpha, a.pgd_steps, a.pgd_restarts, seed=a.attack_seed),
           ("autoattack" if a.aa_steps is None else "aa-reduced"): aa,
           "square": torchattacks.Square(model, eps=a.eps, n_queries=a.square_queries, n_restarts=1, p_init=0.8,
                                         loss="margin", resc_schedule=False, seed=a.attack_seed)}
    if kind == "kwta":
        out["noise-pgd"] = attacks.NoiseAveragedPGD(model, a.eps, a.bpda_alpha, a.noise_steps, a.noise_samples,
                                                    a.noise_sigma, seed=a.attack_seed)
        out["bpda-st"] = attacks.BPDAPGD(model, a.eps, a.bpda_alpha, a.bpda_steps, a.bpda_restarts,
                                         attacks.straight_through_kwta, seed=a.attack_seed)
    elif kind == "kaf":
        for t in a.kaf_taus:
            out[_tau_name(t)] = attacks.BPDAPGD(model, a.eps, a.bpda_alpha, a.bpda_steps, a.bpda_restarts,
                                                attacks.smoothed_kaf(t), seed=a.attack_seed)
    if kind != "relu-twin":
        if twin is None:
            raise ValueError(f"the {kind} network needs its ReLU twin for the transfer attack")
        out["transfer"] = Transfer(model, attacks.LossPGD(twin, a.eps, a.pgd_alpha, a.pgd_steps,
                                                          a.transfer_restarts, seed=a.attack_seed))
    if list(out) != attack_names(kind, a):
        raise AssertionError(f"attack list out of step: {list(out)} against {attack_names(kind, a)}")
    return out


def _deterministic(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether two eval-mode forward passes on ``x`` agree bit for bit (nothing random at test time: no EOT)."""
    with torch.no_grad():
        return bool(torch.equal(model(x), model(x)))


def _evaluate(a: AdaptiveAttacks, kind: str, model: nn.Module, twin: nn.Module | None, test) -> dict:
    dev = get_device()
    torch.manual_seed(a.attack_seed)
    place(model, dev)
    model.eval()
    if twin is not None:
        place(twin, dev)
        twin.eval()
    x, _ = test.head(min(len(test), 64)).tensors(dev)
    start = time.perf_counter()
    ev = evaluate(model, test, _make_attacks(a, kind, model, twin), device=dev, progress=False)
    return {"kind": kind, "evaluation": ev, "deterministic": _deterministic(model, x),
            "attack_seconds": round(time.perf_counter() - start, 2)}


# --------------------------------------------------------------------------------------------------- kaf-adaptive


@dataclass(frozen=True)
class AdaptiveConfig:
    """``kaf/kaf-adaptive``: the networks of ``kaf/kaf-candidates`` under ``candidates`` (that experiment's
    config at the same profile; its ``acts`` must be ReLU, k-WTA and KAF), for the seeds ``seeds`` (among its
    own), attacked by ``attacks`` (:class:`AdaptiveAttacks`; ``eps`` and PGD's settings are the candidates'
    own). The ReLU network of a seed is the twin of the k-WTA and KAF networks of that seed."""

    candidates: kexp.CandidatesConfig
    attacks: AdaptiveAttacks
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self):
        if set(self.candidates.acts) != {"relu", "kwta", "kaf"}:
            raise ValueError(f"the candidates' networks must be ReLU, k-WTA and KAF, got {self.candidates.acts}")
        if not self.seeds or not set(self.seeds) <= set(self.candidates.seeds):
            raise ValueError(f"seeds {self.seeds} must be among the candidates' seeds {self.candidates.seeds}")
        if abs(self.attacks.eps - self.candidates.eps) > 1e-12:
            raise ValueError(f"eps {self.attacks.eps} must be the candidates' {self.candidates.eps}")
        if self.attacks.n_test > self.candidates.n_test:
            raise ValueError(f"n_test {self.attacks.n_test} exceeds the candidates' {self.candidates.n_test}")


def _candidates_network(cand: kexp.CandidatesConfig, act: str, seed: int, checkpoint=None) -> dict:
    """The ``kaf/kaf-candidates`` network ``<act>-seed<seed>``: from the zoo when it holds it under ``cand``'s
    config hash, else trained by that experiment's own training unit (the same recipe and seed)."""
    from symact import zoo

    name, key = "kaf/kaf-candidates", f"{act}-seed{seed}"
    spec = kexp._act_spec(cand, act)
    if zoo.exists(name, key, config_hash=config_hash(cand)):
        return {"act": act, "seed": seed, "source": f"zoo {name}/{key}", "builder_kwargs": spec,
                "weights": dict(zoo.load_state_dict(name, key))}
    trained = kexp._train_unit(cand, act, seed, checkpoint)
    return {"act": act, "seed": seed, "builder_kwargs": spec, "weights": trained["weights"],
            "history": trained["history"],
            "source": "trained here by kaf/kaf-candidates's training unit (the zoo does not hold it)"}


def _small_cnn(net: dict) -> nn.Module:
    model = kexp.thesis_small_cnn(**net["builder_kwargs"])
    model.load_state_dict(net["weights"])
    return model.eval()


def _candidates_eval(cfg: AdaptiveConfig, act: str, seed: int, net: dict, twin: dict | None = None) -> dict:
    test = data.load("cifar10", train=False).head(cfg.attacks.n_test)
    kind = {"relu": "relu-twin", "kwta": "kwta", "kaf": "kaf"}[act]
    out = _evaluate(cfg.attacks, kind, _small_cnn(net), None if twin is None else _small_cnn(twin), test)
    return {"name": act, "seed": seed, "source": net["source"], **out}


def _adaptive_units(cfg: AdaptiveConfig) -> list[Unit]:
    units = []
    for seed in cfg.seeds:
        for act in ("relu", "kwta", "kaf"):
            units.append(Unit(f"net-{act}-seed{seed}", _candidates_network, (cfg.candidates, act, seed),
                              checkpoint=True, resources=gpu_resources()))
        units.append(Unit(f"eval-relu-seed{seed}", _candidates_eval, (cfg, "relu", seed),
                          needs=(f"net-relu-seed{seed}",), resources=gpu_resources()))
        for act in ("kwta", "kaf"):
            units.append(Unit(f"eval-{act}-seed{seed}", _candidates_eval, (cfg, act, seed),
                              needs=(f"net-{act}-seed{seed}", f"net-relu-seed{seed}"), resources=gpu_resources()))
    return units


def _networks_result(outputs: dict, keys: list[str], dataset: str) -> dict:
    nets = {k[len("eval-"):]: outputs[k] for k in keys}
    return {"data": data.load(dataset, train=False).description,
            "n_test": next(iter(nets.values()))["evaluation"]["n"], "networks": nets}


def _cand(profile: str) -> kexp.CandidatesConfig:
    return kexp.kaf_candidates.configs[profile]


# Cost (one CPU thread of a free core): at quick, the three networks are retrained as kaf/kaf-candidates trains
# them (its stored quick units took 118 s, 418 s and 545 s for ReLU, k-WTA and KAF) and attacked on 200 images
# (estimated from the candidates' evaluation units: about 100 s, 550 s and 250 s), about 2,000 CPU-seconds, so
# 15 to 20 minutes on two free workers: the training inherited from kaf/kaf-candidates is half of it. On a
# shared machine (load average about 25 on 2 cores) one k-WTA epoch took 930 s instead of 140 s. paper: on the
# zoo's networks (kaf/kaf-candidates at paper, else retrained), a GPU run: `bash tools/device.sh run 540
# kaf/kaf-adaptive` (tools/device.sh), after kaf/kaf-candidates.
@experiment(
    "kaf",
    "kaf-adaptive",
    {
        "smoke": AdaptiveConfig(_cand("smoke"), AdaptiveAttacks(n_test=16, pgd_steps=3, pgd_restarts=1,
                                                                square_queries=20, aa_steps=3, bpda_steps=3,
                                                                bpda_restarts=1, kaf_taus=(0.0, 0.5), noise_steps=3,
                                                                noise_samples=2), seeds=(0,)),
        "quick": AdaptiveConfig(_cand("quick"), AdaptiveAttacks(n_test=200, pgd_steps=20, pgd_restarts=3,
                                                                square_queries=1000, bpda_steps=20,
                                                                bpda_restarts=2, kaf_taus=(0.0, 0.5, 1.0),
                                                                noise_steps=20, noise_samples=8), seeds=(0,)),
        "paper": AdaptiveConfig(_cand("paper"), AdaptiveAttacks(pgd_restarts=_cand("paper").pgd_restarts)),
    },
    units=_adaptive_units,
)
def kaf_adaptive(cfg: AdaptiveConfig, outputs: dict) -> dict:
    """k-WTA and KAF networks of ``kaf/kaf-candidates`` under adaptive attacks (:class:`AdaptiveConfig`).

    Units: ``net-<act>-seed<s>`` (the network: zoo or retrained, :func:`_candidates_network`) and
    ``eval-<act>-seed<s>`` (:class:`AdaptiveAttacks`; the k-WTA and KAF ones need the ReLU twin). Returns
    ``data``, ``n_test`` and ``networks``: per ``<act>-seed<s>``, ``name`` (the activation), ``seed``,
    ``source`` (zoo or retrained), ``kind``, ``deterministic`` (two forward passes agree: no EOT needed) and
    the :func:`symact.evaluation.evaluate` result with per-image outcomes and the worst case over every attack.
    """
    keys = [f"eval-{act}-seed{s}" for s in cfg.seeds for act in ("relu", "kwta", "kaf")]
    return _networks_result(outputs, keys, "cifar10")


# --------------------------------------------------------------------------------------------------- FAT rows


@dataclass(frozen=True)
class FatAdaptiveConfig:
    """``kaf/kaf-adaptive-fat``: the leaderboard's ``rows`` (KAF rows) of ``dataset`` and their ReLU twins (the
    ``relu`` row), trained under the leaderboard's protocol at ``network_profile``, seeds ``seeds``, attacked
    by ``attacks`` (``eps`` the protocol's)."""

    attacks: AdaptiveAttacks
    network_profile: str = "paper"
    dataset: str = "cifar10"
    rows: tuple[str, ...] = ADAPTIVE_ROWS
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self):
        p = benchmark.protocol(self.dataset, self.network_profile)
        if not set(self.seeds) <= set(p.seeds):
            raise ValueError(f"seeds {self.seeds} must be among the protocol's {p.seeds}")
        if abs(self.attacks.eps - p.eps) > 1e-12:
            raise ValueError(f"eps {self.attacks.eps} must be the protocol's {p.eps}")
        for row in self.rows:
            if benchmark.experiment_for(self.dataset, row).configs[self.network_profile].activation != "kaf":
                raise ValueError(f"row {row!r} is not a KAF row")


def _fat_network(dataset: str, row: str, profile: str, seed: int, checkpoint=None) -> dict:
    """The leaderboard network ``benchmark/<dataset>-<row>`` of seed ``seed`` at ``profile``: from the zoo when it
    holds it under the row's config hash; at ``smoke``, trained here by the row's own units; else an error
    naming the run that trains it (the zoo keeps the leaderboard's networks at ``paper`` only)."""
    from symact import zoo

    exp = benchmark.experiment_for(dataset, row)
    rcfg = exp.configs[profile]
    name, key = f"benchmark/{exp.name}", f"train-seed{seed}"
    kwargs = {"network": rcfg.protocol.network, "activation": rcfg.activation,
              "activation_kwargs": dict(rcfg.activation_kwargs), **dict(rcfg.protocol.network_kwargs)}
    if zoo.exists(name, key, config_hash=config_hash(rcfg)):
        return {"row": row, "seed": seed, "source": f"zoo {name}/{key}", "builder_kwargs": kwargs,
                "weights": dict(zoo.load_state_dict(name, key))}
    if profile != "smoke":
        raise FileNotFoundError(
            f"the zoo holds no network {name}/{key} trained under the {profile} protocol (config hash "
            f"{config_hash(rcfg)}): train the row first, `python -m symact run {name} --profile {profile}`")
    lr = benchmark._lr_unit(rcfg)
    trained = benchmark._train_unit(rcfg, None, seed, lr, checkpoint)
    return {"row": row, "seed": seed, "source": "trained here by the row's own units (smoke protocol)",
            "builder_kwargs": kwargs, "weights": trained["weights"]}


def _fat_eval(cfg: FatAdaptiveConfig, row: str, seed: int, net: dict, twin: dict | None = None) -> dict:
    _, test_all = benchmark._datasets(benchmark.protocol(cfg.dataset, cfg.network_profile))
    model = benchmark.build_network(**net["builder_kwargs"])
    model.load_state_dict(net["weights"])
    tw = None
    if twin is not None:
        tw = benchmark.build_network(**twin["builder_kwargs"])
        tw.load_state_dict(twin["weights"])
    out = _evaluate(cfg.attacks, "relu-twin" if row == "relu" else "kaf", model, tw, test_all.head(cfg.attacks.n_test))
    return {"name": row, "seed": seed, "source": net["source"], **out}


def _fat_units(cfg: FatAdaptiveConfig) -> list[Unit]:
    units = []
    for seed in cfg.seeds:
        for row in ("relu", *cfg.rows):
            units.append(Unit(f"net-{row}-seed{seed}", _fat_network, (cfg.dataset, row, cfg.network_profile, seed),
                              checkpoint=True, resources=gpu_resources()))
        units.append(Unit(f"eval-relu-seed{seed}", _fat_eval, (cfg, "relu", seed), needs=(f"net-relu-seed{seed}",),
                          resources=gpu_resources()))
        for row in cfg.rows:
            units.append(Unit(f"eval-{row}-seed{seed}", _fat_eval, (cfg, row, seed),
                              needs=(f"net-{row}-seed{seed}", f"net-relu-seed{seed}"), resources=gpu_resources()))
    return units


_FAT_EPS = 8 / 255


@experiment(
    "kaf",
    "kaf-adaptive-fat",
    {
        # smoke: every code path in seconds, on the MNIST leaderboard's smoke networks (LeNet-5 trains in
        # seconds, the VGG-inspired network in minutes)
        "smoke": FatAdaptiveConfig(AdaptiveAttacks(eps=0.3, n_test=8, pgd_alpha=0.075, pgd_steps=3, pgd_restarts=1,
                                                   square_queries=20, aa_steps=3, bpda_steps=3, bpda_alpha=0.075,
                                                   bpda_restarts=1, kaf_taus=(0.0, 0.5)),
                                   network_profile="smoke", dataset="mnist", rows=("kaf",), seeds=(0,)),
        "quick": FatAdaptiveConfig(AdaptiveAttacks(eps=_FAT_EPS, n_test=200, pgd_alpha=_FAT_EPS / 4, pgd_steps=20,
                                                   pgd_restarts=2, square_queries=1000, bpda_steps=20,
                                                   bpda_alpha=_FAT_EPS / 4, bpda_restarts=2,
                                                   kaf_taus=(0.0, 0.5, 1.0)), seeds=(0,)),
        "paper": FatAdaptiveConfig(AdaptiveAttacks(eps=_FAT_EPS, pgd_alpha=_FAT_EPS / 4, pgd_steps=50,
                                                   pgd_restarts=10, bpda_alpha=_FAT_EPS / 4)),
    },
    units=_fat_units,
)
def kaf_adaptive_fat(cfg: FatAdaptiveConfig, outputs: dict) -> dict:
    """The leaderboard's KAF rows (fast adversarial training) and their ReLU twins under the attacks of
    :class:`AdaptiveAttacks`; the networks come from the zoo (:func:`_fat_network`). The result's layout is
    :func:`kaf_adaptive`'s, networks keyed ``<row>-seed<s>``, plus ``network_profile`` (the leaderboard protocol
    the networks were trained under; at ``quick`` the networks are the ``paper`` ones, attacked with fewer
    images and iterations)."""
    keys = [f"eval-{row}-seed{s}" for s in cfg.seeds for row in ("relu", *cfg.rows)]
    return {**_networks_result(outputs, keys, cfg.dataset), "network_profile": cfg.network_profile}


# --------------------------------------------------------------------------------------------------- ablation row

for _ds in benchmark.DATASETS:
    benchmark.register_row(_ds, "relu-softplus-grad", "relu_softplus_grad")


# --------------------------------------------------------------------------------------------------- analysis


def _nets(res) -> dict:
    if not isinstance(res, Mapping) or "networks" not in res:
        raise ValueError("expected a stored kaf_adaptive or kaf_adaptive_fat result (a dict with 'networks')")
    return res["networks"]


def _outcomes(net: Mapping) -> tuple[int, dict[str, np.ndarray]]:
    ev = net["evaluation"]
    n = ev["n"]
    return n, {name: decode_outcomes(e["outcome"], n) for name, e in ev["attacks"].items()}


def accuracy_table(res):
    """One row per network of a stored :func:`kaf_adaptive` (or :func:`kaf_adaptive_fat`) result: ``network``,
    ``name`` (activation or leaderboard row), ``seed``, ``clean``; the robust accuracy (correct before and after)
    under every attack run (a column per attack, NaN where not run); ``standard`` (the worst case per image over
    PGD, AutoAttack and Square), ``adaptive`` (over the adaptive attacks and the transfer attack; NaN where none
    ran) and ``worst_case`` (over every attack); ``deterministic`` (no randomness at test time). Fractions."""
    import pandas as pd

    rows = []
    for key, net in _nets(res).items():
        n, outs = _outcomes(net)
        std = [k for k in outs if k in STANDARD]
        ada = [k for k in outs if k not in STANDARD]
        row = {"network": key, "name": net["name"], "seed": net["seed"], "clean": net["evaluation"]["clean_acc"]}
        row.update({k: float(v.mean()) for k, v in outs.items()})
        row["standard"] = float(worst_case([outs[k] for k in std], n).mean())
        row["adaptive"] = float(worst_case([outs[k] for k in ada], n).mean()) if ada else float("nan")
        row["worst_case"] = float(worst_case(list(outs.values()), n).mean())
        row["deterministic"] = bool(net["deterministic"])
        rows.append(row)
    return pd.DataFrame(rows)


def adaptive_gain(res):
    """Per network and adaptive attack: how many images survive every standard attack (PGD, AutoAttack,
    Square) but not this attack (``broken_only_by_it``; an image is counted for every adaptive attack that
    breaks it), with ``standard_robust`` (images robust under the standard attacks) and ``n``."""
    import pandas as pd

    rows = []
    for key, net in _nets(res).items():
        n, outs = _outcomes(net)
        std = worst_case([v for k, v in outs.items() if k in STANDARD], n)
        for k, v in outs.items():
            if k in STANDARD:
                continue
            rows.append({"network": key, "name": net["name"], "seed": net["seed"], "attack": k,
                         "standard_robust": int(std.sum()), "broken_only_by_it": int((std & ~v).sum()), "n": n})
    return pd.DataFrame(rows, columns=["network", "name", "seed", "attack", "standard_robust", "broken_only_by_it",
                                       "n"])


def advantage_table(res, name: str = "kaf", baseline: str = "relu"):
    """Per seed, ``name``'s robust accuracy minus ``baseline``'s (its ReLU twin): under the standard attacks
    (``standard_diff``) and in the worst case over every attack (``worst_diff``), with both networks' numbers."""
    import pandas as pd

    t = accuracy_table(res)
    a, b = t[t.name == name].set_index("seed"), t[t.name == baseline].set_index("seed")
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError(f"the result has no seed with both {name!r} and {baseline!r} networks")
    return pd.DataFrame([{"seed": s, f"{name}_standard": a.at[s, "standard"], f"{baseline}_standard": b.at[s, "standard"],
                          "standard_diff": a.at[s, "standard"] - b.at[s, "standard"],
                          f"{name}_worst": a.at[s, "worst_case"], f"{baseline}_worst": b.at[s, "worst_case"],
                          "worst_diff": a.at[s, "worst_case"] - b.at[s, "worst_case"]} for s in seeds])


def smooth_at_table(dataset: str = "cifar10", profiles: tuple[str, ...] = ("paper", "quick"),
                    rows: tuple[str, ...] = SMOOTH_ROWS):
    """The smooth-adversarial-training rows of the leaderboard (:data:`SMOOTH_ROWS`), each from the first profile
    of ``profiles`` at which it is stored (complete, or the finished seeds of a run in progress):
    :func:`symact.benchmark.leaderboard_row`'s columns, ``stored`` (False for a row stored at no profile: its
    numbers are NaN) and, against the ReLU row of the same profile, ``vs_relu_robust`` and ``vs_relu_clean``
    (:func:`symact.benchmark.compare_to_relu`'s words; empty where the ReLU row is not stored at that profile)."""
    import pandas as pd

    out = []
    relu = {p: benchmark.stored_rows(dataset, p, ["relu"])["relu"] for p in profiles}
    for row in rows:
        found = None
        for p in profiles:
            r = benchmark.stored_rows(dataset, p, [row])[row]
            if r is not None:
                found = (p, r)
                break
        if found is None:
            out.append({"row": row, "stored": False})
            continue
        p, r = found
        entry = {**benchmark.leaderboard_row(r, row), "stored": True}
        entry["vs_relu_robust"] = entry["vs_relu_clean"] = ""
        if row != "relu" and relu[p] is not None:
            v = benchmark.compare_to_relu(r, relu[p])
            entry["vs_relu_robust"], entry["vs_relu_clean"] = v["robust_acc"].word, v["clean_acc"].word
        out.append(entry)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------- the chapter's tables

#: the chapter's names of the networks and of the smooth-adversarial-training rows and data sets
KA_NAMES = {"relu": "ReLU twin", "kwta": "k-WTA", "kaf": "KAF", "kaf-elu": "KAF (ELU init.)"}
ROW_NAMES = {"relu": "ReLU", "softplus": "Softplus", "silu": "SiLU (Swish)", "gelu": "GELU", "elu": "ELU",
             "relu-softplus-grad": "ReLU forward, softplus backward"}
DS_NAMES = {"cifar10": "CIFAR-10", "mnist": "MNIST"}


def _attacks(a) -> Mapping:
    """The attacks' settings as a mapping: a stored config's ``"attacks"`` dict or an :class:`AdaptiveAttacks`."""
    if isinstance(a, AdaptiveAttacks):
        return dataclasses.asdict(a)
    if not isinstance(a, Mapping) or "aa_steps" not in a:
        raise TypeError(f"expected AdaptiveAttacks or a stored config's 'attacks' dict (with 'aa_steps'), got {a!r}")
    return a


def cascade_key(a) -> str:
    """The key of AutoAttack's cascade among the attacks' results: ``"autoattack"`` (official) or
    ``"aa-reduced"`` (``aa_steps`` set: the cascade at fewer iterations, smoke only)."""
    return "autoattack" if _attacks(a)["aa_steps"] is None else "aa-reduced"


def cascade_label(a) -> str:
    """The cascade's name in the text: ``"AutoAttack"``, or what the reduced cascade is (not AutoAttack)."""
    steps = _attacks(a)["aa_steps"]
    return "AutoAttack" if steps is None else f"AutoAttack's cascade at {steps} iterations (not AutoAttack)"


def _cascade_column(a) -> tuple[str, str]:
    key = cascade_key(a)
    return key, "AutoAttack" if key == "autoattack" else "reduced cascade"


def kwta_columns(a) -> list[tuple[str, str]]:
    """(column of :func:`accuracy_table`, header) of the k-WTA table, for the attacks ``a``."""
    return [("clean", "clean"), ("pgd", "PGD"), _cascade_column(a), ("square", "Square"),
            ("noise-pgd", "noise-averaged PGD"), ("bpda-st", "straight-through PGD"),
            ("transfer", "transfer from ReLU"), ("worst_case", "worst case")]


def adaptive_columns(a) -> list[tuple[str, str]]:
    """(column of :func:`accuracy_table`, header) of the KAF networks' table: one smoothed-PGD column per
    ``tau`` of the attacks ``a``."""
    taus = [(_tau_name(t), f"smoothed PGD, τ = {t:g}") for t in _attacks(a)["kaf_taus"]]
    return [("clean", "clean"), ("pgd", "PGD"), _cascade_column(a), ("square", "Square"),
            ("standard", "standard worst case"), *taus, ("transfer", "transfer from ReLU"),
            ("worst_case", "worst case")]


def _check_accuracy(table) -> None:
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected the DataFrame of accuracy_table, got {type(table).__name__}")
    missing = [c for c in ("name", "seed") if c not in table.columns]
    if missing:
        raise ValueError(f"expected an accuracy_table DataFrame; it lacks {', '.join(missing)}")


def _display(records, columns, label) -> "pd.DataFrame":
    import pandas as pd

    rows = [[label(d), *(report.pct(d.get(c)) for c, _ in columns)] for d in records]
    return pd.DataFrame(rows, columns=["network", *(h for _, h in columns)])


def kwta_display(table, a):
    """The k-WTA networks of an :func:`accuracy_table` (``a``: the attacks): one row per seed, the robust
    accuracy under every attack of :func:`kwta_columns` (:data:`symact.report.MISSING` where not run), then Tramer
    et al.'s recalled row (:data:`TRAMER_KWTA_RECALLED`: Xiao et al.'s adversarially trained network)."""
    _check_accuracy(table)
    cols = kwta_columns(a)
    out = _display(table[table.name == "kwta"].to_dict("records"), cols, lambda d: f"k-WTA, seed {d['seed']}")
    t = TRAMER_KWTA_RECALLED
    recalled = {h: "" for _, h in cols}
    recalled["PGD"] = f"≈{report.pct(t['reported'], 0)} (as reported)"
    recalled["worst case"] = f"≈{report.pct(t['adaptive'], 2)} (their adaptive attack)"
    out.loc[len(out)] = {"network": "k-WTA (adversarially trained), Xiao et al. as attacked by Tramer et al., "
                                    "recalled", **recalled}
    return out


def adaptive_display(table, a):
    """The ReLU and KAF networks of an :func:`accuracy_table` (every network but k-WTA), by seed and then ReLU,
    KAF, KAF (ELU init.): the robust accuracy under every attack of :func:`adaptive_columns`
    (:data:`symact.report.MISSING` where not run)."""
    _check_accuracy(table)
    rank = {"relu": 0, "kaf": 1, "kaf-elu": 2}
    ordered = table[table.name != "kwta"].sort_values(
        ["seed", "name"], key=lambda c: c.map(lambda n: rank.get(n, len(rank))) if c.name == "name" else c)
    return _display(ordered.to_dict("records"), adaptive_columns(a),
                    lambda d: f"{KA_NAMES.get(d['name'], d['name'])}, seed {d['seed']}")


def _markdown(shown, caption: str, align: str | None = None) -> str:
    return report.markdown_table(shown.columns, shown.itertuples(index=False), align) + "\n\n" + caption


def kwta_markdown(table, a, caption: str) -> str:
    """:func:`kwta_display` as a Markdown table followed by ``caption``."""
    return _markdown(kwta_display(table, a), caption)


def adaptive_markdown(table, a, caption: str) -> str:
    """:func:`adaptive_display` as a Markdown table followed by ``caption``."""
    return _markdown(adaptive_display(table, a), caption)


def smooth_glue(smooth: Mapping) -> dict:
    """Glue names and values from ``{dataset: smooth_at_table(dataset)}``: ``ka-smooth-missing-<dataset>`` (the
    rows not stored, by name, or ``"none"``) and ``ka-smooth-stored-<dataset>`` (how many are)."""
    out = {}
    for ds, t in smooth.items():
        names = [ROW_NAMES.get(r, r) for r in t.loc[~t["stored"].astype(bool), "row"]]
        out[f"ka-smooth-missing-{ds}"] = ", ".join(names) if names else "none"
        out[f"ka-smooth-stored-{ds}"] = int(t["stored"].sum())
    return out


def smooth_display(smooth: Mapping):
    """The stored rows of ``{dataset: smooth_at_table(dataset)}`` as the chapter shows them: data set, row,
    profile, seeds, clean, worst-case robust (bold) and AutoAttack accuracy, the verdict against ReLU; a line
    saying nothing is stored when no row is; then Xie et al.'s published row (:data:`XIE_RECALLED`)."""
    import pandas as pd

    if not isinstance(smooth, Mapping):
        raise TypeError(f"expected a dict of data set -> smooth_at_table DataFrame, got {type(smooth).__name__}")
    rows = []
    for ds, t in smooth.items():
        for r in t[t["stored"].astype(bool)].to_dict("records"):
            rows.append([DS_NAMES.get(ds, ds), ROW_NAMES.get(r["row"], r["row"]), r["profile"], r["seeds"],
                         report.pct(r["clean_mean"]), f"**{report.pct(r['robust_mean'])}**",
                         report.pct(r["autoattack_mean"]), r["vs_relu_robust"] or report.MISSING])
    if not rows:
        rows.append(["CIFAR-10, MNIST", "every row", "not stored yet", "", "", "", "", ""])
    x = XIE_RECALLED
    rows.append(["ImageNet, ResNet-50 (Xie et al. 2020)", "ReLU / SiLU / ReLU forward, softplus backward", "published",
                 "", "", f"{report.pct(x['relu'])} / {report.pct(x['silu'])} / {report.pct(x['relu_softplus_grad'])} "
                 "(PGD)", "", ""])
    return pd.DataFrame(rows, columns=["data set", "row", "profile", "seeds", "clean", "worst-case robust",
                                       "AutoAttack", "vs ReLU (robust)"])


def smooth_markdown(smooth: Mapping) -> str:
    """:func:`smooth_display` as a Markdown table with its caption."""
    return _markdown(smooth_display(smooth), align="llllrrrl", caption=(
        "The smooth-adversarial-training rows of the leaderboard (its protocol, `symact.benchmark`: fast "
        "adversarial training, the range test's learning rate, AutoAttack, Square, PGD and "
        "transfer, worst case per image), each at the most complete profile stored (paper, else quick; a row in "
        "progress shows its finished seeds; rows not stored are named in the text below); 'vs ReLU' is the book's "
        "verdict on the paired seeds, which a quick or partial row never gets. The last row is published (Xie et "
        "al. 2020, ResNet-50 on ImageNet under PGD adversarial training; ReLU and SiLU from the book's anchors "
        "file, the ablation's number recalled, not verified at the source): another network, data set and "
        "attack, shown for the direction of the effect only."))


# --------------------------------------------------------------------------------------------------- claims


def _per_seed(res, name: str, attacks_of: callable) -> dict:
    """Per seed of network ``name``: (robust rate, per-image outcome) in the worst case over the attacks
    ``attacks_of(names)`` (the arms of :func:`symact.experiments.verdicts.seeds_or_images`)."""
    out = {}
    for net in _nets(res).values():
        if net["name"] != name:
            continue
        n, o = _outcomes(net)
        w = worst_case([o[k] for k in attacks_of(list(o))], n)
        out[net["seed"]] = (float(w.mean()), w)
    return out


def _kwta_judge(res) -> verdicts.Judgement:
    return verdicts.seeds_or_images(
        res, _per_seed(res, "kwta", lambda ks: [k for k in ks if k in ("noise-pgd", "bpda-st")]),
        _per_seed(res, "kwta", lambda ks: ["pgd"]),
        what="k-WTA's robust accuracy under the adaptive attacks (noise-averaged and straight-through PGD, worst "
             "case) minus under PGD")


def _survives_judge(res) -> verdicts.Judgement:
    return verdicts.seeds_or_images(
        res, _per_seed(res, "kaf", lambda ks: ks), _per_seed(res, "relu", lambda ks: ks),
        what="the KAF network's robust accuracy minus its ReLU twin's, worst case per image over PGD, AutoAttack, "
             "Square and (KAF) the adaptive and transfer attacks")


@claim("kaf/kwta-robust-under-pgd-only", chapter="kaf", section="kaf-related",
       source="Tramer et al. 2020 (Sec. on k-WTA), against Xiao et al. 2020; tramer2020adaptive",
       text="k-WTA's robustness is an artefact of PGD: an adaptive attack (noise-averaged or straight-through "
            "gradients) breaks images PGD leaves correct")
def _claim_kwta(profile: str):
    stored = kaf_adaptive.stored(profile)
    return None if stored is None else _kwta_judge(stored)


@claim("kaf/kaf-advantage-survives-adaptive", chapter="kaf", section="kaf-adaptive",
       source="kaf-robustness-thesis.txt (future work: adaptive attacks); kaf-thesis-results.md, exploratory "
              "experiment",
       text="A KAF network is more robust than its ReLU twin, and stays so under attacks adapted to the KAF")
def _claim_survives(profile: str):
    stored = kaf_adaptive.stored(profile)
    return None if stored is None else _survives_judge(stored)


@claim("kaf/kaf-fat-advantage-survives-adaptive", chapter="kaf", section="kaf-adaptive",
       source="kaf-robustness-thesis.txt (future work: adaptive attacks); kaf-thesis-results.md, VGG-inspired "
              "fast adversarial training table",
       text="Under fast adversarial training a KAF network is more robust than its ReLU twin, and stays so under "
            "attacks adapted to the KAF")
def _claim_fat_survives(profile: str):
    stored = kaf_adaptive_fat.stored(profile)
    return None if stored is None else _survives_judge(stored)


def _smooth_judge(row: str, profile: str, dataset: str = "cifar10") -> verdicts.Judgement | None:
    res = benchmark.experiment_for(dataset, row).stored(profile)
    relu = benchmark.experiment_for(dataset, "relu").stored(profile)
    if res is None or relu is None:
        return None
    return verdicts.leaderboard_vs_relu(res, relu, row=row, dataset=dataset)


@claim("kaf/smooth-at-helps", chapter="kaf", section="kaf-related",
       source="Xie et al. 2020, Smooth adversarial training (arXiv 2006.14536), Table of activations; "
              "anchors.md; xie2020smooth",
       text="Replacing ReLU by a smooth activation (SiLU) improves robustness under adversarial training")
def _claim_smooth(profile: str):
    return _smooth_judge("silu", profile)


@claim("kaf/smooth-backward-helps", chapter="kaf", section="kaf-related",
       source="Xie et al. 2020, Smooth adversarial training (arXiv 2006.14536), ablation 'ReLU forward, "
              "parametric softplus backward'; xie2020smooth",
       text="Keeping ReLU's forward pass but using a smooth function's gradient in the backward pass already "
            "improves robustness under adversarial training")
def _claim_smooth_backward(profile: str):
    return _smooth_judge("relu-softplus-grad", profile)
