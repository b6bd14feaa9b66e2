"""One protocol for any activation: train it, evaluate it, and give its leaderboard row.

The book's leaderboard (issue 28; the KAF chapter's fast-adversarial-training networks are rows of it) holds
every activation to the same :class:`Protocol`, per data set:

- **MNIST**: LeNet-5 in the SAF paper's shape (:class:`symact.models.LeNet5`, ``variant="mnist"``) with batch
  normalisation before every activation (``batchnorm="all"``: activations with a fixed input range, KAF's
  dictionary, S-APL's hinges, DOME's, are meant to see normalised inputs; the same for every row), L-infinity
  eps 0.3, Wong et al.'s (2020) MNIST recipe: Adam without weight decay, mini-batches of 100, 10 epochs,
  the FGSM random start *unclamped* (as their MNIST code; :class:`symact.train.TrainConfig`'s ``start``).
- **CIFAR-10**, the offline JPEG copy (every image re-encoded as JPEG at quality 75: expect clean accuracy
  about 1 to 2 points below the original; the stored result's ``data`` says so): the finished KAF thesis's
  VGG-inspired network (:class:`symact.models.VGGInspired`), eps 8/255, Wong et al.'s CIFAR-10 recipe: SGD
  with momentum 0.9 and weight decay 5e-4, mini-batches of 128, 15 epochs, random crop (4 pixels) and
  horizontal flip, the random start *clamped* to the image (as their CIFAR-10 code).

Both: fast adversarial training (Wong, Rice and Kolter 2020): every batch replaced by its FGSM example from a
uniform random start in the eps-ball, step 1.25 eps; a cyclic learning rate (linear from 0 up to its peak at
2/5 of training and back to 0) whose peak is chosen per activation by one learning-rate range test
(:func:`symact.train.lr_range_test`, its rule :data:`symact.train.LR_RULE`; 100 steps on MNIST, 400 on CIFAR-10,
whose network, with dropout, has not begun to learn after 100: its smoothed FGSM loss stayed above ln 10, so
the minimum followed the number of steps: for the ReLU row, measured on 2026-12-08, a sweep of 100 chose a
peak of 0.44, one of 400, which sees the loss fall below ln 10 and turn, 0.015); early stop on catastrophic
overfitting (PGD-5 accuracy on 512 training images falling by more than 0.2 in an epoch: the previous epoch's
weights are kept); 5 seeds (MNIST) or 3 (CIFAR-10).

Evaluation of every network (:func:`_eval_unit`), on the first test images in the loader's fixed order:

- clean accuracy on all ``n_clean`` (all 10,000) test images;
- on the first ``n_eval``: official AutoAttack (:class:`symact.attacks.AutoAttack`, the authors' standard
  version), Square alone (``square_queries``), PGD (``pgd_steps`` of eps/4, ``pgd_restarts`` restarts) and a
  transfer attack from the ReLU row's network of the same seed (PGD on it, shown to this network; none for
  the ReLU row itself), all in one :func:`symact.evaluation.evaluate` (per-image outcomes); the robustness
  curve over ``curve_eps`` (APGD-CE, AutoAttack's first component at 100 iterations, and PGD);
- on the first ``n_extra``: FAB minimum-norm distances in L-infinity and L2, and the sanity checks of Carlini
  et al. (2019) (:func:`symact.evaluation.run_sanity`, with the ReLU network as transfer surrogate);
- the worst case per image over every attack run on it (the curve's point at eps, the sanity attacks and a
  FAB distance within eps included where they ran), the leaderboard's robust accuracy;
- the cost: seconds per training epoch and the parameters the activation adds to the ReLU network.

Profiles: ``smoke`` (seconds: a few hundred images, one epoch, a handful of test images; every code path),
``quick`` (a reduced but real protocol: real data, fewer epochs, seeds and test images; within about 15
minutes per MNIST row on 2 cores) and ``paper`` (the full protocol above; the only one a verdict is given
on). :func:`estimate_cpu_seconds` states what each costs.

The rows (:func:`book_rows`): the activations that plug into the protocol network as they are (:data:`ROWS`:
the torch.nn baselines, Maxout, k-WTA, PDOME, APL, S-APL, KAF, PSSiLU per channel, MaxMin) and those with a
network of their own (:data:`BUILT_ROWS`, :class:`BuiltRowConfig`): PSSiLU in RobustBench's form (one
``(alpha, beta)`` pair for the whole network), two KAN networks (KAN layers replacing the dense layers: one
with the protocol network's parameter count, :func:`kan_param_match`, one four times wider), MDOME (its output
layer, MSE loss and adaptive attacks) and mReLU and RBF (the SAF networks' output layer, hybrid loss and
decision rule); :func:`_eval_head` says how each is attacked, and every evaluation stores it (``head``).

Every (data set, activation) pair is one experiment ``benchmark/<dataset>-<row>`` run as units of work
(:mod:`symact.store.units`): ``lr`` (the range test); ``train-seed<k>`` (needs ``lr``; resumable from a
checkpoint per epoch; its network goes to the zoo at ``paper``); ``relu-seed<k>`` (the transfer surrogate:
the ReLU row's zoo network of seed ``k`` under the same protocol when the zoo holds it, else trained here
by the ReLU row's own units' code, so a row never depends on another having run first); ``eval-seed<k>``
(needs ``train-seed<k>`` and ``relu-seed<k>``). The combine step keeps the per-seed results.
:func:`leaderboard_row`, :func:`leaderboard` and :func:`compare_to_relu` turn stored results into the table
and the verdicts.

A reader's activation: ``symact.benchmark(MyAct, dataset="mnist", profile="quick")`` or, from a shell,
``python -m symact benchmark mymodule:MyAct --dataset mnist --profile quick``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import math
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from symact import activations as _acts
from symact import models as _models
from symact.results import REGISTRY, PROFILES, Result, Unit, _jsonable, active_profile, config_hash, experiment

__all__ = ["BUILT_ROWS", "BuiltRowConfig", "CHAPTER", "DATASETS", "FORMS", "KAN_LARGE_WIDTHS", "KAN_TOLERANCE",
           "KAN_WIDTHS", "PROFILE_NOTES", "Protocol", "ROWS", "ROW_FACTORS", "ROW_NOTES", "RowConfig",
           "activation_factory", "apgd_ce_alone", "benchmark", "black_box_vs_apgd", "book_rows", "build_network",
           "build_row_network", "compare_to_relu",
           "estimate_cpu_seconds", "experiment_for", "measured_seconds", "kan_dense_layers", "kan_param_match", "leaderboard",
           "leaderboard_row", "protocol", "register_built_row", "register_row", "saf_decision", "stored_rows"]

CHAPTER = "benchmark"
DATASETS = ("mnist", "cifar10")


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class Protocol:
    """Everything held fixed across the rows of one data set's leaderboard (see the module docstring).

    Training: ``network`` (a class of :mod:`symact.models`) with ``network_kwargs``; fast adversarial training
    at L-infinity ``eps`` with FGSM step ``alpha`` from a random start (``start``: ``"unclamped"`` or
    ``"clamped"``), ``epochs``, ``batch_size``, ``optimizer`` (``momentum``, ``weight_decay``), ``augment``
    (random crop and flip), the cyclic schedule peaking at the range test's choice, early stop on
    catastrophic overfitting; the first ``n_train`` training images (None: all); one network per seed in
    ``seeds``. Range test: ``lr_steps`` steps from ``lr_min`` to ``lr_max``, seed ``lr_seed``.

    Evaluation: clean accuracy on the first ``n_clean`` test images (None: all); AutoAttack, Square alone
    (``square_queries``), PGD (``pgd_steps`` of eps/4, ``pgd_restarts``), transfer from ReLU and the
    robustness curve over ``curve_eps`` on the first ``n_eval``; FAB distances (``fab_steps``) and the sanity
    checks (``sanity_steps``, ``sanity_queries``) on the first ``n_extra``; attacks seeded by ``attack_seed``.
    """

    dataset: str
    network: str
    network_kwargs: tuple[tuple[str, Any], ...]
    eps: float
    alpha: float
    start: str
    epochs: int
    batch_size: int
    optimizer: str
    momentum: float
    weight_decay: float
    augment: bool
    seeds: tuple[int, ...]
    lr_min: float
    lr_max: float
    lr_steps: int
    n_eval: int
    n_extra: int
    curve_eps: tuple[float, ...]
    n_train: int | None = None
    lr_seed: int = 0
    n_clean: int | None = None
    pgd_steps: int = 50
    pgd_restarts: int = 10
    square_queries: int = 5000
    fab_steps: int = 100
    sanity_steps: int = 50
    sanity_queries: int = 1000
    attack_seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; the protocol is defined for {DATASETS}")
        if self.start not in ("clamped", "unclamped") or self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"start must be 'clamped' or 'unclamped' and optimizer 'sgd' or 'adam', got "
                             f"{self.start!r}, {self.optimizer!r}")
        if not self.seeds or self.n_extra > self.n_eval or self.n_eval < 1 or self.n_extra < 1:
            raise ValueError(f"need at least one seed and 1 <= n_extra <= n_eval, got seeds {self.seeds}, "
                             f"n_eval {self.n_eval}, n_extra {self.n_extra}")
        if not self.curve_eps or not any(abs(e - self.eps) < 1e-12 for e in self.curve_eps):
            raise ValueError(f"curve_eps must include eps {self.eps}, got {self.curve_eps}")

    def train_config(self, seed: int, lr: float = 1.0):
        """The :class:`symact.train.TrainConfig` of seed ``seed`` at peak learning rate ``lr``."""
        from symact.train import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, schedule="cyclic",
                           method="fgsm", eps=self.eps, alpha=self.alpha, early_stop=True, augment=self.augment,
                           seed=seed, start=self.start)


_MNIST = dict(dataset="mnist", network="LeNet5", network_kwargs=(("variant", "mnist"), ("batchnorm", "all")),
              eps=0.3, alpha=0.375, start="unclamped", epochs=10, batch_size=100, optimizer="adam", momentum=0.9,
              weight_decay=0.0, augment=False, seeds=(0, 1, 2, 3, 4), lr_min=1e-5, lr_max=1.0, lr_steps=100,
              n_eval=1000, n_extra=200, curve_eps=(0.1, 0.2, 0.3, 0.4))
_CIFAR = dict(dataset="cifar10", network="VGGInspired", network_kwargs=(), eps=8 / 255, alpha=10 / 255,
              start="clamped", epochs=15, batch_size=128, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
              augment=True, seeds=(0, 1, 2), lr_min=1e-4, lr_max=10.0, lr_steps=400, n_eval=1000, n_extra=200,
              curve_eps=(2 / 255, 4 / 255, 8 / 255, 12 / 255, 16 / 255))
_SMOKE = dict(n_train=384, epochs=1, batch_size=64, seeds=(0,), lr_steps=8, n_clean=64, n_eval=4, n_extra=2,
              pgd_steps=3, pgd_restarts=1, square_queries=20, fab_steps=3, sanity_steps=2, sanity_queries=10)
_PROTOCOLS = {
    ("mnist", "smoke"): Protocol(**{**_MNIST, **_SMOKE, "curve_eps": (0.3, 0.6)}),
    ("mnist", "quick"): Protocol(**{**_MNIST, "epochs": 5, "seeds": (0, 1), "lr_steps": 60, "n_eval": 200,
                                    "n_extra": 50, "pgd_restarts": 2, "square_queries": 1000, "fab_steps": 50,
                                    "sanity_steps": 20, "sanity_queries": 300}),
    ("mnist", "paper"): Protocol(**_MNIST),
    ("cifar10", "smoke"): Protocol(**{**_CIFAR, **_SMOKE, "curve_eps": (8 / 255, 16 / 255)}),
    # quick's range test stays short (50 steps) to keep the row near 15 minutes: its choice is not to be
    # trusted (lr_range_test's notes say so), and quick never gives a verdict
    ("cifar10", "quick"): Protocol(**{**_CIFAR, "n_train": 10000, "epochs": 5, "seeds": (0,), "lr_steps": 50,
                                      "n_eval": 100, "n_extra": 20, "pgd_steps": 20, "pgd_restarts": 2,
                                      "square_queries": 1000, "fab_steps": 20, "sanity_steps": 10,
                                      "sanity_queries": 300, "curve_eps": (4 / 255, 8 / 255, 16 / 255)}),
    ("cifar10", "paper"): Protocol(**_CIFAR),
}

PROFILE_NOTES = {
    "smoke": "seconds: a few hundred training images, one epoch, one seed, a handful of test images; no verdict",
    "quick": "a reduced but real protocol (MNIST: all training images, 5 of 10 epochs, 2 seeds, 200 test images "
             "attacked; CIFAR-10: 10,000 training images, 5 of 15 epochs, 1 seed, 100 test images attacked); "
             "no verdict",
    "paper": "the full protocol (all training images, 10 or 15 epochs, 5 or 3 seeds, AutoAttack on 1,000 test "
             "images); the only profile a verdict is given on",
}


def protocol(dataset: str, profile: str) -> Protocol:
    """The :class:`Protocol` of ``dataset`` (``"mnist"`` or ``"cifar10"``) at ``profile``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; the benchmark is defined for {', '.join(DATASETS)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return _PROTOCOLS[(dataset, profile)]


# --------------------------------------------------------------------------- activations and networks


def _import(path: str) -> Any:
    mod, _, qual = path.partition(":")
    if not mod or not qual or ":" in qual:
        raise ValueError(f"expected 'module:callable', got {path!r}")
    try:
        obj = importlib.import_module(mod)
        for attr in qual.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {path!r}: {err}") from err
    return obj


def _check_factory(make: Callable[[int], nn.Module], what: str, check_shape: bool) -> None:
    """``make(4)`` must be an ``nn.Module``; with ``check_shape`` it must map (2, 4, 3, 3) and (2, 4) inputs to
    outputs of the same shape (it follows a convolution and a dense layer)."""
    with torch.random.fork_rng(devices=[]):
        module = make(4)
        if not isinstance(module, nn.Module):
            raise TypeError(f"the activation factory {what} returned {type(module).__name__}, expected an "
                            "nn.Module (a factory maps a channel count to a module)")
        if check_shape:
            for shape in ((2, 4, 3, 3), (2, 4)):
                try:
                    out = module(torch.randn(shape))
                except Exception as err:  # noqa: BLE001 (reported with what was tried)
                    raise ValueError(f"the activation {what} fails on an input of shape {shape}: {err}") from err
                if not isinstance(out, torch.Tensor) or out.shape != shape:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(f"the activation {what} must keep its input's shape {shape}, got {got}")


def activation_factory(spec: Any, **kwargs) -> Callable[[int], nn.Module]:
    """A factory ``channels -> nn.Module`` from what a reader may give as an activation:

    - a registered name (``"relu"``, ``"kaf"``; :func:`symact.activations.factory` with ``kwargs``);
    - ``"module:callable"``, imported, then as below;
    - an ``nn.Module`` class: built as ``cls(channels=c, **kwargs)`` when its constructor takes ``channels``
      (per-channel parameters), else ``cls(**kwargs)``;
    - any other callable: a factory, called as ``f(c, **kwargs)`` (the library's convention).

    Each is tried once at once: it must return an ``nn.Module`` (``TypeError`` otherwise) that keeps the shape of
    a convolution's and a dense layer's output (``ValueError``); a module *instance* is refused (every layer
    needs its own).
    """
    if isinstance(spec, str) and ":" not in spec:
        return _acts.factory(spec, **kwargs)  # KeyError listing the names for an unknown one
    what = repr(spec) if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
    obj = _import(spec) if isinstance(spec, str) else spec
    if isinstance(obj, nn.Module):
        raise TypeError(f"give the activation as a class or a factory, not a module instance ({what}): every "
                        "layer needs its own")
    if isinstance(obj, type):
        if not issubclass(obj, nn.Module):
            raise TypeError(f"the activation class {what} is not an nn.Module")
        params = inspect.signature(obj).parameters
        if "channels" in params:
            make = functools.partial(_build_class_channels, obj, kwargs)
        else:
            required = [n for n, p in params.items() if p.default is p.empty and n not in kwargs
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if required:
                raise TypeError(f"cannot tell how to build {what}: its constructor needs {required}; give it a "
                                "'channels' argument, defaults, or pass a factory channels -> nn.Module")
            make = functools.partial(_build_class, obj, kwargs)
    elif callable(obj):
        make = functools.partial(_call_factory, obj, kwargs)
    else:
        raise TypeError(f"expected an activation name, 'module:callable', an nn.Module class or a factory "
                        f"channels -> nn.Module; got {type(obj).__name__}")
    _check_factory(make, what, check_shape=True)
    return make


def _build_class_channels(cls, kwargs, channels):
    return cls(channels=channels, **kwargs)


def _build_class(cls, kwargs, channels):
    return cls(**kwargs)


def _call_factory(fn, kwargs, channels):
    return fn(channels, **kwargs)


def build_network(network: str, activation: Any, activation_kwargs: Mapping | None = None,
                  **network_kwargs) -> nn.Module:
    """``symact.models.<network>(act=activation_factory(activation, **activation_kwargs), **network_kwargs)``:
    the builder the zoo rebuilds the benchmark's networks with (JSON-able arguments)."""
    cls = getattr(_models, network, None)
    if network not in _models.__all__ or not isinstance(cls, type):
        raise ValueError(f"unknown network {network!r}; symact.models has {', '.join(_models.__all__)}")
    return cls(act=activation_factory(activation, **dict(activation_kwargs or {})), **network_kwargs)


# --------------------------------------------------------------------------- experiments: rows


@dataclass(frozen=True)
class RowConfig:
    """One leaderboard row's config: the :class:`Protocol` and the activation (a registered name or
    ``"module:callable"``, with ``activation_kwargs``). ``source`` is a hash of a reader's activation's source
    code, so that a changed activation makes its stored result stale."""

    protocol: Protocol
    activation: str
    activation_kwargs: tuple[tuple[str, Any], ...] = ()
    source: str = ""

    @property
    def is_relu(self) -> bool:
        return self.activation == "relu" and not self.activation_kwargs


#: the book's rows that plug into the networks as they are: (row name, registered activation, its kwargs).
#: ``pssilu`` is PSSiLU in the book's per-channel form with the paper's fixed beta 0.1 (Dai et al. 2021; the
#: registry's defaults, :class:`symact.activations.PSSiLU`); ``maxmin`` is GroupSort with groups of 2 (Anil et
#: al. 2019, :class:`symact.activations.MaxMin`), which here sorts each pair of channels *in place*, so it keeps
#: the width of the layer before it (every protocol layer has an even width: LeNet-5 20, 50, 500; the
#: VGG-inspired network 32, 64, 128, 128) and plugs in unchanged: no layer is widened or halved.
#: Rows that need their own network or output layer and loss are :data:`BUILT_ROWS`.
ROWS = (("relu", "relu", ()), ("leaky_relu", "leaky_relu", ()), ("prelu", "prelu", ()), ("elu", "elu", ()),
        ("gelu", "gelu", ()), ("silu", "silu", ()), ("softplus", "softplus", ()), ("tanh", "tanh", ()),
        ("maxout", "maxout", ()), ("kwta", "kwta", ()), ("pdome", "pdome", ()), ("apl", "apl", ()),
        ("sapl", "sapl", ()), ("kaf", "kaf", ()), ("kaf-elu", "kaf", (("init", "elu"),)),
        ("pssilu", "pssilu", ()), ("maxmin", "maxmin", ()))

_NAME = re.compile(r"[^A-Za-z0-9_.=+-]")


def _exp_name(dataset: str, row: str) -> str:
    return f"{dataset}-{row}"


# --------------------------------------------------------------------------- rows with a network of their own

#: the forms of :class:`BuiltRowConfig`: what a row changes in the protocol network besides the activation
FORMS = ("pssilu-network", "kan", "mdome", "saf")


@dataclass(frozen=True)
class BuiltRowConfig(RowConfig):
    """A row whose network is not the protocol network with one activation factory plugged in
    (:func:`build_row_network`), by ``form`` (:data:`FORMS`):

    - ``"pssilu-network"``: PSSiLU with one ``(alpha, beta)`` pair shared by the whole network
      (:func:`symact.activations.pssilu.pssilu_factory` ``("network", **activation_kwargs)``), RobustBench's form;
    - ``"kan"``: the protocol network's dense layers replaced by KAN layers (:func:`kan_dense_layers`, sizes in
      ``options``), ``activation`` after the convolutions;
    - ``"mdome"``: ``activation`` in the hidden layers, MDOME as the output layer (dome.txt Eq. 8, 9, 12, 13),
      trained with MSE on its normalised output and attacked as the DOME chapter does (:func:`_eval_head`);
    - ``"saf"``: ``activation`` (mReLU or RBF) after every convolution, ReLU after the hidden dense layer and the
      1-D RBF output layer in log form (saf.txt Tables 1 and 3, :class:`symact.experiments.saf.LogRBF`), trained
      with the hybrid loss (saf.txt Eq. 7) and decided by the SAF paper's rule (:func:`saf_decision`).

    A class of its own (the config hash includes the class name), so that the hashes of :class:`RowConfig`
    rows never change when forms are added."""

    form: str = "pssilu-network"
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"unknown row form {self.form!r}; expected one of {', '.join(FORMS)}")

    @property
    def is_relu(self) -> bool:
        return False


#: KAN networks (Liu et al. 2024, KAN's published form, :class:`symact.kan.KANLinear`: cubic B-splines on 5
#: intervals of [-1, 1] and the SiLU base branch on every edge, a bias per node as pykan's ``MultKAN``): the
#: hidden width of the KAN dense block per data set, chosen so that the whole network's parameter count matches
#: the protocol network's within :data:`KAN_TOLERANCE` (:func:`kan_param_match`). MNIST: LeNet-5's
#: ``800 -> 500 -> 10`` (406,510 parameters with its batch normalisation) becomes ``800 -> 50 -> 10`` KAN
#: layers; CIFAR-10: the VGG-inspired network's ``2048 -> 128 -> 10`` (263,818) becomes ``2048 -> 13 -> 10``.
KAN_WIDTHS = {"mnist": 50, "cifar10": 13}
#: the larger KAN network (issue 34: Alter et al. find large KANs more robust, small ones not): four times the
#: matched hidden width: dense blocks of 1.62 M (MNIST) and 1.07 M (CIFAR-10) parameters, whole networks of
#: 1.65 M and 1.36 M (3.8 and 2.5 times the protocol networks')
KAN_LARGE_WIDTHS = {"mnist": 200, "cifar10": 52}
#: the largest relative difference allowed between the KAN network's parameter count and the protocol network's
KAN_TOLERANCE = 0.02
KAN_OPTIONS = (("grid_range", (-1.0, 1.0)), ("grid_size", 5), ("spline_order", 3))

#: rows with a network of their own: (row name, form, activation, its kwargs, options per data set or None)
BUILT_ROWS = (
    ("pssilu-robustbench", "pssilu-network", "pssilu", (("alpha", 1.0), ("beta", 1e-8), ("learn_beta", True)), None),
    ("kan", "kan", "relu", (), {ds: (("hidden", w), *KAN_OPTIONS) for ds, w in KAN_WIDTHS.items()}),
    ("kan-large", "kan", "relu", (), {ds: (("hidden", w), *KAN_OPTIONS) for ds, w in KAN_LARGE_WIDTHS.items()}),
    ("mdome", "mdome", "relu", (), None),
    ("mrelu", "saf", "mrelu", (), None),
    ("rbf", "saf", "rbf", (), None),
)

#: what each new row is, in one line (the leaderboard's ``note``)
ROW_NOTES = {
    "pssilu": "PSSiLU per channel, beta fixed at 0.1 (Dai et al. 2021's default)",
    "pssilu-robustbench": "PSSiLU, one (alpha, beta) pair for the whole network, |beta| learned from 1e-8 "
                          "(RobustBench's Dai2021Parameterizing)",
    "maxmin": "GroupSort with groups of 2 (Anil et al. 2019), sorting channel pairs in place: widths unchanged",
    "kan": "KAN layers (B-spline, KAN's published form) replace the dense layers; parameters matched within 2 %",
    "kan-large": "KAN layers replace the dense layers, four times the matched width (Alter et al.'s size effect)",
    "mdome": "ReLU hidden layers, MDOME output with MSE loss; AutoAttack over its three views, PGD on the MSE loss",
    "mrelu": "mReLU after the convolutions, 1-D RBF output, hybrid loss (saf.txt Eq. 7), rejection below 0.5 "
             "counts as an error; PGD on Eq. 7; no nonsense class (mean training is not in the protocol)",
    "rbf": "RBF after the convolutions, 1-D RBF output, hybrid loss (saf.txt Eq. 7), rejection below 0.5 counts "
           "as an error; PGD on Eq. 7; no nonsense class (mean training is not in the protocol)",
}


def kan_dense_layers(model: nn.Module, hidden: int, grid_size: int = 5, spline_order: int = 3,
                     grid_range: Sequence[float] = (-1.0, 1.0)) -> nn.Module:
    """Replace, in place, the dense layers of a protocol network (``model.hidden``, whose first module is an
    ``nn.Linear``, and ``model.classifier``; :class:`symact.models.LeNet5` and
    :class:`symact.models.VGGInspired`) by two KAN layers in KAN's published form (:class:`symact.kan.KANLinear`,
    with a bias per node): ``in -> hidden -> classes``. Each KAN layer is preceded by batch normalisation (the
    protocol puts it before every non-linearity, and a KAN layer's non-linearities act on its inputs, which
    the B-spline grid on ``grid_range`` expects to be of order one); the dropout of ``model.hidden`` (the
    VGG-inspired network's 0.4) is kept after the first KAN layer. Returns ``model``."""
    from symact.kan import KANLinear

    old = model.hidden
    lin = old[0]
    if not isinstance(lin, nn.Linear) or not isinstance(model.classifier, nn.Linear):
        raise TypeError(f"kan_dense_layers expects model.hidden to start with an nn.Linear and model.classifier to "
                        f"be one (LeNet5, VGGInspired), got {type(lin).__name__}, {type(model.classifier).__name__}")
    if int(hidden) != hidden or hidden < 1:
        raise ValueError(f"the KAN hidden width must be a positive integer, got {hidden!r}")
    kw = dict(grid_size=grid_size, spline_order=spline_order, grid_range=tuple(grid_range), bias=True)
    drop = [m for m in old if isinstance(m, nn.Dropout)]
    model.hidden = nn.Sequential(nn.BatchNorm1d(lin.in_features), KANLinear(lin.in_features, hidden, **kw), *drop)
    model.classifier = nn.Sequential(nn.BatchNorm1d(hidden), KANLinear(hidden, model.classifier.out_features, **kw))
    return model


def build_row_network(form: str, network: str, activation: Any = "relu", activation_kwargs: Mapping | None = None,
                      options: Mapping | Iterable = (), **network_kwargs) -> nn.Module:
    """The network of a :class:`BuiltRowConfig` row (``form`` in :data:`FORMS`): ``symact.models.<network>`` with
    ``network_kwargs``, changed as the form says (see :class:`BuiltRowConfig`). The builder the zoo rebuilds
    these rows' networks with (JSON-able arguments)."""
    cls = getattr(_models, network, None)
    if network not in _models.__all__ or not isinstance(cls, type):
        raise ValueError(f"unknown network {network!r}; symact.models has {', '.join(_models.__all__)}")
    if form not in FORMS:
        raise ValueError(f"unknown row form {form!r}; expected one of {', '.join(FORMS)}")
    akw, opts = dict(activation_kwargs or {}), dict(options or {})
    if form == "pssilu-network":
        from symact.activations.pssilu import pssilu_factory

        if activation != "pssilu":
            raise ValueError(f"the 'pssilu-network' form shares PSSiLU's parameters; activation must be 'pssilu', "
                             f"got {activation!r}")
        return cls(act=pssilu_factory("network", **akw), **network_kwargs)
    act = activation_factory(activation, **akw)
    if form == "kan":
        return kan_dense_layers(cls(act=act, **network_kwargs), **opts)
    if form == "mdome":
        return cls(act=act, out_act=_acts.factory("mdome", n=10), **network_kwargs)
    from symact.experiments.saf import LogRBF

    model = cls(act=act, out_act=_log_rbf, **network_kwargs)
    if not isinstance(model.hidden[0], nn.Linear) or len(model.hidden) < 3:
        raise TypeError(f"the 'saf' form needs model.hidden = (Linear, BatchNorm, activation, ...), got {model.hidden}")
    model.hidden[2] = nn.ReLU()  # saf.txt Tables 1 and 3: ReLU after fc1
    assert isinstance(model.out_act, LogRBF)
    return model


def _log_rbf(channels: int) -> nn.Module:
    from symact.experiments.saf import LogRBF

    return LogRBF()


def kan_param_match(dataset: str) -> dict:
    """The parameter counts of the KAN row's network and of the protocol network (ReLU) of ``dataset``, and
    their relative difference ``(kan - protocol) / protocol`` (at most :data:`KAN_TOLERANCE` in magnitude)."""
    p = protocol(dataset, "paper")
    with torch.random.fork_rng(devices=[]):
        ref = _params(build_network(p.network, "relu", **dict(p.network_kwargs)))
        kan = _params(build_row_network("kan", p.network, "relu", options=_row_options("kan", dataset),
                                        **dict(p.network_kwargs)))
    return {"kan": kan, "protocol": ref, "relative": (kan - ref) / ref, "hidden": KAN_WIDTHS[dataset]}


def _row_options(row: str, dataset: str) -> tuple:
    for name, _, _, _, opts in BUILT_ROWS:
        if name == row:
            return () if opts is None else opts[dataset]
    raise KeyError(f"no built row {row!r}")


def saf_decision(outputs: torch.Tensor) -> torch.Tensor:
    """The SAF paper's decision on the log-confidences of its 1-D RBF output (saf.txt Section 5,
    :func:`symact.experiments.saf.decide` without a nonsense class): the class of the largest confidence
    ``exp(output)``, or :data:`symact.experiments.saf.NONSENSE` (10, no class: counted as an error) when every
    confidence is below 0.5."""
    from symact.experiments.saf import decide

    return decide(outputs, robust=True, nonsense_class=False)


def _row_loss(cfg: RowConfig):
    """The training loss of a row: None (the protocol's cross-entropy) unless its form has its own."""
    form = getattr(cfg, "form", None)
    if form == "mdome":
        from symact.train import loss_function

        return loss_function("mse")
    if form == "saf":
        from symact.experiments.saf import ALPHAS, hybrid_loss

        return hybrid_loss(ALPHAS[cfg.protocol.dataset])
    return None


def _build(cfg: RowConfig, act: Any = None) -> nn.Module:
    """The row's network, its activation from ``act`` (a reader's object) or from ``cfg.activation``."""
    p = cfg.protocol
    if isinstance(cfg, BuiltRowConfig):
        return build_row_network(cfg.form, p.network, cfg.activation, dict(cfg.activation_kwargs), cfg.options,
                                 **dict(p.network_kwargs))
    return build_network(p.network, act if act is not None else cfg.activation, dict(cfg.activation_kwargs),
                         **dict(p.network_kwargs))


def _datasets(p: Protocol):
    from symact import data

    return data.load(p.dataset, train=True).head(p.n_train), data.load(p.dataset, train=False)


def _lr_unit(cfg: RowConfig, act: Any = None) -> dict:
    """Unit ``lr``: the range test of this row's network under the protocol's training step."""
    from symact.train import lr_range_test

    p = cfg.protocol
    train_set, _ = _datasets(p)
    return lr_range_test(functools.partial(_build, cfg, act), train_set, p.train_config(p.lr_seed), p.lr_min,
                         p.lr_max, p.lr_steps, loss_fn=_row_loss(cfg), progress=False)


def _params(model: nn.Module) -> int:
    return sum(t.numel() for t in model.parameters())


def _train_unit(cfg: RowConfig, act: Any, seed: int, lr: dict, checkpoint: Path | None = None) -> dict:
    """Unit ``train-seed<k>``: fast adversarial training of seed ``k`` peaking at the range test's choice;
    resumable from ``checkpoint`` (a folder); its value holds the weights (the zoo keeps them at ``paper``)."""
    from symact.train import train

    p = cfg.protocol
    train_set, test_set = _datasets(p)
    torch.manual_seed(seed)
    model = _build(cfg, act)
    with torch.random.fork_rng(devices=[]):
        relu_params = _params(build_network(p.network, "relu", **dict(p.network_kwargs)))
    ckpt = None if checkpoint is None else Path(checkpoint) / "train.ckpt"
    history = train(model, train_set, p.train_config(seed, lr["lr_max"]), test=test_set.head(p.n_eval),
                    loss_fn=_row_loss(cfg), progress=False, checkpoint=ckpt)
    out = {"seed": seed, "lr_max": lr["lr_max"], "history": history, "params": _params(model),
           "params_added": _params(model) - relu_params,
           "epoch_seconds": float(np.mean(history["seconds"])) if history["seconds"] else None,
           "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if isinstance(cfg, BuiltRowConfig):
        out["protocol_params"] = relu_params
        out["builder"] = "symact.benchmark:build_row_network"
        out["builder_kwargs"] = {"form": cfg.form, "network": p.network, "activation": cfg.activation,
                                 "activation_kwargs": dict(cfg.activation_kwargs), "options": dict(cfg.options),
                                 **dict(p.network_kwargs)}
    elif ":" not in cfg.activation or _importable(cfg.activation):
        out["builder"] = "symact.benchmark:build_network"
        out["builder_kwargs"] = {"network": p.network, "activation": cfg.activation,
                                 "activation_kwargs": dict(cfg.activation_kwargs), **dict(p.network_kwargs)}
    return out


def _importable(spec: str) -> bool:
    try:
        _import(spec)
    except ValueError:
        return False
    return True


def _surrogate_unit(p: Protocol, seed: int, relu_row: str | None = None, checkpoint: Path | None = None) -> dict:
    """Unit ``relu-seed<k>``: the ReLU row's network of seed ``k`` under protocol ``p``, the transfer
    surrogate: from the zoo when it holds it for this protocol (``benchmark/<relu_row>``, default
    ``<dataset>-relu``, with the ReLU row's config hash), else trained here exactly as the ReLU row's own units
    train it. ``relu_row`` is resolved where the units are declared (:data:`_RELU_ROWS`), so a worker that
    never imported the module registering another protocol's rows still finds its ReLU row."""
    from symact import zoo

    relu = RowConfig(p, "relu")
    name, key = f"{CHAPTER}/{relu_row or _exp_name(p.dataset, 'relu')}", f"train-seed{seed}"
    if zoo.exists(name, key, config_hash=config_hash(relu)):
        return {"source": f"zoo {name}/{key}", "weights": dict(zoo.load_state_dict(name, key))}
    trained = _train_unit(relu, None, seed, _lr_unit(relu), checkpoint)
    return {"source": "trained in this run (the ReLU row's zoo network was not there)",
            "weights": trained["weights"], "lr_max": trained["lr_max"]}


def _curve_attacks(p: Protocol):
    import torchattacks

    def make(model: nn.Module, eps: float) -> dict:
        return {"apgd-ce": torchattacks.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce",
                                             seed=p.attack_seed),
                "pgd": torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=p.pgd_steps, random_start=True)}
    return make


