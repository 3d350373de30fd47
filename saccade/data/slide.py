"""The slide source: a tiled, pyramidal image file (a whole-slide scan, a tiled BigTIFF, a
cloud-optimised GeoTIFF) opened without decoding it, read region by region, tile by tile.

``Slide(path)`` exposes the file's levels (height, width and downsample of each, finest
first; downsamples need not be powers of two: Aperio levels are often 4x and 16x) and
``read_region(level, x, y, w, h)``, which decodes only the tiles the region touches, keeps
them in a tile cache bounded by bytes (``cache_bytes``, default ``DEFAULT_CACHE_BYTES``) and
counts each decode (``tiles_decoded``: tests and the benchmark read it).

Coordinates: unlike OpenSlide, whose location is in level-0 pixels, ``read_region`` takes
its location **in the pixels of the level it reads** (x, y, w, h all in level pixels): exact
for any downsample, where a level-0 location is ambiguous between the pixels of a 4.0003x
level. ``Slide.level0_to_level`` converts. Parts of a region outside the level read as zeros.

Backends, chosen by the file (``backend="auto"``) or by name:

- ``tifffile``: TIFF, BigTIFF, OME-TIFF (SubIFD pyramids), page pyramids (reduced-resolution
  pages, SubFileType 1), Aperio SVS, generic tiled TIFFs. Each tile is read from its offset
  and decoded with ``TiffPage.decode`` (imagecodecs: JPEG, JPEG 2000, LZW, deflate, ...);
  docs/performance.md says why this and not zarr.
- ``openslide``: the formats only OpenSlide reads (Hamamatsu NDPI, MIRAX MRXS, Leica SCN,
  Philips, Ventana, Zeiss, DICOM, Sakura): ``read_region`` on blocks of ``OPENSLIDE_TILE``
  pixels, the alpha channel dropped (transparent areas read as black).
- ``wsidicom``: a folder of DICOM WSI instances (``saccade.data.dicom`` checks it first: one
  series, no instance missing), one frame a tile; without wsidicom installed such a folder
  goes to OpenSlide, in blocks of its own tiles.
- ``pillow``: small untiled files (PNG, JPEG, striped TIFF, ...), decoded whole once, under
  ``saccade.image_io.MAX_PIXELS``; a larger untiled file is refused with how to make a
  tiled pyramid of it.

Pixels come out as uint8 (h, w) for grayscale files and (h, w, 3) RGB for colour ones
(``channels`` is 1 or 3); 16-bit samples are scaled to 8 bits.

Bad input raises ValueError naming the file: a missing file, a format or codec nothing here
reads (naming the package that does), a corrupt or truncated tile (naming the level), an
untiled file over the pixel cap. A file that changes on disk (size or mtime) is opened again
and its cached tiles dropped (``reopened`` counts it).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR
from types import SimpleNamespace

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import image_io
from . import dicom, remote

#: the tile cache's default bound, bytes of decoded pixels
DEFAULT_CACHE_BYTES = 256 * 2**20
#: OpenSlide reads blocks of this many pixels a side (its own tiles are hidden)
OPENSLIDE_TILE = 512
#: OpenSlide's vendors that its backend reads; TIFF-based others ('aperio', 'generic-tiff')
#: go to tifffile
OPENSLIDE_VENDORS = (
    "hamamatsu",
    "mirax",
    "leica",
    "philips",
    "ventana",
    "zeiss",
    "dicom",
    "sakura",
)
#: formats no backend here reads, by suffix: what reads them
OTHER_READERS = {
    ".vsi": "Bio-Formats (convert: bfconvert in.vsi out.ome.tif)",
    ".lif": "readlif (or Bio-Formats' bfconvert)",
    ".nd2": "nd2 (or Bio-Formats' bfconvert)",
    ".isyntax": "pyisyntax (or Philips' SDK)",
    ".jp2": "glymur (or vips: vips tiffsave in.jp2 out.tif --tile --pyramid)",
    ".zarr": "zarr (an OME-Zarr store is a folder: convert to OME-TIFF)",
}
#: how to make a tiled pyramid, for the messages that refuse an untiled file
HOW_TO_TILE = image_io.HOW_TO_TILE

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True)
class Level:
    """One level of a slide: its size in its own pixels and its downsample (level-0 pixels
    per pixel of this level; the mean of the width and height ratios, as OpenSlide's)."""

    height: int
    width: int
    downsample: float


def _to_uint8(tile: np.ndarray) -> np.ndarray:
    """(h, w, s) samples of any integer dtype as uint8 (16-bit scaled by 1/257)."""
    if tile.dtype == np.uint8:
        return tile
    if tile.dtype == np.uint16:
        return ((tile.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ValueError(f"samples of dtype {tile.dtype}")


def _pixels(samples: np.ndarray, channels: int) -> np.ndarray:
    """(h, w, s) uint8 samples as (h, w) gray or (h, w, 3) RGB (alpha and extras dropped)."""
    return samples[:, :, 0] if channels == 1 else samples[:, :, :3]


#: µm in one unit of OME's PhysicalSizeXUnit, and of TIFF's ResolutionUnit (2 inch, 3 cm,
#: 4 mm, 5 µm; 1 is none: no physical scale)
_OME_UNITS_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}
_RESUNIT_UM = {2: 25400.0, 3: 1e4, 4: 1e3, 5: 1.0}
_SVS_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")


def _mpp_pair(x, y) -> tuple[float, float] | None:
    """(x, y) as floats when both are finite and positive, else None."""
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0 else None


def _tiff_mpp(tif, page) -> tuple[float, float] | None:
    """µm per pixel (x, y) of level 0 of a TIFF: the SVS ImageDescription's ``MPP = ``, else
    OME's PhysicalSizeX/Y, else the resolution tags (with a physical ResolutionUnit)."""
    description = page.description or ""
    if description.startswith("Aperio"):
        found = _SVS_MPP.search(description)
        if found and (mpp := _mpp_pair(found.group(1), found.group(1))):
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
                    mpp = _mpp_pair(float(a["PhysicalSizeX"]) * ux, float(y) * uy)
                except ValueError:
                    mpp = None
                if mpp:
                    return mpp
    unit = _RESUNIT_UM.get(int(page.resolutionunit or 1))
    xres, yres = page.resolution
    if unit and xres and yres:
        return _mpp_pair(unit / xres, unit / yres)
    return None


def _parse_color(value: str | None, channels: int) -> tuple[int, ...] | None:
    """OpenSlide's ``openslide.background-color`` ('RRGGBB' hex) as ``channels`` values."""
    if not value or not re.fullmatch(r"[0-9A-Fa-f]{6}", value.strip()):
        return None
    rgb = tuple(int(value.strip()[i : i + 2], 16) for i in (0, 2, 4))
    return rgb if channels == 3 else (round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]),)


