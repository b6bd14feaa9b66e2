#!/usr/bin/env bash
# Paper-profile runs of the S-APL chapter's robustness tables (symmetric-apl.txt Tables 2 to 4, LeNet-5 rows)
# on a lent GPU machine, through tools/device.sh (read it: prepare here, run there, unpack here).
#
#   bash tools/device_sapl.sh prepare | run [SECONDS] [ACTIVATION ...] | unpack DIR
#   (ACTIVATION among relu apl swish sapl, default all four; carry [".carry", "results/sapl"])
#   With no ACTIVATION named, sapl/strong-lenet-cifar10 (the four networks over 3 seeds: AutoAttack and PGD curves,
#   CW-L2 and FAB distances, sanity checks) runs after the four robustness networks.
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    acts=(relu apl swish sapl); extra=(sapl/strong-lenet-cifar10)
    if [ $# -gt 0 ]; then acts=("$@"); extra=(); fi
    exec bash "$here/device.sh" run "$seconds" "${acts[@]/#/sapl/robustness-lenet-cifar10-}" "${extra[@]}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
