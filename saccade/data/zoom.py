"""Zoom: procedural gigapixel canvases whose class is readable neither from the proxy nor at any
one scale (docs/zoom.md has the design and why each part is there).

A canvas of side S (default 32,768; 16,384 to 262,144) holds, from coarse to fine:

1. **regions**: ``N_REGIONS`` dim discs of radius S/16, each of its own random grey. They are
   what the proxy shows, and they all look alike there.
2. **cues**, one per region, at a random point inside it: in one region (the target) a
   **ring**, in every other a **square outline** of the same perimeter and stroke, so the same
   ink: the proxy (S/64 px a pixel) cannot tell them apart; a crop of about a cue's width
   (~1,000 px) can.
3. **the digit**: an MNIST digit at native size (28 px) at the centre of the ring; at the
   centre of every square, a mark of random thick strokes (Megapixel MNIST's noise pattern) of
   about the same ink; each on a black 48 px square. The label is the digit's class. The digit is readable only in a crop of
   about 100 px or less; at the cue's scale it is one sample, like the marks.

Nothing is ever materialised: ``ZoomCanvas.read_window(level, x0, y0, w, h)`` renders the
window of level ``level`` (downsample 2**level) from the shapes alone. It is an image source
of the glimpse (``saccade.glimpse.ImageSource``), like an in-memory ``Pyramid`` or a slide.
Two renderers (``RENDERS``; the dataset's ``render``, saved in its spec):

- ``"max"``, the first version and the default (every checkpoint before stage 5 of
  scripts/zoom.sh was trained on it): each shape's coverage is averaged over up to 4 x 4
  samples of an output pixel, then the shapes are composited by their maximum. A thin cue
  averages below its region's grey and vanishes from the coarse levels: on the 128² proxy,
  55% of the cues leave a mark at 32,768², 12% at 65,536².
- ``"mean"``: the shapes are composited at each of up to 16 x 16 samples, which are then
  averaged: the area average of level 0 (exact up to level 4), so that every cue is a
  brighter smudge on the proxy at every side. docs/zoom.md, "What the proxy shows".

``python -m saccade.data zoom --out DIR`` writes canvases as pyramidal TIFFs
(``write_zoom_tiff``), one subfolder per class, for the slide path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .base import DatasetSpec, sample_rng
from .megapixel import noise_pattern
from .mnist import check_split, load_mnist
from .proxy import add_noise, check_noise

#: regions per canvas
N_REGIONS = 4
#: a region's radius, as a fraction of the side
REGION_RADIUS = 1 / 16
#: a cue's outer radius and stroke, level-0 pixels (fixed: the cue is an object, not a layout)
CUE_RADIUS, CUE_STROKE = 480.0, 48.0
#: the digits' side, level-0 pixels (MNIST's native size)
DIGIT_SIDE = 28
#: the black square under each digit or mark, level-0 pixels: a digit is read on black, as
#: MNIST's are (its ink on the proxy: 0.5% of a region's pixel at 32,768²)
CLEAR_SIDE = 48
#: sides accepted (a region must hold its cue: S/16 >= 2 cue radii + margin)
MIN_SIDE, MAX_SIDE = 16384, 262144
#: samples per axis of an output pixel, at most, per renderer (below)
SUPERSAMPLE = {"max": 4, "mean": 16}
#: how a coarse pixel composites its samples (the module docstring), and the default: the
#: first version, which every checkpoint saved before the option was trained on
RENDERS = ("max", "mean")
DEFAULT_RENDER = "max"


@dataclass(frozen=True)
class Shape:
    """One object of a canvas, in level-0 pixels: ``kind`` is "disc", "ring", "square"
    (an outline of half-side ``radius``), "clear" (a black square of half-side ``radius``,
    drawn over what is under it) or "digit" (``digit``: a 28 x 28 uint8 image, a
    digit or a mark, whose top-left corner is at (cx, cy) - 14, ``radius`` 14); ``value`` its grey level
    (a digit: its maximum)."""

    kind: str
    cx: float
    cy: float
    radius: float
    stroke: float
    value: int
    digit: np.ndarray | None = None

    def bounds(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 in level-0 pixels."""
        r = self.radius
        return self.cx - r, self.cy - r, self.cx + r, self.cy + r

    def coverage(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """The shape's value in [0, 1] at level-0 sample points X (n,) columns, Y (m,) rows:
        (m, n) float32."""
        dx, dy = X[None, :] - self.cx, Y[:, None] - self.cy
        if self.kind == "disc":
            inside = dx * dx + dy * dy <= self.radius**2
        elif self.kind == "ring":
            d = np.sqrt(dx * dx + dy * dy)
            inside = (d <= self.radius) & (d > self.radius - self.stroke)
        elif self.kind == "square":
            d = np.maximum(np.abs(dx), np.abs(dy))
            inside = (d <= self.radius) & (d > self.radius - self.stroke)
        elif self.kind == "clear":  # a square of half-side ``radius`` where the ground is black
            inside = (np.abs(dx) < self.radius) & (np.abs(dy) < self.radius)
        else:  # a digit, nearest-neighbour from its 28 x 28 pixels
            col = np.floor(X - (self.cx - DIGIT_SIDE / 2)).astype(np.int64)
            row = np.floor(Y - (self.cy - DIGIT_SIDE / 2)).astype(np.int64)
            ok_c, ok_r = (col >= 0) & (col < DIGIT_SIDE), (row >= 0) & (row < DIGIT_SIDE)
            out = np.zeros((len(Y), len(X)), np.float32)
            if ok_c.any() and ok_r.any():
                patch = self.digit[np.ix_(row[ok_r], col[ok_c])].astype(np.float32) / 255
                out[np.ix_(ok_r, ok_c)] = patch
            return out
        return inside.astype(np.float32)


class ZoomCanvas:
    """A procedural square canvas of side ``side`` made of ``shapes``, read level by level.

    The image-source interface of the glimpse: ``shape`` (S, S), ``channels`` 1, ``gray``,
    ``max_level``, ``read_window(level, x0, y0, ww, wh, out=None)``; plus ``proxy(size)``,
    ``coarse(first)`` (itself: nothing is held) and ``thumbnail``."""

    channels = 1
    gray = True
    #: where the image lies in its square (a slide's is centred in one): a canvas is its square
    offset = (0, 0)

    def __init__(
        self, side: int, shapes: list[Shape], min_side: int = 16, render: str = DEFAULT_RENDER
    ):
        self.side = int(side)
        self.render = check_render(render)
        self.shape = (self.side, self.side)
        self.shapes = list(shapes)
        self.max_level = max(0, math.ceil(math.log2(self.side / min_side)))

    def read_window(
        self, level: int, x0: int, y0: int, ww: int, wh: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The (wh, ww) uint8 window at (x0, y0) of level ``level`` (its pixels; zeros outside
        the canvas), rendered from the shapes."""
        level = min(max(int(level), 0), self.max_level)
        f = 2.0**level
        if out is None:
            out = np.zeros((wh, ww), np.uint8)
        # the level-l pixels inside the canvas (the rest stays 0)
        n_side = math.ceil(self.side / f)
        xs, xe = max(x0, 0), min(x0 + ww, n_side)
        ys, ye = max(y0, 0), min(y0 + wh, n_side)
        if xs >= xe or ys >= ye:
            return out
        X0, X1, Y0, Y1 = xs * f, min(xe * f, self.side), ys * f, min(ye * f, self.side)
        n = int(min(f, SUPERSAMPLE[self.render]))
        sub = (np.arange(n) + 0.5) * (f / n)  # sample offsets inside a pixel
        mean = self.render == "mean"  # composite each sample, then average (else: average first)
        acc = None
        for shape in self.shapes:
            bx0, by0, bx1, by1 = shape.bounds()
            if bx1 < X0 or bx0 > X1 or by1 < Y0 or by0 > Y1:
                continue
            # only the output pixels the shape's bounds touch
            px0, px1 = max(xs, int(bx0 // f)), min(xe, int(bx1 // f) + 1)
            py0, py1 = max(ys, int(by0 // f)), min(ye, int(by1 // f) + 1)
            if px0 >= px1 or py0 >= py1:
                continue
            X = (np.arange(px0, px1)[:, None] * f + sub[None]).ravel()
            Y = (np.arange(py0, py1)[:, None] * f + sub[None]).ravel()
            cov = shape.coverage(X, Y)  # (m n, k n): at the samples
            k = n if mean else 1
            if not mean:
                cov = cov.reshape(py1 - py0, n, px1 - px0, n).mean((1, 3))
            if acc is None:
                acc = np.zeros(((ye - ys) * k, (xe - xs) * k), np.float32)
            region = acc[(py0 - ys) * k : (py1 - ys) * k, (px0 - xs) * k : (px1 - xs) * k]
            if shape.kind == "clear":  # what is under it is wiped (by the share it covers)
                region *= 1 - cov
            else:
                np.maximum(region, cov * shape.value, out=region)
        if acc is not None:
            if mean and n > 1:
                acc = acc.reshape(ye - ys, n, xe - xs, n).mean((1, 3))
            out[ys - y0 : ye - y0, xs - x0 : xe - x0] = np.clip(np.rint(acc), 0, 255)
        return out

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the image itself: the canvas's (as a slide's ``image_shape``)."""
        return self.shape

    def level_shape(self, level: int) -> tuple[int, int]:
        """(h, w) of level ``level``."""
        n = math.ceil(self.side / 2**level)
        return n, n

    def proxy(self, size: int, noise: float = 0.0, rng=None) -> np.ndarray:
        """The (size, size) float32 proxy in [0, 1]: the area average of the finest level at
        least ``size`` wide (never wider than 4x), plus ``noise``."""
        level = max(0, min(self.max_level, int(math.floor(math.log2(self.side / size)))))
        n = self.level_shape(level)[0]
        image = self.read_window(level, 0, 0, n, n)
        proxy = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return add_noise(proxy.astype(np.float32) / 255, noise, rng)

    def thumbnail(self, max_side: int = 1024) -> np.ndarray:
        """The canvas as an (s, s) uint8 image of side at most ``max_side`` (a whole level)."""
        level = max(0, math.ceil(math.log2(self.side / max_side)))
        n = self.level_shape(level)[0]
        return self.read_window(level, 0, 0, n, n)

    def read_box(self, box, max_side: int = 512) -> np.ndarray:
        """The canvas under ``box`` (x0, y0, x1, y1, level-0 pixels) at the finest level
        whose window is at most ``max_side`` pixels a side: what a zoom shows."""
        x0, y0, x1, y1 = (float(v) for v in box)
        side = max(x1 - x0, y1 - y0, 1.0)
        level = max(0, min(self.max_level, math.ceil(math.log2(max(side / max_side, 1.0)))))
        f = 2**level
        ww = max(1, math.ceil((x1 - x0) / f))
        wh = max(1, math.ceil((y1 - y0) / f))
        return self.read_window(level, math.floor(x0 / f), math.floor(y0 / f), ww, wh)

    def coarse(self, first: int) -> ZoomCanvas:
        """Itself: a procedural canvas holds no pixels to drop."""
        return self

    @property
    def nbytes(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"ZoomCanvas(side={self.side}, shapes={len(self.shapes)})"


def check_render(render, name: str = "render") -> str:
    """``render`` if it is one of ``RENDERS``; ValueError naming ``name`` otherwise."""
    if render not in RENDERS:
        raise ValueError(f"{name}={render!r} is not known; accepted: {list(RENDERS)}")
    return render


def check_side(size) -> int:
    """A zoom canvas side: an integer in [MIN_SIDE, MAX_SIDE] (any, not only powers of two)."""
    if isinstance(size, (tuple, list)):
        raise ValueError(f"size={size!r}: a zoom canvas is square; give its side, one integer")
    if isinstance(size, bool) or int(size) != size:
        raise ValueError(f"size={size!r} must be an integer side in pixels")
    if not MIN_SIDE <= int(size) <= MAX_SIDE:
        raise ValueError(
            f"size={size!r}: a zoom canvas side must be between {MIN_SIDE} and {MAX_SIDE} "
            f"pixels (a region, S/16, must hold its cue of {2 * CUE_RADIUS:.0f} px)"
        )
    return int(size)


@dataclass
class ZoomSpec(DatasetSpec):
    """``DatasetSpec`` plus the renderer (a checkpoint saved before it existed: "max")."""

    render: str = DEFAULT_RENDER


class Zoom(torch.utils.data.Dataset):
    """The zoom benchmark: ``make_dataset("zoom", split=..., size=SIDE, seed=...)``.

    Task ``ring`` (10 classes): the digit inside the ring. A sample is a dict: ``image`` (a
    ``ZoomCanvas``), ``proxy`` (p, p) float32, ``label``, ``boxes`` (1, 4) the deciding
    digit's box (level-0 pixels), ``cue_boxes`` (N_REGIONS, 4) the cues' boxes (the ring's
    first), ``region_boxes`` (N_REGIONS, 4) the regions' (the ring's region first).
    ``render``: the canvases' renderer, "max" (the default) or "mean" (module docstring).
    """

    name = "zoom"
    tasks = {"ring": 10}
    channels = 1

    def __init__(
        self,
        task: str = "ring",
        split: str = "train",
        size: int = 32768,
        seed: int = 0,
        proxy_size: int | None = None,
        proxy_noise: float = 0.0,
        full_size: int | None = None,
        length: int | None = None,
        render: str = DEFAULT_RENDER,
    ):
        if task not in self.tasks:
            raise ValueError(f"task={task!r} is not known for dataset 'zoom'; accepted: ['ring']")
        if full_size is not None and int(full_size) != int(size):
            raise ValueError("full_size: a zoom canvas is rendered at its side (give size only)")
        self.task, self.split = task, check_split(split)
        self.size = self.side = check_side(size)
        self.proxy_size = 64 if proxy_size is None else int(proxy_size)
        if not 8 <= self.proxy_size <= 1024:
            raise ValueError(f"proxy_size={proxy_size!r} must be between 8 and 1024")
        self.proxy_noise = check_noise(proxy_noise)
        self.seed = int(seed)
        self.render = check_render(render)
        self.length = 60000 if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"length={length!r} must be a positive integer")
        self.images, self.labels = load_mnist(self.split)
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(10)]

    n_classes = 10

    @property
    def class_names(self) -> list[str]:
        return [str(i) for i in range(10)]

    @property
    def spec(self) -> ZoomSpec:
        return ZoomSpec(
            self.name, self.task, self.split, self.size, self.side, self.proxy_size,
            self.proxy_noise, self.seed, self.length, self.render,
        )  # fmt: skip

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of sample ``index``; stream 1 draws the proxy noise."""
        return sample_rng(self.seed, self.split, index, stream, salt=(7,))

    def layout(self, rng: np.random.Generator) -> tuple[list[Shape], dict]:
        """The shapes of one canvas (regions, then cues, then digits) and its annotations."""
        S = self.side
        R = S * REGION_RADIUS
        centres: list[tuple[float, float]] = []
        while len(centres) < N_REGIONS:  # regions apart by at least half a radius
            c = tuple(rng.uniform(R * 1.1, S - R * 1.1, 2))
            if all(math.dist(c, o) > 2.5 * R for o in centres):
                centres.append(c)
        label = int(rng.integers(10))
        regions, cues, clears, digits = [], [], [], []
        ann = {"region_boxes": [], "cue_boxes": [], "boxes": []}
        for i, (cx, cy) in enumerate(centres):
            regions.append(Shape("disc", cx, cy, R, R, int(rng.integers(40, 81))))
            angle, dist = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform()) * 0.45 * R
            qx, qy = cx + dist * np.cos(angle), cy + dist * np.sin(angle)
            # the same perimeter (and stroke): the same ink, so the proxy shows one smudge
            radius = CUE_RADIUS if i == 0 else CUE_RADIUS * np.pi / 4
            cues.append(
                Shape("ring" if i == 0 else "square", qx, qy, radius, CUE_STROKE,
                      int(rng.integers(170, 231)))
            )  # fmt: skip
            if i == 0:
                digit = self.images[int(rng.choice(self.by_class[label]))]
            else:
                digit = noise_pattern(rng, DIGIT_SIDE)
            qx, qy = round(qx), round(qy)  # on the pixel grid: exact at level 0
            clears.append(Shape("clear", qx, qy, CLEAR_SIDE / 2, 0, 0))
            digits.append(Shape("digit", qx, qy, DIGIT_SIDE / 2, 0, 255, digit))
            ann["region_boxes"].append(regions[-1].bounds())
            ann["cue_boxes"].append(cues[-1].bounds())
            ann["boxes"].append(digits[-1].bounds())
        ann = {k: np.asarray(v, np.float32) for k, v in ann.items()}
        ann["boxes"] = ann["boxes"][:1]  # the deciding object: the ring's digit
        return regions + cues + clears + digits, ann | {"label": label}

    def canvas(self, index: int) -> tuple[ZoomCanvas, dict]:
        """Canvas ``index`` and its annotations."""
        shapes, ann = self.layout(self.rng(index))
        return ZoomCanvas(self.side, shapes, render=self.render), ann

    def __getitem__(self, index: int) -> dict:
        if not 0 <= int(index) < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        canvas, ann = self.canvas(int(index))
        proxy = canvas.proxy(self.proxy_size, self.proxy_noise, self.rng(index, 1))
        return {"image": canvas, "proxy": proxy, **ann}


def write_zoom_tiff(
    canvas: ZoomCanvas, path, tile: int = 512, compression: str = "zlib", min_side: int = 16
):
    """Write ``canvas`` as a tiled pyramidal TIFF (tifffile; levels as SubIFDs of level 0,
    each rendered by ``read_window`` tile by tile, so memory stays at a tile's), down to
    ``min_side`` (the glimpse's coarsest level): level l of the file is the canvas's level l,
    so a crop read from the file is the procedural crop. Returns the path."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    levels = [0]
    while canvas.level_shape(levels[-1])[0] > min_side:
        levels.append(levels[-1] + 1)

    def tiles(level: int):
        n = canvas.level_shape(level)[0]
        for y in range(0, n, tile):
            for x in range(0, n, tile):
                yield canvas.read_window(level, x, y, tile, tile)

    options = {"tile": (tile, tile), "compression": compression, "dtype": np.uint8}
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for i, level in enumerate(levels):
            extra = {"subifds": len(levels) - 1} if i == 0 else {"subfiletype": 1}
            tif.write(tiles(level), shape=canvas.level_shape(level), **options, **extra)
    return path


def write_zoom_folder(
    out, n: int, size: int = 32768, seed: int = 0, split: str = "test", render: str = DEFAULT_RENDER
):
    """Canvases 0..n-1 of ``make_dataset("zoom", split=split, size=size, seed=seed,
    render=render)`` as OUT/CLASS/zoom-INDEX.tif (one subfolder per class: ``--dataset folder
    --root OUT``), with a progress bar. Returns the paths."""
    from tqdm import tqdm

    if int(n) < 1:
        raise ValueError(f"n={n!r} must be >= 1")
    ds = Zoom(split=split, size=size, seed=seed, length=int(n), render=render)
    paths = []
    for i in tqdm(range(int(n)), desc="zoom canvases", unit="tiff"):
        canvas, ann = ds.canvas(i)
        paths.append(write_zoom_tiff(canvas, Path(out) / str(ann["label"]) / f"zoom-{i}.tif"))
    return paths