class _TiffBackend:
    """tifffile: each tile read from its offset and decoded alone."""

    name = "tifffile"

    def __init__(self, path: Path | remote.RemotePath, file=None):
        import tifffile

        self.path = path
        # a remote slide: its RemoteFile (range requests), named by its URL
        self.tif = (
            tifffile.TiffFile(path) if file is None else tifffile.TiffFile(file, name=path.name)
        )
        try:
            self._open(tifffile)
        except Exception:
            self.tif.close()
            raise

    def _open(self, tifffile) -> None:
        name = (
            remote.shown(str(self.path))
            if isinstance(self.path, remote.RemotePath)
            else self.path.name
        )
        if not self.tif.series:
            raise ValueError(f"slide file {name!r} holds no image")
        series = self.tif.series[0]
        pages = [lv.keyframe for lv in series.levels]
        for i, page in enumerate(pages):
            if page.planarconfig == 2 and page.samplesperpixel > 1:
                raise ValueError(
                    f"slide file {name!r}: level {i} stores its colour planes apart "
                    "(PlanarConfiguration 2); accepted: interleaved samples (convert with "
                    "`vips tiffsave in.tif out.tif --tile --pyramid`)"
                )
            if page.dtype not in (np.uint8, np.uint16):
                raise ValueError(
                    f"slide file {name!r}: level {i} has {page.dtype} samples; accepted: "
                    "8- or 16-bit unsigned integers"
                )
            if page.compression != 1:
                try:
                    tifffile.TIFF.DECOMPRESSORS[page.compression]
                except KeyError:
                    try:
                        codec = tifffile.COMPRESSION(page.compression).name
                    except ValueError:
                        codec = "an unknown codec"
                    raise ValueError(
                        f"slide file {name!r}: level {i} is compressed with {codec} (TIFF "
                        f"compression {int(page.compression)}), which tifffile with this "
                        "imagecodecs cannot decode; accepted: the codecs of imagecodecs (JPEG, "
                        "JPEG 2000, JPEG XL, LZW, deflate, zstd, WebP, ...); a vendor codec "
                        "needs its vendor's reader (OpenSlide: openslide-python), or convert "
                        "with `vips tiffsave in out.tif --tile --pyramid --compression jpeg`"
                    ) from None
        self.pages = pages
        self.tiled = pages[0].is_tiled
        self.channels = 1 if pages[0].samplesperpixel < 3 else 3
        self.shapes = [(int(p.imagelength), int(p.imagewidth)) for p in pages]
        try:
            self.mpp = _tiff_mpp(self.tif, pages[0])
        except Exception:  # odd metadata never stops a read: no physical scale then
            self.mpp = None
        self.background = None

    def tile_shape(self, level: int) -> tuple[int, int]:
        """(th, tw) of the level's tiles (strips: rows per strip x the width)."""
        page = self.pages[level]
        if page.is_tiled:
            return int(page.tilelength), int(page.tilewidth)
        return min(int(page.rowsperstrip), int(page.imagelength)), int(page.imagewidth)

    def read_tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        """Tile (ty, tx) of ``level`` as (h, w, s) samples of its dtype, cut to the level's
        extent; an empty tile (no bytes: a sparse file) is zeros."""
        page = self.pages[level]
        th, tw = self.tile_shape(level)
        h, w = self.shapes[level]
        index = ty * math.ceil(w / tw) + tx
        offset, count = int(page.dataoffsets[index]), int(page.databytecounts[index])
        fh = self.tif.filehandle
        data = None
        if count > 0 and offset > 0:
            with fh.lock:
                fh.seek(offset)
                data = fh.read(count)
            if len(data) != count:
                raise ValueError(f"tile {index} is truncated ({len(data)} of {count} bytes)")
        tile, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        eh, ew = min(th, h - ty * th), min(tw, w - tx * tw)
        spp = int(page.samplesperpixel)
        if tile is None:
            return np.zeros((eh, ew, spp), page.dtype)
        tile = tile.reshape(tile.shape[-3:])  # (1, th, tw, s) -> (th, tw, s)
        return tile[:eh, :ew]

    def close(self) -> None:
        self.tif.close()


