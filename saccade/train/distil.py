"""``python -m saccade.train.distil``: teach the where-network's first step where the reader
finds digits, on every bright cell of each training canvas.

The find term (``saccade.models.find_candidates``) gives the posterior's cell choice the reader's
signal on 64 candidate cells per canvas, inside the T-step training step (about 1 s per
batch of 32 canvases on one core). This command gives the same signal densely and cheaply,
as a stage before that training:

1. **Targets**, once per training canvas: the proxy's ``--candidates`` brightest cells
   (256 of the 45 × 45 at 1500²; every digit lies in one of them, and an empty cell needs no
   reading), each cropped at its centre, ``--target-side`` pixels wide, and read by the
   model's frozen reader (its crop encoder and per-crop head, ``--reader``):
   r = 1 − P(no digit). About 50 ms per canvas on a core: the DataLoader's workers cut the
   crops, the training device reads them.
2. **Training**: the proxy encoder and the posterior's first step (h_0 = 0, no cell seen yet)
   learn the find term's cross-entropy on all of them,

       L = − Σ_j r_j · log π_1(cell_j) / Σ_j r_j,

   which raises the cells where the reader finds a digit and, through the softmax, lowers
   every other cell (the noise strokes among them). No saccade is run: a step costs the
   proxy encoder alone (0.3 s per batch of 32 on a core). The step is the training loop's
   (``saccade.train.loop``, objective ``saccade.train.objectives.FindTerm``): AdamW with
   warm-up and cosine decay, proxy noise (``--noise-aug``), autocast, the clip, the
   checkpoint and resume, as ``python -m saccade.train``.

No ground-truth box enters: the targets come from the reader, which was trained on crops of
MNIST training digits (``python -m saccade.train.pretrain --kind megapixel``). The posterior
stays the same distribution with the same KL: this stage only starts it well. Each epoch
reports ``ranking``, the AUROC of the step-1 log π for the cells that hold a digit against
the cells that hold only a distractor, on ``--val-n`` held-out canvases (the boxes measure;
``saccade.evaluate.metrics.blob_cells``), as ``evaluate --localisation`` does.

The flags are ``python -m saccade.train``'s (``--preset megapixel``, ``--reader``,
``--init``, ``--epochs``, ``--lr``, ``--batch-size``, ``--train-length``, ``--device``,
``--workers``, ``--out``, ...) and the stage's own below (``DistilConfig``). The output is a checkpoint of the whole
model, for the next stage's ``--init``; ``--resume`` continues after a kill (the targets are
recomputed: they are a function of the canvas). Example (scripts/megapixel.sh):

    python -m saccade.train.distil --preset megapixel --reader checkpoints/readers/megapixel \\
        --train-length 8000 --epochs 8 --out runs/megapixel/megapixel-distil
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import checkpoint
from ..evaluate.metrics import auroc, blob_cells
from ..glimpse import Pyramid, glimpse
from ..models.find_candidates import reader_p_digit
from ..models.registry import setting
from ..models.vs import cell_saliency
from .cli import add_flags, parse_args
from .loop import compute_threads, resume_run, run_epochs, setup
from .objectives import FindTerm


class ReaderCrops(torch.utils.data.Dataset):
    """Canvas i of ``dataset`` -> its proxy (p, p) as uint8 (the proxy's 256 levels: kept in
    memory for every epoch), the ``candidates`` brightest cells (K,) and the crops there
    (K, k, k) float16, for the reader (``read``)."""

    def __init__(self, dataset, model: torch.nn.Module, candidates: int, side: float):
        self.dataset, self.k = dataset, int(candidates)
        c = model.config
        frac = float(side) / dataset.side
        if not c.min_scale <= frac <= c.max_scale:
            raise ValueError(
                f"target_side={side!r} px is {frac:.4f} of the {dataset.side} px side; the "
                f"model's crops span {c.min_scale}..{c.max_scale} of it"
            )
        self.s = 2 * (frac - c.min_scale) / (c.max_scale - c.min_scale) - 1
        self.crop_size, self.scales = c.crop_size, (c.min_scale, c.max_scale)
        # the candidates are the model's own salient cells (its --saliency: brightness, tissue)
        self.grid, self.saliency = c.where_grid, c.saliency
        self.cell_xy = model.cell_xy.cpu()

    def __len__(self) -> int:
        return len(self.dataset)

    @torch.no_grad()
    def __getitem__(self, i: int) -> dict:
        sample = self.dataset[i]
        proxy = torch.as_tensor(sample["proxy"], dtype=torch.float32)
        salient = cell_saliency(proxy[None], self.grid, self.saliency)
        cells = salient.flatten(1).topk(self.k, -1).indices[0]
        z = torch.cat([torch.full((self.k, 1), self.s), self.cell_xy[cells]], 1)
        crops = glimpse(Pyramid(sample["image"]), z, self.crop_size, *self.scales)
        return {
            "proxy": (proxy * 255).round().to(torch.uint8),
            "cells": cells,
            "crops": crops.half(),
        }


@torch.no_grad()
def read(model, crops: torch.Tensor) -> torch.Tensor:
    """The reader's P(digit) = 1 − P(no digit) of crops (N, k, k) -> (N,), in eval mode."""
    was = model.crop_encoder.training, model.classifier.training
    model.crop_encoder.eval(), model.classifier.eval()
    p_digit = reader_p_digit(model, crops.float())
    model.crop_encoder.train(was[0]), model.classifier.train(was[1])
    return p_digit


