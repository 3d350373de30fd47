"""The pyramid cache: each image's proxy and area-averaged pyramid levels as ``.npy`` files,
so that later epochs read the proxy plus only the pyramid levels the crops need, memory-
mapped, instead of decoding the whole photo again.

Layout, one directory per (image, processing options)::

    CACHE_DIR/                        ROOT/.saccade-cache by default, or a chosen cache_dir
      ab/abcdef0123456789/            sha1 of (relative path, processing options), 2 levels
        proxy.npy                     float32 (p, p) or (C, p, p): the clean proxy
        level2.npy level3.npy ...     uint8 (H/2**l, W/2**l[, C]) for l = first .. max
        meta.json                     written last: the key, the source's size and mtime_ns,
                                      the shapes, the proxy's sha1; its presence commits

An entry is used only when ``meta.json`` names the same relative path, options, file size
and ``mtime_ns`` as the source file now, every listed file loads (``np.load(...,
mmap_mode="r")``, never ``allow_pickle``) with the recorded shape and dtype, and the proxy's
bytes hash to the recorded sha1. Anything else (a changed file, a truncated ``.npy``, a wrong
shape, garbage) is rebuilt, never trusted. The levels' content is not hashed (that would read
them all, which the cache exists to avoid): a level of the right shape whose bytes were
altered in place is not detected.

Writes are atomic: each file goes to a unique ``*.tmp-PID-RANDOM`` name and is renamed over
the final one with ``os.replace``, ``meta.json`` last. Two processes (DDP ranks, DataLoader
workers) that build the same entry at once each rename whole files of identical content, so a
reader sees either the old entry, which fails its checks, or a complete one. A cache
directory that cannot be written (a read-only filesystem) turns the cache off with one
warning; the data is then decoded every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_write

#: bumped whenever what an entry holds or how it is made changes
VERSION = 1
#: the default cache directory's name under a dataset's root
DEFAULT_DIR = ".saccade-cache"


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


class PyramidCache:
    """A directory of cache entries for one dataset's processing options.

    Args:
        directory: where the entries live (created if missing).
        options: everything that changes what an entry holds (side, channels, proxy size,
            resize rule): part of each entry's key.
    """

    def __init__(self, directory: str | os.PathLike, options: dict):
        self.directory = Path(directory)
        self.options = {"version": VERSION, **options}
        self.enabled = True
        self._warned = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            self._disable(e)

    def _disable(self, error: Exception) -> None:
        self.enabled = False
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the pyramid cache at {str(self.directory)!r} cannot be written ({error}); "
                "going on without a cache: every image is decoded each time it is read",
                RuntimeWarning,
                stacklevel=3,
            )

    def entry(self, relpath: str) -> Path:
        """The directory of ``relpath``'s entry under these options."""
        key = json.dumps({"path": relpath, **self.options}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self.directory / digest[:2] / digest

    def _source(self, relpath: str, stat: os.stat_result) -> dict:
        return {
            "path": relpath,
            "options": self.options,
            "bytes": int(stat.st_size),
            "mtime_ns": int(stat.st_mtime_ns),
        }

    def load(
        self, relpath: str, stat: os.stat_result, first: int
    ) -> tuple[np.ndarray, list[np.ndarray | None], tuple[int, int]] | None:
        """(proxy, levels, (H, W)) of a valid entry holding levels ``first``.. of the file
        whose ``os.stat`` is ``stat``; levels finer than ``first`` are None, the others are
        read-only memory maps. None when there is no valid entry (nothing is raised)."""
        if not self.enabled:
            return None
        entry = self.entry(relpath)
        try:
            meta = json.loads((entry / "meta.json").read_text())
            if meta.get("source") != self._source(relpath, stat) or meta["first"] > first:
                return None
            proxy = np.load(entry / "proxy.npy", mmap_mode="r", allow_pickle=False)
            if (
                list(proxy.shape) != meta["proxy_shape"]
                or proxy.dtype != np.float32
                or hashlib.sha1(proxy.tobytes()).hexdigest() != meta["proxy_sha1"]
            ):
                return None
            levels: list[np.ndarray | None] = [None] * len(meta["level_shapes"])
            for i in range(first, len(levels)):
                lv = np.load(entry / f"level{i}.npy", mmap_mode="r", allow_pickle=False)
                if list(lv.shape) != meta["level_shapes"][i] or lv.dtype != np.uint8:
                    return None
                levels[i] = lv
            return np.array(proxy), levels, tuple(meta["shape"])
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError):
            return None  # missing, truncated or malformed: rebuilt by the caller

    def store(
        self,
        relpath: str,
        stat: os.stat_result,
        proxy: np.ndarray,
        levels: list[np.ndarray],
        first: int,
    ) -> None:
        """Write the entry of the file of ``stat``: the proxy and ``levels[first:]`` (all of
        a pyramid's levels, the finest first). A failed write turns the cache off with one
        warning; it never raises."""
        if not self.enabled:
            return
        entry = self.entry(relpath)
        try:
            entry.mkdir(parents=True, exist_ok=True)
            proxy = np.ascontiguousarray(proxy, dtype=np.float32)
            _save_npy(entry / "proxy.npy", proxy)
            for i in range(first, len(levels)):
                _save_npy(entry / f"level{i}.npy", levels[i])
            meta = {
                "source": self._source(relpath, stat),
                "first": int(first),
                "shape": [int(v) for v in levels[0].shape[:2]],
                "proxy_shape": list(proxy.shape),
                "proxy_sha1": hashlib.sha1(proxy.tobytes()).hexdigest(),
                "level_shapes": [list(lv.shape) for lv in levels],
            }
            atomic_write(entry / "meta.json", lambda p: p.write_text(json.dumps(meta)))
        except OSError as e:
            self._disable(e)

    def nbytes(self) -> int:
        """Bytes on disk of all entries (the footprint)."""
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
