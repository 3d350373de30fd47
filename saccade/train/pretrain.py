"""``python -m saccade.train.pretrain``: pre-train a digit reader, the crop encoder f_t, on plain MNIST.

Two kinds (``--kind``): "mnist", the crop encoder with a linear 10-way head, for the cluttered
tasks (below); "megapixel", the crop encoder with the classifier's per-crop head of 11
outcomes (10 digits and "no digit"; "evidence" pooling, ``saccade.models.classifier``),
trained on crops of one digit or none among Megapixel MNIST's noise strokes
(``saccade.data.megapixel_crops``; soft labels for a digit partly inside the window).

The VS model's crop encoder learns to read digits only through the classification loss of a
few crops per canvas, so after a few epochs it reads a digit that a crop holds at 96–97%
(``evaluate --policy oracle``; docs/results.md). This module trains the same network
(``vs.crop_encoder_net``) with a linear 10-way head on crops of the MNIST *training* digits,
made the way the model's crops look: a k×k bilinear resampling of a window of ``window``
pixels around the digit, shifted, with 8×8 fragments of other training digits as clutter.
No test digit and no task's ground-truth box is used. ``train --reader PATH`` then copies
the crop encoder into a model before training (its JSON records it).

    python -m saccade.train.pretrain --out checkpoints/readers/mnist --epochs 10

Writes ``OUT.safetensors`` (the crop encoder's weights, keys as in the model's
``crop_encoder.``) and ``OUT.json`` (the command, the settings and the accuracy on crops of
the 10,000 MNIST test digits).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..data.megapixel_crops import megapixel_crops
from ..data.mnist import load_mnist
from ..models.classifier import Classifier
from ..models.vs import crop_encoder_net
from .loop import Loop, make_steps, train_one_epoch
from .objectives import ReaderLoss
from .readers import save


@dataclass
class ReaderConfig:
    """How the reader is built and trained; saved in its JSON."""

    kind: str = "mnist"  # "mnist" (10-way, cluttered) or "megapixel" (10 digits + no digit)
    crop_size: int = 32  # k, as the model's
    crop_width: int = 16  # channels of the first layer, as the model's
    crop_encoder: str = "lenet-pool"  # the layer order, as the model's (vs.crop_encoder_net)
    features: int = 256  # f_t's size, as the model's
    min_window: float = 15.0  # window side in canvas pixels (a 100² canvas: 0.15 .. 0.3)
    max_window: float = 32.0
    max_shift: float = 6.0  # the window's centre off the digit's centre, pixels
    clutter: int = 3  # 8×8 fragments of other digits around each digit (0 .. clutter)
    epochs: int = 4
    train_n: int = 60000  # the first this many MNIST training digits
    test_n: int = 10000  # the first this many MNIST test digits, for the accuracy
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    digit_fraction: float = 0.5  # megapixel: the share of crops offered a digit
    noise_rate: float = 1.5  # megapixel: mean noise patterns per patch (besides a centred one)
    rotation: float = 0.0  # mnist, training only: rotate the window by up to ± this many degrees
    stretch: float = 0.0  # mnist, training only: scale each axis by up to 1 ± this (affine)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}; accepted: {list(KINDS)}")


KINDS = ("mnist", "megapixel")


def training_crops(
    digits: np.ndarray, labels: np.ndarray, generator: torch.Generator, cfg: ReaderConfig, pool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops (B, k, k) of ``digits`` and their targets: classes (B,) ("mnist") or soft
    11-way distributions (B, 11) ("megapixel"), drawn from ``generator``."""
    if cfg.kind == "mnist":
        return digit_crops(digits, generator, cfg, pool), torch.from_numpy(labels).long()
    seed = int(torch.randint(2**62, (), generator=generator))
    return megapixel_crops(
        digits,
        labels,
        np.random.default_rng(seed),
        cfg.crop_size,
        cfg.min_window,
        cfg.max_window,
        cfg.digit_fraction,
        cfg.noise_rate,
    )


def digit_crops(
    digits: np.ndarray, generator: torch.Generator, cfg: ReaderConfig, pool: np.ndarray
) -> torch.Tensor:
    """Crops of digits (B, 28, 28) uint8 -> (B, k, k) float in [0, 1].

    Each digit sits at the centre of a 64² black canvas with up to ``cfg.clutter`` 8×8
    fragments of digits from ``pool`` (N, 28, 28) pasted around it (max-blended, like the
    cluttered generator), then a window of random side and shift is resampled to k×k."""
    B = len(digits)
    side = 64
    canvas = torch.zeros(B, side, side)
    canvas[:, 18:46, 18:46] = torch.from_numpy(np.array(digits, np.float32)) / 255
    n_frag = torch.randint(0, cfg.clutter + 1, (B,), generator=generator)
    for b in range(B):
        for _ in range(int(n_frag[b])):
            src = pool[int(torch.randint(len(pool), (), generator=generator))]
            fy, fx, y, x = (int(v) for v in torch.randint(0, 21, (4,), generator=generator))
            y, x = int(y * (side - 8) / 20), int(x * (side - 8) / 20)
            patch = torch.from_numpy(np.array(src[fy : fy + 8, fx : fx + 8], np.float32)) / 255
            canvas[b, y : y + 8, x : x + 8] = torch.maximum(canvas[b, y : y + 8, x : x + 8], patch)
    u = torch.rand(B, 3, generator=generator)
    window = cfg.min_window + (cfg.max_window - cfg.min_window) * u[:, 0].sqrt()  # more large
    shift = (u[:, 1:] * 2 - 1) * cfg.max_shift
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = window / side
    theta[:, :, 2] = shift / (side / 2)
    if cfg.rotation or cfg.stretch:  # affine augmentation: a rotated, stretched window
        a = torch.rand(B, 3, generator=generator) * 2 - 1
        angle = a[:, 0] * math.radians(cfg.rotation)
        sx, sy = (
            (1 + a[:, 1] * cfg.stretch) * window / side,
            (1 + a[:, 2] * cfg.stretch) * window / side,
        )
        theta[:, 0, 0], theta[:, 0, 1] = sx * angle.cos(), -sy * angle.sin()
        theta[:, 1, 0], theta[:, 1, 1] = sx * angle.sin(), sy * angle.cos()
    grid = F.affine_grid(theta, (B, 1, cfg.crop_size, cfg.crop_size), align_corners=False)
    return F.grid_sample(canvas[:, None], grid, align_corners=False)[:, 0]


