"""Measures of a prediction against the truth the data knows: the ink blobs of an image
(``ink_blobs``: digits told from distractors by the boxes), the posterior's cells that hold
them (``blob_cells``), and the area under the ROC curve (``auroc``). ``saccade.evaluate.loop``
reports them, ``saccade.train.distil`` and the scripts measure with them; how much of a digit
the crops cover is ``saccade.looked_at``'s."""

from __future__ import annotations

import cv2
import numpy as np

#: an ink blob of at least this many pixels is a blob (smaller: specks of noise)
MIN_BLOB_PIXELS = 31
#: a blob whose centre lies within this many pixels of a digit box's centre is that digit
DIGIT_RADIUS = 14


def ink_blobs(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ink blobs of ``image``: centres (N, 2) as (x, y) pixels, and whether each is a
    digit (N,) bool. A blob is a connected component of non-zero pixels of at least
    ``MIN_BLOB_PIXELS``; it is a digit when its centre lies within ``DIGIT_RADIUS`` px of a
    box's centre (``boxes`` (D, 4) x0, y0, x1, y1), else a distractor (a noise stroke, a
    clutter fragment). Shared by ``blob_cells`` and ``scripts/proxy_blobs.py``."""
    ink = (image if image.ndim == 2 else image.max(-1)) > 0
    count, _, stats, centres = cv2.connectedComponentsWithStats(ink.astype(np.uint8))
    keep = stats[1:count, cv2.CC_STAT_AREA] >= MIN_BLOB_PIXELS
    centres = centres[1:count][keep]
    digits = (boxes[:, :2] + boxes[:, 2:]) / 2  # (D, 2)
    if len(digits) == 0:
        return centres, np.zeros(len(centres), bool)
    near = np.abs(centres[:, None] - digits[None]).max(-1) <= DIGIT_RADIUS  # (N, D)
    return centres, near.any(1)


def blob_cells(image: np.ndarray, boxes: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """The posterior's cells (of a g×g grid over the image) that hold a digit, and those that
    hold only a distractor: boolean masks (g, g) each.

    A digit's cell holds its box centre; a distractor's holds the centre of an ink blob that
    is not a digit (``ink_blobs``). The boxes are used to measure, never to train."""
    h, w = image.shape[:2]
    digit = np.zeros((grid, grid), bool)
    other = np.zeros((grid, grid), bool)

    def cell(x: float, y: float) -> tuple[int, int]:
        return min(grid - 1, int(y * grid / h)), min(grid - 1, int(x * grid / w))

    for x, y in (boxes[:, :2] + boxes[:, 2:]) / 2:
        digit[cell(x, y)] = True
    centres, is_digit = ink_blobs(image, boxes)
    for x, y in centres[~is_digit]:
        other[cell(x, y)] = True
    return digit, other & ~digit


def auroc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for telling ``positive`` (bool) from the rest:
    the probability that a random positive scores above a random negative, ties counting a
    half (the Mann-Whitney U statistic). None when either class is empty. Hand-written: the
    project has no scikit-learn, and this is five lines."""
    score, positive = np.asarray(score, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average ranks, 1-based
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
