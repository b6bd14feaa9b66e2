"""Training: standard, fast adversarial (FGSM with random start) and PGD adversarial training.

One function, :func:`train`, driven by a frozen :class:`TrainConfig`:

- ``method="standard"``: empirical risk minimisation on clean images.
- ``method="fgsm"``: fast adversarial training of Wong, Rice and Kolter (2020),
  "Fast is better than free": each batch is replaced by an FGSM example taken
  from a uniform random start in the eps-ball (clamped to the image range or
  not: ``TrainConfig.start``), step ``alpha`` (default 1.25 eps), usually with
  the cyclic learning rate. After every epoch the PGD
  accuracy on a fixed training batch is measured; if it falls by more than
  0.2 from the previous epoch (catastrophic overfitting) training stops and the
  previous epoch's weights are restored.
- ``method="pgd"``: PGD adversarial training (Madry et al., 2018), ``pgd_steps``
  steps of size ``alpha`` (default 2.5 eps / steps) from a random start.

Returns a per-epoch history. Progress bars show on a terminal only.

:func:`lr_range_test` is Smith's (2017) learning-rate range test with the same training step, FGSM
examples included, and one rule that picks the peak learning rate from its curve.

Any ``nn.Module`` trains, a user's own included. Only a model that declares it
works channels-last (the library's own, see
:func:`symact.models.channels_last_default`) is trained in that faster layout,
unless ``channels_last=`` says otherwise.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from symact.attacks import accuracy, perturb_linf, progress_enabled
from symact.data import ImageData, random_crop_flip
from symact.device import autocast, get_device
from symact.models import channels_last_default
from symact.store.checkpoints import load_matching, save_atomic

__all__ = ["LR_RULE", "TrainConfig", "loss_function", "lr_range_test", "place", "train"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    ``schedule``: ``"constant"``; ``"cyclic"`` (per iteration, linear from 0 up
    to ``lr`` at 2/5 of training and back to 0, as Wong et al. 2020);
    ``"cosine"``; or ``"step"`` (x0.1 at 1/2 and 3/4 of training).
    ``loss``: ``"ce"`` (cross-entropy on logits) or ``"mse"`` (mean squared
    error against one-hot targets, for bounded outputs such as MDOME).
    ``start``: where the random start of ``method="fgsm"`` and ``"pgd"`` takes
    its first gradient (:func:`symact.attacks.perturb_linf`'s ``clamp_start``).
    ``"clamped"`` (the default): at ``x + delta`` clamped to the image range
    [0, 1], as Wong et al.'s (2020) CIFAR-10 code does
    (``delta = clamp(delta, lower_limit - X, upper_limit - X)``). ``"unclamped"``:
    at ``x + delta`` itself, which may leave [0, 1], as their MNIST code does
    (``delta`` drawn uniform in [-eps, eps] and used as drawn). At MNIST's
    eps 0.3, with their MNIST recipe, the clamped start can let FGSM training
    overfit catastrophically where the unclamped one does not: on the black
    background the clamped start turns FGSM-RS into FGSM without random start
    (:func:`symact.experiments.fundamentals.fat_mnist_wong`). Either way the
    adversarial image is clamped to [0, 1] after the step.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "constant"
    method: str = "standard"
    eps: float = 8 / 255
    alpha: float | None = None
    pgd_steps: int = 7
    early_stop: bool = True
    loss: str = "ce"
    augment: bool = False
    seed: int = 0
    start: str = "clamped"

    def __post_init__(self):
        checks = {
            "optimizer": (self.optimizer, ("sgd", "adam")),
            "schedule": (self.schedule, ("constant", "cyclic", "cosine", "step")),
            "method": (self.method, ("standard", "fgsm", "pgd")),
            "loss": (self.loss, ("ce", "mse")),
            "start": (self.start, ("clamped", "unclamped")),
        }
        for field, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"TrainConfig.{field} must be one of {allowed}, got {value!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.eps < 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0, eps >= 0; got {self}")


def loss_function(name: str) -> LossFn:
    """The loss named in :class:`TrainConfig` as ``fn(outputs, labels)``."""
    if name == "ce":
        return F.cross_entropy
    if name == "mse":
        return lambda out, y: F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype))
    raise ValueError(f"unknown loss {name!r}; expected 'ce' or 'mse'")


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names, over the parameters of ``model`` that require gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _alpha(cfg: TrainConfig) -> float:
    """The attack step: ``cfg.alpha``, else 1.25 eps for FGSM (Wong et al.) and 2.5 eps / steps for PGD."""
    if cfg.alpha is not None:
        return cfg.alpha
    return 1.25 * cfg.eps if cfg.method == "fgsm" else 2.5 * cfg.eps / cfg.pgd_steps


def _adversarial(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, alpha: float,
                 loss_fn: LossFn, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    """The training batch of ``cfg.method``: ``xb`` itself, or its FGSM (random start) or PGD examples."""
    if cfg.method == "standard":
        return xb
    steps = 1 if cfg.method == "fgsm" else cfg.pgd_steps
    with autocast(dev):
        return perturb_linf(model, xb, yb, cfg.eps, alpha, steps, loss_fn, True, gen,
                            clamp_start=cfg.start == "clamped")


def _lr_at(cfg: TrainConfig, t: float) -> float:
    """Learning rate at fractional epoch ``t`` in [0, epochs]."""
    frac = t / cfg.epochs
    if cfg.schedule == "cyclic":
        return float(np.interp(frac, [0, 0.4, 1], [0, cfg.lr, 0]))
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))
    if cfg.schedule == "step":
        return cfg.lr * (0.1 ** ((frac >= 0.5) + (frac >= 0.75)))
    return cfg.lr


_ADDED_FIELDS = {"start": "clamped"}  # TrainConfig fields added later: left out of a checkpoint's fingerprint at
                                      # their defaults, so that checkpoints written before still resume


def _config_key(cfg: TrainConfig) -> str:
    """``repr(cfg)`` without the later-added fields at their defaults (the repr an older TrainConfig had)."""
    kept = [f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
            if not (f.name in _ADDED_FIELDS and getattr(cfg, f.name) == _ADDED_FIELDS[f.name])]
    return f"{type(cfg).__name__}({', '.join(kept)})"


def _memory_format(model: nn.Module, channels_last: bool | None = None) -> torch.memory_format:
    """Channels-last when asked, or by default when :func:`symact.models.channels_last_default` says the
    model supports it (the library's own convolutional models); else PyTorch's default layout."""
    if channels_last is None:
        channels_last = channels_last_default(model)
    return torch.channels_last if channels_last else torch.contiguous_format


def place(model: nn.Module, device: str | torch.device | None = None, channels_last: bool | None = None) -> torch.device:
    """Move ``model`` to ``device`` (as :func:`symact.device.get_device`) in the memory format :func:`train`
    uses; returns the device. ``channels_last`` (default: :func:`symact.models.channels_last_default`, true
    for the library's own convolutional models, about 1.5x faster on CPU and suited to tensor cores on GPU;
    false for any other network, whose ``forward`` may flatten with ``view``). A network whose stored
    weights are loaded instead of trained goes where training would have left it."""
    dev = get_device(device)
    model.to(dev, memory_format=_memory_format(model, channels_last))
    return dev


def train(
    model: nn.Module,
    data: ImageData,
    cfg: TrainConfig,
    test: ImageData | None = None,
    loss_fn: LossFn | None = None,
    device=None,
    progress: bool | None = None,
    batch_fn: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
    checkpoint: str | Path | None = None,
    channels_last: bool | None = None,
) -> dict:
    """Train ``model`` on ``data`` in place and return its per-epoch history.

    Args:
        model: maps images in [0, 1] to outputs (logits for ``loss="ce"``).
        data: training set.
        cfg: hyper-parameters.
        test: if given, clean test accuracy is recorded after every epoch.
        loss_fn: ``fn(outputs, labels)`` overriding ``cfg.loss`` (e.g. a hybrid loss);
            adversarial examples are crafted against the same loss.
        device: as :func:`symact.device.get_device`.
        progress: show a progress bar (default: only on a terminal).
        batch_fn: optional ``fn(images, labels, generator) -> (images, labels)``
            applied to every training batch on the device, before any adversarial
            step: extra noisy or nonsense samples, as in the SAF paper's random and
            mean training. Training accuracy counts the batch it returns.
        checkpoint: a file for resumable training. After every epoch the state of training (weights,
            optimiser, random generators, history) is written there; if the file exists when ``train``
            starts, training continues after its last epoch and ends, on the same device and thread count,
            with the weights and history an uninterrupted run gives. A checkpoint written for another ``cfg``,
            model shape or data set size raises ``ValueError``. Removed when training finishes.
        channels_last: train (weights and batches) in the channels-last layout. Default: only a model that
            declares it supports it (:func:`symact.models.channels_last_default`: the library's own
            convolutional models); any other network, e.g. one flattening with ``x.view(x.size(0), -1)``,
            keeps PyTorch's default layout.

    Returns:
        ``{"epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds"}`` lists
        (one entry per epoch), plus ``"check_robust_acc"`` and
        ``"stopped_early"`` (the epoch whose weights were restored, or None)
        for ``method="fgsm"``, and ``"random_start"`` (``cfg.start``) for ``method="fgsm"`` and ``"pgd"``.
    """
    dev = place(model, device, channels_last)
    fmt = _memory_format(model, channels_last)
    loss_fn = loss_fn or loss_function(cfg.loss)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    augment = random_crop_flip if cfg.augment else None
    alpha = _alpha(cfg)

    history: dict = {"epoch": [], "lr": [], "train_loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    if cfg.method != "standard":
        history["random_start"] = cfg.start
    check = None
    if cfg.method == "fgsm":
        history.update(check_robust_acc=[], stopped_early=None)
        check = data.sample(min(512, len(data)), seed=cfg.seed + 1).tensors(dev)
        prev_state, prev_rob = None, None

    checkpoint = Path(checkpoint) if checkpoint is not None else None
    fingerprint = f"{_config_key(cfg)} {len(data)} " + " ".join(f"{k}{tuple(v.shape)}" for k, v in model.state_dict().items())
    first = 0
    state = load_matching(checkpoint, fingerprint, "config, model or data set")
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state["cuda_rng"] is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        first, history = state["epoch"], state["history"]
        if check is not None:
            prev_state, prev_rob = state["prev_state"], state["prev_rob"]

    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=first * steps_per_epoch, desc=f"train ({cfg.method})",
               disable=not progress_enabled(progress), leave=False)
    for epoch in range(first, cfg.epochs):
        model.train()
        start = time.perf_counter()
        tot_loss = torch.zeros((), device=dev)
        tot_ok = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for i, (xb, yb) in enumerate(data.batches(cfg.batch_size, True, gen, dev, augment)):
            if batch_fn is not None:
                xb, yb = batch_fn(xb, yb, gen)
            xb = xb.contiguous(memory_format=fmt)
            lr = _lr_at(cfg, epoch + (i + 1) / steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            xb = _adversarial(model, xb, yb, cfg, alpha, loss_fn, gen, dev)
            with autocast(dev):
                out = model(xb)
                loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss.detach() * len(yb)
            tot_ok += (out.detach().argmax(1) == yb).sum()
            seen += len(yb)
            bar.update(1)
        history["epoch"].append(epoch + 1)
        history["lr"].append(lr)
        history["train_loss"].append(float(tot_loss) / seen)
        history["train_acc"].append(float(tot_ok) / seen)
        history["seconds"].append(time.perf_counter() - start)
        history["test_acc"].append(accuracy(model, test, device=dev) if test is not None else None)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}", acc=f"{history['train_acc'][-1]:.3f}")
        if check is not None and cfg.eps > 0:
            rob = _robust_check(model, *check, cfg.eps, loss_fn)
            history["check_robust_acc"].append(rob)
            if cfg.early_stop and prev_rob is not None and rob < prev_rob - 0.2:
                model.load_state_dict(prev_state)
                history["stopped_early"] = epoch  # weights of this (1-based) epoch restored
                break
            prev_state, prev_rob = copy.deepcopy(model.state_dict()), rob
        if checkpoint is not None:
            state = {"fingerprint": fingerprint, "epoch": epoch + 1, "history": history, "model": model.state_dict(),
                     "optimizer": opt.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                     "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
            if check is not None:
                state.update(prev_state=prev_state, prev_rob=prev_rob)
            save_atomic(state, checkpoint)
    bar.close()
    model.eval()
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return history


def _robust_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, loss_fn: LossFn) -> float:
    """PGD-5 accuracy (step eps/4) on a fixed batch, Wong et al.'s catastrophic-overfitting check."""
    model.eval()
    x_adv = perturb_linf(model, x, y, eps, eps / 4, 5, loss_fn, True, torch.Generator().manual_seed(0))
    with torch.no_grad():
        acc = float((model(x_adv).argmax(1) == y).float().mean())
    model.train()
    return acc


# --------------------------------------------------------------------------- learning-rate range test

LR_RULE = "lr_max = (learning rate at the minimum of the smoothed loss) / 10"
"""The rule :func:`lr_range_test` applies to its curve (with its default ``divisor``)."""


def lr_range_test(
    model_factory: Callable[[], nn.Module],
    data: ImageData,
    cfg: TrainConfig,
    lr_min: float = 1e-5,
    lr_max: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    divisor: float = 10.0,
    loss_fn: LossFn | None = None,
    device=None,
    progress: bool | None = None,
) -> dict:
    """The learning-rate range test of Smith (2017, "Cyclical learning rates for training neural networks",
    Sec. 3.3), and the peak learning rate it suggests.

    A fresh network (``model_factory()``, built with torch's generator seeded by ``cfg.seed``) is trained for
    at most ``steps`` mini-batches of ``cfg.batch_size`` (shuffled with ``cfg.seed``, cycling over ``data``),
    with the learning rate of step ``i`` growing exponentially from ``lr_min`` to ``lr_max``::

        lr_i = lr_min (lr_max / lr_min) ** (i / (steps - 1))

    Each step is the step of :func:`train` under ``cfg``: its optimiser (momentum, weight decay), loss,
    augmentation and method, so with ``cfg.method="fgsm"`` every batch is replaced by its FGSM example from a
    random start (``cfg.eps``, ``cfg.alpha``, ``cfg.start``), as in fast adversarial training; ``cfg.lr``,
    ``cfg.epochs`` and ``cfg.schedule`` are ignored. The loss is smoothed by a bias-corrected exponential
    moving average, ``a_i = smoothing a_(i-1) + (1 - smoothing) loss_i``, ``s_i = a_i / (1 - smoothing ** (i+1))``;
    the sweep stops at the first step whose loss is not finite or whose smoothed loss exceeds ``diverge`` times
    the smallest so far (divergence).

    **The rule** (:data:`LR_RULE`): the peak learning rate is the learning rate at the minimum of the smoothed
    loss divided by ``divisor`` (10). Smith reads the upper bound of a cyclic schedule off this curve where the
    loss stops improving; the minimum of the smoothed loss is that point, and a tenth of it is the
    "minimum / 10" suggestion of fastai's learning-rate finder (Howard and Gugger 2020), which the
    schedule then only touches at its peak. We take it over the steepest-descent point because it depends on
    the arg min of a smoothed curve, not on a derivative of a noisy one (FGSM batches make the curve
    noisy), and because it errs low: the moving average lags the raw loss (its minimum comes late), and fast
    adversarial training overfits catastrophically more readily at large learning rates (Wong et al. 2020).

    Returns a JSON-able dict: ``lr``, ``loss`` and ``smoothed`` per step run; ``lr_at_min``; ``lr_max`` (the
    rule's choice); ``diverged_at`` (the step that stopped the sweep, or None); ``rule``, ``divisor``,
    ``smoothing``, ``diverge``, ``method``, ``seed``; and ``notes``, where a choice to distrust is flagged
    (the minimum at the first step: the loss never fell; at the last step without divergence: the sweep
    ended too low to see the turn; under cross-entropy, a smoothed loss never below ``ln C`` for ``C`` outputs,
    a uniform prediction's: the network had not begun to learn, and the sweep measured time, not the rate). The same inputs give the same curve (seeded; deterministic on one device
    and thread count). The global random state is left as it was.

    Raises:
        TypeError: ``model_factory`` is a module (it must build a fresh one) or returns no ``nn.Module``.
        ValueError: bad bounds, ``steps`` < 2, ``smoothing`` outside [0, 1), ``diverge`` <= 1,
            ``divisor`` <= 0, or an empty data set.
    """
    if isinstance(model_factory, nn.Module) or not callable(model_factory):
        raise TypeError("model_factory must be a callable returning a fresh nn.Module (e.g. lambda: LeNet5()), "
                        f"got {type(model_factory).__name__}: the test trains the network it builds")
    if not (0 < lr_min < lr_max and math.isfinite(lr_max)):
        raise ValueError(f"need 0 < lr_min < lr_max < inf, got lr_min={lr_min}, lr_max={lr_max}")
    if int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if not diverge > 1:
        raise ValueError(f"diverge must be > 1 (a multiple of the smallest smoothed loss), got {diverge}")
    if not divisor > 0:
        raise ValueError(f"divisor must be > 0, got {divisor}")
    if len(data) == 0:
        raise ValueError("data holds no images")
    steps = int(steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = model_factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model_factory returned {type(model).__name__}, expected an nn.Module")
        dev = place(model, device)
        fmt = _memory_format(model)
        loss_fn = loss_fn or loss_function(cfg.loss)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = _optimizer(model, cfg)
        augment = random_crop_flip if cfg.augment else None
        alpha = _alpha(cfg)
        ratio = (lr_max / lr_min) ** (1 / (steps - 1))
        lrs: list[float] = []
        losses: list[float | None] = []
        smoothed: list[float | None] = []
        avg, best, diverged = 0.0, math.inf, None

        def batches():
            while True:
                yield from data.batches(cfg.batch_size, True, gen, dev, augment)

        model.train()
        bar = tqdm(total=steps, desc=f"lr range test ({cfg.method})", disable=not progress_enabled(progress),
                   leave=False)
        for i, (xb, yb) in zip(range(steps), batches()):
            lr = lr_min * ratio ** i
            for group in opt.param_groups:
                group["lr"] = lr
            xb = _adversarial(model, xb.contiguous(memory_format=fmt), yb, cfg, alpha, loss_fn, gen, dev)
            with autocast(dev):
                out = model(xb)
                loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
            value = float(loss.detach())
            n_out = out.shape[-1]
            lrs.append(lr)
            if not math.isfinite(value):
                losses.append(None)
                smoothed.append(None)
                diverged = i
                break
            avg = smoothing * avg + (1 - smoothing) * value
            s = avg / (1 - smoothing ** (i + 1))
            losses.append(value)
            smoothed.append(s)
            best = min(best, s)
            if s > diverge * best:
                diverged = i
                break
        bar.close()
    finite = [(s, i) for i, s in enumerate(smoothed) if s is not None]
    if not finite:
        raise ValueError(f"the loss was not finite at the first step (lr {lr_min:g}): lower lr_min or check the "
                         "model and the data")
    at = min(finite)[1]
    notes = []
    if at == 0:
        notes.append("the smoothed loss was smallest at the first step: it never fell, so the choice is at the "
                     "bottom of the sweep; lower lr_min")
    if diverged is None and at == len(smoothed) - 1:
        notes.append("the smoothed loss was still falling at the end of the sweep: raise lr_max to see where it "
                     "turns")
    if loss_fn is F.cross_entropy and min(finite)[0] >= math.log(n_out):
        notes.append(f"the smoothed loss never fell below a uniform prediction's cross-entropy (ln {n_out} = "
                     f"{math.log(n_out):.2f}): the network had not begun to learn, so its minimum follows the "
                     "number of steps, not the learning rate; raise steps")
    return {"lr": lrs, "loss": losses, "smoothed": smoothed, "lr_at_min": lrs[at], "lr_max": lrs[at] / divisor,
            "diverged_at": diverged, "rule": LR_RULE if divisor == 10 else LR_RULE.replace("/ 10", f"/ {divisor:g}"),
            "divisor": divisor, "smoothing": smoothing, "diverge": diverge, "method": cfg.method, "seed": cfg.seed,
            "lr_min_swept": lr_min, "lr_max_swept": lr_max, "steps": steps, "notes": notes}
