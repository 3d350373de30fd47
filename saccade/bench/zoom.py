"""``python -m saccade.bench --suite zoom``: what a zoom canvas costs at 16,384² to 131,072².

Rows, per canvas side (each per image, medians over ``repeats``):

- "data": drawing a sample (its layout and its proxy, rendered from the shapes: what a
  DataLoader worker does);
- "train": the training loop's own step (``saccade.train.loop.train_step`` with the VS bound,
  ``objectives.ELBO``, z sampled) of the same VS model, configured for that side with the
  same proxy and grid and its crops' sides kept in pixels (40 px to half the side): the
  cost of T crops of k² samples, rendered from the canvas where they fall, plus the proxy's
  encoder, whatever the side;
- "tiles" (``tile_grid``): what a multiple-instance baseline that reads every full-resolution
  tile would cost: the crop encoder on 48-px tiles resampled to k², timed on ``TILE_SAMPLE``
  tiles of the canvas and multiplied by the number of tiles (the canvas side squared over
  48²): its cost grows with the area, so it is measured at 16,384² only and its growth is the
  tile count's.

- "one-level" (``one_level``, with ``--zoom-reader CHECKPOINT``): an IPS-style baseline
  (Bergner et al. 2023) bounded from above: it scores every patch of one pyramid level and
  reads its top M; here its top patch is given, centred on the digit, and read by the VS
  model's reader after one crop. Per patch side (32 samples of level ℓ: 32·2^ℓ px), the
  accuracy on ``n`` test canvases and the cost of scoring all (side / patch)² patches with the
  crop encoder (timed as the tile grid's): at the levels where the digit can be read the
  patches are as many as the tile grid's, at the cheap levels the digit is below a sample.

``ratio`` on a "train" row is its time over the smallest side's: a cost that does not
depend on the canvas's size stays near 1.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm import tqdm

from ..data import make_dataset
from ..data.zoom import DEFAULT_RENDER
from ..glimpse import glimpse
from ..models.objective import LossWeights
from ..models.registry import create_model
from .timing import time_calls

#: the sides of the zoom suite
ZOOM_SIDES = [16384, 32768, 65536, 131072]
#: the multiple-instance baseline's tile side (level-0 pixels) and the tiles it is timed on
TILE_SIDE, TILE_SAMPLE = 48, 1024


def zoom_config(side: int, proxy_size: int = 128, render: str = DEFAULT_RENDER):
    """scripts/zoom.sh's model for canvases of ``side``: crops from 40 px to half the side;
    the canvases drawn by ``render`` (``saccade.data.zoom.RENDERS``)."""
    from ..train.config import TrainConfig
    from ..train.loop import model_config

    ds = make_dataset("zoom", split="train", size=side, proxy_size=proxy_size, render=render)
    cfg = TrainConfig.from_settings(
        dataset="zoom", task="ring", size=side, proxy_size=proxy_size, scale_space="log",
        min_scale=40 / side, max_scale=0.5, where_grid=32, n_saccades=8, crop_to_rnn=True,
        where_memory=True, proxy_width=16, pooling="evidence", crop_encoder="lenet-pool",
    )  # fmt: skip
    return model_config(cfg, ds), ds


def bench_zoom(
    sides: list[int] | None = None,
    repeats: int = 10,
    batch_size: int = 16,
    device: str = "cpu",
    render: str = DEFAULT_RENDER,
) -> list[dict]:
    """The suite's rows (module docstring), on the CPU (``device`` other than "cpu" is
    refused: the canvases are rendered on the CPU, and so is this step), on canvases drawn
    by ``render``."""
    from ..train import loop
    from ..train.objectives import ELBO

    if str(device) != "cpu":
        raise ValueError(f"device={device!r}: the zoom suite runs on the CPU")
    rows = []
    device = torch.device("cpu")
    for side in tqdm(sides or ZOOM_SIDES, desc="zoom", unit="side"):
        config, ds = zoom_config(side, render=render)
        common = {"model": "vs", "dataset": "zoom", "side": side, "render": render}
        draws = []
        for i in range(max(repeats, batch_size)):
            t = time.perf_counter()
            ds[i]
            draws.append(time.perf_counter() - t)
        rows.append(common | {"phase": "data", "ms_per_image": 1e3 * float(np.median(draws))})
        torch.manual_seed(0)
        model = create_model("vs", config).train()
        batch = loop.collate([ds[i] for i in range(batch_size)])
        steps = loop.Steps(list(model.parameters()), torch.optim.AdamW(model.parameters()))
        objective = ELBO(model, LossWeights())

        def step(steps=steps, objective=objective, batch=batch) -> None:
            loop.train_step(steps, objective, batch, device)

        timing = time_calls(step, device, repeats, memory=True)
        rows.append(
            common
            | {
                "phase": "train",
                "ms_per_image": 1e3 * timing.seconds / batch_size,
                "peak_mb": timing.peak_mb,
                "batch": batch_size,
            }
        )
    first = next(r for r in rows if r["phase"] == "train")["ms_per_image"]
    for r in rows:
        if r["phase"] == "train":
            r["ratio"] = r["ms_per_image"] / first
    rows += tile_grid(min(sides or ZOOM_SIDES))
    return rows


@torch.no_grad()
def tile_grid(side: int, crop_size: int = 32) -> list[dict]:
    """The multiple-instance baseline's cost per canvas of ``side`` (module docstring): the
    crop encoder on ``TILE_SAMPLE`` full-resolution tiles, scaled to all of them."""
    config, ds = zoom_config(side)
    model = create_model("vs", config).eval()
    canvas = ds[0]["image"]
    n_tiles = tile_grid_count(side)
    rng = np.random.default_rng(0)
    centres = rng.uniform(-1, 1, (TILE_SAMPLE, 2))
    s = -1.0 + 2 * math.log(TILE_SIDE / 40) / math.log(0.5 * side / 40)  # a 48-px window
    z = torch.tensor(
        np.concatenate([np.full((TILE_SAMPLE, 1), s), centres], 1), dtype=torch.float32
    )
    t = time.perf_counter()
    for i in range(0, TILE_SAMPLE, 256):
        crops = glimpse(canvas, z[i : i + 256], crop_size, **model.scales)
        model.crop_encoder(crops)
    per_tile = (time.perf_counter() - t) / TILE_SAMPLE
    return [
        {
            "model": "tile-grid",
            "dataset": "zoom",
            "side": side,
            "phase": "infer",
            "ms_per_image": 1e3 * per_tile * n_tiles,
            "tiles": n_tiles,
            "what": f"measured on {TILE_SAMPLE} tiles, times {n_tiles}; grows with the area",
        }
    ]


@torch.no_grad()
def one_level(
    checkpoint: str,
    side: int = 32768,
    n: int = 200,
    patch_sides: list[int] | None = None,
    tiles: list[dict] | None = None,
) -> list[dict]:
    """The "one-level" rows (module docstring): the model of ``checkpoint`` (a zoom model)
    reads one crop centred on the digit at each patch side (default 48 px to 12,288 px, by
    doublings) on the first ``n`` test canvases of ``side``; the cost of scoring every patch
    of that level is the tile grid's per-patch time times their number (``tiles``: the
    "tile-grid" rows already measured, e.g. ``bench_zoom``'s; else ``tile_grid(side)``)."""
    from .. import load
    from ..evaluate.loop import evaluation_dataset, larger_canvas
    from ..glimpse import box_to_z

    model = load(checkpoint).eval()
    spec = model.config.dataset or {}
    if spec.get("name") != "zoom":
        raise ValueError(f"checkpoint={checkpoint!r} is not a zoom model ({spec.get('name')!r})")
    if int(side) != int(spec["size"]):
        model, ds = larger_canvas(model, side)
    else:
        ds = evaluation_dataset(model)
    patch_sides = patch_sides or [48 * 2**k for k in range(9)]
    samples = [ds[i] for i in range(min(n, len(ds)))]
    labels = torch.tensor([s["label"] for s in samples])
    proxy = torch.from_numpy(np.stack([s["proxy"] for s in samples]))
    timed = next((r for r in tiles or [] if r["side"] == side), None) or tile_grid(side)[0]
    per_patch = timed["ms_per_image"] / timed["tiles"]
    rows = []
    for patch in tqdm(patch_sides, desc="one level", unit="patch side"):
        boxes = []
        for s in samples:
            x0, y0, x1, y1 = s["boxes"][0]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            boxes.append([cx - patch / 2, cy - patch / 2, cx + patch / 2, cy + patch / 2])
        z = torch.from_numpy(box_to_z(boxes, (side, side), **model.scales)).float()

        def at_digit(t, mode, seen, saliency, z=z):
            return z.to(mode)

        trace = model([s["image"] for s in samples], proxy, 1, policy=at_digit)
        accuracy = (trace.logits[-1].argmax(-1) == labels).float().mean().item()
        patches = tile_grid_count(side, patch)
        rows.append(
            {
                "model": "one-level",
                "dataset": "zoom",
                "side": side,
                "phase": "infer",
                "patch_px": patch,
                "level": max(0, int(math.floor(math.log2(patch / model.config.crop_size)))),
                "patches": patches,
                "accuracy": accuracy,
                "n": len(samples),
                "ms_per_image": per_patch * patches,
                "what": "the top patch given (on the digit): an upper bound of its accuracy",
            }
        )
    return rows


def tile_grid_count(side: int, tile: int = TILE_SIDE) -> int:
    """How many tiles of ``tile`` px a canvas of ``side`` holds."""
    return math.ceil(side / tile) ** 2
