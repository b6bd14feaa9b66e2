#!/usr/bin/env bash
# Paper-profile runs of the S-APL chapter's robustness tables (symmetric-apl.txt Tables 2 to 4, LeNet-5
# rows) on a lent GPU machine, in one short call. Each run is resumable (symact.results.part), so a run cut
# off by the time limit continues from its stored parts in the next call.
#
# Here, once:    bash tools/device_sapl.sh prepare
#                  -> .carry/ (git-ignored): the CIFAR-10 JPEG copy and the torchattacks wheel
# There:         bash tools/device_sapl.sh run [SECONDS] [ACTIVATION ...]
#                  (the device tool's run, carry [".carry", "results/sapl"], timeout_s above SECONDS + 60)
#                  -> $OUT/sapl-results.tgz (the paper results and parts), $OUT/run.log, and
#                     $OUT/cuda-tests.log (the CUDA-against-CPU activation tests, which CI cannot run)
# Here, after:   bash tools/device_sapl.sh unpack DIR   (DIR: the folder the files came back to)
# SYMACT_PROFILE_RUN=smoke runs the same steps at the smoke profile (a check of the script on any machine).
#
# The stored weights (train.pt) travel in the archive so that a later call attacks the same networks; they stay
# out of git. Commit only the JSON files: a clone without the weights trains each network again, and keeps the
# stored attacks only if the new network's fingerprint (a hash of its weights) is the stored one.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTS_ALL=(relu apl swish sapl)
PROFILE=${SYMACT_PROFILE_RUN:-paper}

case "${1:-}" in
prepare)
    mkdir -p .carry/data .carry/whl
    cp -r "${SYMACT_DATA:-../shared/datasets}/CIFAR10-jpeg" .carry/data/
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d .carry/whl torchattacks==3.5.1
    du -sh .carry
    ;;
run)
    seconds=${2:-480}
    shift; if [ $# -gt 0 ]; then shift; fi
    acts=("${ACTS_ALL[@]}"); if [ $# -gt 0 ]; then acts=("$@"); fi
    out=${OUT:-_build/device}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .carry/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SYMACT_DATA=$PWD/.carry/data OMP_NUM_THREADS=4
    python3 -c "import torch, torchattacks; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    for a in "${acts[@]}"; do
        timeout "$seconds" python3 -m symact run "sapl/robustness-lenet-cifar10-$a" --profile "$PROFILE" \
            > "$out/$a.log" 2>&1 &
    done
    # the CUDA kernels against the CPU ones (skipped on machines without CUDA, so CI never runs them)
    timeout "$seconds" python3 -m pytest -q -p no:cacheprovider tests/test_activations_generic.py -k cuda \
        > "$out/cuda-tests.log" 2>&1 &
    wait || true
    tail -n 3 "$out/cuda-tests.log"
    for a in "${acts[@]}"; do echo "== $a"; tail -n 5 "$out/$a.log"; done | tee "$out/run.log"
    tar czf "$out/sapl-results.tgz" results/sapl/robustness-lenet-cifar10-*."$PROFILE".*
    ;;
unpack)
    tar xzf "${2:?the folder the device files came back to}/sapl-results.tgz"
    git status --short results/sapl
    ;;
*)
    sed -n 2,16p "$0"
    exit 2
    ;;
esac
