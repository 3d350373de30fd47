"""Crops for a Megapixel MNIST reader: one digit, or no digit, among the noise strokes.

A model's crop on a Megapixel MNIST canvas holds a whole digit, part of one, a noise pattern
or nothing. ``python -m saccade.train.pretrain --kind megapixel`` trains the crop encoder and the
classifier's per-crop head (``Classifier`` in "evidence" pooling) on crops made here, with 11
outcomes: the 10 digits and "no digit". Each crop is cut the way the model cuts one: a
window of 30-52 canvas pixels (the preset's crop scales at 1500²) resampled to k×k by
``saccade.glimpse`` from a small patch drawn like a piece of a canvas (``Megapixel.render``'s
digits, ``noise_pattern``'s strokes, max-blended, noise never over a digit).

The label is soft: a digit whose ink box lies at least 70% inside the window is that digit,
one at most 35% inside is "no digit", and between the two the weight moves linearly. A crop
that holds part of a digit thus counts little, so that two crops beside one digit do not
count it twice. Only MNIST digits of the given split and the generator's noise strokes are
used: no canvas, no ground-truth box of any task.
"""

from __future__ import annotations

import numpy as np
import torch

from ..glimpse import glimpse
from ..looked_at import box_coverage
from .megapixel import noise_pattern
from .placement import ink_box, overlaps, paste_max

#: side of the patch a crop is cut from (room for a 52 px window and digits half outside it)
PATCH = 160
#: the "no digit" outcome's index: after the 10 digits
NONE = 10
#: a digit this much inside the window is read as itself; this little inside, as no digit
FULL, EMPTY = 0.7, 0.35


def megapixel_crops(
    digits: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    crop_size: int = 32,
    min_window: float = 30.0,
    max_window: float = 52.0,
    digit_fraction: float = 0.5,
    noise_rate: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops and their soft 11-way targets.

    Args:
        digits: (B, 28, 28) uint8 MNIST digits, one offered per crop.
        labels: (B,) their classes.
        rng: draws everything (the same seed gives the same crops).
        crop_size: k.
        min_window, max_window: the window's side in canvas pixels (more large than small).
        digit_fraction: the share of crops with the digit near the window (else none).
        noise_rate: mean number of noise patterns anywhere on a patch, besides one near the
            window's centre in half of the crops.

    Returns:
        crops (B, k, k) float in [0, 1] and targets (B, 11) (rows sum to 1; column 10 is
        "no digit").
    """
    B = len(digits)
    patches = np.zeros((B, PATCH, PATCH), np.uint8)
    targets = np.zeros((B, NONE + 1), np.float32)
    window = min_window + (max_window - min_window) * np.sqrt(rng.random(B))
    centre = PATCH / 2
    for b in range(B):
        lo, hi = centre - window[b] / 2, centre + window[b] / 2
        taken: list[tuple[int, int, int, int]] = []
        weight = 0.0
        if rng.random() < digit_fraction:
            reach = window[b] / 2 + 6
            cx, cy = centre + rng.uniform(-reach, reach, 2)
            x, y = int(round(cx - 14)), int(round(cy - 14))
            paste_max(patches[b], digits[b], x, y)
            taken.append((x, y, x + 28, y + 28))
            frac = float(box_coverage(ink_box(digits[b], x, y), (lo, lo, hi, hi))[0, 0])
            weight = float(np.clip((frac - EMPTY) / (FULL - EMPTY), 0.0, 1.0))
        targets[b, int(labels[b])] += weight
        targets[b, NONE] += 1.0 - weight
        n_noise = int(rng.poisson(noise_rate))
        near = rng.random() < 0.5
        for i in range(n_noise + int(near)):
            for _ in range(20):  # like the generator: noise never covers a digit
                if near and i == 0:
                    x, y = (
                        int(v) for v in centre - 14 + rng.uniform(-window[b] / 2, window[b] / 2, 2)
                    )
                else:
                    x, y = (int(v) for v in rng.integers(0, PATCH - 28, 2))
                if not overlaps((x, y, x + 28, y + 28), taken):
                    paste_max(patches[b], noise_pattern(rng), x, y)
                    break
    z = torch.zeros(B, 3)
    z[:, 0] = torch.from_numpy(2 * (window - min_window) / max(max_window - min_window, 1e-9) - 1)
    crops = glimpse(torch.from_numpy(patches), z, crop_size, min_window / PATCH, max_window / PATCH)
    return crops, torch.from_numpy(targets)
