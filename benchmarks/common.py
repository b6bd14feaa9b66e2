"""Shared helpers of the benchmark scripts: provenance and writing results/benchmarks/<name>.json."""
from __future__ import annotations

import datetime as dt
import json

import torch

import symact
from symact.device import device_name
from symact.results import REPO_ROOT, _git_commit


def write(name: str, rows: list[dict], notes: str = "") -> None:
    """Store ``rows`` with provenance and print them as a Markdown table."""
    prov = {
        "profile": "benchmark",
        "commit": _git_commit(),
        "symact_version": symact.__version__,
        "torch_version": torch.__version__,
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out = REPO_ROOT / "results" / "benchmarks" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": prov, "notes": notes, "rows": rows}, indent=1) + "\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    print(f"\nwritten to {out.relative_to(REPO_ROOT)}")
