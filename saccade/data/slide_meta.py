"""A slide's metadata beyond its pixels: its physical scale (µm per level-0 pixel) and its
background colour, as ``saccade.data.slide.Slide.mpp`` and ``.background`` report them.

- ``tiff_mpp``: the scale of a TIFF: the SVS ImageDescription's ``MPP = ``, else OME's
  PhysicalSizeX/Y (with their units), else the resolution tags (with a physical
  ResolutionUnit); ``mpp_pair`` checks a pair (OpenSlide's ``openslide.mpp-x``/``-y``).
- ``check_mpp``: a scale given by the user (``--mpp``, ``--default-mpp``) or read from a
  file, refused unless finite and in (0, ``MAX_MPP``] µm per pixel.
- ``parse_color``: OpenSlide's ``openslide.background-color``.
- ``estimate_background``: the median of a level's border, where the file names no colour.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

#: µm in one unit of OME's PhysicalSizeXUnit, and of TIFF's ResolutionUnit (2 inch, 3 cm,
#: 4 mm, 5 µm; 1 is none: no physical scale)
_OME_UNITS_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}
_RESUNIT_UM = {2: 25400.0, 3: 1e4, 4: 1e3, 5: 1.0}
#: the coarsest scale accepted, µm per pixel (a 1x objective scans at about 10)
MAX_MPP = 100.0
_SVS_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")


def mpp_pair(x, y) -> tuple[float, float] | None:
    """(x, y) as floats when both are finite and positive, else None."""
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0 else None


def check_mpp(value, what: str) -> float:
    """``value`` as µm per pixel; ValueError naming ``what`` (a flag, or a slide's recorded
    MPP) unless it is a finite number in (0, MAX_MPP]."""
    try:
        mpp = float(value)
    except (TypeError, ValueError):
        mpp = math.nan
    if not (math.isfinite(mpp) and 0.0 < mpp <= MAX_MPP) or isinstance(value, bool):
        raise ValueError(
            f"{what}: {value!r} is not a scale; accepted: a finite number of µm per pixel in "
            f"(0, {MAX_MPP:g}] (about 0.25 at 40x, 0.5 at 20x)"
        )
    return mpp


def tiff_mpp(tif, page) -> tuple[float, float] | None:
    """µm per pixel (x, y) of level 0 of a TIFF: the SVS ImageDescription's ``MPP = ``, else
    OME's PhysicalSizeX/Y, else the resolution tags (with a physical ResolutionUnit)."""
    description = page.description or ""
    if description.startswith("Aperio"):
        found = _SVS_MPP.search(description)
        if found and (mpp := mpp_pair(found.group(1), found.group(1))):
            return mpp
    if tif.is_ome and tif.ome_metadata:
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(tif.ome_metadata)
        except ET.ParseError:
            root = None
        pixels = (
            None
            if root is None
            else next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
        )
        if pixels is not None and "PhysicalSizeX" in pixels.attrib:
            a = pixels.attrib
            ux = _OME_UNITS_UM.get(a.get("PhysicalSizeXUnit", "µm"))
            uy = _OME_UNITS_UM.get(a.get("PhysicalSizeYUnit", "µm"))
            if ux and uy:
                y = a.get("PhysicalSizeY", a["PhysicalSizeX"])
                try:
                    mpp = mpp_pair(float(a["PhysicalSizeX"]) * ux, float(y) * uy)
                except ValueError:
                    mpp = None
                if mpp:
                    return mpp
    unit = _RESUNIT_UM.get(int(page.resolutionunit or 1))
    xres, yres = page.resolution
    if unit and xres and yres:
        return mpp_pair(unit / xres, unit / yres)
    return None


def parse_color(value: str | None, channels: int) -> tuple[int, ...] | None:
    """OpenSlide's ``openslide.background-color`` ('RRGGBB' hex) as ``channels`` values."""
    if not value or not re.fullmatch(r"[0-9A-Fa-f]{6}", value.strip()):
        return None
    rgb = tuple(int(value.strip()[i : i + 2], 16) for i in (0, 2, 4))
    return rgb if channels == 3 else (round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]),)


def border_median(image: np.ndarray) -> tuple[int, ...]:
    """The median of an (h, w) or (h, w, c) image's outer ring (2% of its side, at least a
    pixel), one value per channel."""
    h, w = image.shape[:2]
    ring = max(1, round(0.02 * max(h, w)))
    mask = np.ones((h, w), bool)
    mask[ring : h - ring, ring : w - ring] = False
    border = image[mask].reshape(int(mask.sum()), -1)
    return tuple(int(v) for v in np.median(border, axis=0).round())


def estimate_background(
    read: Callable[[int, int, int, int], np.ndarray], height: int, width: int
) -> tuple[int, ...]:
    """The background of a level ``height`` x ``width`` whose ``read(x, y, w, h)`` returns
    its (h, w) or (h, w, c) uint8 pixels: the median of its border, one value per channel
    (a ring 2% of its side wide; at most 8 patches of 64 pixels where the level is large)."""
    h, w = height, width
    if h * w <= 2048 * 2048:
        return border_median(read(0, 0, w, h))
    p = 64
    spots = [(x, y) for x in (0, (w - p) // 2, w - p) for y in (0, (h - p) // 2, h - p)]
    spots.remove(((w - p) // 2, (h - p) // 2))  # the centre is tissue, not border
    patches = [read(x, y, p, p) for x, y in spots]
    border = np.concatenate([q.reshape(-1, *q.shape[2:]) for q in patches])
    border = border.reshape(len(border), -1)
    return tuple(int(v) for v in np.median(border, axis=0).round())
