"""The common shape of every generated dataset: deterministic samples from (seed, split, index)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from .mnist import check_split, load_mnist
from .proxy import check_noise, make_proxy

SPLIT_IDS = {"train": 0, "test": 1}


def sample_rng(
    seed: int, split: str, index: int, stream: int = 0, salt: tuple[int, ...] = ()
) -> np.random.Generator:
    """The generator of sample ``index`` of a dataset's ``split``: seeded by (seed, split,
    *salt, index, stream), so that each sample draws the same numbers in any order, in any
    process. Stream 0 draws the sample, stream 1 its proxy noise; ``salt`` keeps the streams
    of datasets that share a seed apart (the zoom benchmark's is (7,))."""
    return np.random.default_rng([seed, SPLIT_IDS[split], *salt, int(index), stream])


@dataclass
class Rendered:
    """One canvas before upsampling and proxying."""

    canvas: np.ndarray  # (size, size) uint8
    label: int
    boxes: np.ndarray  # (n_digits, 4) float32 x0, y0, x1, y1 in canvas pixels
    digits: np.ndarray  # (n_digits,) int64 class of each digit
    digit_ids: np.ndarray  # (n_digits,) int64 index of each digit in its MNIST split


@dataclass
class DatasetSpec:
    """Everything needed to rebuild a dataset; saved in checkpoints."""

    name: str
    task: str
    split: str
    size: int  # canvas side
    side: int  # full-resolution side (== size unless upsampled)
    proxy_size: int
    proxy_noise: float
    seed: int
    length: int

    def to_dict(self) -> dict:
        return asdict(self)


class GeneratedDataset(torch.utils.data.Dataset):
    """Base class: subclasses implement ``render(rng) -> Rendered`` and set the task metadata.

    A sample is a dict:
        image:  (side, side) uint8, full resolution
        proxy:  (proxy_size, proxy_size) float32 in [0, 1], noise included
        label:  int in [0, n_classes)
        boxes:  (n_digits, 4) float32, the digits' ink boxes x0, y0, x1, y1 in full-res pixels
        digits, digit_ids: (n_digits,) int64, the digits' classes and MNIST indices
    """

    name: str = ""
    tasks: dict[str, int] = {}  # task -> number of classes
    channels: int = 1  # the digits are grayscale: images (H, W), proxies (p, p)

    def __init__(
        self,
        task: str,
        split: str,
        size: int,
        seed: int,
        proxy_size: int,
        proxy_noise: float,
        full_size: int | None,
        length: int | None,
    ):
        if task not in self.tasks:
            raise ValueError(
                f"task={task!r} is not known for dataset {self.name!r}; accepted: {sorted(self.tasks)}"
            )
        self.task = task
        self.split = check_split(split)
        self.size = int(size)
        self.side = int(full_size) if full_size is not None else self.size
        if self.side < self.size:
            raise ValueError(f"full_size={full_size!r} must be at least size={size!r}")
        if int(proxy_size) < 4 or int(proxy_size) > self.side:
            raise ValueError(
                f"proxy_size={proxy_size!r} must be between 4 and the image side {self.side}"
            )
        self.proxy_size = int(proxy_size)
        self.proxy_noise = check_noise(proxy_noise)
        self.seed = int(seed)
        self.images, self.labels = load_mnist(self.split)
        self.length = int(length) if length is not None else len(self.images)
        if self.length < 1:
            raise ValueError(f"length={length!r} must be a positive integer")

    @property
    def n_classes(self) -> int:
        return self.tasks[self.task]

    @property
    def class_names(self) -> list[str]:
        return [str(i) for i in range(self.n_classes)]

    @property
    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            self.name,
            self.task,
            self.split,
            self.size,
            self.side,
            self.proxy_size,
            self.proxy_noise,
            self.seed,
            self.length,
        )

    def render(self, rng: np.random.Generator) -> Rendered:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of sample ``index``; stream 1 draws the proxy noise."""
        return sample_rng(self.seed, self.split, index, stream)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= int(index) < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        r = self.render(self.rng(index))
        image = r.canvas
        boxes = r.boxes.astype(np.float32)
        if self.side != self.size:
            # The paper's 2528x2528 protocol: bilinear upsampling of the 100x100 canvas.
            image = cv2.resize(image, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
            boxes = boxes * (self.side / self.size)
        proxy = make_proxy(image, self.proxy_size, self.proxy_noise, self.rng(index, 1))
        return {
            "image": image,
            "proxy": proxy,
            "label": int(r.label),
            "boxes": boxes,
            "digits": r.digits,
            "digit_ids": r.digit_ids,
        }