class _InView:
    """An attack run with an MDOME output layer switched to ``view`` (restored after): ``(x, y) -> x_adv``."""

    def __init__(self, out_act: nn.Module, view: str, attack: Callable):
        self.out_act, self.view, self.attack = out_act, view, attack

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        home = self.out_act.output
        self.out_act.output = self.view
        try:
            return self.attack(x, y)
        finally:
            self.out_act.output = home


def _eval_head(cfg: RowConfig, model: nn.Module, n_classes: int) -> tuple[Callable | None, dict, dict]:
    """How a row's network is attacked: ``(predict, attacks, record)``. ``predict``: the prediction rule (None:
    arg max); ``attacks``: the entries of the main evaluation that replace the protocol's or add to them (the
    row's adaptive attacks); ``record``: what ran, stored with the evaluation (empty for a plain row).

    - MDOME (dome.txt Section 7, as :mod:`symact.experiments.dome` attacks it): every attack sees the logit
      view of Eq. 14 (``-||(x - mu e_i)/sigma||^2``, whose arg max is the normalised output's), AutoAttack runs on
      each of the three views in turn (:func:`symact.experiments.dome.union_of_views`: an image is robust only
      if it survives all), and the adaptive attack is PGD on the training loss, MSE on the normalised output.
    - SAF rows (saf.txt Section 5, as :mod:`symact.experiments.saf` attacks them): the outputs are the
      log-confidences ``-z^2`` (their softmax is Eq. 7's normalised confidence, so the attacks' cross-entropy
      is Eq. 7's first term); every attack and measurement is judged by :func:`saf_decision` (a rejection
      counts as an error), AutoAttack included; the adaptive attack is PGD on the training loss, Eq. 7, under
      that rule. What is missing: an attack aimed at a nonsense class; these rows have none (mean training
      is a training trick the protocol does not use), and :mod:`symact.experiments.saf` has none either.
    """
    from symact.attacks import AutoAttack, LossPGD

    form, p = getattr(cfg, "form", None), cfg.protocol
    eps, steps, restarts, seed = p.eps, p.pgd_steps, p.pgd_restarts, p.attack_seed
    if form == "mdome":
        from symact.experiments.dome import MDOME_VIEWS, union_of_views

        out_act = model.out_act
        out_act.output = "logit1"
        aa = union_of_views(model, out_act, lambda m: AutoAttack(m, norm="Linf", eps=eps, n_classes=n_classes,
                                                                 seed=seed))
        pgd = LossPGD(model, eps, eps / 4, steps, restarts=restarts, loss_fn=_row_loss(cfg), seed=seed)
        return None, {"autoattack": aa, "adaptive-mse": _InView(out_act, "normalized", pgd)}, {
            "form": form, "loss": "MSE on MDOME's normalised output (dome.txt Section 7)", "predict": "argmax",
            "attack_view": "logit1 (dome.txt Eq. 14) for every attack not named below",
            "autoattack": f"AutoAttack on each MDOME view in turn ({', '.join(MDOME_VIEWS)}), robust only if "
                          "robust under all (symact.experiments.dome.union_of_views)",
            "adaptive": {"adaptive-mse": f"PGD-{steps} x {restarts} restarts (step eps/4) on the training loss, "
                                         "MSE on the normalised output"}}
    if form == "saf":
        from symact.experiments.saf import ALPHAS

        rule = saf_decision
        aa = AutoAttack(model, norm="Linf", eps=eps, n_classes=n_classes, seed=seed, predict=rule)
        pgd = LossPGD(model, eps, eps / 4, steps, restarts=restarts, loss_fn=_row_loss(cfg), seed=seed,
                      predict=rule)
        return rule, {"autoattack": aa, "adaptive-eq7": pgd}, {
            "form": form, "loss": f"hybrid loss saf.txt Eq. 7, alphas {ALPHAS[p.dataset]}, p = 2",
            "predict": "saf_decision: the class of the largest confidence exp(output), rejected (an error) when "
                       "every confidence is below 0.5 (saf.txt Section 5)",
            "autoattack": "AutoAttack on the log-confidences, images judged by saf_decision",
            "adaptive": {"adaptive-eq7": f"PGD-{steps} x {restarts} restarts (step eps/4) on the training loss, "
                                         "saf.txt Eq. 7, judged by saf_decision"},
            "missing": "no attack aimed at a nonsense class: these rows have none (mean training is not in the "
                       "protocol) and symact.experiments.saf has no such attack"}
    return None, {}, ({"form": form} if form else {})


