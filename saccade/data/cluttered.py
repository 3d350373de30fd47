"""Cluttered MNIST: the paper's 2-MNIST (tasks ``sum`` and ``id``) and RAM's one-digit task.

Digits sit at native 28 px, without overlapping each other, on a black canvas (100x100 by
default) strewn with 8x8 fragments cut from other random digits of the same split.
"""

from __future__ import annotations

import itertools

import numpy as np

from .base import GeneratedDataset, Rendered
from .placement import ink_box, paste_max, place

#: the 55 unordered pairs of the ``id`` task, in class order
PAIRS = list(itertools.combinations_with_replacement(range(10), 2))


class Cluttered(GeneratedDataset):
    name = "cluttered"
    tasks = {"single": 10, "sum": 19, "id": 55}

    def __init__(
        self,
        task: str = "sum",
        split: str = "train",
        size: int = 100,
        seed: int = 0,
        proxy_size: int = 32,
        proxy_noise: float = 0.0,
        full_size: int | None = None,
        length: int | None = None,
        n_clutter: int = 8,
        clutter_size: int = 8,
    ):
        n_digits = 1 if task == "single" else 2
        # Any first digit must leave room for the second: 28 px on one side of it.
        min_size = 28 if n_digits == 1 else 84
        if int(size) < min_size or int(size) > 4096:
            raise ValueError(
                f"size={size!r}: cluttered/{task} needs a canvas side between {min_size} and "
                "4096 pixels (digits are 28 px; use full_size to upsample)"
            )
        if int(n_clutter) < 0:
            raise ValueError(f"n_clutter={n_clutter!r} must be >= 0")
        if not 1 <= int(clutter_size) <= 28:
            raise ValueError(f"clutter_size={clutter_size!r} must be between 1 and 28")
        super().__init__(task, split, size, seed, proxy_size, proxy_noise, full_size, length)
        self.n_digits = n_digits
        self.n_clutter = int(n_clutter)
        self.clutter_size = int(clutter_size)

    @property
    def class_names(self) -> list[str]:
        if self.task == "id":
            return [f"{a} & {b}" for a, b in PAIRS]
        return super().class_names

    def render(self, rng: np.random.Generator) -> Rendered:
        n = len(self.images)
        canvas = np.zeros((self.size, self.size), np.uint8)
        k = self.clutter_size
        for _ in range(self.n_clutter):
            src = self.images[rng.integers(n)]
            fy, fx = rng.integers(0, 28 - k + 1, size=2)
            y, x = rng.integers(0, self.size - k + 1, size=2)
            paste_max(canvas, src[fy : fy + k, fx : fx + k], int(x), int(y))
        ids = rng.integers(0, n, size=self.n_digits)
        taken: list[tuple[int, int, int, int]] = []
        boxes = []
        for i in ids:
            box = place(rng, self.size, 28, taken, tries=1000)
            if box is None:  # pragma: no cover - sizes are validated to make this vanishing
                raise ValueError(f"size={self.size}: could not place {self.n_digits} digits")
            taken.append(box)
            paste_max(canvas, self.images[i], box[0], box[1])
            boxes.append(ink_box(self.images[i], box[0], box[1]))
        digits = self.labels[ids]
        if self.task == "single":
            label = int(digits[0])
        elif self.task == "sum":
            label = int(digits.sum())
        else:
            label = PAIRS.index(tuple(sorted(int(d) for d in digits)))
        return Rendered(canvas, label, np.array(boxes, np.float32), digits, ids.astype(np.int64))
