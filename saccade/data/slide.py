"""The slide source: a tiled, pyramidal image file (a whole-slide scan, a tiled BigTIFF, a
cloud-optimised GeoTIFF) opened without decoding it, read region by region, tile by tile.

``Slide(path)`` exposes the file's levels (height, width and downsample of each, finest
first; downsamples need not be powers of two: Aperio levels are often 4x and 16x) and
``read_region(level, x, y, w, h)``, which decodes only the tiles the region touches, keeps
them in a tile cache bounded by bytes (``cache_bytes``, default ``DEFAULT_CACHE_BYTES``) and
counts each decode (``tiles_decoded``: tests and the benchmark read it). ``read_regions``
reads several regions with one check of the file on disk (and says when the file changed
since the caller planned them); ``read_downsampled`` area-averages a whole level in one pass
over its tiles, in bounded memory.

Coordinates: unlike OpenSlide, whose location is in level-0 pixels, ``read_region`` takes
its location **in the pixels of the level it reads** (x, y, w, h all in level pixels): exact
for any downsample, where a level-0 location is ambiguous between the pixels of a 4.0003x
level (a level-0 location divided by the level's ``downsample`` is in its pixels). Parts of a
region outside the level read as zeros.

Backends (``saccade.data.slide_backends``), chosen by the file (``backend="auto"``) or by
name: ``tifffile`` (TIFF, BigTIFF, OME-TIFF, SVS), ``openslide`` (NDPI, MRXS, SCN and the
other formats only OpenSlide reads), ``wsidicom`` (a folder of DICOM WSI instances) and
``pillow`` (small untiled files, decoded whole). ``mpp`` and ``background`` come from
``saccade.data.slide_meta``; ``write_slide`` (``saccade.data.slide_writer``) makes a tiled
pyramidal TIFF.

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

from ..glimpse import read_padded
from . import dicom, remote, slide_meta
from .slide_backends import (
    HOW_TO_TILE,
    TIFF_MAGIC,
    SlideBackend,
    open_backend,
    open_remote_backend,
    openslide_vendor,
    to_pixels,
    to_uint8,
)
from .slide_writer import write_slide

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "HOW_TO_TILE",
    "Level",
    "Slide",
    "is_slide",
    "open_if_slide",
    "write_slide",
]

#: the tile cache's default bound, bytes of decoded pixels
DEFAULT_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Level:
    """One level of a slide: its size in its own pixels and its downsample (level-0 pixels
    per pixel of this level; the mean of the width and height ratios, as OpenSlide's)."""

    height: int
    width: int
    downsample: float


def is_slide(path: str | os.PathLike) -> bool:
    """Whether ``path`` is read as a slide (tile by tile): a TIFF whose first image is tiled,
    or a file OpenSlide recognises, or a folder of DICOM ``.dcm`` instances; False for
    ordinary images (decoded whole, as always) and for a path that is none of these. Reads
    only headers. A URL (``s3://``, ``https://``, ...: ``saccade.data.remote``), or a file
    of a listed bucket folder (``remote.RemotePath``), is always read as a slide, and not fetched here: ``Slide``
    says what is wrong with one it cannot read."""
    if isinstance(path, remote.RemotePath) or remote.is_url(path):
        return True
    path = Path(path)
    if dicom.is_dicom_folder(path):
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(4)
    if head in TIFF_MAGIC:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                return bool(tif.series) and tif.series[0].levels[0].keyframe.is_tiled
        except Exception:
            return False  # a corrupt TIFF: the image reader says what is wrong with it
    return openslide_vendor(path) is not None


def open_if_slide(path: str | os.PathLike) -> Slide | None:
    """``Slide(path)`` when ``path`` is read as a slide (``is_slide``), else None: an
    ordinary image, which its caller decodes whole."""
    return Slide(path) if is_slide(path) else None


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
        mpp: microns per level-0 pixel (x, y), or None when the file does not say: read
        from the SVS ImageDescription (``MPP = 0.5``), OME's PhysicalSizeX/Y, the TIFF
        resolution tags (ResolutionUnit inch, centimetre, ...), a DICOM folder's
        PixelSpacing, or OpenSlide's ``openslide.mpp-x``/``-y``, in that order of the
        backend's.  stamp: (size in bytes, mtime_ns) of the file when (last) opened; of a
        remote slide (size in bytes, a number of its ETag or Last-Modified).
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
            self.stamp = self._local_stamp()
            if self.stamp[0] == 0:
                raise ValueError(f"slide file {self.path.name!r} is empty (0 bytes)")
            self._backend: SlideBackend = open_backend(self.path, self.backend_name)
        self.__dict__.pop("_background", None)
        b = self._backend
        self.channels: int = b.channels
        self.mpp: tuple[float, float] | None = b.mpp
        h0, w0 = b.shapes[0]
        if min(h0, w0) < 1:
            raise ValueError(f"slide file {self.name!r} has an empty level 0")
        self.shape: tuple[int, int] = (h0, w0)
        downs = b.downsamples or [(w0 / w + h0 / h) / 2 for h, w in b.shapes]
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

        def read(x: int, y: int, w: int, h: int) -> np.ndarray:
            return self.read_region(level, x, y, w, h, cache=False)

        return slide_meta.estimate_background(read, lv.height, lv.width)

    def _open_remote(self) -> None:
        """Open the URL (one request for its size and tag), then its TIFF header by range
        requests."""
        file = remote.open_url(str(self.path))
        try:
            if file.size == 0:
                raise ValueError(f"remote slide {self.name!r} is empty (0 bytes)")
            self._backend = open_remote_backend(self.path, file, self.backend_name)
            if file.failure is not None:  # tifffile logs a failed header read and goes on
                self._backend.close()
                raise remote.RemoteError(file.failure)
        except BaseException:
            file.close()
            raise
        self._remote = file
        self.stamp = file.stamp
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
            size, tag = self.stamp
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
        if stamp != self.stamp:
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
        before = self.stamp
        self._open()
        if self.stamp != before:  # changed meanwhile, too
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
        (and kept, with ``cache``). An untiled file's one tile is held by its backend, decoded
        when opened: neither cached nor counted here."""
        if not self._backend.tiled:
            return to_pixels(self._backend.read_tile(level, ty, tx), self.channels)
        key = (level, ty, tx)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        try:
            samples = self._backend.read_tile(level, ty, tx)
            tile = np.ascontiguousarray(to_pixels(to_uint8(samples), self.channels))
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

    def tile_shape(self, level: int) -> tuple[int, int]:
        """(th, tw) of the tiles of ``level`` (an untiled file: the whole image, its one
        tile)."""
        return self._backend.tile_shape(self._check_level(level))

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
        checked: bool = False,
    ) -> np.ndarray:
        """The region of ``level`` at (x, y), w x h, all in that level's pixels.

        Returns (h, w) uint8 for a gray slide, (h, w, 3) for an RGB one; parts outside the
        level are zeros. Decodes only the tiles the region touches (those not in the cache).
        ``out``: an array of that shape to fill instead (zeroed first). ``cache=False``: the
        tiles decoded are not kept (a one-pass read). ``checked=True``: the caller has just
        called ``refresh`` (a ``SlidePyramid`` does before each window), so the file is not
        checked on disk again.
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
            if not checked:
                self._check_fresh()
            lv = self.levels[level]
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, lv.width), min(y + h, lv.height)
            if x0 >= x1 or y0 >= y1:
                return out
            th, tw = self._backend.tile_shape(level)
            for ty in range(y0 // th, (y1 - 1) // th + 1):
                for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                    tile = self._tile(level, ty, tx, cache)
                    oy, ox = ty * th, tx * tw  # the tile's origin, in level pixels
                    # its part inside the level, where the region has it
                    read_padded(tile[: y1 - oy, : x1 - ox], x - ox, y - oy, w, h, out)
        return out

    def read_regions(
        self,
        requests: list[tuple[int, int, int, int, int]],
        stamp: tuple[int, int] | None = None,
        checked: bool = False,
    ) -> list[np.ndarray] | None:
        """``read_region(level, x, y, w, h)`` of each (level, x, y, w, h) of ``requests``,
        the file checked on disk once for them all (tiles kept in the cache). With ``stamp``
        (the ``stamp`` the caller planned the regions from): None, nothing read, when the
        file changed since (it is opened again here, as ``refresh`` does), so that the
        caller plans them again on the file as it is now. ``checked=True``: the caller has
        just checked the file (not checked again)."""
        with self._lock:
            if not checked:
                self._check_fresh()
            if stamp is not None and self.stamp != stamp:
                return None
            return [self.read_region(*r, checked=True) for r in requests]

    def read_downsampled(self, level: int, r: int) -> np.ndarray:
        """``level`` area-averaged by the integer ``r``: (ceil(h / r), ceil(w / r)) uint8, or
        (.., .., 3) for an RGB slide, made by one pass over the level's tiles, a block of
        whole tiles at a time (each decoded once and not kept: the memory held is the result
        and one block, whatever the level's size)."""
        lv = self.levels[self._check_level(level)]
        th, tw = self.tile_shape(level)
        bh, bw = math.lcm(th, r), math.lcm(tw, r)
        out_h, out_w = math.ceil(lv.height / r), math.ceil(lv.width / r)
        acc = np.zeros((out_h, out_w) + (() if self.channels == 1 else (3,)), np.uint8)
        for y in range(0, lv.height, bh):
            for x in range(0, lv.width, bw):
                block = self.read_region(level, x, y, bw, bh, cache=False)
                small = cv2.resize(block, (bw // r, bh // r), interpolation=cv2.INTER_AREA)
                small = small.reshape((bh // r, bw // r) + block.shape[2:])
                oy, ox = y // r, x // r
                acc[oy : oy + bh // r, ox : ox + bw // r] = small[: out_h - oy, : out_w - ox]
        return acc
