"""Adversarial attacks and their evaluation.

A thin layer over torchattacks: :func:`make_attack` builds FGSM, PGD (with
restarts), CW-L2, AutoAttack, Square and OnePixel by name (and :class:`PixelDE`,
OnePixel's algorithm run on all images of a batch at once), each an object called
as ``atk(images, labels)``. The one thing torchattacks lacks is an L-infinity
attack on an *arbitrary* loss (the adaptive attacks of the DOME paper use the
model's training loss, e.g. MSE on MDOME outputs); :func:`perturb_linf` is that,
and adversarial training uses it too. With cross-entropy it is the same
algorithm as ``torchattacks.PGD`` (a test checks that they agree). The other is
the SAF paper's single step toward the wrong class with the largest gradient
(saf.txt Eq. 10): :func:`eq10_direction` and :func:`fgs_max_grad`.

:func:`evaluate` measures clean and robust accuracy, attack success rate, PSNR
and perturbation norms over a data set.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Callable

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn
from tqdm import tqdm

from symact.data import ImageData
from symact.device import get_device
from symact.models import inference_copy

__all__ = ["ATTACKS", "PixelDE", "accuracy", "de_population", "eq10_direction", "evaluate", "fgs_max_grad",
           "first_success", "make_attack", "perturb_linf", "pgd_restarts", "pool_evaluations", "predict",
           "progress_bar", "progress_enabled", "wilson_interval"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ATTACKS = ("fgsm", "pgd", "cw", "autoattack", "square", "onepixel", "de")


def progress_enabled(show: bool | None = None) -> bool:
    """Whether to draw progress bars: ``show`` if given, else on a terminal or with ``SYMACT_PROGRESS=1``."""
    if show is not None:
        return show
    return os.environ.get("SYMACT_PROGRESS") == "1" or sys.stderr.isatty()


def progress_bar(iterable, total: int, desc: str, show: bool | None = None):
    """A tqdm bar over ``iterable``, drawn only when :func:`progress_enabled` says so."""
    return tqdm(iterable, total=total, desc=desc, disable=not progress_enabled(show), leave=False)


def make_attack(name: str, model: nn.Module, eps: float = 8 / 255, **kwargs) -> torchattacks.Attack:
    """Build a torchattacks attack by name.

    Args:
        name: one of :data:`ATTACKS`.
        model: a model mapping images in [0, 1] to logits (its own first layer normalises).
        eps: L-infinity budget (ignored by ``cw``, an L2 attack, and ``onepixel``).
        **kwargs: passed to the torchattacks class; for ``pgd`` also
            ``restarts`` (default 1): independent random starts, a sample counts
            as robust only if it survives every one.

    Defaults: ``pgd`` alpha = eps/4, 50 steps; ``cw`` c = 1, 100 steps, lr 0.01;
    ``autoattack`` the standard version (APGD-CE, APGD-T, FAB-T, Square);
    ``square`` 5,000 queries; ``onepixel`` (torchattacks) and ``de`` (:class:`PixelDE`, the same attack on all
    images at once) 1 pixel, 40 steps, population 400.

    Example:
        >>> atk = make_attack("pgd", model, eps=0.3, steps=40, restarts=5)   # doctest: +SKIP
        >>> x_adv = atk(x, y)                                                # doctest: +SKIP
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; available: {', '.join(ATTACKS)}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if name == "fgsm":
        return torchattacks.FGSM(model, eps=eps, **kwargs)
    if name == "pgd":
        restarts = int(kwargs.pop("restarts", 1))
        if restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {restarts}")
        kwargs.setdefault("alpha", eps / 4)
        kwargs.setdefault("steps", 50)
        runs = [torchattacks.PGD(model, eps=eps, **kwargs) for _ in range(restarts)]
        return runs[0] if restarts == 1 else torchattacks.MultiAttack(runs)
    if name == "cw":
        kwargs.setdefault("steps", 100)
        return torchattacks.CW(model, **kwargs)
    if name == "autoattack":
        n_classes = kwargs.pop("n_classes", None) or _num_outputs(model)
        return torchattacks.AutoAttack(model, norm="Linf", eps=eps, n_classes=n_classes, **kwargs)
    if name == "square":
        return torchattacks.Square(model, eps=eps, **kwargs)
    kwargs.setdefault("steps", 40)
    kwargs.setdefault("popsize", 400)
    if name == "de":
        return PixelDE(model, **kwargs)
    return torchattacks.OnePixel(model, **kwargs)


