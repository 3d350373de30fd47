#!/usr/bin/env bash
# The shipped Megapixel MNIST models (checkpoints/megapixel-majority-{learnt,fixed}), from one
# script. Every stage resumes after a kill: run the script again and a finished stage is
# skipped, an unfinished one continues (train --resume; scripts/stages.sh).
#
#   0. a reader that counts: the crop encoder and the classifier's per-crop head (11
#      outcomes: the 10 digits and "no digit") pre-trained on crops of one MNIST training
#      digit, or none, among the generator's noise strokes (python -m saccade.train.pretrain --kind
#      megapixel; no canvas, no box of any task). The model sums the crops' evidence
#      (--pooling evidence).
#   1. megapixel-distil: the where-network's first step learns where the reader finds a
#      digit, on the 256 brightest cells of each training canvas, read once (python -m
#      saccade.train.distil; no saccade is run, so a step costs the proxy encoder alone).
#   2. megapixel-where: from stage 1, the where-policy alone, the reader frozen (--freeze),
#      5 saccades per canvas, no score function, clean proxies: at each step, the posterior's
#      cell probabilities learn where the reader finds a digit not yet covered, in 64
#      candidate crops per canvas (--find-candidates; saccade.models.find).
#   3. megapixel-majority-learnt: from stage 2, T = 10 saccades, the score function on,
#      proxy noise as in the preset, a quarter of the batches at the posterior's mode; the
#      reader stays frozen (its oracle bound is measured with it as it is).
#   4. megapixel-majority-fixed: the same from stage 2 with --variance fixed.
#
#   bash scripts/megapixel.sh                 # RUNS=runs/megapixel
#   bash scripts/megapixel.sh megapixel-majority-fixed   # only this stage
# Stages 3 and 4 may run side by side in two invocations (one core each). Each stage stops
# at its --steps or its --minutes, whichever comes first (2 CPU cores).
# The configuration is --preset megapixel (saccade.train.config.PRESETS; why each value:
# docs/results.md#the-megapixel-preset).
# Stages 1 and 2 are kept in checkpoints/stages/ (the app does not list them), 3 and 4 in
# checkpoints/: commit them as they land, and a fresh checkout resumes after the last one
# (scripts/stages.sh). EXTRA="--device cuda --workers 8" trains on a GPU (scripts/gpu_train.sh).
# tests/test_train.py runs one step of each stage's exact flags.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/megapixel}
mkdir -p "$RUNS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ONLY=("$@")
# shellcheck source=scripts/stages.sh
source scripts/stages.sh

if [ ! -f checkpoints/readers/megapixel.json ] && [ -z "${DRY_RUN:-}" ]; then
  python -m saccade.train.pretrain --kind megapixel --epochs 12 --min-window 30 --max-window 52 \
    --out checkpoints/readers/megapixel > "$RUNS/reader.log" 2>&1
fi
COMMON=(--preset megapixel --train-length 16000 --workers 1 --val-n 500 --test-n 2000 --log-every 20
        --reader checkpoints/readers/megapixel --freeze crop_encoder,classifier)
CMD="python -m saccade.train.distil" DEST=checkpoints/stages stage megapixel-distil \
  "${COMMON[@]}" --train-length 6000 --epochs 10 --lr 2e-3 --warmup 50 --val-n 100
DEST=checkpoints/stages stage megapixel-where "${COMMON[@]}" --n-saccades 5 --cell-weight 0 \
  --noise-aug 0 --steps 2000 --minutes 25 --warmup 50 --lr 1e-3 --init "$RUNS/megapixel-distil"
stage megapixel-majority-learnt "${COMMON[@]}" --steps 600 --minutes 15 --warmup 50 --lr 5e-4 \
  --mode-batches 0.25 --init "$RUNS/megapixel-where"
stage megapixel-majority-fixed "${COMMON[@]}" --steps 600 --minutes 15 --warmup 50 --lr 5e-4 \
  --mode-batches 0.25 --variance fixed --fixed-sigma 0.01 --init "$RUNS/megapixel-where"
