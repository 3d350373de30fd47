#!/usr/bin/env bash
# The Megapixel MNIST figures (docs/results.md): the shipped checkpoint on the first 2,000 test
# canvases at 1500² (up to 2T saccades, clean and noisy proxy, digits looked at), the policy
# ablation (brightness, random, oracle), and the same checkpoint on 3000² canvases (digits and
# noise strokes at their size and density; saccade.models.vs.for_canvas). JSON in assets/.
#
#   bash scripts/megapixel_eval.sh      # about 6 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=checkpoints/megapixel-majority-learnt
python -m saccade.evaluate "$CKPT" --n 2000 --noise 0 0.1 0.2 --saccades 20 --localisation \
  --json assets/eval-megapixel-majority-learnt.json
for policy in brightness random oracle; do
  python -m saccade.evaluate "$CKPT" --n 2000 --noise 0 --policy "$policy" --localisation \
    --json "assets/eval-megapixel-majority-learnt-policy-$policy.json"
done
python -m saccade.evaluate "$CKPT" --n 2000 --noise 0 --saccades 20 --canvas 3000 --localisation \
  --json assets/eval-megapixel-majority-learnt-3000.json
