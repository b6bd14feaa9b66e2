"""Profiles, named experiments, stored results with provenance, and units of long runs: the public names of
:mod:`symact.store`, in one place.

- :mod:`symact.store.registry`: :func:`experiment`, :data:`REGISTRY`, :data:`PROFILES`, :func:`active_profile`,
  :func:`config_hash` (never changes: stored results are matched to their configs by it);
- :mod:`symact.store.results`: :func:`load_or_run`, :class:`Result`, :func:`stored_status`; results stored in
  ``results/<chapter>/<name>.<profile>.json`` with provenance, stale ones reported and rerun;
- :mod:`symact.store.units`: :class:`Unit`, :func:`run_units`, :func:`open_client`: a long experiment's units
  of work, run in-process or by Dask (``python -m symact run NAME --workers n`` or ``--scheduler ADDR``), each
  stored as it finishes, so that a stopped run goes on where it stopped;
- :mod:`symact.store.checkpoints`: where a unit in progress checkpoints its training;
- :mod:`symact.store.provenance`: provenance records and weight fingerprints.
"""
from __future__ import annotations

from symact.store.checkpoints import checkpoint_root
from symact.store.provenance import fingerprint as _fingerprint
from symact.store.provenance import git_commit as _git_commit
from symact.store.registry import (PROFILES, REGISTRY, REPO_ROOT, Experiment, _jsonable, active_profile,
                                   config_hash, experiment, results_dir)
from symact.store.results import Result, load_or_run, stored_result, stored_status
from symact.store.units import (Unit, UnitRun, UnitsFailed, gpu_resources, open_client, run_status, run_units,
                                stored_units, unit_counts)

__all__ = [
    "PROFILES",
    "REGISTRY",
    "REPO_ROOT",
    "Experiment",
    "Result",
    "Unit",
    "UnitRun",
    "UnitsFailed",
    "active_profile",
    "checkpoint_root",
    "config_hash",
    "experiment",
    "gpu_resources",
    "load_or_run",
    "open_client",
    "results_dir",
    "run_status",
    "run_units",
    "stored_result",
    "stored_status",
    "stored_units",
    "unit_counts",
]
