"""Experiments of the SAF chapter (``../shared/papers/saf.txt``).

- ``capacity``: measurements of the Lemma 1 construction (Section 3.3, Eq. 4 to 6)
  with :mod:`symact.theory`: the radius ratio of Eq. 6 against tau, the lambda and
  tau0 the construction needs for each dimension n, the misclassified volume
  fraction by Monte Carlo in float64 and float32, and how close mReLU blocks can
  come to a Euclidean ball.
- ``features``: the paper's Figs. 3 and 4, second-convolution features of a plain
  LeNet-5 on MNIST with Gaussian-noise nonsense samples, and per-layer correlations.
- ``robust-<dataset>-<model>``: the plain, RBF and mReLU CNNs of Tables 1 and 3,
  trained with the hybrid loss (Eq. 7) and the random (-r), mean (-m) and
  adversarial (-a) training tricks, evaluated as in Section 5 (Eq. 10 adversarial,
  nonsense and noisy samples over the beta grid of Tables 2 and 4) and then with
  PGD with restarts, AutoAttack and Square.
"""
from __future__ import annotations

import base64
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from symact import attacks, data, theory
from symact.attacks import progress_bar
from symact.evaluation import encode_outcomes
from symact.device import get_device, seed_everything
from symact.models import LeNet5
from symact.results import experiment
from symact.train import TrainConfig, train

__all__ = ["ALPHAS", "BASES", "BETAS", "FLAGS", "MODELS", "NONSENSE", "PAPER_ERRORS", "ROBUST", "CapacityConfig",
           "FeatureConfig", "LogRBF", "RobustConfig", "build_model", "capacity", "confidences", "decide",
           "decision_rule", "example_image", "features", "hybrid_loss", "nonsense_samples", "paper_gaps", "parse_model", "protocol_table",
           "robust_run",
           "strong_attacks", "strong_eval", "train_network", "training_tricks"]


@dataclass(frozen=True)
class CapacityConfig:
    """Lemma 1 measurements.

    ``ns``: dimensions; ``eps``: target error of Eq. 6; ``samples``: Monte Carlo
    points per dimension (float64), ``samples32`` in float32; ``l1_ns``: dimensions
    for the mReLU L1-ball bound; ``polygon_ms``: numbers of directions for the
    2-D mReLU repair; ``taus``: points of the Eq. 6 ratio curve (as ``1 - tau``).
    """

    ns: tuple[int, ...] = (2, 3, 5, 10, 20, 50, 100, 200, 784)
    eps: float = 0.01
    samples: int = 200_000
    samples32: int = 50_000
    l1_ns: tuple[int, ...] = (2, 3, 5, 10, 20, 50)
    l1_samples: int = 200_000
    polygon_ms: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
    # 12 significant digits: np.logspace's last bits differ between CPUs, and the config hash must not
    one_minus_taus: tuple[float, ...] = tuple(float(f"{v:.12g}") for v in np.logspace(-8, np.log10(0.6), 60))
    seed: int = 0


@experiment(
    "saf",
    "capacity",
    {
        "smoke": CapacityConfig(ns=(2, 10, 50), samples=2000, samples32=2000, l1_ns=(2, 5), l1_samples=5000,
                                polygon_ms=(2, 4, 8)),
        "quick": CapacityConfig(),
        "paper": CapacityConfig(samples=1_000_000, samples32=200_000, l1_samples=1_000_000),
    },
)
def capacity(cfg: CapacityConfig) -> dict:
    """Measure the Lemma 1 construction; see :mod:`symact.theory` for each quantity."""
    taus = 1.0 - np.asarray(cfg.one_minus_taus)
    out = {"ratio_curve": {"one_minus_tau": list(cfg.one_minus_taus),
                           **{str(n): theory.sphere_ratio(taus, n).tolist() for n in cfg.ns}}}
    rows = []
    for n in progress_bar(cfg.ns, len(cfg.ns), "Lemma 1 Monte Carlo"):
        c = theory.construction(n, cfg.eps)
        row = {"n": n, "units": n + 1, "explicit": c["explicit"], "largest": c["largest"]}
        lam, tau = c["largest"]["lam"], c["largest"]["tau0"]
        row["mc64"] = theory.monte_carlo_error(n, lam, tau, samples=cfg.samples, seed=cfg.seed)
        row["mc32"] = theory.monte_carlo_error(n, lam, tau, samples=cfg.samples32, seed=cfg.seed, dtype=np.float32)
        row["tau0_float32"] = float(np.float32(tau))
        rows.append(row)
    out["rows"] = rows
    out["l1"] = [theory.l1_ball_iou(n, samples=cfg.l1_samples, seed=cfg.seed) for n in cfg.l1_ns]
    out["polygon"] = [theory.polygon_iou(m) for m in cfg.polygon_ms]
    return out


# --------------------------------------------------------------------------------------------
# The robust CNNs of Section 4 and 5
# --------------------------------------------------------------------------------------------

#: label code of the *nonsense* decision (one past the ten real classes)
NONSENSE = 10

