"""Megapixel MNIST (after Katharopoulos & Fleuret, 2019): where-to-look at scale.

Five digits at native 28 px on a large canvas (1500x1500 by default): three of the target
class and two of other classes, plus 50 noise patterns of thick random line strokes. The task
``majority`` asks for the target class. Downsampling to the proxy erases the digits.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import GeneratedDataset, Rendered
from .placement import ink_box, paste_max, place

#: noise patterns on a canvas (at the default 1500²)
N_NOISE = 50


def noise_pattern(rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """A (side, side) uint8 patch of 1-3 thick random strokes, intensity 0.8-1 of full range."""
    patch = np.zeros((side, side), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        p0 = tuple(int(v) for v in rng.integers(0, side, 2))
        p1 = tuple(int(v) for v in rng.integers(0, side, 2))
        value = int(round(255 * rng.uniform(0.8, 1.0)))
        cv2.line(patch, p0, p1, value, thickness=int(rng.integers(2, 5)), lineType=cv2.LINE_AA)
    return patch


class Megapixel(GeneratedDataset):
    name = "megapixel"
    tasks = {"majority": 10}

    def __init__(
        self,
        task: str = "majority",
        split: str = "train",
        size: int = 1500,
        seed: int = 0,
        proxy_size: int | None = None,
        proxy_noise: float = 0.0,
        full_size: int | None = None,
        length: int | None = None,
        n_noise: int = N_NOISE,
    ):
        if int(size) < 128 or int(size) > 16384:
            raise ValueError(
                f"size={size!r}: megapixel needs a canvas side between 128 and 16384 pixels"
            )
        if int(n_noise) < 0:
            raise ValueError(f"n_noise={n_noise!r} must be >= 0")
        if proxy_size is None:
            proxy_size = max(4, round(0.12 * int(size)))
        super().__init__(task, split, size, seed, proxy_size, proxy_noise, full_size, length)
        self.n_noise = int(n_noise)
        # Indices of the digits of each class, to draw 3 of the target and 2 of others.
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(10)]

    def render(self, rng: np.random.Generator) -> Rendered:
        canvas = np.zeros((self.size, self.size), np.uint8)
        target = int(rng.integers(10))
        others = rng.choice([c for c in range(10) if c != target], size=2, replace=True)
        classes = [target] * 3 + [int(c) for c in others]
        ids = np.array([rng.choice(self.by_class[c]) for c in classes], np.int64)
        taken: list[tuple[int, int, int, int]] = []
        boxes = []
        for i in ids:
            box = place(rng, self.size, 28, taken, tries=1000)
            if box is None:  # pragma: no cover - the minimum size makes this vanishing
                raise ValueError(f"size={self.size}: could not place 5 digits")
            taken.append(box)
            paste_max(canvas, self.images[i], box[0], box[1])
            boxes.append(ink_box(self.images[i], box[0], box[1]))
        digit_boxes = list(taken)
        for _ in range(self.n_noise):
            box = place(rng, self.size, 28, digit_boxes, tries=20)
            if box is not None:  # noise never covers a digit; on a crowded canvas some are skipped
                paste_max(canvas, noise_pattern(rng), box[0], box[1])
        return Rendered(
            canvas, target, np.array(boxes, np.float32), self.labels[ids], ids.astype(np.int64)
        )
