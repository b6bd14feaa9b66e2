"""Run and inspect the book's experiments from a shell.

    python -m symact list [CHAPTER]                   # every experiment and what is stored for each profile
    python -m symact run CHAPTER/NAME [--profile P]   # load the stored result, or run and store it

``run`` is what a long ``paper`` run in the background wants (``nohup python -m symact run
sapl/table1-mlp-mnist --profile paper > log &``): it logs each stored part as it finishes, and a stopped run
resumes from them (see :mod:`symact.results`).
"""
from __future__ import annotations

import argparse
import logging
import sys

from symact import results


def _registry() -> dict:
    import symact.experiments  # noqa: F401  (registers every experiment)

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


def run(name: str, profile: str | None = None, recompute: bool = False) -> results.Result:
    """Load or run the experiment ``name`` (``chapter/experiment``, as :func:`list_experiments` prints it)."""
    reg = _registry()
    key = tuple(name.split("/", 1))
    if key not in reg:
        raise SystemExit(f"unknown experiment {name!r}; `python -m symact list` shows the {len(reg)} registered")
    return results.load_or_run(reg[key], profile, recompute=recompute or None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m symact", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="registered experiments and their stored results")
    ls.add_argument("chapter", nargs="?")
    rn = sub.add_parser("run", help="load the stored result of an experiment, or run and store it")
    rn.add_argument("name", help="CHAPTER/NAME, as `list` prints it")
    rn.add_argument("--profile", choices=results.PROFILES, help="default: $SYMACT_PROFILE, else auto")
    rn.add_argument("--recompute", action="store_true", help="run even if a fresh result is stored")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(list_experiments(args.chapter)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    res = run(args.name, args.profile, args.recompute)
    print(res.caption())
    return 0


if __name__ == "__main__":
    sys.exit(main())
