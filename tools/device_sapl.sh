#!/usr/bin/env bash
# Paper-profile runs of the S-APL chapter's robustness tables (symmetric-apl.txt Tables 2 to 4, LeNet-5 rows)
# on a lent GPU machine, through tools/device.sh (read it: prepare here, run there, unpack here).
#
#   bash tools/device_sapl.sh prepare | run [SECONDS] [ACTIVATION ...] | unpack DIR
#   (ACTIVATION among relu apl swish sapl, default all four; carry [".carry", "results/sapl"])
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    acts=(relu apl swish sapl); if [ $# -gt 0 ]; then acts=("$@"); fi
    exec bash "$here/device.sh" run "$seconds" "${acts[@]/#/sapl/robustness-lenet-cifar10-}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