def _eval_unit(cfg: RowConfig, act: Any, seed: int, trained: dict, surrogate: dict | None = None,
               checkpoint: Path | None = None) -> dict:
    """Unit ``eval-seed<k>``: the network of seed ``k`` under every attack of the protocol (module docstring),
    and for a row with its own output layer the attacks its output needs (:func:`_eval_head`). Resumable from
    ``checkpoint`` (a folder): each step (clean accuracy, the attacks, the curve, the distances, the sanity
    checks) is kept there with the random state after it (:func:`symact.store.checkpoints.stage`), the attacks
    batch by batch, so an interrupted evaluation resumes with the numbers an uninterrupted one gives."""
    import torchattacks

    from symact.attacks import AutoAttack, make_attack
    from symact.device import get_device
    from symact.evaluation import (Transfer, decode_outcomes, encode_outcomes, evaluate, min_norm_distances,
                                   robustness_curve, run_sanity)
    from symact.store.checkpoints import stage
    from symact.train import place

    p = cfg.protocol
    dev = get_device()
    torch.manual_seed(p.attack_seed)
    model = _build(cfg, act)
    model.load_state_dict(trained["weights"])
    place(model, dev)  # the layout training used: channels-last convolutions, about 1.3x faster attacks on CPU
    model.eval()
    sur = None
    if surrogate is not None:
        sur = build_network(p.network, "relu", **dict(p.network_kwargs))
        sur.load_state_dict(surrogate["weights"])
        place(sur, dev)
        sur.eval()
    _, test_all = _datasets(p)
    predict, head_attacks, head = _eval_head(cfg, model, len(test_all.classes))
    clean = stage(checkpoint, "clean", lambda: evaluate(model, test_all.head(p.n_clean), predict=predict,
                                                        device=dev, progress=False), dev)
    test, extra = test_all.head(p.n_eval), test_all.head(p.n_extra)
    eps = p.eps
    aa_kw = {"n_classes": len(test_all.classes)} if isinstance(cfg, BuiltRowConfig) else {}
    atks = {"autoattack": head_attacks["autoattack"] if "autoattack" in head_attacks else
            AutoAttack(model, norm="Linf", eps=eps, seed=p.attack_seed, **aa_kw),
            "square": torchattacks.Square(model, eps=eps, n_queries=p.square_queries, n_restarts=1, p_init=0.8,
                                          loss="margin", resc_schedule=False, seed=p.attack_seed),
            "pgd": make_attack("pgd", model, eps=eps, alpha=eps / 4, steps=p.pgd_steps, restarts=p.pgd_restarts)}
    if sur is not None:
        atks["transfer"] = Transfer(model, torchattacks.PGD(sur, eps=eps, alpha=eps / 4, steps=p.pgd_steps,
                                                            random_start=True))
    atks.update({k: v for k, v in head_attacks.items() if k != "autoattack"})
    main = stage(checkpoint, "attacks", lambda: evaluate(
        model, test, atks, predict=predict, device=dev, progress=False,
        checkpoint=None if checkpoint is None else checkpoint / "attacks-batches.pt"), dev)
    curve = stage(checkpoint, "curve", lambda: robustness_curve(model, test, _curve_attacks(p), p.curve_eps,
                                                                predict=predict, device=dev, progress=False), dev)
    dist = stage(checkpoint, "distances", lambda: {
        norm: min_norm_distances(model, extra, norm=norm, method="fab", steps=p.fab_steps, predict=predict,
                                 device=dev, progress=False) for norm in ("Linf", "L2")}, dev)
    sanity = stage(checkpoint, "sanity", lambda: run_sanity(
        model, extra, eps, surrogate=sur, seed=p.attack_seed, steps=p.sanity_steps, square_queries=p.sanity_queries,
        predict=predict, device=dev, progress=False), dev)
    # the worst case per image over every attack run on it
    n = main["n"]
    worst = decode_outcomes(main["worst_case"]["outcome"], n)
    at = [i for i, e in enumerate(curve["eps"]) if abs(e - eps) < 1e-12]
    if at:
        worst &= decode_outcomes(curve["points"][at[0]]["worst_case"]["outcome"], n)
    m = len(extra)
    ev = sanity["report"]["evaluation"]
    worst[:m] &= decode_outcomes(ev["worst_case"]["outcome"], m)
    d = np.asarray(dist["Linf"]["distances"], dtype=float)
    worst[:m] &= decode_outcomes(dist["Linf"]["clean_outcome"], m) & (d > eps)
    names = [*atks, *(["curve"] if at else []), *(f"sanity:{a}" for a in ev["attacks"]), "fab-linf"]
    extra_attacks = [k for k in head_attacks if k != "autoattack"]
    out = {"seed": seed, "n_clean": clean["n"], "clean_acc": clean["clean_acc"], "clean_outcome": clean["outcome"],
           "evaluation": main, "curve": curve, "distances": dist, "sanity": sanity,
           "worst_case": {"n": n, "robust": int(worst.sum()), "robust_acc": float(worst.mean()),
                          "outcome": encode_outcomes(worst), "attacks": names,
                          "note": f"AutoAttack, Square, PGD{', transfer' if sur is not None else ''}"
                                  f"{''.join(', ' + k for k in extra_attacks)} and the "
                                  f"curve's attacks at eps on all {n} images; the sanity attacks and FAB (a "
                                  f"distance within eps) on the first {m}"},
           "transfer": None if surrogate is None else surrogate.get("source")}
    if head:
        out["head"] = head
    return out


