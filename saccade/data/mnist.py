"""The bundled MNIST digits (real data, CC BY-SA 3.0; see LICENSE-MNIST.md beside this file).

Nothing is ever downloaded: the two ``.npz`` files ship inside the package and are checked
against their sha256 on first use.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent

#: split -> (file name, sha256, number of digits)
FILES = {
    "train": (
        "mnist_train.npz",
        "33e9753a8d3ed06561a816bf46d6d686b20801696e497f092853c1634577f43f",
        60000,
    ),
    "test": (
        "mnist_test.npz",
        "af5595f05f0cc260498196e07655cfa443d2d96874d5ba0dcfeaea06defbda81",
        10000,
    ),
}


def check_split(split: str) -> str:
    if split not in FILES:
        raise ValueError(f"split={split!r} is not known; accepted: {sorted(FILES)}")
    return split


@functools.lru_cache(maxsize=2)
def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one MNIST split: (N, 28, 28) uint8 and (N,) int64.

    Raises FileNotFoundError or ValueError, naming the file, if it is missing or corrupt.
    """
    name, sha, n = FILES[check_split(split)]
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"bundled MNIST file {path} is missing; reinstall saccade")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise ValueError(f"bundled MNIST file {path} is corrupt: sha256 {digest} != {sha}")
    with np.load(path, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    if images.shape != (n, 28, 28) or images.dtype != np.uint8 or labels.shape != (n,):
        raise ValueError(f"bundled MNIST file {path} has unexpected shapes {images.shape}")
    images.setflags(write=False)
    labels = labels.astype(np.int64)
    labels.setflags(write=False)
    return images, labels
