"""One-off migration (issue 32, item 9): name the cascade that stored results ran, without recomputing them.

Until December 2026 ``make_attack("autoattack")`` was torchattacks' ``AutoAttack(version="standard")``, whose
APGD, APGD-T and FAB run 10 iterations. It now builds the authors' 100-iteration AutoAttack, and the old
cascade is ``make_attack("cascade-10")``. The configs of the experiments that run a cascade gained a field
``autoattack`` naming it, which changes their config hashes. This script adds that field to the config stored
in each result of those experiments, with the value the code registers for that profile, and stores the new
hash; it refuses (and changes nothing) where

- the migrated config would differ from the registered one in anything but the new field, or
- a result that ran a cascade would be labelled ``"autoattack"`` (they all ran the 10-iteration one).

Each migrated file records what was done under ``provenance["migrations"]``. Nothing is recomputed.

    python tools/migrate_autoattack_field.py          # dry run: what would change
    python tools/migrate_autoattack_field.py --write
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys

from symact.results import REGISTRY, _jsonable, config_hash

FIELD = "autoattack"
NOTE = ("config field 'autoattack' added with the cascade this result ran: before 2026-12-07 "
        "make_attack('autoattack') was torchattacks' AutoAttack 'standard' (10 iterations), now 'cascade-10'; "
        "nothing recomputed")


def ran_cascade(exp, result: dict) -> bool:
    """Whether a stored result holds the output of a cascade (an ``autoattack`` entry that is not empty)."""
    def walk(node):
        if isinstance(node, dict):
            return any((k.startswith("autoattack") and v not in (None, {}, [])) or walk(v) for k, v in node.items())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False
    return walk(result)


def migrate(write: bool) -> int:
    import symact.experiments  # noqa: F401  (registers every experiment)

    problems = 0
    for (chapter, name), exp in sorted(REGISTRY.items()):
        for prof, cfg in exp.configs.items():
            if FIELD not in {f.name for f in dataclasses.fields(cfg)}:
                continue
            path = exp.path(prof)
            if not path.exists():
                continue
            stored = json.loads(path.read_text())
            prov = stored["provenance"]
            if FIELD in prov["config"]:
                continue
            want = _jsonable(cfg)
            new = {**prov["config"], FIELD: want[FIELD]}
            if new != want:
                diff = sorted(k for k in want if new.get(k) != want.get(k))
                print(f"REFUSED {path}: the stored config differs from the registered one in {diff}")
                problems += 1
                continue
            if ran_cascade(exp, stored["result"]) and want[FIELD] != "cascade-10":
                print(f"REFUSED {path}: it ran the 10-iteration cascade, but {prof} registers {want[FIELD]!r}")
                problems += 1
                continue
            print(f"{'migrated' if write else 'would migrate'} {path}: {FIELD}={want[FIELD]!r}")
            if write:
                old_hash = prov["config_hash"]
                prov["config"] = new
                prov["config_hash"] = config_hash(cfg)
                prov.setdefault("migrations", []).append(
                    {"date": dt.date.today().isoformat(), "what": NOTE, "old_config_hash": old_hash})
                path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the stored files (default: dry run)")
    return 1 if migrate(ap.parse_args(argv).write) else 0


if __name__ == "__main__":
    sys.exit(main())
