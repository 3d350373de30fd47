#!/usr/bin/env bash
# The Megapixel MNIST figures (README "Megapixel MNIST", docs/results.md): the shipped learnt
# and fixed checkpoints on the first 2,000 test canvases at 1500² (up to 2T saccades, clean
# and noisy proxy, digits looked at), the learnt model's policy ablation (brightness, random,
# oracle: the reader's bound), the learnt model on 3000² canvases (digits and noise
# strokes at their size and density; saccade.models.vs.for_canvas), both models at posterior
# samples (--sample), and the last distillation stage alone (checkpoints/stages/).
# JSON in assets/; the README's tables are then rewritten from it. Two evaluations run side
# by side (one core each).
#
#   bash scripts/megapixel_eval.sh      # about 25 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
EVAL=(python -m saccade.evaluate --n 2000 --localisation)
for v in learnt fixed; do
  "${EVAL[@]}" "checkpoints/megapixel-majority-$v" --noise 0 0.1 0.2 --saccades 20 \
    --json "assets/eval-megapixel-majority-$v.json" &
done
wait
policy() {  # the learnt model's crops placed by policy $1
  "${EVAL[@]}" checkpoints/megapixel-majority-learnt --noise 0 --policy "$1" \
    --json "assets/eval-megapixel-majority-learnt-policy-$1.json"
}
policy brightness & policy random & wait
policy oracle &
"${EVAL[@]}" checkpoints/megapixel-majority-learnt --noise 0 --saccades 20 --canvas 3000 \
  --json assets/eval-megapixel-majority-learnt-3000.json &
wait
for v in learnt fixed; do  # crops at posterior samples: σ's worth and where the draws land
  "${EVAL[@]}" "checkpoints/megapixel-majority-$v" --noise 0 --sample \
    --json "assets/eval-megapixel-majority-$v-sample.json" &
done
wait
# the distillation stages alone (scripts/megapixel.sh, stage 2b): what the T-step stages add
D=checkpoints/stages/megapixel-distil-more
"${EVAL[@]}" $D --noise 0 0.1 --saccades 20 --json assets/eval-megapixel-distil-more.json &
"${EVAL[@]}" $D --noise 0 --sample --json assets/eval-megapixel-distil-more-sample.json &
wait
# The earlier stages alone were evaluated the same way when they were the last one
# (assets/eval-megapixel-distil.json: stage 1, --saccades 20; assets/eval-megapixel-distil-
# sharp{,-sample}.json: stage 2, as stage 2b above); neither has changed since.
python scripts/results_table.py
