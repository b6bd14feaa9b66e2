"""Units of long runs: one job, running an experiment's units of work with Dask and storing each one as it
finishes.

A long experiment declares its units (:class:`Unit`): a key, a plain top-level function (picklable, so that
it runs in any process) with its arguments, and the keys of the units it needs, whose values are passed to it
as further arguments. Units return values: metrics, per-image outcomes, trained weights as a state dict of CPU
tensors. The experiment's own function is then the *combine step*, ``combine(config, outputs)``, which builds
the result from every unit's value::

    def units(cfg):
        return [Unit("train", train_net, (cfg,), checkpoint=True, resources=gpu_resources()),
                *[Unit(f"attack-{e}", attack, (cfg, e), needs=("train",)) for e in cfg.eps]]

    @experiment("chapter", "name", configs, units=units)
    def combine(cfg, outputs):
        return {"train_loss": outputs["train"]["history"]["train_loss"], ...}

:func:`run_units` runs them through a ``distributed.Client``, one code path at every scale
(:func:`open_client`): in-process for one worker (nothing spawned), a ``LocalCluster`` of single-thread
worker processes for ``workers=n``, or an existing cluster (``scheduler="tcp://host:8786"``). Only the
process that runs the experiment (the driver) writes the store: each unit's value, as it finishes, in
``results/<chapter>/<name>.<profile>.units/<key>.json`` with its own provenance (commit, device, wall
seconds, date, thread count), its tensors beside it in ``<key>.safetensors`` (ignored by git). A stored unit
is never computed again, so a run stopped anywhere goes on where it stopped. A unit that raises is reported
with its key and traceback while the others go on; the run then raises :class:`UnitsFailed`, and a rerun
computes only what is missing. A unit always runs with its own thread count (``threads``, default 1), so its
numbers do not depend on how many workers run beside it. A unit stored with weights records their
fingerprint, and every unit that needs it records the fingerprints it was computed on: weights lost (a clone
without the ignored files) are computed again, and the stored units computed on other weights with them.

A training unit marked ``zoo=True`` returns ``{"weights": state_dict, ...}``; at a converged profile (``paper``,
or those the experiment names in ``experiment(..., converged=...)``) its
weights go to the zoo (:mod:`symact.zoo`) under ``<chapter>/<experiment>`` and the unit's key, and a network
in the zoo with the config's hash is loaded instead of trained again (:func:`_zoo_lookup`, :func:`_zoo_save`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import socket
import sys
import time
import traceback
import uuid
from typing import Any, Callable, Mapping

import numpy as np
import torch

from symact.device import device_name
from symact.store import checkpoints
from symact.store.provenance import fingerprint, git_commit, provenance, read_fresh, write_json
from symact.store.registry import config_hash

__all__ = ["Unit", "UnitRun", "UnitsFailed", "gpu_resources", "open_client", "run_status", "run_units",
           "stored_units", "unit_counts", "worker_environment"]

_log = logging.getLogger("symact")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*")


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work of an experiment: ``fn(*args, *needed, **kwargs)``.

    - ``key``: names its stored file (letters, digits and ``_.=+-``, not first), unique in the experiment.
    - ``fn``: a top-level function (picklable); ``needed`` are the values of the units named in ``needs``, in
      that order. Those units must come earlier in the experiment's list of units.
    - ``resources``: Dask resources it needs, e.g. ``{"GPU": 1}`` (:func:`gpu_resources`); None: any worker.
    - ``threads``: torch's intra-op threads while it runs, wherever it runs (default 1).
    - ``checkpoint``: pass ``checkpoint=<folder>`` (:mod:`symact.store.checkpoints`) for a resumable training.
    - ``zoo``: a training unit whose ``weights`` the zoo keeps at the converged profiles (``paper`` by default).
    """

    key: str
    fn: Callable
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    needs: tuple[str, ...] = ()
    resources: Mapping[str, float] | None = None
    threads: int = 1
    checkpoint: bool = False
    zoo: bool = False

    def __post_init__(self):
        if not isinstance(self.key, str) or not _KEY.fullmatch(self.key):
            raise ValueError(f"unit key must be letters, digits and '_.=+-' (not first), got {self.key!r}")
        if not callable(self.fn):
            raise TypeError(f"unit {self.key}: fn must be a function, got {type(self.fn).__name__}")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "needs", tuple([self.needs] if isinstance(self.needs, str) else self.needs))
        if int(self.threads) != self.threads or self.threads < 1:
            raise ValueError(f"unit {self.key}: threads must be a positive integer, got {self.threads!r}")