class _OpenSlideBackend:
    """OpenSlide: blocks of OPENSLIDE_TILE pixels through its ``read_region`` (RGBA); with
    ``native_tiles`` (a DICOM folder), blocks of each level's own tiles (OpenSlide 4's
    ``openslide.level[i].tile-width``/``-height``), so that a block decodes one frame."""

    name = "openslide"

    def __init__(
        self, path: Path, mpp: tuple[float, float] | None = None, native_tiles: bool = False
    ):
        import openslide

        try:
            self.osr = openslide.OpenSlide(str(path))
        except openslide.OpenSlideError as e:
            raise ValueError(
                f"slide file {path.name!r} cannot be opened by OpenSlide ({e})"
            ) from None
        self.channels = 3
        props = self.osr.properties
        self.mpp = mpp or _mpp_pair(props.get("openslide.mpp-x"), props.get("openslide.mpp-y"))
        self.background = _parse_color(props.get("openslide.background-color"), 3)
        self.shapes = [(int(h), int(w)) for w, h in self.osr.level_dimensions]
        self.downsamples = [float(d) for d in self.osr.level_downsamples]
        self.tiled = True
        self.tiles = [(OPENSLIDE_TILE, OPENSLIDE_TILE)] * len(self.shapes)
        if native_tiles:
            for i in range(len(self.shapes)):
                try:
                    th = int(props[f"openslide.level[{i}].tile-height"])
                    tw = int(props[f"openslide.level[{i}].tile-width"])
                except (KeyError, ValueError):
                    continue
                if 64 <= th <= 4096 and 64 <= tw <= 4096:
                    self.tiles[i] = (th, tw)

    def tile_shape(self, level: int) -> tuple[int, int]:
        return self.tiles[level]

    def read_tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        h, w = self.shapes[level]
        th, tw = self.tiles[level]
        eh, ew = min(th, h - ty * th), min(tw, w - tx * tw)
        d = self.downsamples[level]
        location = (round(tx * tw * d), round(ty * th * d))
        rgba = np.asarray(self.osr.read_region(location, level, (ew, eh)))
        return rgba[:, :, :3]  # premultiplied: a transparent pixel is black

    def close(self) -> None:
        self.osr.close()