def held_out(dataset, n: int, grid: int) -> list[tuple[torch.Tensor, np.ndarray, np.ndarray]]:
    """The first ``n`` canvases of ``dataset`` for ``ranking``, read once for every epoch:
    (proxy (1, p, p), digit cells (g²,), distractor cells (g²,)) each
    (``saccade.evaluate.metrics.blob_cells``; the boxes measure, they train nothing)."""
    canvases = []
    for i in range(min(n, len(dataset))):
        sample = dataset[i]
        proxy = torch.as_tensor(sample["proxy"], dtype=torch.float32)[None]
        digit, other = (m.flatten() for m in blob_cells(sample["image"], sample["boxes"], grid))
        canvases.append((proxy, digit, other))
    return canvases


@torch.no_grad()
def ranking(model, canvases: list, device) -> float | None:
    """AUROC of the step-1 log π, digit cells against distractor cells, pooled over the
    ``held_out`` canvases."""
    model.eval()
    scores, positive = [], []
    for proxy, digit, other in canvases:
        log_pi = F.log_softmax(model.first_step(proxy.to(device)).logits.float(), -1)[0]
        log_pi = log_pi.cpu().numpy()
        scores += [log_pi[digit], log_pi[other]]
        positive += [np.ones(digit.sum(), bool), np.zeros(other.sum(), bool)]
    return auroc(np.concatenate(scores), np.concatenate(positive))


def where_parameters(model) -> list[torch.nn.Parameter]:
    """What the stage trains: the proxy encoder and the posterior (the reader stays)."""
    return [*model.proxy_encoder.parameters(), *model.posterior.parameters()]


def _one_thread(_worker: int) -> None:
    """A DataLoader worker computes with one thread (one core each)."""
    torch.set_num_threads(1)


