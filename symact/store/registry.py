"""The registry of experiments: one job, naming experiments and their configs.

An *experiment* is a function of a frozen dataclass config returning a JSON-serialisable dict. It is declared
once with :func:`experiment`, which registers it in :data:`REGISTRY` under ``(chapter, name)`` with one config
per profile (:data:`PROFILES`):

- ``smoke``: seconds, tiny subsets; CI executes every chapter with it.
- ``quick``: a chapter in at most 15 minutes on 2 CPU cores, real data.
- ``paper``: the source paper's protocol; hours, a GPU recommended.

A long experiment declares its *units of work* (``units=``, see :mod:`symact.store.units`): the decorated
function is then its combine step, ``combine(config, outputs) -> dict``.

The config hash (:func:`config_hash`) names a config in every stored file; it is computed from the config's
class name and its fields only, so that stored results stay fresh while the code around them changes.
This module knows where results live (:func:`results_dir`) but reads and writes nothing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["PROFILES", "REGISTRY", "REPO_ROOT", "Experiment", "active_profile", "config_hash", "experiment",
           "results_dir"]

PROFILES = ("smoke", "quick", "paper")
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def results_dir() -> Path:
    """Where results are stored: ``$SYMACT_RESULTS`` or ``results/`` at the repository root."""
    env = os.environ.get("SYMACT_RESULTS")
    return Path(env) if env else REPO_ROOT / "results"


def active_profile(name: str | None = None) -> str:
    """The active profile: ``name``, else ``$SYMACT_PROFILE``, else ``"auto"``."""
    p = name or os.environ.get("SYMACT_PROFILE") or "auto"
    if p not in PROFILES + ("auto",):
        raise ValueError(f"unknown profile {p!r}; expected one of {', '.join(PROFILES)} or 'auto'")
    return p


def _jsonable(obj: Any) -> Any:
    """``obj`` as JSON types: dataclasses and dicts as dicts (string keys), tuples as lists, tensors and arrays
    as nested lists, NumPy scalars as Python numbers, NaN and infinities as None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN or infinity
    return obj


def config_hash(config: Any) -> str:
    """sha256 (first 16 hex digits) of the config's canonical JSON, class name included.

    Never change this computation: every stored result is matched to its config by it.
    """
    payload = {"class": type(config).__name__, "fields": _jsonable(config)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass(eq=False)
class Experiment:
    """A registered experiment: ``fn(config) -> dict`` with one config per profile; or, when ``units`` is given,
    ``units(config) -> list[Unit]`` and the combine step ``fn(config, outputs) -> dict``.

    Calling it (``exp(profile="quick")``) loads its stored result or runs and stores it
    (:func:`symact.store.results.load_or_run`, imported when called: the store sits above the registry).
    """

    chapter: str
    name: str
    fn: Callable[..., dict]
    configs: dict
    units: Callable[[Any], list] | None = None
    #: the profiles whose configs are a converged protocol (the source paper's, or one whose training the
    #: experiment shows to have converged); the zoo keeps the networks trained at these profiles
    converged: tuple[str, ...] = ("paper",)

    def path(self, prof: str) -> Path:
        """The stored result: ``results/<chapter>/<name>.<prof>.json``."""
        return results_dir() / self.chapter / f"{self.name}.{prof}.json"

    def units_dir(self, prof: str) -> Path:
        """The stored units of an unfinished run: ``results/<chapter>/<name>.<prof>.units/``."""
        return results_dir() / self.chapter / f"{self.name}.{prof}.units"

    def __call__(self, profile: str | None = None, recompute: bool | None = None, **overrides):
        from symact.store.results import load_or_run

        return load_or_run(self, profile=profile, recompute=recompute, **overrides)

    def run(self, config, **runner) -> dict:
        """Run ``config`` without storing anything: ``fn(config)``, or every unit (``runner``: ``workers``,
        ``scheduler`` or ``client``, as :func:`symact.store.units.run_units`) and the combine step."""
        if self.units is None:
            return self.fn(config)
        from symact.store.units import run_units

        return self.fn(config, run_units(self, config, **runner).outputs)

    def stored(self, prof: str):
        """The stored result at ``prof`` if it is fresh, else None; never runs anything (for results too costly
        to compute while building the book)."""
        from symact.store.results import stored_result

        return stored_result(self, prof)


REGISTRY: dict[tuple[str, str], Experiment] = {}


def experiment(chapter: str, name: str, configs: dict, units: Callable[[Any], list] | None = None,
               converged: tuple[str, ...] = ("paper",)) -> Callable[[Callable], Experiment]:
    """Declare and register an experiment.

    Example:
        >>> @experiment("fundamentals", "demo", {"smoke": Cfg(epochs=1), "quick": Cfg(), "paper": Cfg(epochs=20)})
        ... def demo(cfg):                                       # doctest: +SKIP
        ...     return {"accuracy": 0.99}
        >>> demo()                                               # doctest: +SKIP

    ``units``: for a long experiment, ``units(config) -> list[Unit]`` (:class:`symact.store.units.Unit`), cheap
    (it declares work, it computes nothing: no data loaded); the decorated function is then the combine step
    ``combine(config, outputs)``, ``outputs`` the units' values by key.

    ``converged``: the profiles whose configs are a converged protocol, ``("paper",)`` unless the experiment
    says otherwise (a ``quick`` config that is the whole published recipe, say); the zoo keeps the networks of
    ``zoo`` units trained at these profiles. ``smoke`` never counts.
    """
    missing = [p for p in PROFILES if p not in configs]
    if missing:
        raise ValueError(f"experiment {chapter}/{name} lacks configs for profiles {missing}")
    if "smoke" in converged or not set(converged) <= set(PROFILES):
        raise ValueError(f"converged must name profiles among quick and paper, got {converged!r}")

    def wrap(fn: Callable) -> Experiment:
        exp = Experiment(chapter, name, fn, dict(configs), units, tuple(converged))
        functools.update_wrapper(exp, fn, updated=())
        REGISTRY[(chapter, name)] = exp
        return exp

    return wrap
