"""Is it the KAF or the training? The leaderboard's MNIST KAF and ReLU rows retrained by PGD adversarial
training instead of fast adversarial training, everything else held fixed.

Under the leaderboard's recipe (fast adversarial training, Wong et al. 2020: FGSM from a random start, step
1.25 eps) a KAF LeNet-5 on MNIST can overfit catastrophically: it classifies its FGSM training images better
than clean test images while AutoAttack and Square break almost every test image, and the early stop's PGD-5
check, itself a gradient attack, does not fire (:func:`symact.experiments.evaluation.leaderboard_reading` names
both signatures). Multi-step PGD training (Madry et al. 2018) is the standard remedy for catastrophic
overfitting. If the KAF network trained by PGD is as robust as the ReLU network trained by PGD, the failure was
the training's; if it is still less robust, it is the KAF's.

Held fixed, per row: the leaderboard's network, data, epochs, batch, optimiser, cyclic schedule and peak
learning rate (the row's own range test, the leaderboard's ``lr`` unit: the same config gives the same value),
and the leaderboard's evaluation, unit for unit (:func:`symact.benchmark._eval_unit`: official AutoAttack,
Square, PGD with restarts, the transfer attack, the curve, FAB distances, sanity checks, the worst case per
image). Changed: the training attack, PGD with ``pgd_steps`` steps of 2.5 eps / steps from a random start
(:func:`symact.train.train`, ``method="pgd"``), and the transfer surrogate, the PGD-trained ReLU network of the
same seed. Seeds: ``seeds`` (3 at ``paper``, the verdict function's minimum).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from symact import benchmark as bm
from symact.activations.kaf import KAF
from symact.results import Result, experiment
from symact.store.units import Unit

__all__ = ["OverfitConfig", "REACH", "gradient_report", "gradient_table", "gradient_words", "overfit_rows",
           "overfit_table", "overfit_words", "partial_rows", "pgd_at_mnist", "step_words", "stored_overfit_table"]

DATASET = "mnist"


@dataclass(frozen=True)
class OverfitConfig:
    """The leaderboard's MNIST ``protocol`` (its seeds replaced by this experiment's), the ``rows`` retrained
    (ReLU first: the others' transfer surrogate), the PGD training's ``pgd_steps`` and its step ``pgd_alpha``
    (:func:`_config`: 2.5 eps / steps, Madry et al.'s rule; the protocol's own ``alpha`` is the FGSM step,
    1.25 eps, which is not a PGD step)."""

    protocol: bm.Protocol
    rows: tuple[str, ...] = ("relu", "kaf")
    pgd_steps: int = 10
    pgd_alpha: float = 0.075

    def __post_init__(self):
        if not self.rows or self.rows[0] != "relu":
            raise ValueError(f"rows must start with 'relu' (the other rows' transfer surrogate), got {self.rows}")
        if self.pgd_steps < 2:
            raise ValueError(f"pgd_steps must be at least 2 (one step is FGSM training), got {self.pgd_steps}")
        eps = self.protocol.eps
        if not (self.pgd_alpha > 0 and self.pgd_alpha * self.pgd_steps >= eps):
            raise ValueError(f"pgd_alpha must be positive and pgd_steps * pgd_alpha at least eps ({eps}), so that "
                             f"the attack can reach the ball's surface, got {self.pgd_alpha} x {self.pgd_steps}")

    def row_config(self, row: str) -> bm.RowConfig:
        """The leaderboard row's config under this experiment's protocol."""
        base = bm.experiment_for(self.protocol.dataset, row).configs["paper"]
        return dataclasses.replace(base, protocol=self.protocol)


def _config(profile: str, seeds: tuple[int, ...], pgd_steps: int, **protocol_changes) -> OverfitConfig:
    p = dataclasses.replace(bm.protocol(DATASET, profile), seeds=seeds, **protocol_changes)
    return OverfitConfig(p, pgd_steps=pgd_steps, pgd_alpha=2.5 * p.eps / pgd_steps)


def _lr_unit(cfg: OverfitConfig, row: str) -> dict:
    return bm._lr_unit(cfg.row_config(row))


def _train_unit(cfg: OverfitConfig, row: str, seed: int, lr: dict, checkpoint: Path | None = None) -> dict:
    """Unit ``train-<row>-seed<k>``: :func:`symact.benchmark._train_unit`'s recipe with PGD in place of FGSM."""
    from symact.train import train

    rcfg, p = cfg.row_config(row), cfg.protocol
    train_set, test_set = bm._datasets(p)
    torch.manual_seed(seed)
    model = bm._build(rcfg)
    tc = dataclasses.replace(p.train_config(seed, lr["lr_max"]), method="pgd", pgd_steps=cfg.pgd_steps,
                             alpha=cfg.pgd_alpha)
    ckpt = None if checkpoint is None else Path(checkpoint) / "train.ckpt"
    history = train(model, train_set, tc, test=test_set.head(p.n_eval), loss_fn=bm._row_loss(rcfg),
                    progress=False, checkpoint=ckpt)
    return {"seed": seed, "lr_max": lr["lr_max"], "history": history, "params": bm._params(model),
            "params_added": 0, "epoch_seconds": float(np.mean(history["seconds"])),
            "training": f"PGD-{cfg.pgd_steps} (step {tc.alpha:.4g} at eps {tc.eps:.4g}, random start)",
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.benchmark:build_network",
            "builder_kwargs": {"network": p.network, "activation": rcfg.activation,
                               "activation_kwargs": dict(rcfg.activation_kwargs), **dict(p.network_kwargs)}}


def _eval_unit(cfg: OverfitConfig, row: str, seed: int, trained: dict, surrogate: dict | None = None,
               checkpoint=None) -> dict:
    """Unit ``eval-<row>-seed<k>``: the leaderboard's evaluation, the PGD-trained ReLU network of the same seed
    as the transfer surrogate; resumable from ``checkpoint`` as the leaderboard's."""
    sur = None if surrogate is None else {"weights": surrogate["weights"],
                                          "source": f"the PGD-trained relu network, seed {seed} (this experiment)"}
    return bm._eval_unit(cfg.row_config(row), None, seed, trained, sur, checkpoint=checkpoint)


def _units(cfg: OverfitConfig) -> list[Unit]:
    """The range tests, then seed by seed every row's training and evaluation (the declared order is the run's
    priority, so a seed's comparison is finished before the next seed starts, as the leaderboard's rows)."""
    units = [Unit(f"lr-{row}", _lr_unit, (cfg, row)) for row in cfg.rows]
    for k in cfg.protocol.seeds:
        units += [Unit(f"train-{row}-seed{k}", _train_unit, (cfg, row, k), needs=(f"lr-{row}",), checkpoint=True,
                       zoo=True) for row in cfg.rows]
        for row in cfg.rows:
            needs = (f"train-{row}-seed{k}",) + (() if row == "relu" else (f"train-relu-seed{k}",))
            units.append(Unit(f"eval-{row}-seed{k}", _eval_unit, (cfg, row, k), needs=needs, checkpoint=True))
    return units


# Cost on one CPU thread: PGD-10 training is about 5.5 times a fast-adversarial-training epoch (11 gradient
# evaluations a batch against 2): measured, about 36 minutes (ReLU) to 85 (KAF) per network at ``paper``, and a robust
# network's evaluation about 70 minutes (the leaderboard's ReLU units); about 10 CPU-hours in all for 3 seeds
# of both rows, minutes on a GPU (tools/device_kaf.sh). ``quick``: 10,000 training images, PGD-5, one seed.
@experiment(
    "kaf",
    "pgd-at-mnist",
    {
        "smoke": _config("smoke", (0,), 2),
        "quick": _config("quick", (0,), 5, n_train=10000),
        "paper": _config("paper", (0, 1, 2), 10),
    },
    units=_units,
)
def pgd_at_mnist(cfg: OverfitConfig, outputs: dict) -> dict:
    """Per row, a result in :mod:`symact.benchmark`'s layout (``dataset``, ``protocol``, ``lr``, ``seeds``: per
    seed its ``train`` and ``eval``), so that :func:`symact.benchmark.leaderboard_row` and
    :func:`symact.benchmark.compare_to_relu` read it: ``{"protocol", "pgd_steps", "rows": {row: ...}}``."""
    p = cfg.protocol
    rows = {row: _row(cfg, row, p.seeds, outputs) for row in cfg.rows}
    return {"protocol": bm._jsonable(p), "pgd_steps": cfg.pgd_steps, "rows": rows}


def _row(cfg: OverfitConfig, row: str, seeds, outputs: Mapping) -> dict:
    """One row's result in :mod:`symact.benchmark`'s layout from the units' ``outputs``, for ``seeds``."""
    p = cfg.protocol
    entries = [{"seed": k, "eval": outputs[f"eval-{row}-seed{k}"],
                "train": {key: v for key, v in outputs[f"train-{row}-seed{k}"].items() if key not in bm._DROP}}
               for k in seeds]
    return {"dataset": p.dataset, "network": p.network, "activation": row, "protocol": bm._jsonable(p),
            "lr": outputs.get(f"lr-{row}"), "seeds": entries}


def partial_rows(profile: str = "paper") -> dict[str, Result | None] | None:
    """The seeds an unfinished ``kaf/pgd-at-mnist`` run has trained and evaluated, per row, as results with
    ``provenance["partial"] = True`` (None for a row with none), as :func:`symact.benchmark.stored_rows` shows
    an unfinished leaderboard row; None when no seed of any row is finished. Runs nothing."""
    from symact.store.units import stored_units

    cfg = pgd_at_mnist.configs[profile]
    done = stored_units(pgd_at_mnist, profile)
    out = {}
    for row in cfg.rows:
        seeds = [k for k in cfg.protocol.seeds if f"eval-{row}-seed{k}" in done and f"train-{row}-seed{k}" in done]
        out[row] = Result(_row(cfg, row, seeds, done), {"profile": profile, "partial": True}) if seeds else None
    return out if any(r is not None for r in out.values()) else None


# --------------------------------------------------------------------------------------------------- analysis


def overfit_rows(result) -> dict[str, Result]:
    """The stored result's rows as :class:`~symact.results.Result` objects with the run's profile (what
    :func:`symact.benchmark.leaderboard_row` and :func:`~symact.benchmark.compare_to_relu` need)."""
    if not isinstance(result, Mapping) or "rows" not in result:
        raise ValueError("expected a stored kaf/pgd-at-mnist result (a dict with 'rows')")
    prov = dict(getattr(result, "provenance", None) or {})
    return {row: Result(data, {"profile": prov.get("profile")}) for row, data in result["rows"].items()}


def overfit_table(fat: Mapping, pgd: Mapping | None, rows: tuple[str, ...] = ("relu", "kaf")):
    """One line per training and row: the leaderboard's fast-adversarially-trained rows (``fat``: row -> stored
    result, :func:`symact.benchmark.stored_rows`) and this experiment's PGD-trained ones (``pgd``:
    :func:`overfit_rows`, or None), with :func:`symact.benchmark.leaderboard_row`'s numbers and, for each row
    other than ReLU, the verdict words against the ReLU network of the same training (``train_attack_acc``: the
    accuracy on the training attack's own images, FGSM or PGD)."""
    import pandas as pd

    lines = []
    for training, got in (("fast (FGSM)", fat), ("PGD", pgd or {})):
        table = bm.leaderboard({r: got.get(r) for r in rows})
        lines += [{"training": training, **r} for r in table.to_dict("records")]
    return pd.DataFrame(lines)


def stored_overfit_table(fat_profile: str = "paper"):
    """:func:`overfit_table` from stored results only: the leaderboard's rows at ``fat_profile`` and this
    experiment at ``paper`` (the finished seeds of an unfinished run, :func:`partial_rows`, shown with their
    count and no verdict), else ``quick``. Returns ``(table, profile)``, the profile of the PGD-trained rows
    (None when neither is stored)."""
    fat = bm.stored_rows(DATASET, fat_profile, ("relu", "kaf"))
    done = pgd_at_mnist.stored("paper")
    if done is not None:
        return overfit_table(fat, overfit_rows(done)), "paper"
    part = partial_rows("paper")
    if part is not None:
        return overfit_table(fat, part), "paper"
    quick = pgd_at_mnist.stored("quick")
    if quick is None:
        return overfit_table(fat, None), None
    return overfit_table(fat, overfit_rows(quick)), "quick"


def overfit_words(table) -> str:
    """What the table says, in one paragraph: each training's KAF against ReLU by the verdict function (or
    why there is no word yet)."""
    from symact.report import pct

    out = []
    for training, part in table.groupby("training", sort=False):
        done = part[part["clean_mean"].notna()] if "clean_mean" in part else part.iloc[0:0]
        if done.empty:
            out.append(f"Under {training} training nothing is stored yet.")
            continue
        for r in done.to_dict("records"):
            if r["row"] == "relu":
                continue
            base = done[done["row"] == "relu"]
            relu_txt = (f" against ReLU's {pct(base.iloc[0]['robust_mean'])}" if not base.empty else "")
            word = r.get("vs_relu_robust") or "no verdict (the ReLU row is not stored)"
            if not r.get("complete"):
                word = f"no verdict yet ({r['seeds']} seeds)"
            elif not base.empty and not base.iloc[0]["complete"]:
                word = f"no verdict yet (the ReLU row has {base.iloc[0]['seeds']} seeds)"
            out.append(f"Under {training} training, {r['row']} leaves {pct(r['robust_mean'])} robust in the "
                       f"worst case{relu_txt}: {word}.")
            if r["train_attack_acc"] > r["clean_mean"]:
                out.append(f"It classifies the images its own training attack made better "
                           f"({pct(r['train_attack_acc'])}) than clean test images ({pct(r['clean_mean'])}): "
                           "training defeated its attack, not the threat.")
    return " ".join(out)


#: how far beyond its dictionary ``[-L, L]`` a KAF input must lie, in units of the kernel's scale, before every
#: kernel term is below ``exp(-REACH)`` of its peak (about 1 %): there the KAF and its derivative are nearly 0
REACH = 4.5


def _input_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0].flatten(1)


