#!/usr/bin/env bash
# The zoom benchmark's models (docs/zoom.md), as stages that resume after a kill and on a
# fresh checkout (scripts/stages.sh; the imitation stage lands in checkpoints/stages/):
#
#   1. zoom-imitate: the where-network learns the coarse-to-fine search from the canvases'
#      ground truth (--objective imitation, saccade.train.imitation), on 32,768² canvases,
#      with the frozen Megapixel digit reader (its crop encoder and per-crop head);
#   2. zoom-refine-imitate: the same with the posterior's local cells over the last crop
#      (--refine-grid 8), from stage 1; 2b. zoom-refine-chain: from stage 2, zooming on the
#      ring through one more side (1,920 -> 480 -> 160 -> 48 px); 2c. zoom-refine-t12: from
#      stage 2b, at T = 12. Stages 2b and 2c are shipped (checkpoints/);
#   3. zoom-ring-learnt and zoom-ring-fixed: the paper's objective, end to end, from stage 2b,
#      σ learnt or fixed (the same initialisation: the fixed model ignores stage 2b's σ heads;
#      its σ is 0.002: of the side for the proxy's cells, of the last crop's for local ones).
#      Not shipped: every setting tried lost what imitation taught (below).
#
#   bash scripts/zoom.sh                  # every stage
#   bash scripts/zoom.sh zoom-imitate     # only this one
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/zoom}
mkdir -p "$RUNS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ONLY=("$@")
# shellcheck source=scripts/stages.sh
source scripts/stages.sh
MODEL=(--dataset zoom --task ring --size 32768 --proxy-size 128 --scale-space log
       --min-scale 0.00122 --max-scale 0.5 --where-grid 32 --n-saccades 8 --crop-to-rnn true
       --where-memory true --seen-init -8 --last-init 6 --proxy-width 16 --pooling evidence --crop-encoder lenet-pool
       --min-sigma 0.0002 --max-sigma 0.05 --freeze crop_encoder,classifier --workers 1
       --batch-size 32 --train-length 4000 --val-n 200 --test-n 1000)
DEST=checkpoints/stages stage zoom-imitate "${MODEL[@]}" --objective imitation \
  --reader checkpoints/readers/megapixel --epochs 60 --lr 1e-3 --warmup 100 --noise-aug 0.1 \
  --minutes ${IMITATE_MINUTES:-40}
# The same search with local cells over the last crop (saccade.models.refine), from stage 1's
# weights (the tensors whose shapes match: all but the prior's cells and the scale's MLP).
REFINE=(--refine-grid 8)
# Its teacher looks at a cue with a crop of 1,920 px (4 cue radii: a first look from the
# proxy lands within the crop's half-side on more canvases) and sends each crop to the
# unseen cue nearest the posterior's mode (the model's own choice of cue, corrected).
DEST=checkpoints/stages stage zoom-refine-imitate "${MODEL[@]}" "${REFINE[@]}" \
  --objective imitation --teacher-order nearest --teacher-cue-side 1920 \
  --init checkpoints/stages/zoom-imitate --epochs 60 --lr 1e-3 --warmup 100 --noise-aug 0.1 \
  --minutes ${REFINE_MINUTES:-50}
# Stage 2b: the same search, zooming on the ring's centre through 480 px first (1,920 -> 480
# -> 160 -> 48 px): from the 1,920-px cue crop (60 px a sample), stage 2 often missed the
# 160-px one by more than its half-side.
# Shipped (checkpoints/zoom-refine-chain).
stage zoom-refine-chain "${MODEL[@]}" "${REFINE[@]}" \
  --objective imitation --teacher-order nearest --teacher-cue-side 1920 \
  --teacher-zoom 480,160,48 --init checkpoints/stages/zoom-refine-imitate --epochs 60 \
  --lr 5e-4 --warmup 50 --noise-aug 0.1 --minutes ${CHAIN_MINUTES:-30}
# Stage 2c: stage 2b trained on at T = 12, the benchmark's most: four cues, the zoom chain,
# and spare steps after a look that missed (stage 2b, trained at T = 8, already read 87.6% at
# T = 12 against 82.9% at 8). Shipped (checkpoints/zoom-refine-t12), the best of the two.
stage zoom-refine-t12 "${MODEL[@]}" "${REFINE[@]}" --n-saccades 12 \
  --objective imitation --teacher-order nearest --teacher-cue-side 1920 \
  --teacher-zoom 480,160,48 --init checkpoints/zoom-refine-chain --epochs 60 \
  --lr 3e-4 --warmup 50 --noise-aug 0.1 --minutes ${T12_MINUTES:-35}
# The paper's objective with its KL and reconstruction weighted down (1e-4 and 0) and no
# score-function term for the cell: the class term reaches the offsets, the scale, σ and the
# recurrent state through the posterior's drawn crops. At the defaults (β_kl 1e-2, β_rec
# 1e-3, cell weight 1) two epochs took stage 2b's 82% to 53% (learnt) and 14% (fixed); with
# β_kl 1e-4 and no cell term, the reconstruction (5 of a loss of 7: it trains the recurrent
# state, which the posterior reads) took the learnt model from 85% to 44% in 4 epochs
# (assets/logs/zoom-ring-*-first-try.metrics.jsonl, zoom-ring-*-with-recon.metrics.jsonl).
# Fixed σ is 0.002 (33 px of the canvas for the proxy's cells, 0.2% of the last crop for the
# local ones; at 0.01: assets/logs/zoom-ring-fixed-sigma-0.01.metrics.jsonl).
ELBO=(--init checkpoints/zoom-refine-chain --epochs 20 --lr 5e-5 --beta-kl 1e-4
      --beta-recon 0 --cell-weight 0 --warmup 50 --noise-aug 0.1 --minutes ${ELBO_MINUTES:-10})
# Not shipped: this setting too took the learnt model from 82% to 47.5% and the fixed one to
# 48.5% in 3 and 2 epochs (assets/logs/zoom-ring-*-no-recon.metrics.jsonl), so these stages
# stay in RUNS (NO_COPY) until one keeps what imitation taught.
NO_COPY=1 stage zoom-ring-learnt "${MODEL[@]}" "${REFINE[@]}" --variance learnt "${ELBO[@]}"
NO_COPY=1 stage zoom-ring-fixed "${MODEL[@]}" "${REFINE[@]}" --variance fixed --fixed-sigma 0.002 "${ELBO[@]}"
