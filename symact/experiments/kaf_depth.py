"""Exploding gradients in deep KAF ResNets, explained and fixed (the KAF chapter's section ``kaf-depth``).

The finished thesis (``../shared/papers/kaf-thesis-results.md``, "Exploding gradients in deep KAF ResNets")
trained He et al.'s CIFAR ResNets (:class:`symact.models.CifarResNet`) with KAFs: ResNet-20 reached 90.07 %,
ResNet-56 stayed at chance whatever the learning rate, KAF parameters or initialisation, with gradient norms
NaN in the first layers from the first iteration. This module measures why and tests a fix.

**Measurement** (:func:`gradient_profile`): one forward and backward pass records, for every activation
layer, the squared gradient norm at its input and output (their ratio is the layer's *measured backward
gain*), the empirical ``E[f'(s)^2]`` on its actual inputs and the theory's prediction for Gaussian inputs
with the layer's per-channel moments (:func:`symact.theory_kaf.kaf_gaussian_moments`,
:func:`symact.theory_kaf.relu_gaussian_moments`); for every basic block, the squared gradient norm at its
input and output (their ratio is the *block factor*) and the mean-field prediction :func:`block_factor`; and
every convolution's weight-gradient norm (what the thesis logged).

**Theory of the block** (:func:`block_factor`, derived in ``book/kaf.md``, section ``kaf-depth``). A block
computes ``y = f2(x + BN2(W2 f1(BN1(W1 x))))``. Backward, the batch normalisations cancel the weights' scale
and the squared gradient norm at the block's input is ``B = G2 (1 + beta^2 chi1 / V_x)`` times the one at its
output: ``G2 = E[f2'(s2)^2]`` the gain of the activation on the shortcut path, ``chi1 = gamma1^2 G1 / Var
f1(s1)`` the batch-normalised factor of the branch's activation (the chapter's depth paragraph),
``beta^2`` the mean squared scale of BN2, and ``V_x`` the per-unit variance of the block's input. A random
KAF has a small output variance for its slope, so ``V_x`` (the previous block's ``Var f2``) is small and
``chi1`` large: ``B`` is far above one at every block, and the product over 27 blocks explodes.

**The fix** (arm ``"kaf-fix"``): (1) a gain-preserving initialisation of the coefficients, the kernel ridge
fit to ELU (:func:`symact.activations.kaf.kernel_ridge_init`), whose gain on the shortcut path is ELU's and
whose ``chi`` is its target's; (2) a residual-branch scale ``beta = 1/sqrt(N)`` for ``N`` blocks (the last
batch normalisation of each block initialised at ``beta``, ``CifarResNet(branch_scale=...)``), which bounds
``prod_k (1 + beta^2 c) <= exp(c)``. The arm ``"kaf-elu"`` has (1) alone.

Experiments (chapter ``kaf``):

- ``kaf-depth-gradients`` (:func:`kaf_depth_gradients`): per (depth, arm, bandwidth rule), the profile at
  initialisation and over the first iterations of SGD;
- ``kaf-depth-training`` (:func:`kaf_depth_training`): ResNet-20 and -56 with ReLU and KAF, and KAF-56 with
  the fix, trained (paper: the thesis's protocol; zoo ``kaf/kaf-depth-training``): loss and accuracy curves,
  test accuracy with per-image outcomes.

Analysis from stored results, as pandas DataFrames: :func:`layer_table`, :func:`block_table`,
:func:`depth_summary`, :func:`iteration_table`, :func:`training_curves`, :func:`training_summary`; the chapter's
words and tables built from them: :func:`net_label`, :func:`gradient_glue`, :func:`first_nonfinite`,
:func:`training_glue`, :func:`training_display` and :func:`training_markdown`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from symact import data, report, theory_kaf
from symact.attacks import progress_enabled
from symact.activations import factory
from symact.activations.kaf import KAF, dictionary
from symact.claims import claim
from symact.device import get_device, seed_everything
from symact.evaluation import decode_outcomes, encode_outcomes
from symact.experiments import verdicts
from symact.models import CifarResNet
from symact.results import Unit, experiment, gpu_resources

__all__ = ["ARMS", "ARM_LABELS", "GRADIENT_NETS", "NET_LABELS", "RULE_LABELS", "THESIS_ACCURACY", "GradientsConfig",
           "TrainingConfig", "block_factor", "block_table", "depth_summary", "first_nonfinite", "fix_branch_scale",
           "gradient_glue", "gradient_profile", "iteration_table", "kaf_depth_gradients", "kaf_depth_training",
           "kaf_resnet", "layer_table", "net_label", "network_spec", "training_curves", "training_display",
           "training_glue", "training_markdown", "training_summary"]

#: the networks compared: activation, KAF initialisation, residual-branch scale
ARMS = {
    "relu": {"act": "relu"},
    "kaf": {"act": "kaf", "init": "normal"},       # the thesis's "KAF": alpha ~ N(0, 0.3^2)
    "kaf-elu": {"act": "kaf", "init": "elu"},      # fix (1) alone: kernel ridge fit to ELU
    "kaf-fix": {"act": "kaf", "init": "elu", "branch_scale": "1/sqrt(blocks)"},  # fixes (1) and (2)
}
ARM_LABELS = {"relu": "ReLU", "kaf": "KAF", "kaf-elu": "KAF, ELU init", "kaf-fix": "KAF, fixed"}

#: the finished thesis's test accuracies (kaf-thesis-results.md, "Exploding gradients in deep KAF ResNets";
#: KAF-56 "does not learn at all (chance accuracy after 10 epochs)": 0.10), by (arm, depth)
THESIS_ACCURACY = {("relu", 20): 0.918, ("relu", 56): 0.9322, ("kaf", 20): 0.9007, ("kaf", 56): 0.10}


def _sig(x, digits: int = 5):
    """A float rounded to ``digits`` significant digits, None if not finite (JSON)."""
    x = float(x)
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


# --------------------------------------------------------------------------------------------------- networks


def fix_branch_scale(depth: int) -> float:
    """``beta = 1/sqrt(N)`` for the ``N = 3 (depth - 2)/6`` blocks of a CIFAR ResNet of ``depth`` layers."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}")
    return 1.0 / math.sqrt(3 * (depth - 2) // 6)


def network_spec(depth: int, arm: str, bandwidth: str = "thesis", D: int = 20, boundary: float = 3.0) -> dict:
    """The JSON arguments of :func:`kaf_resnet` for ``arm`` (a key of :data:`ARMS`) at ``depth``."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {list(ARMS)}")
    a = ARMS[arm]
    act_kwargs = {} if a["act"] == "relu" else {"D": D, "boundary": boundary, "bandwidth": bandwidth,
                                                "init": a["init"]}
    scale = fix_branch_scale(depth) if a.get("branch_scale") else None
    return {"depth": depth, "act": a["act"], "act_kwargs": act_kwargs, "branch_scale": scale}


def kaf_resnet(depth: int = 20, act: str = "relu", act_kwargs: Mapping | None = None,
               branch_scale: float | None = None) -> CifarResNet:
    """:class:`~symact.models.CifarResNet` (shortcut A) with the registry activation ``act`` built with
    ``act_kwargs``: the builder the zoo imports (``"symact.experiments.kaf_depth:kaf_resnet"``)."""
    return CifarResNet(depth, act=factory(act, **dict(act_kwargs or {})), branch_scale=branch_scale)


# --------------------------------------------------------------------------------------------------- theory


def block_factor(gain2: float, chi1: float, var_x: float, beta2: float = 1.0) -> float:
    """The mean-field factor of a basic block's squared gradient norm, ``B = G2 (1 + beta^2 chi1 / V_x)``.

    ``gain2``: ``E[f2'(s2)^2]`` of the activation after the addition; ``chi1``: ``gamma1^2 E[f1'(s1)^2] /
    Var f1(s1)`` of the branch's activation; ``var_x``: per-unit variance of the block's input; ``beta2``: the
    mean squared scale of the block's last batch normalisation (``book/kaf.md``, proposition
    ``kaf-prop-block``).
    """
    for name, v in (("gain2", gain2), ("chi1", chi1), ("beta2", beta2)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if not (math.isfinite(var_x) and var_x > 0):
        raise ValueError(f"var_x must be a finite number > 0, got {var_x!r}")
    return float(gain2 * (1.0 + beta2 * chi1 / var_x))


def _channel_moments(s: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of ``s`` (N, C, ...) over every other dimension (float64)."""
    dims = [0, *range(2, s.dim())]
    var, mean = torch.var_mean(s.detach(), dim=dims, unbiased=False)
    return mean.double().cpu().numpy(), var.double().cpu().numpy()


