#!/usr/bin/env bash
# The units issue's acceptance check: one quick experiment run (1) with --workers 2 (a LocalCluster) and
# (2) against a Dask scheduler and two workers started by hand on this machine stores the same result (all
# but timings and provenance). Each run writes into its own temporary results folder; the repository's
# results/ are not touched.
#   bash tools/check_dask_paths.sh [CHAPTER/EXPERIMENT]     (default sapl/dynamics, about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DASK=${DASK:-.venv/bin/dask}
NAME=${1:-sapl/dynamics}
PORT=${PORT:-8786}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

SYMACT_RESULTS=$tmp/local $PY -m symact run "$NAME" --profile quick --recompute --workers 2

export DASK_CONFIG=$PWD/symact/store/dask   # the workers' environment for torch (one thread, no MALLOC_TRIM_THRESHOLD_)
$DASK scheduler --host 127.0.0.1 --port "$PORT" --no-dashboard > "$tmp/scheduler.log" 2>&1 &
sleep 3
$DASK worker "tcp://127.0.0.1:$PORT" --nworkers 2 --nthreads 1 --no-dashboard > "$tmp/workers.log" 2>&1 &
sleep 5
SYMACT_RESULTS=$tmp/cluster $PY -m symact run "$NAME" --profile quick --recompute --scheduler "tcp://127.0.0.1:$PORT"

$PY - "$tmp" "$NAME" <<'EOF'
import json, sys
from pathlib import Path
tmp, name = Path(sys.argv[1]), sys.argv[2]
chapter, exp = name.split("/")
a, b = (json.loads((tmp / w / chapter / f"{exp}.quick.json").read_text())["result"] for w in ("local", "cluster"))

def strip(x):  # timings differ from run to run; everything else must not
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if "second" not in k and k not in ("wall", "time")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x

same = strip(a) == strip(b)
print(f"{name} quick: --workers 2 and a hand-started scheduler with two workers store "
      f"{'the same result' if same else 'DIFFERENT results'}")
sys.exit(0 if same else 1)
EOF
