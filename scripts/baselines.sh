#!/usr/bin/env bash
# Train the baselines of the accuracy table (docs/results.md, "Baselines"), one after another, each on
# a budget of MINUTES minutes of training steps (default 10; the VS cluttered checkpoints
# trained 4.5-20 minutes), then evaluate each on the test split the VS rows use.
# Checkpoints go to runs/baselines/ (a ResNet-18 checkpoint is 45 MB: not shipped); the
# evaluations to assets/eval-baseline-NAME.json, the training logs and checkpoint JSONs to
# assets/logs/baselines/.
#
#   bash scripts/baselines.sh [MINUTES] [NAME ...]   # default: every run below
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
shift || true
OUT=runs/baselines
mkdir -p "$OUT" assets/logs/baselines

declare -A RUNS=(
  [resnet18-proxy-cluttered-single]="--model resnet18-proxy --task single"
  [resnet18-proxy-cluttered-id]="--model resnet18-proxy --task id"
  [resnet18-proxy-cluttered-sum]="--model resnet18-proxy --task sum"
  [resnet18-full-cluttered-sum]="--model resnet18-full --task sum"
  [resnet18-proxy-megapixel-majority]="--model resnet18-proxy --preset megapixel --test-n 2000"
  [ram-cluttered-single]="--model ram --task single --n-saccades 8 --n-scales 4 --crop-size 12 --epochs 8"
  [ram-cluttered-sum]="--model ram --task sum --n-saccades 8 --n-scales 4 --crop-size 12 --epochs 8"
  # attention sampling: the digit reader loaded and frozen, only the attention network trains
  # the zoom benchmark: the proxy alone (128², as the VS zoom models' proxy)
  [resnet18-proxy-zoom-ring]="--model resnet18-proxy --dataset zoom --task ring --size 32768 --proxy-size 128 --train-length 8000 --test-n 2000"
  # the same on the area-average renderer (--zoom-render mean), where every cue shows
  [resnet18-proxy-zoom-mean]="--model resnet18-proxy --dataset zoom --task ring --size 32768 --proxy-size 128 --zoom-render mean --train-length 8000 --test-n 2000"
  [ats-megapixel-majority]="--model ats --preset megapixel --test-n 2000 --reader checkpoints/readers/megapixel --freeze crop_encoder,classifier --batch-size 32 --warmup 50"
)
ORDER=(resnet18-proxy-cluttered-single resnet18-proxy-cluttered-id resnet18-proxy-cluttered-sum
  resnet18-full-cluttered-sum resnet18-proxy-megapixel-majority ram-cluttered-single ram-cluttered-sum
  ats-megapixel-majority)  # the zoom ones by name: bash scripts/baselines.sh 50 resnet18-proxy-zoom-ring (the VS zoom stage's 50 minutes), or 15 resnet18-proxy-zoom-mean
[ $# -gt 0 ] && ORDER=("$@")
for name in "${ORDER[@]}"; do
  n=5000
  [[ $name == *megapixel* || $name == *zoom* ]] && n=2000
  # shellcheck disable=SC2086
  python -m saccade.train ${RUNS[$name]} --minutes "$MINUTES" --lr 1e-3 --workers 1 \
    --out "$OUT/$name" > "assets/logs/baselines/$name.log" 2>&1
  cp "$OUT/$name.json" "assets/logs/baselines/$name.json"
  python -m saccade.evaluate "$OUT/$name" --n $n --noise 0 0.1 0.2 \
    --json "assets/eval-baseline-$name.json" > /dev/null 2>&1
  echo "$name done: $(date)"
done
