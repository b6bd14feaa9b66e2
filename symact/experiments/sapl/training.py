"""How S-APL changes during training: symmetric-apl.txt Section 5, Figs. 1 to 3 (experiments ``dynamics``,
the MLP on MNIST, and ``dynamics-lenet``, LeNet-5 on MNIST)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch

from symact import data
from symact.activations import create
from symact.attacks import accuracy
from symact.results import Unit, experiment
from symact.experiments.sapl.common import MLPRecipe, _train_mlp, _lenet_recipe, _train_lenet, LeNetRecipe

__all__ = ['DynamicsConfig', 'LeNetDynamicsConfig', 'VARIANTS', 'dynamics', 'dynamics_lenet', 'negative_side_mean']


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
class DynamicsConfig(MLPRecipe):
    """The MLP of symmetric-apl.txt Appendix 8.2 on MNIST (hidden 258 and 128; :class:`MLPRecipe`) with each
    of :data:`VARIANTS`. S-APL: S = 4 hinges a side at the Section 4 positions, one shared set per layer,
    initialised as ReLU. ``snapshots`` S-APL shapes are recorded at evenly spaced steps, the first before
    any step.
    """

    variants: tuple[str, ...] = tuple(VARIANTS)
    snapshots: int = 26



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
