#!/usr/bin/env bash
# Paper-profile runs of the SAF chapter on a lent GPU machine, through tools/device.sh (read it: prepare here,
# run there, unpack here).
#
#   bash tools/device_saf.sh prepare | run [SECONDS] [GROUP | CHAPTER/EXPERIMENT ...] | unpack DIR
#
# GROUP: mnist (default): saf/strong-mnist (plain and mReLU-r-m, seeds 0-2: official AutoAttack, curve, FAB
#        distances, sanity checks, noise attack; resumable units) and the seven MNIST networks of Fig. 9 never
#        run at the paper's 20 epochs (saf/robust-mnist-<model>, one process each, not resumable: each takes
#        about a minute on a GPU);
#        cifar10: saf/strong-cifar10 and the five CIFAR-10 networks of Table 4 at the paper's 45 / 90 epochs.
# carry [".carry", "results/saf", "zoo/saf"]; timeout_s above SECONDS + 60.
set -euo pipefail
here=$(dirname "$0")
MNIST=(saf/strong-mnist saf/robust-mnist-plain-r-m saf/robust-mnist-rbf saf/robust-mnist-rbf-r-m saf/robust-mnist-mrelu
       saf/robust-mnist-mrelu-r saf/robust-mnist-mrelu-m saf/robust-mnist-mrelu-a)
CIFAR=(saf/strong-cifar10 saf/robust-cifar10-plain saf/robust-cifar10-plain-r-m saf/robust-cifar10-rbf-r-m
       saf/robust-cifar10-mrelu saf/robust-cifar10-mrelu-r-m)
case "${1:-}" in
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    exps=()
    if [ $# -eq 0 ]; then set -- mnist; fi
    for a in "$@"; do
        case "$a" in
        mnist) exps+=("${MNIST[@]}") ;;
        cifar10) exps+=("${CIFAR[@]}") ;;
        saf/*) exps+=("$a") ;;
        *) echo "unknown group or experiment: $a (mnist, cifar10 or saf/<name>)"; exit 2 ;;
        esac
    done
    exec bash "$here/device.sh" run "$seconds" "${exps[@]}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