class UnitsFailed(RuntimeError):
    """Units of a run raised; ``failures`` maps each key to its traceback (or why it did not run). Every unit
    that finished is stored: run the experiment again to compute only what is missing."""

    def __init__(self, name: str, failures: dict[str, str]):
        self.failures = dict(failures)
        lines = [f"{len(failures)} unit(s) of {name} failed: {', '.join(failures)}"]
        lines += [f"--- {k}:\n{msg.rstrip()}" for k, msg in failures.items()]
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class UnitRun:
    """What :func:`run_units` gives back: each unit's value and provenance, by key; the units' compute seconds
    (their wall-clock seconds summed, those of units loaded from earlier runs included) and this run's
    elapsed seconds."""

    outputs: dict[str, Any]
    provenance: dict[str, dict]
    compute_seconds: float
    elapsed_seconds: float


def gpu_resources() -> dict | None:
    """``{"GPU": 1}`` when this process sees CUDA (a training unit then waits for a GPU worker), else None."""
    return {"GPU": 1} if torch.cuda.is_available() else None


def _progress(show: bool | None) -> bool:
    """Whether to draw the progress bar: ``show`` if given, else on a terminal or with ``SYMACT_PROGRESS=1``
    (the rule of :func:`symact.attacks.progress_enabled`, without importing the attacks)."""
    if show is not None:
        return show
    return os.environ.get("SYMACT_PROGRESS") == "1" or sys.stderr.isatty()