def _units(cfg: RowConfig, act: Any = None) -> list[Unit]:
    """The range test, then seed by seed its training, (the ReLU surrogate,) and its evaluation. The declared
    order is the run's priority (:func:`symact.store.units.run_units`): a worker that finishes a training
    evaluates that seed before it trains the next, so that an unfinished row shows finished seeds early
    (:func:`stored_rows`)."""
    units = [Unit("lr", _lr_unit, (cfg, act))]
    for k in cfg.protocol.seeds:
        units.append(Unit(f"train-seed{k}", _train_unit, (cfg, act, k), needs=("lr",), checkpoint=True, zoo=True))
        if cfg.is_relu:  # transfer from ReLU is not defined for the ReLU row itself
            units.append(Unit(f"eval-seed{k}", _eval_unit, (cfg, act, k), needs=(f"train-seed{k}",),
                              checkpoint=True))
        else:
            units.append(Unit(f"relu-seed{k}", _surrogate_unit,
                              (cfg.protocol, k, _RELU_ROWS.get(cfg.protocol)), checkpoint=True))
            units.append(Unit(f"eval-seed{k}", _eval_unit, (cfg, act, k),
                              needs=(f"train-seed{k}", f"relu-seed{k}"), checkpoint=True))
    return units


_DROP = ("weights", "builder", "builder_kwargs")


