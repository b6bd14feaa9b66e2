"""Experiments of the Adversarial evaluation chapter: one model, every attack of symact.attacks."""
from __future__ import annotations

from dataclasses import dataclass

from symact import attacks, data, models
from symact.device import seed_everything
from symact.evaluation import evaluate
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["SuiteConfig", "attack_suite"]


@dataclass(frozen=True)
class SuiteConfig:
    """LeNet-5 on MNIST (standard training), attacked at one L-infinity budget by every attack.

    FGSM (single step), PGD with restarts (step eps/4), AutoAttack (standard), Square
    (black-box, score-based) and CW-L2 (an L2 attack: its budget is unbounded, so only its
    success rate and median L2 norm are comparable). ``autoattack`` names the cascade: ``"autoattack"``,
    the authors' 100-iteration AutoAttack, or ``"cascade-10"``, torchattacks' 10-iteration defaults, which
    the stored quick result ran.
    """

    n_train: int | None = None
    epochs: int = 2
    n_test: int = 500
    eps: float = 0.1
    pgd_steps: int = 50
    pgd_restarts: int = 3
    square_queries: int = 1000
    cw_steps: int = 100
    autoattack: str = "autoattack"
    seed: int = 0


@experiment(
    "evaluation",
    "attack-suite",
    {
        "smoke": SuiteConfig(n_train=2000, epochs=1, n_test=32, pgd_steps=5, pgd_restarts=2, square_queries=50, cw_steps=5),
        "quick": SuiteConfig(autoattack="cascade-10"),
        "paper": SuiteConfig(epochs=20, n_test=10000, square_queries=5000),
    },
)
def attack_suite(cfg: SuiteConfig) -> dict:
    """Robust accuracy of one standard LeNet-5 under each attack of the toolkit."""
    seed_everything(cfg.seed)
    model = models.LeNet5("mnist")
    train(model, data.load("mnist").head(cfg.n_train), TrainConfig(epochs=cfg.epochs, lr=0.05, schedule="cosine", seed=cfg.seed))
    test = data.load("mnist", train=False).head(cfg.n_test)
    suite = {
        "FGSM": attacks.make_attack("fgsm", model, eps=cfg.eps),
        f"PGD-{cfg.pgd_steps} x{cfg.pgd_restarts}": attacks.make_attack(
            "pgd", model, eps=cfg.eps, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts
        ),
        # the key is the result's layout; tables name the cascade from the config (evaluation.cascade_label)
        "AutoAttack": attacks.make_attack(cfg.autoattack, model, eps=cfg.eps, seed=cfg.seed),
        "Square": attacks.make_attack("square", model, eps=cfg.eps, n_queries=cfg.square_queries, seed=cfg.seed),
        "CW-L2": attacks.make_attack("cw", model, steps=cfg.cw_steps),
    }
    rows = {name: evaluate(model, test, atk) for name, atk in suite.items()}
    return {"data": test.description, "n_test": len(test), "eps": cfg.eps, "attacks": rows}
