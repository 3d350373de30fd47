#!/usr/bin/env bash
# The shipped Megapixel MNIST model (checkpoints/megapixel-majority-learnt), in three stages:
# a curriculum on the number of noise patterns (0, then 15, then the benchmark's 50), each
# stage starting from the previous one's weights. Stage 1 starts its crop encoder and
# classifier from the cluttered one-digit model (a digit reader); everything else is fresh.
#
# The configuration is ``--preset megapixel`` (saccade.train.PRESETS, where each choice and its
# measurement is written down). Stages 1 and 2 validate on their own noise level. Stage 3, as
# the cluttered models' last stages, runs 10 to 12 saccades per batch and crops a quarter of
# its batches at the posterior's mode (stage 1 peaked at 77% after 5 saccades and fell to 61%
# after 10: the mode went back to digits it had seen, which the mean pool counts twice).
#
#   bash scripts/megapixel.sh       # about 60 min on 2 cores
# tests/test_train.py runs one step of the last stage's exact flags.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${MEGAPIXEL_RUN_DIR:-/tmp/saccade-megapixel}
mkdir -p "$OUT"
python -m saccade.train --preset megapixel --n-noise 0 --warmup 100 --steps 600 --train-length 9600 --workers 1 --val-n 300 --test-n 0 --log-every 20 --init checkpoints/cluttered-single-learnt --init-parts crop_encoder,classifier --out "$OUT/stage1"
python -m saccade.train --preset megapixel --n-noise 15 --warmup 100 --steps 800 --train-length 16000 --workers 1 --val-n 500 --test-n 0 --log-every 20 --init "$OUT/stage1" --out "$OUT/stage2"
python -m saccade.train --preset megapixel --warmup 100 --steps 4000 --train-length 16000 --max-train-saccades 12 --mode-batches 0.25 --workers 1 --val-n 500 --test-n 2000 --log-every 20 --init "$OUT/stage2" --out "$OUT/megapixel-majority-learnt"
cp "$OUT"/megapixel-majority-learnt.{safetensors,json,metrics.jsonl} checkpoints/