class _PillowBackend:
    """Pillow: an untiled file decoded whole, once (under the pixel cap)."""

    name = "pillow"
    tiled = False
    background = None

    def __init__(
        self, path: Path, array: np.ndarray | None = None, mpp: tuple[float, float] | None = None
    ):
        self.mpp = mpp
        if array is None:
            Image.MAX_IMAGE_PIXELS = None  # the cap is checked here, from the header
            with Image.open(path) as im:
                _check_untiled(path, im.height, im.width)
                im.load()
                gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
                what = f"slide file {path.name!r}"
                array = image_io.pil_to_gray(im, what) if gray else image_io.pil_to_rgb(im)
        self.array = array
        self.channels = 1 if array.ndim == 2 else 3
        self.shapes = [array.shape[:2]]

    def close(self) -> None:
        self.array = None


def _check_untiled(path: Path, height: int, width: int) -> None:
    """Refuse an untiled image over the pixel cap: it would be decoded whole."""
    if height * width > image_io.MAX_PIXELS:
        raise ValueError(
            f"slide file {path.name!r} is an untiled {width}x{height} image "
            f"({height * width:,} pixels): reading it means decoding it whole, and at most "
            f"{image_io.MAX_PIXELS:,} pixels are decoded whole; {HOW_TO_TILE}"
        )


def _openslide_vendor(path: Path) -> str | None:
    try:
        import openslide
    except ImportError:  # pragma: no cover - openslide-bin is a dependency
        return None
    try:
        return openslide.OpenSlide.detect_format(str(path))
    except Exception:
        return None


def _open_backend(path: Path, backend: str):
    """The backend that reads ``path`` (``backend`` 'auto' chooses by the file's content)."""
    name = path.name
    if backend not in ("auto", "tifffile", "openslide", "pillow", "wsidicom"):
        raise ValueError(
            f"backend={backend!r}; accepted: 'auto', 'tifffile', 'openslide', 'pillow', "
            "'wsidicom' (DICOM folders)"
        )
    if path.is_dir():  # a DICOM WSI folder (Slide checked it holds .dcm files)
        if backend not in ("auto", "openslide", "wsidicom"):
            raise ValueError(
                f"backend={backend!r} for the DICOM folder {str(path)!r}; accepted: 'auto', "
                "'wsidicom' or 'openslide'"
            )
        found = dicom.check_folder(path)
        reader = dicom.open_backend(found, backend)
        if reader is not None:
            return reader
        return _OpenSlideBackend(found.instance, found.mpp, native_tiles=True)
    if backend == "wsidicom":
        raise ValueError(
            f"backend 'wsidicom' reads DICOM folders; {name!r} is a file (a single DICOM file "
            "is read by 'openslide')"
        )
    with open(path, "rb") as f:
        head = f.read(8)
    is_tiff = head[:4] in _TIFF_MAGIC
    if backend == "auto":
        vendor = _openslide_vendor(path)
        if vendor in OPENSLIDE_VENDORS:
            backend = "openslide"
        elif is_tiff:
            backend = "tifffile"
        elif vendor is not None:
            backend = "openslide"
        else:
            backend = "pillow"
    if backend == "openslide":
        return _OpenSlideBackend(path)
    if backend == "tifffile":
        if not is_tiff:
            raise ValueError(
                f"slide file {name!r} is not a TIFF file; backend 'tifffile' reads TIFFs"
            )
        try:
            tiff = _TiffBackend(path)
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"slide file {name!r} is a corrupt TIFF ({e})") from None
        if tiff.tiled:
            return tiff
        h, w = tiff.shapes[0]
        _check_untiled(path, h, w)
        array = _pixels(_to_uint8(tiff.pages[0].asarray().reshape(h, w, -1)), tiff.channels)
        tiff.close()
        return _PillowBackend(path, np.ascontiguousarray(array), tiff.mpp)
    try:
        return _PillowBackend(path)
    except UnidentifiedImageError:
        reader = OTHER_READERS.get(path.suffix.lower())
        seems = f" ({path.suffix} files are read by {reader})" if reader else ""
        raise ValueError(
            f"slide file {name!r} is in a format nothing here reads{seems}; accepted: tiled "
            "TIFF, BigTIFF, OME-TIFF and SVS (tifffile), NDPI, MRXS, SCN, CZI and the other "
            "formats of OpenSlide (openslide-python), PNG, JPEG, WebP, BMP (Pillow)"
        ) from None
    except (OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"slide file {name!r} is truncated or corrupt ({e})") from None


