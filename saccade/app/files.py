"""Output images written once, atomically, where Gradio serves them from.

Why: given an image array, ``gradio.Gallery`` writes it to ``CACHE/<hash of its bytes>/
image.png`` with a plain ``write_bytes`` (``processing_utils.save_pil_to_cache``): it
truncates and rewrites that path on every request with the same picture. Two concurrent
Explore requests on one example produce the same zooms and crops, so one request rewrote a
file while the server was streaming it to another's browser: h11's "Too little data for
declared Content-Length" on the server, "peer closed connection without sending complete
message body" on the client (``scripts/loadtest.py``, 30 sessions: 4-15 of 100-200 requests).

What: ``png_file`` writes the PNG itself, under a name made of its content's hash inside
Gradio's cache folder (``gradio.utils.get_upload_folder``), only when that name does not exist
yet, through a temporary file and ``os.replace``. A path already inside the cache is served
as it is (``Block.move_resource_to_block_cache``), so nothing ever rewrites a file that is
being served: a reader holds the whole old file or the whole new one, and both are the same
bytes. Old files are removed after ``MAX_AGE_S`` without use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

#: a file unused for this long is removed (a browser fetches its images within seconds)
MAX_AGE_S = 3600.0
#: look for old files every this many writes
PRUNE_EVERY = 500

_lock = threading.Lock()
_writes = 0


def folder() -> Path:
    """``saccade-outputs`` in Gradio's cache folder (``GRADIO_TEMP_DIR``, else the system's
    temporary folder's ``gradio``)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / "saccade-outputs"


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 (h, w) gray or (h, w, 3) RGB image as PNG bytes (lossless)."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"png_file needs uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = np.ascontiguousarray(image[:, :, ::-1])  # OpenCV encodes BGR
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


def write_once(data: bytes, suffix: str, where: Path | None = None) -> str:
    """The path of a file holding ``data``, named by its SHA-256: written (to a temporary
    name, then ``os.replace``) only when no such file exists; an existing one is touched, so
    that pruning counts from its last use."""
    where = Path(where) if where is not None else folder()
    digest = hashlib.sha256(data).hexdigest()
    path = where / digest[:2] / f"{digest}{suffix}"
    try:
        os.utime(path)
        return str(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _count_write(where)
    return str(path)


def png_file(image: np.ndarray, where: Path | None = None) -> str:
    """``image`` (uint8, gray or RGB) as a PNG file Gradio can serve: see the module's doc."""
    return write_once(encode_png(image), ".png", where)


def prune(where: Path | None = None, max_age_s: float = MAX_AGE_S) -> int:
    """Remove the files unused for ``max_age_s``; returns how many."""
    where = Path(where) if where is not None else folder()
    cutoff = time.time() - max_age_s
    removed = 0
    for path in where.glob("*/*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _count_write(where: Path) -> None:
    global _writes
    with _lock:
        _writes += 1
        due = _writes % PRUNE_EVERY == 0
    if due:
        prune(where)