def _predicted(act: nn.Module, mean: np.ndarray, var: np.ndarray) -> dict | None:
    """Gaussian-theory gain, mean and second moment per channel of ``act`` (ReLU or a per-channel KAF), or None
    (another activation, or a layer whose inputs are no longer finite: a diverged network)."""
    if not (np.isfinite(mean).all() and np.isfinite(var).all()):
        return None
    var = np.maximum(var, 1e-12)
    if isinstance(act, nn.ReLU) or type(act).__name__ == "ReLU":
        return theory_kaf.relu_gaussian_moments(mean, var)
    if isinstance(act, KAF) and act.alpha.dim() == 2:
        d, g = dictionary(act.D, act.boundary, act.bandwidth)
        return theory_kaf.kaf_gaussian_moments(act.alpha.detach().cpu().double().numpy(), d, g, mean, var)
    return None


def _empirical_gain(act: nn.Module, s: torch.Tensor) -> float:
    """``mean f'(s)^2`` over the elements of ``s`` (the activation is elementwise: autograd of ``f(s).sum()``)."""
    x = s.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(act(x).sum(), x)
    return float(g.double().pow(2).mean())


# --------------------------------------------------------------------------------------------------- measurement


def _sq(t: torch.Tensor | None) -> float:
    """The squared norm (float32, recomputed in float64 only where float32 overflows)."""
    if t is None:
        return float("nan")
    v = float(torch.linalg.vector_norm(t.detach())) ** 2
    if not math.isfinite(v) and torch.isfinite(t).all():
        v = float(t.detach().double().pow(2).sum())
    return v


