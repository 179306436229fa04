#!/usr/bin/env bash
# Issue 14, item 6, as one prepared run for a session that is lent a GPU. It runs the CUDA cases of
# the solver contract suite and of the PSL layer's gradients, then bench_batch.py's throughput at
# B = 16,384 in float32 (target: 100,000 CLEVR-sized problems/s), then the 10M-potential single
# model. From the repository root on the device machine (the device tool's `run`, timeout_s 560):
#
#     bash benchmarks/gpu_check.sh
#
# Each step has its own time limit, so a step that hangs does not take the others with it. Every
# step's whole output goes to $OUT (the folder the device tool brings back; ./gpu-out elsewhere),
# with a summary of the return codes and times in $OUT/summary.txt. It uses the machine's own
# python3 with this checkout on PYTHONPATH (nothing is installed). That image has no cvxpy: the
# contract cases whose reference is a cvxpy optimum skip, and those with a closed-form reference
# run. To run them too, carry cvxpy's wheels as the device tool's README says.
#
# Not yet run on a GPU: no session has been lent one so far. Its first run is also its test.
set -u
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 secs=$2
    shift 2
    echo "== $name (limit ${secs} s): $*" | tee -a "$OUT/summary.txt"
    local t0 rc
    t0=$(date +%s)
    timeout "$secs" "$@" > "$OUT/$name.txt" 2>&1
    rc=$?
    echo "   rc=$rc after $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
    tail -n 30 "$OUT/$name.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "no CUDA device here: nothing to check" | tee -a "$OUT/summary.txt"
    exit 0
fi

step cuda-tests 150 "$PY" -m pytest -p no:cacheprovider -q -m cuda -rs \
    tests/engine/test_solver_contract.py tests/nn/test_gradients.py
step batch-throughput 200 "$PY" benchmarks/bench_batch.py --device cuda --dtypes float32 \
    --sizes 1024,16384 --numpy-subset 64 --cvxpy-max 0
step large-10M 180 "$PY" benchmarks/bench_batch.py --large 10000000 --device cuda --skip-numpy
cat "$OUT/summary.txt"
