"""Run and inspect the book's experiments from a shell.

    python -m symact list [CHAPTER]                   # every experiment and what is stored for each profile
    python -m symact run CHAPTER/NAME [--profile P]   # load the stored result, or run and store it

``run`` is what a long ``paper`` run in the background wants (``nohup python -m symact run
sapl/table1-mlp-mnist --profile paper > log &``): it logs each stored part as it finishes, and a stopped run
resumes from them (see :mod:`symact.results`). ``--workers n`` runs the parts of one experiment in ``n``
processes (``$SYMACT_WORKER``), each with its share of the CPU threads.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

from symact import results


def _registry() -> dict:
    """Every registered experiment: the book's, and those of the modules in ``$SYMACT_EXPERIMENTS``
    (comma-separated importable names), for experiments of your own."""
    import importlib

    import symact.experiments  # noqa: F401  (registers every experiment)

    for name in filter(None, (m.strip() for m in os.environ.get("SYMACT_EXPERIMENTS", "").split(","))):
        importlib.import_module(name)
    return results.REGISTRY


def _status(exp: results.Experiment, prof: str) -> str:
    status = results.stored_status(exp, prof)
    n = len(exp.parts(prof))
    return f"{status} ({n} parts)" if n and status != "fresh" else status


def list_experiments(chapter: str | None = None) -> list[str]:
    """One line per registered experiment (of ``chapter``, if given): its name and, per profile, whether its
    stored result is fresh, stale or missing, with the stored parts of an unfinished run."""
    reg = _registry()
    chapters = sorted({c for c, _ in reg})
    if chapter is not None and chapter not in chapters:
        raise SystemExit(f"unknown chapter {chapter!r}; expected one of {chapters}")
    return [f"{c}/{n}: " + ", ".join(f"{p} {_status(e, p)}" for p in results.PROFILES)
            for (c, n), e in sorted(reg.items()) if chapter in (None, c)]


def _experiment(name: str) -> results.Experiment:
    reg = _registry()
    key = tuple(name.split("/", 1))
    if key not in reg:
        raise SystemExit(f"unknown experiment {name!r}; `python -m symact list` shows the {len(reg)} registered")
    return reg[key]


def run(name: str, profile: str | None = None, recompute: bool = False) -> results.Result:
    """Load or run the experiment ``name`` (``chapter/experiment``, as :func:`list_experiments` prints it)."""
    return results.load_or_run(_experiment(name), profile, recompute=recompute or None)


def run_workers(name: str, profile: str | None, workers: int) -> int:
    """``run`` in ``workers`` processes (``SYMACT_WORKER=k/workers``, ``cpu_count // workers`` threads each);
    the exit status of the first that fails (the others are stopped then), else 0."""
    if workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {workers}")
    _experiment(name)  # a clear error before any process starts
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    cmd = [sys.executable, "-m", "symact", "run", name] + (["--profile", profile] if profile else [])
    procs = [subprocess.Popen(cmd, env={**os.environ, "SYMACT_WORKER": f"{k}/{workers}", "OMP_NUM_THREADS": threads,
                                        "MKL_NUM_THREADS": threads}) for k in range(workers)]
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed:
                return failed[0]
            time.sleep(1)
        return next((p.returncode for p in procs if p.returncode), 0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m symact", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="registered experiments and their stored results")
    ls.add_argument("chapter", nargs="?")
    rn = sub.add_parser("run", help="load the stored result of an experiment, or run and store it")
    rn.add_argument("name", help="CHAPTER/NAME, as `list` prints it")
    rn.add_argument("--profile", choices=results.PROFILES, help="default: $SYMACT_PROFILE, else auto")
    rn.add_argument("--recompute", action="store_true", help="run even if a fresh result is stored")
    rn.add_argument("--workers", type=int, default=1, help="processes sharing the run's parts (default 1)")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(list_experiments(args.chapter)))
        return 0
    if args.workers != 1:
        if args.recompute:
            raise SystemExit("--recompute with --workers: remove the parts folder, then start the workers")
        return run_workers(args.name, args.profile, args.workers)
    tag = f"[worker {os.environ['SYMACT_WORKER']}] " if os.environ.get("SYMACT_WORKER") else ""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {tag}%(message)s", stream=sys.stderr)
    res = run(args.name, args.profile, args.recompute)
    print(res.caption())
    return 0


if __name__ == "__main__":
    sys.exit(main())