def gradient_report(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, step: float, reach: float = REACH,
                    seed: int = 0) -> dict:
    """What a gradient attack sees at the clean images ``x`` (labels ``y``), in two forward and backward passes.

    ``grad_l1``: per image, the L1 norm of the cross-entropy's gradient with respect to the input, the gain
    ``eps * ||g||_1`` of a first L-infinity step (Goodfellow et al. 2015); an attack that starts where it is
    near 0 has little to follow. ``beyond``: per KAF module of ``model`` (by name), the fraction of its inputs
    farther than ``sqrt(reach / gamma)`` beyond its dictionary ``[-L, L]``, where every kernel term, and so the
    KAF and its derivative, is below ``exp(-reach)`` of its peak: a unit there passes almost no gradient back.
    ``grad_cos``: per image, the cosine between the gradient at ``x`` and at a random point of the L-infinity
    ball of radius ``step`` around it (one PGD step; uniform noise, ``seed``, clipped to [0, 1]): near 1 where
    the gradient a fixed-step attack follows still points the same way one step on, near 0 where the loss
    surface turns within a step. The model is put in eval mode."""
    if x.ndim < 2 or len(x) != len(y):
        raise ValueError(f"need a batch of images and one label each, got shapes {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    model.eval()
    beyond, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, KAF):
            lim = m.boundary + float(np.sqrt(reach / m.gamma))
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name, lim=lim: beyond.__setitem__(
                    name, float((inp[0].detach().abs() > lim).float().mean()))))
    try:
        g = _input_grad(model, x, y)
    finally:
        for h in hooks:
            h.remove()
    gen = torch.Generator().manual_seed(seed)
    noise = (torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1) * step
    g2 = _input_grad(model, (x + noise).clamp(0, 1), y)
    cos = torch.nn.functional.cosine_similarity(g, g2, dim=1)
    return {"grad_l1": g.abs().sum(1).numpy(), "grad_cos": cos.numpy(), "beyond": beyond}