def gradient_profile(model: CifarResNet, x: torch.Tensor, y: torch.Tensor, predict: bool = True,
                     set_grads: bool = False) -> dict:
    """One forward and backward pass of ``model`` (in its current mode) on ``(x, y)`` with the cross-entropy
    loss, measured layer by layer. The parameters' ``.grad`` are left untouched unless ``set_grads``, which
    stores every parameter's gradient there (as ``loss.backward()`` would, for an optimiser step).

    Returns a dict:

    - ``loss``;
    - ``activations``: per activation layer in forward order (``stem``, then ``b<k>.act1``, ``b<k>.act2``):
      ``grad_in`` and ``grad_out`` (squared gradient norms at the activation's input ``s`` and output
      ``f(s)``), ``gain`` (their ratio, the measured backward gain), ``empirical_gain`` (``mean f'(s)^2`` over
      the batch), ``predicted_gain`` (the Gaussian theory with the layer's per-channel moments, mean over
      channels; None for an activation other than ReLU and per-channel KAF), ``pre_mean``, ``pre_var`` (mean
      over channels of the per-channel mean and variance of ``s``), ``post_var`` (likewise for ``f(s)``);
    - ``blocks``: per basic block ``k``: ``grad_in``, ``grad_out`` (squared norms at its input and output),
      ``factor`` (their ratio), ``downsample`` (the block changes shape), ``var_x`` (per-unit variance of its
      input, mean over channels), ``gain2`` and ``chi1`` (predicted, as in :func:`block_factor`), ``beta2``
      (mean squared weight of its last BN) and ``predicted`` (:func:`block_factor`; None where a gain has no
      prediction);
    - ``convs``: the gradient norm of every convolution's weight, in forward order, and ``fc`` the dense
      layer's.

    ``predict=False`` skips the theory (the per-iteration records of :func:`kaf_depth_gradients`).
    """
    if not isinstance(model, CifarResNet):
        raise TypeError(f"gradient_profile takes a symact.models.CifarResNet, got {type(model).__name__}")
    if x.dim() != 4 or y.dim() != 1 or len(x) != len(y) or len(x) < 2:
        raise ValueError(f"expected images (N, C, H, W) and labels (N,) with N >= 2, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    acts = [("stem", model.stem[-1])]
    for k, b in enumerate(model.layers):
        acts += [(f"b{k}.act1", b.act1), (f"b{k}.act2", b.act2)]
    seen: dict = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, (inp[0], out)))
             for name, m in acts]
    hooks += [b.register_forward_hook(lambda mod, inp, out, k=k: seen.__setitem__(f"block{k}", (inp[0], out)))
              for k, b in enumerate(model.layers)]
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(x), y)
            tensors, index = [], {}
            for key, (i, o) in seen.items():
                index[key] = (len(tensors), len(tensors) + 1)
                tensors += [i, o]
            convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
            params = [p for p in model.parameters() if p.requires_grad] if set_grads else []
            grads = torch.autograd.grad(loss, tensors + convs + [model.classifier.weight] + params,
                                        allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
    gt = grads[:len(tensors)]
    gp = grads[len(tensors):len(tensors) + len(convs) + 1]
    for p, g in zip(params, grads[len(tensors) + len(convs) + 1:]):
        p.grad = None if g is None else g.detach()

    rows, by_name = [], {}
    for name, act in acts:
        i, o = index[name]
        s, a = tensors[i], tensors[o]
        gin, gout = _sq(gt[i]), _sq(gt[o])
        m, v = _channel_moments(s)
        _, vpost = _channel_moments(a)
        pred = _predicted(act, m, v) if predict else None
        row = {"layer": name, "grad_in": _sig(gin), "grad_out": _sig(gout),
               "gain": _sig(gin / gout) if gout > 0 else None,
               "empirical_gain": _sig(_empirical_gain(act, s)) if predict else None,
               "predicted_gain": _sig(np.mean(pred["gain"])) if pred is not None else None,
               "pre_mean": _sig(m.mean()), "pre_var": _sig(v.mean()), "post_var": _sig(vpost.mean())}
        rows.append(row)
        by_name[name] = (row, pred, m, v)

    blocks = []
    for k, b in enumerate(model.layers):
        i, o = index[f"block{k}"]
        gin, gout = _sq(gt[i]), _sq(gt[o])
        _, vx = _channel_moments(tensors[i])
        var_x = float(vx.mean())
        beta2 = float(b.bn2.weight.detach().double().pow(2).mean())
        rec = {"block": k, "grad_in": _sig(gin), "grad_out": _sig(gout),
               "factor": _sig(gin / gout) if gout > 0 else None,
               "downsample": len(b.shortcut) > 0, "var_x": _sig(var_x), "beta2": _sig(beta2),
               "gain2": None, "chi1": None, "predicted": None}
        _, p1, _, _ = by_name[f"b{k}.act1"]
        _, p2, _, _ = by_name[f"b{k}.act2"]
        if predict and p1 is not None and p2 is not None:
            g1 = np.asarray(p1["gain"]) * b.bn1.weight.detach().double().pow(2).cpu().numpy()
            var1 = np.asarray(p1["second"]) - np.asarray(p1["mean"]) ** 2
            chi1 = float(g1.mean() / max(var1.mean(), 1e-300))
            gain2 = float(np.mean(p2["gain"]))
            rec.update(gain2=_sig(gain2), chi1=_sig(chi1))
            if var_x > 0 and math.isfinite(chi1) and math.isfinite(gain2):
                rec["predicted"] = _sig(block_factor(gain2, chi1, var_x, beta2))
        blocks.append(rec)
    return {"loss": _sig(float(loss.detach())), "activations": rows, "blocks": blocks,
            "convs": [_sig(math.sqrt(_sq(g))) for g in gp[:-1]], "fc": _sig(math.sqrt(_sq(gp[-1])))}


# --------------------------------------------------------------------------------------------------- (a) gradients


@dataclass(frozen=True)
class GradientsConfig:
    """Per-layer gradients at initialisation and over the first iterations.

    For each ``depth`` and each ``(arm, bandwidth rule)`` of ``nets`` (:data:`ARMS`; ReLU's rule ``"-"``): a
    network seeded with
    ``seed``, in training mode (batch statistics), on mini-batches of ``batch_size`` CIFAR-10 training images
    (the first ``iterations * batch_size`` of a fixed shuffle); :func:`gradient_profile` before the first step
    and after ``iterations`` steps of SGD (``lr``, momentum 0.9, ``weight_decay``, the thesis's learning rate),
    and at every step the loss, every convolution's gradient norm and every block's squared gradient norms.
    KAFs: ``D`` points on ``[-boundary, boundary]``.
    """

    depths: tuple[int, ...] = (20, 56)
    nets: tuple[tuple[str, str], ...] = (("relu", "-"), ("kaf", "kafnets"), ("kaf", "thesis"), ("kaf-elu", "kafnets"),
                                         ("kaf-elu", "thesis"), ("kaf-fix", "kafnets"), ("kaf-fix", "thesis"))
    batch_size: int = 128
    iterations: int = 20
    lr: float = 0.1
    weight_decay: float = 1e-4
    seed: int = 0
    D: int = 20
    boundary: float = 3.0


def _check_arms(arms, depths) -> None:
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; expected some of {list(ARMS)}")
    for d in depths:
        fix_branch_scale(d)  # checks the depth


def _nets(cfg: GradientsConfig) -> list[tuple[str, int, str, str]]:
    """``(key, depth, arm, bandwidth)`` of every network of ``cfg`` (ReLU: bandwidth ``"-"``)."""
    out = []
    for depth in cfg.depths:
        for arm, bw in cfg.nets:
            out.append((f"{arm}-{bw}-{depth}" if bw != "-" else f"{arm}-{depth}", depth, arm, bw))
    return out


def _sgd(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)


def _gradients_unit(cfg: GradientsConfig, depth: int, arm: str, bandwidth: str) -> dict:
    """One network of :class:`GradientsConfig`: profiles at initialisation and after the first iterations."""
    seed_everything(cfg.seed)
    spec = network_spec(depth, arm, bandwidth if bandwidth != "-" else "thesis", cfg.D, cfg.boundary)
    model = kaf_resnet(**spec)
    dev = get_device()
    model.to(dev).train()
    train_set = data.load("cifar10", train=True).sample(cfg.batch_size * max(cfg.iterations, 1), seed=cfg.seed)
    batches = list(train_set.batches(cfg.batch_size, False, None, dev))
    opt = _sgd(model, cfg.lr, cfg.weight_decay)
    steps, first = [], None
    start = time.perf_counter()
    for it in range(cfg.iterations + 1):
        x, y = batches[min(it, len(batches) - 1)]
        prof = gradient_profile(model, x, y, predict=it in (0, cfg.iterations), set_grads=True)
        if it == 0:
            first = prof
        steps.append({"iteration": it, "loss": prof["loss"], "convs": prof["convs"],
                      "blocks_in": [b["grad_in"] for b in prof["blocks"]],
                      "gains": [a["gain"] for a in prof["activations"]]})
        if it == cfg.iterations:
            break
        if all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters()):
            opt.step()  # a step with non-finite gradients would only spread NaN: the record shows it
    return {"depth": depth, "arm": arm, "bandwidth": bandwidth, "spec": spec, "init": first, "last": prof,
            "steps": steps, "seconds": round(time.perf_counter() - start, 2)}