def _seed_entry(cfg: RowConfig, k: int, outputs: Mapping) -> dict:
    tr = {key: v for key, v in outputs[f"train-seed{k}"].items() if key not in _DROP}
    return {"seed": k, "train": tr, "eval": outputs[f"eval-seed{k}"]}


def _combine(cfg: RowConfig, outputs: dict) -> dict:
    """The combine step: the range test and, per seed, its training (history, learning rate, parameters, cost)
    and its evaluation."""
    from symact import data

    p = cfg.protocol
    return {"dataset": p.dataset, "data": data.load(p.dataset, train=False).description, "network": p.network,
            "activation": cfg.activation, "activation_kwargs": dict(cfg.activation_kwargs),
            "protocol": _jsonable(p), "lr": outputs["lr"],
            "seeds": [_seed_entry(cfg, k, outputs) for k in p.seeds]}


#: the ReLU row (experiment name) of each protocol registered with one, the transfer surrogate of that
#: protocol's other rows; the data set's own protocol falls back to ``<dataset>-relu``
_RELU_ROWS: dict[Protocol, str] = {}


def register_row(dataset: str, row: str, activation: Any, activation_kwargs: Mapping | Iterable = (),
                 source: str = "", act_object: Any = None, protocols: Mapping[str, Protocol] | None = None):
    """Register the experiment ``benchmark/<dataset>-<row>`` (one config per profile, :func:`protocol`) and
    return it. ``activation``: a registered name or ``"module:callable"``; ``act_object``: the reader's object
    itself (passed to the units, so that an activation defined in a notebook runs too). ``protocols``: a
    :class:`Protocol` per profile other than the data set's own (a second network under the same recipe, the
    KAF chapter's ResNet-20); a plain ReLU row registered with them is their rows' transfer surrogate."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; the benchmark is defined for {', '.join(DATASETS)}")
    if protocols is not None:
        if set(protocols) != set(PROFILES) or any(not isinstance(p, Protocol) or p.dataset != dataset
                                                  for p in protocols.values()):
            raise ValueError(f"protocols must map every profile {PROFILES} to a Protocol of {dataset!r}")
    kw = tuple(sorted(dict(activation_kwargs).items()))
    configs = {prof: RowConfig(protocols[prof] if protocols is not None else protocol(dataset, prof), activation,
                               kw, source) for prof in PROFILES}
    if activation == "relu" and not kw:
        for cfg in configs.values():
            _RELU_ROWS.setdefault(cfg.protocol, _exp_name(dataset, row))
    units = functools.partial(_units, act=act_object)
    return experiment(CHAPTER, _exp_name(dataset, row), configs, units=units)(_combine)


def register_built_row(dataset: str, row: str, form: str, activation: str, activation_kwargs: Mapping | Iterable = (),
                       options: Mapping | Iterable = ()):
    """Register the experiment ``benchmark/<dataset>-<row>`` of a row with a network of its own
    (:class:`BuiltRowConfig`, one config per profile) and return it."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; the benchmark is defined for {', '.join(DATASETS)}")
    kw, opts = tuple(sorted(dict(activation_kwargs).items())), tuple(sorted(dict(options).items()))
    configs = {prof: BuiltRowConfig(protocol(dataset, prof), activation, kw, "", form, opts) for prof in PROFILES}
    return experiment(CHAPTER, _exp_name(dataset, row), configs, units=_units)(_combine)