def gradient_table(networks: Mapping[tuple[str, int], torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                   step: float, vanishing: float = 1e-6):
    """One line per network (``networks``: ``(row, seed)`` -> model) of :func:`gradient_report` on the same
    images: the
    median and lower quartile of the input gradient's L1 norm, the share of images whose norm is below
    ``vanishing``, the median cosine between the gradients one ``step`` apart and, for KAF networks, the share
    of KAF inputs beyond the dictionary's reach over all its KAF layers (NaN for networks without KAFs)."""
    import pandas as pd

    lines = []
    for (row, seed), model in networks.items():
        r = gradient_report(model, x, y, step)
        g = r["grad_l1"]
        lines.append({"row": row, "seed": seed, "grad_l1_median": float(np.median(g)),
                      "grad_l1_q1": float(np.quantile(g, 0.25)), "vanishing": float((g < vanishing).mean()),
                      "grad_cos_median": float(np.median(r["grad_cos"])),
                      "kaf_beyond": float(np.mean(list(r["beyond"].values()))) if r["beyond"] else float("nan")})
    return pd.DataFrame(lines)


def gradient_words(table, step: float) -> str:
    """:func:`gradient_table` in one paragraph, per row the means over its seeds."""
    from symact.report import pct

    means = table.groupby("row", sort=False).mean(numeric_only=True)
    parts = []
    for row, m in means.iterrows():
        n = int((table["row"] == row).sum())
        text = (f"{row} ({n} network{'s' if n != 1 else ''}): median input-gradient L1 norm "
                f"{m['grad_l1_median']:.3g}, "
                f"{pct(m['vanishing'])} of the images with a vanishing gradient, median cosine "
                f"{m['grad_cos_median']:.2f} between the gradients one step ({step:g}) apart")
        if not np.isnan(m["kaf_beyond"]):
            text += f", {pct(m['kaf_beyond'], 2)} of the KAF inputs beyond the dictionary's reach"
        parts.append(text)
    if not parts:
        return "No network to measure."
    out = "; ".join(parts) + "."
    if {"relu", "kaf"} <= set(means.index):
        k, r = means.loc["kaf"], means.loc["relu"]
        most = float(table.loc[table["row"] == "kaf", "kaf_beyond"].max())
        out += (f" The KAF networks' gradients are {'larger' if k['grad_l1_median'] > r['grad_l1_median'] else 'smaller'}"
                f" than ReLU's ({k['grad_l1_median'] / r['grad_l1_median']:.1f} times the median) and "
                f"{'turn more' if k['grad_cos_median'] < r['grad_cos_median'] else 'turn no more'} within a step "
                f"(cosine {k['grad_cos_median']:.2f} against {r['grad_cos_median']:.2f}); ")
        out += (f"at most {pct(most, 2)} of any network's KAF inputs lie beyond the dictionary's reach, too few "
                "for vanishing KAFs to hide the gradient." if most < 0.01 else
                f"up to {pct(most)} of a network's KAF inputs lie beyond the dictionary's reach, where the KAF "
                "passes no gradient back.")
    return out


def step_words(table, step: float) -> str:
    """What the leaderboard's APGD-CE column says about PGD's step, in sentences: per row of ``table``
    (:func:`symact.benchmark.leaderboard` rows with ``apgd_ce_mean`` and ``pgd_mean``), APGD-CE alone (the
    cross-entropy gradient PGD follows, with AutoAttack's step size, which halves when progress stalls)
    against PGD alone (a fixed step of ``step``). "" when no row has both."""
    from symact.report import pct

    rows = [r for r in table.to_dict("records")
            if all(r.get(k) is not None and np.isfinite(r.get(k)) for k in ("apgd_ce_mean", "pgd_mean"))]
    if not rows:
        return ""
    out = ("APGD-CE alone, the same cross-entropy gradient followed with AutoAttack's step size, leaves "
           + " and ".join(f"{pct(r['apgd_ce_mean'])} of the test images robust on the {r['row']} networks"
                          for r in rows)
           + f", where PGD's fixed step of {step:g} leaves " + " and ".join(pct(r["pgd_mean"]) for r in rows) + ".")
    if all(r["apgd_ce_mean"] < r["pgd_mean"] for r in rows):
        out += (" The gradient points the way; what misleads PGD is its step, too large for a gradient that turns "
                "within it (the cosines above).")
    return out
