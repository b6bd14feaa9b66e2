"""Robustness: symmetric-apl.txt Section 6, Tables 2 to 4, LeNet-5 rows (experiments
``robustness-lenet-cifar10-<activation>``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

import torch

from symact import attacks, data, models
from symact.activations import create
from symact.attacks import accuracy
from symact.device import seed_everything
from symact.evaluation import evaluate, pool, proportion_interval
from symact.results import Unit, _jsonable, experiment, gpu_resources, stored_units
from symact.train import place, train
from symact.experiments.sapl.common import _lenet_recipe, LeNetRecipe

__all__ = ['DE_PART_IMAGES', 'PAPER_TABLE2', 'PAPER_TABLE3', 'PAPER_TABLE4', 'ROBUSTNESS', 'ROBUSTNESS_ACTS', 'RobustnessConfig', 'robustness_network', 'robustness_progress', 'robustness_run',
           'STRONG', 'StrongConfig', 'robustness_overview', 'strong_run']


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


# --------------------------------------------------------------------------- seeds, curves and distances


@dataclass(frozen=True)
class StrongConfig(LeNetRecipe):
    """The four Section 6 LeNet-5 networks (:data:`ROBUSTNESS_ACTS`) over ``seeds`` training seeds, evaluated beyond
    one saturated epsilon (issue 29): at 8/255 PGD, AutoAttack and CW fool every image of every network of
    :class:`RobustnessConfig`'s paper run, so "S-APL is (not) more robust" needs curves and distances.

    Per network (training as :class:`RobustnessConfig`, seed ``s``; its weights kept in the zoo), on the first
    ``n_images`` of one random draw of test images (seed 0, the same images for every network and seed):

    - a robustness curve (:func:`symact.evaluation.robustness_curve`) over ``eps_grid`` (L-infinity, pixel scale):
      the official ``autoattack`` (``"autoattack"``: APGD-CE, APGD-T, FAB-T, Square, 100 iterations) and
      PGD-``pgd_steps`` (step eps/4, ``pgd_restarts`` starts), per-image outcomes and the worst case per epsilon;
    - minimum-norm distances (:func:`symact.evaluation.min_norm_distances`): CW-L2 (the paper's Table 4 attack, c =
      ``cw_c``, ``cw_steps`` steps; the smallest L2 perturbation that fooled it, per image) and FAB-L-infinity
      (``fab_steps`` steps);
    - the gradient-masking checks of Carlini et al. (:func:`symact.evaluation.run_sanity`) at ``sanity_eps`` on the
      first ``n_sanity`` images, the ReLU network of the same seed as the transfer surrogate.

    One unit per network and part (``<act>-s<seed>-train``, ``-curve``, ``-cw``, ``-fab``, ``-sanity``): a stopped
    run resumes, and the parts can run on different machines against the same stored network.
    """

    activations: tuple[str, ...] = tuple(ROBUSTNESS_ACTS)
    seeds: int = 3
    n_test: int | None = None
    n_images: int = 1000
    eps_grid: tuple[float, ...] = (0.25 / 255, 0.5 / 255, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
    autoattack: str = "autoattack"
    pgd_steps: int = 50
    pgd_restarts: int = 5
    cw_c: float = 1.0
    cw_steps: int = 100
    fab_steps: int = 100
    sanity_eps: float = 1 / 255
    n_sanity: int = 500


def _strong_units(cfg: StrongConfig) -> list[Unit]:
    unknown = [a for a in cfg.activations if a not in ROBUSTNESS_ACTS]
    if unknown or not cfg.activations:
        raise ValueError(f"unknown activations {unknown}; expected some of {list(ROBUSTNESS_ACTS)}")
    if cfg.seeds < 1 or cfg.n_images < 1 or cfg.n_sanity < 1 or not cfg.eps_grid or min(cfg.eps_grid) <= 0:
        raise ValueError(f"need seeds, n_images, n_sanity >= 1 and a non-empty eps_grid of positive budgets; got {cfg}")
    if cfg.autoattack not in ("autoattack", "cascade-10"):
        raise ValueError(f"autoattack must be 'autoattack' or 'cascade-10', got {cfg.autoattack!r}")
    units = []
    for seed in range(cfg.seeds):
        for act in cfg.activations:
            k = f"{act}-s{seed}"
            units += [Unit(f"{k}-train", _strong_train, (cfg, act, seed), checkpoint=True, zoo=True,
                           resources=gpu_resources()),
                      Unit(f"{k}-curve", _strong_part, (cfg, act, "curve"), needs=(f"{k}-train",)),
                      Unit(f"{k}-cw", _strong_part, (cfg, act, "cw"), needs=(f"{k}-train",)),
                      Unit(f"{k}-fab", _strong_part, (cfg, act, "fab"), needs=(f"{k}-train",))]
            surrogate = f"relu-s{seed}-train" if act != "relu" and "relu" in cfg.activations else None
            units.append(Unit(f"{k}-sanity", _strong_part, (cfg, act, "sanity"),
                              needs=(f"{k}-train",) + ((surrogate,) if surrogate else ())))
    # every training unit first, so the surrogate a sanity unit needs comes earlier in the list
    return sorted(units, key=lambda u: not u.key.endswith("-train"))


def _strong_train(cfg: StrongConfig, act: str, seed: int, checkpoint=None) -> dict:
    return _robustness_train(RobustnessConfig(activation=act, epochs=cfg.epochs, n_train=cfg.n_train,
                                              batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                              seed=seed), checkpoint)


def _net(act: str, trained: dict) -> torch.nn.Module:
    model = robustness_network(act)
    model.load_state_dict(trained["weights"])
    place(model)
    return model.eval()


def _strong_part(cfg: StrongConfig, act: str, part: str, trained: dict, surrogate: dict | None = None) -> dict:
    """One part of :class:`StrongConfig` on the network ``trained`` (a ``-train`` unit's value)."""
    from symact.evaluation import min_norm_distances, robustness_curve, run_sanity

    model = _net(act, trained)
    images = data.load("cifar10", train=False).sample(cfg.n_images, seed=0)
    seed_everything(0)
    if part == "curve":
        def make(m, eps):
            return {"autoattack": attacks.make_attack(cfg.autoattack, m, eps=eps, n_classes=10, seed=0),
                    f"pgd-{cfg.pgd_steps}": attacks.LossPGD(m, eps, eps / 4, cfg.pgd_steps, restarts=cfg.pgd_restarts,
                                                             seed=0)}
        out = robustness_curve(model, images, make, cfg.eps_grid)
        out["test_acc"] = accuracy(model, data.load("cifar10", train=False).head(cfg.n_test))
        return out
    if part == "cw":
        return min_norm_distances(model, images, "L2", "cw", steps=cfg.cw_steps, c=cfg.cw_c)
    if part == "fab":
        return min_norm_distances(model, images, "Linf", "fab", steps=cfg.fab_steps)
    if part == "sanity":
        sur = None if surrogate is None else _net("relu", surrogate)
        return run_sanity(model, images.head(cfg.n_sanity), cfg.sanity_eps, surrogate=sur)
    raise ValueError(f"unknown part {part!r}; expected curve, cw, fab or sanity")


def strong_run(cfg: StrongConfig, outputs: dict) -> dict:
    """:class:`StrongConfig`'s result: ``networks[<act>][<seed>]`` with ``train_loss`` (per epoch), ``test_acc``,
    ``curve`` (its points keep the per-image outcomes), ``cw`` and ``fab`` (per-image distances) and ``sanity``."""
    nets = {}
    for act in cfg.activations:
        nets[act] = {}
        for seed in range(cfg.seeds):
            k = f"{act}-s{seed}"
            curve = outputs[f"{k}-curve"]
            nets[act][str(seed)] = {"train_loss": outputs[f"{k}-train"]["history"]["train_loss"],
                                    "test_acc": curve.pop("test_acc"), "curve": curve, "cw": outputs[f"{k}-cw"],
                                    "fab": outputs[f"{k}-fab"], "sanity": outputs[f"{k}-sanity"]}
    return {"data": data.load("cifar10", train=False).description, "networks": nets}


def _strong_configs() -> dict:
    paper = StrongConfig()
    smoke = dataclasses.replace(paper, activations=("relu", "sapl"), seeds=1, epochs=1, n_train=256, n_test=200,
                                n_images=8, eps_grid=(1 / 255, 8 / 255), pgd_steps=2, pgd_restarts=1, cw_steps=2,
                                fab_steps=2, n_sanity=8)
    quick = dataclasses.replace(paper, epochs=2, n_train=10000, n_test=2000, n_images=100, pgd_steps=10,
                                pgd_restarts=1, cw_steps=30, fab_steps=20, n_sanity=50)
    return {"smoke": smoke, "quick": quick, "paper": paper}


#: the seeded strong-attack experiment ``strong-lenet-cifar10`` (:class:`StrongConfig`)
STRONG = experiment("sapl", "strong-lenet-cifar10", _strong_configs(), units=_strong_units)(strong_run)


def _nan(x) -> float:
    """A stored mean as a float: JSON keeps a mean over no image (NaN) as null."""
    return float("nan") if x is None else float(x)


def robustness_overview(results: dict, images: str | None = None, underfit: float = 3.0):
    """The Section 6 networks side by side, from stored ``robustness_run`` results (activation -> result), as a
    DataFrame indexed by activation: ``test_error`` (%, on the result's ``n_test`` test images), ``train_loss``
    (last epoch), ``underfit`` (last training loss above ``underfit`` times the median of the others'),
    ``correct`` and ``cw_success`` (%) on the image set ``images`` (default the largest), ``cw_mean_l2`` and
    ``cw_mean_linf`` (mean size of the successful CW-L2 perturbations), and ``strong_saturated`` (PGD and the
    cascade fool every correctly classified image: that epsilon can separate no two networks)."""
    import pandas as pd

    if not results:
        raise ValueError("robustness_overview needs at least one stored robustness result")
    rows = {}
    for act, r in results.items():
        s = r["sets"][images or max(r["sets"], key=int)]
        rows[act] = {"test_error": 100 * (1 - r["test_acc"]), "train_loss": r["train_loss"][-1],
                     "correct": s["cw"].get("correct", round(s["clean_acc"] * s["n"])),
                     "cw_success": 100 * s["cw"]["success_rate"], "cw_mean_l2": _nan(s["cw"]["mean_l2"]),
                     "cw_mean_linf": _nan(s["cw"]["mean_linf"]),
                     "strong_saturated": min(s["pgd"]["success_rate"], s["autoattack"]["success_rate"]) >= 0.995}
    df = pd.DataFrame.from_dict(rows, orient="index")
    others = {a: df["train_loss"].drop(a).median() if len(df) > 1 else float("nan") for a in df.index}
    df["underfit"] = [bool(df.loc[a, "train_loss"] > underfit * others[a]) for a in df.index]
    return df