def book_rows() -> list[str]:
    """The names of the book's rows, in the leaderboard's order of registration: :data:`ROWS`, then
    :data:`BUILT_ROWS`."""
    return [r for r, _, _ in ROWS] + [r for r, *_ in BUILT_ROWS]


for _ds in DATASETS:
    for _row, _act, _kw in ROWS:
        register_row(_ds, _row, _act, _kw)
    for _row, _form, _act, _kw, _opts in BUILT_ROWS:
        register_built_row(_ds, _row, _form, _act, _kw, () if _opts is None else _opts[_ds])


def experiment_for(dataset: str, row: str):
    """The registered experiment of a row (``experiment_for("cifar10", "kaf")``)."""
    key = (CHAPTER, _exp_name(dataset, row))
    if key not in REGISTRY:
        rows = sorted(n.split("-", 1)[1] for c, n in REGISTRY if c == CHAPTER and n.startswith(f"{dataset}-"))
        raise KeyError(f"no benchmark row {row!r} for {dataset!r}; registered: {', '.join(rows)}")
    return REGISTRY[key]


# --------------------------------------------------------------------------- the leaderboard


def _partial(exp, prof: str) -> Result | None:
    """The finished seeds of an unfinished run, as a result with ``provenance["partial"] = True``."""
    from symact.store.units import stored_units

    cfg = exp.configs[prof]
    done = stored_units(exp, prof)
    seeds = [k for k in cfg.protocol.seeds if f"eval-seed{k}" in done and f"train-seed{k}" in done]
    if not seeds:
        return None
    data = {"dataset": cfg.protocol.dataset, "network": cfg.protocol.network, "activation": cfg.activation,
            "protocol": _jsonable(cfg.protocol), "lr": done.get("lr"),
            "seeds": [_seed_entry(cfg, k, done) for k in seeds]}
    return Result(data, {"profile": prof, "partial": True, "chapter": CHAPTER, "experiment": exp.name,
                         "config_hash": config_hash(cfg)})


def stored_rows(dataset: str, profile: str, rows: Iterable[str] | None = None) -> dict:
    """Row name -> the stored result of each registered row of ``dataset`` at ``profile``: the fresh stored
    result, else the finished seeds of an unfinished run (``provenance["partial"]``), else None. Runs
    nothing. Without ``rows``: every row of the data set's own network (rows of another protocol's network,
    the KAF chapter's ResNet-20, are a leaderboard of their own: name them)."""
    own = protocol(dataset, profile).network
    names = rows if rows is not None else [n.split("-", 1)[1] for (c, n), e in REGISTRY.items()
                                           if c == CHAPTER and n.startswith(f"{dataset}-")
                                           and e.configs[profile].protocol.network == own]
    out = {}
    for row in names:
        exp = experiment_for(dataset, row)
        out[row] = exp.stored(profile) or _partial(exp, profile)
    return out


def _profile(result) -> str | None:
    prov = getattr(result, "provenance", None) or {}
    return prov.get("profile")


def _per_seed(result, what: str) -> dict[int, float]:
    get = {"clean_acc": lambda s: s["eval"]["clean_acc"],
           "robust_acc": lambda s: s["eval"]["worst_case"]["robust_acc"]}[what]
    return {s["seed"]: float(get(s)) for s in result["seeds"]}


def _complete(result) -> bool:
    prov = getattr(result, "provenance", None) or {}
    want = result["protocol"]["seeds"]
    return not prov.get("partial") and sorted(s["seed"] for s in result["seeds"]) == sorted(want)


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _final(history: Mapping, key: str) -> float:
    """The value of ``history[key]`` at the epoch whose weights the network kept (the one before the early stop
    when training stopped on catastrophic overfitting, else the last); NaN when there is none."""
    vals = history.get(key) or []
    stop = history.get("stopped_early")
    i = stop - 1 if stop else len(vals) - 1
    return _num(vals[i]) if 0 <= i < len(vals) else float("nan")


def apgd_ce_alone(evaluation: Mapping) -> np.ndarray | None:
    """Per image, robust under APGD-CE alone, AutoAttack's first component, from an :func:`_eval_unit`'s
    ``evaluation`` as stored: the clean-correct images that the cascade's ``broken_by`` code does not give to
    APGD-CE (the cascade attacks every clean-correct image with APGD-CE first, so these are exactly the images
    APGD-CE alone leaves robust). None when the evaluation holds no per-image outcome or no cascade starting
    with APGD-CE. The one place both :func:`black_box_vs_apgd` and :func:`leaderboard_row` read it from."""
    from symact.evaluation import decode_broken_by, decode_outcomes

    aa = evaluation["attacks"].get("autoattack") or {}
    bb = aa.get("broken_by") or {}
    if "outcome" not in evaluation or (bb.get("components") or [None])[0] != "apgd-ce":
        return None
    n = evaluation["n"]
    return decode_outcomes(evaluation["outcome"], n) & (np.array(decode_broken_by(bb, n), dtype=object) != "apgd-ce")


def black_box_vs_apgd(evaluation: Mapping, alpha: float = 0.05) -> dict | None:
    """The black-box-vs-white-box check of :func:`symact.evaluation.sanity_checks` with APGD-CE as the white-box
    attack, from an :func:`_eval_unit`'s ``evaluation`` as stored: on the same images, Square alone against
    APGD-CE alone (AutoAttack's first component: the clean-correct images its ``broken_by`` code does not give
    to APGD-CE), exact McNemar. The sanity checks' white-box attacks are FGSM and PGD with a fixed step, which
    fast adversarial training can defeat without masking the gradient; APGD-CE follows the same gradient with
    an adaptive step. Returns the check's entry (``name``, ``passed``, ``detail``), or None when the evaluation
    holds no cascade starting with APGD-CE or no Square alone."""
    from symact.evaluation import decode_outcomes, mcnemar

    attacks, n = evaluation["attacks"], evaluation["n"]
    apgd = apgd_ce_alone(evaluation)
    if "square" not in attacks or apgd is None:
        return None
    square = decode_outcomes(attacks["square"]["outcome"], n)
    t = mcnemar(apgd, square)  # b: robust under APGD-CE, broken by Square; c: the reverse
    fail = t["b"] > t["c"] and t["p"] < alpha
    detail = (f"square leaves {int(square.sum())} robust, apgd-ce {int(apgd.sum())} of {n} "
              f"(McNemar b={t['b']}, c={t['c']}, p={t['p']:.3g})")
    return {"name": "black-box-vs-apgd-ce", "passed": not fail,
            "detail": ("black-box-vs-apgd-ce failed: Square is stronger than APGD-CE, a sign of gradient masking "
                       "(Carlini et al. 2019): " if fail else "") + detail}