def _gradients_units(cfg: GradientsConfig) -> list[Unit]:
    _check_arms([a for a, _ in cfg.nets], cfg.depths)
    for arm, bw in cfg.nets:
        if (bw == "-") != (ARMS[arm]["act"] == "relu") or (bw != "-" and bw not in ("kafnets", "thesis")):
            raise ValueError(f"net ({arm!r}, {bw!r}): a KAF arm needs the bandwidth rule 'kafnets' or 'thesis', "
                             "ReLU needs '-'")
    if len(set(cfg.nets)) != len(cfg.nets) or len(set(cfg.depths)) != len(cfg.depths):
        raise ValueError(f"nets and depths must be without repeats, got {cfg.nets} and {cfg.depths}")
    if cfg.iterations < 0 or cfg.batch_size < 2:
        raise ValueError(f"need iterations >= 0 and batch_size >= 2, got {cfg.iterations} and {cfg.batch_size}")
    return [Unit(key, _gradients_unit, (cfg, depth, arm, bw), resources=gpu_resources())
            for key, depth, arm, bw in _nets(cfg)]


# Cost on one CPU thread (this project's machines, quick): a profile of ResNet-56 on 128 images takes about
# 2 s with the kafnets rule (native kernel) and 7 s with the thesis's (torch kernel).
@experiment("kaf", "kaf-depth-gradients", {
    "smoke": GradientsConfig(depths=(8, 14), nets=(("relu", "-"), ("kaf", "kafnets"), ("kaf-fix", "kafnets")),
                             batch_size=8, iterations=1),
    "quick": GradientsConfig(nets=(("relu", "-"), ("kaf", "kafnets"), ("kaf", "thesis"), ("kaf-elu", "kafnets"),
                                   ("kaf-fix", "kafnets"), ("kaf-fix", "thesis")), batch_size=32, iterations=10),
    "paper": GradientsConfig(batch_size=128, iterations=50),
}, units=_gradients_units, converged=("quick", "paper"))
def kaf_depth_gradients(cfg: GradientsConfig, outputs: dict) -> dict:
    """Per-layer gradients of CIFAR ResNets with ReLU and KAFs (:class:`GradientsConfig`), one unit per
    network: ``networks`` by key (``<arm>-<bandwidth>-<depth>``, ReLU ``relu-<depth>``), each with ``depth``,
    ``arm``, ``bandwidth``, ``spec`` (:func:`kaf_resnet`'s arguments), ``init`` and ``last``
    (:func:`gradient_profile` before the first and after the last step) and ``steps`` (per iteration: loss,
    convolution gradient norms, blocks' squared input gradient norms, measured gains). A measurement at
    initialisation, not a training: every profile counts as converged."""
    nets = {key: outputs[key] for key, *_ in _nets(cfg)}
    return {"data": data.load("cifar10", train=True).description, "networks": nets}


# --------------------------------------------------------------------------------------------------- (b) training


@dataclass(frozen=True)
class TrainingConfig:
    """Training the ResNets (paper: the finished thesis's protocol, kaf-thesis-results.md, "Exploding
    gradients in deep KAF ResNets": standard training, ``epochs`` 150, batch 128, learning rate 0.1,
    augmentation by 4-pixel padding, random 32x32 crop and horizontal flip).

    What the thesis leaves open, and what we chose: SGD with momentum 0.9 and weight decay ``1e-4`` (He et al.
    2016), the learning rate divided by 10 at half and three quarters of training (He et al.'s 32k and 48k of
    64k iterations, scaled), shortcut A, PyTorch's batch normalisation. ``runs``: ``(arm, depth)`` pairs
    (:data:`ARMS`), each trained once per seed in ``seeds``; ``iterations`` (if given) replaces ``epochs``; the
    first ``n_train`` training images (all if None), test accuracy on the first ``n_test`` test images at
    ``evals`` evenly spaced points (the last at the end, with per-image outcomes); the training loss and
    accuracy are averaged over windows of ``log_every`` iterations. A run whose loss becomes NaN or infinite
    stops there (``diverged_at``).
    """

    runs: tuple[tuple[str, int], ...] = (("relu", 20), ("relu", 56), ("kaf", 20), ("kaf", 56), ("kaf-fix", 56))
    seeds: tuple[int, ...] = (0, 1, 2)
    bandwidth: str = "thesis"
    epochs: int = 150
    iterations: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 1e-4
    augment: bool = True
    n_train: int | None = None
    n_test: int = 10000
    evals: int = 30
    log_every: int = 50
    D: int = 20
    boundary: float = 3.0


