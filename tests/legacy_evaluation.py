"""The evaluation loop of symact.attacks before the evaluation issue (issue 32), frozen: the reference that
symact.evaluation.evaluate and pool must reproduce number for number in their flat keys, so that results
stored before per-image outcomes are comparable with those after. Not part of the library."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torchattacks

from symact.attacks import progress_bar
from symact.data import ImageData
from symact.device import get_device


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
