"""Run and inspect the book's experiments from a shell.

    python -m symact list [CHAPTER]                   # every experiment and what is stored for each profile
    python -m symact run CHAPTER/NAME [--profile P]   # load the stored result, or run and store it
    python -m symact run CHAPTER/NAME --workers 4     # its units in 4 single-thread Dask worker processes
    python -m symact run CHAPTER/NAME --scheduler tcp://HOST:8786   # on an existing Dask cluster
    python -m symact benchmark mymodule:MyAct [--dataset mnist] [--profile smoke] [--workers 2]
                                                      # your activation under the book's protocol, its row

``run`` is what a long ``paper`` run in the background wants (``nohup python -m symact run
sapl/table1-mlp-mnist --profile paper > log &``): it logs each stored unit as it finishes, and a stopped run
goes on from them (see :mod:`symact.store.units`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from symact import results


def _registry() -> dict:
    """Every registered experiment: the book's, and those of the modules in ``$SYMACT_EXPERIMENTS``
    (comma-separated importable names), for experiments of your own."""
    import importlib

    import symact.benchmark  # noqa: F401  (registers the leaderboard's rows)
    import symact.experiments  # noqa: F401  (registers every experiment)

    for name in filter(None, (m.strip() for m in os.environ.get("SYMACT_EXPERIMENTS", "").split(","))):
        importlib.import_module(name)
    return results.REGISTRY


def list_experiments(chapter: str | None = None) -> list[str]:
    """One line per registered experiment (of ``chapter``, if given): its name and, per profile, whether its
    stored result is fresh, stale or missing, with the stored units of an unfinished run (of how many)."""
    reg = _registry()
    chapters = sorted({c for c, _ in reg})
    if chapter is not None and chapter not in chapters:
        raise SystemExit(f"unknown chapter {chapter!r}; expected one of {chapters}")
    return [f"{c}/{n}: " + ", ".join(f"{p} {results.run_status(e, p)}" for p in results.PROFILES)
            for (c, n), e in sorted(reg.items()) if chapter in (None, c)]


def _experiment(name: str) -> results.Experiment:
    reg = _registry()
    key = tuple(name.split("/", 1))
    if key not in reg:
        raise SystemExit(f"unknown experiment {name!r}; `python -m symact list` shows the {len(reg)} registered")
    return reg[key]


def run(name: str, profile: str | None = None, recompute: bool = False, workers: int | None = None,
        scheduler: str | None = None) -> results.Result:
    """Load or run the experiment ``name`` (``chapter/experiment``, as :func:`list_experiments` prints it); its
    units (if it has units) in ``workers`` local processes or on the Dask cluster at ``scheduler``."""
    if workers is not None and workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {workers}")
    return results.load_or_run(_experiment(name), profile, recompute=recompute or None, workers=workers,
                               scheduler=scheduler)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m symact", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="registered experiments and their stored results")
    ls.add_argument("chapter", nargs="?")
    rn = sub.add_parser("run", help="load the stored result of an experiment, or run and store it")
    rn.add_argument("name", help="CHAPTER/NAME, as `list` prints it")
    rn.add_argument("--profile", choices=results.PROFILES, help="default: $SYMACT_PROFILE, else auto")
    rn.add_argument("--recompute", action="store_true", help="run even if a fresh result is stored")
    rn.add_argument("--workers", type=int, default=None,
                    help="local single-thread Dask worker processes for the units (default 1: in this process)")
    rn.add_argument("--scheduler", default=None, help="a Dask scheduler's address (tcp://HOST:8786) to run the "
                                                      "units on, instead of local workers")
    bm = sub.add_parser("benchmark", help="train and evaluate an activation under the book's protocol and print "
                                          "its leaderboard row beside the book's")
    bm.add_argument("activation", help="module:Callable (an nn.Module class, or a factory channels -> nn.Module) "
                                       "or a registered activation name")
    bm.add_argument("--dataset", choices=("mnist", "cifar10"), default="cifar10")
    bm.add_argument("--profile", choices=results.PROFILES, help="default: $SYMACT_PROFILE, else quick")
    bm.add_argument("--name", default=None, help="the row's name (default: the callable's name)")
    bm.add_argument("--recompute", action="store_true", help="run even if a fresh result is stored")
    bm.add_argument("--workers", type=int, default=None, help="local single-thread Dask worker processes")
    bm.add_argument("--scheduler", default=None, help="a Dask scheduler's address to run the units on")
    args = ap.parse_args(argv)
    if args.cmd == "benchmark":
        return _benchmark(args)
    if args.cmd == "list":
        print("\n".join(list_experiments(args.chapter)))
        return 0
    if args.workers is not None and args.scheduler:
        raise SystemExit("--workers and --scheduler exclude each other: the cluster has its own workers")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    res = run(args.name, args.profile, args.recompute, args.workers, args.scheduler)
    print(res.caption())
    return 0


def _benchmark(args) -> int:
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    if args.workers is not None and args.scheduler:
        raise SystemExit("--workers and --scheduler exclude each other: the cluster has its own workers")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # mymodule:MyAct from the current folder
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from symact.benchmark import benchmark

    try:
        res = benchmark(args.activation, dataset=args.dataset, profile=args.profile, name=args.name,
                        recompute=args.recompute, workers=args.workers, scheduler=args.scheduler)
    except (KeyError, TypeError, ValueError) as err:
        raise SystemExit(f"symact benchmark: {err}") from err
    print(res.caption())
    return 0


if __name__ == "__main__":
    sys.exit(main())
