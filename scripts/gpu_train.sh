#!/usr/bin/env bash
# The training recipes on one CUDA GPU, in one call of under 10 minutes (the device tool
# lends a GPU machine for 15 minutes a session: one call). Side by side:
#   - scripts/cuda_check.py on the shipped checkpoints (CPU against CUDA);
#   - the Megapixel MNIST recipe (scripts/megapixel.sh: the three distillation stages, then
#     learnt and fixed side by side) with --device cuda;
#   - the cluttered sum models (learnt, fixed) continued from the shipped ones, and the id
#     model at 2528² from the shipped id model (scripts/cluttered.sh's last stage).
# Each run is given a number of steps that fits its share of the time: a probe of 12 steps
# measures its seconds per step first, on the loaded machine (the cosine schedule then ends
# where the run ends). What comes back is OUT/pack.tgz.* (split in 15 MB parts: the
# checkpoints, their metrics and logs) and OUT/*.txt.
#
#   OUT=runs/gpu bash scripts/gpu_train.sh          # where $OUT is unset
#   cat runs/gpu/pack.tgz.* | tar xz -C runs/gpu     # then, here
#   DEVICE=cpu SMOKE="--train-length 32 --test-n 4 --val-n 2 --workers 0" T_RUN=8 \
#     DISTIL_MINUTES=0.1 BUDGET=200 OUT=/tmp/smoke bash scripts/gpu_train.sh   # a smoke test
# Status: smoke-tested on the CPU only (as above, 185 s); no GPU was lent when it was
# written. The device tool carries at most 64 MiB of working tree and the shipped checkpoints
# hold more: move those this script does not read (all but checkpoints/readers/ and the
# cluttered sum, single-learnt and id-learnt models) out of the tree for the call, and back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
RUNS=$OUT/runs
mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
DEVICE=${DEVICE:-cuda}    # cpu: a smoke test of this script where there is no GPU
SMOKE=${SMOKE:-}          # flags added last to every run (a smoke test: --train-length 64 ...)
T_RUN=${T_RUN:-330}       # seconds of training of each cluttered run
START=$(date +%s)
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - START) )); }  # seconds left in the call
say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/timeline.txt"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  echo "cores: $(nproc)"; } >> "$OUT/timeline.txt" 2>&1

# steps NAME SECONDS ARGS...: the steps that fit SECONDS, from a 12-step probe of ARGS
steps() {
  local name=$1 seconds=$2
  shift 2
  python -m saccade.train "$@" $SMOKE --steps 12 --log-every 4 --val-n 4 --test-n 0 \
    --out "$RUNS/probe-$name" > "$RUNS/probe-$name.log" 2>&1 || { echo 0; return; }
  python - "$RUNS/probe-$name.metrics.jsonl" "$seconds" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train_s"' in l]
per_step = rows[-1]["train_s"] / rows[-1]["step"]
print(max(20, int(float(sys.argv[2]) / per_step)))
EOF
}

# run NAME SECONDS ARGS...: train ARGS for what fits SECONDS (then its test evaluation) into
# DIR/NAME (default RUNS/NAME); STEPS=N: N steps, no probe
run() {
  local name=$1 seconds=$2 dir=${DIR:-$RUNS}
  shift 2
  local n=${STEPS:-}
  seconds=$(( seconds > 30 ? seconds : 30 ))
  [ -n "$n" ] || n=$(steps "$name" "$seconds" "$@")
  say "$name: $n steps (${seconds}s)"
  [ "$n" -gt 0 ] || { say "$name: the probe failed (RUNS/probe-$name.log)"; return 1; }
  python -m saccade.train "$@" $SMOKE --steps "$n" --minutes "$(python -c "print($seconds / 60)")" \
    --out "$dir/$name" > "$dir/$name.log" 2>&1
  say "$name: exit $? ($(tail -c 300 "$dir/$name.log" | tr '\r\n' '  ' | tail -c 200))"
}

say "start"
timeout 150 python scripts/cuda_check.py --n 8 > "$OUT/cuda_check.txt" 2>&1 &

CUDA=(--device "$DEVICE")
CLUTTER=(--crop-encoder lenet-pool --epochs 100 --lr 3e-4 --warmup 100 --max-train-saccades 8
         --mode-batches 0.25 --workers 1 --val-n 500 --test-n 5000)
# sum, learnt and fixed: the same number of steps each (the learnt one's probe), from the
# shipped models: learnt against fixed at one budget
(n=$(steps cluttered-sum-learnt "$T_RUN" --task sum --variance learnt "${CLUTTER[@]}" "${CUDA[@]}")
 for v in learnt fixed; do
   STEPS=$n run cluttered-sum-$v "$T_RUN" --task sum --variance $v \
     --init checkpoints/cluttered-sum-$v "${CLUTTER[@]}" "${CUDA[@]}" &
 done
 wait) &
for task in single id; do  # the learnt models, continued
  run cluttered-$task-learnt "$T_RUN" --task $task --variance learnt \
    --init checkpoints/cluttered-$task-learnt "${CLUTTER[@]}" "${CUDA[@]}" &
done
run cluttered-id-learnt-2528 "$T_RUN" --task id --variance learnt --full-size 2528 --crop-encoder lenet-pool \
  --epochs 100 --lr 1e-4 --warmup 50 --max-train-saccades 8 --mode-batches 0.25 --workers 3 \
  --val-n 500 --test-n 1000 --init checkpoints/cluttered-id-learnt "${CUDA[@]}" &

# Megapixel MNIST: its recipe's stages, with the steps of the last two fitted to the time
MP=$RUNS/megapixel
mkdir -p "$MP"
say "megapixel-distil"
NO_COPY=1 RUNS=$MP EXTRA="--device $DEVICE --workers 5 --minutes ${DISTIL_MINUTES:-1.5} $SMOKE" bash scripts/megapixel.sh megapixel-distil \
  megapixel-distil-sharp megapixel-distil-more > "$MP/recipe.log" 2>&1
say "megapixel-distil(-sharp, -more): $(cat "$MP/recipe.log")"
stage_flags() { DRY_RUN=1 RUNS=$MP bash scripts/megapixel.sh "$1" | python -c \
  "import shlex,sys; print(' '.join(shlex.quote(a) for a in shlex.split(sys.stdin.read())[1:]))"; }
for v in learnt fixed; do
  eval "FLAGS=($(stage_flags megapixel-majority-$v))"
  DIR=$MP run megapixel-majority-$v $(( $(left) - 110 )) "${FLAGS[@]}" "${CUDA[@]}" --workers 3 \
    --test-n 500 &
done
wait
say "all done"

# what comes back (at most 8 files): timeline.txt, cuda_check.txt and the parts of the pack
# (the checkpoints, their metrics, logs and commands)
(cd "$RUNS" && tar czf - --exclude='probe-*' --exclude='*.state.*' --exclude='*.lock' \
  ./*.json ./*.safetensors ./*.metrics.jsonl ./*.log megapixel/*.json megapixel/*.safetensors \
  megapixel/*.metrics.jsonl megapixel/*.log 2>/dev/null) | split -b 15M - "$OUT/pack.tgz."
ls -la "$OUT"
say "packed"