def _lr(cfg: TrainingConfig, it: int, total: int) -> float:
    frac = it / total
    return cfg.lr * (0.1 ** ((frac >= 0.5) + (frac >= 0.75)))


@torch.no_grad()
def _test(model: nn.Module, test, dev) -> np.ndarray:
    model.eval()
    out = [model(x).argmax(1) == y for x, y in test.batches(500, False, None, dev)]
    model.train()
    return torch.cat(out).cpu().numpy()


def _train_unit(cfg: TrainingConfig, arm: str, depth: int, seed: int, checkpoint=None) -> dict:
    """One network of :class:`TrainingConfig`, trained with SGD; resumable from ``checkpoint`` (a folder) at
    every epoch; its weights go to the zoo at the paper profile."""
    from symact.data import random_crop_flip

    gen = seed_everything(seed)
    spec = network_spec(depth, arm, cfg.bandwidth, cfg.D, cfg.boundary)
    model = kaf_resnet(**spec)
    dev = get_device()
    model.to(dev).train()
    train_set = data.load("cifar10", train=True).head(cfg.n_train)
    test_set = data.load("cifar10", train=False).head(cfg.n_test)
    per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.iterations if cfg.iterations is not None else cfg.epochs * per_epoch
    at = sorted({round(total * (i + 1) / cfg.evals) for i in range(cfg.evals)})
    opt = _sgd(model, cfg.lr, cfg.weight_decay)
    hist = {"iteration": [], "loss": [], "acc": [], "lr": [], "grad_first": [], "eval_iteration": [], "test_acc": []}
    it, diverged, window = 0, None, []
    ckpt = None if checkpoint is None else checkpoint / "train.ckpt"
    if ckpt is not None and ckpt.exists():
        st = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        it, hist = st["iteration"], st["history"]
    first_conv = model.stem[1].weight
    start = time.perf_counter()
    outcome = None
    bar = tqdm(total=total, initial=it, desc=f"train {arm}-{depth}", disable=not progress_enabled(None), leave=False)
    while it < total and diverged is None:
        for x, yb in train_set.batches(cfg.batch_size, True, gen, dev, random_crop_flip if cfg.augment else None):
            lr = _lr(cfg, it, total)
            for group in opt.param_groups:
                group["lr"] = lr
            out = model(x)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lv = float(loss.detach())
            window.append((lv, float((out.argmax(1) == yb).float().mean()),
                           float(first_conv.grad.norm()) if first_conv.grad is not None else float("nan")))
            it += 1
            bar.update(1)
            if not math.isfinite(lv):
                diverged = it
            else:
                opt.step()
            if len(window) == cfg.log_every or it == total or diverged is not None:
                w = np.asarray(window)
                hist["iteration"].append(it)
                hist["loss"].append(_sig(w[:, 0].mean()))
                hist["acc"].append(_sig(w[:, 1].mean()))
                hist["grad_first"].append(_sig(np.median(w[:, 2])))
                hist["lr"].append(lr)
                window = []
            if it in at or diverged is not None:
                correct = _test(model, test_set, dev)
                hist["eval_iteration"].append(it)
                hist["test_acc"].append(_sig(correct.mean()))
                if it == total or diverged is not None:
                    outcome = correct
            if it >= total or diverged is not None:
                break
        if ckpt is not None and diverged is None and it < total:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "torch_rng": torch.get_rng_state(), "iteration": it, "history": hist}, ckpt)
    bar.close()
    if outcome is None:
        outcome = _test(model, test_set, dev)
    model.eval()
    return {"arm": arm, "depth": depth, "seed": seed, "history": hist, "iterations": total,
            "diverged_at": diverged, "test_acc": float(outcome.mean()), "outcome": encode_outcomes(outcome),
            "n_test": int(len(outcome)), "n_train": len(train_set), "seconds": round(time.perf_counter() - start, 1),
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.experiments.kaf_depth:kaf_resnet", "builder_kwargs": spec}


def _run_key(arm: str, depth: int, seed: int) -> str:
    return f"{arm}-{depth}-seed{seed}"


def _training_units(cfg: TrainingConfig) -> list[Unit]:
    _check_arms([a for a, _ in cfg.runs], [d for _, d in cfg.runs])
    if not cfg.runs or not cfg.seeds or len(set(cfg.runs)) != len(cfg.runs) or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ValueError(f"runs and seeds must be non-empty and without repeats, got {cfg.runs} and {cfg.seeds}")
    if cfg.evals < 1 or cfg.log_every < 1 or (cfg.iterations is not None and cfg.iterations < 1):
        raise ValueError(f"need evals >= 1, log_every >= 1 and iterations None or >= 1; got {cfg.evals}, "
                         f"{cfg.log_every}, {cfg.iterations}")
    return [Unit(_run_key(arm, depth, seed), _train_unit, (cfg, arm, depth, seed), checkpoint=True, zoo=True,
                 resources=gpu_resources())
            for seed in cfg.seeds for arm, depth in cfg.runs]


# quick: batch 32 with the learning rate scaled linearly from the thesis's 0.1 at batch 128 (Goyal et al. 2017;
# at 0.1 and batch 32 the ReLU ResNet-56 itself diverged in its first iterations). Cost on one CPU thread of an
# idle machine: about 0.5 s an iteration for ResNet-56 and 0.2 s for ResNet-20 (about 3 times that on this
# project's shared machine), so quick trains in a few minutes on two workers; paper is 5 x 3 networks of 150
# epochs, a GPU run (tools/device_kaf.sh).
@experiment("kaf", "kaf-depth-training", {
    "smoke": TrainingConfig(runs=(("relu", 8), ("kaf", 14), ("kaf-fix", 14)), seeds=(0,), bandwidth="kafnets",
                            iterations=3, batch_size=8, augment=False, n_train=64, n_test=16, evals=1, log_every=1),
    "quick": TrainingConfig(seeds=(0,), bandwidth="kafnets", iterations=120, batch_size=32, lr=0.025,
                            augment=False, n_train=3840, n_test=500, evals=2, log_every=10),
    "paper": TrainingConfig(),
}, units=_training_units)
def kaf_depth_training(cfg: TrainingConfig, outputs: dict) -> dict:
    """ResNets with ReLU, KAF and the fixed KAF trained (:class:`TrainingConfig`), one unit per network
    (``<arm>-<depth>-seed<seed>``, zoo ``kaf/kaf-depth-training`` at paper): ``networks`` by key with ``arm``,
    ``depth``, ``seed``, ``history`` (windowed training loss and accuracy, the first convolution's median
    gradient norm, test accuracy at the evaluation points), ``diverged_at``, ``test_acc`` and per-image
    ``outcome`` on ``n_test`` test images."""
    nets = {}
    for seed in cfg.seeds:
        for arm, depth in cfg.runs:
            key = _run_key(arm, depth, seed)
            nets[key] = {k: v for k, v in outputs[key].items() if k not in ("weights", "builder")}
    return {"data": data.load("cifar10", train=False).description, "networks": nets}


# --------------------------------------------------------------------------------------------------- tables


def _check_result(res, kind: str) -> Mapping:
    if not isinstance(res, Mapping) or "networks" not in res:
        raise ValueError(f"expected a stored kaf-depth-{kind} result (a dict with 'networks')")
    return res["networks"]


def _nan(v):
    return float("nan") if v is None else float(v)


def layer_table(res, when: str = "init"):
    """Per network and activation layer (``when``: ``"init"`` or ``"last"``, the profile after the first
    iterations): ``key``, ``depth``, ``arm``, ``bandwidth``, ``index`` (forward order), ``layer``, the measured
    ``gain``, ``empirical_gain``, ``predicted_gain``, ``pre_mean``, ``pre_var``, ``post_var``, ``grad_in``."""
    import pandas as pd

    if when not in ("init", "last"):
        raise ValueError(f"when must be 'init' or 'last', got {when!r}")
    rows = []
    for key, net in _check_result(res, "gradients").items():
        for i, a in enumerate(net[when]["activations"]):
            rows.append({"key": key, "depth": net["depth"], "arm": net["arm"], "bandwidth": net["bandwidth"],
                         "index": i, **{k: (_nan(v) if k != "layer" else v) for k, v in a.items()}})
    return pd.DataFrame(rows)


def block_table(res, when: str = "init"):
    """Per network and basic block (``when`` as :func:`layer_table`): the measured ``factor`` and the
    ``predicted`` one (:func:`block_factor`), ``gain2``, ``chi1``, ``var_x``, ``beta2``, ``downsample``,
    ``grad_in``, and ``measured_product`` / ``predicted_product``: the products of the factors of this block and
    every later one (identity blocks only; the two blocks that change shape are left out of both), i.e. the
    growth of the squared gradient norm from the last block's output back to this block's input."""
    import pandas as pd

    if when not in ("init", "last"):
        raise ValueError(f"when must be 'init' or 'last', got {when!r}")
    rows = []
    for key, net in _check_result(res, "gradients").items():
        blocks = net[when]["blocks"]
        mp, pp = 1.0, 1.0
        part = []
        for b in reversed(blocks):
            if not b["downsample"]:
                mp *= _nan(b["factor"])
                pp *= _nan(b["predicted"])
            part.append({"key": key, "depth": net["depth"], "arm": net["arm"], "bandwidth": net["bandwidth"],
                         **{k: (v if k in ("block", "downsample") else _nan(v)) for k, v in b.items()},
                         "measured_product": mp, "predicted_product": pp})
        rows += reversed(part)
    return pd.DataFrame(rows)


def depth_summary(res):
    """One row per network: ``key``, ``depth``, ``arm``, ``bandwidth``; at initialisation the gradient norm of
    the first and last convolutions (``first_conv``, ``last_conv``) and their ratio ``growth``; the products
    over the identity blocks of the measured and predicted block factors (squared norms), the median ratio
    measured/predicted over the identity blocks (``median_ratio``), the mean measured and predicted gain of the
    activation layers; over the first iterations, the largest first-convolution gradient norm
    (``max_first_conv``), whether any gradient was not finite (``nonfinite``) and the final loss."""
    import pandas as pd

    rows = []
    layers, blocks = layer_table(res), block_table(res)
    for key, net in _check_result(res, "gradients").items():
        convs = [_nan(c) for c in net["init"]["convs"]]
        b = blocks[(blocks.key == key) & ~blocks.downsample]
        lay = layers[layers.key == key]
        firsts = [_nan(s["convs"][0]) for s in net["steps"]]
        nonfinite = any(not math.isfinite(_nan(c)) for s in net["steps"] for c in s["convs"])
        rows.append({"key": key, "depth": net["depth"], "arm": net["arm"], "bandwidth": net["bandwidth"],
                     "first_conv": convs[0], "last_conv": convs[-1], "growth": convs[0] / convs[-1],
                     "measured_product": float(np.prod(b["factor"])),
                     "predicted_product": float(np.prod(b["predicted"])),
                     "median_ratio": float(np.median(b["factor"] / b["predicted"])),
                     "gain": float(lay["gain"].mean()), "predicted_gain": float(lay["predicted_gain"].mean()),
                     "max_first_conv": float(np.nanmax(firsts)) if not all(map(math.isnan, firsts)) else float("nan"),
                     "nonfinite": nonfinite, "final_loss": _nan(net["steps"][-1]["loss"])})
    return pd.DataFrame(rows)


def iteration_table(res):
    """Per network and iteration: ``loss``, ``first_conv`` and ``last_conv`` gradient norms."""
    import pandas as pd

    rows = []
    for key, net in _check_result(res, "gradients").items():
        for s in net["steps"]:
            rows.append({"key": key, "depth": net["depth"], "arm": net["arm"], "bandwidth": net["bandwidth"],
                         "iteration": s["iteration"], "loss": _nan(s["loss"]), "first_conv": _nan(s["convs"][0]),
                         "last_conv": _nan(s["convs"][-1])})
    return pd.DataFrame(rows)


def training_curves(res):
    """Per trained network and logged window: ``key``, ``arm``, ``depth``, ``seed``, ``iteration``, ``loss``,
    ``acc`` (training, over the window), ``grad_first`` (the first convolution's median gradient norm) and
    ``lr``; the test evaluations are in :func:`training_summary` and ``history["test_acc"]``."""
    import pandas as pd

    rows = []
    for key, net in _check_result(res, "training").items():
        h = net["history"]
        for i in range(len(h["iteration"])):
            rows.append({"key": key, "arm": net["arm"], "depth": net["depth"], "seed": net["seed"],
                         "iteration": h["iteration"][i], "loss": _nan(h["loss"][i]), "acc": _nan(h["acc"][i]),
                         "grad_first": _nan(h["grad_first"][i]), "lr": h["lr"][i]})
    return pd.DataFrame(rows)


def training_summary(res):
    """One row per ``(arm, depth)``: ``seeds``, mean ``test_acc`` over seeds (and ``min``, ``max``), how many
    runs diverged, the thesis's accuracy (:data:`THESIS_ACCURACY`, NaN where it reported none)."""
    import pandas as pd

    rows = []
    for net in _check_result(res, "training").values():
        rows.append({"arm": net["arm"], "depth": net["depth"], "seed": net["seed"], "test_acc": net["test_acc"],
                     "diverged": net["diverged_at"] is not None})
    df = pd.DataFrame(rows)
    out = df.groupby(["arm", "depth"], sort=False).agg(seeds=("seed", "count"), test_acc=("test_acc", "mean"),
                                                       min=("test_acc", "min"), max=("test_acc", "max"),
                                                       diverged=("diverged", "sum")).reset_index()
    out["thesis"] = [THESIS_ACCURACY.get((a, d), float("nan")) for a, d in zip(out["arm"], out["depth"])]
    return out


def _per_seed(res, arm: str, depth: int) -> dict:
    return {net["seed"]: net["test_acc"] for net in _check_result(res, "training").values()
            if net["arm"] == arm and net["depth"] == depth}


# ------------------------------------------------------------------------------- the chapter's words and tables

#: the chapter's name of each arm, and of each bandwidth rule as a suffix (``"-"``: no KAF, no rule)
NET_LABELS = {"relu": "ReLU", "kaf": "KAF", "kaf-elu": "KAF, ELU fit", "kaf-fix": "KAF, fixed"}
RULE_LABELS = {"-": "", "kafnets": " (kafnets rule)", "thesis": " (thesis rule)"}

#: the networks the chapter's text names: (glue tag, arm, bandwidth rule)
GRADIENT_NETS = (("relu", "relu", "-"), ("kaf", "kaf", "kafnets"), ("kaf-thesis", "kaf", "thesis"),
                 ("elu", "kaf-elu", "kafnets"), ("fix", "kaf-fix", "kafnets"), ("fix-thesis", "kaf-fix", "thesis"))


def net_label(arm: str, rule: str) -> str:
    """The legend's name of a network: ``net_label("kaf", "thesis") == "KAF (thesis rule)"``."""
    if arm not in NET_LABELS:
        raise ValueError(f"arm must be one of {sorted(NET_LABELS)}, got {arm!r}")
    if rule not in RULE_LABELS:
        raise ValueError(f"rule must be one of {sorted(RULE_LABELS)}, got {rule!r}")
    return NET_LABELS[arm] + RULE_LABELS[rule]


def _depths(depths: Mapping) -> Mapping:
    if not isinstance(depths, Mapping) or not depths:
        raise TypeError(f"expected a dict of depth tags to depths, such as {{'deep': 56}}, got {depths!r}")
    return depths


def gradient_glue(summary, depths: Mapping[str, int]) -> dict:
    """The chapter's glue names and values for every network of :data:`GRADIENT_NETS` at each depth of
    ``depths`` (tag -> depth, e.g. ``{"deep": 56, "shallow": 20}``), from a :func:`depth_summary`:
    ``dk-<net>-<tag>-growth``, ``-measured``, ``-predicted`` and ``-first`` as text with two significant digits
    (:data:`symact.report.MISSING` for a network not in the summary) and ``-ratio`` (the median ratio) as a
    float (NaN when missing)."""
    _depths(depths)
    missing = [c for c in ("arm", "bandwidth", "depth", "growth", "measured_product", "predicted_product",
                           "median_ratio", "first_conv") if c not in getattr(summary, "columns", ())]
    if missing:
        raise ValueError(f"expected a depth_summary DataFrame; it lacks {', '.join(missing)}")
    row = {(r.arm, r.bandwidth, r.depth): r for r in summary.itertuples()}
    out = {}
    for dtag, depth in depths.items():
        for tag, arm, rule in GRADIENT_NETS:
            r = row.get((arm, rule, depth))
            name = f"dk-{tag}-{dtag}"
            for k, col in (("growth", "growth"), ("measured", "measured_product"),
                           ("predicted", "predicted_product"), ("first", "first_conv")):
                out[f"{name}-{k}"] = report.MISSING if r is None else f"{getattr(r, col):.2g}"
            out[f"{name}-ratio"] = float("nan") if r is None else float(r.median_ratio)
    return out


def first_nonfinite(iterations, arm: str, rule: str, depth: int) -> str:
    """When the first convolution's gradient of a network stops being finite (or is zero) over the first
    iterations of an :func:`iteration_table`: ``"never"`` or ``"from iteration <i> on"``."""
    missing = [c for c in ("arm", "bandwidth", "depth", "iteration", "first_conv")
               if c not in getattr(iterations, "columns", ())]
    if missing:
        raise ValueError(f"expected an iteration_table DataFrame; it lacks {', '.join(missing)}")
    t = iterations[(iterations.arm == arm) & (iterations.bandwidth == rule) & (iterations.depth == depth)]
    t = t.sort_values("iteration")
    bad = t[~np.isfinite(t["first_conv"]) | (t["first_conv"] == 0)]
    return "never" if bad.empty else f"from iteration {int(bad['iteration'].iloc[0])} on"


def training_glue(res, depths: Mapping[str, int], arms: tuple[str, ...] = ("relu", "kaf", "kaf-fix")) -> dict:
    """The chapter's glue names and values for the trained networks of a :func:`kaf_depth_training` result, per
    arm of ``arms`` and depth of ``depths`` (tag -> depth): ``dt-<arm>-<tag>-acc``, the mean test accuracy over
    seeds (NaN when not trained), and ``dt-<arm>-<tag>-diverged``, in words, how many runs stopped at a
    non-finite loss."""
    _depths(depths)
    nets_all = _check_result(res, "training").values()
    acc = {(r.arm, r.depth): r.test_acc for r in training_summary(res).itertuples()}
    out = {}
    for arm in arms:
        for dtag, depth in depths.items():
            tag = f"dt-{arm}-{dtag}"
            out[f"{tag}-acc"] = float(acc.get((arm, depth), float("nan")))
            nets = [n for n in nets_all if n["arm"] == arm and n["depth"] == depth]
            div = [n["diverged_at"] for n in nets if n["diverged_at"] is not None]
            out[f"{tag}-diverged"] = ("no run was stopped" if not div else
                                      f"{len(div)} of {len(nets)} run(s) stopped at a non-finite loss "
                                      f"(iteration {min(div)})")
    return out


def training_display(res):
    """:func:`training_summary` as the chapter's table shows it, one string per cell: the network, our test
    accuracy (mean over seeds, with the range over seeds when there are several), the seeds, the runs stopped
    and the finished thesis's accuracy (:data:`symact.report.MISSING` where it reported none)."""
    import pandas as pd

    rows = []
    for r in training_summary(res).itertuples():
        span = f" ({report.pct(r.min)} to {report.pct(r.max)})" if r.seeds > 1 else ""
        rows.append([f"{NET_LABELS[r.arm]}, ResNet-{r.depth}", report.pct(r.test_acc) + span, r.seeds, r.diverged,
                     report.pct(r.thesis)])
    return pd.DataFrame(rows, columns=["network", "test accuracy, ours", "seeds", "runs stopped",
                                       "the finished thesis"])


def training_markdown(res) -> str:
    """:func:`training_display` as a Markdown table with its caption (a stored :func:`kaf_depth_training`
    result, with its provenance)."""
    shown = training_display(res)
    return report.markdown_table(shown.columns, shown.itertuples(index=False)) + (
        f"\n\nTest accuracy on the first {res.provenance['config']['n_test']:,} test images of {res['data']}, "
        "mean over seeds (range). The thesis's column: kaf-thesis-results.md, one network each, 150 epochs on all "
        f"of CIFAR-10; its KAF ResNet-56 'does not learn at all' (chance, 10 %). *{res.caption()}*")


# --------------------------------------------------------------------------------------------------- claims


def _thesis_gap(a, b, prefix: str = "") -> str:
    """The thesis's difference between two networks of :data:`THESIS_ACCURACY`, in words (one network each)."""
    va, vb = THESIS_ACCURACY[a], THESIS_ACCURACY[b]
    return f"{100 * (va - vb):+.2f} points ({prefix}{100 * va:.2f} % against {100 * vb:.2f} %; one network each)"


@claim("kaf/depth-causes-explosion", chapter="kaf", section="kaf-depth",
       source="kaf-thesis-results.md, 'Exploding gradients in deep KAF ResNets'",
       text=("A KAF ResNet-56 does not learn (chance accuracy) while the KAF ResNet-20 trains to 90.07 %: depth "
             "makes the KAF network's gradients explode"))
def _depth_causes_explosion(profile: str):
    res = kaf_depth_training.stored(profile)
    if res is None:
        return None
    deep, shallow = _per_seed(res, "kaf", 56), _per_seed(res, "kaf", 20)
    if not deep or not shallow:
        return None
    return verdicts.paired_seeds(res, deep, shallow, what="test accuracy, KAF ResNet-56 minus KAF ResNet-20",
                                 published=THESIS_ACCURACY[("kaf", 56)] - THESIS_ACCURACY[("kaf", 20)],
                                 paper=_thesis_gap(("kaf", 56), ("kaf", 20), "chance, "))


@claim("kaf/resnet20-kaf-close-to-relu", chapter="kaf", section="kaf-depth",
       source="kaf-thesis-results.md, 'Exploding gradients in deep KAF ResNets'",
       text="A KAF ResNet-20 trains to about the ReLU ResNet-20's accuracy (90.07 % against 91.8 %)")
def _resnet20_close(profile: str):
    res = kaf_depth_training.stored(profile)
    if res is None:
        return None
    kaf, relu = _per_seed(res, "kaf", 20), _per_seed(res, "relu", 20)
    if not kaf or not relu:
        return None
    return verdicts.paired_seeds(res, kaf, relu, what="test accuracy, KAF ResNet-20 minus ReLU ResNet-20",
                                 published=THESIS_ACCURACY[("kaf", 20)] - THESIS_ACCURACY[("relu", 20)],
                                 paper=_thesis_gap(("kaf", 20), ("relu", 20)))


def decode_outcome(net: Mapping) -> np.ndarray:
    """The per-image test outcomes of one trained network of a stored training result."""
    return decode_outcomes(net["outcome"], net["n_test"])
