"""DICOM whole-slide images: the folder of ``.dcm`` instances an archive hands out for one
series, opened as a ``saccade.data.slide.Slide`` through OpenSlide 4 (which reads a DICOM
WSI from any of its instances and finds the others in the same folder).

Before OpenSlide sees the folder, ``check_folder`` reads the instances' headers (pydicom,
``stop_before_pixels``: no pixel data) and refuses, naming the folder and what it found:

- a folder with no DICOM instance, or none of a whole-slide image (VL Whole Slide Microscopy
  Image Storage);
- instances of two or more series (one folder per series is accepted);
- missing instances: no full-resolution level (every VOLUME instance is RESAMPLED: the scan
  itself is missing), a concatenation with parts missing, or a level whose instances hold
  fewer frames than its TILED_FULL grid needs.

It returns the ``DicomFolder``: the instance OpenSlide opens (the first of level 0), the
files (what the slide's freshness stamp is made of) and level 0's pixel spacing as µm per
pixel (x, y).

The tiles are read by wsidicom when it is installed (``WsiDicomBackend``: one frame a tile),
else by OpenSlide in blocks of the level's own tiles. wsidicom measured 3.4x faster a frame
on the 256-pixel JPEG frames of tests/test_dicom.py's slide (0.57 ms against OpenSlide's
1.9 ms, the same pixels; docs/own-images.md#dicom-wsi-folders). pydicom and wsidicom are an
extra: ``pip install 'saccade[dicom]'``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

#: VL Whole Slide Microscopy Image Storage
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
EXTRA = "pip install 'saccade[dicom]'"


@dataclass(frozen=True)
class DicomFolder:
    """What ``check_folder`` found: ``instance`` (the file OpenSlide opens), ``files`` (every
    instance of the series, sorted), ``levels`` ((width, height) of each, finest first) and
    ``mpp`` ((x, y) µm per level-0 pixel from its PixelSpacing, or None), ``channels`` (1
    for MONOCHROME, 3 for colour)."""

    instance: Path
    files: tuple[Path, ...]
    levels: tuple[tuple[int, int], ...]
    mpp: tuple[float, float] | None
    channels: int = 3


def is_dicom_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding at least one ``.dcm`` file (not recursive)."""
    try:
        return path.is_dir() and any(
            p.suffix.lower() == ".dcm" and p.is_file() for p in path.iterdir()
        )
    except OSError:
        return False


def _pixel_spacing(ds) -> tuple[float, float] | None:
    """(x, y) µm per pixel of an instance (PixelSpacing is (row, column) spacing in mm)."""
    try:
        groups = ds.SharedFunctionalGroupsSequence[0]
        row, col = (float(v) for v in groups.PixelMeasuresSequence[0].PixelSpacing)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        spacing = ds.get("PixelSpacing")
        if spacing is None or len(spacing) != 2:
            return None
        row, col = (float(v) for v in spacing)
    if not (row > 0 and col > 0):
        return None
    return col * 1000.0, row * 1000.0


