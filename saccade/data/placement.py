"""Drawing helpers shared by the generators: non-overlapping placement and pasting."""

from __future__ import annotations

import numpy as np


def overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    """Whether box (x0, y0, x1, y1) intersects any of ``boxes`` (exclusive ends)."""
    x0, y0, x1, y1 = box
    return any(x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1 for bx0, by0, bx1, by1 in boxes)


def place(
    rng: np.random.Generator,
    canvas_side: int,
    patch_side: int,
    taken: list[tuple[int, int, int, int]],
    tries: int,
) -> tuple[int, int, int, int] | None:
    """A random patch box inside the canvas that avoids ``taken``, or None after ``tries``."""
    for _ in range(tries):
        x, y = (int(v) for v in rng.integers(0, canvas_side - patch_side + 1, size=2))
        box = (x, y, x + patch_side, y + patch_side)
        if not overlaps(box, taken):
            return box
    return None


def paste_max(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Paste ``patch`` at column x, row y by taking the brighter pixel (in place)."""
    h, w = patch.shape
    region = canvas[y : y + h, x : x + w]
    np.maximum(region, patch, out=region)


def ink_box(digit: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), exclusive ends, of a digit's nonzero pixels placed at (x, y)."""
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    if len(rows) == 0:  # an empty digit: fall back to its whole patch
        return x, y, x + digit.shape[1], y + digit.shape[0]
    return x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1
