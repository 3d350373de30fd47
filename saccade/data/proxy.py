"""The proxy: the cheap low-resolution view the model plans on."""

from __future__ import annotations

import cv2
import numpy as np

from ..glimpse import halve


def check_noise(proxy_noise: float) -> float:
    """Validate a proxy-noise level (std as a fraction of the intensity range)."""
    noise = float(proxy_noise)
    if not np.isfinite(noise) or not 0.0 <= noise <= 1.0:
        raise ValueError(f"proxy_noise={proxy_noise!r} must be a number in [0, 1]")
    return noise


def make_proxy(
    image: np.ndarray,
    size: int,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Area-downsample a full-resolution image to its proxy.

    Args:
        image: (H, W) uint8 grayscale or (H, W, C) uint8 colour full-resolution image
            (channels last, as decoded).
        size: side of the square proxy in pixels.
        noise: std of additive Gaussian noise as a fraction of the intensity range [0, 1];
            the result is clipped to [0, 1].
        rng: generator for the noise (a fresh unseeded one when None).

    Returns:
        (size, size) float32 in [0, 1] for a grayscale image; (C, size, size) for a colour
        one: channels first, as the model's convolutions take it (a batch is (B, C, p, p)).
    """
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError(
            f"image must be an (H, W) or (H, W, C) uint8 array, got {image.shape} {image.dtype}"
        )
    if int(size) < 1:
        raise ValueError(f"proxy size={size!r} must be a positive integer")
    noise = check_noise(noise)
    size = int(size)
    # INTER_AREA averages whole pixel blocks: the anti-aliased view a cheap sensor would give.
    # From far above the proxy's side, first halve (2x2 means, OpenCV's fast path) while the
    # image is at least 16 proxies wide and its sides are even: faster, the same proxy to
    # 2/255 (why 16: docs/results.md#the-proxy-by-halving).
    image = np.ascontiguousarray(image)
    colour = image.ndim == 3
    h, w = image.shape[:2]
    while min(h, w) >= 16 * size and h % 2 == 0 and w % 2 == 0:
        image = halve(image)
        h, w = h // 2, w // 2
    proxy = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    proxy = proxy.astype(np.float32) / 255.0
    if colour:  # (p, p, C) -> (C, p, p); cv2 drops a trailing axis of 1
        proxy = np.ascontiguousarray(proxy.reshape(size, size, -1).transpose(2, 0, 1))
    return add_noise(proxy, noise, rng)


def add_noise(
    proxy: np.ndarray, noise: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A clean proxy plus Gaussian noise of std ``noise``, clipped to [0, 1] (the proxy itself
    when ``noise`` is 0): ``make_proxy(image, p, noise, rng)`` is
    ``add_noise(make_proxy(image, p), noise, rng)``, draw for draw."""
    noise = check_noise(noise)
    if noise > 0:
        rng = rng if rng is not None else np.random.default_rng()
        proxy = proxy + rng.normal(0.0, noise, proxy.shape).astype(np.float32)
        proxy = np.clip(proxy, 0.0, 1.0)
    return proxy