def check_folder(folder: Path) -> DicomFolder:
    """The DICOM WSI in ``folder``, checked (module docstring); ValueError naming the folder
    and what is wrong, ImportError naming the extra without pydicom."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise ImportError(
            f"opening the DICOM folder {str(folder)!r} needs pydicom: {EXTRA}"
        ) from None
    name = str(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".dcm" and p.is_file())
    if not files:
        raise ValueError(
            f"slide folder {name!r} holds no .dcm file; accepted: a folder of the DICOM "
            "instances of one whole-slide image series"
        )
    volumes, series, unreadable = [], defaultdict(list), []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError) as e:
            unreadable.append(f"{path.name} ({e})")
            continue
        if str(ds.get("SOPClassUID", "")) != WSI_SOP_CLASS:
            continue
        series[str(ds.get("SeriesInstanceUID", "?"))].append(path)
        image_type = [str(v).upper() for v in ds.get("ImageType", [])]
        if len(image_type) > 2 and image_type[2] == "VOLUME":
            volumes.append((path, ds, image_type))
    if unreadable:
        raise ValueError(
            f"slide folder {name!r}: {len(unreadable)} file(s) are not readable DICOM: "
            + "; ".join(unreadable[:3])
        )
    if not series:
        raise ValueError(
            f"slide folder {name!r} holds {len(files)} DICOM file(s), none of a whole-slide "
            "image (VL Whole Slide Microscopy Image Storage); accepted: a DICOM WSI series"
        )
    if len(series) > 1:
        found = ", ".join(f"{uid} ({len(p)} instances)" for uid, p in sorted(series.items()))
        raise ValueError(
            f"slide folder {name!r} holds {len(series)} DICOM series: {found}; accepted: one "
            "series per folder (move each series to a folder of its own)"
        )
    if not volumes:
        raise ValueError(f"slide folder {name!r} holds no VOLUME instance (only labels/overviews)")
    if all(len(t) > 3 and t[3] == "RESAMPLED" for _, _, t in volumes):
        raise ValueError(
            f"slide folder {name!r} is missing instances: every VOLUME instance is RESAMPLED, so "
            "the full-resolution level (the scan) is not in the folder; accepted: the complete "
            "series as the archive exports it"
        )
    by_level = defaultdict(list)
    for path, ds, _ in volumes:
        by_level[(int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows))].append((path, ds))
    for (cols, rows), instances in by_level.items():
        _check_level(name, cols, rows, instances)
    levels = sorted(by_level, key=lambda wh: -wh[0] * wh[1])
    base_path, base = sorted(by_level[levels[0]], key=lambda pd: pd[0])[0]
    return DicomFolder(
        base_path,
        tuple(p for s in series.values() for p in sorted(s)),
        tuple(levels),
        _pixel_spacing(base),
        1 if int(base.get("SamplesPerPixel", 3)) == 1 else 3,
    )


def _check_level(name: str, cols: int, rows: int, instances: list) -> None:
    """A level's instances hold all its frames: no concatenation part missing, and as many
    frames as a TILED_FULL grid of its tiles, focal planes and optical paths needs."""
    concatenations = defaultdict(set)
    for _, ds in instances:
        uid = ds.get("ConcatenationUID")
        if uid is not None:
            total = int(ds.get("InConcatenationTotalNumber", 0) or 0)
            concatenations[(str(uid), total)].add(int(ds.get("InConcatenationNumber", 0) or 0))
    for (_, total), parts in concatenations.items():
        if total and len(parts) < total:
            raise ValueError(
                f"slide folder {name!r} is missing instances: level {cols}x{rows} is a "
                f"concatenation of {total} instances, of which {len(parts)} are here"
            )
    ds0 = instances[0][1]
    if str(ds0.get("DimensionOrganizationType", "")).upper() != "TILED_FULL":
        return  # a sparse level lists its tiles: absent ones are blank, not missing
    grid = math.ceil(cols / int(ds0.Columns)) * math.ceil(rows / int(ds0.Rows))
    # at least one whole plane (more focal planes or optical paths hold more)
    frames = sum(int(ds.get("NumberOfFrames", 1) or 1) for _, ds in instances)
    if frames < grid:
        raise ValueError(
            f"slide folder {name!r} is missing instances: level {cols}x{rows} needs {grid} "
            f"frames per plane, its {len(instances)} instance(s) hold {frames}"
        )


class WsiDicomBackend:
    """wsidicom: each tile of a ``Slide`` is one frame of the level's instance, decoded by
    ``WsiDicom.read_tile`` (a ``saccade.data.slide_backends.SlideBackend``)."""

    name = "wsidicom"
    tiled = True
    background = None
    downsamples = None

    def __init__(self, found: DicomFolder):
        from wsidicom import WsiDicom

        self.wsi = WsiDicom.open(list(found.files))
        self.levels = sorted(self.wsi.levels, key=lambda lv: -lv.size.width * lv.size.height)
        self.shapes = [(int(lv.size.height), int(lv.size.width)) for lv in self.levels]
        self.tiles = [(int(lv.tile_size.height), int(lv.tile_size.width)) for lv in self.levels]
        self.channels = found.channels
        self.mpp = found.mpp

    def tile_shape(self, level: int) -> tuple[int, int]:
        return self.tiles[level]

    def read_tile(self, level: int, ty: int, tx: int):
        """(h, w, s) uint8 of frame (ty, tx) of ``level``, cut to the level's extent."""
        import numpy as np

        image = self.wsi.read_tile(self.levels[level].level, (tx, ty))
        pixels = np.asarray(image.convert("L" if self.channels == 1 else "RGB"))
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    def close(self) -> None:
        self.wsi.close()


def open_backend(found: DicomFolder, backend: str):
    """The reader of ``found``: wsidicom ('auto' when it is installed, or 'wsidicom'), else
    ``None`` (the caller opens OpenSlide)."""
    if backend == "openslide":
        return None
    try:
        import wsidicom  # noqa: F401
    except ImportError:
        if backend == "wsidicom":
            raise ImportError(f"backend 'wsidicom' needs wsidicom: {EXTRA}") from None
        return None
    return WsiDicomBackend(found)
