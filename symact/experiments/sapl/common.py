"""What the S-APL experiments share: the MLP recipe of symmetric-apl.txt Appendix 8.2 and the LeNet-5 recipe
of this chapter (the paper gives none), and the two training helpers built on them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from symact import models
from symact.device import seed_everything
from symact.train import TrainConfig, train

__all__ = ['LeNetRecipe', 'MLPRecipe']


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
class LeNetRecipe:
    """The LeNet-5 training recipe of this chapter (the paper gives none; see :class:`Table1Config`): SGD, momentum
    0.9, ``lr``, ``weight_decay``, batch ``batch_size``, ``epochs`` on the first ``n_train`` training images
    (None: all)."""

    epochs: int = 30
    n_train: int | None = None
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 5e-4
