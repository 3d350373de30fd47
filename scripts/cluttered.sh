#!/usr/bin/env bash
# The shipped cluttered MNIST models (checkpoints/cluttered-{single,sum,id}-{learnt,fixed} and
# cluttered-id-learnt-2528), from one script. Every stage resumes after a kill: run the script
# again and a finished stage is skipped, an unfinished one continues (train --resume).
#
#   0. a digit reader: the crop encoder ("lenet-pool", the faster layer order) pre-trained on
#      crops of the plain MNIST training digits, rotated and stretched in training (python -m
#      saccade.train.pretrain; no test digit, no box of any task);
#   1. each task's previous shipped model (its where-policy already covers 99.7-100% of the
#      digits) continues with the reader's crop encoder copied in (--reader), EPOCHS epochs at
#      a low learning rate, 4 to 8 saccades per batch and a quarter of the batches at the
#      posterior's mode; the fixed-variance models start from the same task's learnt or fixed
#      model with --variance fixed;
#   2. the paper's 2528² protocol: the id model trained on canvases upsampled to 2528² (the
#      crops read the full-resolution pyramid in training), from stage 1's id model.
#
#   bash scripts/cluttered.sh            # RUNS=runs/cluttered; EPOCHS=2
#   bash scripts/cluttered.sh cluttered-sum-fixed cluttered-id-fixed   # only these stages
#   EXTRA="--minutes 12" bash scripts/cluttered.sh ...   # flags added to every stage
# Every shipped cluttered model came from these stages with EPOCHS=2; the sum models (--workers
# 0) then had 2 more epochs each with --init their run (docs/results.md, "A better digit
# reader"); each checkpoint's JSON holds its exact command. Two invocations may run side by
# side (one core each): a stage being trained by one is skipped by the other (RUNS/NAME.lock).
# Checkpoints are copied into checkpoints/ as each stage finishes, with their flags in
# assets/logs/NAME.stage: on a fresh checkout a committed stage is done (scripts/stages.sh);
# logs go to RUNS/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/cluttered}
EPOCHS=${EPOCHS:-2}
mkdir -p "$RUNS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

ONLY=("$@")
# shellcheck source=scripts/stages.sh
source scripts/stages.sh
COMMON=(--crop-encoder lenet-pool --epochs "$EPOCHS" --lr 3e-4 --warmup 100 --max-train-saccades 8 --mode-batches 0.25
        --workers 1 --val-n 500 --test-n 5000)
READER=(--reader checkpoints/readers/mnist)

if [ ! -f checkpoints/readers/mnist.json ] && [ -z "${DRY_RUN:-}" ]; then
  python -m saccade.train.pretrain --out checkpoints/readers/mnist --epochs 60 --min-window 24 \
    --max-window 34 --max-shift 4 --clutter 2 --crop-encoder lenet-pool --rotation 15 \
    --stretch 0.15 > "$RUNS/reader.log" 2>&1
fi
stage cluttered-single-learnt --task single --variance learnt --init checkpoints/cluttered-single-learnt "${COMMON[@]}" "${READER[@]}"
stage cluttered-sum-learnt --task sum --variance learnt --init checkpoints/cluttered-sum-learnt "${COMMON[@]}" "${READER[@]}"
stage cluttered-id-learnt --task id --variance learnt --init checkpoints/cluttered-id-learnt "${COMMON[@]}" "${READER[@]}"
stage cluttered-sum-fixed --task sum --variance fixed --init checkpoints/cluttered-sum-fixed "${COMMON[@]}" "${READER[@]}"
stage cluttered-id-fixed --task id --variance fixed --init checkpoints/cluttered-id-fixed "${COMMON[@]}" "${READER[@]}"
# no fixed single model was shipped before: it starts from stage 1's learnt one (reader inside)
stage cluttered-single-fixed --task single --variance fixed --init checkpoints/cluttered-single-learnt "${COMMON[@]}"
stage cluttered-id-learnt-2528 --task id --variance learnt --full-size 2528 --crop-encoder lenet-pool --epochs 1 --lr 1e-4 \
  --warmup 50 --max-train-saccades 8 --mode-batches 0.25 --workers 1 --val-n 500 --test-n 5000 \
  --init checkpoints/cluttered-id-learnt
# the fixed-σ counterpart of the 2528² model, with the same flags, from stage 1's fixed id model
stage cluttered-id-fixed-2528 --task id --variance fixed --full-size 2528 --crop-encoder lenet-pool --epochs 1 --lr 1e-4 \
  --warmup 50 --max-train-saccades 8 --mode-batches 0.25 --workers 1 --val-n 500 --test-n 5000 \
  --init checkpoints/cluttered-id-fixed --minutes 10
