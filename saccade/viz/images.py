"""Image helpers for the browser: downscale a huge image for a figure's background, enlarge a
small one so its pixels stay crisp, a colour model's channels last, a PNG data URI."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from .. import image_io

#: the longest side, in pixels, of an image sent to the browser as a figure background
BACKGROUND_SIDE = 512


def downscale(image: np.ndarray, max_side: int = BACKGROUND_SIDE) -> np.ndarray:
    """``image_io.downscale`` to the browser background's size by default."""
    return image_io.downscale(image, max_side)


def enlarge(image: np.ndarray, min_side: int = 128) -> np.ndarray:
    """Nearest-neighbour upsampling of a small image by an integer factor so its shorter side
    reaches ``min_side`` (pixels stay visible as pixels in a browser). Floats in [0, 1] become
    uint8."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    f = max(1, int(np.ceil(min_side / max(1, min(a.shape[:2])))))
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1) if f > 1 else a


def channels_last(image: np.ndarray) -> np.ndarray:
    """A colour model's (C, p, p) proxy or (C, k, k) crop as (p, p, C) for display; gray
    (p, p) and (H, W, C) images as they are."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[2] not in (3, 4):
        return a.transpose(1, 2, 0)
    return a


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 (h, w) gray, (h, w, 3) RGB or (h, w, 4) RGBA image as a
    ``data:image/png;base64,...`` URI (lossless)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]  # OpenCV encodes BGR
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]  # and BGRA
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
