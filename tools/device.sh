#!/usr/bin/env bash
# Paper-profile runs on a lent GPU machine, in one short call: the pending units of the named experiments run
# on one Dask cluster there (a scheduler and WORKERS single-thread workers sharing the GPU, each advertising
# GPU=1), each stored as it finishes (symact.store.units), so a run cut off by the time limit goes on from its
# stored units in the next call. The chapter scripts (device_sapl.sh, device_benchmark.sh) name the experiments.
#
# Here, once:    bash tools/device.sh prepare
#                  -> .carry/ (git-ignored): the CIFAR-10 JPEG copy and, in .carry/wheels, the wheels the GPU
#                     machine lacks (torchattacks, dask, distributed and their missing needs, safetensors) for
#                     its Python (PYVER, default 3.12)
# There:         bash tools/device.sh run SECONDS CHAPTER/EXPERIMENT ...
#                  (the device tool's run, carry [".carry", "results/<chapter>", "zoo/<chapter>"], timeout_s
#                  above SECONDS + 60)
#                  -> $OUT/results.tgz (the results, stored units and zoo networks of those experiments),
#                     $OUT/run.log, and $OUT/cuda-tests.log (the CUDA-against-CPU activation tests, which CI
#                     cannot run)
# Here, after:   bash tools/device.sh unpack DIR   (DIR: the folder the files came back to)
# SYMACT_PROFILE_RUN=smoke runs the same steps at the smoke profile (a check of the script on any machine:
# without CUDA, and with dask already installed, `run` skips the wheels it cannot use).
# WORKERS (default 4): Dask workers on the machine; SYMACT_CHECKPOINTS: where training units checkpoint.
#
# The stored weights (<unit>.safetensors) travel in the archive so that a later call attacks the same networks;
# they stay out of git. Commit the JSON files and the zoo: a clone without the unit weights trains each network
# again, and keeps the stored attacks only if the new network's fingerprint (a hash of its weights) is the
# stored one.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${SYMACT_PROFILE_RUN:-paper}
PYTHON=${PYTHON:-python3}
# what the GPU machine's image lacks (its packages: the device notes' KINDS.md); one version each
WHEELS=(torchattacks==3.5.1 dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2
        tornado==6.6.1 zict==3.0.0 safetensors==0.8.0)

case "${1:-}" in
prepare)
    mkdir -p .carry/data .carry/wheels
    rm -rf .carry/data/CIFAR10-jpeg .carry/data/MNIST
    cp -r "${SYMACT_DATA:-../shared/datasets}/CIFAR10-jpeg" "${SYMACT_DATA:-../shared/datasets}/MNIST" .carry/data/
    plat=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
             manylinux1_x86_64 manylinux_2_5_x86_64; do plat+=(--platform "$p"); done
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" \
        --implementation cp "${plat[@]}" -d .carry/wheels "${WHEELS[@]}"
    ls .carry/wheels
    du -sh .carry
    ;;
run)
    seconds=${2:?seconds}
    shift 2
    [ $# -gt 0 ] || { echo "name at least one experiment (chapter/name)"; exit 2; }
    exps=("$@")
    out=${OUT:-_build/device}
    mkdir -p "$out"
    if ! "$PYTHON" -c "import distributed, torchattacks, safetensors" 2>/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .carry/wheels/*.whl
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 DASK_CONFIG=$PWD/symact/store/dask
    [ -d .carry/data ] && export SYMACT_DATA=$PWD/.carry/data
    "$PYTHON" -c "import torch, torchattacks, distributed; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'distributed', distributed.__version__)"
    port=${DASK_PORT:-8786}
    "$PYTHON" -m distributed.cli.dask_scheduler --host 127.0.0.1 --port "$port" --dashboard-address :0 \
        > "$out/scheduler.log" 2>&1 &
    scheduler=$!
    "$PYTHON" -m distributed.cli.dask_worker "tcp://127.0.0.1:$port" --nworkers "${WORKERS:-4}" --nthreads 1 \
        --resources GPU=1 --dashboard-address :0 > "$out/workers.log" 2>&1 &
    workers=$!
    trap 'kill $workers 2>/dev/null; wait $workers 2>/dev/null; kill $scheduler 2>/dev/null || true' EXIT
    for e in "${exps[@]}"; do  # one driver per experiment, all sharing the workers
        timeout "$seconds" "$PYTHON" -m symact run "$e" --profile "$PROFILE" --scheduler "tcp://127.0.0.1:$port" \
            > "$out/${e//\//_}.log" 2>&1 &
    done
    # the CUDA kernels against the CPU ones (skipped on machines without CUDA, so CI never runs them)
    timeout "$seconds" "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_activations_generic.py -k cuda \
        > "$out/cuda-tests.log" 2>&1 &
    tests=$!
    status=0
    for job in $(jobs -p); do
        [ "$job" = "$scheduler" ] || [ "$job" = "$workers" ] || [ "$job" = "$tests" ] || wait "$job" || status=1
    done
    wait "$tests" || true
    tail -n 3 "$out/cuda-tests.log"
    for e in "${exps[@]}"; do echo "== $e"; tail -n 5 "$out/${e//\//_}.log"; done | tee "$out/run.log"
    paths=()
    shopt -s nullglob
    for e in "${exps[@]}"; do
        "$PYTHON" -m symact list "${e%%/*}" | grep -F "${e#*/}:" | tee -a "$out/run.log" || true
        paths+=(results/"$e"."$PROFILE".*)
        [ -d zoo/"$e" ] && paths+=(zoo/"$e")
    done
    tar czf "$out/results.tgz" "${paths[@]}"
    exit $status
    ;;
unpack)
    tar xzf "${2:?the folder the device files came back to}/results.tgz"
    git status --short results zoo
    ;;
*)
    sed -n 2,25p "$0"
    exit 2
    ;;
esac
