"""Experiments of the Adversarial evaluation chapter: one model, every attack of symact.attacks; and the helpers
that turn other chapters' stored results into the chapter's case studies (:func:`shown`, :func:`saf_attacks`,
:func:`sapl_attacks`, :func:`fat_runs`, :func:`autoattack_breakdown`, :func:`near_threshold`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from symact import attacks, data, models
from symact.device import seed_everything
from symact.evaluation import evaluate
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["PUBLISHED", "SAF_ATTACKS", "SuiteConfig", "attack_suite", "autoattack_breakdown", "fat_runs",
           "near_threshold", "saf_attacks", "sapl_attacks", "shown"]


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


# --------------------------------------------------------------------------- the chapter's case studies
#
# The first half of the chapter ("How to evaluate robustness") reads stored results of other chapters and never
# runs an experiment: the helpers below turn those results into the numbers and tables it shows.

#: Published numbers the chapter cites beside ours (never measured here): k-WTA (Xiao, Zhong and Zheng, ICLR
#: 2020), its adversarially trained CIFAR-10 ResNet-18 as RobustBench lists it, under AutoAttack and under the
#: adaptive attack of Tramer et al. (NeurIPS 2020; PGD on a margin loss with gradients averaged over
#: Gaussian-perturbed copies of the input). Source: ../shared/papers/kaf-thesis-results.md, "Related numbers".
PUBLISHED = {
    "kwta_robustbench_autoattack": 18.50,  # % robust accuracy, eps 8/255, RobustBench's AutoAttack entry
    "kwta_tramer_adaptive": 0.16,  # % robust accuracy under Tramer et al.'s adaptive attack (RobustBench note)
}


def shown(exp):
    """The stored result the book shows for ``exp`` without running anything: the fresh ``paper`` result, else
    the fresh ``quick`` one, else ``None`` (missing or stale). Unlike calling ``exp()``, never trains or attacks,
    whatever ``SYMACT_PROFILE`` says: the chapter that reads it cites other chapters' results and must not
    compute them again."""
    for prof in ("paper", "quick"):
        res = exp.stored(prof)
        if res is not None:
            return res
    return None


def near_threshold(images: torch.Tensor, eps: float, threshold: float = 0.5) -> float:
    """The fraction of pixels within ``eps`` of ``threshold``: ``mean(|x - threshold| <= eps)``.

    A network that first binarises its input at ``threshold`` can change its input only where a pixel is
    this close to it, so on near-binary images (MNIST) the fraction bounds what an L-infinity attack of
    budget ``eps`` can do to such a network. ``images``: pixels in [0, 1] (float) or ``uint8`` in [0, 255].

    Example:
        >>> near_threshold(torch.tensor([0.0, 0.45, 0.5, 1.0]), 0.1)
        0.5
    """
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if not isinstance(images, torch.Tensor) or images.numel() == 0:
        raise ValueError("images must be a non-empty tensor of pixels (float in [0, 1] or uint8)")
    x = images.double() / 255 if images.dtype == torch.uint8 else images.double()
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"pixels must lie in [0, 1] (or be uint8), got the range [{x.min():.3g}, {x.max():.3g}]")
    return float(((x - threshold).abs() <= eps + 1e-12).double().mean())


#: the SAF chapter's strong attacks (saf.strong_eval), in the order the chapter's table shows them
SAF_ATTACKS = ("eq10", "pgd", "pgd-ce", "autoattack", "square", "worst")


def saf_attacks(res) -> "pd.DataFrame":
    """One row per epsilon of a stored SAF robust-CNN result (``symact.experiments.saf.robust_run``): the
    accuracy under each strong attack (:data:`SAF_ATTACKS`: ``eq10`` the paper's one step, clipped; ``pgd`` on
    the training loss; ``pgd-ce`` on the cross-entropy of the normalised confidences; ``autoattack`` the cascade
    the result's config names; ``square``; ``worst`` per image over all of them), the fraction decided as a
    wrong *real* class (``wrong:<attack>``, not nonsense) and the images each ran on (``n:<attack>``). Attacks a
    result did not run are NaN."""
    import pandas as pd

    st = res["strong"]
    rows = []
    for eps in st["eps"]:
        r = st[str(eps)]
        row = {"eps": float(eps), "clean": st["clean_acc"]}
        for name in SAF_ATTACKS:
            e = r.get(name)
            row[name] = e["acc"] if e else math.nan
            row[f"wrong:{name}"] = e.get("wrong_class", math.nan) if e else math.nan
            row[f"n:{name}"] = e["n"] if e else 0
        rows.append(row)
    return pd.DataFrame(rows).set_index("eps")


def sapl_attacks(rob: dict, images: str | None = None) -> "pd.DataFrame":
    """One row per activation of the S-APL chapter's robustness results (``rob``: activation -> stored
    ``symact.experiments.sapl.robustness_run`` result) on the image set ``images`` (default the largest all
    share): ``clean``, ``correct`` (the correctly classified images, the success rates' denominator), the FGSM
    success rate at each of its budgets (``fgsm@<eps>``) with its Wilson interval (``fgsm@<eps>:lo``/``:hi``),
    and the success rates under PGD (``pgd``) and the cascade (``autoattack``, the one the result's config
    names), with their intervals."""
    import pandas as pd

    if not rob:
        raise ValueError("sapl_attacks needs at least one stored result")
    sets = set.intersection(*(set(r["sets"]) for r in rob.values()))
    if images is None:
        if not sets:
            raise ValueError("the results share no image set")
        images = max(sets, key=int)
    elif str(images) not in sets:
        raise ValueError(f"image set {images!r} is not in every result (shared: {sorted(sets, key=int)})")
    rows = []
    for act, res in rob.items():
        s = res["sets"][str(images)]
        row = {"activation": act, "images": int(images), "clean": s["clean_acc"]}
        entries = {f"fgsm@{e}": v for e, v in s["fgsm"].items()}
        entries.update(pgd=s["pgd"], autoattack=s["autoattack"])
        for key, v in entries.items():
            row[key] = v["success_rate"]
            row[f"{key}:lo"], row[f"{key}:hi"] = v["interval"]
        row["correct"] = s["pgd"]["correct"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


def fat_runs(fat) -> "pd.DataFrame":
    """One row per network of a stored ``symact.experiments.fundamentals.fat_mnist_wong`` result: ``start``,
    ``seed``, ``fgsm_train`` (accuracy on the FGSM examples it trained on in its last epoch), ``check`` (PGD-5
    accuracy on 512 training images after the last epoch, the early-stop check of Wong et al.), ``clean`` and
    ``pgd`` (test images, PGD with restarts), sorted by start and seed."""
    import pandas as pd

    rows = [{"start": r["start"], "seed": r["seed"], "fgsm_train": r["history"]["train_acc"][-1],
             "check": r["history"]["check_robust_acc"][-1], "clean": r["clean_acc"], "pgd": r["pgd_acc"]}
            for r in fat["runs"]]
    return pd.DataFrame(rows).sort_values(["start", "seed"]).reset_index(drop=True)


def autoattack_breakdown(check: dict) -> "pd.DataFrame":
    """Which component of :class:`symact.attacks.AutoAttack` broke each image, from the stored
    ``results/benchmarks/autoattack_check.json`` (``benchmarks/autoattack_check.py``): one row per network with
    ``description``, ``eps``, ``n``, the images each component broke first (``apgd-ce``, ``apgd-t``, ``fab-t``,
    ``square``: counts of :attr:`~symact.attacks.AutoAttack.last_broken_by`), ``robust`` (no component broke
    it), ``misclassified`` (wrong before the attack, not attacked) and the seconds each component ran
    (``seconds:<component>``)."""
    import pandas as pd

    from symact.attacks import AUTOATTACK_COMPONENTS, MISCLASSIFIED, ROBUST

    rows = []
    for r in check["rows"]:
        d = check["details"][r["network"]]
        codes = list(d["ours_broken_by"])
        if len(codes) != r["n"]:
            raise ValueError(f"{r['network']}: {len(codes)} per-image codes for {r['n']} images")
        row = {"network": r["network"], "description": d["description"], "eps": r["eps"], "n": r["n"]}
        row.update({c: codes.count(k) for k, c in enumerate(AUTOATTACK_COMPONENTS)})
        row.update(robust=codes.count(ROBUST), misclassified=codes.count(MISCLASSIFIED))
        row.update({f"seconds:{c}": s for c, s in d.get("ours_component_seconds", {}).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("network")
