"""Checkpoints of units in progress: one job, saying where a unit checkpoints so that it resumes.

A long unit (a network trained for hours) is declared with ``checkpoint=True``
(:class:`symact.store.units.Unit`); the runner then passes it ``checkpoint=<folder>``, a folder of its own that
is the only place it writes (e.g. ``symact.train.train(..., checkpoint=folder / "train.ckpt")``, which saves
the state of training after every epoch and resumes from it). Run again after an interruption, the unit finds
its folder as it left it and resumes from its last epoch, with the numbers an uninterrupted run gives. The
folder is removed once the unit has returned.

The folder lives on the machine that runs the unit, under :func:`checkpoint_root`:
``$SYMACT_CHECKPOINTS``, else ``~/.cache/symact/checkpoints``; never in git. Its path below the root
(:func:`unit_checkpoint`) names the experiment, profile, config hash and unit, so a changed config never
resumes from another config's training. On a cluster, set ``SYMACT_CHECKPOINTS`` to a shared file system so
that a unit moved to another worker resumes there too.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["checkpoint_root", "has_checkpoint", "load_matching", "remove_checkpoint", "resolve", "rng_state",
           "save_atomic", "set_rng_state", "stage", "unit_checkpoint"]


def checkpoint_root() -> Path:
    """``$SYMACT_CHECKPOINTS``, else ``~/.cache/symact/checkpoints``, on the machine that asks."""
    env = os.environ.get("SYMACT_CHECKPOINTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "symact" / "checkpoints"


def unit_checkpoint(chapter: str, name: str, profile: str, chash: str, key: str) -> PurePosixPath:
    """The checkpoint folder of unit ``key``, relative to :func:`checkpoint_root` (resolved where the unit runs)."""
    return PurePosixPath(chapter, f"{name}.{profile}", chash, key)


def resolve(relative: PurePosixPath | str) -> Path:
    """``relative`` (:func:`unit_checkpoint`) under this machine's :func:`checkpoint_root`."""
    return checkpoint_root() / Path(relative)


def has_checkpoint(relative: PurePosixPath | str) -> bool:
    """Whether the unit's folder holds anything (a run to resume)."""
    folder = resolve(relative)
    return folder.is_dir() and any(folder.iterdir())


def remove_checkpoint(relative: PurePosixPath | str) -> None:
    """Remove the unit's folder (it has returned; its value is what counts now)."""
    folder, root = resolve(relative), checkpoint_root()
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:  # the empty folders above it too, up to the root
        if parent == root or root not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break


def rng_state(device=None) -> dict:
    """torch's random state on the CPU, and on ``device`` when it is a CUDA device: what an attack or a
    training draws from next (the attacks of :mod:`symact.attacks` and torchattacks draw from torch only)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def set_rng_state(state: dict, device=None) -> None:
    """Restore what :func:`rng_state` saved (the CUDA part only on a CUDA ``device``)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    torch.set_rng_state(state["cpu"])
    if dev.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], dev)


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` through a temporary file and a rename, so that an interruption never leaves a
    half-written checkpoint (the previous one stays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_matching(path: str | Path | None, fingerprint: str, what: str) -> dict | None:
    """The state a run saved at ``path`` (``torch.save`` of a dict with its ``fingerprint``), or None when there is
    none. Raises ValueError naming both fingerprints when the file was written by a run of another kind
    (``what``: "config, model or data set", "evaluation"): resuming it would mix two runs."""
    if path is None or not Path(path).exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise ValueError(f"checkpoint {path} was written for another {what} (it has {state.get('fingerprint')!r}, "
                         f"this run {fingerprint!r}); remove it to start afresh")
    return state


def _loadable(obj: Any) -> Any:
    """``obj`` with numpy values as Python ones, so that ``torch.load(weights_only=True)`` reads it back."""
    if isinstance(obj, dict):
        return {k: _loadable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_loadable(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def stage(folder: str | Path | None, name: str, fn: Callable[[], Any], device=None) -> Any:
    """``fn()``, once per unit: a step of a resumable unit that is not a training (an evaluation's attacks).

    With ``folder`` (the unit's checkpoint folder), the value is saved as ``<folder>/<name>.pt`` with torch's
    random state after it; called again after an interruption, the saved value is returned and that random
    state restored, so that the steps after it draw the numbers an uninterrupted run draws. ``fn`` may itself
    checkpoint inside the folder (:func:`symact.evaluation.evaluate` does per batch). Without ``folder``:
    ``fn()``. Values must be dicts, lists, numbers, strings and tensors (numpy values become Python ones).
    """
    if folder is None:
        return fn()
    path = Path(folder) / f"{name}.pt"
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        set_rng_state(saved["rng"], device)
        return saved["value"]
    value = _loadable(fn())
    save_atomic({"value": value, "rng": rng_state(device)}, path)
    return value
