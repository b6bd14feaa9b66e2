"""Adversarial attacks, all ``torchattacks.attack.Attack`` objects called as ``atk(images, labels)``.

- :func:`make_attack` builds FGSM, PGD (with restarts), CW-L2, AutoAttack, Square, OnePixel and
  :class:`PixelDE` by name.
- :class:`AutoAttack` is the AutoAttack of Croce and Hein (2020) at the authors' ``version='standard'``
  strength, composed from torchattacks' own classes: APGD-CE (100 iterations), APGD-T (targeted DLR,
  100 iterations, 9 target classes), FAB-T (100 iterations, 9 target classes) and Square (5,000
  queries), each with 1 restart, run as the authors' cascade (each component attacks only the images
  still robust) and seeded (never from the clock). It records which component broke each image
  (:attr:`AutoAttack.last_broken_by`). ``torchattacks.AutoAttack(version="standard")`` runs its
  components for 10 iterations only, seeded from the clock; that weaker cascade is available, with an
  explicit seed, only under its own name ``make_attack("cascade-10")``: it is *not* AutoAttack.
- What torchattacks lacks, as ``torchattacks.attack.Attack`` subclasses that compose with
  ``torchattacks.MultiAttack``: :class:`LossPGD` (L-infinity PGD on an *arbitrary* loss, e.g. the
  DOME paper's adaptive attacks on the training loss, MSE on MDOME outputs, from several random
  starts), :class:`FirstSuccess` (a chain of attacks, each on the images every earlier one left
  correct) and :class:`FGSMaxGrad` (the SAF paper's single step toward the wrong class with the
  largest gradient, saf.txt Eq. 10; :func:`eq10_direction`, :func:`fgs_max_grad`). :func:`perturb_linf`
  is the PGD step loop they and adversarial training share; with cross-entropy it is the same
  algorithm as ``torchattacks.PGD`` (a test checks that they agree).

**Prediction rules.** :class:`AutoAttack`, :class:`LossPGD` and :class:`FirstSuccess` take ``predict``,
a callable mapping model outputs (N, K) to labels (N,) (default :func:`argmax_rule`). A rule may return
``-1`` (or any label that is not a class) for "rejected" or "nonsense"; that counts as wrong. Under a
rule an attack succeeds on an image when the rule's decision on the adversarial image is not the true
label; an image whose clean decision is already wrong is "misclassified before the attack". (The
torchattacks components inside :class:`AutoAttack` still stop early on their own argmax criterion; the
rule decides which images count as broken and which go on to the next component.)

:func:`evaluate` measures clean and robust accuracy, attack success rate, PSNR
and perturbation norms over a data set.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn
from torchattacks.attack import Attack
from tqdm import tqdm

from symact.data import ImageData
from symact.device import get_device
from symact.models import inference_copy

__all__ = ["AUTOATTACK_LABELS", "attack_label", "ATTACKS", "AUTOATTACK_COMPONENTS", "MISCLASSIFIED", "ROBUST", "AutoAttack", "FGSMaxGrad", "FirstSuccess",
           "LossPGD", "NoiseAveragedPGD", "NoiseToClassPGD", "NonsenseMarginPGD", "PixelDE", "PredictedLabelPGD",
           "margin_loss", "nonsense_margin_loss", "confident_class_loss", "accuracy", "argmax_rule",
           "de_population", "eq10_direction", "BPDAPGD", "backward_surrogate",
           "fgs_max_grad", "make_attack", "perturb_linf", "predict", "progress_bar",
           "progress_enabled", "smoothed_kaf", "smoothed_kaf_function", "straight_through_kwta"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: a prediction rule: model outputs (N, K) -> labels (N,); a label that is no class (e.g. -1) means "rejected"
Rule = Callable[[torch.Tensor], torch.Tensor]

ATTACKS = ("fgsm", "pgd", "cw", "autoattack", "cascade-10", "square", "onepixel", "de")

#: the components of :class:`AutoAttack`, in the order they run
AUTOATTACK_COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")

#: :attr:`AutoAttack.last_broken_by` (and :attr:`FirstSuccess.last_broken_by`) of an image no attack broke
ROBUST = -1
#: ... and of an image the rule already got wrong on the clean input (the authors' cascade does not attack it)
MISCLASSIFIED = -2


def progress_enabled(show: bool | None = None) -> bool:
    """Whether to draw progress bars: ``show`` if given, else on a terminal or with ``SYMACT_PROGRESS=1``."""
    if show is not None:
        return show
    return os.environ.get("SYMACT_PROGRESS") == "1" or sys.stderr.isatty()


def progress_bar(iterable, total: int, desc: str, show: bool | None = None):
    """A tqdm bar over ``iterable``, drawn only when :func:`progress_enabled` says so."""
    return tqdm(iterable, total=total, desc=desc, disable=not progress_enabled(show), leave=False)

#: How tables and prose name the AutoAttack-like cascades of :func:`make_attack`: only the official one is
#: called AutoAttack (an experiment's config names which one it ran; see :func:`attack_label`).
AUTOATTACK_LABELS = {
    "autoattack": "AutoAttack",
    "cascade-10": "10-iteration cascade (torchattacks' AutoAttack defaults; not AutoAttack)",
}


def attack_label(name: str) -> str:
    """The name a table or a sentence gives the cascade ``name`` (``"autoattack"`` or ``"cascade-10"``).

    Results stored before ``make_attack("autoattack")`` ran the authors' 100-iteration AutoAttack were computed
    with what is now ``"cascade-10"``; their configs say so, and this label keeps them from being shown as
    AutoAttack.

    Example:
        >>> attack_label("cascade-10").split(" (")[0]
        '10-iteration cascade'
    """
    if name not in AUTOATTACK_LABELS:
        raise ValueError(f"unknown cascade {name!r}; expected one of {sorted(AUTOATTACK_LABELS)}")
    return AUTOATTACK_LABELS[name]


def make_attack(name: str, model: nn.Module, eps: float = 8 / 255, **kwargs) -> Attack:
    """Build an attack by name.

    Args:
        name: one of :data:`ATTACKS`.
        model: a model mapping images in [0, 1] to logits (its own first layer normalises).
        eps: L-infinity budget (ignored by ``cw``, an L2 attack, and ``onepixel``/``de``; for
            ``autoattack`` with ``norm="L2"`` an L2 budget).
        **kwargs: passed to the class; for ``pgd`` also ``restarts`` (default 1): independent random
            starts, a sample counts as robust only if it survives every one.

    Defaults: ``pgd`` alpha = eps/4, 50 steps; ``cw`` c = 1, 100 steps, lr 0.01;
    ``autoattack`` :class:`AutoAttack` (the authors' standard version, 100 iterations; ``norm``,
    ``n_classes``, ``seed`` (default 0), ``predict``); ``cascade-10`` ``torchattacks.AutoAttack``'s
    standard version, whose components run 10 iterations, with ``seed`` (default 0): **not**
    AutoAttack, kept so that results computed with it can be recomputed under their own name;
    ``square`` 5,000 queries; ``onepixel`` (torchattacks) and ``de`` (:class:`PixelDE`, the same attack
    on all images at once) 1 pixel, 40 steps, population 400.

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
        return AutoAttack(model, eps=eps, **kwargs)
    if name == "cascade-10":
        n_classes = kwargs.pop("n_classes", None) or _num_outputs(model)
        kwargs.setdefault("seed", 0)
        if kwargs["seed"] is None:
            raise ValueError("cascade-10 needs an explicit seed (None would seed from the clock)")
        return torchattacks.AutoAttack(model, norm=kwargs.pop("norm", "Linf"), eps=eps, version="standard",
                                       n_classes=n_classes, **kwargs)
    if name == "square":
        return torchattacks.Square(model, eps=eps, **kwargs)
    kwargs.setdefault("steps", 40)
    kwargs.setdefault("popsize", 400)
    if name == "de":
        return PixelDE(model, **kwargs)
    return torchattacks.OnePixel(model, **kwargs)


