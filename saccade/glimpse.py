"""The glimpse: a k x k crop of a full-resolution image at z = (s, x, y), in O(k^2).

Coordinates follow ``torch.nn.functional.affine_grid`` with ``align_corners=False``:
x, y in [-1, 1] is the crop centre (-1 is the left/top edge of the image, +1 the right/bottom
edge), and s in [-1, 1] maps to the crop side as a fraction of the image side, between
``min_scale`` and ``max_scale`` (the paper's maximum is 0.3): linearly, or with
``log_scale=True`` linearly in the side's logarithm, so that a step (or a σ) of s is the same
factor of zoom at every scale (a model that zooms over orders of magnitude: the zoom
benchmark, ``saccade.data.zoom``). s is clamped to [-1, 1]; x and y are not: parts of a
window outside the image read as zeros.

What the glimpse reads is an ``ImageSource``: an in-memory ``Pyramid``, a slide
(``saccade.data.slide_pyramid.SlidePyramid``) or a procedural canvas
(``saccade.data.zoom.ZoomCanvas``).

Why not ``grid_sample`` on the whole image: that costs O(H*W) per crop and needs the whole
image as a float tensor on the device. Instead each crop reads only the window of pixels its
k x k bilinear samples touch. When that window is much wider than k, the samples are taken
from a coarser level of an area-averaged pyramid (each level halves the side), so the crop
stays anti-aliased and the window stays about k..2k pixels wide whatever the image's size.
The crop is then ``grid_sample`` on that small window, so the gradient with respect to z is
the exact bilinear-interpolation gradient. Windows come from ``Pyramid.read_window``; a slide
on disk is cropped the same way through ``saccade.data.slide_pyramid.SlidePyramid``, whose
``read_window`` reads the window's tiles. As in trilinear mip-mapping, the crop blends the
two levels around the continuous level log2(spacing): without the blend a step in s that
crossed a level switch changed a crop of an upsampled digit by up to 0.11 (intensity in
[0, 1]) while the gradient with respect to s saw nothing of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_MIN_SCALE = 0.05
DEFAULT_MAX_SCALE = 0.3


def _as_uint8_image(image, name: str = "image") -> np.ndarray:
    """A uint8 numpy view of an (H, W) or (H, W, C) ``image`` (array, memmap or CPU tensor),
    without copying."""
    if isinstance(image, torch.Tensor):
        if image.device.type != "cpu":
            raise ValueError(f"{name} must stay on the CPU, got a tensor on {image.device}")
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array or torch tensor, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or min(image.shape) < 1 or image.ndim == 3 and image.shape[2] > 4:
        raise ValueError(
            f"{name} must have shape (H, W) or (H, W, C) with H, W >= 1 and C in 1..4, "
            f"got {image.shape}"
        )
    return image


def halve(level: np.ndarray, pad_odd: bool = True) -> np.ndarray:
    """(H, W[, C]) uint8 -> (ceil(H / 2), ceil(W / 2)[, C]): the area average of each 2x2 block,
    an odd side padded with a black row/column first (the pyramids of ``Pyramid`` and
    ``saccade.data.slide_pyramid``). ``pad_odd=False``: (max(H // 2, 1), max(W // 2, 1)), an odd
    side area-resized whole (a TIFF pyramid's sides, ``saccade.data.slide_writer``)."""
    h, w = level.shape[:2]
    if pad_odd and (h % 2 or w % 2):
        level = np.pad(level, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (level.ndim - 2))
        h, w = level.shape[:2]
    out = cv2.resize(
        np.ascontiguousarray(level), (max(w // 2, 1), max(h // 2, 1)), interpolation=cv2.INTER_AREA
    )
    return out.reshape(out.shape[:2] + level.shape[2:])  # cv2 drops a trailing axis of 1


def read_padded(
    image: np.ndarray, x0: int, y0: int, ww: int, wh: int, out: np.ndarray | None = None
) -> np.ndarray:
    """The (wh, ww[, C]) window of an (H, W[, C]) ``image`` whose top-left pixel is (x0, y0),
    zeros where it lies outside the image. ``out``: an array of that shape to fill instead
    (only its part inside the image is written: pass it zeroed)."""
    if out is None:
        out = np.zeros((wh, ww) + image.shape[2:], image.dtype)
    xs, xe = max(x0, 0), min(x0 + ww, image.shape[1])
    ys, ye = max(y0, 0), min(y0 + wh, image.shape[0])
    if xs < xe and ys < ye:
        out[ys - y0 : ye - y0, xs - x0 : xe - x0] = image[ys:ye, xs:xe]
    return out


@runtime_checkable
class ImageSource(Protocol):
    """What the glimpse reads: a square-or-not image of ``shape`` (H, W) level-0 pixels with
    levels 0..``max_level`` (level l has downsample 2**l), ``channels`` C (``gray``: windows
    are (h, w), else (h, w, C)), and ``read_window``. Implemented by ``Pyramid`` (in memory),
    ``SlidePyramid`` (a file read tile by tile) and ``ZoomCanvas`` (rendered on demand)."""

    shape: tuple[int, int]
    channels: int
    gray: bool
    max_level: int

    def read_window(
        self, index: int, x0: int, y0: int, ww: int, wh: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The (wh, ww[, C]) uint8 window at (x0, y0) of level ``index``, in that level's
        pixels, zeros outside the image (``out``: a zeroed array of that shape to fill)."""
        ...


class Pyramid:
    """An area-averaged image pyramid of one uint8 image; level l has side ~ H / 2**l.

    Grayscale images are (H, W), colour ones (H, W, C) (channels last, as decoded); every
    level keeps the image's layout. ``shape`` is (H, W) either way, ``channels`` is C (1 for
    an (H, W) image).

    Level 0 is the image itself, not copied (a memory-mapped ``.npy`` stays on disk and only
    the windows that crops read are paged in). Building the coarser levels reads the whole
    image once: O(H*W), a data cost like the proxy's. ``lazy=True`` defers each level until a
    crop first needs it.

    Args:
        image: (H, W) or (H, W, C) uint8 array, memmap or CPU tensor.
        lazy: build coarser levels on first use instead of now.
        min_side: stop halving once the longer side is at most this.
    """

    def __init__(self, image, lazy: bool = False, min_side: int = 16):
        image = _as_uint8_image(image)
        self.shape: tuple[int, int] = (int(image.shape[0]), int(image.shape[1]))
        self.channels: int = int(image.shape[2]) if image.ndim == 3 else 1
        self.gray: bool = image.ndim == 2
        self.levels: list[np.ndarray] = [image]
        self.max_level = max_level_of(self.shape, min_side)
        if not lazy:
            self.level(self.max_level)

    @classmethod
    def from_levels(
        cls, shape: tuple[int, int], levels: Sequence[np.ndarray | None], min_side: int = 16
    ) -> Pyramid:
        """A pyramid of an image of ``shape`` (H, W) from levels built elsewhere
        (``saccade.data.cache``: memory-mapped ``.npy`` files). ``levels[l]`` is level l, or
        None where not given (asking for it then raises, as after ``coarse``); the coarsest
        must be given. Each given level must have the shape ``halve`` makes (ValueError
        otherwise: a cache entry of the wrong shape is never trusted)."""
        levels = list(levels)
        known = [lv for lv in levels if lv is not None]
        if not known or levels[-1] is None:
            raise ValueError("from_levels needs the coarsest level")
        first = _as_uint8_image(known[0], "level")
        out = object.__new__(cls)
        out.shape = (int(shape[0]), int(shape[1]))
        out.channels = int(first.shape[2]) if first.ndim == 3 else 1
        out.gray = first.ndim == 2
        out.max_level = max_level_of(out.shape, min_side)
        if len(levels) != out.max_level + 1:
            raise ValueError(
                f"a {out.shape[1]}x{out.shape[0]} pyramid has {out.max_level + 1} levels, "
                f"got {len(levels)}"
            )
        expect = out.shape
        for i, lv in enumerate(levels):
            if lv is not None:
                lv = _as_uint8_image(lv, f"level {i}")
                want = expect + (() if out.gray else (out.channels,))
                if tuple(lv.shape) != want:
                    raise ValueError(f"level {i} has shape {tuple(lv.shape)}, expected {want}")
                levels[i] = lv
            expect = ((expect[0] + 1) // 2, (expect[1] + 1) // 2)
        out.levels = levels
        return out

    def level(self, index: int) -> np.ndarray:
        """The (H / 2**index, W / 2**index[, C]) uint8 level, building it if needed."""
        index = min(max(int(index), 0), self.max_level)
        while len(self.levels) <= index:
            self.levels.append(halve(self.levels[-1]))
        if self.levels[index] is None:
            first = next(i for i, lv in enumerate(self.levels) if lv is not None)
            raise ValueError(
                f"level {index} of this {self.shape[1]}x{self.shape[0]} pyramid was dropped "
                f"(it keeps levels {first}..{self.max_level}: see Pyramid.coarse)"
            )
        return self.levels[index]

    def read_window(
        self, index: int, x0: int, y0: int, ww: int, wh: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The (wh, ww) or (wh, ww, C) uint8 window at (x0, y0) of level ``index`` (in that
        level's pixels), zeros outside the image: what a crop reads. ``out``: a zeroed array
        of that shape to fill instead. ``saccade.data.slide_pyramid.SlidePyramid`` reads the
        same windows from a slide on disk."""
        return read_padded(self.level(index), x0, y0, ww, wh, out)

    def coarse(self, first: int) -> Pyramid:
        """A copy holding only levels ``first``.. (built now; finer ones dropped): what crops
        that never sample finer than level ``first`` need (``finest_level``). Level 3 of a
        2528² image and all coarser ones are 133 kB against the image's 6.4 MB, so a
        DataLoader worker sends this instead of the image. Memory-mapped levels (a
        ``from_levels`` pyramid of the cache) stay mapped, and are sent between processes
        as their file names (``__getstate__``): the receiver maps them again and reads
        only the windows its crops touch."""
        first = min(max(int(first), 0), self.max_level)
        self.level(self.max_level)
        out = object.__new__(Pyramid)
        out.shape, out.max_level = self.shape, self.max_level
        out.channels, out.gray = self.channels, self.gray
        out.levels = [None] * first + self.levels[first:]
        return out

    def __getstate__(self) -> dict:
        """Pickled (to or from a DataLoader worker), a level memory-mapped from a ``.npy``
        file travels as its file name and shape, not its pixels."""
        state = dict(self.__dict__)
        state["levels"] = [
            ("npy", str(lv.filename), tuple(lv.shape))
            if isinstance(lv, np.memmap) and getattr(lv, "filename", None)
            else lv
            for lv in self.levels
        ]
        return state

    def __setstate__(self, state: dict) -> None:
        levels = []
        for lv in state["levels"]:
            if isinstance(lv, tuple):
                _, filename, shape = lv
                lv = np.load(filename, mmap_mode="r", allow_pickle=False)
                if tuple(lv.shape) != shape:
                    raise ValueError(f"{filename} changed shape: {lv.shape}, expected {shape}")
            levels.append(lv)
        self.__dict__.update(state, levels=levels)

    @property
    def nbytes(self) -> int:
        """Bytes held by the levels built and kept."""
        return sum(lv.nbytes for lv in self.levels if lv is not None)

    def __repr__(self) -> str:
        kept = sum(lv is not None for lv in self.levels)
        return f"Pyramid(shape={self.shape}, levels={kept}/{self.max_level + 1})"


def max_level_of(shape: tuple[int, int], min_side: int = 16) -> int:
    """The coarsest level of a pyramid of an (H, W) image: halve until the longer side is at
    most ``min_side``."""
    return max(0, math.ceil(math.log2(max(shape) / min_side)))


def finest_level(side: int, min_scale: float, size: int) -> int:
    """The finest pyramid level a crop of ``size`` samples can read on an image of ``side``
    pixels when its side is at least ``min_scale`` of the image's: ``glimpse`` samples level
    floor(log2(spacing)) and the next, with spacing >= min_scale * side / size."""
    return int(math.floor(math.log2(max(min_scale * side / size, 1.0))))


def scale_to_fraction(
    s: torch.Tensor, min_scale: float, max_scale: float, log_scale: bool = False
) -> torch.Tensor:
    """Crop side as a fraction of the image side: s in [-1, 1] -> [min_scale, max_scale],
    linearly in the fraction, or (``log_scale``) in its logarithm:
    min_scale · (max_scale / min_scale) ** ((s + 1) / 2)."""
    u = (s.clamp(-1.0, 1.0) + 1.0) / 2.0
    if log_scale:
        return min_scale * torch.exp(u * math.log(max_scale / min_scale))
    return min_scale + (max_scale - min_scale) * u


def scales_of(config) -> dict:
    """A model config's crop-side range as this module's functions take it: {"min_scale",
    "max_scale", "log_scale"} (a config without ``scale_space``, or "linear": linear)."""
    return {
        "min_scale": float(config.min_scale),
        "max_scale": float(config.max_scale),
        "log_scale": getattr(config, "scale_space", "linear") == "log",
    }


def fraction_to_scale(
    frac: np.ndarray, min_scale: float, max_scale: float, log_scale: bool = False
) -> np.ndarray:
    """The inverse of ``scale_to_fraction`` on numbers: fractions -> s, clipped to [-1, 1]."""
    frac = np.asarray(frac, dtype=np.float64)
    if log_scale:
        u = np.log(np.maximum(frac, 1e-300) / min_scale) / math.log(max_scale / min_scale)
    else:
        u = (frac - min_scale) / (max_scale - min_scale)
    return np.clip(2 * u - 1, -1, 1)


def _check_scales(min_scale: float, max_scale: float) -> None:
    if not 0.0 < min_scale <= max_scale <= 2.0:
        raise ValueError(
            f"min_scale={min_scale!r}, max_scale={max_scale!r}: need 0 < min_scale <= max_scale <= 2"
        )


def _check_z(z) -> torch.Tensor:
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(z)
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise ValueError(f"z must be a float tensor of shape (B, 3), got {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != 3 or z.shape[0] < 1:
        raise ValueError(f"z must have shape (B, 3) as (scale, x, y), got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("z must be finite; got NaN or infinity")
    return z


def as_pyramids(source, batch: int) -> list[ImageSource]:
    """One pyramid per crop, from a Pyramid (any ``ImageSource``), a list of them, or an image: (H, W) gray,
    (B, H, W) a gray batch, (B, H, W, C) a colour batch. A single (H, W, C) colour image is
    ambiguous with a gray batch: wrap it in a ``Pyramid``."""
    if isinstance(source, ImageSource):
        return [source] * batch
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if len(source) != batch or not all(isinstance(p, ImageSource) for p in source):
            raise ValueError(
                f"source as a list must hold {batch} Pyramids (image sources), one per row of z"
            )
        return list(source)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if source.ndim in (3, 4):
            if source.shape[0] != batch:
                raise ValueError(
                    f"source batch of {source.shape[0]} images does not match z's {batch} rows"
                )
            return [Pyramid(source[b], lazy=True) for b in range(batch)]
        return [Pyramid(source, lazy=True)] * batch
    raise ValueError(
        "source must be a uint8 (H, W), (B, H, W) or (B, H, W, C) array/tensor, a Pyramid or a list of "
        f"Pyramids, got {type(source).__name__}"
    )


def glimpse(
    source,
    z: torch.Tensor,
    size: int = 32,
    min_scale: float = DEFAULT_MIN_SCALE,
    max_scale: float = DEFAULT_MAX_SCALE,
    log_scale: bool = False,
) -> torch.Tensor:
    """Crop ``size`` x ``size`` bilinear samples of the window that z describes.

    Args:
        source: a ``Pyramid`` (all crops from one image), a list of B Pyramids, a uint8
            (H, W) image, a uint8 (B, H, W) batch or (B, H, W, C) colour batch (crop b from
            image b), array or tensor. All pyramids must have the same channels.
        z: (B, 3) float tensor of (s, x, y); the result is differentiable with respect to it.
        size: k, the crop side in pixels.
        min_scale, max_scale: crop side, as a fraction of the image side, at s = -1 and s = 1.
        log_scale: s is linear in the log of the side (``scale_to_fraction``).

    Returns:
        (B, k, k) tensor of z's dtype and device, intensities in [0, 1], for grayscale
        (H, W) images; (B, C, k, k) for colour (H, W, C) ones. Each channel of a colour crop
        is exactly the crop of that channel alone (same windows, same weights): the cost is
        O(C·k²).
    """
    z = _check_z(z)
    if int(size) < 1:
        raise ValueError(f"size={size!r} must be a positive integer")
    _check_scales(min_scale, max_scale)
    k = int(size)
    batch = z.shape[0]
    pyramids = as_pyramids(source, batch)
    if len({(p.channels, p.gray) for p in pyramids}) > 1:
        raise ValueError("all images of a glimpse batch must have the same channels")

    frac = scale_to_fraction(z[:, 0], min_scale, max_scale, log_scale)  # (B,)
    g = (2 * torch.arange(k, dtype=z.dtype, device=z.device) + 1) / k - 1  # (k,) in (-1, 1)
    u_x = z[:, 1:2] + frac[:, None] * g  # (B, k) sample columns, normalised image coords
    u_y = z[:, 2:3] + frac[:, None] * g  # (B, k) sample rows

    # Trilinear mip-mapping: the continuous level log2(spacing) lies between two pyramid
    # levels; the crop blends the crops of both, so it is continuous in s and its gradient
    # with respect to s (through the sample positions and the blend weight) is exact.
    # The level choice needs plain numbers; the blend weight is recomputed as a tensor (for
    # its gradient) only when some crop needs two levels, so a crop whose samples lie at most
    # a pixel apart (all of them at 100²) costs one window read and no extra tensor ops.
    frac_v = frac.detach().cpu().tolist()
    levels_v = [
        min(math.log2(max(f * max(p.shape) / k, 1.0)), p.max_level)
        for f, p in zip(frac_v, pyramids, strict=True)
    ]
    lower_v = [int(math.floor(v)) for v in levels_v]
    crops = _sample_level(pyramids, u_x, u_y, lower_v)
    if any(v > lo for v, lo in zip(levels_v, lower_v, strict=True)):
        sides = torch.tensor([max(p.shape) for p in pyramids], dtype=z.dtype, device=z.device)
        top = torch.tensor([p.max_level for p in pyramids], dtype=z.dtype, device=z.device)
        spacing = frac * sides / k  # full-res pixels between neighbouring samples
        level = torch.minimum(torch.log2(spacing.clamp_min(1.0)), top)  # (B,) continuous
        lower = torch.tensor(lower_v, dtype=z.dtype, device=z.device)
        weight = level - lower  # (B,) in [0, 1), differentiable in s
        upper = _sample_level(pyramids, u_x, u_y, [v + 1 for v in lower_v])
        w = weight.view((-1,) + (1,) * (crops.ndim - 1))
        crops = crops + w * (upper - crops)
    return crops


def _sample_level(
    pyramids: list[Pyramid], u_x: torch.Tensor, u_y: torch.Tensor, levels: list[int]
) -> torch.Tensor:
    """Bilinear samples of crop b at (u_y[b] x u_x[b]) from pyramid level ``levels[b]``.

    Reads only the window of pixels the samples touch. u_x, u_y: (B, k) normalised image
    coordinates; returns (B, k, k) for gray pyramids, (B, C, k, k) for colour ones,
    differentiable in u_x and u_y.
    """
    batch, k = u_x.shape
    dtype, device = u_x.dtype, u_x.device
    # Window bounds need only plain numbers.
    ux_lo, ux_hi = u_x[:, 0].detach().cpu().tolist(), u_x[:, -1].detach().cpu().tolist()
    uy_lo, uy_hi = u_y[:, 0].detach().cpu().tolist(), u_y[:, -1].detach().cpu().tolist()

    origins, extents = [], []
    for b, pyr in enumerate(pyramids):
        h, w = pyr.shape
        f = 2.0 ** levels[b]
        # Level-l pixel coordinate of a normalised coordinate u: ((u + 1) * side / 2**l - 1) / 2.
        x0 = math.floor(((ux_lo[b] + 1) * w / f - 1) / 2)
        x1 = math.floor(((ux_hi[b] + 1) * w / f - 1) / 2) + 1
        y0 = math.floor(((uy_lo[b] + 1) * h / f - 1) / 2)
        y1 = math.floor(((uy_hi[b] + 1) * h / f - 1) / 2) + 1
        origins.append((x0, y0))
        extents.append((x1 - x0 + 1, y1 - y0 + 1))

    # One batch of windows (padded to the widest) and one grid_sample call for all crops.
    ww, wh = max(e[0] for e in extents), max(e[1] for e in extents)
    gray, channels = pyramids[0].gray, pyramids[0].channels
    # outside the image reads as zero; a colour window is (wh, ww, C) as its levels are
    windows = np.zeros((batch, wh, ww) + (() if gray else (channels,)), np.uint8)
    for b, pyr in enumerate(pyramids):
        pyr.read_window(levels[b], origins[b][0], origins[b][1], ww, wh, out=windows[b])
    win = torch.from_numpy(windows).to(device).to(dtype).div_(255.0)
    win = win[:, None] if gray else win.permute(0, 3, 1, 2)  # (B, C, wh, ww)

    def column(values) -> torch.Tensor:  # (B, 1) constants of each crop
        return torch.tensor(values, dtype=dtype, device=device)[:, None]

    scale = column([2.0**-lvl for lvl in levels])
    hs, ws = column([p.shape[0] for p in pyramids]), column([p.shape[1] for p in pyramids])
    px = ((u_x + 1) * ws * scale - 1) / 2 - column([o[0] for o in origins])  # (B, k) window px
    py = ((u_y + 1) * hs * scale - 1) / 2 - column([o[1] for o in origins])
    gx = (2 * px + 1) / ww - 1  # window-normalised, align_corners=False
    gy = (2 * py + 1) / wh - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    crops = F.grid_sample(win, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops[:, 0] if gray else crops


def z_to_box(
    z,
    shape: tuple[int, int],
    min_scale: float = DEFAULT_MIN_SCALE,
    max_scale: float = DEFAULT_MAX_SCALE,
    log_scale: bool = False,
) -> np.ndarray:
    """Pixel boxes of the windows z describes.

    Args:
        z: (B, 3) (s, x, y), tensor or array.
        shape: (H, W) of the full-resolution image.

    Returns:
        (B, 4) float64 array x0, y0, x1, y1 in full-resolution pixels (the image spans
        [0, W] x [0, H]; boxes may reach outside it).
    """
    _check_scales(min_scale, max_scale)
    z = _check_z(torch.as_tensor(np.asarray(z, dtype=np.float64)))
    h, w = shape
    frac = scale_to_fraction(z[:, 0], min_scale, max_scale, log_scale).numpy()
    cx = (z[:, 1].numpy() + 1) / 2 * w
    cy = (z[:, 2].numpy() + 1) / 2 * h
    return np.stack([cx - frac * w / 2, cy - frac * h / 2, cx + frac * w / 2, cy + frac * h / 2], 1)


def box_to_z(
    boxes,
    shape: tuple[int, int],
    min_scale: float = DEFAULT_MIN_SCALE,
    max_scale: float = DEFAULT_MAX_SCALE,
    log_scale: bool = False,
) -> np.ndarray:
    """Inverse of ``z_to_box``: (B, 4) pixel boxes -> (B, 3) z; a non-square box gets the mean
    of its width and height fractions, and the scale is clipped to [-1, 1]."""
    _check_scales(min_scale, max_scale)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = shape
    frac = ((boxes[:, 2] - boxes[:, 0]) / w + (boxes[:, 3] - boxes[:, 1]) / h) / 2
    s = fraction_to_scale(frac, min_scale, max_scale, log_scale)
    x = (boxes[:, 0] + boxes[:, 2]) / w - 1
    y = (boxes[:, 1] + boxes[:, 3]) / h - 1
    return np.stack([s, x, y], 1)
