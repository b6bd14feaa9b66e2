#!/usr/bin/env bash
# Paper-profile runs of the KAF chapter on a lent GPU machine, through tools/device.sh (read it: prepare here,
# run there, unpack here): bash tools/device_kaf.sh prepare | run [SECONDS] | unpack DIR
# (carry [".carry", "results/kaf", "zoo/kaf"]). One list of experiments, one per line, so merges stay trivial.
set -euo pipefail
here=$(dirname "$0")
EXPERIMENTS=(
    kaf/kaf-lipschitz
)
case "${1:-}" in
run) seconds=${2:-480}; exec bash "$here/device.sh" run "$seconds" "${EXPERIMENTS[@]}" ;;
*) exec bash "$here/device.sh" "$@" ;;
esac
