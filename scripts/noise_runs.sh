#!/usr/bin/env bash
# The paper's noisy-proxy comparison, short: cluttered/sum trained from the one-digit model
# with a fixed proxy noise of 0, 0.1 and 0.3 (no noise augmentation), 3 epochs of 10,000
# images each, the three runs side by side (one torch thread each); validation accuracy on
# 1,000 test images at the run's own noise after every epoch. Logs go to assets/logs/, the
# figure to assets/noise-train.png (python -m saccade.figures, needs kaleido).
#
#   bash scripts/noise_runs.sh          # about 10 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${NOISE_RUN_DIR:-/tmp/saccade-noise-runs}
mkdir -p "$OUT" assets/logs
export OMP_NUM_THREADS=1
for noise in 0 0.1 0.3; do
  python -m saccade.train --task sum --epochs 3 --train-length 10000 --lr 1e-3 \
    --max-train-saccades 8 --noise-aug 0 --proxy-noise "$noise" --val-n 1000 --test-n 0 \
    --init checkpoints/cluttered-single-learnt --out "$OUT/sum-noise-$noise" > "$OUT/sum-noise-$noise.log" 2>&1 &
done
wait
runs=()
for noise in 0 0.1 0.3; do
  cp "$OUT/sum-noise-$noise.metrics.jsonl" "assets/logs/sum-noise-$noise.metrics.jsonl"
  runs+=("trained at noise $noise=assets/logs/sum-noise-$noise.metrics.jsonl")
done
python -m saccade.figures --out assets --runs "${runs[@]}"
