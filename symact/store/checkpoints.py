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

__all__ = ["checkpoint_root", "has_checkpoint", "remove_checkpoint", "resolve", "unit_checkpoint"]


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