def de_population(popsize: int, pixels: int, channels: int) -> int:
    """Candidates per image of a ``pixels``-pixel differential evolution asked for population ``popsize``, as
    torchattacks ``OnePixel`` (through SciPy) and :class:`PixelDE` make it: ``D = (2 + channels) pixels``
    numbers per candidate, ``max(1, popsize // D) * D`` candidates, at least 5."""
    d = pixels * (2 + channels)
    return max(5, max(1, popsize // d) * d)


class PixelDE:
    """The few-pixel differential-evolution attack of Su et al. (torchattacks ``OnePixel``), all images at once.

    The same algorithm as ``torchattacks.OnePixel`` (SciPy's ``best1bin`` differential evolution, changed to
    evaluate a whole generation at once): a candidate is ``pixels`` times (row, column, one value per channel),
    scaled from [0, 1), so ``D = (2 + C) pixels`` numbers; the population is ``max(1, popsize // D) * D``
    candidates per image (at least 5), drawn uniformly; the energy is the softmax probability of the true
    class; each generation draws one mutation factor ``F ~ U[0.5, 1)`` per image, makes every trial
    ``best + F (r0 - r1)`` (two distinct random members other than itself; recombination 1 keeps every
    coordinate of the mutant), redraws coordinates outside [0, 1] uniformly, keeps a trial that lowers its
    member's energy and puts the lowest energy in front. An image stops as soon as its best candidate fools
    the model (checked after each of the ``steps`` generations); the result is the image with the best
    candidate written in.

    torchattacks attacks one image at a time and writes the pixels of every candidate in a Python loop, a few
    hundred small tensor writes per generation and image, which on a GPU cost more than the network. Here the
    populations of all images of a batch live in one tensor and are evaluated ``inf_batch`` perturbed images at
    a time (``benchmarks/onepixel.py`` times both). Random numbers come from a CPU generator seeded with
    ``seed`` at every call, so a run is reproducible on any device. The network runs as
    :func:`symact.models.inference_copy` makes it (eval mode, batch normalisation folded into the layer
    before it, channels-last on a CPU: the same function up to float rounding, about 1.7 times faster on a
    CPU for S-APL LeNet-5); ``model`` itself is not touched.
    """

    def __init__(self, model: nn.Module, pixels: int = 1, steps: int = 40, popsize: int = 400,
                 inf_batch: int = 4096, seed: int = 0):
        if int(pixels) != pixels or pixels < 1 or int(steps) != steps or steps < 0 or popsize < 1 or inf_batch < 1:
            raise ValueError(f"need integers pixels >= 1, steps >= 0, popsize >= 1, inf_batch >= 1; "
                             f"got {pixels}, {steps}, {popsize}, {inf_batch}")
        self.model, self.pixels, self.steps, self.inf_batch = model, int(pixels), int(steps), int(inf_batch)
        self.popsize, self.seed = int(popsize), seed

    def _write(self, x: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Images ``x`` (n, C, H, W) with the candidates ``cand`` (n, pixels, 2 + C) in [0, 1] written in."""
        n, c, h, w = x.shape
        out = x.clone()
        rows = (cand[..., 0] * h).long().clamp_(0, h - 1)
        cols = (cand[..., 1] * w).long().clamp_(0, w - 1)
        img = torch.arange(n, device=x.device)[:, None].expand_as(rows)
        for k in range(self.pixels):  # in order, so a later pixel at the same place wins, as in torchattacks
            out[img[:, k], :, rows[:, k], cols[:, k]] = cand[:, k, 2:]
        return out

    @torch.no_grad()
    def _energy(self, x: torch.Tensor, y: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
        """Softmax probability of ``y`` for every member of ``pop`` (B, P, D) written into its image of ``x``."""
        b, p, d = pop.shape
        flat = pop.reshape(b * p, self.pixels, d // self.pixels)
        owner = torch.arange(b, device=x.device).repeat_interleave(p)
        out = torch.empty(b * p, device=x.device)
        for i in range(0, b * p, self.inf_batch):
            j = slice(i, i + self.inf_batch)
            prob = self.net(self._write(x[owner[j]], flat[j])).softmax(1)
            out[j] = prob.gather(1, y[owner[j]][:, None])[:, 0].float()
        return out.reshape(b, p)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator).to(self.device)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        self.net = inference_copy(self.model)  # eval mode, BN folded: the same function, faster
        self.device, self.generator = images.device, torch.Generator().manual_seed(self.seed)
        x, y = images.detach(), labels.detach()
        b, c = x.shape[:2]
        d = self.pixels * (2 + c)
        p = de_population(self.popsize, self.pixels, c)
        pop = self._rand(b, p, d)
        energy = self._energy(x, y, pop)
        best = energy.argmin(1)
        ar = torch.arange(b, device=x.device)
        pop[:, 0], pop[ar, best] = pop[ar, best], pop[:, 0].clone()  # the best to the front, as SciPy does
        energy[:, 0], energy[ar, best] = energy[ar, best], energy[:, 0].clone()
        active = torch.ones(b, dtype=torch.bool, device=x.device)
        cand = torch.arange(p, device=x.device)
        for _ in range(self.steps):
            i = active.nonzero()[:, 0]
            if len(i) == 0:
                break
            n = len(i)
            scale = 0.5 + 0.5 * self._rand(n, 1, 1)
            r0 = (self._rand(n, p) * (p - 1)).long()
            r0 += r0 >= cand  # skip the member itself
            r1 = (self._rand(n, p) * (p - 2)).long()
            lo, hi = torch.minimum(cand, r0), torch.maximum(cand, r0)
            r1 += r1 >= lo
            r1 += r1 >= hi  # skip the member and r0
            sub = pop[i]
            take = lambda r: sub.gather(1, r[..., None].expand(n, p, d))  # noqa: E731
            trial = sub[:, :1] + scale * (take(r0) - take(r1))
            bad = (trial < 0) | (trial > 1)
            trial = torch.where(bad, self._rand(n, p, d), trial)
            e = self._energy(x[i], y[i], trial)
            better = e < energy[i]
            sub = torch.where(better[..., None], trial, sub)
            e = torch.where(better, e, energy[i])
            top = e.argmin(1)
            sub[:, 0], e[:, 0] = sub[torch.arange(n), top], e[torch.arange(n), top]  # the old front is dropped
            pop[i], energy[i] = sub, e
            with torch.no_grad():
                fooled = self.net(self._write(x[i], sub[:, 0].reshape(n, self.pixels, -1))).argmax(1) != y[i]
            active[i[fooled]] = False
        adv = self._write(x, pop[:, 0].reshape(b, self.pixels, -1))
        return adv


def _num_outputs(model: nn.Module) -> int:
    for m in reversed(list(model.modules())):
        if isinstance(m, nn.Linear):
            return m.out_features
    raise ValueError("cannot infer the number of classes: pass n_classes=")


def perturb_linf(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    loss_fn: LossFn | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    *,
    clamp_start: bool = True,
) -> torch.Tensor:
    """Projected gradient ascent on ``loss_fn(model(x'), y)`` in the L-infinity ball of radius ``eps``.

    ``steps = 1, alpha = 1.25 eps, random_start`` is the FGSM with random start
    of Wong et al. (2020); ``random_start=False, steps=1, alpha=eps`` is FGSM;
    more steps are PGD (Madry et al., 2018). The returned images are in [0, 1]:
    after every step the image is clamped to [0, 1]. The model's mode
    (train/eval) is left as it is. ``loss_fn`` defaults to cross-entropy.

    ``clamp_start``: the random start ``x + delta`` (``delta`` uniform in the
    eps-ball) is clamped to [0, 1] before the first gradient is taken, as in
    Wong et al.'s CIFAR-10 code and in PGD evaluations; ``False`` takes the
    first gradient at the unclamped start, which may leave [0, 1], as their
    MNIST code does (where, at eps 0.3, it decides whether FGSM training
    overfits catastrophically). No effect without ``random_start``.
    """
    if steps < 1 or eps < 0 or alpha < 0:
        raise ValueError(f"need steps >= 1, eps >= 0, alpha >= 0; got {steps}, {eps}, {alpha}")
    loss_fn = loss_fn or F.cross_entropy
    param = next(model.parameters(), None)
    if param is not None and (x.device != param.device or y.device != param.device):
        raise ValueError(f"x and y must be on the model's device {param.device}, got x on {x.device}, y on {y.device}")
    x = x.detach()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
        delta = (noise * 2 - 1) * eps
        if clamp_start:
            delta = (x + delta).clamp_(0, 1) - x
    else:
        delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = loss_fn(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp_(-eps, eps)
        delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


def first_success(runs, correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
    """An attack callable chaining ``runs``: each run attacks only the images every earlier run left correct.

    Args:
        runs: callables ``(x, y) -> x_adv`` (random restarts, logit views, different attacks).
        correct: ``fn(x_adv, y) -> bool mask`` of the images still classified correctly
            (for example ``model(x_adv).argmax(1) == y``).

    Returns:
        ``attack(x, y)`` giving, per image, the first adversarial image that fooled the model,
        or the last run's image where none did.
    """
    if correct is None:
        raise ValueError("first_success needs correct=fn(x_adv, y) -> bool mask")
    runs = list(runs)

    def attack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        best = x.detach().clone()
        todo = torch.ones(len(y), dtype=torch.bool, device=y.device)
        for run in runs:
            idx = todo.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv = run(x[idx], y[idx]).detach()
            best[idx] = adv
            with torch.no_grad():
                todo[idx] = correct(adv, y[idx])
        return best
    return attack


def pgd_restarts(model: nn.Module, loss_fn: LossFn | None, eps: float, alpha: float, steps: int, restarts: int,
                 seed: int, correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
    """An attack callable: :func:`perturb_linf` on ``loss_fn`` from ``restarts`` random starts.

    Later restarts only attack the images still ``correct`` (default: ``model(x).argmax(1) == y``).
    All restarts draw from one generator seeded with ``seed`` at each call.
    """
    correct = correct or (lambda adv, y: model(adv).argmax(1) == y)

    def attack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        run = lambda xs, ys: perturb_linf(model, xs, ys, eps, alpha, steps, loss_fn, True, gen)  # noqa: E731
        return first_success([run] * restarts, correct)(x, y)
    return attack


def eq10_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn | None = None,
                   num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The step direction of saf.txt Eq. 10 and the class it heads for.

    For every incorrect class ``l`` (``l != y``, ``l < num_classes``) the gradient
    ``g_l`` of ``loss_fn(model(x), l)`` with respect to ``x`` is computed; the
    target is ``l_max = argmax_l ||g_l||_1`` per image and the direction is
    ``-sign(g_l_max)``, the signed step "towards the smaller loss" for that class.

    Args:
        model: maps images to the outputs ``loss_fn`` expects (used as it is: call ``model.eval()`` first).
        x, y: images and their true labels (a label ``>= num_classes``, e.g. a
            nonsense class, makes every real class a candidate).
        loss_fn: ``fn(outputs, labels)`` with a mean or sum reduction; default cross-entropy.
        num_classes: the candidate classes ``0 .. num_classes - 1``; default: every output.

    Returns:
        ``(direction, target)``: a tensor of signs shaped like ``x`` and the chosen class per image.
    """
    loss_fn = loss_fn or F.cross_entropy
    x = x.detach().requires_grad_(True)
    out = model(x)
    num_classes = num_classes or out.shape[1]
    if not 1 < num_classes <= out.shape[1]:
        raise ValueError(f"num_classes must be in 2..{out.shape[1]} (the model's outputs), got {num_classes}")
    best = torch.full((len(x),), -1.0, device=x.device)
    target = torch.zeros(len(x), dtype=torch.long, device=x.device)
    direction = torch.zeros_like(x)
    for cls in range(num_classes):
        labels = torch.full_like(y, cls)
        (grad,) = torch.autograd.grad(loss_fn(out, labels), x, retain_graph=cls < num_classes - 1)
        norm = grad.flatten(1).abs().sum(1)
        take = (norm > best) & (y != cls)
        best = torch.where(take, norm, best)
        target = torch.where(take, cls, target)
        direction[take] = -grad[take].sign()
    return direction.detach(), target


def fgs_max_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, beta: float, loss_fn: LossFn | None = None,
                 num_classes: int | None = None, clip: bool = False) -> torch.Tensor:
    """saf.txt Eq. 10: ``x + beta * sign(step towards the smaller loss of the wrong class l_max)``.

    ``beta`` is in pixel units of [0, 1] images (the paper's ``255 beta`` on 0..255).
    The paper does not clip to the image range (its PSNR row assumes none);
    ``clip=True`` keeps the result in [0, 1]. See :func:`eq10_direction`.
    """
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    direction, _ = eq10_direction(model, x, y, loss_fn, num_classes)
    out = x.detach() + beta * direction
    return out.clamp(0, 1) if clip else out


@torch.no_grad()
def predict(model: nn.Module, data: ImageData, batch_size: int = 500, device=None) -> torch.Tensor:
    """Predicted labels (argmax of the outputs) for every image of ``data``, on the CPU."""
    dev = get_device(device)
    was = model.training
    model.eval()
    preds = [model(xb).argmax(1).cpu() for xb, _ in data.batches(batch_size, device=dev)]
    model.train(was)
    return torch.cat(preds)


def accuracy(model: nn.Module, data: ImageData, batch_size: int = 500, device=None) -> float:
    """Fraction of ``data`` classified correctly."""
    return float((predict(model, data, batch_size, device) == data.y).float().mean())


def evaluate(
    model: nn.Module,
    data: ImageData,
    attack: "torchattacks.Attack | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None" = None,
    batch_size: int = 250,
    device=None,
    progress: bool | None = None,
    return_examples: int = 0,
) -> dict:
    """Clean and robust accuracy of ``model`` on ``data`` under ``attack``.

    ``attack`` is anything called as ``attack(images, labels) -> adversarial images``
    (a torchattacks object, :func:`make_attack`'s result, a lambda around
    :func:`perturb_linf`), or ``None`` for clean accuracy only. The model is
    evaluated in eval mode.

    Returns a dict with
        ``n``; ``clean_acc``; ``robust_acc`` (correct on the clean and on the adversarial image);
        ``success_rate`` (fraction of the clean-correct images that the attack
        made wrong); ``psnr`` (mean of 10 log10(1 / MSE), pixels in [0, 1]),
        ``mean_linf`` and ``mean_l2`` (mean perturbation norms), and
        ``confidence_gap``, the S-APL paper's ``avg |Z_true - Z_adv|``
        (symmetric-apl.txt Section 6.1: softmax probabilities of the true and
        of the predicted class on the adversarial image), all four over the
        successful adversarial examples (clean-correct images made wrong; NaN
        when there are none); and with ``return_examples = k`` the first
        k ``clean``/``adversarial`` images and labels, predictions included.
    """
    dev = get_device(device)
    was = model.training
    model.eval()
    n = clean_ok = robust_ok = flipped = 0
    psnr = linf = l2 = gap = 0.0
    examples: dict[str, list] = {"clean": [], "adversarial": [], "label": [], "clean_pred": [], "adv_pred": []}
    batches = data.batches(batch_size, device=dev)
    total = math.ceil(len(data) / batch_size)
    for xb, yb in progress_bar(batches, total, "evaluate", progress):
        with torch.no_grad():
            pred = model(xb).argmax(1)
        ok = pred == yb
        n += len(yb)
        clean_ok += int(ok.sum())
        if attack is None:
            continue
        x_adv = attack(xb, yb).detach()
        model.eval()  # some attacks restore the mode they found; be sure
        with torch.no_grad():
            prob = model(x_adv).float().softmax(1)
            adv_pred = prob.argmax(1)
        rob = (adv_pred == yb) & ok  # robust: correct before and after the attack
        robust_ok += int(rob.sum())
        fooled = ok & ~rob
        flipped += int(fooled.sum())
        if fooled.any():
            d = (x_adv - xb).flatten(1)[fooled]
            mse = d.pow(2).mean(1).clamp_min(1e-20)
            psnr += float((10 * torch.log10(1 / mse)).sum())
            linf += float(d.abs().amax(1).sum())
            l2 += float(d.norm(dim=1).sum())
            p = prob[fooled]
            gap += float((p.gather(1, yb[fooled, None]) - p.gather(1, adv_pred[fooled, None])).abs().sum())
        have = len(examples["label"])
        if have < return_examples:
            k = return_examples - have
            examples["clean"] += xb[:k].cpu().tolist()
            examples["adversarial"] += x_adv[:k].cpu().tolist()
            examples["label"] += yb[:k].cpu().tolist()
            examples["clean_pred"] += pred[:k].cpu().tolist()
            examples["adv_pred"] += adv_pred[:k].cpu().tolist()
    model.train(was)
    out = {"n": n, "clean_acc": clean_ok / max(n, 1)}
    if attack is not None:
        out.update(
            robust_acc=robust_ok / max(n, 1),
            success_rate=flipped / max(clean_ok, 1),
            psnr=psnr / flipped if flipped else float("nan"),
            mean_linf=linf / flipped if flipped else float("nan"),
            mean_l2=l2 / flipped if flipped else float("nan"),
            confidence_gap=gap / flipped if flipped else float("nan"),
        )
        if return_examples:
            out["examples"] = examples
    return out


def pool_evaluations(results: list[dict]) -> dict:
    """:func:`evaluate` results on disjoint image sets (with an attack) pooled into the result on their union:
    counts add, ``clean_acc`` and ``robust_acc`` are weighted by images, ``success_rate`` by clean-correct
    images, and the means over fooled images (``psnr``, ``mean_linf``, ``mean_l2``, ``confidence_gap``) by
    fooled images. ``examples`` are dropped."""
    if not results or any("success_rate" not in r for r in results):
        raise ValueError("pool_evaluations needs at least one evaluate() result of an attack")
    n = sum(r["n"] for r in results)
    correct = [round(r["clean_acc"] * r["n"]) for r in results]
    fooled = [round(r["success_rate"] * c) for r, c in zip(results, correct)]
    out = {"n": n, "clean_acc": sum(correct) / max(n, 1),
           "robust_acc": sum(r["robust_acc"] * r["n"] for r in results) / max(n, 1),
           "success_rate": sum(fooled) / max(sum(correct), 1)}
    for key in ("psnr", "mean_linf", "mean_l2", "confidence_gap"):
        out[key] = sum(r[key] * f for r, f in zip(results, fooled) if f) / sum(fooled) if sum(fooled) else float("nan")
    return out


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``successes / n`` (e.g. an attack success rate).

    On 100 images a rate near 50% has a 95% interval about +-10 points wide;
    on 1,000 about +-3. ``n = 0`` gives ``(0, 1)``.

    Example:
        >>> [round(v, 3) for v in wilson_interval(50, 100)]
        [0.404, 0.596]
    """
    from statistics import NormalDist

    if n < 0 or not 0 <= successes <= n or not 0 < level < 1:
        raise ValueError(f"need 0 <= successes <= n and 0 < level < 1, got {successes}, {n}, {level}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == n else centre + half)