#: saf.txt Tables 1 and 3: activation after each convolution (``None``: the plain
#: network has none there) and whether batch normalisation precedes it (Section 4.3).
#: Every network has ReLU after fc1; robust ones end in a 1-D RBF and the hybrid loss.
BASES = {"plain": (None, False), "rbf": ("rbf", True), "mrelu": ("mrelu", True)}

#: the training flags of Section 5
FLAGS = {"r": "random training", "m": "mean training", "a": "adversarial training"}

#: hybrid loss weights (alpha1, alpha2, alpha3) of Sections 5.1 and 5.2; p = 2 throughout
ALPHAS = {"mnist": (1.0, 1.0, 0.0), "cifar10": (1.0, 1.0, 1.0 / 9.0)}

#: the beta grids of Tables 2 and 4 (pixel units of [0, 1] images; the paper writes 255 beta)
BETAS = {
    "mnist": (0.01, 0.02, 0.03, 0.04, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50),
    "cifar10": (0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050, 0.075, 0.100, 0.150),
}

#: the models we train per data set (Table 2 reports plain and mrelu-r-m; Section 5.2
#: trains the CIFAR-10 robust CNNs with random and mean training only)
MODELS = {
    "mnist": ("plain", "plain-r-m", "rbf", "rbf-r-m", "mrelu", "mrelu-r", "mrelu-m", "mrelu-r-m", "mrelu-a"),
    "cifar10": ("plain", "plain-r-m", "rbf-r-m", "mrelu", "mrelu-r-m"),
}

#: saf.txt Tables 2 and 4, error rates: {(dataset, kind, model): (clean, beta_1, beta_2, ...)}.
#: The paper prints only the first values of the mReLU-r-m nonsense rows (5 on MNIST, 4 on CIFAR-10).
PAPER_ERRORS = {
    ("mnist", "adversarial", "plain"): (0.009, 0.013, 0.023, 0.041, 0.071, 0.118, 0.537, 0.836, 0.914, 0.934, 0.943,
                                        0.948, 0.944),
    ("mnist", "adversarial", "mrelu-r-m"): (0.015, 0.016, 0.017, 0.019, 0.020, 0.022, 0.030, 0.039, 0.051, 0.073,
                                            0.110, 0.252, 0.463),
    ("mnist", "nonsense", "plain"): (0.979, 0.982, 0.981, 0.974, 0.958, 0.937, 0.979, 0.993, 0.991, 0.991, 0.993,
                                     0.994, 0.997),
    ("mnist", "nonsense", "mrelu-r-m"): (0.000, 0.002, 0.017, 0.146, 0.270),
    ("mnist", "noisy", "plain"): (0.009, 0.008, 0.008, 0.009, 0.009, 0.010, 0.013, 0.027, 0.109, 0.234, 0.372, 0.686,
                                  0.817),
    ("mnist", "noisy", "mrelu-r-m"): (0.015, 0.016, 0.016, 0.016, 0.016, 0.016, 0.017, 0.018, 0.020, 0.023, 0.027,
                                      0.039, 0.059),
    ("cifar10", "adversarial", "plain"): (0.217, 0.591, 0.719, 0.800, 0.850, 0.885, 0.905, 0.918, 0.928, 0.933, 0.941,
                                          0.938, 0.922),
    ("cifar10", "adversarial", "mrelu-r-m"): (0.226, 0.255, 0.278, 0.309, 0.344, 0.388, 0.430, 0.468, 0.506, 0.541,
                                              0.677, 0.751, 0.816),
    ("cifar10", "nonsense", "plain"): (0.937, 0.679, 0.742, 0.779, 0.804, 0.821, 0.835, 0.843, 0.849, 0.857, 0.880,
                                       0.889, 0.916),
    ("cifar10", "nonsense", "mrelu-r-m"): (0.000, 0.008, 0.111, 0.281),
    ("cifar10", "noisy", "plain"): (0.217, 0.218, 0.221, 0.227, 0.231, 0.234, 0.241, 0.253, 0.266, 0.280, 0.357, 0.461,
                                    0.656),
    ("cifar10", "noisy", "mrelu-r-m"): (0.226, 0.226, 0.225, 0.225, 0.225, 0.225, 0.225, 0.224, 0.223, 0.223, 0.220,
                                        0.230, 0.295),
}


def parse_model(name: str) -> tuple[str, frozenset]:
    """``"mrelu-r-m"`` -> ``("mrelu", {"r", "m"})``; raises on an unknown base or flag."""
    base, *flags = name.split("-")
    if base not in BASES or any(f not in FLAGS for f in flags) or len(set(flags)) != len(flags):
        raise ValueError(f"model must be one of {sorted(BASES)} followed by distinct flags from "
                         f"{['-' + f for f in FLAGS]} (e.g. 'mrelu-r-m'), got {name!r}")
    return base, frozenset(flags)


