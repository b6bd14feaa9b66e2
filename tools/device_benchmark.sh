#!/usr/bin/env bash
# Paper-profile rows of the leaderboard (symact.benchmark: fast adversarial training and the book's full
# evaluation, one experiment benchmark/<dataset>-<row> per activation) on a lent GPU machine, through
# tools/device.sh (read it: prepare here, run there, unpack here).
#
#   bash tools/device_benchmark.sh prepare | run [SECONDS] [DATASET] [ROW ...] | unpack DIR
#   DATASET: mnist (default) or cifar10; ROW: registered rows (python -m symact list benchmark), default the
#   rows the leaderboard needs first (relu silu kaf sapl pdome kwta); carry [".carry", "results/benchmark",
#   "zoo/benchmark"]. The relu row runs first in the list: the others take its networks from the zoo as their
#   transfer surrogate when it has stored them, and train their own copy otherwise.
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in
run)
    seconds=${2:-480}
    dataset=${3:-mnist}
    shift; if [ $# -gt 0 ]; then shift; fi; if [ $# -gt 0 ]; then shift; fi
    rows=(relu silu kaf sapl pdome kwta); if [ $# -gt 0 ]; then rows=("$@"); fi
    exec bash "$here/device.sh" run "$seconds" "${rows[@]/#/benchmark/$dataset-}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