def _open_remote_backend(path: remote.RemotePath, file, backend: str):
    """The backend that reads the remote ``file`` (a ``remote.RemoteFile``): tifffile, the
    one backend here that reads a file object tile by tile."""
    url = remote.shown(str(path))
    if backend not in ("auto", "tifffile"):
        raise ValueError(
            f"backend={backend!r} for the remote slide {url!r}; accepted: 'auto' or "
            "'tifffile' (OpenSlide and Pillow read local files only)"
        )
    head = file.read(8)
    file.seek(0)
    if head[:4] not in _TIFF_MAGIC:
        raise ValueError(
            f"remote slide {url!r} is not a TIFF file; remote slides are read tile by tile "
            "from TIFF-based files (tiled TIFF, BigTIFF, OME-TIFF, SVS): download other "
            "formats (NDPI, MRXS, DICOM, ...) and open the local copy"
        )
    try:
        tiff = _TiffBackend(path, file)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"remote slide {url!r} is a corrupt TIFF ({e})") from None
    if not tiff.tiled:
        h, w = tiff.shapes[0]
        tiff.close()
        raise ValueError(
            f"remote slide {url!r} is an untiled {w}x{h} TIFF: it cannot be read by range "
            f"requests; {HOW_TO_TILE}"
        )
    return tiff


def is_slide(path: str | os.PathLike) -> bool:
    """Whether ``path`` is read as a slide (tile by tile): a TIFF whose first image is tiled,
    or a file OpenSlide recognises, or a folder of DICOM ``.dcm`` instances; False for
    ordinary images (decoded whole, as always) and for a path that is none of these. Reads
    only headers. A URL (``s3://``, ``https://``, ...:
    ``saccade.data.remote``) is always read as a slide, and not fetched here: ``Slide``
    says what is wrong with one it cannot read."""
    if remote.is_url(path):
        return True
    path = Path(path)
    if dicom.is_dicom_folder(path):
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    if head in _TIFF_MAGIC:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                return bool(tif.series) and tif.series[0].levels[0].keyframe.is_tiled
        except Exception:
            return False  # a corrupt TIFF: the image reader says what is wrong with it
    return _openslide_vendor(path) is not None


