#!/usr/bin/env bash
# The figures of the shipped cluttered models, on the first 5,000 test images (seed 0):
#   assets/eval-NAME.json                 accuracy after 1..8 saccades at five proxy-noise
#                                         levels, σ, scale, digits looked at;
#   assets/eval-NAME-sample.json          the same with crops at posterior samples;
#   assets/eval-NAME-policy-P.json        the policy ablation: brightness, random, oracle.
# Then python scripts/results_table.py rewrites the README's results table from them.
#
#   bash scripts/cluttered_eval.sh [NAME ...]     # default: every cluttered-* checkpoint
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in checkpoints/cluttered-*.json; do names+=("$(basename "$f" .json)"); done
fi
for name in "${names[@]}"; do
  ckpt=checkpoints/$name
  extra=()
  if [[ $name == *-2528 ]]; then extra=(--full-size 2528); fi
  echo "$name"
  python -m saccade.evaluate "$ckpt" --n 5000 --noise 0 0.1 0.2 0.3 0.4 --saccades 8 \
    --localisation "${extra[@]}" --json "assets/eval-$name.json" > /dev/null
  python -m saccade.evaluate "$ckpt" --n 5000 --noise 0 --sample "${extra[@]}" \
    --json "assets/eval-$name-sample.json" > /dev/null
  for policy in brightness random oracle; do
    python -m saccade.evaluate "$ckpt" --n 5000 --noise 0 --policy "$policy" --localisation \
      "${extra[@]}" --json "assets/eval-$name-policy-$policy.json" > /dev/null
  done
done
python scripts/results_table.py
