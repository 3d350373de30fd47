"""The glimpse's pyramid over a slide: what ``saccade.glimpse`` crops from when the image is
a file on disk (``saccade.data.slide.Slide``) instead of an array in memory.

``SlidePyramid(slide)`` is an image source (``saccade.glimpse.ImageSource``, as an in-memory
``saccade.Pyramid`` is) of the **virtual square** that
``saccade.image_io.to_square`` would make of the slide: side S = max(H, W), the slide centred
in it, the rest its background (``fill``, below). Nothing is padded or copied: a window
outside the slide reads the background.
Its level l has downsample exactly 2**l, as an in-memory pyramid's, so ``glimpse`` blends
levels and differentiates in z as it does in memory; only ``read_window`` differs.

``read_window(l, x0, y0, ww, wh)`` reads the window from the **source** level nearest finer
than 2**l: a level of the file (its downsample snapped to an integer when within 0.5%: the
floor of a halved side makes 8.012 of an 8x level), or a level this module made. When the
source's downsample is 2**l and the window is aligned with its pixels, the window is read as
is; otherwise (a level the file lacks, such as 8x between Aperio's 4x and 16x; a centring
offset that is not a multiple of the downsample) it is the exact area average (``area_weights``)
of the source's pixels under each window pixel: the window's few pixels, never a whole level.
The cost of a window is its size times the source's ratio to it, whatever the slide's size.

A slide whose coarsest level is over ``STREAM_PIXELS`` (a tiled file with no pyramid, or with
only a 4x level) gets coarser levels made once, by one pass over that level's tiles in bounded
memory (``stream_levels``), and kept in the pyramid cache (``saccade.data.cache``: the same
integrity checks, keyed by the file's path, size and mtime).

The proxy (``proxy``) is the exact area average of the square, read from the coarsest source
level with at least the proxy's side across the square: never level 0 of a slide that has
coarser ones.

``saccade.predict`` enters this module once per step of its route: the slide opened (by
``SlidePyramid``, on a ``Slide`` opened by ``open_if_slide``), its proxy (``proxy``), the
glimpse's windows (``read_window``), then the boxes in the slide's pixels with their zooms and
the thumbnail, one plain value (``read_boxes``: ``SlideRead``). Each read plans its regions,
then reads them from the file in one call that also checks the file on disk
(``Slide.read_regions``); ``scripts/trace_route.py`` measures the route.

**Physical scale** (``mpp``): with ``mpp=M`` the square's pixels are M µm wide, whatever the
slide's own scale (``Slide.mpp``, or ``default_mpp`` for a file that records none): each
virtual pixel covers M / slide-MPP level-0 pixels (``scale``), and the square's side is
``canvas_um`` / M pixels (default: the slide's own longer side in µm), the slide centred in
it, the rest a virtual pad. Nothing is resampled ahead: a window is read from the source level
nearest finer than its spacing and area-averaged as above (or, finer than level 0 of the file,
interpolated linearly); the glimpse's interpolation does the rest. A slide larger than the
canvas is cut to its centred square (``cut``).

**Background** (``fill``): what lies outside the slide (the pad, a window past its edge) reads
as the slide's background (``Slide.background``: bright glass for a stained slide, black for a
slide on black), not zeros. **Invert** (``invert``): every read is the negative (255 - pixels):
a dark-on-bright slide as a model trained on bright ink on black sees it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..glimpse import halve, max_level_of, read_padded
from .cache import PyramidCache
from .proxy import add_noise, make_proxy
from .slide import Slide
from .slide_meta import check_mpp

#: a coarsest level with more pixels than this gets levels made from it (streamed, cached)
STREAM_PIXELS = 4096 * 4096
#: made levels stop once the longer side is at most this
STREAM_MIN_SIDE = 256
#: version of what ``stream_levels`` writes (part of the cache key)
STREAM_VERSION = 1


def default_cache_dir() -> Path:
    """Where made levels are cached: ``$SACCADE_SLIDE_CACHE``, else ~/.cache/saccade/slides."""
    env = os.environ.get("SACCADE_SLIDE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "saccade" / "slides"


def snap_downsample(d: float, level_shape: tuple[int, int], shape: tuple[int, int]) -> float:
    """A level's downsample as its pixel grid has it: the integer k (``round(d)`` or the
    nearest power of two) whose H / k and W / k are within a pixel of the level's sides (the
    rounding of a halved side makes 16.4 of a 62x18 level of a 1000x300 slide), else ``d``."""
    (h, w), (H, W) = level_shape, shape
    for k in (round(d), 2 ** round(math.log2(max(d, 1.0)))):
        if k >= 1 and abs(H / k - h) <= 1 and abs(W / k - w) <= 1:
            return float(k)
    return float(d)


def area_weights(start: float, ratio: float, n_out: int, n_src: int) -> np.ndarray:
    """(n_out, n_src) float32 weights of exact area averaging: output pixel j covers source
    pixels [start + j*ratio, start + (j+1)*ratio) (source pixel i covers [i, i+1)); each row
    sums to 1 where the interval lies within the n_src pixels."""
    lo = start + np.arange(n_out, dtype=np.float64)[:, None] * ratio
    i = np.arange(n_src, dtype=np.float64)[None, :]
    overlap = np.minimum(lo + ratio, i + 1) - np.maximum(lo, i)
    return (np.clip(overlap, 0.0, None) / ratio).astype(np.float32)


def linear_weights(start: float, ratio: float, n_out: int, n_src: int) -> np.ndarray:
    """(n_out, n_src) float32 weights of linear interpolation where output pixels are smaller
    than source pixels (``ratio`` < 1): output pixel j's centre lies at source coordinate
    start + (j + 1/2) * ratio (source pixel i spans [i, i+1)), interpolated between the two
    nearest source centres (the edge pixel's value beyond the outer centres)."""
    c = start + (np.arange(n_out, dtype=np.float64) + 0.5) * ratio - 0.5
    c = np.clip(c, 0.0, n_src - 1.0)
    i0 = np.floor(c).astype(np.int64)
    t = c - i0
    i1 = np.minimum(i0 + 1, n_src - 1)
    out = np.zeros((n_out, n_src), np.float64)
    rows = np.arange(n_out)
    np.add.at(out, (rows, i0), 1.0 - t)
    np.add.at(out, (rows, i1), t)
    return out.astype(np.float32)


def resample_area(region: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """(h, w[, C]) uint8 -> (len(wy), len(wx)[, C]) uint8: rows mixed by ``wy`` (n_out, h),
    columns by ``wx`` (n_out, w), rounded. (``einsum``, not BLAS: these products are small,
    and a BLAS thread pool woken per window costs more than the arithmetic.)"""
    src = region.astype(np.float32)
    out = np.einsum("ih,hw...->iw...", wy, src)
    out = np.einsum("jw,iw...->ij...", wx, out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resampled(region: np.ndarray, how: tuple) -> np.ndarray:
    """A region read as ``SlidePyramid._scaled_plan`` planned it, made its window's pixels:
    ("as is",), ("resize", ww, wh): OpenCV's area resize, ("weights", wy, wx):
    ``resample_area``."""
    if how[0] == "as is":
        return region
    if how[0] == "resize":
        ww, wh = how[1], how[2]
        out = cv2.resize(region, (ww, wh), interpolation=cv2.INTER_AREA)
        return out.reshape((wh, ww) + region.shape[2:])
    return resample_area(region, how[1], how[2])


def _convert(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(h, w) or (h, w, 3) uint8 as the model's ``channels`` (ITU-R 601 luma for gray)."""
    if channels == 1 and pixels.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    if channels == 3 and pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


def _alignment(sources: list, side: int) -> int:
    """The largest power-of-two downsample among ``sources``, at most side / 256 (so that
    rounding the centring offset down to it moves the slide by under 0.4% of the side)."""
    cap = max(1, side // 256)
    best = 1
    for s in sources:
        d = s.downsample
        if d == int(d) and int(d) & (int(d) - 1) == 0 and best < d <= cap:
            best = int(d)
    return best


class _Source:
    """A level windows are read from: a level of the file, or a made one (an array)."""

    def __init__(self, downsample: float, height: int, width: int, slide_level=None, array=None):
        self.downsample = downsample
        self.height, self.width = height, width
        self.slide_level = slide_level
        self.array = array

    def read(self, slide: Slide, x: int, y: int, w: int, h: int) -> np.ndarray:
        """(h, w[, C]) of this source at (x, y) in its pixels, zeros outside; the slide's
        file was checked by the caller (``SlidePyramid._read_fresh``)."""
        if self.array is None:
            return slide.read_region(self.slide_level, x, y, w, h, checked=True)
        return read_padded(self.array, x, y, w, h)


def stream_levels(slide: Slide, level: int, first: int, min_side: int = STREAM_MIN_SIDE):
    """Levels of downsample 2**first, 2**(first+1), ... relative to ``level`` of ``slide``,
    made by one pass over that level's tiles (``Slide.read_downsampled``: each block
    area-averaged as it is read; only the first made level is held, then halved), down to
    ``min_side`` pixels on the longer side. Returns a list of (h, w[, C]) uint8 arrays,
    finest first."""
    levels = [slide.read_downsampled(level, 2**first)]
    while max(levels[-1].shape[:2]) > min_side:
        levels.append(halve(levels[-1]))
    return levels


#: slide pyramids a process keeps after unpickling them, so that the batches a DataLoader
#: worker sends do not open the same slide again (and again decode its tiles)
REOPENED_MAX = 8
_REOPENED: OrderedDict = OrderedDict()


class SlidePyramid:
    """The pyramid of a slide's virtual square (module docstring): an ``ImageSource``
    (``saccade.glimpse``) whose levels are never read whole, only windows of them.

    Args:
        slide: a ``Slide`` or a path to one.
        channels: 1 or 3, the model's (default: the slide's); windows are converted.
        cache_dir: where made levels are cached (``default_cache_dir()`` when None; False:
            made in memory, not cached).
        min_side: as ``saccade.Pyramid``'s (levels are halved until the longer side is at most
            this).
        errors: what a tile that cannot be decoded does: 'raise' (ValueError naming the file
            and level: ``predict``) or 'warn' (one RuntimeWarning naming them, then the
            unreadable windows read black: training on a folder goes on).
        mpp: µm per pixel of the square (module docstring), or None: the slide's own pixels.
        canvas_um: with ``mpp``, the square's side in µm (default: the slide's longer side).
        default_mpp: with ``mpp``, the scale of a slide whose file records none (without it,
            such a slide is a ValueError naming it).
        fill: what lies outside the slide reads as: 'background' (``Slide.background``), or
            one value per channel of the slide (0: black).
        invert: every read is 255 - pixels (the proxy, the crops' windows, the thumbnail).

    Attributes: ``shape`` (S, S); ``image_shape`` (H, W) of the slide's level 0; ``scale``
    level-0 pixels of the slide per pixel of the square (1 without ``mpp``); ``offset``
    (x, y) of the slide in the square (level-0 pixels of the slide: centred as ``to_square``
    does; without ``mpp`` rounded down to a multiple of ``align``, the coarsest power-of-two
    source downsample up to S / 256, so that those sources' pixels are the square's);
    ``slide_mpp`` the slide's µm per level-0 pixel used (None without ``mpp``);
    ``sources`` the levels windows are read from, finest first.
    """

    def __init__(
        self,
        slide: Slide | str | os.PathLike,
        channels: int | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
        min_side: int = 16,
        errors: str = "raise",
        mpp: float | None = None,
        canvas_um: float | None = None,
        default_mpp: float | None = None,
        fill: str | int | tuple = "background",
        invert: bool = False,
    ):
        self.mpp = None if mpp is None else check_mpp(mpp, "mpp")
        self.canvas_um = None if canvas_um is None else float(canvas_um)
        if self.canvas_um is not None and not (math.isfinite(self.canvas_um) and canvas_um > 0):
            raise ValueError(f"canvas_um={canvas_um!r} must be a positive number of µm")
        self.default_mpp = None if default_mpp is None else check_mpp(default_mpp, "default_mpp")
        if fill != "background" and not isinstance(fill, (int, tuple, list)):
            raise ValueError(f"fill={fill!r}; accepted: 'background' or values per channel")
        self.fill = fill if fill == "background" or isinstance(fill, int) else tuple(fill)
        self.invert = bool(invert)
        self.slide = slide if isinstance(slide, Slide) else Slide(slide)
        self.channels = int(channels) if channels is not None else self.slide.channels
        if self.channels not in (1, 3):
            raise ValueError(f"channels={channels!r}; accepted: 1 (grayscale) or 3 (RGB)")
        self.gray = self.channels == 1
        self.cache_dir = cache_dir
        self.min_side = min_side
        if errors not in ("raise", "warn"):
            raise ValueError(f"errors={errors!r}; accepted: 'raise' or 'warn'")
        self.errors = errors
        self.failed: str | None = None  # the first read error, with errors='warn'
        self._setup()

    def _setup(self) -> None:
        """The square, its levels and the sources, from the slide as it is now."""
        h, w = self.slide.shape
        self.image_shape = (h, w)
        self.slide_mpp = self._slide_mpp()
        self.scale = 1.0 if self.mpp is None else self.mpp / self.slide_mpp
        if self.mpp is None:
            side = max(h, w)
        elif self.canvas_um is None:
            side = max(1, math.ceil(max(h, w) / self.scale - 1e-6))
        else:
            side = max(1, round(self.canvas_um / self.mpp))
        self.shape = (side, side)
        self.max_level = max_level_of(self.shape, self.min_side)
        self._make_sources()
        if self.mpp is None:
            # centred as to_square does, rounded down to a multiple of ``align`` so that every
            # power-of-two source's pixel grid is the square's: windows are read, not resampled
            align = self.align = _alignment(self.sources, side)
            self.offset = ((side - w) // 2 // align * align, (side - h) // 2 // align * align)
        else:  # any scale: windows are area-averaged from their source wherever they fall
            self.align = 0
            extent = side * self.scale  # the square's side in the slide's level-0 pixels
            self.offset = ((extent - w) / 2, (extent - h) / 2)
        self.__dict__.pop("_thumbnails", None)
        self.__dict__.pop("_fill", None)
        self._stamp = self.slide.stamp

    def _slide_mpp(self) -> float | None:
        """The slide's µm per level-0 pixel (the mean of x and y) with ``mpp``, else None;
        ValueError naming the slide when it records none and no ``default_mpp`` is given, or
        records an absurd one."""
        if self.mpp is None:
            return None
        found = self.slide.mpp
        if found is None:
            if self.default_mpp is None:
                raise ValueError(
                    f"slide {self.slide.name!r} records no physical scale (no MPP in its "
                    f"metadata), so it cannot be read at mpp={self.mpp:g} µm per pixel: give "
                    "its scale with --default-mpp (default_mpp=), or train without --mpp"
                )
            return self.default_mpp
        return check_mpp(
            (found[0] + found[1]) / 2, f"the MPP recorded by slide {self.slide.name!r}"
        )

    @property
    def level0_mpp(self) -> float | None:
        """µm per level-0 pixel of the slide as read: ``slide_mpp`` with ``mpp``, else the
        mean of what the file records (None where it records none)."""
        recorded = self.slide.mpp
        return self.slide_mpp or (None if recorded is None else sum(recorded) / 2)

    @property
    def square_box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the square in the slide's level-0 pixels (negative x0 or y0
        where the slide is padded)."""
        ox, oy = self.offset
        extent = self.shape[0] * self.scale
        return (-float(ox), -float(oy), extent - ox, extent - oy)

    @property
    def cut(self) -> bool:
        """Whether part of the slide lies outside the square (a canvas smaller than it)."""
        x0, y0, x1, y1 = self.square_box
        h, w = self.image_shape
        tol = self.scale
        return x0 > tol or y0 > tol or x1 < w - tol or y1 < h - tol

    def _fill_value(self) -> tuple[int, ...]:
        """What lies outside the slide reads as, one value per channel of the slide."""
        known = self.__dict__.get("_fill")
        if known is None:
            fill = self.slide.background if self.fill == "background" else self.fill
            fill = (fill,) * self.slide.channels if isinstance(fill, int) else tuple(fill)
            if len(fill) != self.slide.channels:
                fill = (round(sum(fill) / len(fill)),) * self.slide.channels
            known = self._fill = tuple(int(v) for v in fill)
        return known

    def refresh(self) -> bool:
        """Open the slide again, and make its square and levels again (the made levels' cache
        entry is keyed by the file's size and mtime, so it is rebuilt), when the file changed
        on disk since; whether it did. Every read checks the same, in the call that reads
        its pixels (``_read_fresh``: one ``stat`` per read)."""
        self.slide.refresh()
        if self.slide.stamp == self._stamp:
            return False
        self._setup()
        return True

    def _make_sources(self) -> None:
        slide = self.slide
        sources = [
            _Source(
                snap_downsample(lv.downsample, (lv.height, lv.width), slide.shape),
                lv.height,
                lv.width,
                slide_level=i,
            )
            for i, lv in enumerate(slide.levels)
        ]
        sources.sort(key=lambda s: s.downsample)
        coarsest = sources[-1]
        self.made_levels = 0
        if coarsest.height * coarsest.width > STREAM_PIXELS:
            first = 0
            while (coarsest.height / 2**first) * (coarsest.width / 2**first) > STREAM_PIXELS:
                first += 1
            made = self._made_levels(coarsest, first)
            for i, arr in enumerate(made):
                d = coarsest.downsample * 2 ** (first + i)
                sources.append(_Source(d, arr.shape[0], arr.shape[1], array=arr))
            self.made_levels = len(made)
        self.sources = sources

    def _made_levels(self, coarsest: _Source, first: int) -> list[np.ndarray]:
        """The levels ``stream_levels`` makes from the coarsest file level, from the cache
        when it holds them for this file as it is now, else made and stored."""
        slide, level = self.slide, coarsest.slide_level
        cache = None
        if self.cache_dir is not False:
            directory = default_cache_dir() if self.cache_dir is None else Path(self.cache_dir)
            cache = PyramidCache(
                directory,
                {"slide_levels": STREAM_VERSION, "level": level, "channels": slide.channels},
            )
        relpath, stat = slide.cache_key()  # a URL: the URL, its size and ETag
        if cache is not None:
            hit = cache.load(relpath, stat, first)
            if hit is not None and tuple(hit[2]) == (coarsest.height, coarsest.width):
                return [lv for lv in hit[1][first:]]
        made = stream_levels(slide, level, first)
        if cache is not None:
            shapes = [
                (math.ceil(coarsest.height / 2**i), math.ceil(coarsest.width / 2**i))
                + made[0].shape[2:]
                for i in range(first)
            ]
            # finer levels are not stored: zero-strided stand-ins carry their shapes
            stand_ins = [np.broadcast_to(np.zeros((), np.uint8), s) for s in shapes]
            thumb = make_proxy(made[-1], 16)
            cache.store(relpath, stat, thumb, stand_ins + made, first)
        return made

    # -- the interface glimpse reads -------------------------------------------------------

    def source_for(self, downsample: float) -> _Source:
        """The coarsest source whose downsample is at most ``downsample`` and whose pixel
        grid is the square's (the offset a whole number of its pixels; level 0 if none)."""
        best = self.sources[0]
        ox, oy = getattr(self, "offset", (0, 0))
        for s in self.sources:
            d = s.downsample
            # with a physical scale every window is resampled: any source will do
            aligned = self.mpp is not None or (ox / d).is_integer() and (oy / d).is_integer()
            if d <= downsample * (1 + 1e-3) and aligned:
                best = s
        return best

    def read_window(
        self, level: int, x0: int, y0: int, ww: int, wh: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The (wh, ww) or (wh, ww, C) uint8 window at (x0, y0) of virtual level ``level``
        (downsample 2**level of the square), zeros outside the slide. ``out``: fill it."""

        def where() -> tuple:
            # the slide's level-0 pixels per pixel of this level (2**level square pixels)
            g = 2.0 ** int(level) * self.scale
            return g, x0 * g - self.offset[0], y0 * g - self.offset[1], ww, wh

        region = self._finish(self._scaled_fresh(where))
        if out is None:
            return region
        out[...] = region
        return out

    def _finish(self, region: np.ndarray) -> np.ndarray:
        """A region of the slide's pixels as the reader wants them: in ``channels``, and
        inverted with ``invert``."""
        region = _convert(region, self.channels)
        return np.subtract(255, region, dtype=np.uint8) if self.invert else region

    def _read(self, src: _Source, x: int, y: int, w: int, h: int) -> np.ndarray:
        """``src.read``, its part outside the source's extent set to the fill (``fill``),
        with a decoding error raised or (errors='warn') warned about once and read as zeros."""
        try:
            region = src.read(self.slide, x, y, w, h)
        except ValueError as e:
            if self.errors == "raise":
                raise
            if self.failed is None:
                self.failed = str(e)
                warnings.warn(
                    f"{e}: its unreadable windows read black", RuntimeWarning, stacklevel=2
                )
            shape = (h, w) if self.slide.channels == 1 else (h, w, 3)
            return np.zeros(shape, np.uint8)
        return self._fill_outside(src, x, y, w, h, region)

    def _fill_outside(
        self, src: _Source, x: int, y: int, w: int, h: int, region: np.ndarray
    ) -> np.ndarray:
        """``region``, read at (x, y) of ``src``, its part outside the source set to the fill."""
        inside = x >= 0 and y >= 0 and x + w <= src.width and y + h <= src.height
        if not inside:
            fill = self._fill_value()
            if any(fill):
                value = fill[0] if region.ndim == 2 else np.array(fill, np.uint8)
                x0, y0 = min(max(-x, 0), w), min(max(-y, 0), h)
                x1, y1 = max(min(src.width - x, w), x0), max(min(src.height - y, h), y0)
                region[:y0], region[y1:] = value, value
                region[y0:y1, :x0], region[y0:y1, x1:] = value, value
        return region

    def _scaled_fresh(self, where) -> np.ndarray:
        """The ww x wh pixels of downsample f whose first covers level-0 (X, Y) of the slide,
        (f, X, Y, ww, wh) = ``where()`` on the square as it is, with one check of the file
        (``_read_fresh``)."""
        hows = []

        def plan() -> list:
            request, how = self._scaled_plan(*where())
            hows[:] = [how]
            return [request]

        (region,) = self._read_fresh(plan)
        return _resampled(region, hows[0])

    def _scaled_plan(self, f: float, X: float, Y: float, ww: int, wh: int) -> tuple:
        """(request, how) of a scaled read: the region to read, (source, x, y, w, h) in
        the source's pixels, and how ``_resampled`` makes the ww x wh pixels of it."""
        src = self.source_for(f)
        d = src.downsample
        r = f / d
        ax, ay = X / d, Y / d
        nw, nh = ww * r, wh * r
        if r < 1 - 1e-9:  # finer than the file's level 0 (a physical scale): interpolated
            sx0, sy0 = math.floor(ax - 0.5), math.floor(ay - 0.5)
            sx1, sy1 = math.ceil(ax + nw + 0.5), math.ceil(ay + nh + 0.5)
            wx = linear_weights(ax - sx0, r, ww, sx1 - sx0)
            wy = linear_weights(ay - sy0, r, wh, sy1 - sy0)
            return (src, sx0, sy0, sx1 - sx0, sy1 - sy0), ("weights", wy, wx)
        if all(abs(v - round(v)) < 1e-6 for v in (ax, ay, nw, nh)):
            # the window's edges fall on the source's pixel edges: read, then (r > 1) OpenCV's
            # area resize, exact block means at these edges
            request = (src, round(ax), round(ay), round(nw), round(nh))
            if round(nw) == ww and round(nh) == wh:
                return request, ("as is",)
            return request, ("resize", ww, wh)
        sx0, sy0 = math.floor(ax), math.floor(ay)
        sx1, sy1 = math.ceil(ax + ww * r), math.ceil(ay + wh * r)
        wx = area_weights(ax - sx0, r, ww, sx1 - sx0)
        wy = area_weights(ay - sy0, r, wh, sy1 - sy0)
        return (src, sx0, sy0, sx1 - sx0, sy1 - sy0), ("weights", wy, wx)

    def _read_fresh(self, plan) -> list[np.ndarray]:
        """The regions ``plan()`` asks for ((source, x, y, w, h) each, planned from the
        square and sources as they are), read with one check of the file on disk: when it
        changed since, the square and levels are made again (``refresh``) and the regions
        planned again. With errors='warn', region by region (``_read``: each unreadable one
        warned about and read as zeros)."""
        if self.errors == "warn":
            self.refresh()
            return [self._read(*r) for r in plan()]
        requests = plan()
        regions = self.slide.read_regions(self._file_reads(requests), self._stamp)
        if regions is None:  # the file changed: opened again by the slide
            self._setup()
            requests = plan()
            regions = self.slide.read_regions(self._file_reads(requests), checked=True)
        found = iter(regions)
        out = []
        for src, x, y, w, h in requests:
            region = next(found) if src.array is None else src.read(self.slide, x, y, w, h)
            out.append(self._fill_outside(src, x, y, w, h, region))
        return out

    @staticmethod
    def _file_reads(requests: list) -> list[tuple[int, int, int, int, int]]:
        """The (level, x, y, w, h) of the file's levels among (source, x, y, w, h) requests."""
        return [(s.slide_level, x, y, w, h) for s, x, y, w, h in requests if s.array is None]

    def coarse(self, first: int) -> SlidePyramid:
        """Itself: a slide pyramid holds no levels to drop (pickled, it is its path)."""
        return self

    @property
    def nbytes(self) -> int:
        """Bytes held: the made levels in memory (memory-mapped ones are on disk) and the
        slide's tile cache."""
        held = sum(
            s.array.nbytes
            for s in self.sources
            if s.array is not None and not isinstance(s.array, np.memmap)
        )
        return held + self.slide.cached_bytes

    def __getstate__(self) -> dict:
        """Pickled (between a DataLoader worker and the main process), a slide pyramid travels
        as its path and settings: the receiver opens its own handle, or reuses the one it
        opened for the same slide and settings (one of the last ``_REOPENED`` it unpickled)."""
        slide = self.slide
        return {
            "path": str(slide.path),
            "cache_bytes": slide.cache_bytes,
            "backend": slide.backend_name,
            "channels": self.channels,
            "cache_dir": self.cache_dir,
            "min_side": self.min_side,
            "errors": self.errors,
            "mpp": self.mpp,
            "canvas_um": self.canvas_um,
            "default_mpp": self.default_mpp,
            "fill": self.fill,
            "invert": self.invert,
        }

    def __setstate__(self, state: dict) -> None:
        key = tuple(sorted((k, str(v)) for k, v in state.items()))
        known = _REOPENED.get(key)
        if known is not None:
            _REOPENED.move_to_end(key)
            self.__dict__.update(known.__dict__)  # the same open Slide and made levels
            return
        slide = Slide(state["path"], state["cache_bytes"], state["backend"])
        reading = {k: state[k] for k in ("mpp", "canvas_um", "default_mpp", "fill", "invert")}
        self.__init__(
            slide,
            state["channels"],
            state["cache_dir"],
            state["min_side"],
            state["errors"],
            **{k: v for k, v in reading.items() if v is not None},
        )
        _REOPENED[key] = self
        while len(_REOPENED) > REOPENED_MAX:
            _REOPENED.popitem(last=False)

    def __repr__(self) -> str:
        return (
            f"SlidePyramid({self.slide.path.name!r}, square={self.shape[0]}, "
            f"sources={[round(s.downsample, 3) for s in self.sources]})"
        )

    # -- what predict shows ---------------------------------------------------------------

    def proxy(self, size: int, noise: float = 0.0, rng=None) -> np.ndarray:
        """The model's proxy of the square: (size, size) or (C, size, size) float32 in [0, 1],
        each pixel the area average of the square under it (``square_image``), read from the
        coarsest source with at least ``size`` pixels across the square; noise as
        ``make_proxy``'s."""
        square = self.square_image(size).astype(np.float32) / 255.0
        if square.ndim == 3:
            square = np.ascontiguousarray(square.transpose(2, 0, 1))
        return add_noise(square, noise, rng)

    def square_image(self, side: int) -> np.ndarray:
        """The virtual square at ``side`` x ``side`` pixels: (side, side[, C]) uint8, each
        pixel the exact area average of the square's S / side level-0 pixels under it, read
        from the coarsest source whose downsample is at most S / side (a thumbnail)."""
        side = int(side)
        if side < 1:
            raise ValueError(f"side={side!r} must be a positive integer")

        def where() -> tuple:
            return self.shape[0] * self.scale / side, -self.offset[0], -self.offset[1], side, side

        return self._finish(self._scaled_fresh(where))

    def thumbnail(self, max_side: int = 1024) -> np.ndarray:
        """The whole slide (not squared) at most ``max_side`` pixels a side, (h, w[, C])
        uint8; kept after the first call for each ``max_side``."""
        return self.read_boxes(None, thumbnail_side=max_side).thumbnail

    def to_slide_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(T, 4) boxes in the square's pixels -> the slide's level-0 pixels."""
        ox, oy = self.offset
        boxes = np.asarray(boxes, np.float64) * self.scale
        return boxes - np.array([ox, oy, ox, oy], np.float64)

    def read_box(self, box, max_side: int = 512) -> np.ndarray:
        """The region of the slide's level-0 box (x0, y0, x1, y1), clipped to the virtual
        square (the slide's padding reads as ``fill``), read from the coarsest source that
        keeps at least ``max_side`` pixels a side and area-downscaled to at most ``max_side``:
        (h, w[, C]) uint8, at least 1 x 1."""
        (region,) = self._read_fresh(lambda: [self._box_request(box, max_side)])
        return self._box_pixels(region, max_side)

    def _box_request(self, box, max_side: int) -> tuple:
        """``read_box``'s region: (source, x, y, w, h) in the source's pixels."""
        sx, sy, ex, ey = self.square_box
        lo, hi = (math.ceil(sx - 1e-6), math.ceil(sy - 1e-6)), (math.floor(ex), math.floor(ey))
        x0, y0 = (
            int(np.clip(np.floor(v), a, b - 1)) for v, a, b in zip(box[:2], lo, hi, strict=True)
        )
        x1, y1 = (
            int(np.clip(np.ceil(v), a + 1, b)) for v, a, b in zip(box[2:], lo, hi, strict=True)
        )
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        src = self.source_for(max(max(x1 - x0, y1 - y0) / max_side, 1.0))
        d = src.downsample
        sx0, sy0 = math.floor(x0 / d), math.floor(y0 / d)
        sx1, sy1 = max(math.ceil(x1 / d), sx0 + 1), max(math.ceil(y1 / d), sy0 + 1)
        return src, sx0, sy0, sx1 - sx0, sy1 - sy0

    def _box_pixels(self, region: np.ndarray, max_side: int) -> np.ndarray:
        """``read_box``'s region as read, as the reader wants it and at most ``max_side``."""
        region = self._finish(region)
        h, w = region.shape[:2]
        scale = max_side / max(h, w)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(region)

    def read_boxes(
        self, boxes: np.ndarray | None, zoom_side: int = 512, thumbnail_side: int = 1024
    ) -> SlideRead:
        """What ``saccade.predict`` shows of the slide after its saccades, in one read:
        ``boxes`` (T, 4) in the square's pixels (or None) in the slide's level-0 pixels, the
        region under each (``read_box``, at most ``zoom_side``), the thumbnail (``thumbnail``,
        at most ``thumbnail_side``) and the slide's square, shape, scale and path
        (``SlideRead``); the file is checked on disk once for them all."""
        square = self.square_box
        slide_boxes = None if boxes is None else self.to_slide_boxes(boxes)
        wanted = []

        def plan() -> list:
            known = self.__dict__.setdefault("_thumbnails", {})
            h, w = self.image_shape
            boxes = [] if slide_boxes is None else list(slide_boxes)
            sides = [zoom_side] * len(boxes)
            requests = [self._box_request(b, zoom_side) for b in boxes]
            if thumbnail_side not in known:
                sides.append(thumbnail_side)
                requests.append(self._box_request((0, 0, w, h), thumbnail_side))
            wanted[:] = sides
            return requests

        regions = [
            self._box_pixels(r, m) for r, m in zip(self._read_fresh(plan), wanted, strict=True)
        ]
        known = self.__dict__["_thumbnails"]
        if len(regions) > (0 if slide_boxes is None else len(slide_boxes)):
            known[thumbnail_side] = regions.pop()
        return SlideRead(
            square=square,
            boxes=slide_boxes,
            zooms=None if slide_boxes is None else regions,
            thumbnail=known[thumbnail_side],
            image_shape=self.image_shape,
            mpp=self.level0_mpp,
            path=str(self.slide.path),
        )


@dataclass(frozen=True)
class SlideRead:
    """What ``saccade.predict`` shows of a slide (``SlidePyramid.read_boxes``), a plain
    value: T = number of boxes."""

    square: tuple[float, float, float, float]  # the square, the slide's level-0 pixels
    boxes: np.ndarray | None  # (T, 4) float64 x0, y0, x1, y1 in the slide's level-0 pixels
    zooms: list[np.ndarray] | None  # T (h, w[, C]) uint8, the region under each box
    thumbnail: np.ndarray  # (h, w[, C]) uint8, the whole slide, not squared
    image_shape: tuple[int, int]  # (H, W) of the slide's level 0
    mpp: float | None  # µm per level-0 pixel as read (``SlidePyramid.level0_mpp``)
    path: str  # the slide's path or URL
