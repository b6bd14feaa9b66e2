"""The units runner (symact.store.units): one worker against two, the in-process overhead, Dask's worker
environment.

    SYMACT_DATA=../shared/datasets PYTHONPATH=. python benchmarks/units.py [--units 6] [--n-train 8192]

- ``workers``: an experiment of ``--units`` equal LeNet-5 training units (MNIST, ``--n-train`` images, one
  epoch, one thread each) run with ``workers=1`` (in-process, one unit at a time) and ``workers=2`` (a
  LocalCluster of two single-thread worker processes); elapsed seconds of the units (cluster start-up
  apart) and in all, the speed-up, and whether both gave the same numbers.
- ``overhead``: a smoke experiment of ten trivial units, called directly and through the in-process runner.
- ``background``: a busy loop in a worker with Dask's default background intervals and with the runner's.
- ``malloc``: one training unit in a LocalCluster worker with Dask's default worker environment
  (``MALLOC_TRIM_THRESHOLD_=65536``) and with the runner's (without it).

The machine's load average (``os.getloadavg()``) is stored before and after: a shared machine slows the
two-worker run most.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from symact.results import Unit, experiment, run_units  # noqa: E402
from symact.store import units as units_mod  # noqa: E402


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    units: int = 6
    n_train: int = 8192
    epochs: int = 1


def train_unit(cfg: BenchConfig, seed: int) -> dict:
    """One LeNet-5 (ReLU) trained on the first ``n_train`` MNIST images."""
    from symact import data, models
    from symact.device import seed_everything
    from symact.train import TrainConfig, train

    seed_everything(seed)
    model = models.LeNet5("mnist", 10)
    hist = train(model, data.load("mnist").head(cfg.n_train),
                 TrainConfig(epochs=cfg.epochs, batch_size=64, lr=0.01, seed=seed, early_stop=False), progress=False)
    return {"loss": hist["train_loss"], "seconds": float(sum(hist["seconds"]))}


def trivial(i: int) -> int:
    return i * i


def _bench_units(cfg):
    return [Unit(f"net{s}", train_unit, (cfg, s)) for s in range(cfg.units)]


BENCH = experiment("benchmarks", "units", {p: BenchConfig() for p in ("smoke", "quick", "paper")},
                   units=_bench_units)(lambda cfg, outputs: outputs)
TRIVIAL = experiment("benchmarks", "trivial", {p: BenchConfig(units=10) for p in ("smoke", "quick", "paper")},
                     units=lambda cfg: [Unit(f"u{i}", trivial, (i,)) for i in range(cfg.units)])(lambda c, o: o)


def _warm() -> None:
    """What a process pays once, before its first unit: imports, the MNIST load, a first (slower) training."""
    train_unit(BenchConfig(n_train=128), 0)


def _timed_run(cfg, workers: int) -> tuple[float, float, float, dict]:
    """(seconds in all, cold: a fresh cluster; seconds of the units on warm workers; their outputs)."""
    start = time.perf_counter()
    run_units(BENCH, cfg, workers=workers, show=False)
    cold = time.perf_counter() - start
    with units_mod.open_client(workers) as client:
        client.run(_warm)
        run = run_units(BENCH, cfg, client=client, show=False)
    return cold, run.elapsed_seconds, run.outputs


def _malloc(cfg, default_env: bool) -> float:
    """Seconds of one training unit (200 steps of 64 images) in a one-worker LocalCluster, after a warm-up."""
    import dask
    from distributed import Client, LocalCluster

    env = {} if default_env else units_mod.worker_environment()
    with dask.config.set(env), LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                            dashboard_address=":0") as lc, Client(lc) as c:
        c.submit(train_unit, dataclasses.replace(cfg, n_train=128), 0, pure=False).result()
        big = dataclasses.replace(cfg, n_train=200 * 64)
        return c.submit(units_mod._execute, train_unit, (big, 0), {}, 1, None, pure=False).result()["wall"]


def busy(seconds: float) -> int:
    """Loop iterations of a pure-Python loop in ``seconds`` of this process's CPU time (all its threads):
    the share of a worker's CPU that Dask's own background threads leave to a unit."""
    start, n = time.process_time(), 0
    while time.process_time() - start < seconds:
        n += 1
    return n


def _background(seconds: float, runner_env: bool) -> int:
    """:func:`busy` in a one-worker LocalCluster, with Dask's defaults (but the profiler off, as the two rows
    differ in the background intervals only) or with the runner's :func:`worker_environment`."""
    import dask
    from distributed import Client, LocalCluster

    env = units_mod.worker_environment() if runner_env else {"distributed.worker.profile.enabled": False}
    with dask.config.set(env), LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                            dashboard_address=":0") as lc, Client(lc) as c:
        return c.submit(busy, seconds, pure=False).result()


