#!/usr/bin/env bash
# Short ablation runs of the objective's departures (docs/results.md, "Ablations of the objective"): cluttered/single
# from scratch, STEPS optimizer steps each, two runs side by side (one torch thread each), then
# each model evaluated on 1,000 test images at proxy noise 0 and 0.3. Writes
# assets/ablations/NAME.json (evaluate's JSON) and prints a markdown table.
#
#   bash scripts/ablations.sh [STEPS]        # default 600 steps (about 15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-600}
OUT=${ABLATION_DIR:-/tmp/saccade-ablations}
mkdir -p "$OUT" assets/ablations
export OMP_NUM_THREADS=1

declare -A RUNS=(
  [default]=""
  [no-score-function]="--cell-weight 0"
  [no-kl]="--beta-kl 0"
  [bound-weights-1]="--beta-recon 1 --beta-kl 1"
  [no-noise-training]="--noise-aug 0"
)
train() {
  local name=$1
  # shellcheck disable=SC2086
  python -m saccade.train --task single --steps "$STEPS" --epochs 1 --train-length $((STEPS * 64)) \
    --max-train-saccades 8 --val-n 1000 --test-n 0 ${RUNS[$name]} --out "$OUT/$name" \
    > "$OUT/$name.log" 2>&1
  python -m saccade.evaluate "$OUT/$name" --n 1000 --noise 0 0.3 --json "assets/ablations/$name.json" \
    > /dev/null 2>&1
}
names=(default no-score-function no-kl bound-weights-1 no-noise-training)
for ((i = 0; i < ${#names[@]}; i += 2)); do
  train "${names[i]}" &
  if ((i + 1 < ${#names[@]})); then train "${names[i + 1]}" & fi
  wait
done
python - "${names[@]}" <<'PY'
import json, sys
print("| run | accuracy | σ step 1, noise 0 | σ step 1, noise 0.3 | ratio |")
print("|---|---:|---:|---:|---:|")
for name in sys.argv[1:]:
    r = json.load(open(f"assets/ablations/{name}.json"))
    s0, s3 = r["sigma"]["0.0"]["mean_per_step"][0], r["sigma"]["0.3"]["mean_per_step"][0]
    print(f"| {name} | {100 * r['accuracy']:.1f}% | {s0:.4f} | {s3:.4f} | {s3 / s0:.2f} |")
PY