def _plain(obj: Any) -> Any:
    """A unit's value as it is stored and passed on: JSON types (as :func:`symact.store.registry._jsonable`)
    and CPU tensors, so that a value loaded from the store equals the computed one."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous().clone()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _split(obj: Any, path: tuple, tensors: dict) -> Any:
    """``obj`` with every tensor replaced by ``{"__tensor__": name}``, the tensors collected in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        name = "/".join(path) or "value"
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {k: _split(v, path + (k,), tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_split(v, path + (str(i),), tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj: Any, tensors: Mapping) -> Any:
    """The inverse of :func:`_split`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def _tensors(value: Any) -> dict:
    found: dict = {}
    _split(value, (), found)
    return found


# --- in the worker ---------------------------------------------------------------------------------------

def _execute(fn: Callable, args: tuple, kwargs: dict, threads: int, ckpt: str | None, *needed: dict) -> dict:
    """Run one unit where Dask puts it: ``threads`` intra-op threads, its checkpoint folder (resolved on this
    machine) passed as ``checkpoint``; ``needed`` are the envelopes of the units it needs. Returns the
    envelope: the value (:func:`_plain`) and how it was computed."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    resumed = False
    if ckpt is not None:
        resumed = checkpoints.has_checkpoint(ckpt)
        folder = checkpoints.resolve(ckpt)
        folder.mkdir(parents=True, exist_ok=True)
        kwargs = {**kwargs, "checkpoint": folder}
    start = time.perf_counter()
    try:
        value = _plain(fn(*args, *(n["value"] for n in needed), **kwargs))
        wall, device = time.perf_counter() - start, device_name()  # the device as the unit saw it
    finally:
        torch.set_num_threads(previous)
    if ckpt is not None:
        checkpoints.remove_checkpoint(ckpt)
    return {"value": value, "wall": wall, "device": device, "threads": threads, "resumed": resumed,
            "host": socket.gethostname()}


# --- the store of units ----------------------------------------------------------------------------------

def _paths(exp, prof: str, key: str):
    folder = exp.units_dir(prof)
    return folder / f"{key}.json", folder / f"{key}.safetensors"


def _store_unit(exp, prof: str, key: str, prov: dict, value: Any) -> None:
    """Tensors first (``<key>.safetensors``), then the JSON file that marks a finished unit."""
    from safetensors.torch import save_file

    path, weights = _paths(exp, prof, key)
    tensors: dict = {}
    data = _split(value, (), tensors)
    if tensors:
        weights.parent.mkdir(parents=True, exist_ok=True)
        tmp = weights.with_name(weights.name + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(weights)
    write_json(path, prov, data)


def _load_unit(exp, prof: str, chash: str, key: str, weights: bool = True) -> dict | None:
    """The fresh stored unit ``key`` as an envelope (``value``, ``prov``), or None; None too when its weights
    are lost (it is computed again). ``weights=False``: tensors left as ``{"__tensor__": name}``."""
    path, wpath = _paths(exp, prof, key)
    d = read_fresh(path, chash)
    if d is None:
        return None
    prov, value = d["provenance"], d["result"]
    if "weights" in prov and weights:
        if not wpath.exists():
            _log.warning("stored unit %s lost its weights (%s): taken from the zoo if it holds them, else computed "
                         "again", path, wpath.name)
            return None
        from safetensors.torch import load_file

        tensors = load_file(str(wpath))
        if fingerprint(tensors) != prov["weights"]:
            raise ValueError(f"{wpath} does not hold the weights {path} was stored with (fingerprint "
                             f"{prov['weights']}, found {fingerprint(tensors)}): remove both to compute it again")
        value = _join(value, tensors)
    return {"value": value, "prov": prov}


def stored_units(exp, prof: str, weights: bool = False) -> dict:
    """The fresh stored units of an unfinished run of ``exp`` at ``prof``: key -> value (tensors as
    placeholders unless ``weights``). Never runs anything; empty when the run has finished or not started.
    A unit computed on weights that have since been computed again (other fingerprints) is left out."""
    chash = config_hash(exp.configs[prof])
    found = {}
    for path in sorted(exp.units_dir(prof).glob("*.json")):
        env = _load_unit(exp, prof, chash, path.stem, weights=False)
        if env is not None:
            found[path.stem] = env
    keep = {k: e for k, e in found.items()
            if all(found[n]["prov"].get("weights") == fp for n, fp in e["prov"].get("needs", {}).items()
                   if n in found)}
    if weights:
        loaded = {k: _load_unit(exp, prof, chash, k) for k in keep}
        return {k: e["value"] for k, e in loaded.items() if e is not None}
    return {k: e["value"] for k, e in keep.items()}


def run_status(exp, prof: str) -> str:
    """:func:`symact.store.results.stored_status` of ``exp`` at ``prof``, with how far an unfinished run has
    got: ``"missing (9/14 units)"``, or ``"missing (waits on other runs)"`` when its units need other runs'
    networks first. What ``python -m symact list`` and the Conclusions chapter show."""
    from symact.store.results import stored_status

    status = stored_status(exp, prof)
    if exp.units is None or status == "fresh":
        return status
    try:
        done, total = unit_counts(exp, prof)
    except ValueError:  # its units need other runs' networks first (the message says which): none can run yet
        return f"{status} (waits on other runs)"
    return f"{status} ({done}/{total} units)" if done else status


def unit_counts(exp, prof: str) -> tuple[int, int]:
    """(stored, declared) units of ``exp`` at ``prof``; the declaration is cheap (it computes nothing)."""
    if exp.units is None:
        return 0, 0
    return len(stored_units(exp, prof)), len(exp.units(exp.configs[prof]))


# --- the zoo adapter (symact.zoo is its own module; these are the only calls into it) ---------------------

def _zoo_module():
    try:
        from symact import zoo
    except ImportError:
        return None
    return zoo


def _zoo_lookup(name: str, key: str, chash: str) -> dict | None:
    """The unit's value from the zoo (``{"weights": state_dict, **stored JSON}``) if the zoo holds network
    ``name``/``key`` trained for config hash ``chash``; else None."""
    zoo = _zoo_module()
    if zoo is None or not zoo.exists(name, key, config_hash=chash):
        return None
    rest = zoo.entry(name, key).get("history") or {}
    return {**(rest if isinstance(rest, dict) else {}), "weights": dict(zoo.load_state_dict(name, key))}


def _zoo_save(name: str, key: str, value: dict, config, chash: str, prof: str) -> None:
    """Keep the weights of a ``zoo=True`` unit in the zoo, with the rest of its value as ``history``; a value's
    ``builder`` (``"module:callable"``) and ``builder_kwargs`` let ``symact.zoo.load`` rebuild the network."""
    zoo = _zoo_module()
    if zoo is None:
        _log.warning("symact.zoo is not available: %s/%s is not kept in the zoo", name, key)
        return
    if not isinstance(value, dict) or "weights" not in value:
        raise TypeError(f"zoo unit {name}/{key} must return a dict with 'weights' (a state dict)")
    spec = {k: value[k] for k in ("builder", "builder_kwargs") if k in value}  # so zoo.load rebuilds it
    rest = {k: v for k, v in value.items() if k not in ("weights", *spec) and not _tensors(v)}
    zoo.save(name, value["weights"], key=key, config=config, config_hash=chash, history=rest, **spec,
             retrain=f"python -m symact run {name} --profile {prof}", profile=prof)


# --- clients ----------------------------------------------------------------------------------------------

#: the environment of local worker processes: one OpenMP/MKL thread, and *not* Dask's MALLOC_TRIM_THRESHOLD_
#: (with it, a LeNet training step ran three times slower in a worker than in a plain process)
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


#: Dask's background work in every worker process (and in the driver, which holds the scheduler and the
#: nannies), made rarer: the event loop's tick (default every 20 ms), the memory monitor (100 ms) and the
#: system monitor (500 ms): less work that is not the unit's. Its effect was within the noise of this 2-core
#: machine (benchmarks/units.py, ``background``: a busy loop's iterations per CPU second in a worker against a
#: plain process, from 84 % to 116 % with the defaults and from 93 % to 100 % with these, over four runs).
QUIET_INTERVALS = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "5s",
                   "distributed.worker.memory.monitor-interval": "1s"}


def worker_environment() -> dict:
    """The Dask configuration the runner sets for the workers it starts: the environment above, no
    statistical profiler (by default a worker samples its task's stack every 10 ms, taking the GIL from a
    training loop that spends much of its time in Python) and :data:`QUIET_INTERVALS`."""
    return {"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": None, **WORKER_ENV},
            "distributed.worker.profile.enabled": False, **QUIET_INTERVALS}


@contextlib.contextmanager
def _quiet(level: int = logging.ERROR):
    """Dask's INFO and WARNING lines (cluster start-up, closing comms) silenced: notebooks stay clean."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "bokeh")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)


@contextlib.contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None):
    """A ``distributed.Client``: connected to ``scheduler`` (an address, e.g. ``tcp://127.0.0.1:8786``), else on a
    ``LocalCluster`` of ``workers`` single-thread processes (workers > 1), else in-process (one worker thread,
    nothing spawned). Defaults: ``$SYMACT_SCHEDULER``, ``$SYMACT_WORKERS``, else 1. Local workers
    advertise one ``GPU`` resource each (units ask for it only on CUDA), so several workers share one GPU."""
    import dask
    from distributed import Client, LocalCluster

    scheduler = scheduler or os.environ.get("SYMACT_SCHEDULER") or None
    workers = int(workers or os.environ.get("SYMACT_WORKERS") or 1)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler:
        with Client(scheduler, set_as_default=False) as client:
            print(f"symact: Dask scheduler {scheduler}, dashboard {client.dashboard_link}", file=sys.stderr)
            yield client
    elif workers == 1:
        with _quiet(), dask.config.set({"distributed.worker.profile.enabled": False, **QUIET_INTERVALS}), \
                Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0",
                       resources={"GPU": 1}, set_as_default=False) as client:
            yield client
    else:
        before = {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", *WORKER_ENV)}
        try:
            with _quiet(logging.WARNING), dask.config.set(worker_environment()), \
                    LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, resources={"GPU": 1},
                                 dashboard_address=":0") as cluster, Client(cluster, set_as_default=False) as client:
                print(f"symact: {workers} Dask workers, dashboard {client.dashboard_link}", file=sys.stderr)
                yield client
        finally:  # the nannies run in this process and set the workers' environment in its os.environ too
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# --- the runner -------------------------------------------------------------------------------------------

def _declared(exp, config) -> list[Unit]:
    units = list(exp.units(config))
    seen: set = set()
    for u in units:
        if not isinstance(u, Unit):
            raise TypeError(f"{exp.chapter}/{exp.name}: units() must return Unit objects, got {type(u).__name__}")
        if u.key in seen:
            raise ValueError(f"{exp.chapter}/{exp.name}: unit key {u.key!r} is used twice")
        missing = [n for n in u.needs if n not in seen]
        if missing:
            raise ValueError(f"{exp.chapter}/{exp.name}: unit {u.key!r} needs {missing}, which are not listed "
                             "before it")
        seen.add(u.key)
    return units


def run_units(exp, config, profile: str | None = None, store: bool = False, *, workers: int | None = None,
              scheduler: str | None = None, client=None, show: bool | None = None) -> UnitRun:
    """Run the units of ``exp`` for ``config`` (see the module docstring) and return their values.

    ``store``: load the fresh stored units of ``profile`` and store each computed one as it finishes (the
    experiment's stored run); otherwise nothing is read or written (a run with overrides). ``client``: a
    ``distributed.Client`` to use, else one from :func:`open_client` (``workers``, ``scheduler``).
    ``show``: the progress bar (default: on a terminal; see :func:`symact.attacks.progress_enabled`).
    Raises :class:`UnitsFailed` once every unit that could run has run, if any raised.
    """
    units = _declared(exp, config)
    if store and profile is None:
        raise ValueError("a stored run needs its profile")
    if client is None:
        with open_client(workers, scheduler) as own:
            return _drive(own, exp, config, units, profile, store, show)
    return _drive(client, exp, config, units, profile, store, show)


def _drive(client, exp, config, units: list[Unit], prof: str | None, store: bool, show: bool | None) -> UnitRun:
    from distributed import as_completed
    from tqdm import tqdm

    name = f"{exp.chapter}/{exp.name}"
    chash, commit, token = config_hash(config), git_commit(), uuid.uuid4().hex[:8]
    names = {"chapter": exp.chapter, "experiment": exp.name, "profile": prof}
    stored = {u.key: _load_unit(exp, prof, chash, u.key) for u in units} if store else {}
    stored = {k: v for k, v in stored.items() if v is not None}
    use_zoo = store and prof in exp.converged
    done: dict[str, dict] = {}      # key -> {"value", "prov"}
    futures: dict = {}              # key -> Future of a unit computed in this run
    scattered: dict = {}            # key -> Future of a loaded value sent to the workers
    failed: dict[str, str] = {}
    waiting = list(units)
    by_key = {u.key: u for u in units}
    order = {u.key: i for i, u in enumerate(units)}
    key_of: dict = {}               # Dask key -> unit key
    pending = as_completed(loop=client.loop)
    start = time.perf_counter()
    bar = tqdm(total=len(units), desc=name, unit="unit", disable=not _progress(show), leave=False)

    def weights_of(key: str) -> str | None:
        return done[key]["prov"].get("weights")

    def finish(key: str, env: dict) -> None:
        done[key] = env
        bar.update()

    def needed(u: Unit) -> list:
        out = []
        for n in u.needs:
            if n in futures:
                out.append(futures[n])
            else:
                if n not in scattered:
                    scattered[n] = client.scatter([{"value": done[n]["value"]}], hash=False)[0]
                out.append(scattered[n])
        return out

    def decide() -> None:
        nonlocal waiting
        later = []
        for u in waiting:
            bad = [n for n in u.needs if n in failed]
            if bad:
                failed[u.key] = f"not run: it needs failed unit(s) {', '.join(bad)}"
                continue
            resolved = all(n in done for n in u.needs)
            s = stored.get(u.key)
            if s is not None:
                if not resolved:  # its needs are being computed: keep it if they come out the same
                    later.append(u)
                    continue
                del stored[u.key]
                want = s["prov"].get("needs", {})
                if all(want.get(n) == weights_of(n) for n in u.needs):
                    finish(u.key, {**s, "loaded": True})
                    continue
                _log.warning("stored unit %s/%s was computed on other weights: computing it again", name, u.key)
            if use_zoo and u.zoo and all(n in done for n in u.needs):
                value = _zoo_lookup(name, u.key, chash)
                if value is not None:
                    prov = {**names, "unit": u.key, "zoo": True, "wall_seconds": 0.0,
                            "weights": fingerprint(_tensors(value))}
                    finish(u.key, {"value": _plain(value), "prov": prov, "loaded": True})
                    continue
            if not all(n in done or n in futures for n in u.needs):
                later.append(u)
                continue
            kwargs, ckpt = dict(u.kwargs), None
            if u.checkpoint and store:
                ckpt = str(checkpoints.unit_checkpoint(exp.chapter, exp.name, prof, chash, u.key))
            elif u.checkpoint:
                kwargs["checkpoint"] = None  # a run that stores nothing resumes nothing
            fut = client.submit(_execute, u.fn, u.args, kwargs, u.threads, ckpt, *needed(u),
                                key=f"{name}.{prof}/{u.key}-{token}", resources=dict(u.resources or {}) or None,
                                priority=len(units) - order[u.key], pure=False)  # in the declared order
            futures[u.key] = fut
            key_of[fut.key] = u.key
            pending.add(fut)
        waiting = later

    try:
        decide()
        for fut in pending:
            key = key_of[fut.key]
            u = by_key[key]
            if fut.status == "error":
                bad = [n for n in u.needs if n in failed]
                if bad:
                    failed[key] = f"not run: it needs failed unit(s) {', '.join(bad)}"
                else:
                    exc, tb = fut.exception(), fut.traceback()
                    failed[key] = "".join(traceback.format_exception(type(exc), exc, tb))
                    _log.error("unit %s/%s failed:\n%s", name, key, failed[key])
                bar.set_postfix(failed=len(failed))
            elif fut.status == "cancelled":
                failed[key] = "cancelled (its worker was lost too often, or the run was stopped)"
            else:
                env = fut.result()
                value = env["value"]
                prov = {**names, "unit": key, **provenance(config, commit, env["wall"], env["device"]),
                        "threads": env["threads"], "host": env["host"]}
                if env["resumed"]:
                    prov["resumed_from_checkpoint"] = True  # wall_seconds counts this run only
                tensors = _tensors(value)
                if tensors:
                    prov["weights"] = fingerprint(tensors)
                fps = {n: weights_of(n) for n in u.needs if weights_of(n) is not None}
                if fps:
                    prov["needs"] = fps
                if store:
                    _store_unit(exp, prof, key, prov, value)
                    _log.info("stored unit %s/%s (%.1f s)", name, key, env["wall"])
                if use_zoo and u.zoo:
                    _zoo_save(name, key, value, config, chash, prof)
                finish(key, {"value": value, "prov": prov})
            decide()
        if waiting:  # cannot happen: every unit is decided once its needs are
            raise RuntimeError(f"{name}: units left undecided: {[u.key for u in waiting]}")
    finally:
        bar.close()
        for f in list(futures.values()) + list(scattered.values()):
            f.release()
    if failed:
        raise UnitsFailed(name, failed)
    outputs = {u.key: done[u.key]["value"] for u in units}
    provs = {u.key: {**done[u.key]["prov"], **({"loaded": True} if done[u.key].get("loaded") else {})}
             for u in units}
    return UnitRun(outputs, provs, sum(p.get("wall_seconds", 0.0) for p in provs.values()),
                   time.perf_counter() - start)

