#!/usr/bin/env bash
# Paper-profile runs of the DOME chapter's Table 2 (dome.txt Section 7) on a lent GPU machine, through
# tools/device.sh (read it: prepare here, run there, unpack here). Each experiment is
# dome/robust-<network>-<dataset>: 3 models x 3 seeds, one training and one evaluation unit each, stored as
# they finish, so a call cut off by its time limit goes on from the stored units in the next one.
#
#   bash tools/device_dome.sh prepare
#   bash tools/device_dome.sh run [SECONDS] [NETWORK-DATASET ...]
#        NETWORK-DATASET among lenet-mnist lenet-fashion-mnist lenet-cifar10 resnet18-mnist
#        resnet18-fashion-mnist resnet18-cifar10; default the three LeNet-5 ones (ResNet-18: name them)
#        (the device tool's run: carry [".carry", "results/dome", "zoo/dome"], timeout_s above SECONDS + 60)
#   bash tools/device_dome.sh unpack DIR
#
# On a CPU the same runs go through `python -m symact run dome/robust-lenet-mnist --profile paper --workers 2`.
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in
prepare)
    # device.sh's data and wheels, then MNIST and Fashion-MNIST gzipped (symact.data reads .gz), so that the
    # three data sets fit the device tool's 64 MiB carry
    bash "$here/device.sh" prepare
    cd "$here/.."
    src=${SYMACT_DATA:-../shared/datasets}
    for ds in MNIST FashionMNIST; do
        rm -rf ".carry/data/$ds" && mkdir -p ".carry/data/$ds/raw"
        for f in "$src/$ds/raw/"*; do
            case "$f" in *.gz) cp "$f" ".carry/data/$ds/raw/" ;; *) gzip -c "$f" > ".carry/data/$ds/raw/$(basename "$f").gz" ;; esac
        done
    done
    du -sh .carry
    ;;
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    which=(lenet-mnist lenet-fashion-mnist lenet-cifar10); if [ $# -gt 0 ]; then which=("$@"); fi
    exec bash "$here/device.sh" run "$seconds" "${which[@]/#/dome/robust-}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
