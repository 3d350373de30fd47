"""The tissue mask of a slide: where on its thumbnail (or proxy) there is tissue, not glass.

As pathology pipelines start (CLAM's ``segment_tissue``, TIAToolbox's ``OtsuTissueMasker``):

- **colour** (RGB): Otsu's threshold on the HSV saturation of the median-blurred thumbnail
  (stain is saturated, glass and its shadows are not), at least ``MIN_LEVEL`` (CLAM's
  ``sthresh``: a blank slide's few levels of noise are no tissue);
- **gray** (or an RGB image with no saturation to speak of): Otsu's threshold on the
  difference from the background (``Slide.background``, else the median of the border):
  darkness on bright glass, brightness on black.

Then a morphological closing fills the small holes of the tissue. OpenCV does the work
(``cv2.threshold(..., cv2.THRESH_OTSU)``). The mask is a picture of the slide, to be shown
(the app's overlay) or fed to the where-network as one more input (``cell_fraction``: the
tissue share of each proxy cell), never a rule that overrides where the model looks.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..image_io import gray_or_rgb
from .slide_meta import border_median

#: the least saturation (or difference from the background) that is tissue, 0..255
MIN_LEVEL = 8
#: the median blur before the threshold, pixels (odd; CLAM's mthresh)
BLUR = 7
#: the closing after it, pixels (CLAM's close)
CLOSE = 4
#: the overlay's tint and its opacity
TINT = (0, 200, 90)
ALPHA = 0.45


def _otsu(values: np.ndarray) -> np.ndarray:
    """(h, w) uint8 -> bool: above Otsu's threshold and at least MIN_LEVEL."""
    threshold, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return values > max(threshold, MIN_LEVEL - 1)


def tissue_mask(image: np.ndarray, background: tuple[int, ...] | None = None) -> np.ndarray:
    """Where ``image`` holds tissue.

    Args:
        image: (h, w) gray or (h, w, 3) RGB uint8: a slide's thumbnail or proxy.
        background: the slide's background (``Slide.background``: 1 or 3 values) for the
            gray rule; default the median of the image's border.

    Returns:
        (h, w) bool, True on tissue: Otsu on the saturation for a colour image, on the
        difference from the background for a gray one (module docstring).
    """
    image = gray_or_rgb(image)
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} is too small for a mask")
    blur = min(BLUR, (min(image.shape[:2]) // 2) * 2 - 1)
    smooth = cv2.medianBlur(np.ascontiguousarray(image), blur) if blur >= 3 else image
    mask = None
    if smooth.ndim == 3:
        saturation = cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV)[:, :, 1]
        if int(saturation.max()) >= MIN_LEVEL:
            mask = _otsu(saturation)
        gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    else:
        gray = smooth
    if mask is None:  # gray, or colour without stain: how far from the background
        if background is None:
            background = border_median(gray)
        level = float(np.mean(background))
        difference = np.abs(gray.astype(np.int16) - round(level)).astype(np.uint8)
        mask = _otsu(difference)
    if CLOSE > 1 and min(mask.shape) > 2 * CLOSE:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSE, CLOSE))
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    return mask


def cell_fraction(mask: np.ndarray, grid: int) -> np.ndarray:
    """The tissue share of each of ``grid`` x ``grid`` cells of a square mask: (h, w) bool
    -> (grid, grid) float32 in [0, 1] (an area average)."""
    cells = cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    return np.clip(cells, 0.0, 1.0)


def proxy_cells(proxy: torch.Tensor, grid: int) -> torch.Tensor:
    """The tissue share of each proxy cell, per image: proxies (B, p, p) or (B, C, p, p)
    float in [0, 1] -> (B, g, g) float in [0, 1] (``tissue_mask`` of each proxy, its
    background the median of its border; ``cell_fraction``), on the proxies' device and dtype.
    A saliency of the where-network that a bright background does not draw to the glass."""
    images = (proxy.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    if images.ndim == 4:  # (B, C, p, p) -> (B, p, p, C): RGB, or the first channel
        images = images.transpose(0, 2, 3, 1)
        images = images if images.shape[3] == 3 else images[..., 0]
    cells = np.stack([cell_fraction(tissue_mask(im), grid) for im in images])
    return torch.from_numpy(cells).to(device=proxy.device, dtype=proxy.dtype)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` ((h, w) or (h, w, 3) uint8) as RGB with ``mask``'s tissue tinted (TINT at
    ALPHA) and its outline drawn: what the app shows over a thumbnail."""
    rgb = np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image.copy()
    tint = np.array(TINT, np.float32)
    blended = rgb.astype(np.float32)
    blended[mask] = (1 - ALPHA) * blended[mask] + ALPHA * tint
    out = blended.round().astype(np.uint8)
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(out, contours, -1, TINT, max(1, max(mask.shape) // 400))
    return out


def slide_tissue(pyramid, max_side: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(thumbnail, mask) of a ``SlidePyramid``: its thumbnail of at most ``max_side`` pixels a
    side (in the pyramid's channels and inversion) and ``tissue_mask`` of it, with the
    slide's background (inverted with the pyramid)."""
    thumbnail = pyramid.thumbnail(max_side)
    background = pyramid.slide.background
    if thumbnail.ndim == 2 and len(background) == 3:
        background = (round(0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]),)
    if pyramid.invert:
        background = tuple(255 - v for v in background)
    return thumbnail, tissue_mask(thumbnail, background)
