"""Does the learnt part of the where-policy matter, or the brightness term beside it?

The posterior's cell score is learnt scores (a convolution over proxy features, brightness
and the map of covered cells, conditioned on h) plus w_sal x brightness. This zeroes the
learnt scores of each shipped learnt checkpoint, keeps the brightness term, and prints the
accuracy after 1..T saccades on the first 1,000 test images, before and after:

    PYTHONPATH=. python scripts/zero_learnt_scores.py
"""

from pathlib import Path

import torch

import saccade
from saccade.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]

for path in sorted((ROOT / "checkpoints").glob("*.safetensors")):
    if "." in path.stem:  # training state, not a checkpoint
        continue
    model = saccade.load(path.with_suffix(""))
    before = evaluate(model, n=1000, noise_levels=[])["per_saccade"]
    with torch.no_grad():
        w_sal = float(model.posterior.w_sal)
        model.posterior.cell_head.weight[0].zero_()  # channel 0 of the head: the cell score
        model.posterior.cell_head.bias[0].zero_()
    after = evaluate(model, n=1000, noise_levels=[])["per_saccade"]
    fmt = " / ".join
    print(
        f"{path.stem}: w_sal {w_sal:.2f}; learnt {fmt(f'{100 * v:.1f}' for v in before)}; "
        f"learnt scores zeroed {fmt(f'{100 * v:.1f}' for v in after)}"
    )