def argmax_rule(outputs: torch.Tensor) -> torch.Tensor:
    """The default prediction rule: the arg max of the outputs."""
    return outputs.argmax(1)


def _init_attack(atk: Attack, name: str, model: nn.Module) -> None:
    """``Attack.__init__`` without its print for a model without parameters (device: the images')."""
    with contextlib.redirect_stdout(io.StringIO()):
        Attack.__init__(atk, name, model)


class _RuleAttack(Attack):
    """An attack whose success is judged by a prediction rule (``predict``, default arg max)."""

    def _rule_correct(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Whether the rule's decision on ``x`` is ``y``, per image."""
        with torch.no_grad():
            return self.predict(self.get_logits(x)) == y


class FirstSuccess(_RuleAttack):
    """A chain of attacks: each attacks only the images every earlier one left correct.

    Per image the result is the first adversarial image that fooled the model (under ``predict``), or,
    where none did, the last attack's image (the clean image where no attack ran on it). Used for random
    restarts, for the union over the logit views of an MDOME model (:func:`symact.experiments.dome.union_of_views`)
    and, with ``skip_misclassified=True``, for the cascade of :class:`AutoAttack`.

    Args:
        attacks: ``torchattacks.attack.Attack`` objects or any callables ``(x, y) -> x_adv``.
        predict: the prediction rule, model outputs -> labels (default :func:`argmax_rule`; a label that is
            no class, e.g. -1 for "rejected", counts as wrong).
        model: the model the rule judges; default the first attack's ``.model`` (needed when the attacks
            are plain callables).
        skip_misclassified: leave images the rule gets wrong on the clean input unattacked (the authors'
            AutoAttack does so); default ``False``: the first attack runs on every image.

    After each call, ``last_broken_by`` (a long tensor on the images' device) holds, per image, the index
    of the attack that fooled it, :data:`ROBUST` (-1) if none did, or :data:`MISCLASSIFIED` (-2) if the rule
    was already wrong on the clean image (whether or not it was attacked).

    Example:
        >>> chain = FirstSuccess([LossPGD(model, 0.3, 0.1, 10, seed=s) for s in range(3)])   # doctest: +SKIP
        >>> x_adv = chain(x, y); chain.last_broken_by                                          # doctest: +SKIP
    """

    def __init__(self, attacks, predict: Rule | None = None, model: nn.Module | None = None,
                 skip_misclassified: bool = False):
        attacks = list(attacks)
        if not attacks:
            raise ValueError("FirstSuccess needs at least one attack")
        if model is None:
            model = getattr(attacks[0], "model", None)
            if not isinstance(model, nn.Module):
                raise ValueError("FirstSuccess of plain callables needs model= (the model the rule judges)")
        _init_attack(self, "FirstSuccess", model)
        self.attacks = attacks
        self.predict = predict or argmax_rule
        self.skip_misclassified = bool(skip_misclassified)
        self.last_broken_by: torch.Tensor | None = None
        self.last_seconds: list[float] = []

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y = images.detach(), labels.detach()
        best = x.clone()
        clean_ok = self._rule_correct(x, y)
        broken = torch.where(clean_ok, ROBUST, MISCLASSIFIED).long()
        todo = clean_ok.clone() if self.skip_misclassified else torch.ones_like(clean_ok)
        self.last_seconds = []
        for k, atk in enumerate(self.attacks):
            idx = todo.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            start = time.perf_counter()
            adv = atk(x[idx], y[idx]).detach()
            self.last_seconds.append(time.perf_counter() - start)
            best[idx] = adv
            ok = self._rule_correct(adv, y[idx])
            todo[idx] = ok
            fooled = idx[~ok]
            broken[fooled] = torch.where(broken[fooled] == MISCLASSIFIED, MISCLASSIFIED, k)
        self.last_broken_by = broken
        return best


class AutoAttack(FirstSuccess):
    """AutoAttack (Croce and Hein, ICML 2020) at the authors' ``version='standard'`` strength.

    The authors' cascade (``autoattack.AutoAttack.run_standard_evaluation``) of four torchattacks
    components, each with 1 restart, each run only on the images still robust (images misclassified
    before the attack are not attacked):

    ========== =============================================================================
    apgd-ce    ``torchattacks.APGD``, cross-entropy, 100 iterations, rho 0.75
    apgd-t     ``torchattacks.APGDT``, targeted DLR, 100 iterations, 9 target classes
    fab-t      ``torchattacks.FAB``, multi-targeted, 100 iterations, 9 target classes
    square     ``torchattacks.Square``, 5,000 queries, p_init 0.8, margin loss, no schedule rescaling
    ========== =============================================================================

    The number of target classes is ``min(9, n_classes - 1)``, as the authors fix it at 9 (torchattacks
    would use ``n_classes - 1``). ``torchattacks.AutoAttack`` differs: its components run 10 iterations
    (their classes' default), Square rescales its schedule, it attacks misclassified images too and, with
    ``seed=None`` (its default), seeds from the clock; see ``make_attack("cascade-10")``.

    Args:
        model: maps images in [0, 1] to logits.
        norm: ``"Linf"`` or ``"L2"``.
        eps: the budget in that norm (pixels in [0, 1]).
        n_classes: the number of classes (at least 4: APGD-T's targeted DLR loss compares the 1st, 3rd and
            4th largest outputs); default the ``out_features`` of the model's last ``nn.Linear``.
        seed: seeds every component (each reseeds torch's generator with it when it starts; the global
            generator state is restored afterwards); two calls on the same images give the same images.
        predict: the prediction rule deciding which images are robust (default arg max).

    Attributes:
        components: ``[(name, attack)]`` in the order they run, names :data:`AUTOATTACK_COMPONENTS`.
        last_broken_by: after a call, per image the index into ``components`` of the component that broke
            it, :data:`ROBUST` (-1) if none did, :data:`MISCLASSIFIED` (-2) if the rule was wrong on the clean
            image (not attacked).
        last_seconds: wall-clock seconds of each component that ran in the last call.

    Example:
        >>> aa = AutoAttack(model, norm="Linf", eps=0.3, seed=0)          # doctest: +SKIP
        >>> x_adv = aa(x, y)                                               # doctest: +SKIP
        >>> [aa.components[k][0] for k in aa.last_broken_by if k >= 0]     # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 8 / 255, n_classes: int | None = None,
                 seed: int = 0, predict: Rule | None = None, verbose: bool = False):
        if norm not in ("Linf", "L2"):
            raise ValueError(f"norm must be 'Linf' or 'L2', got {norm!r}")
        if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
            raise ValueError(f"eps must be a finite number >= 0, got {eps}")
        if seed is None or int(seed) != seed:
            raise ValueError(f"seed must be an integer (None would seed from the clock), got {seed!r}")
        n_classes = n_classes or _num_outputs(model)
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes}")
        if n_classes < 4:
            raise ValueError(f"AutoAttack needs n_classes >= 4 (APGD-T's targeted DLR loss uses the 4th largest "
                             f"output), got n_classes={n_classes}")
        n_classes, seed, targets = int(n_classes), int(seed), min(9, int(n_classes) - 1)
        common = dict(norm=norm, eps=eps, seed=seed, verbose=verbose)
        apgd = torchattacks.APGD(model, steps=100, n_restarts=1, loss="ce", eot_iter=1, rho=0.75, **common)
        apgdt = torchattacks.APGDT(model, steps=100, n_restarts=1, eot_iter=1, rho=0.75, n_classes=n_classes,
                                   **common)
        fab = torchattacks.FAB(model, steps=100, n_restarts=1, alpha_max=0.1, eta=1.05, beta=0.9,
                               multi_targeted=True, n_classes=n_classes, **common)
        square = torchattacks.Square(model, n_queries=5000, n_restarts=1, p_init=0.8, loss="margin",
                                     resc_schedule=False, **common)
        apgdt.n_target_classes = fab.n_target_classes = targets
        super().__init__([apgd, apgdt, fab, square], predict=predict, model=model, skip_misclassified=True)
        self.attack = "AutoAttack"
        self.components = list(zip(AUTOATTACK_COMPONENTS, self.attacks))
        self.norm, self.eps, self.n_classes, self.seed = norm, eps, n_classes, seed

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        devices = [images.device.index or 0] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the components reseed torch's generator: restore it after
            for atk in self.attacks:
                atk.set_device(images.device)
            return super().forward(images, labels)


def de_population(popsize: int, pixels: int, channels: int) -> int:
    """Candidates per image of a ``pixels``-pixel differential evolution asked for population ``popsize``, as
    torchattacks ``OnePixel`` (through SciPy) and :class:`PixelDE` make it: ``D = (2 + channels) pixels``
    numbers per candidate, ``max(1, popsize // D) * D`` candidates, at least 5."""
    d = pixels * (2 + channels)
    return max(5, max(1, popsize // d) * d)

class PixelDE(Attack):
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
    CPU for S-APL LeNet-5; a model whose forward cannot take channels-last activations, e.g. one that
    flattens with ``x.view(x.size(0), -1)``, runs in the contiguous layout instead); ``model`` itself is not
    touched.

    Why it is kept next to ``torchattacks.OnePixel``: it is the same attack, and the stored paper-profile
    S-APL one-pixel results were computed with it; ``results/benchmarks/onepixel.json`` measured it at
    1.05 to 1.27 times torchattacks' speed on a CPU (2 threads), and on a GPU it evaluates the populations of
    all images of a batch at once where torchattacks goes image by image.
    """

    def __init__(self, model: nn.Module, pixels: int = 1, steps: int = 40, popsize: int = 400,
                 inf_batch: int = 4096, seed: int = 0):
        if int(pixels) != pixels or pixels < 1 or int(steps) != steps or steps < 0 or popsize < 1 or inf_batch < 1:
            raise ValueError(f"need integers pixels >= 1, steps >= 0, popsize >= 1, inf_batch >= 1; "
                             f"got {pixels}, {steps}, {popsize}, {inf_batch}")
        _init_attack(self, "PixelDE", model)
        self.pixels, self.steps, self.inf_batch = int(pixels), int(steps), int(inf_batch)
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
        return torch.rand(shape, generator=self.generator).to(self._on)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.net = inference_copy(self.model)  # eval mode, BN folded: the same function, faster
        try:
            return self._run(images, labels)
        except RuntimeError:  # e.g. x.view(x.size(0), -1) on channels-last activations: the contiguous layout
            self.net = inference_copy(self.model, channels_last=False)
            return self._run(images, labels)

    def _run(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        self._on, self.generator = images.device, torch.Generator().manual_seed(self.seed)
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

class LossPGD(_RuleAttack):
    """L-infinity PGD on an arbitrary loss (:func:`perturb_linf`) from ``restarts`` random starts.

    The first start attacks every image; each later one only the images still correct under ``predict``
    (a :class:`FirstSuccess` of the starts). All starts draw their random starts from one CPU generator
    seeded with ``seed`` at each call, so a call is reproducible on any device. Per image the result is the
    first start's image that fooled the model, or the last start's image.

    Args:
        model: maps images in [0, 1] to the outputs ``loss_fn`` expects.
        eps, alpha, steps: budget, step size and number of steps (see :func:`perturb_linf`).
        restarts: number of starts (>= 1).
        loss_fn: ``fn(outputs, labels)``, default cross-entropy (e.g. a model's training loss: MSE on MDOME).
        seed: seeds the generator of the random starts.
        random_start: start from a uniform point of the ball (else from the image: PGD without random start,
            every restart the same).
        predict: the prediction rule (default arg max) deciding which images later starts attack.

    With cross-entropy and ``restarts=1`` this is ``torchattacks.PGD`` (the same algorithm).
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, restarts: int = 1,
                 loss_fn: LossFn | None = None, seed: int = 0, random_start: bool = True,
                 predict: Rule | None = None):
        if not (eps >= 0 and alpha >= 0 and math.isfinite(eps) and math.isfinite(alpha)):
            raise ValueError(f"need finite eps >= 0 and alpha >= 0, got {eps}, {alpha}")
        if int(steps) != steps or steps < 1 or int(restarts) != restarts or restarts < 1:
            raise ValueError(f"need integers steps >= 1 and restarts >= 1, got {steps}, {restarts}")
        _init_attack(self, "LossPGD", model)
        self.eps, self.alpha, self.steps, self.restarts = eps, alpha, int(steps), int(restarts)
        self.loss_fn, self.seed, self.random_start = loss_fn, seed, bool(random_start)
        self.predict = predict or argmax_rule

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y = images.detach(), labels.detach()
        gen = torch.Generator().manual_seed(self.seed)
        best = x.clone()
        todo = torch.ones(len(y), dtype=torch.bool, device=y.device)
        for _ in range(self.restarts):
            idx = todo.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            adv = perturb_linf(self.model, x[idx], y[idx], self.eps, self.alpha, self.steps, self.loss_fn,
                               self.random_start, gen)
            best[idx] = adv
            todo[idx] = self._rule_correct(adv, y[idx])
        return best


class FGSMaxGrad(Attack):
    """saf.txt Eq. 10 as an attack object: one step of ``beta`` toward the wrong class with the largest
    gradient (:func:`fgs_max_grad`). Without ``clip`` (the paper's attack) the result may leave [0, 1]."""

    def __init__(self, model: nn.Module, beta: float, loss_fn: LossFn | None = None, num_classes: int | None = None,
                 clip: bool = False):
        if not (beta >= 0 and math.isfinite(beta)):
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        _init_attack(self, "FGSMaxGrad", model)
        self.beta, self.loss_fn, self.num_classes, self.clip = beta, loss_fn, num_classes, bool(clip)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return fgs_max_grad(self.model, images, labels, self.beta, self.loss_fn, self.num_classes, self.clip)


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


# --------------------------------------------------------------------------------------------------- adaptive


def margin_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image ``max_{j != y} z_j - z_y`` (positive exactly when the image is misclassified): the margin loss
    of Carlini and Wagner (2017), which Tramer et al. (2020) ascend in their adaptive attacks."""
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), -math.inf).amax(1)
    return other - true


def _check_pgd_args(eps, alpha, steps, restarts) -> None:
    if not (isinstance(eps, (int, float)) and isinstance(alpha, (int, float)) and math.isfinite(eps)
            and math.isfinite(alpha) and eps >= 0 and alpha >= 0):
        raise ValueError(f"need finite eps >= 0 and alpha >= 0, got eps={eps!r}, alpha={alpha!r}")
    if int(steps) != steps or steps < 1 or int(restarts) != restarts or restarts < 1:
        raise ValueError(f"need integers steps >= 1 and restarts >= 1, got {steps!r}, {restarts!r}")


class PredictedLabelPGD(LossPGD):
    """L-infinity PGD (:class:`symact.attacks.LossPGD`, cross-entropy, seeded random restarts) against the
    model's own predictions instead of the true labels: the protocol of the finished thesis, whose IBM ART
    attacks were called without labels (kaf-thesis-results.md, "Setting used throughout").

    On an image the model classifies correctly the prediction is the true label, so the attack is the
    true-label PGD; on a misclassified image it pushes the image away from the *wrong* prediction, which can
    move it to the true class. The thesis then counted an image as robust when its adversarial image is
    classified correctly, clean correctness aside. After every call, :attr:`correct` gains one boolean tensor
    (on the CPU): per image, whether the adversarial image is classified as the true label passed in. So
    ``torch.cat(atk.correct)`` over an :func:`symact.evaluation.evaluate` of this attack alone (which calls it
    on whole batches, in order) is the thesis's per-image outcome. Call :meth:`reset` between evaluations.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, restarts: int = 1, seed: int = 0):
        _check_pgd_args(eps, alpha, steps, restarts)
        super().__init__(model, eps, alpha, steps, restarts=restarts, seed=seed)
        self.correct: list[torch.Tensor] = []

    def reset(self) -> None:
        self.correct = []

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            predicted = self.get_logits(images).argmax(1)
        adv = super().forward(images, predicted)
        with torch.no_grad():
            self.correct.append((self.get_logits(adv).argmax(1) == labels).cpu())
        return adv


class NoiseAveragedPGD(Attack):
    """An adaptive attack on non-smooth networks (k-WTA), after Tramer, Carlini, Brendel and Madry (2020, "On
    adaptive attacks to adversarial example defenses", their attack on k-WTA): L-infinity PGD that ascends the
    margin loss (:func:`margin_loss`) along the sign of its gradient *averaged over* ``samples`` Gaussian-
    perturbed copies of the current point,

        g = (1/m) sum_{k=1..m} grad_x margin(f(x' + sigma xi_k), y),   xi_k ~ N(0, I),
        x' <- clip_[0,1](Proj_eps(x' + alpha sign(g))),

    from a uniform random start in the eps-ball (clamped to [0, 1]). Averaging estimates the gradient of the
    Gaussian-smoothed network, which exists where k-WTA's own gradient jumps with every change of its winners.
    Per image the result is the first iterate that the (unperturbed) network misclassifies, else the last one;
    each of ``restarts`` starts attacks only the images no earlier start fooled. Random numbers come from a CPU
    generator seeded with ``seed`` at every call. ``samples``, ``sigma``, ``steps`` and ``alpha`` are ours (the
    paper's exact values for this attack are not recorded in the book's sources).
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, samples: int = 32,
                 sigma: float = 0.031, restarts: int = 1, seed: int = 0):
        _check_pgd_args(eps, alpha, steps, restarts)
        if int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        super().__init__("NoiseAveragedPGD", model)
        self.eps, self.alpha, self.steps, self.restarts = float(eps), float(alpha), int(steps), int(restarts)
        self.samples, self.sigma, self.seed = int(samples), float(sigma), seed

    def _noise(self, shape, gen, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(like.device, like.dtype)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        gen = torch.Generator().manual_seed(self.seed)
        x, y = images.detach(), labels.detach()
        best = x.clone()
        todo = torch.ones(len(y), dtype=torch.bool, device=y.device)
        for _ in range(self.restarts):
            idx = todo.nonzero()[:, 0]
            if len(idx) == 0:
                break
            xi, yi = x[idx], y[idx]
            delta = (torch.rand(xi.shape, generator=gen).to(xi.device, xi.dtype) * 2 - 1) * self.eps
            delta = (xi + delta).clamp(0, 1) - xi
            found = torch.zeros(len(idx), dtype=torch.bool, device=y.device)
            for _ in range(self.steps):
                act = (~found).nonzero()[:, 0]  # an image stops at its first fooling iterate
                if len(act) == 0:
                    break
                xa, ya, da = xi[act], yi[act], delta[act]
                grad = torch.zeros_like(xa)
                for _ in range(self.samples):
                    z = (xa + da + self.sigma * self._noise(xa.shape, gen, xa)).requires_grad_(True)
                    loss = margin_loss(self.get_logits(z), ya).sum()
                    grad += torch.autograd.grad(loss, z)[0]
                da = (da + self.alpha * grad.sign()).clamp(-self.eps, self.eps)
                delta[act] = (xa + da).clamp(0, 1) - xa
                with torch.no_grad():
                    found[act] = self.get_logits(xi[act] + delta[act]).argmax(1) != ya
            best[idx] = (xi + delta).detach()
            todo[idx] = ~found
        return best


# --------------------------------------------------------------------------------------------
# Adaptive attacks on networks that may answer "nonsense" (saf.txt Section 5)
# --------------------------------------------------------------------------------------------


def _log_confidences(outputs: torch.Tensor, space: str) -> torch.Tensor:
    if space == "log":
        return outputs
    if space == "logits":
        return F.log_softmax(outputs, 1)
    raise ValueError(f"outputs must be 'log' (log-confidences, e.g. a log-RBF output layer) or 'logits' "
                     f"(softmax confidences), got {space!r}")


def _reject_score(lc: torch.Tensor, num_classes: int, nonsense: int | None, threshold: float) -> torch.Tensor:
    """The log-score a real class must beat to be decided: the nonsense output, or ``ln threshold``."""
    if nonsense is not None:
        if not 0 <= nonsense < lc.shape[1]:
            raise ValueError(f"nonsense index {nonsense} is outside the model's {lc.shape[1]} outputs")
        return lc[:, nonsense]
    return torch.full((len(lc),), math.log(threshold), dtype=lc.dtype, device=lc.device)


def _check_rejecting(num_classes: int, nonsense: int | None, threshold: float) -> None:
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if nonsense is not None and (int(nonsense) != nonsense or nonsense < num_classes):
        raise ValueError(f"nonsense must be None or the index of the nonsense output (>= num_classes = "
                         f"{num_classes}), got {nonsense!r}")
    if nonsense is None and not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")


def nonsense_margin_loss(num_classes: int = 10, nonsense: int | None = None, threshold: float = 0.5,
                         outputs: str = "log") -> LossFn:
    """The margin loss towards a wrong *real* class that also suppresses the nonsense decision (saf.txt Section
    5's decision rule), for networks that can answer "nonsense".

    With ``c_j`` the log-confidence of output ``j`` (``outputs="log"``: the outputs themselves, as the SAF
    robust CNNs' log-RBF layer gives them; ``"logits"``: the log-softmax), ``w`` the most confident wrong real
    class (``j < num_classes``, ``j != y``) and ``r`` the reject score (the nonsense output ``c_nonsense``
    where the network has one, else ``ln threshold``: the rule rejects when every confidence is below
    ``threshold``), the loss per image is

    ``c_w - max(c_y, r)``,

    positive exactly when the rule decides the wrong real class ``w`` (not the true class, not nonsense).
    Returns ``fn(outputs, labels) -> mean loss`` for :class:`LossPGD`. Plain cross-entropy and the hybrid loss
    are content with pushing an image into the nonsense region, which the paper counts as a success of the
    defence; this loss is the adaptive attack that refuses that exit (Tramer et al. 2020, Sec. 4).
    """
    _check_rejecting(num_classes, nonsense, threshold)
    space = outputs
    _log_confidences(torch.zeros(1, 2), space)  # validates ``outputs``

    def loss(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        lc = _log_confidences(out, space)
        real = lc[:, :num_classes]
        true = real.gather(1, labels[:, None])[:, 0]
        wrong = real.masked_fill(F.one_hot(labels, num_classes).bool(), -math.inf).amax(1)
        return (wrong - torch.maximum(true, _reject_score(lc, num_classes, nonsense, threshold))).mean()
    return loss


def confident_class_loss(num_classes: int = 10, nonsense: int | None = None, threshold: float = 0.5,
                         outputs: str = "log") -> LossFn:
    """The loss that drives a *nonsense* input (noise) towards a confident real class: per image
    ``max_{j < num_classes} c_j - r`` (notation of :func:`nonsense_margin_loss`), positive exactly when the
    rule decides a real class. The labels are ignored (they are the nonsense label)."""
    _check_rejecting(num_classes, nonsense, threshold)
    space = outputs
    _log_confidences(torch.zeros(1, 2), space)

    def loss(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        lc = _log_confidences(out, space)
        return (lc[:, :num_classes].amax(1) - _reject_score(lc, num_classes, nonsense, threshold)).mean()
    return loss


class NonsenseMarginPGD(LossPGD):
    """L-infinity PGD (:class:`LossPGD`, seeded random restarts) on :func:`nonsense_margin_loss`: towards a
    wrong real class while suppressing the nonsense decision. The adaptive attack on the SAF paper's robust
    CNNs (saf.txt Section 5, decision rule); ``predict`` should be their decision rule (which returns the
    nonsense label for a rejected input), so that a later restart attacks only the images still decided as
    their true class.

    Example:
        >>> atk = NonsenseMarginPGD(model, eps=0.1, alpha=0.025, steps=50, nonsense=10)   # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, restarts: int = 1, *,
                 num_classes: int = 10, nonsense: int | None = None, threshold: float = 0.5, outputs: str = "log",
                 seed: int = 0, predict: Rule | None = None):
        _check_pgd_args(eps, alpha, steps, restarts)
        super().__init__(model, eps, alpha, steps, restarts=restarts, seed=seed, predict=predict,
                         loss_fn=nonsense_margin_loss(num_classes, nonsense, threshold, outputs))
        self.attack = "NonsenseMarginPGD"


class NoiseToClassPGD(LossPGD):
    """L-infinity PGD (:class:`LossPGD`) on :func:`confident_class_loss`, from *nonsense* inputs (noise
    images, labelled with the nonsense label): it searches the ``eps``-ball around each for an input the
    network decides as a confident real class. With ``predict`` the network's decision rule, an image
    counts as broken when it is no longer decided as nonsense. (The paper's "nonsense" row of Tables 2 and 4
    takes one Eq. 10 step from the noise; this is the iterative attack.)"""

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, restarts: int = 1, *,
                 num_classes: int = 10, nonsense: int | None = None, threshold: float = 0.5, outputs: str = "log",
                 seed: int = 0, predict: Rule | None = None):
        _check_pgd_args(eps, alpha, steps, restarts)
        super().__init__(model, eps, alpha, steps, restarts=restarts, seed=seed, predict=predict,
                         loss_fn=confident_class_loss(num_classes, nonsense, threshold, outputs))
        self.attack = "NoiseToClassPGD"


# --------------------------------------------------------------------------------------------------- BPDA


class _SurrogateBackward(torch.autograd.Function):
    """Forward: the activation's own output ``out`` (a copy, bit for bit); backward: the vector-Jacobian product
    of the surrogate ``g`` at the activation's input ``x``. Only ``x`` receives a gradient."""

    @staticmethod
    def forward(ctx, x, out, g):
        ctx.save_for_backward(x)
        ctx.g = g
        return out.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            (gx,) = torch.autograd.grad(ctx.g(xx), xx, grad)
        return gx, None, None


#: a surrogate rule: an activation module -> the function whose derivative replaces the module's in the
#: backward pass, or None to leave the module as it is
Surrogate = Callable[[nn.Module], "Callable[[torch.Tensor], torch.Tensor] | None"]


@contextlib.contextmanager
def backward_surrogate(model: nn.Module, surrogate: Surrogate):
    """Inside the block, every module ``m`` of ``model`` for which ``surrogate(m)`` returns a function ``g`` keeps
    its forward output but back-propagates through ``g`` instead: the backward pass differentiable approximation
    (BPDA) of Athalye, Carlini and Wagner (2018, "Obfuscated gradients give a false sense of security", Sec.
    4.1), used against k-WTA by Tramer et al. (2020, "On adaptive attacks to adversarial example defenses").

    For a module ``y = f(x)``: forward ``y`` unchanged (the same tensor values, bit for bit); backward
    ``dL/dx = (dg/dx)^T dL/dy`` evaluated at the same ``x``. The module's parameters get no gradient through it.
    Implemented with forward hooks, removed on exit (also on an exception). Raises ValueError if no module of
    ``model`` has a surrogate (an attack that silently differs from nothing would be a silent fallback).

    Example:
        >>> with backward_surrogate(model, straight_through_kwta):          # doctest: +SKIP
        ...     loss = F.cross_entropy(model(x), y); loss.backward()        # k-WTA's backward is the identity
    """
    if not callable(surrogate):
        raise TypeError(f"surrogate must be a callable module -> function or None, got {type(surrogate).__name__}")
    handles = []
    for m in model.modules():
        g = surrogate(m)
        if g is None:
            continue
        if not callable(g):
            raise TypeError(f"the surrogate of {type(m).__name__} must be a function x -> g(x), got {type(g).__name__}")
        handles.append(m.register_forward_hook(
            lambda _m, inputs, out, g=g: _SurrogateBackward.apply(inputs[0], out, g)))
    if not handles:
        raise ValueError("the surrogate matches no module of the model: nothing would change in the backward pass")
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


def straight_through_kwta(module: nn.Module):
    """The straight-through surrogate of k-WTA: the identity (``g(x) = x``) in the backward pass of every
    :class:`symact.activations.KWTA`, so the gradient reaches every unit, not only the winners (Tramer et al.
    2020, Sec. on k-WTA: "a straight-through backward pass"). Other modules: None (unchanged)."""
    from symact.activations import KWTA

    return _identity if isinstance(module, KWTA) else None


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def smoothed_kaf_function(module: nn.Module, tau: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Gaussian smoothing of a KAF ``f(s) = sum_i alpha_i exp(-gamma (s - d_i)^2)`` (one dimension):

        f_tau(s) = E_{z ~ N(0, 1)} f(s + tau z)
                 = sum_i alpha_i (1 + 2 gamma tau^2)^{-1/2} exp(-gamma / (1 + 2 gamma tau^2) (s - d_i)^2),

    the convolution of each Gaussian kernel with the density of ``N(0, tau^2)`` (a Gaussian integral: the
    variances ``1/(2 gamma)`` and ``tau^2`` add). So smoothing is the same KAF with its bandwidth widened,
    ``gamma' = gamma / (1 + 2 gamma tau^2)``, and its coefficients shrunk by ``(1 + 2 gamma tau^2)^{-1/2}``;
    ``tau = 0`` is the KAF itself. Its derivative is the smoothed derivative ``E f'(s + tau z)``, the expected
    slope that EOT over noise at the activation's input would estimate, exactly and without sampling.
    Evaluated by the direct formula (:func:`symact.activations.kaf.kaf_naive`) with the module's current
    coefficients; ``module`` must be a 1-D :class:`symact.activations.KAF`.
    """
    from symact.activations import KAF
    from symact.activations.kaf import kaf_naive

    if not isinstance(module, KAF):
        raise TypeError(f"smoothed_kaf_function needs a KAF module, got {type(module).__name__}")
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau (the smoothing's standard deviation) must be a finite number >= 0, got {tau!r}")
    widen = 1.0 + 2.0 * module.gamma * float(tau) ** 2
    gamma = module.gamma / widen
    alpha = module.alpha.detach() / math.sqrt(widen)
    boundary = module.boundary

    def g(x: torch.Tensor) -> torch.Tensor:
        return kaf_naive(x, alpha.to(x.dtype), boundary, gamma)

    return g


def smoothed_kaf(tau: float) -> Surrogate:
    """The surrogate rule that back-propagates every :class:`symact.activations.KAF` through its Gaussian
    smoothing of standard deviation ``tau`` (:func:`smoothed_kaf_function`); other modules unchanged."""
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau (the smoothing's standard deviation) must be a finite number >= 0, got {tau!r}")
    from symact.activations import KAF

    def rule(module: nn.Module):
        return smoothed_kaf_function(module, tau) if isinstance(module, KAF) else None

    rule.__name__ = rule.__qualname__ = f"smoothed_kaf({tau:g})"
    return rule


def _margin_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return margin_loss(logits, labels).sum()


class BPDAPGD(LossPGD):
    """L-infinity PGD (:class:`LossPGD`: seeded random restarts, each attacking the images still correct)
    through a backward-pass surrogate (:func:`backward_surrogate`): the network's forward pass is its own,
    bit for bit; only the gradient the attack follows goes through ``surrogate``'s functions. The adaptive
    attacks of Athalye et al. (2018, BPDA) and Tramer et al. (2020) on non-smooth or masked activations.

    Args:
        model: maps images in [0, 1] to logits.
        eps, alpha, steps, restarts, seed: as :class:`LossPGD`.
        surrogate: a rule module -> function or None (:func:`straight_through_kwta`, :func:`smoothed_kaf`).
        loss: ``"margin"`` (default: :func:`margin_loss`, as Tramer et al. ascend) or ``"ce"`` (cross-entropy).
        predict: the prediction rule deciding which images later restarts attack.

    Success is judged on the true network (its forward pass), so an image counts as broken only if the real
    network misclassifies it.
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, restarts: int = 1,
                 surrogate: Surrogate = straight_through_kwta, loss: str = "margin", seed: int = 0,
                 predict: Rule | None = None):
        _check_pgd_args(eps, alpha, steps, restarts)
        if loss not in ("margin", "ce"):
            raise ValueError(f"loss must be 'margin' or 'ce', got {loss!r}")
        if not callable(surrogate):
            raise TypeError(f"surrogate must be a callable module -> function or None, got {surrogate!r}")
        super().__init__(model, eps, alpha, steps, restarts, _margin_sum if loss == "margin" else None, seed,
                         predict=predict)
        self.attack = "BPDAPGD"
        self.surrogate, self.loss = surrogate, loss

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with backward_surrogate(self.model, self.surrogate):
            return super().forward(images, labels)