def compute_targets(run, data: ReaderCrops) -> dict[str, torch.Tensor]:
    """Every canvas's targets, stacked: {"proxy" (N, p, p) uint8, "cells" (N, K), "found"
    (N, K) float16}: ``run.cfg.workers`` workers cut the crops, the run's device reads them;
    with a progress bar."""
    loader = torch.utils.data.DataLoader(
        data, batch_size=16, num_workers=run.cfg.workers, shuffle=False, worker_init_fn=_one_thread
    )
    parts: dict[str, list] = {"proxy": [], "cells": [], "found": []}
    for batch in tqdm(loader, desc="reader targets", unit="canvas", disable=run.quiet):
        crops = batch["crops"].to(run.device)
        found = read(run.model, crops.flatten(0, 1)).view(crops.shape[:2])
        found = found**run.model.config.find_power  # the find term's targets
        parts["proxy"].append(batch["proxy"])
        parts["cells"].append(batch["cells"])
        parts["found"].append(found.half().cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


@dataclass
class DistilConfig:
    """The stage's own settings (its flags; the others are ``TrainConfig``'s)."""

    candidates: int = setting(256, "cells read per canvas")
    target_side: float = setting(45.0, "the side of the reader's crops, in pixels of the canvas")

    def __post_init__(self):
        if self.candidates < 1:
            raise ValueError(f"candidates={self.candidates!r} must be >= 1")


def target_batches(targets: dict[str, torch.Tensor], batch_size: int, seed: int, steps: int):
    """``batches(epoch)`` for the loop: ``steps`` batches of the targets in a seeded order
    (``seed * 1000 + epoch``), the last partial batch left out: {"proxy" (B, p, p) float in
    [0, 1], "cells" (B, K), "found" (B, K)}."""

    def batches(epoch: int):
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(targets["proxy"]), generator=gen)
        for j in range(steps):
            idx = order[j * batch_size : (j + 1) * batch_size]
            yield {
                "proxy": targets["proxy"][idx].float() / 255,
                "cells": targets["cells"][idx],
                "found": targets["found"][idx],
            }

    return batches


def distil(
    cfg,
    candidates: int = 256,
    target_side: float = 45.0,
    command: str | None = None,
    resume: bool = False,
    callback=None,
) -> dict:
    """Run the stage (``cfg``: a ``TrainConfig``; ``candidates``, ``target_side``: a
    ``DistilConfig``'s) through the training loop: ``FindTerm`` over the targets, on the
    proxy encoder and the posterior; returns its figures. ``callback`` as ``fit``'s."""
    stage = DistilConfig(candidates, target_side)
    run = setup(cfg, callback, command, resume, parameters=where_parameters, drop_last=True)
    if run.distributed:
        raise ValueError("distil runs in one process (its step is outside DDP): not torchrun")
    if len(run.train_set) < cfg.batch_size:
        raise ValueError(
            f"train_length={len(run.train_set)} must be >= batch_size={cfg.batch_size} (an "
            "epoch leaves out its last partial batch)"
        )
    if resume:
        resume_run(run)
    model, device = run.model, run.device
    canvases = held_out(run.val_set, cfg.val_n, model.config.where_grid)
    if resume:
        before = checkpoint.read_meta(cfg.out)["distil"]["ranking_before"]
    else:
        before = ranking(model, canvases, device)
    # a resumed run's RNG is where the saved epoch left it: the targets draw nothing from it
    with torch.random.fork_rng(devices=[], enabled=resume):
        targets = compute_targets(
            run, ReaderCrops(run.train_set, model, stage.candidates, stage.target_side)
        )
    steps_per_epoch = len(targets["proxy"]) // cfg.batch_size
    run.loop.objective = FindTerm(model)
    run.loop.batches = target_batches(targets, cfg.batch_size, cfg.seed, steps_per_epoch)

    def figures(run, done: dict) -> dict:
        return {
            "distil_loss": round(done["terms"]["loss"], 5),
            "ranking": ranking(model, canvases, device),
        }

    def extra(last: bool) -> dict:
        return {"distil": asdict(stage) | {"ranking_before": before}, "finished": last}

    run_epochs(run, figures, extra)
    return {"out": cfg.out, "ranking_before": before, **run.history[-1]}


def main(argv: list[str] | None = None) -> None:
    own = argparse.ArgumentParser(
        prog="python -m saccade.train.distil",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__ + "\nEvery other flag: python -m saccade.train --help.",
    )
    add_flags(own, DistilConfig, fields(DistilConfig))
    args = sys.argv[1:] if argv is None else argv
    mine, rest = own.parse_known_args(args)
    try:
        stage = DistilConfig(**vars(mine))
    except ValueError as e:
        own.error(str(e))
    cfg, resume = parse_args(rest)
    if cfg.model != "vs" or not cfg.model_args.get("pooling") == "evidence":
        own.error("distil needs --model vs with --pooling evidence (a reader that says 'no digit')")
    torch.set_num_threads(compute_threads(cfg.workers))
    command = "python -m saccade.train.distil " + shlex.join(args)
    try:
        result = distil(cfg, stage.candidates, stage.target_side, command, resume)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
