"""Experiments of the S-APL chapter (../shared/papers/symmetric-apl.txt).

- ``dynamics``: the S-APL shapes through training and the training-loss
  trajectories of Section 5 (Figs. 1 to 3): the MLP of Appendix 8.2 on MNIST
  with ReLU, leaky ReLU, S-APL and its S-APL-positive / S-APL-negative
  ablations, batch normalisation before every activation. The two-stage
  hypothesis is measured, not only pictured: for every snapshot and layer,
  the mean S-APL output on the negative half-line under the unit Gaussian
  that batch normalisation targets, ``m- = E[h(X) | X < 0]``, ``X ~ N(0, 1)``.
  The paper's first stage predicts ``m- < 0`` early, its second ``m- > 0`` late.
- ``dynamics-lenet``: the same for LeNet-5 on MNIST (Fig. 2), BN before every activation, trained with
  the Table 1 LeNet-5 recipe.
- ``table1-<network>-<dataset>``: Table 1 (error rates, mean and standard
  deviation over seeds) and Table 7 (t-test of S-APL against the best
  baseline): LeNet-5 on MNIST and CIFAR-10 (with and without data
  augmentation), the MLP of Appendix 8.2 on MNIST. :data:`TABLE1_EXTRA` registers the rows the book shows
  only when their paper run is stored: ResNet-18 on CIFAR-10 (a GPU job) and every CIFAR-100 row (no
  offline copy of CIFAR-100 on our machines; ``symact.data`` loads one a reader downloads).
- ``hinges``: Tables 5 and 6 (Appendix 8.1), MNIST row: the MLP of Table 5
  (256, 64, 32 units) with S = 2..6 hinges a side, one S-APL shared by a
  layer or one per neuron: test error, added parameters, time per epoch.
- ``hinges-cifar10``: Tables 5 and 6, CIFAR-10 rows: LeNet-5 with S = 2..6 hinges a side, one S-APL shared by
  a layer or one per channel (the paper's is per neuron), with Tanh and Maxout (six pieces) timed beside them.
- ``robustness-lenet-cifar10-<activation>``: Tables 2 to 4 (Section 6), LeNet-5 rows: ReLU, APL, Swish and
  S-APL networks on CIFAR-10 under one-, three- and five-pixel differential evolution, FGSM and CW-L2, with
  the paper's avg |Z_true - Z_adv|, on the paper's 100 random test images and on 1,000 (Wilson 95%
  intervals); then PGD-50 with restarts and AutoAttack at eps 8/255.
- ``tsne-lenet-cifar10``: Fig. 4 (Section 6): t-SNE of the pre-softmax outputs of ReLU and S-APL LeNet-5
  for CIFAR-10 frog and ship test images, with the class separation measured (silhouette, kNN accuracy)
  in the t-SNE plane and in the logit space.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from symact import attacks, data, models
from symact.activations import Maxout, create
from symact.attacks import accuracy
from symact.device import seed_everything
from symact.evaluation import evaluate, pool, proportion_interval
from symact.results import Unit, _jsonable, experiment, gpu_resources, stored_units
from symact.train import TrainConfig, place, train

__all__ = ["DynamicsConfig", "HingesConfig", "HingesLeNetConfig", "LeNetDynamicsConfig", "PAPER_TABLE1",
           "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_TABLE4", "PAPER_TABLE5", "PAPER_TABLE5_CIFAR10",
           "PAPER_TABLE6_CIFAR10", "ROBUSTNESS", "ROBUSTNESS_ACTS", "RobustnessConfig", "TABLE1", "TABLE1_ACTS",
           "TABLE1_EXTRA", "PAPER_TABLE1_EXTRA", "Table1ResNetConfig",
           "TSNEConfig", "Table1Config", "activation_units", "dynamics", "dynamics_lenet", "hinges",
           "hinges_cifar10", "knn_accuracy", "negative_side_mean", "robustness_progress", "robustness_run",
           "table1_progress", "table1_summary", "tsne"]

#: activation name in symact.activations for each variant of Section 5
VARIANTS = {"relu": "relu", "leaky-relu": "leaky_relu", "sapl": "sapl", "sapl-positive": "sapl_positive",
            "sapl-negative": "sapl_negative"}

_GRID = np.linspace(-6.0, 0.0, 1201)
_WEIGHTS = np.exp(-_GRID ** 2 / 2) * np.r_[0.5, np.ones(len(_GRID) - 2), 0.5]   # trapezoid rule
_WEIGHTS /= _WEIGHTS.sum()


def negative_side_mean(act: torch.nn.Module) -> float:
    """``E[h(X) | X < 0]`` for ``X ~ N(0, 1)``, by the trapezoid rule on [-6, 0] (shared parameters only)."""
    with torch.no_grad():
        h = act(torch.tensor(_GRID, dtype=torch.float32)).double().numpy()
    return float(h @ _WEIGHTS)


@dataclass(frozen=True)
class MLPRecipe:
    """The MLP training recipe of symmetric-apl.txt Appendix 8.2: dropout 0.3, batch 32, 50 epochs, BN before
    every activation. The paper names no optimiser: SGD, momentum 0.9, constant ``lr``, no weight decay."""

    hidden: tuple[int, ...] = (258, 128)
    dropout: float = 0.3
    epochs: int = 50
    n_train: int | None = None
    batch_size: int = 32
    lr: float = 0.01
    seed: int = 0


def _train_mlp(cfg: MLPRecipe, make, train_set, batch_fn=None) -> tuple[torch.nn.Module, dict]:
    """Build the MLP of ``cfg`` with activation factory ``make`` and train it; returns ``(model, history)``."""
    seed_everything(cfg.seed)
    model = models.MLP(hidden=cfg.hidden, act=make, batch_norm=True, dropout=cfg.dropout)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=0.9, weight_decay=0.0,
                       seed=cfg.seed)
    return model, train(model, train_set, tcfg, batch_fn=batch_fn)


def _lenet_recipe(cfg, seed: int, augment: bool = False) -> TrainConfig:
    """The LeNet-5 recipe of :class:`Table1Config` (SGD, momentum 0.9) with ``cfg``'s epochs, batch size,
    learning rate and weight decay."""
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=0.9,
                       weight_decay=cfg.weight_decay, augment=augment, seed=seed)


def _train_lenet(make, train_set, tcfg: TrainConfig, batch_fn=None, checkpoint=None) -> tuple[torch.nn.Module, dict]:
    """LeNet-5 for ``train_set`` (MNIST shapes for one channel, CIFAR shapes for three) with activation factory
    ``make`` and BN before every activation (symmetric-apl.txt Section 4), built after seeding with
    ``tcfg.seed`` and trained with ``tcfg`` (``checkpoint`` as :func:`symact.train.train`'s); returns
    ``(model, history)``."""
    seed_everything(tcfg.seed)
    variant = "mnist" if train_set.shape[0] == 1 else "cifar"
    model = models.LeNet5(variant, len(train_set.classes), act=make, batchnorm="all")
    return model, train(model, train_set, tcfg, batch_fn=batch_fn, checkpoint=checkpoint)


@dataclass(frozen=True)
class DynamicsConfig(MLPRecipe):
    """The MLP of symmetric-apl.txt Appendix 8.2 on MNIST (hidden 258 and 128; :class:`MLPRecipe`) with each
    of :data:`VARIANTS`. S-APL: S = 4 hinges a side at the Section 4 positions, one shared set per layer,
    initialised as ReLU. ``snapshots`` S-APL shapes are recorded at evenly spaced steps, the first before
    any step.
    """

    variants: tuple[str, ...] = tuple(VARIANTS)
    snapshots: int = 26


@dataclass(frozen=True)
class LeNetRecipe:
    """The LeNet-5 training recipe of this chapter (the paper gives none; see :class:`Table1Config`): SGD, momentum
    0.9, ``lr``, ``weight_decay``, batch ``batch_size``, ``epochs`` on the first ``n_train`` training images
    (None: all)."""

    epochs: int = 30
    n_train: int | None = None
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 5e-4


@dataclass(frozen=True)
class LeNetDynamicsConfig(LeNetRecipe):
    """symmetric-apl.txt Section 5, Fig. 2 (and Fig. 3's loss comparison) for LeNet-5: each of :data:`VARIANTS`
    trained on MNIST, ``snapshots`` S-APL shapes per layer recorded at evenly spaced steps (the first before any
    step), as :class:`DynamicsConfig` does for the MLP.

    What the paper leaves open, and our choices: Appendix 8.2 says only that Fig. 2 uses "the same ... Lenet 5
    architecture" as Table 1; the data set is not named (Fig. 1's MLP is on MNIST; we use MNIST), nor the
    optimiser, epochs or batch size: we use the Table 1 LeNet-5 recipe (:class:`Table1Config`: SGD, momentum
    0.9, lr 0.01, weight decay 5e-4, batch 128, 30 epochs, BN before every activation). The paper's LeNet-5
    (LeCun et al.) has four activation layers (its text mentions "the 4th layer"); ours, in the SAF paper's
    shapes (:class:`symact.models.LeNet5`), has three: two convolutions and one hidden fully connected layer.
    S-APL as in :class:`DynamicsConfig`: S = 4 a side, one shared set per layer, ReLU initialisation.
    """

    variants: tuple[str, ...] = tuple(VARIANTS)
    snapshots: int = 26
    seed: int = 0


def _run_variant(cfg, variant: str, train_set, test_set, fit) -> dict:
    """Train one variant with ``fit(make, train_set, batch_fn) -> (model, history)``, recording the S-APL
    shapes and ``m-`` of every layer at ``cfg.snapshots`` evenly spaced steps of training."""
    total = cfg.epochs * -(-len(train_set) // cfg.batch_size)
    marks = set(np.linspace(0, total, cfg.snapshots).round().astype(int).tolist())
    acts, shots, step = [], [], [0]
    x = torch.linspace(-3, 3, 121)

    def snap():
        with torch.no_grad():
            shots.append({"step": step[0], "shape": [a(x).tolist() for a in acts],
                          "negative_mean": [negative_side_mean(a) for a in acts]})

    def record(xb, yb, gen):  # called before every training step: a hook, the batch passes unchanged
        if step[0] in marks and acts:
            snap()
        step[0] += 1
        return xb, yb

    def make(c):
        act = create(VARIANTS[variant])
        if type(act).__name__ == "SAPL":
            acts.append(act)
        return act

    model, hist = fit(make, train_set, record)
    if acts:
        snap()  # after the last step
    return {"train_loss": hist["train_loss"], "train_acc": hist["train_acc"], "seconds": hist["seconds"],
            "test_acc": accuracy(model, test_set), "steps": total, "x": x.tolist(), "snapshots": shots}


def _dynamics_units(cfg) -> list[Unit]:
    """One unit per variant of ``cfg`` (:func:`_dynamics_variant`)."""
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
    if cfg.snapshots < 2:
        raise ValueError(f"snapshots must be >= 2 (the start and the end of training), got {cfg.snapshots}")
    return [Unit(v, _dynamics_variant, (cfg, v)) for v in cfg.variants]


def _dynamics_variant(cfg, variant: str) -> dict:
    """One variant of ``cfg`` trained on MNIST (see :func:`_run_variant`): the MLP recipe for a
    :class:`DynamicsConfig`, the LeNet-5 recipe for a :class:`LeNetDynamicsConfig`."""
    train_set, test_set = data.load("mnist").head(cfg.n_train), data.load("mnist", train=False)
    if isinstance(cfg, LeNetDynamicsConfig):
        def fit(make, train_set, record):
            return _train_lenet(make, train_set, _lenet_recipe(cfg, cfg.seed), batch_fn=record)
    else:
        def fit(make, train_set, record):
            return _train_mlp(cfg, make, train_set, batch_fn=record)
    return _run_variant(cfg, variant, train_set, test_set, fit)


def _dynamics(cfg, outputs: dict) -> dict:
    """The result of a dynamics run from its units' values: every variant of ``cfg`` trained on MNIST."""
    return {"data": data.load("mnist").head(cfg.n_train).description,
            "variants": {v: outputs[v] for v in cfg.variants}}


@experiment("sapl", "dynamics", {
    "smoke": DynamicsConfig(variants=("relu", "sapl"), epochs=1, n_train=512, snapshots=3),
    "quick": DynamicsConfig(epochs=5, n_train=10000, snapshots=11),
    "paper": DynamicsConfig(),
}, units=_dynamics_units)
def dynamics(cfg: DynamicsConfig, outputs: dict) -> dict:
    """symmetric-apl.txt Figs. 1 and 3: the MLP on MNIST (:class:`DynamicsConfig`), one unit per variant."""
    return _dynamics(cfg, outputs)


@experiment("sapl", "dynamics-lenet", {
    "smoke": LeNetDynamicsConfig(variants=("relu", "sapl"), epochs=1, n_train=512, snapshots=3),
    "quick": LeNetDynamicsConfig(epochs=4, n_train=5000, snapshots=11),
    "paper": LeNetDynamicsConfig(),
}, units=_dynamics_units)
def dynamics_lenet(cfg: LeNetDynamicsConfig, outputs: dict) -> dict:
    """symmetric-apl.txt Fig. 2: LeNet-5 on MNIST (:class:`LeNetDynamicsConfig`); results as :func:`dynamics`."""
    return _dynamics(cfg, outputs)


#: symmetric-apl.txt Tables 5 and 6, MNIST rows: hinges (2S) -> (error % shared, error % per neuron,
#: added parameters shared, per neuron, seconds per epoch shared on a TITAN V GPU); Table 6: Tanh 6 s, Maxout 12 s
PAPER_TABLE5 = {4: (1.73, 1.61, 12, 1408, 5), 6: (1.70, 1.57, 18, 2112, 7), 8: (1.61, 1.57, 24, 2816, 10),
                10: (1.53, 1.53, 30, 3520, 12), 12: (1.55, 1.59, 36, 4224, 13)}

#: hinge positions a side for S = 2..6: the first S of Section 4's 0, 1, 2, 2.5 and Appendix 8.1's 3; the sixth
#: position is cut off in the source, 3.5 is our choice
HINGE_POSITIONS = (0.0, 1.0, 2.0, 2.5, 3.0, 3.5)


@dataclass(frozen=True)
class HingesConfig(MLPRecipe):
    """symmetric-apl.txt Appendix 8.1, Tables 5 and 6 (MNIST): the MLP of Table 5 with S-APL of S hinges a side.

    Fixed hinges at the first ``S`` of :data:`HINGE_POSITIONS`; slopes learned, one set per layer
    (``shared``) or per neuron. A tanh network is timed beside them (Table 6). The paper gives neither
    epochs nor optimiser for Table 5: we use the Appendix 8.2 MLP recipe (:class:`MLPRecipe`).
    """

    S: tuple[int, ...] = (2, 3, 4, 5, 6)
    hidden: tuple[int, ...] = (256, 64, 32)


def _check_S(S: tuple[int, ...]) -> None:
    if not S or any(int(s) != s or not 1 <= s <= len(HINGE_POSITIONS) for s in S):
        raise ValueError(f"S must be integers in 1..{len(HINGE_POSITIONS)}, got {S}")


def _hinge_row(model: torch.nn.Module, hist: dict, test_set) -> dict:
    """Test error, S-APL parameters (``added_parameters``), median seconds per epoch and last training loss."""
    added = sum(p.numel() for m in model.modules() if type(m).__name__ == "SAPL" for p in m.parameters())
    return {"test_error": 1 - accuracy(model, test_set), "added_parameters": added,
            "epoch_seconds": float(np.median(hist["seconds"])), "train_loss": hist["train_loss"][-1]}


def _hinge_names(cfg) -> list[str]:
    """Rows of Tables 5 and 6: the baselines (``tanh``; ``maxout`` too on CIFAR-10), then for each S of ``cfg.S``
    an S-APL at the first S of :data:`HINGE_POSITIONS`, ``"S=<S> shared"`` (one set per layer) and
    ``"S=<S> <separate>"`` (one set per channel of a layer: per neuron in an MLP)."""
    lenet = isinstance(cfg, HingesLeNetConfig)
    separate = "per-channel" if lenet else "per-neuron"
    return (["tanh", "maxout"] if lenet else ["tanh"]) + [f"S={S} {sharing}" for S in cfg.S
                                                          for sharing in ("shared", separate)]


def _hinge_make(cfg, name: str):
    """The activation factory of row ``name`` (:func:`_hinge_names`)."""
    if name == "tanh":
        return lambda c: create("tanh")
    if name == "maxout":
        return lambda c: Maxout(cfg.maxout_pieces, keep_channels=False)
    S, sharing = name[2:].split(" ")
    S = int(S)
    return lambda c: create("sapl", channels=c, per_channel=sharing != "shared", S=S, hinges=HINGE_POSITIONS[:S])


def _hinges_units(cfg) -> list[Unit]:
    """One unit per network (:func:`_hinges_row`). The times per epoch of Table 6 are comparable only when every
    network ran on an otherwise idle machine with the same thread count."""
    _check_S(cfg.S)
    if isinstance(cfg, HingesLeNetConfig) and (int(cfg.maxout_pieces) != cfg.maxout_pieces or cfg.maxout_pieces < 2):
        raise ValueError(f"maxout_pieces must be an integer >= 2, got {cfg.maxout_pieces}")
    return [Unit(name.replace(" ", "-"), _hinges_row, (cfg, name)) for name in _hinge_names(cfg)]


def _hinges_row(cfg, name: str) -> dict:
    """One row of Tables 5 and 6: the MLP on MNIST (:class:`HingesConfig`) or LeNet-5 on CIFAR-10
    (:class:`HingesLeNetConfig`, with the network's ``parameters``)."""
    make = _hinge_make(cfg, name)
    if not isinstance(cfg, HingesLeNetConfig):
        train_set, test_set = data.load("mnist").head(cfg.n_train), data.load("mnist", train=False)
        return _hinge_row(*_train_mlp(cfg, make, train_set), test_set)
    train_set = data.load("cifar10").head(cfg.n_train)
    test_set = data.load("cifar10", train=False).head(cfg.n_test)
    # one untimed step first: the first network trained in a process pays one-off start-up costs, which would
    # otherwise be charged to the first row timed in it
    _train_lenet(_hinge_make(cfg, "tanh"), train_set.head(cfg.batch_size),
                 dataclasses.replace(_lenet_recipe(cfg, cfg.seed), epochs=1))
    model, hist = _train_lenet(make, train_set, _lenet_recipe(cfg, cfg.seed))
    return {**_hinge_row(model, hist, test_set), "parameters": sum(p.numel() for p in model.parameters())}


@experiment("sapl", "hinges", {
    "smoke": HingesConfig(S=(2, 4), epochs=1, n_train=256),
    "quick": HingesConfig(epochs=3, n_train=5000),
    "paper": HingesConfig(),
}, units=_hinges_units)
def hinges(cfg: HingesConfig, outputs: dict) -> dict:
    """Tables 5 and 6, MNIST rows (:class:`HingesConfig`): one unit per network."""
    return {"data": data.load("mnist").head(cfg.n_train).description,
            "rows": {name: outputs[name.replace(" ", "-")] for name in _hinge_names(cfg)}}


#: symmetric-apl.txt Tables 5 and 6, CIFAR-10 rows (LeNet-5), laid out as :data:`PAPER_TABLE5`: hinges (2S) ->
#: (error % shared, error % per neuron, added parameters shared, per neuron, seconds per epoch shared on a TITAN V
#: GPU); the per-neuron counts are printed as lower bounds and kept as printed
PAPER_TABLE5_CIFAR10 = {4: (30.1, 29.4, 16, ">75k", 18), 6: (29.61, 28.81, 24, ">120k", 21),
                        8: (29.01, 28.44, 32, ">150k", 24), 10: (29.01, 28.33, 40, ">180k", 27),
                        12: (28.92, 28.03, 48, ">225k", 30)}
#: symmetric-apl.txt Table 6, CIFAR-10 row: seconds per epoch of Tanh and Maxout (six features), TITAN V GPU
PAPER_TABLE6_CIFAR10 = {"tanh": 21, "maxout": 31}


@dataclass(frozen=True)
class HingesLeNetConfig(LeNetRecipe):
    """symmetric-apl.txt Appendix 8.1, Tables 5 and 6, CIFAR-10 rows: LeNet-5 with S-APL of S hinges a side.

    LeNet-5 in the SAF paper's CIFAR shapes (:class:`symact.models.LeNet5`: three convolutions and one hidden
    fully connected layer: four activation layers, as the paper's shared counts 4 * 2S imply), BN before every
    activation. S-APL as in :class:`HingesConfig`: fixed hinges at the first ``S`` of :data:`HINGE_POSITIONS`,
    slopes learned, one set per layer (shared) or one per channel. The paper's second variant is one set per
    neuron, i.e. per unit of every feature map; the library has no per-position S-APL, so our per-channel
    networks have far fewer added parameters than the paper's (its ">75k"). Tanh and Maxout with
    ``maxout_pieces`` (6, "six features"; layers made that many times wider, as Table 1's maxout) are trained
    beside them for Table 6. The paper gives no recipe for these tables: we use the Table 1 LeNet-5 recipe
    (:class:`Table1Config`: SGD, momentum 0.9, lr 0.01, weight decay 5e-4, batch 128, 30 epochs, no augmentation).
    """

    S: tuple[int, ...] = (2, 3, 4, 5, 6)
    maxout_pieces: int = 6
    n_test: int | None = None
    seed: int = 0


def activation_units(model: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """Units per image at the input of each S-APL module of ``model`` on the batch ``x`` (forward hooks): what
    one S-APL per neuron (per unit of each feature map) would multiply its parameters by."""
    units = []
    hooks = [m.register_forward_hook(lambda m, inp, out: units.append(inp[0][0].numel()))
             for m in model.modules() if type(m).__name__ == "SAPL"]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return units


@experiment("sapl", "hinges-cifar10", {
    "smoke": HingesLeNetConfig(S=(2, 3), epochs=1, n_train=128, n_test=200),
    "quick": HingesLeNetConfig(epochs=2, n_train=1000, n_test=1000),
    "paper": HingesLeNetConfig(),
}, units=_hinges_units)
def hinges_cifar10(cfg: HingesLeNetConfig, outputs: dict) -> dict:
    """Tables 5 and 6, CIFAR-10 rows (:class:`HingesLeNetConfig`). Rows ``tanh``, ``maxout``, ``S=<S> shared``
    and ``S=<S> per-channel``: test error (a fraction), ``added_parameters`` (S-APL slopes), ``parameters`` (the
    whole network), median seconds per epoch, last training loss. ``activation_units``: units per image at each
    S-APL layer, for the per-neuron count ``2 S * sum(activation_units)``."""
    test_set = data.load("cifar10", train=False).head(cfg.n_test)
    rows = {name: outputs[name.replace(" ", "-")] for name in _hinge_names(cfg)}
    probe = models.LeNet5("cifar", len(test_set.classes), act=lambda c: create("sapl"), batchnorm="all")
    units = activation_units(probe, torch.zeros(2, *test_set.shape))
    return {"data": test_set.description, "rows": rows, "activation_units": units}


#: Table 1's activations: symact registry names, Maxout with nine pieces per unit (a true maxout network)
TABLE1_ACTS = ("relu", "leaky_relu", "prelu", "tanh", "sigmoid", "elu", "maxout", "swish", "sapl")

#: symmetric-apl.txt Table 1 (error %, best baseline named, then S-APL) and Table 7 (p-value):
#: (network, dataset, augment) -> (best baseline, its error, S-APL error, p)
PAPER_TABLE1 = {("lenet", "mnist", False): ("prelu", 1.11, 1.03, 0.061),
                ("mlp", "mnist", False): ("swish", 1.55, 1.71, 0.073),
                ("lenet", "cifar10", False): ("prelu", 31.93, 30.83, 0.041),
                ("lenet", "cifar10", True): ("prelu", 27.42, 27.02, 0.049)}
#: the same for the rows of :data:`TABLE1_EXTRA`
PAPER_TABLE1_EXTRA = {("resnet18", "cifar10", False): ("prelu", 9.41, 8.93, 0.029),
                      ("resnet18", "cifar10", True): ("prelu", 9.02, 8.07, 0.031),
                      ("lenet", "cifar100", False): ("prelu", 46.31, 45.74, 0.054),
                      ("lenet", "cifar100", True): ("prelu", 45.39, 44.81, 0.062),
                      ("resnet18", "cifar100", False): ("prelu", 20.14, 19.24, 0.049),
                      ("resnet18", "cifar100", True): ("prelu", 19.60, 18.71, 0.040)}


def _table1_act(name: str):
    if name == "maxout":
        return lambda c: Maxout(9, keep_channels=False)   # "maxout (nine features)"
    if name == "prelu":
        return lambda c: create("prelu", channels=c)
    return lambda c: create(name)


@dataclass(frozen=True)
class Table1Config(LeNetRecipe):
    """symmetric-apl.txt Table 1: error rates of one network over ``seeds`` seeds for each activation.

    LeNet-5 in the SAF paper's shapes (our LeNet-5, see :class:`symact.models.LeNet5`), the MLP of
    Appendix 8.2 (258 and 128 hidden units, dropout 0.3, batch 32, 50 epochs). BN before every
    activation in every network (the paper puts it before every S-APL; we give the baselines the same).
    The paper gives no recipe for LeNet-5: SGD, momentum 0.9, lr 0.01, weight decay 5e-4, batch 128.
    """

    network: str = "lenet"
    dataset: str = "mnist"
    augment: bool = False
    activations: tuple[str, ...] = TABLE1_ACTS
    seeds: int = 5
    n_test: int | None = None


@dataclass(frozen=True)
class Table1ResNetConfig(Table1Config):
    """symmetric-apl.txt Table 1, ResNet-18 rows: a GPU job (about 0.56 G multiply-adds per image; maxout's
    nine-times-wider convolutions, nine times that).

    The paper takes its ResNet-18 and recipe from Napoletano et al. (2018) ("five residual convolution
    blocks, one MLP"; Appendix 8.2) and does not restate them. We use the CIFAR ResNet-18 of
    :class:`symact.models.ResNet18` (BN before every activation, as in every Table 1 network; ``width`` 64 is
    the standard one) with the usual CIFAR recipe: SGD, momentum 0.9, ``lr`` 0.1 on a cosine ``schedule``,
    weight decay 5e-4, batch 128, 100 epochs. Maxout (nine pieces) makes every convolution before an
    activation nine times wider and adds the shortcut to each piece.
    """

    network: str = "resnet18"
    dataset: str = "cifar10"
    epochs: int = 100
    lr: float = 0.1
    schedule: str = "cosine"
    width: int = 64


def _table1_one(cfg: Table1Config, name: str, seed: int, train_set, test_set, checkpoint=None) -> dict:
    """One network of Table 1: its test error (a fraction) and training seconds; ``checkpoint``: a file for
    resumable training (:func:`symact.train.train`)."""
    tcfg = _lenet_recipe(cfg, seed, cfg.augment)
    if cfg.network == "resnet18":
        seed_everything(seed)
        model = models.ResNet18(len(train_set.classes), act=_table1_act(name), in_channels=train_set.shape[0],
                                width=cfg.width)
        hist = train(model, train_set, dataclasses.replace(tcfg, schedule=cfg.schedule), checkpoint=checkpoint)
    elif cfg.network == "mlp":
        seed_everything(seed)
        model = models.MLP(train_set.x.shape[1:], (258, 128), len(train_set.classes), act=_table1_act(name),
                           batch_norm=True, dropout=0.3)
        hist = train(model, train_set, tcfg, checkpoint=checkpoint)
    else:
        model, hist = _train_lenet(_table1_act(name), train_set, tcfg, checkpoint=checkpoint)
    return {"error": 1 - accuracy(model, test_set), "seconds": float(np.sum(hist["seconds"]))}


def table1_summary(runs: dict) -> dict:
    """Table 1's rows from ``runs`` (activation -> list of :func:`_table1_one` results, one per seed): errors,
    their mean and standard deviation, training seconds; and Table 7's t-test (Welch's) of S-APL against the
    baseline with the lowest mean error, when both have two or more seeds."""
    from scipy.stats import ttest_ind

    rows = {}
    for name, done in runs.items():
        errors = [r["error"] for r in done]
        rows[name] = {"errors": errors, "mean": float(np.mean(errors)),
                      "std": float(np.std(errors, ddof=1)) if len(errors) > 1 else 0.0,
                      "train_seconds": [r["seconds"] for r in done]}
    out = {"rows": rows}
    baselines = [a for a in rows if a != "sapl"]
    if "sapl" in rows and baselines:
        best = min(baselines, key=lambda a: rows[a]["mean"])
        p = None
        if min(len(rows["sapl"]["errors"]), len(rows[best]["errors"])) > 1:
            with warnings.catch_warnings():  # seeds with equal errors: SciPy warns of precision loss, p stands
                warnings.simplefilter("ignore", RuntimeWarning)
                p = ttest_ind(rows["sapl"]["errors"], rows[best]["errors"], equal_var=False).pvalue
        out["ttest"] = {"best_baseline": best, "p": None if p is None or not np.isfinite(p) else float(p)}
    return out


def _table1_units(cfg: Table1Config) -> list[Unit]:
    """One unit per network, ``<activation>-seed<seed>`` (:func:`_table1_unit`), seed by seed, S-APL first and
    maxout (nine times wider layers) last, so that an unfinished run shows every activation early; each network
    is seeded on its own, so the order changes no number."""
    if (cfg.network not in ("lenet", "mlp", "resnet18") or cfg.dataset not in ("mnist", "cifar10", "cifar100")
            or cfg.seeds < 1):
        raise ValueError(f"network in ('lenet', 'mlp', 'resnet18'), dataset in ('mnist', 'cifar10', 'cifar100'), "
                         f"seeds >= 1; got {cfg}")
    if (cfg.network == "resnet18") != isinstance(cfg, Table1ResNetConfig):
        raise ValueError(f"ResNet-18 rows take a Table1ResNetConfig, and only they; got {type(cfg).__name__} "
                         f"with network={cfg.network!r}")
    unknown = [a for a in cfg.activations if a not in TABLE1_ACTS]
    if unknown:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(TABLE1_ACTS)}")
    order = sorted(((seed, name) for name in cfg.activations for seed in range(cfg.seeds)),
                   key=lambda sn: (sn[1] == "maxout", sn[0], sn[1] != "sapl"))
    return [Unit(f"{name}-seed{seed}", _table1_unit, (cfg, name, seed), checkpoint=True, resources=gpu_resources())
            for seed, name in order]


def _table1_unit(cfg: Table1Config, name: str, seed: int, checkpoint=None) -> dict:
    """One network of Table 1 (:func:`_table1_one`), its data loaded here; ``checkpoint``: its folder."""
    train_set, test_set = data.load(cfg.dataset).head(cfg.n_train), data.load(cfg.dataset, train=False).head(cfg.n_test)
    return _table1_one(cfg, name, seed, train_set, test_set,
                       checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")


def table1_run(cfg: Table1Config, outputs: dict | None = None) -> dict:
    """Table 1 from its networks (:func:`_table1_units`, one unit each); errors are fractions
    (:func:`table1_summary`). Called with a config alone, it runs every network in this process, stores nothing.
    A paper run of many CPU-hours can be stopped and resumed, and its finished networks shown before it ends
    (:func:`table1_progress`)."""
    units = _table1_units(cfg)
    if outputs is None:
        outputs = {u.key: u.fn(*u.args) for u in units}
    runs = {name: [outputs[f"{name}-seed{seed}"] for seed in range(cfg.seeds)] for name in cfg.activations}
    test_set = data.load(cfg.dataset, train=False).head(cfg.n_test)
    return {"data": test_set.description, **table1_summary(runs)}


def table1_progress(key: tuple, profile: str = "paper") -> dict | None:
    """The networks of an unfinished Table 1 run (``key`` as in :data:`TABLE1`) that are stored as units, as
    :func:`table1_summary` rows plus ``done`` and ``total`` network counts; None when there are none."""
    exp = TABLE1[key] if key in TABLE1 else TABLE1_EXTRA[key]
    cfg = exp.configs[profile]
    parts = stored_units(exp, profile)
    runs = {a: [parts[f"{a}-seed{s}"] for s in range(cfg.seeds) if f"{a}-seed{s}" in parts] for a in cfg.activations}
    runs = {a: r for a, r in runs.items() if r}
    if not runs:
        return None
    return {**table1_summary(runs), "done": len(parts), "total": len(cfg.activations) * cfg.seeds}


def _table1_configs(network: str, dataset: str, augment: bool) -> dict:
    base = Table1Config(network=network, dataset=dataset, augment=augment)
    if network == "mlp":
        base = Table1Config(network=network, dataset=dataset, epochs=50, batch_size=32, weight_decay=0.0)
    # smoke: maxout (nine times wider layers, the slowest) only on the MNIST LeNet-5, which covers its code path
    smoke_acts = ("relu", "maxout", "sapl") if (network, dataset) == ("lenet", "mnist") else ("relu", "sapl")
    smoke = Table1Config(network=network, dataset=dataset, augment=augment, activations=smoke_acts,
                         seeds=2, epochs=1, n_train=256, n_test=500)
    # quick: maxout on LeNet-5 (nine times wider layers: most of the quick training time on MNIST) is left to the
    # paper profile; the MLP keeps all nine, and three seeds; LeNet-5 two seeds (the chapter within 15 minutes)
    quick_acts = TABLE1_ACTS if network == "mlp" else tuple(a for a in TABLE1_ACTS if a != "maxout")
    quick = Table1Config(network=network, dataset=dataset, augment=augment, activations=quick_acts,
                         seeds=3 if network == "mlp" else 2, epochs=2, n_train=5000 if dataset == "mnist" else 2000,
                         n_test=2000, batch_size=base.batch_size, weight_decay=base.weight_decay)
    if network == "resnet18":  # a GPU job at every profile but smoke, which is a narrow ResNet-18 for tests
        base = Table1ResNetConfig(dataset=dataset, augment=augment)
        smoke = Table1ResNetConfig(dataset=dataset, augment=augment, activations=("relu", "maxout", "sapl"),
                                   seeds=2, epochs=1, n_train=256, n_test=200, width=8)
        quick = dataclasses.replace(base, activations=quick_acts, seeds=3, epochs=15)
    return {"smoke": smoke, "quick": quick, "paper": base}


def _table1_name(key: tuple) -> str:
    return f"table1-{key[0]}-{key[1]}{'-da' if key[2] else ''}"


#: (network, dataset, augment) -> registered experiment ``table1-<network>-<dataset>[-da]``
TABLE1 = {key: experiment("sapl", _table1_name(key), _table1_configs(*key), units=_table1_units)(table1_run)
          for key in PAPER_TABLE1}
#: the rows of :data:`PAPER_TABLE1_EXTRA`, registered the same way; the book shows a row only when its paper
#: result is stored (ResNet-18 needs a GPU, CIFAR-100 a download)
TABLE1_EXTRA = {key: experiment("sapl", _table1_name(key), _table1_configs(*key), units=_table1_units)(table1_run)
                for key in PAPER_TABLE1_EXTRA}


#: symmetric-apl.txt Tables 2 to 4 (Section 6), percentages of successful attacks on 100 random CIFAR-10 test
#: images and avg |Z_true - Z_adv| over the fooled ones; keys (network, activation), networks "lenet",
#: "nin" (Network in Network), "pure-cnn", "resnet18".
#: Table 2 (differential evolution, 40 iterations, population 400, mean of 5 attacks): (1, 3, 5 pixels, gap)
PAPER_TABLE2 = {("lenet", "relu"): (61, 88, 92, 0.721), ("lenet", "apl"): (50, 71, 84, 0.570),
                ("lenet", "swish"): (63, 85, 90, 0.542), ("lenet", "sapl"): (29, 58, 67, 0.401),
                ("nin", "relu"): (29, 69, 80, 0.411), ("nin", "apl"): (24, 50, 69, 0.400),
                ("nin", "swish"): (29, 71, 77, 0.446), ("nin", "sapl"): (18, 39, 58, 0.281),
                ("pure-cnn", "relu"): (16, 53, 64, 0.483), ("pure-cnn", "apl"): (12, 44, 58, 0.301),
                ("pure-cnn", "swish"): (14, 51, 67, 0.312), ("pure-cnn", "sapl"): (9, 34, 41, 0.243),
                ("resnet18", "relu"): (23, 63, 71, 0.501), ("resnet18", "apl"): (17, 45, 60, 0.413),
                ("resnet18", "swish"): (22, 65, 70, 0.541), ("resnet18", "sapl"): (12, 37, 49, 0.334)}
#: Table 3 (FGSM): (eps 0.02, 0.04, 0.06, 0.08, gap at eps 0.04)
PAPER_TABLE3 = {("lenet", "relu"): (57, 64, 69, 73, 0.761), ("lenet", "apl"): (43, 51, 66, 75, 0.350),
                ("lenet", "swish"): (54, 59, 71, 74, 0.619), ("lenet", "sapl"): (36, 44, 62, 68, 0.298),
                ("pure-cnn", "relu"): (35, 36, 38, 42, 0.721), ("pure-cnn", "apl"): (30, 34, 38, 42, 0.509),
                ("pure-cnn", "swish"): (36, 40, 42, 44, 0.613), ("pure-cnn", "sapl"): (25, 28, 33, 38, 0.388),
                ("resnet18", "relu"): (36, 38, 39, 43, 0.691), ("resnet18", "apl"): (33, 36, 39, 42, 0.445),
                ("resnet18", "swish"): (36, 39, 40, 42, 0.511), ("resnet18", "sapl"): (27, 29, 35, 40, 0.391)}
#: Table 4 (CW-L2): (rate, gap); the pure CNN Swish gap is printed "0.6.31" in the source: None
PAPER_TABLE4 = {("lenet", "relu"): (83, 0.871), ("lenet", "apl"): (79, 0.551), ("lenet", "swish"): (81, 0.570),
                ("lenet", "sapl"): (72, 0.392), ("pure-cnn", "relu"): (58, 0.611), ("pure-cnn", "apl"): (54, 0.509),
                ("pure-cnn", "swish"): (56, None), ("pure-cnn", "sapl"): (47, 0.365),
                ("resnet18", "relu"): (49, 0.689), ("resnet18", "apl"): (44, 0.461),
                ("resnet18", "swish"): (50, 0.534), ("resnet18", "sapl"): (40, 0.393)}

#: Section 6's activations (Appendix 8.2): registry keyword arguments. APL: S = 5 fixed hinges at 0, +-1, +-2,
#: one set per channel (Agostinelli et al.); Swish beta = 0.2 (fixed); S-APL as in Section 4 (S = 4 a side
#: at 0, 1, 2, 2.5, one set per layer, ReLU initialisation), as in Table 1
ROBUSTNESS_ACTS = {"relu": {}, "apl": {"S": 5, "hinges": (-2.0, -1.0, 0.0, 1.0, 2.0)}, "swish": {"beta": 0.2},
                   "sapl": {}}


def _section6_act(name: str):
    """Activation factory of Section 6 (:data:`ROBUSTNESS_ACTS`)."""
    return lambda c: create(name, channels=c, **ROBUSTNESS_ACTS[name])


@dataclass(frozen=True)
class RobustnessConfig(LeNetRecipe):
    """symmetric-apl.txt Section 6, Tables 2 to 4, LeNet-5 rows: one activation, trained and attacked.

    Training: the Table 1 LeNet-5 recipe (:class:`Table1Config`: BN before every activation, SGD momentum
    0.9, lr 0.01, weight decay 5e-4, batch 128, ``epochs``; the paper gives no recipe), no augmentation.
    Images: ``n_images`` random test images (the paper's 100, drawn with ``seed``), and, if ``n_large > 0``,
    ``n_large`` random test images drawn with the same seed (the first set is a subset of the second).
    Attacks, each on both sets, rates over the images the model classifies correctly:

    - differential evolution (torchattacks ``OnePixel``'s algorithm, Su et al.'s public settings: best1bin,
      dithered mutation in [0.5, 1), recombination 1, random init, no polish; the paper's Eq. 6 writes rand1
      with F = 0.5) on ``pixels`` pixels, ``de_steps`` iterations, population ``de_popsize`` (Table 2: 40, 400),
      ``de_repeats`` attacks of the ``n_images`` set averaged (paper: 5); the ``n_large`` set is attacked once.
      ``de``: ``"de"``, :class:`symact.attacks.PixelDE`, all images at once (on a GPU, seconds where torchattacks'
      image-by-image loop takes hours), or ``"onepixel"``, torchattacks itself;
    - FGSM at ``fgsm_eps`` (Table 3);
    - CW-L2, torchattacks ``CW`` with ``c = cw_c``, ``cw_steps`` Adam steps of lr 0.01 and no binary search
      (Table 4; the paper used Foolbox's defaults, which search over ``c``);
    - strong attacks at L-infinity ``eps`` (8/255) on the first ``n_strong`` images of each set (None: all):
      PGD-``pgd_steps`` (step eps/4, cross-entropy) with ``pgd_restarts`` random starts, and the cascade
      ``autoattack`` names: ``"autoattack"``, the authors' 100-iteration AutoAttack (APGD-CE, APGD-T, FAB-T,
      Square), or ``"cascade-10"``, torchattacks' 10-iteration defaults, which the stored quick and paper
      results ran (their configs say so).

    ``smoke`` and ``quick`` shrink training (``n_train``, ``epochs``) and the attacks: quick trains 2 epochs on
    10,000 images and runs DE with population 20 for 5 iterations, once, PGD-50 with 2 restarts and
    AutoAttack on 50 images, and no ``n_large`` set; its other attacks are the paper profile's.
    """

    activation: str = "sapl"
    n_test: int | None = None
    n_images: int = 100
    n_large: int = 1000
    pixels: tuple[int, ...] = (1, 3, 5)
    de: str = "de"
    de_steps: int = 40
    de_popsize: int = 400
    de_repeats: int = 5
    fgsm_eps: tuple[float, ...] = (0.02, 0.04, 0.06, 0.08)
    cw_c: float = 1.0
    cw_steps: int = 100
    eps: float = 8 / 255
    pgd_steps: int = 50
    pgd_restarts: int = 10
    n_strong: int | None = None
    autoattack: str = "autoattack"
    seed: int = 0


def _on_correct(model: torch.nn.Module, attack):
    """``attack`` run only on the images ``model`` classifies correctly; the others are returned unchanged."""
    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        out = x.detach().clone()
        if ok.any():
            out[ok] = attack(x[ok], y[ok]).detach()
        return out
    return run


def _with_interval(res: dict) -> dict:
    """``res`` (an :func:`symact.evaluation.evaluate` result) with ``correct``, ``fooled`` and the Wilson 95%
    ``interval`` of its success rate over the correctly classified images."""
    correct = round(res["clean_acc"] * res["n"])
    fooled = round(res["success_rate"] * correct)
    return {**res, "correct": correct, "fooled": fooled, "interval": list(proportion_interval(fooled, correct))}


def _repeated(runs: list[dict]) -> dict:
    """Attacks of the same images pooled: mean rate, the gap averaged over every fooled image of every run,
    and the Wilson interval of the mean rate over the images (the repeats average out the attack's own
    randomness, not the choice of images)."""
    correct = round(runs[0]["clean_acc"] * runs[0]["n"])
    rates = [r["success_rate"] for r in runs]
    fooled = [round(r * correct) for r in rates]
    gaps = sum(f * r["confidence_gap"] for f, r in zip(fooled, runs) if f)
    mean = float(np.mean(rates))
    return {"n": runs[0]["n"], "clean_acc": runs[0]["clean_acc"], "correct": correct, "success_rate": mean,
            "rates": rates, "confidence_gap": gaps / sum(fooled) if sum(fooled) else float("nan"),
            "interval": list(proportion_interval(round(mean * correct), correct))}


#: images per unit of differential evolution on a larger set (the 1,000 images of the paper profile): the
#: batches evaluation.evaluate makes anyway, each attacked with PixelDE's seed afresh, so the pooled numbers are
#: those of one unit, and a unit takes minutes, not hours, on a CPU
DE_PART_IMAGES = 250


def _sizes(cfg: RobustnessConfig) -> list[tuple[int, int]]:
    """(images, repeats of differential evolution) of each image set of a robustness run."""
    return [(cfg.n_images, cfg.de_repeats)] + ([(cfg.n_large, 1)] if cfg.n_large else [])


def _de_blocks(n: int) -> list[tuple[int, int]] | None:
    """The blocks of :data:`DE_PART_IMAGES` images differential evolution on ``n`` images runs in; None: one."""
    if n <= DE_PART_IMAGES:
        return None
    return [(i, min(i + DE_PART_IMAGES, n)) for i in range(0, n, DE_PART_IMAGES)]


def _robustness_units(cfg: RobustnessConfig) -> list[Unit]:
    """The units of a robustness run: ``train`` (the network: its training history and weights, a zoo network),
    ``test`` (its test accuracy), then every attack of :class:`RobustnessConfig` on each image set, keyed
    ``<n images>-<attack>``, each needing ``train`` and given its weights: differential evolution
    ``<n>-de<pixels>-r<repeat>`` (in blocks ``-0``, ``-1``, ... of :data:`DE_PART_IMAGES` images on larger sets),
    ``<n>-fgsm<eps>``, ``<n>-cw``, ``<n>-pgd``, ``<n>-autoattack``. Every attack seeds itself."""
    if cfg.activation not in ROBUSTNESS_ACTS:
        raise ValueError(f"unknown activation {cfg.activation!r}; expected one of {list(ROBUSTNESS_ACTS)}")
    if cfg.de not in ("de", "onepixel"):
        raise ValueError(f"de must be 'de' (symact.attacks.PixelDE) or 'onepixel' (torchattacks), got {cfg.de!r}")
    if (cfg.n_images < 1 or cfg.n_large < 0 or 0 < cfg.n_large <= cfg.n_images or cfg.de_repeats < 1
            or not cfg.pixels or min(cfg.pixels) < 1):
        raise ValueError(f"need n_images >= 1, n_large 0 or above n_images, de_repeats >= 1, pixels >= 1; got {cfg}")
    units = [Unit("train", _robustness_train, (cfg,), checkpoint=True, zoo=True, resources=gpu_resources()),
             Unit("test", _robustness_test, (cfg,), needs=("train",))]
    attack = lambda key, *args: Unit(key, _robustness_attack, (cfg, *args), needs=("train",))  # noqa: E731
    for n, repeats in _sizes(cfg):
        for k in cfg.pixels:
            for r in range(repeats):
                blocks = _de_blocks(n)
                if blocks is None:
                    units.append(attack(f"{n}-de{k}-r{r}", n, "de", (k, r), None))
                else:
                    units += [attack(f"{n}-de{k}-r{r}-{j}", n, "de", (k, r), b) for j, b in enumerate(blocks)]
        units += [attack(f"{n}-fgsm{e}", n, "fgsm", e, None) for e in cfg.fgsm_eps]
        units += [attack(f"{n}-{a}", n, a, None, None) for a in ("cw", "pgd", "autoattack")]
    return units


def _robustness_train(cfg: RobustnessConfig, checkpoint=None) -> dict:
    """Train LeNet-5 with ``cfg.activation`` on CIFAR-10: its training ``history`` and ``weights`` (a CPU state
    dict); ``checkpoint``: its folder, for resumable training."""
    train_set = data.load("cifar10").head(cfg.n_train)
    seed_everything(cfg.seed)
    model = robustness_network(cfg.activation, len(train_set.classes))
    hist = train(model, train_set, _lenet_recipe(cfg, cfg.seed),
                 checkpoint=None if checkpoint is None else checkpoint / "train.ckpt")
    return {"history": hist, "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.experiments.sapl:robustness_network",
            "builder_kwargs": {"activation": cfg.activation, "classes": len(train_set.classes)}}


def robustness_network(activation: str, classes: int = 10) -> torch.nn.Module:
    """The LeNet-5 of Section 6 (symmetric-apl.txt) with ``activation`` (:data:`ROBUSTNESS_ACTS`), untrained:
    what the robustness runs train, and what ``symact.zoo.load("sapl/robustness-lenet-cifar10-<act>",
    key="train")`` fills with the stored weights."""
    return models.LeNet5("cifar", classes, act=_section6_act(activation), batchnorm="all")


def _trained(cfg: RobustnessConfig, trained: dict) -> torch.nn.Module:
    """The network of :func:`_robustness_train` from its weights, on the device, in eval mode."""
    model = robustness_network(cfg.activation)
    model.load_state_dict(trained["weights"])
    place(model)
    return model.eval()


def _robustness_test(cfg: RobustnessConfig, trained: dict) -> dict:
    """The trained network's accuracy on the first ``n_test`` test images."""
    test_set = data.load("cifar10", train=False)
    return {"data": test_set.description, "test_acc": accuracy(_trained(cfg, trained), test_set.head(cfg.n_test)),
            "n_test": len(test_set.head(cfg.n_test))}


def _robustness_attack(cfg: RobustnessConfig, n: int, attack: str, arg, block, trained: dict) -> dict:
    """One attack of :func:`_robustness_units` on the ``n`` random test images (drawn with ``cfg.seed``; the
    images ``block[0]:block[1]`` of them for a block of differential evolution)."""
    model = _trained(cfg, trained)
    images = data.load("cifar10", train=False).sample(n, seed=cfg.seed)
    if attack == "de":
        k, r = arg
        if block is not None:
            images = dataclasses.replace(images, x=images.x[block[0]:block[1]], y=images.y[block[0]:block[1]])
        seed_everything(cfg.seed + r)  # torchattacks' differential evolution draws from NumPy's global state
        extra = {"seed": cfg.seed + r} if cfg.de == "de" else {}
        atk = attacks.make_attack(cfg.de, model, pixels=k, steps=cfg.de_steps, popsize=cfg.de_popsize, **extra)
        return evaluate(model, images, _on_correct(model, atk))
    if attack == "fgsm":
        atk = attacks.make_attack("fgsm", model, eps=arg)
    elif attack == "cw":
        atk = attacks.make_attack("cw", model, c=cfg.cw_c, steps=cfg.cw_steps)
    elif attack == "pgd":
        images = images.head(cfg.n_strong)  # the first images of a random sample are a random sample
        atk = attacks.LossPGD(model, cfg.eps, cfg.eps / 4, cfg.pgd_steps, restarts=cfg.pgd_restarts, seed=cfg.seed)
    elif attack == "autoattack":
        images = images.head(cfg.n_strong)
        atk = attacks.make_attack(cfg.autoattack, model, eps=cfg.eps, n_classes=10, seed=cfg.seed)
    else:
        raise ValueError(f"unknown attack {attack!r}")
    return _with_interval(evaluate(model, images, _on_correct(model, atk)))


class _Missing(Exception):
    pass


def _attack_set(cfg: RobustnessConfig, n: int, repeats: int, outputs: dict) -> dict:
    """One image set of a robustness result from the units' ``outputs`` (raises :class:`_Missing` for a unit not
    there): differential evolution pooled over blocks and averaged over repeats, FGSM, CW, PGD, AutoAttack."""
    def get(key: str):
        if key not in outputs:
            raise _Missing(key)
        return outputs[key]

    def de(k: int, r: int) -> dict:
        blocks = _de_blocks(n)
        if blocks is None:
            return get(f"{n}-de{k}-r{r}")
        return pool([get(f"{n}-de{k}-r{r}-{j}") for j in range(len(blocks))])

    out = {"n": n, "clean_acc": None, "onepixel": {}, "fgsm": {}}
    for k in cfg.pixels:
        out["onepixel"][str(k)] = _repeated([de(k, r) for r in range(repeats)])
    out["clean_acc"] = out["onepixel"][str(cfg.pixels[0])]["clean_acc"]  # every attack's, of the same images
    for e in cfg.fgsm_eps:
        out["fgsm"][str(e)] = get(f"{n}-fgsm{e}")
    out["cw"] = get(f"{n}-cw")
    out["n_strong"] = n if cfg.n_strong is None else min(n, cfg.n_strong)
    out["pgd"] = get(f"{n}-pgd")
    out["autoattack"] = get(f"{n}-autoattack")
    return out


def robustness_run(cfg: RobustnessConfig, outputs: dict) -> dict:
    """LeNet-5 with ``cfg.activation`` trained on CIFAR-10 and attacked (:class:`RobustnessConfig`), from the
    units of :func:`_robustness_units`: the trained network (its weights stored) and every attack, so a paper
    run of many CPU-hours can be stopped and resumed on the same network.

    Rates are fractions of the correctly classified images; ``sets`` is keyed by the number of images.
    """
    hist, test = outputs["train"]["history"], outputs["test"]
    out = {"data": test["data"], "activation": cfg.activation, "test_acc": test["test_acc"], "n_test": test["n_test"],
           "train_loss": hist["train_loss"], "train_seconds": float(np.sum(hist["seconds"])), "sets": {}}
    for n, repeats in _sizes(cfg):
        out["sets"][str(n)] = _attack_set(cfg, n, repeats, outputs)
    return out


def robustness_progress(activation: str, profile: str = "paper") -> dict | None:
    """How far the ``robustness-lenet-cifar10-<activation>`` run at ``profile`` has come: ``done`` and
    ``total`` unit counts, ``train_seconds`` once the network is trained, and ``sets``, each image set all of
    whose attacks are stored, as the finished result has it. A finished run gives its stored result's sets
    (``done == total``); None when nothing is stored."""
    exp = ROBUSTNESS[activation]
    cfg = exp.configs[profile]
    total = len(_robustness_units(cfg))
    finished = exp.stored(profile)
    if finished is not None:
        return {"done": total, "total": total, "sets": finished["sets"], "train_seconds": finished["train_seconds"]}
    stored = stored_units(exp, profile)
    if not stored:
        return None
    sets = {}
    for n, repeats in _sizes(cfg):
        try:
            sets[str(n)] = _attack_set(cfg, n, repeats, stored)
        except _Missing:
            pass
    out = {"done": len(stored), "total": total, "sets": _jsonable(sets)}  # NaN as None, as in a stored result
    if "train" in stored:
        out["train_seconds"] = float(np.sum(stored["train"]["history"]["seconds"]))
    return out


def _robustness_configs(act: str) -> dict:
    paper = RobustnessConfig(activation=act)
    smoke = dataclasses.replace(paper, epochs=1, n_train=512, n_test=200, n_images=12, n_large=0, de_steps=1,
                                de_popsize=10, de_repeats=2, cw_steps=2, pgd_steps=2, pgd_restarts=2, n_strong=4)
    quick = dataclasses.replace(paper, epochs=2, n_train=10000, n_test=2000, n_large=0, de_steps=5, de_popsize=20,
                                de_repeats=1, pgd_restarts=2, n_strong=50)
    # the stored quick and paper results ran torchattacks' 10-iteration cascade (issue 29 reruns them)
    quick, paper = (dataclasses.replace(c, autoattack="cascade-10") for c in (quick, paper))
    return {"smoke": smoke, "quick": quick, "paper": paper}


#: activation -> registered experiment ``robustness-lenet-cifar10-<activation>``
ROBUSTNESS = {act: experiment("sapl", f"robustness-lenet-cifar10-{act}", _robustness_configs(act),
                             units=_robustness_units)(robustness_run)
              for act in ROBUSTNESS_ACTS}


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out accuracy of the ``k``-nearest-neighbour vote (Euclidean; ties to the lowest label):
    the fraction of points whose ``k`` nearest other points mostly share their label."""
    points, labels = np.asarray(points, dtype=np.float64), np.asarray(labels)
    if points.ndim != 2 or len(points) != len(labels) or not 1 <= k < len(points):
        raise ValueError(f"expected points (N, D), N labels and 1 <= k < N; got {points.shape}, {labels.shape}, k={k}")
    sq = (points ** 2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * points @ points.T
    np.fill_diagonal(dist, np.inf)
    near = labels[np.argsort(dist, axis=1, kind="stable")[:, :k]]
    votes = np.stack([(near == c).sum(1) for c in np.unique(labels)], 1)
    return float((np.unique(labels)[votes.argmax(1)] == labels).mean())


@dataclass(frozen=True)
class TSNEConfig(LeNetRecipe):
    """symmetric-apl.txt Section 6, Fig. 4 (settings in Appendix 8.2): t-SNE of LeNet-5's pre-softmax outputs
    (the logits) for random CIFAR-10 test images of ``classes``, one network per activation.

    Networks: LeNet-5 on CIFAR-10 with each of ``activations`` (:data:`ROBUSTNESS_ACTS`), trained as in
    :class:`RobustnessConfig` (the Table 1 recipe: BN before every activation, SGD momentum 0.9, ``lr``,
    ``weight_decay``, batch 128, no augmentation; same seed), so on one device they are the networks attacked
    by ``robustness-lenet-cifar10-<activation>`` at the same ``epochs`` and ``n_train``.
    t-SNE: scikit-learn's ``TSNE`` with learning rate ``tsne_lr`` 30 and perplexity 40 (the paper's), its
    other settings at their defaults (PCA initialisation, 1,000 iterations, Barnes-Hut).
    The paper's "100 random samples of frog and ship images" does not say whether 100 of each or in all:
    we take ``n_per_class`` of each. The paper shows one draw and judges separation by eye; we draw
    ``draws`` image sets (the same images for every network, seed ``seed + i``, t-SNE seeded alike) and
    measure separation by the silhouette score and the leave-one-out ``k``-NN accuracy of the classes, in
    the t-SNE plane and in the logit space, and in the logit space of every test image of ``classes``.
    """

    activations: tuple[str, ...] = ("relu", "sapl")
    classes: tuple[str, ...] = ("frog", "ship")
    n_per_class: int = 100
    draws: int = 10
    perplexity: float = 40.0
    tsne_lr: float = 30.0
    k: int = 5
    n_test: int | None = None
    seed: int = 0


@torch.no_grad()
def _logits(model: torch.nn.Module, images) -> np.ndarray:
    model.eval()
    return torch.cat([model(xb) for xb, _ in images.batches(500)]).double().numpy()


def _separation(points: np.ndarray, labels: np.ndarray, k: int) -> dict:
    from sklearn.metrics import silhouette_score

    return {"silhouette": float(silhouette_score(points, labels)), "knn": knn_accuracy(points, labels, k)}


#: test images of each CIFAR-10 class (the test set is balanced)
CIFAR10_TEST_PER_CLASS = 1000


def _tsne_units(cfg: TSNEConfig) -> list[Unit]:
    """One unit per activation (:func:`_tsne_one`): its network trained, its logits embedded and measured."""
    unknown = [a for a in cfg.activations if a not in ROBUSTNESS_ACTS]
    if unknown or not cfg.activations:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(ROBUSTNESS_ACTS)}")
    if len(set(cfg.classes)) < 2 or any(c not in data.CIFAR10_CLASSES for c in cfg.classes):
        raise ValueError(f"classes must be two or more distinct names of {data.CIFAR10_CLASSES}; got {cfg.classes}")
    n = cfg.n_per_class * len(cfg.classes)
    if cfg.draws < 1 or cfg.n_per_class < 1 or not 1 <= cfg.k < n or not 0 < cfg.perplexity < n:
        raise ValueError(f"need draws >= 1, n_per_class >= 1 and 1 <= k, perplexity < the {n} images; got {cfg}")
    if cfg.n_per_class > CIFAR10_TEST_PER_CLASS:
        raise ValueError(f"n_per_class = {cfg.n_per_class} exceeds the {CIFAR10_TEST_PER_CLASS} test images of a "
                         "class")
    return [Unit(act, _tsne_one, (cfg, act)) for act in cfg.activations]


def _tsne_one(cfg: TSNEConfig, act: str) -> dict:
    """One network of Fig. 4 (:func:`tsne`): trained, then its logits embedded for every draw and measured."""
    from sklearn.manifold import TSNE

    train_set, test_set = data.load("cifar10").head(cfg.n_train), data.load("cifar10", train=False)
    idx = [data.CIFAR10_CLASSES.index(c) for c in cfg.classes]
    keep = torch.isin(test_set.y, torch.tensor(idx))
    chosen = dataclasses.replace(test_set, x=test_set.x[keep], y=test_set.y[keep])
    labels_all = np.array([idx.index(int(y)) for y in chosen.y])
    members = [np.flatnonzero(labels_all == c) for c in range(len(idx))]
    if min(len(m) for m in members) < cfg.n_per_class:
        raise ValueError(f"n_per_class = {cfg.n_per_class} exceeds the {min(len(m) for m in members)} test images "
                         f"of a class")
    picks = []  # per draw: n_per_class random images of each class, the same for every network
    for i in range(cfg.draws):
        g = torch.Generator().manual_seed(cfg.seed + i)
        picks.append(np.concatenate([m[torch.randperm(len(m), generator=g)[:cfg.n_per_class].numpy()]
                                     for m in members]))
    model, hist = _train_lenet(_section6_act(act), train_set, _lenet_recipe(cfg, cfg.seed))
    z = _logits(model, chosen)
    rows = []
    for i, pick in enumerate(picks):
        emb = TSNE(2, perplexity=cfg.perplexity, learning_rate=cfg.tsne_lr,
                   random_state=cfg.seed + i).fit_transform(z[pick])
        rows.append({"tsne": _separation(emb, labels_all[pick], cfg.k),
                     "logits": _separation(z[pick], labels_all[pick], cfg.k)})
        if i == 0:
            points, labels = np.round(emb.astype(np.float64), 4).tolist(), labels_all[pick].tolist()
    return {
        "test_acc": accuracy(model, test_set.head(cfg.n_test)), "n_test": len(test_set.head(cfg.n_test)),
        "train_loss": hist["train_loss"], "train_seconds": float(np.sum(hist["seconds"])),
        "logits_all": {"n": len(labels_all), **_separation(z, labels_all, cfg.k)},
        "draws": rows, "points": points, "labels": labels}


@experiment("sapl", "tsne-lenet-cifar10", {
    "smoke": TSNEConfig(n_per_class=30, draws=2, epochs=1, n_train=512, n_test=200),
    "quick": TSNEConfig(draws=3, epochs=2, n_train=10000, n_test=2000),
    "paper": TSNEConfig(),
}, units=_tsne_units)
def tsne(cfg: TSNEConfig, outputs: dict) -> dict:
    """Fig. 4 (:class:`TSNEConfig`). Per activation: test accuracy, training loss, the separation of the classes
    (``silhouette`` in [-1, 1], ``knn`` a fraction) per draw in the t-SNE plane (``tsne``) and in the logit space
    (``logits``), and on all test images of ``classes`` (``logits_all``); the first draw's 2-D points
    (4 decimals) and labels (indices into ``classes``) for the figure. One unit per activation."""
    import sklearn

    return {"data": data.load("cifar10", train=False).description, "classes": list(cfg.classes),
            "sklearn_version": sklearn.__version__, "activations": {act: outputs[act] for act in cfg.activations}}
