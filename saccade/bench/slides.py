"""``python -m saccade.bench --suite slides``: predicting from gigapixel slides on disk.

Generated slides (``generate_slide``): a cluttered-MNIST ``sum`` test canvas (100²) upsampled
bilinearly to 6,400², 51,200² and 102,400², each written as a tiled pyramidal TIFF with JPEG
tiles and with deflate tiles (512² tiles; a tile the digits do not reach has no bytes, so a
102,400² slide is a few MB), plus a 40,000 x 30,000 tiled file with no pyramid. They are
written once into ``--slides-dir`` and reused.

For each slide, in a fresh process (``measure_slide``, so that "cold" means an empty tile
cache and the peak memory is the slide's alone): time to open (``Slide`` and
``SlidePyramid``), the proxy, a glimpse of 4 crops of 32² (median, tiles decoded per crop on
first reading; the model's crops span 0.15-0.3 of the side, so on a large slide they read a
coarse level) and a glimpse of 4 crops of 32 level-0 pixels on the digits (cold: the tiles
decoded; warm), ``predict`` cold (open + proxy + predict, the first in the process) and warm
(again on the opened slide), and the peak resident memory. Against: the same model on the
2528² upsampled canvas in memory (warm predict) and on the 100² canvas (the peak-memory
baseline). The unpyramided file is measured twice: with an empty level cache (its first
predict makes the coarse levels in one pass over its tiles) and with the cache filled.

Last, ``bench_tile_access``: one tile decoded by the slide source against zarr over
tifffile's store.

A row per measurement (``model``, ``dataset``, ``side``, ``phase``, ``ms_per_image``,
``peak_mb``, ``what``) plus the slide's details; ``slides_summary`` checks them against the
slide path's targets.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

#: the slides the suite writes: (name, height, width, compression, pyramid)
SLIDES = [
    ("slide-6400-jpeg", 6400, 6400, "jpeg", True),
    ("slide-6400-deflate", 6400, 6400, "deflate", True),
    ("slide-51200-jpeg", 51200, 51200, "jpeg", True),
    ("slide-51200-deflate", 51200, 51200, "deflate", True),
    ("slide-102400-jpeg", 102400, 102400, "jpeg", True),
    ("slide-102400-deflate", 102400, 102400, "deflate", True),
    ("flat-40000x30000-jpeg", 30000, 40000, "jpeg", False),
]
#: the checkpoint predicted with (gray, 100² canvases, proxy 32², crops 32²)
CHECKPOINT = "checkpoints/cluttered-sum-learnt"
TILE = 512
#: pyramid levels stop once the longer side is at most this
MIN_LEVEL_SIDE = 512


def _canvas(height: int, width: int) -> np.ndarray:
    """The (h, w) uint8 test canvas of cluttered sum, index 0: 100², or its middle rows for a
    wider-than-tall slide (the aspect of height x width)."""
    from ..data import make_dataset

    image = make_dataset("cluttered", task="sum", split="test", size=100)[0]["image"]
    rows = round(100 * height / width)
    top = (100 - rows) // 2
    return np.ascontiguousarray(image[top : top + rows])


def _tiles(canvas: np.ndarray, height: int, width: int, bar):
    """The (TILE, TILE) uint8 tiles of ``canvas`` upsampled bilinearly to height x width (as
    cv2.resize INTER_LINEAR), row by row; None for a tile the canvas is black under."""
    ch, cw = canvas.shape
    sy, sx = ch / height, cw / width
    ny, nx = -(-height // TILE), -(-width // TILE)
    for ty in range(ny):
        ys = (np.arange(ty * TILE, (ty + 1) * TILE) + 0.5) * sy - 0.5
        for tx in range(nx):
            bar.update(1)
            xs = (np.arange(tx * TILE, (tx + 1) * TILE) + 0.5) * sx - 0.5
            r0, r1 = max(int(ys[0]) - 1, 0), min(int(ys[-1]) + 2, ch)
            c0, c1 = max(int(xs[0]) - 1, 0), min(int(xs[-1]) + 2, cw)
            if ty + tx > 0 and not canvas[r0:r1, c0:c1].any():
                yield None  # the first tile always has bytes: tifffile reads its dtype
                continue
            mx, my = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
            tile = cv2.remap(canvas, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            tile[(ty * TILE + np.arange(TILE)) >= height] = 0
            tile[:, (tx * TILE + np.arange(TILE)) >= width] = 0
            yield tile


def generate_slide(
    path: Path,
    height: int,
    width: int,
    compression: str,
    pyramid: bool,
    desc: str = "",
    canvas: np.ndarray | None = None,
) -> Path:
    """Write ``canvas`` ((h, w) uint8; default: the test canvas) upsampled bilinearly to
    height x width as a tiled gray TIFF (BigTIFF), with reduced-resolution pages down to
    MIN_LEVEL_SIDE when ``pyramid``; tiles where the canvas is black have no bytes. Written to
    a temporary name and renamed, so a half-written file is never used."""
    import tifffile
    from tqdm import tqdm

    canvas = _canvas(height, width) if canvas is None else np.ascontiguousarray(canvas)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = [(height, width)]
    while pyramid and max(sizes[-1]) > MIN_LEVEL_SIDE:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    total = sum(-(-h // TILE) * -(-w // TILE) for h, w in sizes)
    codec = {"jpeg": "jpeg", "deflate": "zlib"}[compression]
    tmp = path.with_name(path.name + ".tmp")
    with tqdm(total=total, desc=desc or path.name, unit="tile") as bar:
        with tifffile.TiffWriter(tmp, bigtiff=True) as tw:
            for i, (h, w) in enumerate(sizes):
                tw.write(
                    _tiles(canvas, h, w, bar),
                    shape=(h, w),
                    dtype=np.uint8,
                    tile=(TILE, TILE),
                    compression=codec,
                    subfiletype=1 if i else 0,
                    photometric="minisblack",
                )
    os.replace(tmp, path)
    return path


def _rss_peak_mb() -> float:
    from .timing import proc_status_kb

    return proc_status_kb("VmHWM") / 1024


def measure_slide(path: str, checkpoint: str, cache_dir: str, repeats: int) -> dict:
    """In this (fresh) process: the timings and peak memory of one slide (module docstring)."""
    import torch

    import saccade

    from ..data.slide import Slide
    from ..data.slide_pyramid import SlidePyramid
    from ..glimpse import glimpse

    torch.set_num_threads(1)
    model = saccade.load(checkpoint)
    base_mb = _rss_peak_mb()
    out: dict = {}
    t0 = time.perf_counter()
    saccade.predict(model, path, slide_cache_dir=cache_dir)
    out["predict_cold_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    slide = Slide(path)
    pyr = SlidePyramid(slide, channels=1, cache_dir=cache_dir)
    out["open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pyr.proxy(model.config.proxy_size)
    out["proxy_s"] = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    c = model.config
    tiles, times = [], []
    for _ in range(repeats):
        z = torch.rand(4, 3, generator=gen) * 2 - 1
        before = slide.tiles_decoded
        t0 = time.perf_counter()
        glimpse(pyr, z, c.crop_size, c.min_scale, c.max_scale)
        times.append(time.perf_counter() - t0)
        tiles.append((slide.tiles_decoded - before) / 4)
    out["glimpse_cold_s"] = times[0]
    out["tiles_per_crop"] = statistics.mean(tiles)
    t0 = time.perf_counter()
    for _ in range(repeats):
        glimpse(pyr, z, c.crop_size, c.min_scale, c.max_scale)
    out["glimpse_warm_s"] = (time.perf_counter() - t0) / repeats
    # crops of 32 level-0 pixels (spacing 1: level 0) centred on the 4 brightest proxy cells
    # (where the digits are; an empty tile costs nothing to decode)
    proxy = pyr.proxy(c.proxy_size)
    cells = np.argsort(proxy.ravel())[::-1][:4]
    p = c.proxy_size
    centres = [((i % p + 0.5) / p * 2 - 1, (i // p + 0.5) / p * 2 - 1) for i in cells]
    fine = c.crop_size / pyr.shape[0]
    z = torch.tensor([[0.0, x, y] for x, y in centres])
    before = slide.tiles_decoded
    t0 = time.perf_counter()
    glimpse(pyr, z, c.crop_size, fine, fine)
    out["glimpse_level0_cold_s"] = time.perf_counter() - t0
    out["tiles_per_level0_crop"] = (slide.tiles_decoded - before) / 4
    t0 = time.perf_counter()
    for _ in range(repeats):
        glimpse(pyr, z, c.crop_size, fine, fine)
    out["glimpse_level0_warm_s"] = (time.perf_counter() - t0) / repeats
    warm = []
    saccade.predict(model, pyr)  # the warm-up: the predict's own tiles into the tile cache
    before = slide.tiles_decoded
    for _ in range(repeats):
        t0 = time.perf_counter()
        saccade.predict(model, pyr)
        warm.append(time.perf_counter() - t0)
    out["predict_warm_s"] = statistics.median(warm)
    # what makes a warm predict warm: after the warm-up, its tiles come from the tile cache
    # (the same image, the same crops): none is decoded again
    out["warm_tiles_decoded"] = slide.tiles_decoded - before
    out["levels"] = [[lv.height, lv.width, lv.downsample] for lv in slide.levels]
    out["sources"] = [s.downsample for s in pyr.sources]
    out["file_mb"] = os.path.getsize(path) / 2**20
    out["peak_mb_above_model"] = _rss_peak_mb() - base_mb
    out["peak_rss_mb"] = _rss_peak_mb()
    return out


def measure_array(side: int, checkpoint: str, repeats: int) -> dict:
    """In this (fresh) process: predict on the test canvas upsampled to ``side`` in memory."""
    import torch

    import saccade

    torch.set_num_threads(1)
    model = saccade.load(checkpoint)
    image = cv2.resize(_canvas(100, 100), (side, side), interpolation=cv2.INTER_LINEAR)
    base_mb = _rss_peak_mb()
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        saccade.predict(model, image)
        times.append(time.perf_counter() - t0)
    return {
        "predict_cold_s": times[0],
        "predict_warm_s": statistics.median(times[1:]),
        "peak_mb_above_model": _rss_peak_mb() - base_mb,
        "peak_rss_mb": _rss_peak_mb(),
    }


def bench_tile_access(work_dir: Path, repeats: int = 200) -> list[dict]:
    """Decoding one 256² RGB tile, two ways: the slide source's (``TiffPage.decode`` on the
    tile's bytes, read at its offset) and zarr over tifffile's store (``aszarr``), on a
    4096² smooth image written with JPEG and with deflate tiles; the median per tile of
    ``repeats`` random tiles, the tile cache off. zarr is not a dependency: without it, only
    the first is measured."""
    from ..data.slide import Slide, write_slide

    yy, xx = np.mgrid[0:4096, 0:4096]
    gray = (127 + 120 * np.sin(xx * 0.01 + yy * 0.013)).astype(np.uint8)
    image = np.stack([gray, gray[::-1], gray[:, ::-1]], -1)
    rng = np.random.default_rng(0)
    tiles = [(int(y), int(x)) for y, x in rng.integers(0, 16, (repeats, 2))]
    rows = []
    for comp in ("jpeg", "deflate"):
        path = write_slide(work_dir / f"tiles-{comp}.tif", image, 256, comp, pyramid="none")
        slide = Slide(path, cache_bytes=0)
        ways = {"slide source": lambda y, x, s=slide: s.read_region(0, x * 256, y * 256, 256, 256)}
        try:
            import tifffile
            import zarr

            store = tifffile.TiffFile(path).pages[0].aszarr()
            z = zarr.open(store, mode="r")
            ways["zarr (aszarr)"] = lambda y, x, z=z: z[
                y * 256 : y * 256 + 256, x * 256 : x * 256 + 256
            ]
        except ImportError:
            pass
        for what, read in ways.items():
            times = []
            for y, x in tiles:
                t0 = time.perf_counter()
                read(y, x)
                times.append(time.perf_counter() - t0)
            rows.append(
                {
                    "model": "none",
                    "dataset": f"4096² RGB, {comp} 256² tiles",
                    "side": 4096,
                    "phase": "tile",
                    "what": what,
                    "ms_per_image": 1e3 * statistics.median(times),
                    "peak_mb": float("nan"),
                }
            )
    return rows


def _child(kind: str, **kwargs) -> dict:
    """Run ``measure_<kind>(**kwargs)`` in a fresh Python process; its result."""
    cmd = [sys.executable, "-m", "saccade.bench.slides", kind, json.dumps(kwargs)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_slides(
    slides_dir: str | os.PathLike | None = None,
    repeats: int = 10,
    checkpoint: str = CHECKPOINT,
    only: list[str] | None = None,
) -> list[dict]:
    """Generate the slides (once) and measure each in a fresh process; rows as the module
    docstring says."""
    from tqdm import tqdm

    slides_dir = Path(slides_dir or Path(tempfile.gettempdir()) / "saccade-bench-slides")
    slides_dir.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SLIDES if only is None or s[0] in only]
    for name, h, w, comp, pyramid in chosen:
        path = slides_dir / f"{name}.tif"
        if not path.exists():
            generate_slide(path, h, w, comp, pyramid, desc=f"writing {name}")
    rows = []
    common = {"model": "vs", "dataset": "cluttered-sum"}
    for side in (100, 2528):
        r = _child("array", side=side, checkpoint=checkpoint, repeats=repeats)
        rows.append(common | {"side": side, "phase": "array", "what": f"{side}² in memory"} | r)
    for name, h, w, comp, pyramid in tqdm(chosen, desc="slides", unit="slide"):
        path = str(slides_dir / f"{name}.tif")
        with tempfile.TemporaryDirectory() as cache:
            runs = [("cold cache", cache)] + ([("warm cache", cache)] if not pyramid else [])
            for label, cache_dir in runs:
                r = _child(
                    "slide", path=path, checkpoint=checkpoint, cache_dir=cache_dir, repeats=repeats
                )
                what = f"{w}x{h} {comp}, " + ("pyramid" if pyramid else f"no pyramid, {label}")
                rows.append(common | {"side": max(h, w), "phase": "slide", "what": what} | r)
    for r in rows:
        r["ms_per_image"] = 1e3 * r["predict_warm_s"]
        r["peak_mb"] = r["peak_mb_above_model"]
    return rows + bench_tile_access(slides_dir)


def slides_summary(rows: list[dict]) -> list[str]:
    """The slide path's targets against the rows, one line each: met or missed, by how much.
    A 102400² slide's warm predict within 2x the 2528² in-memory predict and its cold one
    within 1 s; each slide's peak RSS within 300 MB of the 100² predict's (500 MB for a slide
    without a pyramid, read cold: its levels are made)."""
    by = {(r["phase"], r["side"], r["what"]): r for r in rows}
    arr = {side: r for (phase, side, _), r in by.items() if phase == "array"}
    slides = [r for r in rows if r["phase"] == "slide"]
    lines = []
    base_warm = arr[2528]["predict_warm_s"] if 2528 in arr else None
    base_mb = arr[100]["peak_rss_mb"] if 100 in arr else None
    for r in slides:
        if r["side"] == 102400 and base_warm:
            ratio = r["predict_warm_s"] / base_warm
            lines.append(
                f"{r['what']}: warm predict {r['predict_warm_s'] * 1e3:.1f} ms = {ratio:.2f}x the "
                f"2528² in-memory predict (target <= 2x: {'met' if ratio <= 2 else 'missed'}); "
                f"cold {r['predict_cold_s']:.2f} s (target <= 1 s: "
                f"{'met' if r['predict_cold_s'] <= 1 else 'missed'})"
            )
        if base_mb is not None:
            above = r["peak_rss_mb"] - base_mb
            limit = 500 if "no pyramid, cold" in r["what"] else 300
            lines.append(
                f"{r['what']}: peak RSS {r['peak_rss_mb']:.0f} MB, {above:+.0f} MB against the "
                f"100² predict (target <= +{limit} MB: {'met' if above <= limit else 'missed'})"
            )
    return lines


if __name__ == "__main__":
    kind, kwargs = sys.argv[1], json.loads(sys.argv[2])
    result = measure_slide(**kwargs) if kind == "slide" else measure_array(**kwargs)
    print(json.dumps(result))
