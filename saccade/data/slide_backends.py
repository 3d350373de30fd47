"""The backends of ``saccade.data.slide.Slide``: what reads each kind of file, and
``open_backend`` (``open_remote_backend`` for a URL), which picks one.

Chosen by the file (``backend="auto"``) or by name:

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

Each implements ``SlideBackend``, what ``Slide`` reads a file through (a new format is one
class against it); an untiled file is one tile, decoded whole when opened.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import image_io
from . import dicom, remote
from .slide_meta import mpp_pair, parse_color, tiff_mpp

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
#: the first 4 bytes of a TIFF and of a BigTIFF, either byte order
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class SlideBackend(Protocol):
    """What ``saccade.data.slide.Slide`` needs of a backend.

    Attributes:
        name: 'tifffile', 'openslide', 'pillow' or 'wsidicom'.
        channels: 1 (gray) or 3 (RGB).
        shapes: (h, w) of each level, finest first.
        downsamples: each level's downsample as the file states it, or None (then the ratio of
            the sides to level 0's).
        tiled: whether level 0 is read tile by tile; False: the file was decoded whole when
            opened, and its one tile (the whole image) is held by the backend.
        mpp: microns per level-0 pixel (x, y), or None where the file names none.
        background: the file's background colour (``channels`` uint8 values), or None.
    """

    name: str
    channels: int
    shapes: list[tuple[int, int]]
    downsamples: list[float] | None
    tiled: bool
    mpp: tuple[float, float] | None
    background: tuple[int, ...] | None

    def tile_shape(self, level: int) -> tuple[int, int]:
        """(th, tw) of the level's tiles (the last row and column may be smaller)."""
        ...

    def read_tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        """Tile (ty, tx) of ``level`` as (h, w, s) samples (uint8 or uint16), cut to the
        level's extent."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


def to_uint8(tile: np.ndarray) -> np.ndarray:
    """(h, w, s) samples of any integer dtype as uint8 (16-bit scaled by 1/257)."""
    if tile.dtype == np.uint8:
        return tile
    if tile.dtype == np.uint16:
        return ((tile.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ValueError(f"samples of dtype {tile.dtype}")


def to_pixels(samples: np.ndarray, channels: int) -> np.ndarray:
    """(h, w, s) uint8 samples as (h, w) gray or (h, w, 3) RGB (alpha and extras dropped)."""
    return samples[:, :, 0] if channels == 1 else samples[:, :, :3]


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
        self.downsamples = None
        try:
            self.mpp = tiff_mpp(self.tif, pages[0])
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
        self.mpp = mpp or mpp_pair(props.get("openslide.mpp-x"), props.get("openslide.mpp-y"))
        self.background = parse_color(props.get("openslide.background-color"), 3)
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
    downsamples = None

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

    def tile_shape(self, level: int) -> tuple[int, int]:
        """The whole image: its one tile."""
        return self.shapes[0]

    def read_tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        """The decoded image as (h, w, s), not copied."""
        return self.array if self.array.ndim == 3 else self.array[:, :, None]

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


def openslide_vendor(path: Path) -> str | None:
    try:
        import openslide
    except ImportError:  # pragma: no cover - openslide-bin is a dependency
        return None
    try:
        return openslide.OpenSlide.detect_format(str(path))
    except Exception:
        return None


def open_backend(path: Path, backend: str):
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
    is_tiff = head[:4] in TIFF_MAGIC
    if backend == "auto":
        vendor = openslide_vendor(path)
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
        array = to_pixels(to_uint8(tiff.pages[0].asarray().reshape(h, w, -1)), tiff.channels)
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


def open_remote_backend(path: remote.RemotePath, file, backend: str):
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
    if head[:4] not in TIFF_MAGIC:
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
