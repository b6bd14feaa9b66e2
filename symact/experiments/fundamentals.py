"""Experiments of the Fundamentals chapter: LeNet-5 on MNIST under FGSM and PGD."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from symact import attacks, data, models
from symact.device import get_device, seed_everything
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["DemoConfig", "lenet_mnist_attacks"]


@dataclass(frozen=True)
class DemoConfig:
    """LeNet-5 (SAF paper Table 1 shape, ReLU) trained on MNIST, then attacked.

    ``eps`` is the L-infinity budget grid in pixel units; PGD uses step eps/4,
    ``pgd_steps`` steps and ``pgd_restarts`` random restarts. The example
    images are the first ``n_examples`` test images attacked by FGSM and PGD at
    ``example_eps``. ``line_max`` and ``line_points`` set the line scan of the
    linearity check: the logits and the loss of the first test image moved by
    ``t sign(grad)`` for ``line_points`` values of ``t`` in
    ``[-line_max, line_max]`` (not clipped to the image domain).
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
    line_max: float = 0.3
    line_points: int = 61
    seed: int = 0


def _round(obj, digits: int = 3):
    if isinstance(obj, list):
        return [_round(v, digits) for v in obj]
    return round(obj, digits) if isinstance(obj, float) else obj


def _significant(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (losses span many orders of magnitude)."""
    return float(f"{x:.{digits}g}")


def _line_scan(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, t_max: float, points: int) -> dict:
    """Logits along ``x + t sign(grad_x loss)``, ``t`` in ``[-t_max, t_max]`` (one image).

    This is the experiment of Goodfellow et al. (2015, Fig. 4): if the network
    is close to linear along the FGSM direction, the logits are close to
    straight lines in ``t``. No clipping to [0, 1] is applied, so the scan shows
    the function the network computes rather than valid images.
    """
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    t = torch.linspace(-t_max, t_max, points, device=x.device)
    with torch.no_grad():
        xs = x.detach() + t.view(-1, 1, 1, 1) * grad.sign()
        logits = model(xs)
    return {
        "t": _round(t.cpu().tolist(), 4),
        "logits": _round(logits.cpu().tolist()),
        "loss0": _significant(float(loss.detach())),
        "grad_l1": round(float(grad.abs().sum()), 4),
        "label": int(y),
    }


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
    """Train LeNet-5 on MNIST; accuracy against eps for FGSM and PGD; example adversarial images.

    Returns ``history`` (per-epoch training curve with the clean accuracy on the
    attacked test subset), ``clean_acc``, ``eps``, ``fgsm_acc`` and ``pgd_acc``
    (robust accuracy per eps; at eps 0 the clean accuracy), ``examples`` (clean,
    FGSM and PGD images at ``example_eps`` with labels and predictions),
    ``example_metrics`` (PGD success statistics on those images) and ``line``
    (the linearity scan of :func:`_line_scan`).
    """
    seed_everything(cfg.seed)
    train_set = data.load("mnist", train=True).head(cfg.n_train)
    test_set = data.load("mnist", train=False).head(cfg.n_test)
    model = models.LeNet5("mnist", act="relu")
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine", seed=cfg.seed)
    history = train(model, train_set, tcfg, test=test_set)
    clean = attacks.evaluate(model, test_set)["clean_acc"]
    fgsm, pgd = [], []
    for eps in cfg.eps:
        if eps == 0:
            fgsm.append(clean)
            pgd.append(clean)
            continue
        fgsm.append(attacks.evaluate(model, test_set, attacks.make_attack("fgsm", model, eps=eps))["robust_acc"])
        atk = attacks.make_attack("pgd", model, eps=eps, alpha=eps / 4, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts)
        pgd.append(attacks.evaluate(model, test_set, atk)["robust_acc"])
    few = test_set.head(cfg.n_examples)
    ex_fgsm = attacks.evaluate(model, few, attacks.make_attack("fgsm", model, eps=cfg.example_eps), return_examples=cfg.n_examples)
    atk = attacks.make_attack("pgd", model, eps=cfg.example_eps, alpha=cfg.example_eps / 4, steps=cfg.pgd_steps)
    ex = attacks.evaluate(model, few, atk, return_examples=cfg.n_examples)
    examples = {k: _round(v) for k, v in ex["examples"].items()}
    examples["fgsm"] = _round(ex_fgsm["examples"]["adversarial"])
    examples["fgsm_pred"] = ex_fgsm["examples"]["adv_pred"]
    x0, y0 = test_set.head(1).tensors(get_device())
    return {
        "data": test_set.description,
        "n_train": len(train_set),
        "n_test": len(test_set),
        "history": history,
        "clean_acc": clean,
        "eps": list(cfg.eps),
        "fgsm_acc": fgsm,
        "pgd_acc": pgd,
        "pgd_steps": cfg.pgd_steps,
        "pgd_restarts": cfg.pgd_restarts,
        "examples": examples,
        "example_eps": cfg.example_eps,
        "example_metrics": {k: ex[k] for k in ("robust_acc", "psnr", "mean_linf", "mean_l2")},
        "line": _line_scan(model, x0, y0, cfg.line_max, cfg.line_points),
    }
