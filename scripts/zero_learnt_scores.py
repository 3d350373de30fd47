"""Does the learnt part of the where-policy matter, or the terms beside it?

The posterior's cell score is learnt scores (a convolution over proxy features, brightness
and the map of covered cells, conditioned on h) plus w_sal x brightness, plus (where the
model has one, Megapixel MNIST) w_seen x the map of covered cells. For each shipped learnt
checkpoint (or those named), this prints the accuracy after 1..T saccades on the first 1,000
test images: as trained; with the learnt scores zeroed (the brightness and covered-cell terms
kept); and, where w_seen exists, with w_seen zeroed instead (the learnt scores kept):

    PYTHONPATH=. python scripts/zero_learnt_scores.py [NAME ...]
"""

import sys
from pathlib import Path

import torch

import saccade
from saccade.evaluate.loop import evaluate

ROOT = Path(__file__).resolve().parents[1]


def accuracy(model) -> str:
    per_step = evaluate(model, n=1000, noise_levels=[])["per_saccade"]
    return " / ".join(f"{100 * v:.1f}" for v in per_step)


names = sys.argv[1:] or sorted(
    p.stem for p in (ROOT / "checkpoints").glob("*.safetensors") if "." not in p.stem
)
for name in names:
    path = ROOT / "checkpoints" / name
    model = saccade.load(path)
    line = f"{name}: w_sal {model.posterior.w_sal.item():.2f}; learnt {accuracy(model)}"
    if hasattr(model.posterior, "w_seen"):
        seen = saccade.load(path)
        with torch.no_grad():
            seen.posterior.w_seen.zero_()
        line += f"; w_seen {model.posterior.w_seen.item():.2f} zeroed {accuracy(seen)}"
    with torch.no_grad():
        model.posterior.cell_head.weight[0].zero_()  # channel 0 of the head: the cell score
        model.posterior.cell_head.bias[0].zero_()
    print(f"{line}; learnt scores zeroed {accuracy(model)}", flush=True)
