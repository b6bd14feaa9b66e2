"""Stored results: one job, loading an experiment's stored result or running and storing it.

Results live in ``results/<chapter>/<name>.<profile>.json`` beside the config, its hash, the git commit,
symact and torch versions, device, seed, wall-clock seconds and date (:mod:`symact.store.provenance`).
:func:`load_or_run` returns a stored result whose config hash matches the current config; a stored result
whose hash does not match is *stale*: it is reported (a printed line and a warning) and recomputed, never
shown silently. ``SYMACT_RECOMPUTE=1`` forces a rerun. The profile comes from the argument, else
``SYMACT_PROFILE``, else ``auto``: the stored ``paper`` result when it exists and is fresh, otherwise ``quick``.

An experiment declared with units (:mod:`symact.store.units`) runs them through Dask and stores each as it
finishes; its combine step then builds the result, which is stored with the units' provenance folded in,
and the units folder is removed.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import warnings

from symact.store.provenance import git_commit, provenance, read_json, write_json
from symact.store.registry import Experiment, _jsonable, active_profile, config_hash
from symact.store.units import run_units

__all__ = ["Result", "load_or_run", "stored_result", "stored_status"]

_log = logging.getLogger("symact")


class Result(dict):
    """A stored result: the experiment's dict plus ``result.provenance``."""

    provenance: dict

    def __init__(self, data: dict, provenance: dict):
        super().__init__(data)
        self.provenance = provenance

    def caption(self) -> str:
        """One-line provenance for tables and figures built from this result."""
        p = self.provenance
        commit = p["commit"][:10] + ("+dirty" if p["commit"].endswith("+dirty") else "")
        return (
            f"Profile {p['profile']}, {p['device']}, {p['date'][:10]}, commit {commit}, "
            f"{p['wall_seconds']:.0f} s, seed {p['seed']} ({p['chapter']}/{p['experiment']}.{p['profile']}.json)"
        )


def stored_status(exp: Experiment, prof: str) -> str:
    """``"fresh"``, ``"stale"`` or ``"missing"`` for the stored result of ``exp`` at ``prof``."""
    d = read_json(exp.path(prof))
    if d is None:
        return "missing"
    return "fresh" if d.get("provenance", {}).get("config_hash") == config_hash(exp.configs[prof]) else "stale"


def stored_result(exp: Experiment, prof: str) -> Result | None:
    """The stored result of ``exp`` at ``prof`` if it is fresh, else None; never runs anything."""
    if stored_status(exp, prof) != "fresh":
        return None
    d = read_json(exp.path(prof))
    return Result(d["result"], d["provenance"])


def _say_stale(exp: Experiment, prof: str, action: str) -> None:
    msg = f"symact: stored result {exp.path(prof)} is STALE (its config no longer matches the code); {action}."
    print(msg)
    warnings.warn(msg, stacklevel=3)


_UNIT_FIELDS = ("commit", "device", "date", "wall_seconds", "threads", "resumed_from_checkpoint", "loaded", "zoo")


def load_or_run(exp: Experiment, profile: str | None = None, recompute: bool | None = None, *,
                workers: int | None = None, scheduler: str | None = None, client=None, **overrides) -> Result:
    """Load the stored result of ``exp`` for the profile, or run and store it.

    ``overrides`` replace config fields (a result run with overrides is returned but not stored, since it no
    longer matches the profile's config). ``workers``, ``scheduler``, ``client``: where the units of a
    unit experiment run (:func:`symact.store.units.open_client`; default in-process).
    """
    prof = active_profile(profile)
    if recompute is None:
        recompute = os.environ.get("SYMACT_RECOMPUTE", "0") not in ("", "0")
    if prof == "auto":
        status = stored_status(exp, "paper")
        if status == "fresh" and not recompute and not overrides:
            return stored_result(exp, "paper")
        if status == "stale":
            _say_stale(exp, "paper", "showing the quick profile instead")
        prof = "quick"
    config = exp.configs[prof]
    if overrides:
        config = dataclasses.replace(config, **overrides)
    path = exp.path(prof)
    if not recompute and not overrides:
        status = stored_status(exp, prof)
        if status == "fresh":
            return stored_result(exp, prof)
        if status == "stale":
            _say_stale(exp, prof, "recomputing")
    commit = git_commit()  # the code that runs, not whatever HEAD is when a long run ends
    store = not overrides
    if recompute and store:
        shutil.rmtree(exp.units_dir(prof), ignore_errors=True)
    start = time.perf_counter()
    extra = {}
    if exp.units is None:
        data = _jsonable(exp.fn(config))
        wall = time.perf_counter() - start
    else:
        run = run_units(exp, config, prof, store, workers=workers, scheduler=scheduler, client=client)
        begin = time.perf_counter()
        data = _jsonable(exp.fn(config, run.outputs))
        wall = run.compute_seconds + time.perf_counter() - begin  # compute seconds, earlier runs' units included
        extra = {"elapsed_seconds": round(time.perf_counter() - start, 2),
                 "units": {k: {f: p[f] for f in _UNIT_FIELDS if f in p} for k, p in run.provenance.items()}}
    prov = {"chapter": exp.chapter, "experiment": exp.name, "function": f"{exp.fn.__module__}.{exp.fn.__qualname__}",
            "profile": prof, "config": _jsonable(config), **provenance(config, commit, wall),
            "seed": getattr(config, "seed", None), **extra}
    if store:
        write_json(path, prov, data)
        shutil.rmtree(exp.units_dir(prof), ignore_errors=True)
        _log.info("stored %s (%.0f s)", path, prov["wall_seconds"])
    return Result(data, prov)
