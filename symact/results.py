"""Profiles, named experiments and stored results with provenance.

An *experiment* is a function of a frozen dataclass config returning a
JSON-serialisable dict. It is declared once with :func:`experiment`, which
registers it under ``(chapter, name)`` with one config per profile:

- ``smoke``: seconds, tiny subsets; CI executes every chapter with it.
- ``quick``: a chapter in at most 15 minutes on 2 CPU cores, real data.
- ``paper``: the source paper's protocol; hours, a GPU recommended.

The profile comes from the argument, else ``SYMACT_PROFILE``, else ``auto``:
the stored ``paper`` result when it exists and is fresh, otherwise ``quick``.

Results live in ``results/<chapter>/<name>.<profile>.json`` beside the config,
its hash, the git commit, symact and torch versions, device, seed, wall-clock
seconds and date. :func:`load_or_run` returns a stored result whose config hash
matches the current config; a stored result whose hash does not match is
*stale*: it is reported (a printed line and a warning) and recomputed, never
shown silently. ``SYMACT_RECOMPUTE=1`` forces a rerun.

A long experiment can be *resumable*: it wraps each costly piece (one seed,
one network) in :func:`part`, which stores the piece's value at once in
``results/<chapter>/<name>.<profile>.parts/<key>.json`` with its own
provenance. A run that is stopped (a session that ends, a machine taken back)
loses only the piece in progress: the next run of the same config, in any
process or on any machine with those files, loads the finished pieces and
computes the rest. A part that trains a network stores its weights beside it
(``<key>.pt``), so that later parts resume on the same network, and one that
trains for hours can checkpoint its training (:func:`part_checkpoint`), so
that even the piece in progress resumes where it stopped. When the whole
result is stored the parts are folded into its provenance and their folder is
removed. Several processes can share one run (``$SYMACT_WORKER``, see
:func:`_worker`; ``python -m symact run NAME --workers n`` starts them).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import symact
from symact.device import device_name

__all__ = [
    "PROFILES",
    "REGISTRY",
    "Experiment",
    "Result",
    "config_hash",
    "experiment",
    "load_or_run",
    "active_profile",
    "part",
    "part_checkpoint",
    "results_dir",
    "stored_status",
]

PROFILES = ("smoke", "quick", "paper")
REPO_ROOT = Path(__file__).resolve().parent.parent


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
    """sha256 (first 16 hex digits) of the config's canonical JSON, class name included."""
    payload = {"class": type(config).__name__, "fields": _jsonable(config)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _git_commit() -> str:
    """The repository's HEAD, with ``+dirty`` if ``symact/`` has uncommitted changes or new files.

    ``SYMACT_COMMIT`` overrides it, for copies of the tree without ``.git`` (the GPU machine).
    """
    if os.environ.get("SYMACT_COMMIT"):
        return os.environ["SYMACT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "symact"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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


@dataclasses.dataclass(eq=False)
class Experiment:
    """A registered experiment: ``fn(config) -> dict`` with one config per profile."""

    chapter: str
    name: str
    fn: Callable[[Any], dict]
    configs: dict

    def path(self, prof: str) -> Path:
        return results_dir() / self.chapter / f"{self.name}.{prof}.json"

    def __call__(self, profile: str | None = None, recompute: bool | None = None, **overrides) -> Result:
        return load_or_run(self, profile=profile, recompute=recompute, **overrides)

    def run(self, config) -> dict:
        return self.fn(config)

    def parts_dir(self, prof: str) -> Path:
        return results_dir() / self.chapter / f"{self.name}.{prof}.parts"

    def parts(self, prof: str) -> dict:
        """The fresh stored parts (see :func:`part`) of an unfinished run at profile ``prof``: key -> value.
        Never runs anything; empty when the run has finished or has not started."""
        want = config_hash(self.configs[prof])
        found = {p.stem: _read_fresh(p, want) for p in sorted(self.parts_dir(prof).glob("*.json"))}
        found = {k: d for k, d in found.items() if d}
        nets = {d["provenance"]["weights"] for d in found.values() if "weights" in d["provenance"]}
        return {k: d["result"] for k, d in found.items()  # not those computed on a network since trained again
                if not nets or "weights" in d["provenance"] or d["provenance"].get("network") in nets}

    def stored(self, prof: str) -> Result | None:
        """The stored result at profile ``prof`` if it is fresh, else ``None``; never runs anything.

        For results too costly to compute while building the book (GPU-only runs).
        """
        if stored_status(self, prof) != "fresh":
            return None
        d = _read(self.path(prof))
        return Result(d["result"], d["provenance"])


REGISTRY: dict[tuple[str, str], Experiment] = {}


def experiment(chapter: str, name: str, configs: dict) -> Callable[[Callable], Experiment]:
    """Declare and register an experiment.

    Example:
        >>> @experiment("fundamentals", "demo", {"smoke": Cfg(epochs=1), "quick": Cfg(), "paper": Cfg(epochs=20)})
        ... def demo(cfg):                                       # doctest: +SKIP
        ...     return {"accuracy": 0.99}
        >>> demo()                                               # doctest: +SKIP
    """
    missing = [p for p in PROFILES if p not in configs]
    if missing:
        raise ValueError(f"experiment {chapter}/{name} lacks configs for profiles {missing}")

    def wrap(fn: Callable) -> Experiment:
        exp = Experiment(chapter, name, fn, dict(configs))
        functools.update_wrapper(exp, fn, updated=())
        REGISTRY[(chapter, name)] = exp
        return exp

    return wrap


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _read_fresh(path: Path, want: str) -> dict | None:
    """The stored file at ``path`` if its config hash is ``want``, else None."""
    d = _read(path)
    return d if d is not None and d.get("provenance", {}).get("config_hash") == want else None


def stored_status(exp: Experiment, prof: str) -> str:
    """``"fresh"``, ``"stale"`` or ``"missing"`` for the stored result of ``exp`` at ``prof``."""
    d = _read(exp.path(prof))
    if d is None:
        return "missing"
    return "fresh" if d.get("provenance", {}).get("config_hash") == config_hash(exp.configs[prof]) else "stale"


def _say_stale(exp: Experiment, prof: str, action: str) -> None:
    msg = (
        f"symact: stored result {exp.path(prof)} is STALE (its config no longer matches the code); {action}."
    )
    print(msg)
    warnings.warn(msg, stacklevel=3)


_log = logging.getLogger("symact")
_PART_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*")
_RUNS: list[dict] = []   # the stored runs in progress, innermost last: parts folder, config hash, parts' provenance


def _provenance(config, commit: str, wall: float) -> dict:
    return {
        "config_hash": config_hash(config),
        "commit": commit,
        "symact_version": symact.__version__,
        "torch_version": torch.__version__,
        "device": device_name(),
        "wall_seconds": round(wall, 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _write(path: Path, prov: dict, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"provenance": prov, "result": data}, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def part(key: str, fn: Callable[[], Any], module: torch.nn.Module | None = None) -> Any:
    """``fn()``, made JSON-ready, as one resumable part of the experiment being run (see the module docstring).

    Inside a run that :func:`load_or_run` stores, a fresh stored part under ``key`` is loaded instead of
    calling ``fn``, and a newly computed one is stored before it is returned; elsewhere (a run with overrides,
    or no experiment at all) it is just ``fn()``. ``key`` names a file: letters, digits and ``_.=+-``,
    unique within the experiment. Loaded and computed values are identical, so a resumed run gives the result
    an uninterrupted one would.

    ``module``: for a part that trains a network in place (``fn`` trains ``module`` and returns, say, its
    training history): its weights are stored too, in ``<key>.pt``, and a resumed run loads them into
    ``module`` (on the CPU; move it where it belongs) instead of training it again. Later parts then attack
    or measure the very network an uninterrupted run would have. The network's fingerprint (a hash of its
    weights) is stored with it (``weights``) and with every later part (``network``). Weights lost, the network
    is trained again; a later part is kept if the new network has its fingerprint (seeded CPU training
    repeats bit for bit on one machine with one thread count, not always across machines) and is stale,
    computed again, if not.
    """
    if not isinstance(key, str) or not _PART_KEY.fullmatch(key):
        raise ValueError(f"part key must be letters, digits and '_.=+-' (not first), got {key!r}")
    if module is not None and not isinstance(module, torch.nn.Module):
        raise TypeError(f"part's module must be a torch.nn.Module whose weights fn trains, got {type(module).__name__}")
    if not _RUNS or _RUNS[-1] is None:
        return _jsonable(fn())
    run = _RUNS[-1]
    if key in run["keys"]:
        raise ValueError(f"part key {key!r} is used twice in one experiment")
    run["keys"].append(key)
    path = run["dir"] / f"{key}.json"
    weights = path.with_suffix(".pt")
    d = _read_fresh(path, run["hash"])
    if d is not None and module is None and d["provenance"].get("network") != run.get("network"):
        _log.warning("part %s was computed on another network than this run's; computing it again", path)
        d = None
    worker, workers = run["worker"]
    if (len(run["keys"]) - 1) % workers != worker and (d is None or (module is not None and not weights.exists())):
        # another worker's part, not stored yet (see _worker): a network that later parts use is waited for;
        # any other part is left for this pass, which goes on to this worker's own parts
        if module is None:
            run["pending"].append(path)
            return None
        run["waited"] += _wait(run, lambda: _read_fresh(path, run["hash"]) is not None and weights.exists())
        d = _read_fresh(path, run["hash"])
    if d is not None and (module is None or weights.exists()):
        if module is not None:
            module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            run["network"] = _fingerprint(module)
            if d["provenance"].get("weights", run["network"]) != run["network"]:
                raise ValueError(f"{weights} does not hold the network {path} was stored with (fingerprint "
                                 f"{d['provenance']['weights']}, found {run['network']}): remove both to train "
                                 "it again")
        run["parts"][key] = {**d["provenance"], "loaded": True}
        return d["result"]
    start, ckpt = time.perf_counter(), run["dir"] / f"{key}.ckpt"
    resumed = ckpt.exists()
    run["computing"] = ckpt
    try:
        value = _jsonable(fn())
    finally:
        run["computing"] = None
    prov = {**run["names"], "part": key, **_provenance(run["config"], _git_commit(), time.perf_counter() - start)}
    if resumed:  # wall_seconds counts this process only
        prov["resumed_from_checkpoint"] = True
    if module is None and run.get("network"):
        prov["network"] = run["network"]
    if module is not None:  # the weights first: the JSON file marks a finished part
        prov["weights"] = run["network"] = _fingerprint(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".pt.tmp")
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, tmp)
        tmp.replace(weights)
    _write(path, prov, value)
    ckpt.unlink(missing_ok=True)
    _log.info("stored part %s (%.0f s)", path, prov["wall_seconds"])
    run["parts"][key] = prov
    return value


def _fingerprint(module: torch.nn.Module) -> str:
    """A hash of ``module``'s state dict (names, dtypes and values): which network a part was computed on."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        v = v.detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}:{v.dtype}:".encode())
        h.update(v.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def part_checkpoint() -> Path | None:
    """Where the :func:`part` being computed may checkpoint a long training (:func:`symact.train.train`'s
    ``checkpoint``): ``<key>.ckpt`` in the run's parts folder; None outside a part of a stored run.

    Like a part's weights (``*.pt``) it is kept out of git; copied with the parts folder, it lets another
    clone resume the network mid-training. :func:`part` removes it once the part is stored.
    """
    run = _RUNS[-1] if _RUNS else None
    return run.get("computing") if run else None


_POLL_SECONDS = 5.0  # the longest pause of a worker waiting for another's part


def _wait(run: dict, ready: Callable[[], bool]) -> float:
    """Wait until ``ready()``, polling with backoff; raise :class:`_Finished` if the whole result is stored
    meanwhile. Returns the seconds waited."""
    start, pause = time.perf_counter(), 0.05
    while not ready():
        if _read_fresh(run["result"], run["hash"]) is not None:
            raise _Finished
        time.sleep(pause)
        pause = min(2 * pause, _POLL_SECONDS)
    return time.perf_counter() - start


class _Finished(Exception):
    """Raised in a worker that waits for a part when another worker has already stored the whole result."""


def _worker() -> tuple[int, int]:
    """``$SYMACT_WORKER`` as ``(k, n)``: this process is worker ``k`` of ``n`` running one experiment at once.

    Worker ``k`` computes the parts whose index (in the order the experiment asks for them) is ``k`` modulo
    ``n``. It passes over the others' unfinished parts (:func:`part` returns None for them) so that the
    workers compute at the same time, except a part that trains a ``module``, which it waits for; at the end
    of a pass that met unfinished parts it waits for them and runs the experiment again, loading every
    part. So a part's value must not feed the computation of another part (their weights may), and an error
    in a pass that met unfinished parts (code that used their None) only starts the next pass. Worker 0
    stores the whole result, the others only return it.
    Unset: ``(0, 1)``, one process computing every part. ``python -m symact run --workers n`` starts them.
    """
    text = os.environ.get("SYMACT_WORKER", "").strip()
    if not text:
        return 0, 1
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not int(m[1]) < int(m[2]):
        raise ValueError(f"SYMACT_WORKER must be 'k/n' with 0 <= k < n (this process is worker k of n), got {text!r}")
    return int(m[1]), int(m[2])


def load_or_run(exp: Experiment, profile: str | None = None, recompute: bool | None = None, **overrides) -> Result:
    """Load the stored result of ``exp`` for the profile, or run and store it.

    ``overrides`` replace config fields (a result run with overrides is returned
    but not stored, since it no longer matches the profile's config).
    """
    prof = active_profile(profile)
    if recompute is None:
        recompute = os.environ.get("SYMACT_RECOMPUTE", "0") not in ("", "0")
    if prof == "auto":
        status = stored_status(exp, "paper")
        if status == "fresh" and not recompute and not overrides:
            d = _read(exp.path("paper"))
            return Result(d["result"], d["provenance"])
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
            d = _read(path)
            return Result(d["result"], d["provenance"])
        if status == "stale":
            _say_stale(exp, prof, "recomputing")
    commit = _git_commit()  # the code that runs, not whatever HEAD is when a long run ends
    parts_dir = exp.parts_dir(prof)
    worker, workers = _worker()
    if recompute and workers > 1:
        raise ValueError("SYMACT_WORKER with a recompute: remove the parts folder first, then start the workers")
    if recompute and not overrides:
        shutil.rmtree(parts_dir, ignore_errors=True)
    while True:  # one pass, or (workers) passes until one finds every part stored
        run = None if overrides else {"dir": parts_dir, "hash": config_hash(config), "config": config, "parts": {},
                                      "names": {"chapter": exp.chapter, "experiment": exp.name, "profile": prof},
                                      "worker": (worker, workers), "result": path, "waited": 0.0, "keys": [],
                                      "pending": []}
        _RUNS.append(run)
        start = time.perf_counter()
        try:
            data = _jsonable(exp.fn(config))
        except _Finished:  # another worker stored the whole result
            d = _read(path)
            return Result(d["result"], d["provenance"])
        except Exception:
            if not (run and run["pending"]):
                raise
            _log.info("pass with others' unfinished parts ended early; waiting for them")
        finally:
            _RUNS.pop()
        if not (run and run["pending"]):
            break
        try:
            _wait(run, lambda: all(_read_fresh(p, run["hash"]) is not None for p in run["pending"]))
        except _Finished:
            d = _read(path)
            return Result(d["result"], d["provenance"])
    wall = time.perf_counter() - start - (run["waited"] if run else 0.0)
    prov = {"chapter": exp.chapter, "experiment": exp.name, "function": f"{exp.fn.__module__}.{exp.fn.__qualname__}",
            "profile": prof, "config": _jsonable(config), **_provenance(config, commit, wall),
            "seed": getattr(config, "seed", None)}
    if run is not None and run["parts"]:
        # the compute time of parts loaded from earlier runs counts too; each part keeps its own commit and device
        loaded = [p for p in run["parts"].values() if p.get("loaded")]
        prov["wall_seconds"] = round(wall + sum(p["wall_seconds"] for p in loaded), 2)
        prov["parts"] = {k: {f: p[f] for f in ("commit", "device", "date", "wall_seconds", "resumed_from_checkpoint")
                             if f in p} for k, p in run["parts"].items()}
    if not overrides and worker == 0:
        _write(path, prov, data)
        shutil.rmtree(parts_dir, ignore_errors=True)
        _log.info("stored %s (%.0f s)", path, prov["wall_seconds"])
    return Result(data, prov)
