"""Datasets: generated on the fly from the bundled MNIST digits, or your own images.

``make_dataset(name, task=..., split=..., size=..., seed=..., **options)`` is the entry point.
"""

from __future__ import annotations

from .base import DatasetSpec, GeneratedDataset
from .cluttered import Cluttered
from .folder import FolderDataset
from .megapixel import Megapixel
from .mnist import load_mnist
from .proxy import check_noise, make_proxy
from .zoom import Zoom, ZoomCanvas

DATASETS: dict[str, type] = {
    "cluttered": Cluttered,
    "megapixel": Megapixel,
    "folder": FolderDataset,
    "zoom": Zoom,
}


def make_dataset(name: str, **options) -> GeneratedDataset:
    """Build a dataset.

    Args:
        name: ``"cluttered"`` (tasks ``sum``, ``id``, ``single``; canvas 100 by default, option
            ``full_size`` upsamples bilinearly, e.g. 2528), ``"megapixel"`` (task
            ``majority``; canvas 1500 by default) or ``"folder"`` (your images in ImageFolder
            layout: ``root=PATH``, ``channels``, ``holdout``, ``cache_dir``, ...; see
            ``saccade.data.folder``).
        **options: task, split ("train"/"test"), size, seed, proxy_size, proxy_noise,
            full_size, length, and the generator's own (n_clutter, n_noise, ...).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset name={name!r} is not known; accepted: {sorted(DATASETS)}")
    cls = DATASETS[name]
    try:
        return cls(**options)
    except TypeError as e:  # an option the generator does not take
        raise ValueError(f"bad option for dataset {name!r}: {e}") from None


def dataset_from_spec(spec: dict, **overrides) -> GeneratedDataset:
    """Rebuild a dataset from ``DatasetSpec.to_dict()``, e.g. the one saved in a checkpoint."""
    spec = {**spec, **overrides}
    name = spec.pop("name")
    side = spec.pop("side")
    spec["full_size"] = side if side != spec["size"] else None
    return make_dataset(name, **spec)


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "FolderDataset",
    "GeneratedDataset",
    "check_noise",
    "dataset_from_spec",
    "load_mnist",
    "make_dataset",
    "make_proxy",
    "Zoom",
    "ZoomCanvas",
]
