#!/usr/bin/env bash
# Paper-profile runs of the KAF chapter on a lent GPU machine, through tools/device.sh (read it: prepare here,
# run there, unpack here). A plain list of experiments, in the order they run: add yours on its own line.
#
#   bash tools/device_kaf.sh prepare | run [SECONDS] [EXPERIMENT ...] | unpack DIR
#   (carry [".carry", "results/benchmark", "zoo/benchmark", "results/kaf", "zoo/kaf"]; timeout_s above SECONDS + 60)
# - kaf/kaf-depth-gradients: per-layer gradients at initialisation and over the first 50 iterations (minutes);
# - kaf/kaf-lipschitz: Lipschitz bounds and certified accuracy of ReLU, KAF and MaxMin networks;
# - kaf/pgd-at-mnist: the MNIST leaderboard's ReLU and KAF rows retrained by PGD (is the KAF's catastrophic
#   overfitting the training's or the KAF's?), 3 seeds, the leaderboard's evaluation (about 10 CPU-hours);
# - the fast-adversarial-training tables (kaf_fat.fat_experiments()): each ReLU row first, the transfer
#   surrogate its network's other rows take from the zoo; then kaf/fat-predicted-labels, which reads their
#   networks from the zoo;
# - kaf/kaf-depth-training: ResNet-20/56 with ReLU and KAF and KAF-56 with the fix, 3 seeds, 150 epochs (the
#   thesis's protocol; hours, resumable unit by unit).
# SYMACT_PROFILE_RUN=smoke checks the script on any machine (WORKERS=1 on a small one).
set -euo pipefail
here=$(dirname "$0")
EXPERIMENTS=(
    kaf/kaf-depth-gradients
    kaf/kaf-lipschitz
    kaf/pgd-at-mnist
    benchmark/cifar10-relu
    benchmark/cifar10-elu
    benchmark/cifar10-kaf
    benchmark/cifar10-kaf-elu
    benchmark/cifar10-silu
    benchmark/cifar10-kaf-swish
    benchmark/cifar10-kaf-free
    benchmark/cifar10-resnet20-relu
    benchmark/cifar10-resnet20-elu
    benchmark/cifar10-resnet20-kaf
    benchmark/cifar10-resnet20-kaf-relu
    benchmark/cifar10-resnet20-kaf-elu
    benchmark/cifar10-resnet20-silu
    benchmark/cifar10-resnet20-kaf-swish
    benchmark/cifar10-resnet20-kaf-free
    kaf/fat-predicted-labels
    kaf/kaf-depth-training
)
case "${1:-}" in
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    if [ $# -gt 0 ]; then EXPERIMENTS=("$@"); fi
    exec bash "$here/device.sh" run "$seconds" "${EXPERIMENTS[@]}"
    ;;
*)
    exec bash "$here/device.sh" "$@"
    ;;
esac