def leaderboard_row(result, row: str | None = None) -> dict:
    """One row of the leaderboard from a stored result of a benchmark experiment (complete, or partial from
    :func:`stored_rows`; None: a row that has not run).

    ``clean_mean``/``clean_sd`` and ``robust_mean``/``robust_sd``: mean and sample standard deviation over seeds
    of the clean accuracy (all test images) and the worst-case robust accuracy (:func:`_eval_unit`);
    ``autoattack_mean``, ``pgd_mean``, ``square_mean``: AutoAttack, PGD and Square alone (NaN where a row
    did not run one); ``apgd_ce_mean``: APGD-CE alone, AutoAttack's first component, read per image by
    :func:`apgd_ce_alone` (the cross-entropy gradient PGD follows, with APGD's adaptive step); ``linf_median``,
    ``l2_median``: the median over seeds of each seed's median FAB distance; ``sanity_failed``: the failed sanity checks with the number of seeds each
    failed on ("" when none failed); ``early_stopped``: seeds whose training stopped on catastrophic
    overfitting; ``train_attack_acc``: the accuracy on the images of the training's own attack (FGSM for fast
    adversarial training, PGD for PGD training) at the epoch kept, and ``check_acc``: the early stop's PGD-5
    check there (means over seeds); ``fgsm_above_clean``: the seeds whose network
    classified its FGSM training images better than clean test images, the signature of catastrophic
    overfitting that a masked PGD-5 check can miss (NaN for networks not trained by FGSM); ``epoch_seconds``,
    ``params``, ``params_added``: the cost; ``seeds``: "done/planned"; ``complete``; ``profile``; ``lr_max``:
    the range test's choice. ``sanity_failed`` includes :func:`black_box_vs_apgd` (``black-box-vs-apgd-ce``),
    computed from the stored outcomes on the seeds whose evaluation allows it (``apgd_checked`` of them;
    ``apgd_failed``: the seeds on which Square beat APGD-CE)."""
    if result is None:
        return {"row": row, "seeds": "0/?", "complete": False, "status": "not run", "note": ROW_NOTES.get(row, "")}
    seeds = result["seeds"]
    clean = np.array(list(_per_seed(result, "clean_acc").values()))
    robust = np.array(list(_per_seed(result, "robust_acc").values()))
    def alone(name: str) -> float:
        vals = [s["eval"]["evaluation"]["attacks"][name]["robust_acc"] for s in seeds
                if name in s["eval"]["evaluation"]["attacks"]]
        return float(np.mean(vals)) if vals else float("nan")

    def first_component() -> float:  # AutoAttack's first component, APGD-CE, alone
        vals = [a.mean() for s in seeds if (a := apgd_ce_alone(s["eval"]["evaluation"])) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    attack = np.array([_final(s["train"]["history"], "train_acc") for s in seeds])
    # fast adversarial training is the one whose history has the early stop's PGD-5 check
    fgsm = np.array([a if "check_robust_acc" in s["train"]["history"] else float("nan") for a, s in zip(attack, seeds)])
    sd = lambda a: float(a.std(ddof=1)) if len(a) > 1 else float("nan")  # noqa: E731
    failed: dict[str, int] = {}
    apgd_checked = 0
    for s in seeds:
        derived = black_box_vs_apgd(s["eval"]["evaluation"])
        apgd_checked += derived is not None
        for ch in [*s["eval"]["sanity"]["checks"], *([derived] if derived else [])]:
            if ch["passed"] is False:
                failed[ch["name"]] = failed.get(ch["name"], 0) + 1
    def med(norm: str) -> float:  # None: a median stored as NaN or infinity (JSON has neither)
        return float(np.median([_num(s["eval"]["distances"][norm]["median"]) for s in seeds]))

    return {"row": row or result.get("activation"), "dataset": result["dataset"], "profile": _profile(result),
            "seeds": f"{len(seeds)}/{len(result['protocol']['seeds'])}", "complete": _complete(result),
            "clean_mean": float(clean.mean()), "clean_sd": sd(clean), "robust_mean": float(robust.mean()),
            "robust_sd": sd(robust), "autoattack_mean": alone("autoattack"), "apgd_ce_mean": first_component(),
            "pgd_mean": alone("pgd"), "square_mean": alone("square"), "linf_median": med("Linf"),
            "l2_median": med("L2"),
            "sanity_failed": ", ".join(f"{k} ({v}/{len(seeds)})" for k, v in sorted(failed.items())),
            "apgd_checked": apgd_checked, "apgd_failed": failed.get("black-box-vs-apgd-ce", 0),
            "early_stopped": sum(s["train"]["history"].get("stopped_early") is not None for s in seeds),
            "train_attack_acc": float(np.mean(attack)),
            "check_acc": float(np.mean([_final(s["train"]["history"], "check_robust_acc") for s in seeds])),
            "fgsm_above_clean": int((fgsm > clean).sum()) if np.isfinite(fgsm).any() else float("nan"),
            "epoch_seconds": float(np.mean([_num(s["train"]["epoch_seconds"]) for s in seeds])),
            "params": int(seeds[0]["train"]["params"]), "params_added": int(seeds[0]["train"]["params_added"]),
            "lr_max": (result.get("lr") or {}).get("lr_max"), "status": _status(result),
            "adaptive": ", ".join(sorted({k for s in seeds for k in (s["eval"].get("head") or {}).get("adaptive", {})})),
            "note": ROW_NOTES.get(row or result.get("activation"), "")}


def _status(result) -> str:
    """``"complete"``, ``"partial (k/n seeds)"``, or ``"failed: ..."`` when a seed's training loss was not finite
    (the row keeps its place, with what failed)."""
    bad = [s["seed"] for s in result["seeds"]
           if any(v is None or not math.isfinite(v) for v in s["train"]["history"].get("train_loss", []))]
    if bad:
        return f"failed: training loss not finite (seed{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))})"
    if _complete(result):
        return "complete"
    return f"partial ({len(result['seeds'])}/{len(result['protocol']['seeds'])} seeds)"


def compare_to_relu(result, relu_result, level: float = 0.95) -> dict:
    """The verdicts of a row against the ReLU row of the same protocol, by :func:`symact.evaluation.verdict`:
    ``{"robust_acc": Verdict, "clean_acc": Verdict}``, each paired over the seeds both rows share (A = this
    row, B = ReLU; "better", "worse" or "no detectable difference" at a converged protocol).

    Convergence is told to the verdict as the book's rule has it: both results stored at the ``paper``
    profile (``provenance["profile"]``; ``smoke`` and ``quick`` give "not run at a converged protocol") and
    both complete (every seed of the protocol; a partial row never gets a verdict). Fewer than 3 shared seeds
    give "inconclusive". Raises ValueError for rows of different protocols.
    """
    from symact.evaluation import verdict

    if _jsonable(result["protocol"]) != _jsonable(relu_result["protocol"]):
        raise ValueError("the row and the ReLU row were run under different protocols (data set or profile): "
                         "they cannot be compared")
    converged = (_profile(result) == "paper" and _profile(relu_result) == "paper" and _complete(result)
                 and _complete(relu_result))
    out = {}
    for what in ("robust_acc", "clean_acc"):
        a, b = _per_seed(result, what), _per_seed(relu_result, what)
        shared = sorted(set(a) & set(b))
        if not shared:
            raise ValueError("the row and the ReLU row share no finished seed")
        out[what] = verdict([a[k] for k in shared], [b[k] for k in shared], converged=converged, paired=True,
                            level=level)
    return out


def leaderboard(results: Mapping[str, Any] | Iterable, relu: str | None = "relu",
                failures: Mapping[str, str] | None = None) -> "pd.DataFrame":
    """The leaderboard: one :func:`leaderboard_row` per result (a mapping row name -> result, as
    :func:`stored_rows` gives, or results), sorted by worst-case robust accuracy; with the ReLU row among them
    (``relu``: its name), the columns ``vs_relu_robust`` and ``vs_relu_clean`` hold :func:`compare_to_relu`'s
    words (empty for rows without results). Every row keeps its place: ``status`` says ``complete``,
    ``partial``, ``not run`` or what failed; ``failures`` (row name -> what failed, e.g. from
    :class:`symact.store.units.UnitsFailed`'s ``failures`` when a row could not be trained under the protocol)
    overrides the status of a row without a complete result. ``note`` says what a row is, ``adaptive`` which adaptive
    attacks ran on it."""
    import pandas as pd

    items = list(results.items()) if isinstance(results, Mapping) else [(None, r) for r in results]
    rows = [leaderboard_row(r, name) for name, r in items]
    for (name, r), row in zip(items, rows):
        if failures and name in failures and not row["complete"]:
            row["status"] = f"failed: {failures[name]}"
    base = dict(items).get(relu) if relu is not None else None
    if base is not None:
        for (name, r), row in zip(items, rows):
            if r is None or name == relu:
                row["vs_relu_robust"] = row["vs_relu_clean"] = ""
                continue
            v = compare_to_relu(r, base)
            row["vs_relu_robust"], row["vs_relu_clean"] = v["robust_acc"].word, v["clean_acc"].word
    df = pd.DataFrame(rows)
    if "robust_mean" in df:
        df = df.sort_values("robust_mean", ascending=False, na_position="last", kind="stable")
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- cost


#: seconds per image per gradient evaluation (a forward and a backward pass) on this project's 2-core CPU,
#: from one fast-adversarial-training epoch (two per training image: the FGSM step and the update): LeNet-5
#: on MNIST about 22 s (11 s for a standard epoch, twice that with FGSM) over 60,000 images; the VGG-inspired
#: network on CIFAR-10 about 180 s (2.5 to 3.5 minutes) over 50,000 images
GRAD_SECONDS = {"LeNet5": 22 / (2 * 60000), "VGGInspired": 180 / (2 * 50000),
                "CifarResNet": 1.5 * 180 / (2 * 50000)}  # ResNet-20: 1.5 times the VGG network (measured ratio)
#: the robust fraction assumed for the attacks' early stopping (AutoAttack's later components, Square and the
#: PGD restarts attack only the images still robust): fast adversarial training's usual range
ROBUST_GUESS = {"mnist": 0.85, "cifar10": 0.45}


#: each new row's cost relative to the ReLU network (a fast-adversarial-training step, the FGSM gradient and the
#: update, at the protocol's batch; measured on this project's CPU, one thread, while a background job ran: a
#: rough ratio): per data set, row -> factor. The KAN network's per-epoch training time, measured with
#: :func:`symact.train.train` on a subset (one thread, loaded machine): MNIST 2,000 images 9.4 s against ReLU's
#: 7.2 s (1.3x); CIFAR-10 512 images 11.5 s against 14.3 s (0.8x: the matched KAN block, 2048 -> 13 -> 10, is
#: cheaper than the dense 2048 -> 128 -> 10 it replaces)
ROW_FACTORS = {
    "mnist": {"pssilu": 1.4, "maxmin": 1.5, "pssilu-robustbench": 1.3, "kan": 1.4, "kan-large": 1.4, "mdome": 1.05,
              "mrelu": 1.15, "rbf": 1.3},
    "cifar10": {"pssilu": 1.45, "maxmin": 1.45, "pssilu-robustbench": 1.15, "kan": 1.0, "kan-large": 1.0,
                "mdome": 1.0, "mrelu": 1.0, "rbf": 1.1},
}


def measured_seconds(dataset: str, profile: str = "paper") -> dict:
    """The CPU seconds the stored units of the data set's rows at ``profile`` took, per unit and one thread,
    divided by each row's :data:`ROW_FACTORS` (so, in ReLU-network units): ``{"train": [...], "eval": [...]}``,
    from finished runs (``provenance["units"]``) and unfinished ones (the units folder). Units loaded from the
    zoo, run on a GPU or with more than one thread are left out. Reads files only."""
    import json

    out: dict = {"train": [], "eval": []}
    own = protocol(dataset, profile).network
    for (c, name), exp in REGISTRY.items():
        if c != CHAPTER or not name.startswith(f"{dataset}-") or exp.configs[profile].protocol.network != own:
            continue
        row = name.split("-", 1)[1]
        if any(n == row and form in ("mdome", "saf") for n, form, *_ in BUILT_ROWS):
            continue  # their evaluation runs more attacks: the plain rows' units measure the protocol
        factor = ROW_FACTORS[dataset].get(row, 1.0)
        provs = dict((exp.stored(profile) or Result({}, {})).provenance.get("units", {}))
        folder = exp.units_dir(profile)
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            provs.setdefault(path.stem, json.loads(path.read_text()).get("provenance", {}))
        for key, prov in provs.items():
            kind = key.split("-", 1)[0]
            wall = prov.get("wall_seconds") or 0.0
            if kind in out and wall > 0 and prov.get("threads") == 1 and str(prov.get("device", "")).startswith("cpu"):
                out[kind].append(wall / factor)
    return out


def estimate_cpu_seconds(p: Protocol, activation_factor: float = 1.0, surrogate: bool = False,
                         row: str | None = None, measured: Mapping | None = None) -> dict:
    """An estimate of one row's CPU seconds under ``p`` (one worker), by part: ``range_test``, ``train`` (all
    seeds), ``evaluation`` (all seeds), ``surrogate`` (training the ReLU surrogates, when the ReLU row's zoo
    networks are not there: ``surrogate=True``) and ``total``.

    Counted in gradient evaluations per image (a forward pass is a third of one) times :data:`GRAD_SECONDS`
    of the network, ``activation_factor`` times slower than ReLU's (trainable activations such as KAF cost
    more): a training epoch 2 per image; AutoAttack ``100 + r (900 + 900 + 5000 / 3)`` (APGD-CE; then, on the
    fraction ``r`` still robust, :data:`ROBUST_GUESS`, APGD-T and FAB-T with 9 targets of 100 steps and
    Square's queries); Square ``r q / 3``; PGD ``s (1 + r (restarts - 1))``; transfer ``s``; the curve
    ``100 + s`` per epsilon; FAB about 7 per step per norm (one forward, ten backward passes); the sanity
    checks ``1 + 3 s + r q / 3 + s + 3 s``. A rough guide to plan runs, not a measurement.

    ``row``: a row of :data:`BUILT_ROWS` or :data:`ROWS` whose cost :data:`ROW_FACTORS` gives (replacing
    ``activation_factor``) and whose evaluation runs more: MDOME's AutoAttack on three views (the second and
    third on the fraction ``r`` still robust: ``1 + 2 r`` times one AutoAttack) and its adaptive PGD on the MSE
    loss, the SAF rows' adaptive PGD on Eq. 7 (each as the protocol's PGD).

    ``measured``: :func:`measured_seconds` of the protocol; where it holds units of a kind (``train``,
    ``eval``), their median replaces the formula for that part (times the row's factor and the seeds), and
    ``measured`` in the answer names the parts taken from measurements. The formula alone underestimated the
    one-thread units of the MNIST ReLU row's first paper run about sixfold (training 1,433 s a seed against
    about 220 s): it counts gradient evaluations at the speed of a two-thread training epoch.
    """
    form = next((f for name, f, *_ in BUILT_ROWS if name == row), None)
    if row is not None:
        if row not in book_rows():
            raise ValueError(f"unknown row {row!r}; the book's rows are {', '.join(book_rows())}")
        activation_factor = ROW_FACTORS[p.dataset].get(row, activation_factor)
    g = GRAD_SECONDS[p.network] * activation_factor
    r = ROBUST_GUESS[p.dataset]
    n_train = p.n_train or (60000 if p.dataset == "mnist" else 50000)
    n_clean = p.n_clean or 10000
    s = p.pgd_steps
    train = len(p.seeds) * p.epochs * 2 * n_train * g
    rng = p.lr_steps * p.batch_size * 2 * g
    autoattack = 100 + r * (900 + 900 + 5000 / 3)
    pgd = s * (1 + r * (p.pgd_restarts - 1))
    plain = (autoattack + r * p.square_queries / 3 + pgd + s + len(p.curve_eps) * (100 + s))
    per_image = plain + {"mdome": 2 * r * autoattack + pgd, "saf": pgd}.get(form, 0.0)
    extra = 2 * 7 * p.fab_steps + 1 + 3 * p.sanity_steps + r * p.sanity_queries / 3 + 4 * p.sanity_steps
    evaluation = len(p.seeds) * (n_clean / 3 + p.n_eval * per_image + p.n_extra * extra) * g
    head = (n_clean / 3 + p.n_eval * per_image + p.n_extra * extra) / (n_clean / 3 + p.n_eval * plain
                                                                        + p.n_extra * extra)
    sur = (len(p.seeds) * p.epochs * 2 * n_train + p.lr_steps * p.batch_size * 2) * GRAD_SECONDS[p.network] \
        if surrogate else 0.0
    parts = {"range_test": rng, "train": train, "evaluation": evaluation, "surrogate": sur}
    used = []
    for kind, part, scale in (("train", "train", 1.0), ("eval", "evaluation", head)):  # head: MDOME/SAF extras
        if measured and measured.get(kind):
            parts[part] = float(np.median(measured[kind])) * len(p.seeds) * activation_factor * scale
            used.append(part)
    return {**{k: round(v) for k, v in parts.items()}, "total": round(sum(parts.values())), "measured": used}


# --------------------------------------------------------------------------- the public call


def _source_hash(obj: Any) -> str:
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def _spec_and_label(activation: Any, name: str | None) -> tuple[str, str, Any]:
    """(config spec, row name, the object to pass to the units) of a reader's activation."""
    if isinstance(activation, str):
        if ":" not in activation:
            _acts.factory(activation)  # KeyError listing the names
            return activation, name or activation, None
        obj = _import(activation)
        return activation, name or activation.partition(":")[2], obj
    mod, qual = getattr(activation, "__module__", None), getattr(activation, "__qualname__", None)
    if not mod or not qual:
        raise TypeError(f"expected an activation name, 'module:callable', an nn.Module class or a factory "
                        f"channels -> nn.Module; got {type(activation).__name__}")
    spec = f"{mod}:{qual}"
    if name is None:
        if "<" in qual:
            raise ValueError(f"the activation {qual!r} (a lambda or a local function) has no name to store its "
                             "row under: pass name='my-activation'")
        name = qual
    return spec, name, activation


def benchmark(activation: Any, dataset: str = "cifar10", profile: str | None = None, *, name: str | None = None,
              recompute: bool = False, workers: int | None = None, scheduler: str | None = None,
              show: bool = True) -> Result:
    """Train and evaluate ``activation`` under the book's protocol (:func:`protocol`) and print its leaderboard
    row beside the book's stored rows of the same data set and profile.

    Args:
        activation: an ``nn.Module`` class (built with ``channels=c`` when it takes ``channels``, else with no
            arguments), a factory ``channels -> nn.Module``, ``"module:callable"`` naming either, or a
            registered name (:func:`activation_factory`).
        dataset: ``"cifar10"`` (the VGG-inspired network, the JPEG copy of CIFAR-10) or ``"mnist"`` (LeNet-5).
        profile: ``"smoke"``, ``"quick"`` or ``"paper"`` (default ``$SYMACT_PROFILE``, else ``"quick"``);
            :data:`PROFILE_NOTES` and :func:`estimate_cpu_seconds` say what each costs.
        name: the row's name (default the class's or function's name; needed for a lambda).
        recompute: run again even when a fresh result is stored.
        workers, scheduler: where the units run (:func:`symact.store.units.open_client`).
        show: print the leaderboard.

    The result is stored as ``results/benchmark/<dataset>-<name>.<profile>.json``, its units as they finish
    (a stopped run resumes), and at ``paper`` its networks go to the zoo (``benchmark/<dataset>-<name>``).
    Returns the stored :class:`symact.results.Result`; :func:`leaderboard_row` makes it a row.

    Example:
        >>> class Shifted(torch.nn.Module):                                   # doctest: +SKIP
        ...     def forward(self, x): return torch.relu(x - 0.1)
        >>> res = symact.benchmark(Shifted, dataset="mnist", profile="quick")  # doctest: +SKIP
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; the benchmark is defined for {', '.join(DATASETS)}")
    prof = active_profile(profile)
    prof = "quick" if prof == "auto" else prof
    spec, row, obj = _spec_and_label(activation, name)
    if obj is not None:
        activation_factory(obj)  # fail now, with a clear message, not inside a unit
    row = _NAME.sub("_", row)
    book = set(book_rows())
    if obj is not None and row in book:
        row = f"custom-{row}"
    exp = (experiment_for(dataset, row) if obj is None and row in book else
           register_row(dataset, row, spec, (), _source_hash(obj) if obj is not None else "", act_object=obj))
    res = exp(profile=prof, recompute=recompute, workers=workers, scheduler=scheduler)
    if show:
        import pandas as pd

        stored = {r: v for r, v in stored_rows(dataset, prof, book_rows()).items() if v is not None}
        rows = {**stored, row: res}
        table = leaderboard(rows)
        table.insert(0, "", ["->" if r == row else "" for r in table["row"]])
        cols = [c for c in ("", "row", "status", "seeds", "clean_mean", "clean_sd", "robust_mean", "robust_sd",
                            "autoattack_mean", "linf_median", "sanity_failed", "epoch_seconds", "params_added",
                            "vs_relu_robust") if c in table]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(f"Benchmark {dataset}, profile {prof} ({PROFILE_NOTES[prof]}); the book's rows stored at this "
                  f"profile: {len(stored)} of {len(book_rows())}:")
            print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return res


class _CallableModule(types.ModuleType):
    """``symact.benchmark`` is this module and, called, :func:`benchmark` (as issue 28 writes the call)."""

    def __call__(self, *args, **kwargs):
        return benchmark(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
