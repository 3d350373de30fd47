"""The looked-at rule: which ground-truth digits the crops looked at (``evaluate``'s
localisation, the app's green and red truth boxes and its coverage report all use it).

A digit counts as looked at when one crop box holds at least ``COVER_FRACTION`` (50%) of its
ground-truth box's area and resolves it: the box's longer side spans at least
``MIN_SAMPLES`` (12) of the crop's k samples across (crop boxes are squares of k x k
samples). Boxes are x0, y0, x1, y1 in full-resolution pixels.
"""

from __future__ import annotations

import numpy as np

#: a ground-truth digit counts as looked at when one crop box holds this much of its box's area
COVER_FRACTION = 0.5
#: ... and that crop resolves it: the digit box's longer side spans at least this many of the
#: crop's k samples (at 12, an MNIST digit is still legible; at Megapixel MNIST's 1500² a
#: 450-pixel crop squeezed to 32² turns a digit into a 1-2 sample blob, which must not count)
MIN_SAMPLES = 12


def box_coverage(truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction of each ground-truth box's area inside each crop box.

    Args:
        truth: (n, 4) ground-truth boxes.
        boxes: (T, 4) crop boxes.

    Returns:
        (n, T) float array in [0, 1].
    """
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix = np.minimum(truth[:, None, 2], boxes[None, :, 2]) - np.maximum(
        truth[:, None, 0], boxes[None, :, 0]
    )
    iy = np.minimum(truth[:, None, 3], boxes[None, :, 3]) - np.maximum(
        truth[:, None, 1], boxes[None, :, 1]
    )
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])
    return inter / np.maximum(area, 1e-9)[:, None]


def looked_at(
    truth: np.ndarray,
    boxes: np.ndarray,
    crop_size: int,
    fraction: float = COVER_FRACTION,
    min_samples: float = MIN_SAMPLES,
) -> np.ndarray:
    """Which crops looked at which ground-truth digits: the rule itself.

    Crop t looked at digit i when it holds at least ``fraction`` of the digit box's area and
    resolves the digit: the box's longer side spans at least ``min_samples`` of the crop's
    ``crop_size`` samples across.

    Args:
        truth: (n, 4) ground-truth boxes x0, y0, x1, y1.
        boxes: (T, 4) crop boxes, same pixels.
        crop_size: k, the samples across a crop.

    Returns:
        (n, T) bool.
    """
    if int(crop_size) < 1:
        raise ValueError(f"crop_size={crop_size!r} must be a positive integer")
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    extent = np.maximum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1])  # (n,)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])  # (T,)
    samples = extent[:, None] / np.maximum(side, 1e-9)[None] * int(crop_size)
    return (box_coverage(truth, boxes) >= fraction) & (samples >= min_samples)


def covered_after(
    truth: np.ndarray, boxes: np.ndarray, crop_size: int, fraction: float = COVER_FRACTION
) -> np.ndarray:
    """Which digits the crops have looked at so far, after each crop (``evaluate``'s
    localisation after 1..T saccades).

    Args:
        truth: (n, 4) ground-truth boxes x0, y0, x1, y1 (pixels).
        boxes: (T, 4) crop boxes (same pixels), in saccade order.
        crop_size: k, the samples across a crop.
        fraction: the share of a digit box's area that must lie inside one crop.

    Returns:
        (T, n) bool: [t, i] is True when one of crops 0..t looked at digit i.
    """
    inside = looked_at(truth, boxes, crop_size, fraction).T  # (T, n): this crop alone
    return np.logical_or.accumulate(inside, axis=0)


def covered(
    truth: np.ndarray, boxes: np.ndarray, crop_size: int, fraction: float = COVER_FRACTION
) -> np.ndarray:
    """(n,) bool: digit i was looked at by some crop (the app's green / red truth boxes)."""
    return looked_at(truth, boxes, crop_size, fraction).any(axis=1)
