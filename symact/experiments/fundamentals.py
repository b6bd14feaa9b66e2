"""Experiments of the Fundamentals chapter: LeNet-5 on MNIST under FGSM and PGD."""
from __future__ import annotations

from dataclasses import dataclass

from symact import attacks, data, models
from symact.device import seed_everything
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["DemoConfig", "lenet_mnist_attacks"]


@dataclass(frozen=True)
class DemoConfig:
    """LeNet-5 (SAF paper Table 1 shape, ReLU) trained on MNIST, then attacked.

    ``eps`` is the L-infinity budget grid in pixel units; PGD uses step eps/4,
    ``pgd_steps`` steps and ``pgd_restarts`` random restarts.
    """

    n_train: int | None = None
    n_test: int = 1000
    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.05
    eps: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    pgd_steps: int = 40
    pgd_restarts: int = 1
    example_eps: float = 0.2
    n_examples: int = 8
    seed: int = 0


def _round(obj, digits: int = 3):
    if isinstance(obj, list):
        return [_round(v, digits) for v in obj]
    return round(obj, digits) if isinstance(obj, float) else obj


@experiment(
    "fundamentals",
    "lenet-mnist-attacks",
    {
        "smoke": DemoConfig(n_train=2000, n_test=100, epochs=1, eps=(0.0, 0.1, 0.3), pgd_steps=5, n_examples=4),
        "quick": DemoConfig(),
        "paper": DemoConfig(epochs=20, n_test=10000, pgd_restarts=3),
    },
)
def lenet_mnist_attacks(cfg: DemoConfig) -> dict:
    """Train LeNet-5 on MNIST; accuracy against eps for FGSM and PGD; example adversarial images."""
    seed_everything(cfg.seed)
    train_set = data.load("mnist", train=True).head(cfg.n_train)
    test_set = data.load("mnist", train=False).head(cfg.n_test)
    model = models.LeNet5("mnist", act="relu")
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine", seed=cfg.seed)
    history = train(model, train_set, tcfg)
    fgsm, pgd = [], []
    for eps in cfg.eps:
        if eps == 0:
            clean = attacks.evaluate(model, test_set)["clean_acc"]
            fgsm.append(clean)
            pgd.append(clean)
            continue
        fgsm.append(attacks.evaluate(model, test_set, attacks.make_attack("fgsm", model, eps=eps))["robust_acc"])
        atk = attacks.make_attack("pgd", model, eps=eps, alpha=eps / 4, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts)
        pgd.append(attacks.evaluate(model, test_set, atk)["robust_acc"])
    atk = attacks.make_attack("pgd", model, eps=cfg.example_eps, alpha=cfg.example_eps / 4, steps=cfg.pgd_steps)
    ex = attacks.evaluate(model, test_set.head(cfg.n_examples), atk, return_examples=cfg.n_examples)
    return {
        "data": test_set.description,
        "n_test": len(test_set),
        "history": history,
        "clean_acc": fgsm[0] if cfg.eps[0] == 0 else attacks.evaluate(model, test_set)["clean_acc"],
        "eps": list(cfg.eps),
        "fgsm_acc": fgsm,
        "pgd_acc": pgd,
        "examples": {k: _round(v) for k, v in ex["examples"].items()},
        "example_eps": cfg.example_eps,
        "example_metrics": {k: ex[k] for k in ("robust_acc", "psnr", "mean_linf", "mean_l2")},
    }