class LogRBF(nn.Module):
    """The output layer's 1-D RBF in log form: ``-x^2 = ln exp(-x^2)`` (saf.txt Tables 1 and 3, "fc2 1-D RBF").

    The confidences are ``exp`` of this output, in (0, 1]. Used as logits, its
    softmax is the normalised confidence ``y_l / sum_i y_i`` of Eq. 7, so
    cross-entropy on it is Eq. 7's first term, computed without underflow.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x * x


def build_model(dataset: str, name: str) -> LeNet5:
    """The network of saf.txt Table 1 (MNIST) or Table 3 (CIFAR-10) for ``name`` (e.g. ``"mrelu-r-m"``).

    Mean training (``-m``) adds an eleventh output, the *nonsense* class.
    """
    base, flags = parse_model(name)
    act, batchnorm = BASES[base]
    variant = {"mnist": "mnist", "cifar10": "cifar"}[dataset]
    out_act = None if base == "plain" else (lambda c: LogRBF())
    return LeNet5(variant, num_classes=10 + ("m" in flags), act=act, fc_act="relu", out_act=out_act,
                  batchnorm=batchnorm)


def hybrid_loss(alphas: tuple[float, float, float], p: float = 2.0):
    """saf.txt Eq. 7 on log-confidences ``out = ln y`` (the output of :class:`LogRBF`):

    ``-a1 ln(y_l / sum_i y_i) + a2 (1 - y_l)^p + a3 sum_{i != l} y_i^p``, averaged over the batch.
    """
    a1, a2, a3 = alphas

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        conf = out.exp()
        y_l = conf.gather(1, y[:, None]).squeeze(1)
        value = a1 * F.cross_entropy(out, y) + a2 * (1 - y_l).pow(p).mean()
        if a3:
            value = value + a3 * (conf.pow(p).sum(1) - y_l.pow(p)).mean()
        return value
    return loss


def model_loss(dataset: str, name: str):
    """The training loss: softmax cross-entropy for the plain network, Eq. 7 for the robust ones."""
    return F.cross_entropy if parse_model(name)[0] == "plain" else hybrid_loss(ALPHAS[dataset])


def confidences(out: torch.Tensor, robust: bool) -> torch.Tensor:
    """Class confidences: ``exp`` of the log-RBF output (robust) or the softmax (plain)."""
    return out.exp() if robust else out.softmax(1)


def decide(out: torch.Tensor, robust: bool, nonsense_class: bool, threshold: float = 0.5) -> torch.Tensor:
    """The paper's decision (Section 5): a class index, or :data:`NONSENSE`.

    With a nonsense class (mean training) the arg max over all outputs decides;
    without one, a sample is nonsense when every class confidence is below ``threshold``.
    """
    conf = confidences(out, robust)
    pred = conf.argmax(1)
    if nonsense_class:
        return pred
    return torch.where(conf.amax(1) < threshold, torch.full_like(pred, NONSENSE), pred)


def nonsense_samples(n: int, shape, generator: torch.Generator) -> torch.Tensor:
    """Stationary Gaussian noise "shifted and scaled to cover the range" of the pixels (Section 5), per image."""
    z = torch.randn((n, *shape), generator=generator)
    lo, hi = z.flatten(1).amin(1), z.flatten(1).amax(1)
    return (z - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)


@dataclass(frozen=True)
class RobustConfig:
    """One robust-CNN experiment of saf.txt Section 5.

    Training: SGD (momentum 0.9) with ``lr``, ``weight_decay``, ``schedule``,
    ``batch_size`` for ``epochs``; the paper trains MNIST models 20 epochs and
    CIFAR-10 plain ones 45, robust ones 90 (MatConvNet defaults otherwise, which it
    does not list). Tricks (the paper gives no values; these are ours):
    ``-r`` adds U[-random_delta, random_delta] noise to a ``random_frac`` fraction
    of every batch; ``-m`` appends ``mean_frac * batch`` copies of the training mean
    plus Gaussian noise (std uniform in [0, mean_sigma] per copy) labelled nonsense;
    ``-a`` replaces an ``adv_frac`` fraction of every batch by Eq. 10 samples at
    ``adv_beta``. ``flip``: random horizontal reflection (Section 5.2, CIFAR-10).

    Evaluation as the paper: ``n_eval`` test images, as many nonsense and noisy
    samples, errors over ``betas`` (not clipped to [0, 1], as the paper).
    Beyond the paper: on the first ``n_strong`` test images, at each L-infinity
    ``strong_eps`` (clipped to [0, 1]): Eq. 10 clipped, PGD-``pgd_steps`` (step
    eps/4) with ``pgd_restarts`` restarts on the training loss and on
    cross-entropy of the outputs, AutoAttack on the first ``n_aa`` (0: skipped)
    and Square with ``square_queries`` queries on the first ``n_square``.
    ``n_examples`` adversarial images are kept for a Fig. 10-like grid. ``autoattack`` names the cascade
    (``"autoattack"``, the authors' 100-iteration AutoAttack under the paper's decision rule, or
    ``"cascade-10"``, torchattacks' 10-iteration defaults, which the stored paper-profile MNIST results ran).
    """

    dataset: str = "mnist"
    model: str = "plain"
    epochs: int = 20
    n_train: int | None = None
    batch_size: int = 100
    lr: float = 0.01
    weight_decay: float = 5e-4
    schedule: str = "constant"
    flip: bool = False
    random_frac: float = 0.5
    random_delta: float = 0.5
    mean_frac: float = 0.1
    mean_sigma: float = 0.5
    adv_frac: float = 0.5
    adv_beta: float = 0.1
    betas: tuple[float, ...] = BETAS["mnist"]
    n_eval: int = 10000
    strong_eps: tuple[float, ...] = (0.1, 0.2, 0.3)
    n_strong: int = 1000
    pgd_steps: int = 50
    pgd_restarts: int = 5
    n_aa: int = 500
    autoattack: str = "autoattack"
    n_square: int = 500
    square_queries: int = 5000
    n_examples: int = 3
    eval_batch: int = 500
    seed: int = 0


def training_tricks(cfg: RobustConfig, model: nn.Module, loss_fn, mean_image: torch.Tensor):
    """The batch function of :func:`symact.train.train` for the flags of ``cfg.model`` (and CIFAR flips)."""
    _, flags = parse_model(cfg.model)

    def rand(shape, gen, dev):
        return torch.rand(shape, generator=gen).to(dev)

    def fn(xb: torch.Tensor, yb: torch.Tensor, gen: torch.Generator):
        dev, n = xb.device, len(xb)
        if cfg.flip:
            flip = rand((n,), gen, dev) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
        if "a" in flags:
            k = int(round(cfg.adv_frac * n))
            was = model.training
            model.eval()
            adv = attacks.fgs_max_grad(model, xb[:k], yb[:k], cfg.adv_beta, loss_fn, num_classes=10)
            model.train(was)
            xb = torch.cat([adv, xb[k:]])
        if "r" in flags:
            pick = (rand((n,), gen, dev) < cfg.random_frac).view(-1, 1, 1, 1)
            xb = xb + pick * (rand(xb.shape, gen, dev) * 2 - 1) * cfg.random_delta
        if "m" in flags:
            k = max(1, int(round(cfg.mean_frac * n)))
            sigma = rand((k, 1, 1, 1), gen, dev) * cfg.mean_sigma
            noise = torch.randn((k, *xb.shape[1:]), generator=gen).to(dev)
            xb = torch.cat([xb, mean_image.to(dev) + sigma * noise])
            yb = torch.cat([yb, torch.full((k,), NONSENSE, dtype=yb.dtype, device=dev)])
        return xb, yb
    return fn


def _psnr(delta: torch.Tensor) -> torch.Tensor:
    mse = delta.flatten(1).pow(2).mean(1).clamp_min(1e-20)
    return 10 * torch.log10(1 / mse)


def paper_eval(model, test: data.ImageData, cfg: RobustConfig, loss_fn, robust: bool, nonsense_class: bool,
               dev) -> dict:
    """Errors on adversarial (Eq. 10), nonsense and noisy samples over ``[0] + betas`` (Section 5).

    Adversarial and noisy samples are errors unless decided as their true class
    (a nonsense decision counts as an error); nonsense samples are errors unless
    decided as nonsense. Also the nonsense-decision rate, the mean PSNR and the
    mean top confidence per beta, the per-sample outcomes (``outcome``: per beta, decided correctly, as
    :func:`symact.evaluation.encode_outcomes`; the paired verdicts of :func:`symact.experiments.verdicts.saf_robust`
    read them), and example images with their decisions (uint8 pixels, base64-encoded; read them with
    :func:`example_image`).
    """
    betas = (0.0,) + tuple(cfg.betas)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    kinds = ("adversarial", "nonsense", "noisy")
    err = {k: np.zeros(len(betas)) for k in kinds}
    rejected = {k: np.zeros(len(betas)) for k in kinds}
    top_conf = {k: np.zeros(len(betas)) for k in kinds}
    psnr = {k: np.zeros(len(betas)) for k in kinds}
    correct: dict = {k: [[] for _ in betas] for k in kinds}  # per beta, per sample: decided correctly
    examples: dict = {k: {"images": [], "decision": [], "confidence": []} for k in kinds}
    n_seen = 0
    subset = test.head(cfg.n_eval)
    total = math.ceil(len(subset) / cfg.eval_batch)
    for xb, yb in progress_bar(subset.batches(cfg.eval_batch, device=dev), total, "paper evaluation"):
        ns = nonsense_samples(len(xb), xb.shape[1:], gen).to(dev)
        z = torch.randn(xb.shape, generator=gen).to(dev)
        d_adv, _ = attacks.eq10_direction(model, xb, yb, loss_fn, num_classes=10)
        d_ns, _ = attacks.eq10_direction(model, ns, torch.full_like(yb, NONSENSE), loss_fn, num_classes=10)
        setups = {"adversarial": (xb, d_adv, yb), "nonsense": (ns, d_ns, torch.full_like(yb, NONSENSE)),
                  "noisy": (xb, z, yb)}
        for kind, (base, direction, target) in setups.items():
            for j, beta in enumerate(betas):
                x = base + beta * direction
                with torch.no_grad():
                    out = model(x)
                dec = decide(out, robust, nonsense_class)
                err[kind][j] += float((dec != target).sum())
                correct[kind][j].append((dec == target).cpu())
                rejected[kind][j] += float((dec == NONSENSE).sum())
                top_conf[kind][j] += float(confidences(out, robust)[:, :10].amax(1).sum())
                if beta > 0:
                    psnr[kind][j] += float(_psnr(beta * direction).sum())
                k = (cfg.n_examples if kind == "adversarial" else min(cfg.n_examples, 1)) if n_seen == 0 else 0
                if k:
                    conf = confidences(out[:k], robust)
                    pick = dec[:k].clamp_max(conf.shape[1] - 1)
                    pixels = (x[:k].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
                    examples[kind]["images"].append([base64.b64encode(img.tobytes()).decode() for img in pixels])
                    examples["shape"] = list(pixels.shape[1:])
                    examples[kind]["decision"].append(dec[:k].cpu().tolist())
                    examples[kind]["confidence"].append(
                        [round(float(c), 3) for c in conf.gather(1, pick[:, None]).squeeze(1)])
        n_seen += len(xb)
    out = {"betas": list(betas), "n": n_seen}
    for kind in kinds:
        out[kind] = {"error": (err[kind] / n_seen).tolist(), "rejected": (rejected[kind] / n_seen).tolist(),
                     "top_confidence": (top_conf[kind] / n_seen).tolist(),
                     "psnr": [None] + (psnr[kind][1:] / n_seen).tolist(),
                     "outcome": [encode_outcomes(torch.cat(c)) for c in correct[kind]]}
    out["examples"] = examples if cfg.n_examples else None
    return out


def example_image(examples: dict, kind: str, beta_index: int, i: int) -> np.ndarray:
    """Example ``i`` of ``kind`` at the ``beta_index``-th beta of a stored :func:`paper_eval` result, uint8 (C, H, W).

    Results stored before the base64 encoding hold nested lists of pixels; both are read.
    """
    entry = examples[kind]["images"][beta_index][i]
    if isinstance(entry, str):
        return np.frombuffer(base64.b64decode(entry), dtype=np.uint8).reshape(examples["shape"])
    return np.asarray(entry, dtype=np.uint8)


def decision_rule(robust: bool, nonsense_class: bool, threshold: float = 0.5):
    """The paper's decision (:func:`decide`) as a prediction rule ``rule(outputs) -> labels`` for
    :func:`symact.evaluation.evaluate` and the attacks (:data:`NONSENSE` for a rejected input)."""
    def rule(out: torch.Tensor) -> torch.Tensor:
        return decide(out, robust, nonsense_class, threshold)
    return rule


def strong_attacks(model, eps: float, loss_fn, robust: bool, nonsense_class: bool, *, steps: int, restarts: int,
                   seed: int, cascade: str | None = "autoattack", square_queries: int = 5000,
                   margin: bool = False) -> dict:
    """The L-infinity attacks at ``eps`` (images clipped to [0, 1]) of the strong evaluation, by name.

    ``eq10``: saf.txt Eq. 10, clipped; ``pgd``: PGD-``steps`` (step eps/4) with ``restarts`` on the training
    loss; ``pgd-ce`` (robust networks): on the cross-entropy of the normalised confidences (Eq. 7's first
    term); ``pgd-margin`` (with ``margin``): :class:`symact.attacks.NonsenseMarginPGD`, towards a wrong real
    class while suppressing the nonsense decision; ``autoattack``: the cascade ``cascade`` names (the
    official AutoAttack under the paper's decision rule, or ``"cascade-10"``; None: skipped); ``square``:
    Square with ``square_queries`` queries (None or 0: skipped). All judged by the paper's decision rule.
    """
    rule = decision_rule(robust, nonsense_class)
    runs = {"eq10": attacks.FGSMaxGrad(model, eps, loss_fn, 10, clip=True),
            "pgd": attacks.LossPGD(model, eps, eps / 4, steps, restarts=restarts, loss_fn=loss_fn, seed=seed,
                                   predict=rule)}
    if robust:
        runs["pgd-ce"] = attacks.LossPGD(model, eps, eps / 4, steps, restarts=restarts, loss_fn=F.cross_entropy,
                                         seed=seed, predict=rule)
    if margin:
        runs["pgd-margin"] = attacks.NonsenseMarginPGD(
            model, eps, eps / 4, steps, restarts, num_classes=10, nonsense=NONSENSE if nonsense_class else None,
            outputs="log" if robust else "logits", seed=seed, predict=rule)
    if cascade:
        rule_kw = {"predict": rule} if cascade == "autoattack" else {}  # cascade-10 decides by argmax
        runs["autoattack"] = attacks.make_attack(cascade, model, eps=eps, n_classes=10 + nonsense_class, seed=seed,
                                                 **rule_kw)
    if square_queries:
        runs["square"] = attacks.make_attack("square", model, eps=eps, n_queries=square_queries, seed=seed)
    return runs


class _Recorded:
    """An attack that counts, on the images it attacks, those decided as a wrong real class afterwards."""

    def __init__(self, model, atk, rule):
        self.model, self.atk, self.rule, self.wrong = model, atk, rule, 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = self.atk(x, y)
        with torch.no_grad():
            dec = self.rule(self.model(adv))
        self.wrong += int(((dec != y) & (dec != NONSENSE)).sum())
        return adv


def strong_eval(model, test: data.ImageData, cfg: RobustConfig, loss_fn, robust: bool, nonsense_class: bool,
                dev) -> dict:
    """Accuracy under strong L-infinity attacks (:func:`strong_attacks`) at each of ``cfg.strong_eps``, by
    :func:`symact.evaluation.evaluate` under the paper's decision rule.

    Per attack, on its first images (``n_strong``; AutoAttack ``n_aa``, Square ``n_square``): ``acc`` (robust
    accuracy), ``wrong_class`` (the fraction of the images the attack moved to a wrong real class rather than
    nonsense), ``n``, and ``outcome`` (per image, robust: :func:`symact.evaluation.encode_outcomes`);
    ``worst`` is the worst case per image over every attack, on the images all attacks ran on.
    """
    from symact.evaluation import encode_outcomes, evaluate, worst_case

    rule = decision_rule(robust, nonsense_class)
    x = test.head(cfg.n_strong)
    out = {"eps": list(cfg.strong_eps), "n": len(x), "engine": "symact.evaluation.evaluate"}
    with torch.no_grad():
        out["clean_acc"] = float(evaluate(model, x, None, predict=rule, batch_size=cfg.eval_batch, device=dev,
                                          progress=False)["clean_acc"])
    sizes = {"autoattack": cfg.n_aa, "square": cfg.n_square}
    for eps in progress_bar(cfg.strong_eps, len(cfg.strong_eps), "strong attacks"):
        runs = strong_attacks(model, eps, loss_fn, robust, nonsense_class, steps=cfg.pgd_steps,
                              restarts=cfg.pgd_restarts, seed=cfg.seed, cascade=cfg.autoattack if cfg.n_aa else None,
                              square_queries=cfg.square_queries if cfg.n_square else 0)
        res, outcomes = {}, []
        for name, run in runs.items():
            n = min(sizes.get(name, len(x)), len(x))
            rec = _Recorded(model, run, rule)
            r = evaluate(model, x.head(n), {name: rec}, predict=rule, batch_size=cfg.eval_batch, device=dev,
                         progress=False)
            e = r["attacks"][name]
            res[name] = {"acc": e["robust_acc"], "wrong_class": rec.wrong / max(n, 1), "n": n,
                         "outcome": e["outcome"]}
            outcomes.append(_as_bool(e["outcome"], n))
        m = min(len(o) for o in outcomes)
        w = worst_case([o[:m] for o in outcomes])
        res["worst"] = {"acc": float(w.mean()), "n": m, "outcome": encode_outcomes(w)}
        out[str(eps)] = res
    return out


def _as_bool(outcome: str, n: int) -> np.ndarray:
    from symact.evaluation import decode_outcomes

    return decode_outcomes(outcome, n)


def train_network(cfg: RobustConfig, checkpoint=None):
    """Train the network of ``cfg`` (saf.txt Tables 1/3, the hybrid loss and the tricks of Section 5):
    ``(model in eval mode, loss_fn, history)``. ``checkpoint``: a file for resumable training."""
    if cfg.dataset not in MODELS:
        raise ValueError(f"dataset must be one of {sorted(MODELS)}, got {cfg.dataset!r}")
    parse_model(cfg.model)
    seed_everything(cfg.seed)
    dev = get_device()
    train_set = data.load(cfg.dataset).head(cfg.n_train)
    model = build_model(cfg.dataset, cfg.model)
    loss_fn = model_loss(cfg.dataset, cfg.model)
    mean_image = train_set.x.float().mean(0) / 255
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer="sgd", lr=cfg.lr, momentum=0.9,
                       weight_decay=cfg.weight_decay, schedule=cfg.schedule, seed=cfg.seed)
    hist = train(model, train_set, tcfg, loss_fn=loss_fn, device=dev,
                 batch_fn=training_tricks(cfg, model, loss_fn, mean_image), checkpoint=checkpoint)
    return model.eval(), loss_fn, hist


def robust_run(cfg: RobustConfig) -> dict:
    """Train one network of saf.txt Tables 1/3 and evaluate it as Section 5 does, then with strong attacks."""
    base, flags = parse_model(cfg.model)
    model, loss_fn, hist = train_network(cfg)
    dev = get_device()
    test_set = data.load(cfg.dataset, train=False)
    robust, nonsense_class = base != "plain", "m" in flags
    return {"data": test_set.description, "history": hist, "robust": robust, "nonsense_class": nonsense_class,
            "paper_eval": paper_eval(model, test_set, cfg, loss_fn, robust, nonsense_class, dev),
            "strong": strong_eval(model, test_set, cfg, loss_fn, robust, nonsense_class, dev)}


def _robust_configs(dataset: str, model: str) -> dict:
    base = RobustConfig(dataset=dataset, model=model, n_examples=3 if model in ("plain", "mrelu-r-m") else 0)
    if dataset == "cifar10":
        robust = parse_model(model)[0] != "plain"
        base = dataclasses.replace(base, epochs=90 if robust else 45, lr=0.05, weight_decay=1e-4, schedule="step",
                                   flip=True, adv_beta=0.01, betas=BETAS["cifar10"], strong_eps=(0.01, 0.02, 0.03))
    smoke = dataclasses.replace(base, epochs=1, n_train=512, n_eval=64, strong_eps=base.strong_eps[-1:], n_strong=16,
                                pgd_steps=3, pgd_restarts=1, n_aa=0, n_square=16, square_queries=20,
                                n_examples=min(base.n_examples, 1), eval_batch=64)
    quick = dataclasses.replace(base, epochs=3, n_train=10000, n_eval=1000,
                                strong_eps=(base.strong_eps[0], base.strong_eps[-1]), n_strong=100, pgd_steps=10,
                                pgd_restarts=1, n_aa=0, n_square=100, square_queries=300, eval_batch=200)
    if dataset == "mnist":  # the stored paper results ran torchattacks' 10-iteration cascade (issue 29 reruns them)
        base = dataclasses.replace(base, autoattack="cascade-10")
    return {"smoke": smoke, "quick": quick, "paper": base}


def protocol_table(results: dict, dataset: str):
    """How each stored ``robust-<dataset>-<model>`` result's run differs from the paper profile, from the config
    of the profile it was stored at: a :class:`pandas.DataFrame` with ``model``, ``profile`` and ``differences``
    (empty at the paper profile). ``results``: ``{(dataset, model): stored result}``."""
    import pandas as pd

    rows = []
    for model in MODELS[dataset]:
        res = results.get((dataset, model))
        if res is None:
            continue
        prof = res.provenance["profile"]
        paper, ran = ROBUST[(dataset, model)].configs["paper"], ROBUST[(dataset, model)].configs[prof]
        diffs = []
        if ran.epochs != paper.epochs:
            diffs.append(f"{ran.epochs} epochs instead of {paper.epochs}")
        if ran.n_train != paper.n_train:
            diffs.append(f"{ran.n_train:,} training images instead of all")
        if ran.n_eval != paper.n_eval:
            diffs.append(f"{ran.n_eval:,} evaluation images instead of {paper.n_eval:,}")
        if (ran.n_strong, ran.pgd_steps, ran.pgd_restarts) != (paper.n_strong, paper.pgd_steps, paper.pgd_restarts):
            diffs.append(f"strong attacks on {ran.n_strong:,} images instead of {paper.n_strong:,}, "
                         f"PGD-{ran.pgd_steps}x{ran.pgd_restarts} instead of PGD-{paper.pgd_steps}x{paper.pgd_restarts}")
        if ran.n_aa == 0 and paper.n_aa:
            diffs.append(f"no {attacks.attack_label(paper.autoattack)}")
        rows.append({"model": model, "profile": prof, "epochs": ran.epochs, "differences": "; ".join(diffs)})
    return pd.DataFrame(rows, columns=["model", "profile", "epochs", "differences"])


def paper_gaps(results: dict, models: tuple[str, ...] = ("plain", "mrelu-r-m")):
    """Our error minus the paper's (Tables 2 and 4), averaged over the columns the paper prints, per data set,
    kind of sample and model (a description of the gap, not a test): a :class:`pandas.DataFrame` with
    ``dataset``, ``kind``, ``model``, ``profile``, ``columns`` (how many were averaged) and ``gap``."""
    import pandas as pd

    rows = []
    for (ds, kind, model), paper in PAPER_ERRORS.items():
        res = results.get((ds, model))
        if model not in models or res is None:
            continue
        ours = np.asarray(res["paper_eval"][kind]["error"])
        k = min(len(ours), len(paper))
        rows.append({"dataset": ds, "kind": kind, "model": model, "profile": res.provenance["profile"],
                     "columns": k, "gap": float(np.mean(ours[:k] - np.asarray(paper[:k])))})
    return pd.DataFrame(rows, columns=["dataset", "kind", "model", "profile", "columns", "gap"])


#: every registered robust-CNN experiment, keyed (dataset, model)
ROBUST = {}
for _ds, _models in MODELS.items():
    for _m in _models:
        ROBUST[(_ds, _m)] = experiment("saf", f"robust-{_ds}-{_m}", _robust_configs(_ds, _m))(robust_run)


# --------------------------------------------------------------------------------------------
# Figs. 3 and 4: feature statistics of a plain LeNet-5
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureConfig:
    """A plain LeNet-5 (saf.txt Table 1) trained on MNIST as in ``robust-mnist-plain``, then probed.

    ``channels``: the second-convolution channels of Fig. 3, read at the centre
    entry ``(4, 4)`` of its 8x8 map; ``n_test`` test images and ``n_nonsense``
    Gaussian-noise nonsense samples. Correlations (Fig. 4) over the test images
    at the centre entry of each convolution and over the first ``fc_units``
    units of fc1 and all of fc2 (pre-activation outputs).
    """

    epochs: int = 20
    n_train: int | None = None
    batch_size: int = 100
    lr: float = 0.01
    weight_decay: float = 5e-4
    channels: tuple[int, ...] = (0, 1, 2, 3)
    n_test: int = 10000
    n_nonsense: int = 500
    fc_units: int = 50
    seed: int = 0


def _rounded(t: torch.Tensor, digits: int = 4) -> list:
    """``t`` as nested lists rounded to ``digits`` decimals (keeps stored results small)."""
    return np.round(t.detach().double().cpu().numpy(), digits).tolist()


def _layer_outputs(model: LeNet5, x: torch.Tensor, batch: int = 1000) -> dict:
    """Pre-activation outputs of cv1, cv2 (centre entries), fc1 and fc2 for images ``x``."""
    cv1, cv2 = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    layers = {"cv1": cv1, "cv2": cv2, "fc1": model.hidden[0], "fc2": model.classifier}
    got: dict[str, list] = {k: [] for k in layers}
    hooks = [m.register_forward_hook(lambda mod, inp, out, k=k: got[k].append(out.detach()))
             for k, m in layers.items()]
    try:
        with torch.no_grad():
            logits = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    finally:
        for h in hooks:
            h.remove()
    out = {k: torch.cat(v) for k, v in got.items()}
    out["cv1"] = out["cv1"][:, :, out["cv1"].shape[2] // 2, out["cv1"].shape[3] // 2]
    out["cv2"] = out["cv2"][:, :, 4, 4]
    out["logits"] = logits
    return out


@experiment(
    "saf",
    "features",
    {
        "smoke": FeatureConfig(epochs=1, n_train=512, n_test=256, n_nonsense=64),
        "quick": FeatureConfig(epochs=3, n_train=10000, n_test=5000),
        "paper": FeatureConfig(),
    },
)
def features(cfg: FeatureConfig) -> dict:
    """Train a plain LeNet-5 and collect the statistics of saf.txt Figs. 3 and 4."""
    seed_everything(cfg.seed)
    dev = get_device()
    train_set = data.load("mnist").head(cfg.n_train)
    test_x, test_y = data.load("mnist", train=False).head(cfg.n_test).tensors(dev)
    model = build_model("mnist", "plain")
    train(model, train_set, TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=0.9,
                                        weight_decay=cfg.weight_decay, seed=cfg.seed), device=dev)
    model.eval()
    ns = nonsense_samples(cfg.n_nonsense, test_x.shape[1:], torch.Generator().manual_seed(cfg.seed + 3)).to(dev)
    clean, noise = _layer_outputs(model, test_x), _layer_outputs(model, ns)
    out = {"test_acc": float((clean["logits"].argmax(1) == test_y).float().mean()),
           "nonsense_confidence": float(noise["logits"].softmax(1).amax(1).mean()),
           "nonsense_confident_frac": float((noise["logits"].softmax(1).amax(1) > 0.9).float().mean()),
           "cv2_clean": _rounded(clean["cv2"][:, list(cfg.channels)]),
           "cv2_nonsense": _rounded(noise["cv2"][:, list(cfg.channels)]),
           "channels": list(cfg.channels), "layers": {}}
    for name in ("cv1", "cv2", "fc1", "fc2"):
        c, n = clean[name], noise[name]
        if name == "fc1":
            c, n = c[:, :cfg.fc_units], n[:, :cfg.fc_units]
        corr = torch.corrcoef(c.T.double()).nan_to_num(0.0)
        off = corr[~torch.eye(len(corr), dtype=torch.bool, device=corr.device)].abs()
        lo, hi = torch.quantile(c.double(), 0.005, dim=0), torch.quantile(c.double(), 0.995, dim=0)
        outside = ((n < lo) | (n > hi)).double().mean(1)            # per nonsense sample, fraction of units
        mu, sd = c.mean(0), c.std(0).clamp_min(1e-12)
        z = ((c - mu) / sd).double()
        out["layers"][name] = {
            "corr": _rounded(corr), "mean_abs_offdiag_corr": float(off.mean()),
            "skew": (z.pow(3).mean(0)).cpu().tolist(), "excess_kurtosis": (z.pow(4).mean(0) - 3).cpu().tolist(),
            "nonsense_outside_99": float(outside.mean()),
            "nonsense_mean_abs_z": float(((n - mu) / sd).abs().mean()),
        }
    return out
