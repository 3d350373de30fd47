#!/usr/bin/env bash
# The poster's two figures (issue 34), as stages that resume after a kill and on a fresh
# checkout (scripts/stages.sh; the seed runs land in checkpoints/stages/):
#
#   1. learnt against fixed σ at 2528²: cluttered id, canvases upsampled to 2528² (crops read
#      the full-resolution pyramid), 3 seeds per variance mode, each 6 epochs of 10,000 images
#      from the same initialisation: the shipped one-digit model (cluttered-single-learnt, its
#      99.39% reader inside; every part but the 10-way classifier), lr 1e-3 as the 100²
#      recipe's first id stage; validation accuracy on 500 test images after every epoch,
#      test accuracy on the first 2,000;
#   2. the noisy proxy: cluttered sum from the one-digit model with a fixed proxy noise of
#      0, 0.1 and 0.3 (train and validation, no noise augmentation), 10 epochs of 10,000.
#
#   bash scripts/poster.sh                 # every stage, one after the other (one core)
#   bash scripts/poster.sh poster-id-fixed-2528-s0   # only this stage
# Then: python -m saccade.figures --poster (the two figures, from assets/logs/).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/poster}
mkdir -p "$RUNS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ONLY=("$@")
# shellcheck source=scripts/stages.sh
source scripts/stages.sh
export DEST=${DEST:-checkpoints/stages}
PARTS=proxy_encoder,crop_encoder,posterior,prior,z_embed,rnn,decoder  # all but the classifier
PAIR=(--task id --full-size 2528 --crop-encoder lenet-pool --epochs 6 --train-length 10000
      --lr 1e-3 --max-train-saccades 8 --mode-batches 0.25 --workers 1 --val-n 500
      --test-n 2000 --init checkpoints/cluttered-single-learnt --init-parts "$PARTS")
for seed in 0 1 2; do
  for mode in learnt fixed; do
    stage "poster-id-$mode-2528-s$seed" "${PAIR[@]}" --variance "$mode" --seed "$seed"
  done
done
for noise in 0 0.1 0.3; do
  stage "poster-sum-noise-$noise" --task sum --epochs 10 --train-length 10000 --lr 1e-3 \
    --max-train-saccades 8 --noise-aug 0 --proxy-noise "$noise" --val-n 1000 --test-n 2000 \
    --init checkpoints/cluttered-single-learnt --init-parts "$PARTS"
done