class Slide:
    """A tiled image file, read lazily (module docstring).

    Args:
        path: the file, or its URL (``s3://``, ``gs://``, ``https://``, ...: read by range
            requests through fsspec, ``saccade.data.remote``; a tiled TIFF-based file).
        cache_bytes: bound of the tile cache, bytes of decoded pixels (0: no cache).
        backend: 'auto' (by the file's content), 'tifffile', 'openslide', 'pillow' or
            'wsidicom' (a DICOM folder).

    Attributes:
        levels: the file's levels, finest first (``Level``: height, width, downsample).
        shape: (H, W) of level 0.  channels: 1 (gray) or 3 (RGB).
        tiles_decoded: tiles decoded so far (cache misses).  reopened: times the file was
        opened again because it changed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        backend: str = "auto",
    ):
        self._remote: remote.RemoteFile | None = None
        if isinstance(path, remote.RemotePath):
            path = path.url
        if remote.is_url(path):
            self.path: Path | remote.RemotePath = remote.RemotePath(path)
        else:
            self.path = Path(path)
            if not self.path.is_file() and not dicom.is_dicom_folder(self.path):
                raise ValueError(
                    f"slide file {str(path)!r} does not exist or is not a file (nor a folder "
                    "of DICOM .dcm instances)"
                )
        if int(cache_bytes) < 0:
            raise ValueError(f"cache_bytes={cache_bytes!r} must be >= 0")
        self.cache_bytes = int(cache_bytes)
        self.backend_name = backend
        self.tiles_decoded = 0
        self.reopened = 0
        self._lock = threading.RLock()
        self._tiles: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._open()

    def _open(self) -> None:
        self._pid = os.getpid()  # the process these handles belong to
        if isinstance(self.path, remote.RemotePath):
            self._open_remote()
        else:
            self._stamp = self._local_stamp()
            if self._stamp[0] == 0:
                raise ValueError(f"slide file {self.path.name!r} is empty (0 bytes)")
            self._backend = _open_backend(self.path, self.backend_name)
        self.__dict__.pop("_background", None)
        b = self._backend
        self.channels: int = b.channels
        h0, w0 = b.shapes[0]
        if min(h0, w0) < 1:
            raise ValueError(f"slide file {self.name!r} has an empty level 0")
        self.shape: tuple[int, int] = (h0, w0)
        downs = getattr(b, "downsamples", None) or [(w0 / w + h0 / h) / 2 for h, w in b.shapes]
        self.levels: list[Level] = [
            Level(h, w, float(d)) for (h, w), d in zip(b.shapes, downs, strict=True)
        ]

    def _local_stamp(self) -> tuple[int, int]:
        """(size, mtime_ns) of the file; of a DICOM folder, (bytes of its .dcm files, the
        latest mtime of them and of the folder: an instance added, removed or rewritten)."""
        stat = self.path.stat()
        if not S_ISDIR(stat.st_mode):
            return stat.st_size, stat.st_mtime_ns
        size, mtime = 0, stat.st_mtime_ns
        for p in self.path.iterdir():
            if p.suffix.lower() == ".dcm":
                st = p.stat()
                size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
        return size, mtime

    @property
    def mpp(self) -> tuple[float, float] | None:
        """Microns per level-0 pixel (x, y), or None when the file does not say: read from
        the SVS ImageDescription (``MPP = 0.5``), OME's PhysicalSizeX/Y, the TIFF resolution
        tags (ResolutionUnit inch, centimetre, ...), a DICOM folder's PixelSpacing, or
        OpenSlide's ``openslide.mpp-x``/``-y``, in that order of the backend's."""
        return self._backend.mpp

    @property
    def background(self) -> tuple[int, ...]:
        """The slide's background, one uint8 value per channel (``channels`` of them):
        OpenSlide's ``openslide.background-color`` where the file has one, else the median of
        the border of the coarsest level (a ring 2% of its side wide; at most 8 patches of
        64 pixels where that level is large): bright glass for a stained slide, black for a
        slide on black. Computed once per opening."""
        known = self.__dict__.get("_background")
        if known is None:
            known = self._backend.background or self._estimate_background()
            self._background = known
        return known

    def _estimate_background(self) -> tuple[int, ...]:
        level = len(self.levels) - 1
        lv = self.levels[level]
        h, w = lv.height, lv.width
        if h * w <= 2048 * 2048:
            pixels = self.read_region(level, 0, 0, w, h, cache=False)
            ring = max(1, round(0.02 * max(h, w)))
            mask = np.ones((h, w), bool)
            mask[ring : h - ring, ring : w - ring] = False
            border = pixels[mask]
        else:
            p = 64
            spots = [(x, y) for x in (0, (w - p) // 2, w - p) for y in (0, (h - p) // 2, h - p)]
            spots.remove(((w - p) // 2, (h - p) // 2))  # the centre is tissue, not border
            patches = [self.read_region(level, x, y, p, p, cache=False) for x, y in spots]
            border = np.concatenate([q.reshape(-1, *q.shape[2:]) for q in patches])
        border = border.reshape(len(border), -1)
        return tuple(int(v) for v in np.median(border, axis=0).round())

    def _open_remote(self) -> None:
        """Open the URL (one request for its size and tag), then its TIFF header by range
        requests."""
        file = remote.open_url(str(self.path))
        try:
            if file.size == 0:
                raise ValueError(f"remote slide {self.name!r} is empty (0 bytes)")
            self._backend = _open_remote_backend(self.path, file, self.backend_name)
            if file.failure is not None:  # tifffile logs a failed header read and goes on
                self._backend.close()
                raise remote.RemoteError(file.failure)
        except BaseException:
            file.close()
            raise
        self._remote = file
        self._stamp = file.stamp
        self._checked = time.monotonic()

    @property
    def name(self) -> str:
        """What messages call the slide: its file name, or the whole URL of a remote one."""
        return remote.shown(str(self.path)) if self.is_remote else self.path.name

    @property
    def fetched(self) -> tuple[int, int]:
        """(range requests, bytes) fetched from the server since a remote slide was (last)
        opened, blocks found in the disk cache not counted; (0, 0) for a local file."""
        return self._remote.fetched if self._remote is not None else (0, 0)

    @property
    def is_remote(self) -> bool:
        """Whether the slide is read over the network (a URL)."""
        return isinstance(self.path, remote.RemotePath)

    def cache_key(self) -> tuple[str, os.stat_result | SimpleNamespace]:
        """(key, stat) that ``saccade.data.cache.PyramidCache`` keys made levels by: the
        resolved path and its ``os.stat``; for a URL, the URL and (size, tag number)."""
        if self.is_remote or self.path.is_dir():
            size, tag = self._stamp
            key = str(self.path) if self.is_remote else str(self.path.resolve())
            return key, SimpleNamespace(st_size=size, st_mtime_ns=tag)
        return str(self.path.resolve()), os.stat(self.path)

    @property
    def backend(self) -> str:
        """The backend reading the file: 'tifffile', 'openslide', 'pillow' or 'wsidicom'."""
        return self._backend.name

    @property
    def tiled(self) -> bool:
        """Whether level 0 is read tile by tile (False: decoded whole, an untiled file)."""
        return self._backend.tiled

    @property
    def stamp(self) -> tuple[int, int]:
        """(size in bytes, mtime_ns) of the file when opened; of a remote slide (size in
        bytes, a number of its ETag or Last-Modified)."""
        return self._stamp

    def close(self) -> None:
        with self._lock:
            self._backend.close()
            if self._remote is not None:
                self._remote.close()
            self._drop_tiles()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        """Pickled (to a DataLoader worker), a slide travels as its path and settings; the
        receiver opens its own handle."""
        return {"path": self.path, "cache_bytes": self.cache_bytes, "backend": self.backend_name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["cache_bytes"], state["backend"])

    def __repr__(self) -> str:
        sizes = ", ".join(f"{lv.width}x{lv.height}@{lv.downsample:.4g}" for lv in self.levels)
        return f"Slide({self.name!r}, {self.backend}, {sizes})"

    def level0_to_level(self, level: int, x: float, y: float) -> tuple[float, float]:
        """A level-0 location (pixels) in the pixels of ``level``."""
        d = self.levels[self._check_level(level)].downsample
        return x / d, y / d

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample is at most ``downsample`` (OpenSlide's
        ``get_best_level_for_downsample``); 0 when none is."""
        best = 0
        for i, lv in enumerate(self.levels):
            if lv.downsample <= downsample * (1 + 1e-6):
                best = i if lv.downsample >= self.levels[best].downsample else best
        return best

    def _check_level(self, level) -> int:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            raise ValueError(f"level={level!r} must be an integer")
        if not 0 <= int(level) < len(self.levels):
            raise ValueError(
                f"level={level!r}: slide file {self.name!r} has levels 0..{len(self.levels) - 1}"
            )
        return int(level)

    def refresh(self) -> bool:
        """Open the file again (dropping every cached tile) when its size or mtime changed
        since it was opened; whether it did. ``read_region`` calls it each time."""
        with self._lock:
            before = self.reopened
            self._check_fresh()
            return self.reopened != before

    def _check_fresh(self) -> None:
        """Open the file again (dropping every cached tile) when its size or mtime changed
        (a remote slide: its size or ETag, asked at most every ``remote.RECHECK_S`` s); open
        handles of its own in a process forked since (a DataLoader worker)."""
        if self._pid != os.getpid():
            self._reopen_after_fork()
            return
        if self._remote is not None:
            if time.monotonic() - self._checked < remote.RECHECK_S:
                return
            self._checked = time.monotonic()
            if self._remote.changed():
                warnings.warn(
                    f"remote slide {self.name!r} changed on the server (its size or ETag): "
                    "opened again, its cached tiles dropped",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self._backend.close()
                self._remote.close()
                self._drop_tiles()
                self._open()
                self.reopened += 1
            return
        try:
            stamp = self._local_stamp()
        except OSError as e:
            raise ValueError(
                f"slide file {str(self.path)!r} cannot be read any more ({e})"
            ) from None
        if stamp != self._stamp:
            self._backend.close()
            self._drop_tiles()
            self._open()
            self.reopened += 1

    def _reopen_after_fork(self) -> None:
        """In a forked process, new handles: a file descriptor shared with the parent shares
        its offset (reads would interleave with the parent's: tiffslide#14), and an fsspec
        session belongs to the parent's event loop. The parent's local handle is closed here
        (this process's copy of it); the remote one is let go unclosed (closing it would go
        through the parent's loop). The decoded tiles stay: they are this process's memory."""
        if self._remote is None:
            self._backend.close()
        before = self._stamp
        self._open()
        if self._stamp != before:  # changed meanwhile, too
            self._drop_tiles()
            self.reopened += 1

    def _drop_tiles(self) -> None:
        self._tiles.clear()
        self._cached_bytes = 0

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded tiles held by the cache now (at most ``cache_bytes``)."""
        return self._cached_bytes

    def _tile(self, level: int, ty: int, tx: int, cache: bool = True) -> np.ndarray:
        """Tile (ty, tx) of ``level`` as (h, w) or (h, w, 3) uint8, from the cache or decoded
        (and kept, with ``cache``)."""
        key = (level, ty, tx)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        try:
            samples = self._backend.read_tile(level, ty, tx)
            tile = np.ascontiguousarray(_pixels(_to_uint8(samples), self.channels))
        except remote.RemoteError:
            raise
        except Exception as e:
            raise ValueError(
                f"slide file {self.name!r}: tile ({ty}, {tx}) of level {level} cannot be "
                f"decoded ({type(e).__name__}: {e}); the file is corrupt or truncated"
            ) from None
        self.tiles_decoded += 1
        if cache and tile.nbytes <= self.cache_bytes:
            self._tiles[key] = tile
            self._cached_bytes += tile.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, old = self._tiles.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return tile

    def tiles_of(self, level: int, x: int, y: int, w: int, h: int) -> int:
        """How many tiles the region (level pixels) touches (0 when it misses the level)."""
        level = self._check_level(level)
        lh, lw = self.levels[level].height, self.levels[level].width
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, lw), min(y + h, lh)
        if x0 >= x1 or y0 >= y1 or not self.tiled:
            return 0
        th, tw = self._backend.tile_shape(level)
        return ((y1 - 1) // th - y0 // th + 1) * ((x1 - 1) // tw - x0 // tw + 1)

    def read_region(
        self,
        level: int,
        x: int,
        y: int,
        w: int,
        h: int,
        out: np.ndarray | None = None,
        cache: bool = True,
    ) -> np.ndarray:
        """The region of ``level`` at (x, y), w x h, all in that level's pixels.

        Returns (h, w) uint8 for a gray slide, (h, w, 3) for an RGB one; parts outside the
        level are zeros. Decodes only the tiles the region touches (those not in the cache).
        ``out``: an array of that shape to fill instead (zeroed first). ``cache=False``: the
        tiles decoded are not kept (a one-pass read).
        """
        level = self._check_level(level)
        x, y, w, h = int(x), int(y), int(w), int(h)
        if w < 0 or h < 0:
            raise ValueError(f"region size w={w}, h={h} must be >= 0")
        shape = (h, w) if self.channels == 1 else (h, w, 3)
        if out is None:
            out = np.zeros(shape, np.uint8)
        else:
            if out.shape != shape or out.dtype != np.uint8:
                raise ValueError(f"out must be uint8 of shape {shape}, got {out.dtype} {out.shape}")
            out[...] = 0
        with self._lock:
            self._check_fresh()
            lv = self.levels[level]
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, lv.width), min(y + h, lv.height)
            if x0 >= x1 or y0 >= y1:
                return out
            b = self._backend
            if not b.tiled:
                out[y0 - y : y1 - y, x0 - x : x1 - x] = b.array[y0:y1, x0:x1]
                return out
            th, tw = b.tile_shape(level)
            for ty in range(y0 // th, (y1 - 1) // th + 1):
                for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                    tile = self._tile(level, ty, tx, cache)
                    # the tile's part inside the region, in level pixels
                    ys, ye = max(y0, ty * th), min(y1, ty * th + tile.shape[0])
                    xs, xe = max(x0, tx * tw), min(x1, tx * tw + tile.shape[1])
                    if ys < ye and xs < xe:
                        out[ys - y : ye - y, xs - x : xe - x] = tile[
                            ys - ty * th : ye - ty * th, xs - tx * tw : xe - tx * tw
                        ]
        return out


def write_slide(
    path: str | os.PathLike,
    image: np.ndarray,
    tile: int = 256,
    compression: str = "jpeg",
    pyramid: str = "subifds",
    min_side: int = 256,
    quality: int = 90,
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
    """
    import tifffile

    image = np.asarray(image)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or image.ndim == 3
        and image.shape[2] != 3
    ):
        raise ValueError(
            f"image must be (H, W) or (H, W, 3) uint8, got {image.dtype} {image.shape}"
        )
    levels = [image]
    if pyramid != "none":
        while max(levels[-1].shape[:2]) > min_side:
            lv = levels[-1]
            h, w = lv.shape[:2]
            half = cv2.resize(lv, (max(w // 2, 1), max(h // 2, 1)), interpolation=cv2.INTER_AREA)
            levels.append(half.reshape(half.shape[:2] + lv.shape[2:]))
    codec = {"jpeg": "jpeg", "deflate": "zlib", "lzw": "lzw", "none": None}[compression]
    args = {
        "tile": (tile, tile),
        "compression": codec,
        "photometric": "minisblack" if image.ndim == 2 else "rgb",
    }
    if codec == "jpeg":
        args["compressionargs"] = {"level": quality}
    path = Path(path)
    with tifffile.TiffWriter(path, bigtiff=image.size > 2**31) as tw:
        if pyramid == "subifds":
            tw.write(levels[0], subifds=len(levels) - 1, **args)
            for lv in levels[1:]:
                tw.write(lv, subfiletype=1, **args)
        else:
            for i, lv in enumerate(levels):
                tw.write(lv, subfiletype=1 if i else 0, **args)
    return path