class Reader(nn.Module):
    """The crop encoder with a head: (B, k, k) -> (B, 10) logits ("mnist": a linear head) or
    (B, 11) ("megapixel": the classifier's per-crop head, the last outcome "no digit")."""

    def __init__(self, cfg: ReaderConfig):
        super().__init__()
        self.crop_encoder = nn.Module()
        self.crop_encoder.net = crop_encoder_net(
            cfg.features, cfg.crop_width, 1, cfg.crop_encoder
        ).to(memory_format=torch.channels_last)
        if cfg.kind == "mnist":
            self.head = nn.Linear(cfg.features, 10)
        else:
            self.classifier = Classifier(cfg.features, 10, "evidence")

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        f = self.crop_encoder.net(crops[:, None])
        if hasattr(self, "classifier"):
            return self.classifier.crop_logits(f)
        return self.head(f)


def accuracy(model: Reader, images: np.ndarray, labels: np.ndarray, cfg: ReaderConfig) -> float:
    """Accuracy on crops of ``images`` (N, 28, 28), drawn with a fixed seed; "megapixel":
    over the crops whose label is not mixed (a whole digit, or no digit), "no digit"
    counting as an outcome."""
    model.eval()
    cfg = replace(cfg, rotation=0.0, stretch=0.0)  # crops as the model cuts them
    gen = torch.Generator().manual_seed(12345)
    right = counted = 0
    with torch.no_grad():
        for i in range(0, len(images), 500):
            crops, target = training_crops(
                images[i : i + 500], labels[i : i + 500], gen, cfg, images
            )
            guess = model(crops).argmax(-1)
            if target.ndim == 2:
                clear = target.amax(-1) > 0.999
                guess, target = guess[clear], target[clear].argmax(-1)
            right += int((guess == target).sum())
            counted += len(target)
    model.train()
    return right / max(1, counted)


def train_reader(cfg: ReaderConfig, quiet: bool = False) -> tuple[Reader, dict]:
    """Train a reader on the MNIST training digits through the training loop
    (``saccade.train.loop``, objective ``objectives.ReaderLoss``); returns it and its
    metrics. Its own optimiser: fused AdamW (a reader is never resumed) with a one-cycle
    schedule, no clip, no proxy."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_x, train_y = (a[: cfg.train_n] for a in load_mnist("train"))
    test_x, test_y = (a[: cfg.test_n] for a in load_mnist("test"))
    model = Reader(cfg)
    total = cfg.epochs * math.ceil(len(train_x) / cfg.batch_size)
    steps = make_steps(
        model.parameters(), cfg.lr, 1e-4, total, schedule="one-cycle", fused=True, clip=None
    )

    def batches(epoch: int):
        """Crops of the training digits in a fresh order, drawn from ``gen``."""
        order = torch.randperm(len(train_x), generator=gen).numpy()
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            crops, target = training_crops(train_x[idx], train_y[idx], gen, cfg, train_x)
            yield {"crops": crops, "target": target}  # classes, or soft targets

    loop = Loop(steps, ReaderLoss(model), batches, model, total, epochs=cfg.epochs, log_every=1)
    loop.quiet = quiet
    history = []
    for epoch in range(cfg.epochs):
        train_one_epoch(loop, epoch)
        acc = accuracy(model, test_x, test_y, cfg)
        history.append({"epoch": epoch + 1, "test_accuracy": acc})
        if not quiet:
            tqdm.write(f"epoch {epoch + 1}: accuracy on crops of the MNIST test digits {acc:.4f}")
    return model, {
        "history": history,
        "test_accuracy": history[-1]["test_accuracy"],
        "train_time_s": round(loop.elapsed, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m saccade.train.pretrain",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    defaults = ReaderConfig()
    for name, value in asdict(defaults).items():
        kw = {"choices": KINDS} if name == "kind" else {}
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, **kw)
    parser.add_argument("--out", required=True, help="write OUT.safetensors and OUT.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = vars(parser.parse_args(argv))
    out, threads = args.pop("out"), args.pop("threads")
    torch.set_num_threads(threads)
    cfg = ReaderConfig(**args)
    model, metrics = train_reader(cfg)
    command = "python -m saccade.train.pretrain " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    save(model, out, {"command": command, "config": asdict(cfg), **metrics})
    print(json.dumps({"out": str(out), **metrics}))


if __name__ == "__main__":
    main()
