"""Writing a tiled pyramidal TIFF (``write_slide``) or an Aperio-style SVS (``write_svs``):
the kinds of file ``saccade.data.slide.Slide`` reads tile by tile, made from an image in
memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..glimpse import halve
from ..image_io import gray_or_rgb


def write_slide(
    path: str | os.PathLike,
    image: np.ndarray,
    tile: int = 256,
    compression: str = "jpeg",
    pyramid: str = "subifds",
    min_side: int = 256,
    quality: int = 90,
    mpp: float | None = None,
) -> Path:
    """Write ``image`` as a tiled pyramidal TIFF with tifffile (what tests, the benchmark and
    the worked example in docs/own-images.md use; ``vips tiffsave --tile --pyramid`` makes
    the same kind of file).

    Args:
        image: (H, W) or (H, W, 3) uint8.
        tile: tile side (a multiple of 16).
        compression: 'jpeg', 'deflate' (zlib), 'lzw' or 'none'.
        pyramid: 'subifds' (reduced levels as SubIFDs of level 0, as OME-TIFF), 'pages'
            (reduced-resolution pages, SubFileType 1, as generic tiled TIFFs) or 'none'.
        min_side: halve (2x2 area means) while the longer side exceeds this.
        mpp: µm per pixel of ``image``, recorded in level 0's resolution tags (pixels per
            centimetre), which ``Slide.mpp`` reads; None: no scale recorded.
    """
    import tifffile

    image = gray_or_rgb(image)
    levels = [image]
    if pyramid != "none":
        while max(levels[-1].shape[:2]) > min_side:
            levels.append(halve(levels[-1], pad_odd=False))
    codec = {"jpeg": "jpeg", "deflate": "zlib", "lzw": "lzw", "none": None}[compression]
    args = {
        "tile": (tile, tile),
        "compression": codec,
        "photometric": "minisblack" if image.ndim == 2 else "rgb",
    }
    if codec == "jpeg":
        args["compressionargs"] = {"level": quality}
    scale = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": 3}
    path = Path(path)
    with tifffile.TiffWriter(path, bigtiff=image.size > 2**31) as tw:
        if pyramid == "subifds":
            tw.write(levels[0], subifds=len(levels) - 1, **args, **scale)
            for lv in levels[1:]:
                tw.write(lv, subfiletype=1, **args)
        else:
            for i, lv in enumerate(levels):
                tw.write(lv, subfiletype=1 if i else 0, **args, **(scale if i == 0 else {}))
    return path


def write_svs(path: str | os.PathLike, image: np.ndarray, mpp: float = 0.5) -> Path:
    """``image`` (H, W, 3) uint8 as an Aperio-style SVS: JPEG tiled pages halved (OpenCV's
    area average) down to 256 px, each with the ImageDescription, ``MPP = mpp`` among it,
    that OpenSlide's and tiffslide's Aperio readers and wsidicomizer look for. Written to a
    temporary name, then moved into place. Returns the path."""
    import cv2
    import tifffile

    path = Path(path)
    levels = [image]
    while max(levels[-1].shape[:2]) > 256:
        h, w = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    h, w = image.shape[:2]
    head = f"Aperio Image Library v12.0.15 \n{w}x{h} [0,100 {w}x{h}] (256x256) JPEG/RGB Q=90"
    tmp = path.with_name(path.name + ".tmp")
    with tifffile.TiffWriter(tmp) as tw:
        for i, level in enumerate(levels):
            tw.write(
                level,
                tile=(256, 256),
                compression="jpeg",
                photometric="rgb",
                subfiletype=1 if i else 0,
                description=f"{head}|AppMag = 20|MPP = {mpp}",
            )
    os.replace(tmp, path)
    return path
