"""Where a zoom model's first look lands (docs/results.md, "Cells that aim across their
borders"): on the first N test canvases (default 100) of a side, the posterior's first step
at its mode, before any crop: how far the mode's crop centre lies from the nearest cue's
centre (median and 80th percentile, level-0 pixels), the share of the cell probability on the
cells that hold a cue's centre, and the mode's offset from its cell's centre (median, in
cells). Other sides are met as ``evaluate --canvas`` meets them (``--canvas-layout``).

    python scripts/zoom_first_look.py CHECKPOINT [--size 65536] [--n 100] [--canvas-layout share]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

import saccade
from saccade.evaluate.loop import evaluation_dataset, larger_canvas
from saccade.models.posterior import grid_xy


def first_look(model, dataset, n: int) -> dict:
    """The first look's aim on the first ``n`` samples of ``dataset`` (module docstring)."""
    g, side = model.config.where_grid, dataset.side
    samples = [dataset[i] for i in range(n)]
    with torch.no_grad():
        q = model.first_step(torch.from_numpy(np.stack([s["proxy"] for s in samples])))
    p = torch.softmax(q.logits[:, : g * g], -1).numpy()
    offsets = q.offset_mu[:, : g * g].numpy()
    cells = grid_xy(g).numpy()  # (g², 2) the cells' centres in [-1, 1]
    miss, mass, reach = [], [], []
    for b, s in enumerate(samples):
        cues = (s["cue_boxes"][:, :2] + s["cue_boxes"][:, 2:]) / side - 1  # centres in [-1, 1]
        best = p[b].argmax()
        aim = cells[best] + offsets[b, best]
        miss.append(np.linalg.norm((aim - cues) * side / 2, axis=1).min())
        holds = (np.abs(cells[:, None] - cues[None]).max(-1) < 1 / g).any(1)
        mass.append(p[b][holds].sum())
        reach.append(np.abs(offsets[b, best]).max() * g / 2)
    return {
        "miss_px_median": float(np.median(miss)),
        "miss_px_p80": float(np.percentile(miss, 80)),
        "mass_on_cue_cells": float(np.mean(mass)),
        "offset_cells_median": float(np.median(reach)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--size", type=int, default=None, help="canvas side (default: trained)")
    parser.add_argument("--n", type=int, default=100, help="test canvases")
    parser.add_argument("--canvas-layout", choices=("share", "pixels"), default=None)
    args = parser.parse_args()
    model = saccade.load(args.checkpoint).eval()
    if args.size is not None and args.size != model.config.dataset["size"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the side the model was not trained on
            model, dataset = larger_canvas(model, args.size, args.canvas_layout)
    else:
        dataset = evaluation_dataset(model)
    r = first_look(model, dataset, args.n)
    print(
        f"{args.checkpoint} at {dataset.side:,}²: the first look's centre "
        f"{r['miss_px_median']:.0f} px from the nearest cue's (80th percentile "
        f"{r['miss_px_p80']:.0f}); {r['mass_on_cue_cells']:.0%} of the cells' mass on the "
        f"cells holding a cue; the mode's offset {r['offset_cells_median']:.2f} cells"
    )


if __name__ == "__main__":
    main()
