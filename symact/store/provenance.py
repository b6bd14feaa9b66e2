"""Provenance and stored files: one job, recording where a number came from and writing it safely.

Every stored file (a result, a unit) is ``{"provenance": {...}, "result": ...}`` JSON, written atomically
(a temporary file renamed), with the config hash, git commit, symact and torch versions, device, wall-clock
seconds and date. Networks are identified by :func:`fingerprint`, a hash of their weights.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping

import torch

import symact
from symact.device import device_name
from symact.store.registry import REPO_ROOT, config_hash

__all__ = ["fingerprint", "git_commit", "provenance", "read_json", "read_fresh", "write_json"]


def git_commit() -> str:
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


def provenance(config, commit: str, wall: float, device: str | None = None) -> dict:
    """The provenance fields every stored file has."""
    return {
        "config_hash": config_hash(config),
        "commit": commit,
        "symact_version": symact.__version__,
        "torch_version": torch.__version__,
        "device": device or device_name(),
        "wall_seconds": round(wall, 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def read_json(path: Path) -> dict | None:
    """The stored file at ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_fresh(path: Path, want: str) -> dict | None:
    """The stored file at ``path`` if its config hash is ``want``, else None."""
    d = read_json(path)
    return d if d is not None and d.get("provenance", {}).get("config_hash") == want else None


def write_json(path: Path, prov: dict, data: Any) -> None:
    """Store ``{"provenance": prov, "result": data}`` at ``path``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"provenance": prov, "result": data}, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def fingerprint(weights: torch.nn.Module | Mapping[str, torch.Tensor]) -> str:
    """A hash of a state dict (names, dtypes and values), or of a module's: which network a number was
    computed on."""
    state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        v = v.detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}:{v.dtype}:".encode())
        h.update(v.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
