"""Atomic file writes: readers see the old file or the new one, never a part of it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` to a name of its own beside ``path`` (``NAME.tmp-PID-RANDOM``: two
    writers of one file never share it), then rename it onto ``path``. If ``write`` or the
    rename fails, the temporary file is removed and the error raised; ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