def _plain_processes(cfg, k: int) -> float:
    """Seconds for ``k`` plain Python processes (no Dask) each running ``cfg.units / k`` units one after the
    other, all at once: what the machine gives two single-thread processes, the control of the two-worker run."""
    import subprocess

    per = cfg.units // k
    cmd = [sys.executable, __file__, "--one", str(per), "--n-train", str(cfg.n_train)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    walls = [float(p.communicate()[0].split()[-1]) for p in procs]
    return max(walls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=6)
    ap.add_argument("--n-train", type=int, default=8192)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # a control process: N units, plain
    args = ap.parse_args()
    cfg = BenchConfig(units=args.units, n_train=args.n_train)
    if args.one:
        _warm()
        start = time.perf_counter()
        for s in range(args.one):
            units_mod._execute(train_unit, (cfg, s), {}, 1, None)
        print(time.perf_counter() - start)
        return
    load_before = os.getloadavg()
    rows = []

    t0 = time.perf_counter()
    direct = [trivial(i) for i in range(10)]
    t_direct = time.perf_counter() - t0
    t0 = time.perf_counter()
    via = run_units(TRIVIAL, TRIVIAL.configs["smoke"], show=False)
    t_runner = time.perf_counter() - t0
    assert list(via.outputs.values()) == direct
    rows.append({"case": "overhead: 10 trivial units, in-process runner", "workers": 1,
                 "elapsed_s": round(t_runner, 3), "units_s": round(via.elapsed_seconds, 3),
                 "per_unit_ms": round(1000 * via.elapsed_seconds / 10, 1), "note": f"direct calls {t_direct:.4f} s"})

    single = run_units(BENCH, dataclasses.replace(cfg, units=1), show=False)  # warm-up (data cache, kernels)
    t1, u1, out1 = _timed_run(cfg, 1)
    t2, u2, out2 = _timed_run(cfg, 2)
    _warm()
    same = all(out1[k]["loss"] == out2[k]["loss"] for k in out1)
    rows.append({"case": f"{cfg.units} LeNet-5 training units", "workers": 1, "elapsed_s": round(t1, 2),
                 "units_s": round(u1, 2), "per_unit_ms": round(1000 * u1 / cfg.units),
                 "note": f"one unit alone {single.elapsed_seconds:.2f} s"})
    rows.append({"case": f"{cfg.units} LeNet-5 training units", "workers": 2, "elapsed_s": round(t2, 2),
                 "units_s": round(u2, 2), "per_unit_ms": round(1000 * u2 / cfg.units),
                 "note": f"speed-up {u1 / u2:.2f}x (warm workers), {t1 / t2:.2f}x (cold, cluster start-up included); "
                         f"same numbers: {same}"})

    p1, p2 = _plain_processes(cfg, 1), _plain_processes(cfg, 2)
    rows.append({"case": f"control: {cfg.units} units in plain processes (no Dask), warm", "workers": 1,
                 "elapsed_s": None, "units_s": round(p1, 2), "per_unit_ms": round(1000 * p1 / cfg.units),
                 "note": "one process, one unit at a time"})
    rows.append({"case": f"control: {cfg.units} units in plain processes (no Dask), warm", "workers": 2,
                 "elapsed_s": None, "units_s": round(p2, 2), "per_unit_ms": round(1000 * p2 / cfg.units),
                 "note": f"two processes at once: speed-up {p1 / p2:.2f}x, what this machine gives two processes"})
    for default in (True, False):
        rows.append({"case": "one training unit (200 steps) in a LocalCluster worker", "workers": 1,
                     "elapsed_s": round(_malloc(cfg, default), 2), "units_s": None, "per_unit_ms": None,
                     "note": "Dask's default worker env (MALLOC_TRIM_THRESHOLD_=65536)" if default
                     else "the runner's worker env (no MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS=1)"})
    plain = busy(10.0)
    for runner_env in (False, True):
        got = _background(10.0, runner_env)
        rows.append({"case": "background: a busy loop, 10 s of a worker process's CPU", "workers": 1,
                     "elapsed_s": None, "units_s": None, "per_unit_ms": None,
                     "note": f"{got / plain:.0%} of a plain process's iterations; "
                             + ("the runner's intervals (symact.store.units.QUIET_INTERVALS)" if runner_env
                                else "Dask's default tick (20 ms), memory (100 ms) and system (500 ms) monitors")})
    load_after = os.getloadavg()

    from common import write

    notes = (f"{os.cpu_count()} CPU cores; load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
             f"after {tuple(round(x, 2) for x in load_after)}; units_s: from the first submission to the last "
             f"unit's value in the driver, on warm workers (imports and MNIST loaded); elapsed_s: the whole call "
             f"on a fresh cluster (the in-process runner: distributed imported, client started); the two-worker run "
             f"is also compared for identical training losses; torch {torch.__version__}")
    write("units", rows, notes)


if __name__ == "__main__":
    main()
