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
from symact.results import Result, experiment
from symact.store.units import Unit

__all__ = ["OverfitConfig", "overfit_rows", "overfit_table", "overfit_words", "pgd_at_mnist"]

DATASET = "mnist"


@dataclass(frozen=True)
class OverfitConfig:
    """The leaderboard's MNIST ``protocol`` (its seeds replaced by this experiment's), the ``rows`` retrained
    (ReLU first: the others' transfer surrogate) and the PGD training's ``pgd_steps``."""

    protocol: bm.Protocol
    rows: tuple[str, ...] = ("relu", "kaf")
    pgd_steps: int = 10

    def __post_init__(self):
        if not self.rows or self.rows[0] != "relu":
            raise ValueError(f"rows must start with 'relu' (the other rows' transfer surrogate), got {self.rows}")
        if self.pgd_steps < 2:
            raise ValueError(f"pgd_steps must be at least 2 (one step is FGSM training), got {self.pgd_steps}")

    def row_config(self, row: str) -> bm.RowConfig:
        """The leaderboard row's config under this experiment's protocol."""
        base = bm.experiment_for(self.protocol.dataset, row).configs["paper"]
        return dataclasses.replace(base, protocol=self.protocol)


def _config(profile: str, seeds: tuple[int, ...], pgd_steps: int, **protocol_changes) -> OverfitConfig:
    p = dataclasses.replace(bm.protocol(DATASET, profile), seeds=seeds, **protocol_changes)
    return OverfitConfig(p, pgd_steps=pgd_steps)


def _lr_unit(cfg: OverfitConfig, row: str) -> dict:
    return bm._lr_unit(cfg.row_config(row))


def _train_unit(cfg: OverfitConfig, row: str, seed: int, lr: dict, checkpoint: Path | None = None) -> dict:
    """Unit ``train-<row>-seed<k>``: :func:`symact.benchmark._train_unit`'s recipe with PGD in place of FGSM."""
    from symact.train import train

    rcfg, p = cfg.row_config(row), cfg.protocol
    train_set, test_set = bm._datasets(p)
    torch.manual_seed(seed)
    model = bm._build(rcfg)
    tc = dataclasses.replace(p.train_config(seed, lr["lr_max"]), method="pgd", pgd_steps=cfg.pgd_steps)
    ckpt = None if checkpoint is None else Path(checkpoint) / "train.ckpt"
    history = train(model, train_set, tc, test=test_set.head(p.n_eval), loss_fn=bm._row_loss(rcfg),
                    progress=False, checkpoint=ckpt)
    return {"seed": seed, "lr_max": lr["lr_max"], "history": history, "params": bm._params(model),
            "params_added": 0, "epoch_seconds": float(np.mean(history["seconds"])),
            "training": f"PGD-{cfg.pgd_steps} (step 2.5 eps / {cfg.pgd_steps}, random start)",
            "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "builder": "symact.benchmark:build_network",
            "builder_kwargs": {"network": p.network, "activation": rcfg.activation,
                               "activation_kwargs": dict(rcfg.activation_kwargs), **dict(p.network_kwargs)}}


def _eval_unit(cfg: OverfitConfig, row: str, seed: int, trained: dict, surrogate: dict | None = None) -> dict:
    """Unit ``eval-<row>-seed<k>``: the leaderboard's evaluation, the PGD-trained ReLU network of the same seed
    as the transfer surrogate."""
    sur = None if surrogate is None else {"weights": surrogate["weights"],
                                          "source": f"the PGD-trained relu network, seed {seed} (this experiment)"}
    return bm._eval_unit(cfg.row_config(row), None, seed, trained, sur)


def _units(cfg: OverfitConfig) -> list[Unit]:
    units = [Unit(f"lr-{row}", _lr_unit, (cfg, row)) for row in cfg.rows]
    for row in cfg.rows:
        units += [Unit(f"train-{row}-seed{k}", _train_unit, (cfg, row, k), needs=(f"lr-{row}",), checkpoint=True,
                       zoo=True) for k in cfg.protocol.seeds]
    for k in cfg.protocol.seeds:
        for row in cfg.rows:
            needs = (f"train-{row}-seed{k}",) + (() if row == "relu" else (f"train-relu-seed{k}",))
            units.append(Unit(f"eval-{row}-seed{k}", _eval_unit, (cfg, row, k), needs=needs))
    return units


# Cost on one CPU thread: PGD-10 training is about 5.5 times a fast-adversarial-training epoch (11 gradient
# evaluations a batch against 2): about 35 minutes (ReLU) to 55 (KAF) per network at ``paper``, and a robust
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
    rows = {}
    for row in cfg.rows:
        seeds = []
        for k in p.seeds:
            tr = {key: v for key, v in outputs[f"train-{row}-seed{k}"].items() if key not in bm._DROP}
            seeds.append({"seed": k, "train": tr, "eval": outputs[f"eval-{row}-seed{k}"]})
        rows[row] = {"dataset": p.dataset, "network": p.network, "activation": row, "protocol": bm._jsonable(p),
                     "lr": outputs[f"lr-{row}"], "seeds": seeds}
    return {"protocol": bm._jsonable(p), "pgd_steps": cfg.pgd_steps, "rows": rows}


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
    other than ReLU, the verdict words against the ReLU network of the same training."""
    import pandas as pd

    lines = []
    for training, got in (("fast (FGSM)", fat), ("PGD", pgd or {})):
        table = bm.leaderboard({r: got.get(r) for r in rows})
        for r in table.to_dict("records"):
            lines.append({"training": training, **r})
    return pd.DataFrame(lines)


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
            out.append(f"Under {training} training, {r['row']} leaves {pct(r['robust_mean'])} robust in the "
                       f"worst case{relu_txt}: {word}.")
    return " ".join(out)
