#!/usr/bin/env bash
# Paper-profile runs of the KAF chapter's depth section (book/kaf.md, "Exploding gradients in deep KAF
# ResNets"; symact/experiments/kaf_depth.py) on a lent GPU machine, through tools/device.sh (read it: prepare
# here, run there, unpack here).
#
#   bash tools/device_kaf.sh prepare | run [SECONDS] [EXPERIMENT ...] | unpack DIR
#   EXPERIMENT among kaf-depth-gradients (per-layer gradients at initialisation and over the first 50
#   iterations: minutes) and kaf-depth-training (ResNet-20/56 with ReLU and KAF, and KAF-56 with the fix,
#   3 seeds each, 150 epochs: the thesis's protocol; hours, resumable unit by unit); default both.
#   Carry [".carry", "results/kaf", "zoo/kaf"]; timeout_s above SECONDS + 60.
# SYMACT_PROFILE_RUN=smoke checks the script on any machine (WORKERS=1 on a small one).
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    exps=(kaf-depth-gradients kaf-depth-training); if [ $# -gt 0 ]; then exps=("$@"); fi
    exec bash "$here/device.sh" run "$seconds" "${exps[@]/#/kaf/}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
