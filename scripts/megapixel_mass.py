"""Where a Megapixel MNIST posterior's first-step mass goes, and where its teacher's goes
(docs/results.md, "Megapixel MNIST": why a drawn crop finds fewer digits than the mode).

For each checkpoint: the mean share of the step-1 categorical π (nothing seen yet) on cells
holding a digit, on cells holding only a distractor blob, and on the rest (empty cells and
cells beside a digit), and π's entropy, over the first N test canvases. Then the teacher's
share: the distillation targets r^γ (the frozen reader's P(digit) of a 45 px crop at each of
the 64 brightest cells, ``saccade.train.distil``) put on digit cells, for several γ. The
boxes measure (``saccade.evaluate.metrics.blob_cells``); nothing here trains.

    PYTHONPATH=. python scripts/megapixel_mass.py [N] [CHECKPOINT ...]
    # N = 60; default: the shipped learnt model and the three distillation stages
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from saccade.checkpoint import load
from saccade.evaluate.loop import evaluation_dataset
from saccade.evaluate.metrics import blob_cells
from saccade.train.distil import ReaderCrops, held_out, read

DEFAULT = [
    "checkpoints/megapixel-majority-learnt",
    "checkpoints/stages/megapixel-distil-more",
    "checkpoints/stages/megapixel-distil-sharp",
    "checkpoints/stages/megapixel-distil",
]
POWERS = (1, 3, 6, 10, 20)


@torch.no_grad()
def model_mass(model, n: int) -> dict[str, float]:
    """Mean step-1 π share on digit / distractor / other cells, and π's entropy (nats)."""
    shares = []
    for proxy, digit, other in held_out(evaluation_dataset(model), n, model.config.where_grid):
        pi = F.softmax(model.first_step(proxy).logits.float(), -1)[0].numpy()
        entropy = -(pi * np.log(pi + 1e-12)).sum()
        shares.append((pi[digit].sum(), pi[other].sum(), entropy))
    d, o, h = np.mean(shares, 0)
    return {"digit": d, "distractor": o, "other": 1 - d - o, "entropy": h}


@torch.no_grad()
def teacher_mass(model, n: int, candidates: int = 64, side: float = 45.0) -> dict:
    """Mean share of r^γ on digit cells among the ``candidates`` brightest, per γ (the
    model's reader; side: distil's default --target-side)."""
    data = evaluation_dataset(model)
    crops = ReaderCrops(data, model, candidates, side)
    shares = {g: [] for g in POWERS}
    for i in range(n):
        item = crops[i]
        r = read(model, item["crops"].float()).numpy().astype(np.float64)
        sample = data[i]
        digit, _ = blob_cells(sample["image"], sample["boxes"], model.config.where_grid)
        on_digit = digit.flatten()[item["cells"].numpy()]
        for g in POWERS:
            w = r**g
            shares[g].append(w[on_digit].sum() / w.sum())
    return {g: float(np.mean(v)) for g, v in shares.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    names = sys.argv[2:] or DEFAULT
    torch.set_num_threads(2)
    models = [load(name).eval() for name in names]
    for name, model in zip(names, models, strict=True):
        m = model_mass(model, n)
        print(
            f"{name}: step-1 π on digit cells {m['digit']:.3f}, distractor cells "
            f"{m['distractor']:.3f}, other {m['other']:.3f}; entropy {m['entropy']:.2f} nats"
        )
    shares = teacher_mass(models[0], n)
    print(f"the reader's targets r^γ on digit cells ({n} canvases, 64 brightest cells each):")
    for g, share in shares.items():
        print(f"  γ = {g:2d}: {share:.3f}")


if __name__ == "__main__":
    main()
