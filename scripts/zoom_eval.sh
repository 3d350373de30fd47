#!/usr/bin/env bash
# The zoom benchmark's figures (docs/results.md, "The zoom benchmark"): a checkpoint (default
# the best shipped model, checkpoints/zoom-ring-learnt; ZOOM_MODELS="a b" for others) on the
# first N test canvases (default 2,000) at 32,768², posterior mode, clean proxy, its T:
# accuracy, the digit found (localisation), the crops' sides per step; its locations with
# the scale pinned (scale-max, scale-min), the brightness heuristic, the oracle (the crops on
# the digit at the model's scale), for a model with --refine-grid its local cells masked
# (proxy-cells), posterior samples (--sample), and the same model on
# 16,384², 65,536² and 131,072² canvases (fewer: SIDE_N, default 500), met with the trained
# proxy and grid (--canvas-layout share, the default) and, as its ablation, with the proxy and
# the grid scaled with the side (pixels). JSON in assets/eval-zoom-*.json.
#
#   bash scripts/zoom_eval.sh
#   SIDES_ONLY=1 bash scripts/zoom_eval.sh   # only the other sides
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
N=${N:-2000}
SIDE_N=${SIDE_N:-500}
MODELS=${ZOOM_MODELS:-checkpoints/zoom-ring-learnt}
for model in $MODELS; do
  name=$(basename "$model")
  EVAL=(python -m saccade.evaluate "$model" --noise 0 --localisation)
  for side in 16384 65536 131072; do
    "${EVAL[@]}" --n "$SIDE_N" --canvas "$side" --json "assets/eval-$name-$side.json"
    "${EVAL[@]}" --n "$SIDE_N" --canvas "$side" --canvas-layout pixels \
      --json "assets/eval-$name-$side-pixels.json"
  done
  if [ -n "${SIDES_ONLY:-}" ]; then continue; fi
  "${EVAL[@]}" --n "$N" --json "assets/eval-$name.json"
  policies=(scale-max scale-min brightness oracle)
  # a model with local cells over the last crop: also without them (the ablation)
  if python -c "import json,sys; sys.exit(0 if json.load(open('$model.json'))['config'].get('refine_grid') else 1)"; then
    policies+=(proxy-cells)
  fi
  for policy in "${policies[@]}"; do
    "${EVAL[@]}" --n "$N" --policy "$policy" --json "assets/eval-$name-policy-$policy.json"
  done
  "${EVAL[@]}" --n "$N" --sample --json "assets/eval-$name-sample.json"
  # T = 12, the benchmark's most (its accuracy field stays the model's own T; per_saccade to 12)
  "${EVAL[@]}" --n "$N" --saccades 12 --json "assets/eval-$name-saccades-12.json"
done
