"""Helpers shared by several test modules (fixtures live in conftest.py): tiny models and
checkpoints, a Gradio request stand-in, hand-made PNG headers, and a really read-only folder.

Import them as ``from tests.helpers import ...`` (pyproject's ``pythonpath = ["."]`` puts the
repository root on the path); never import one test module from another.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import saccade
from saccade.train.config import TrainConfig
from saccade.train.loop import model_config

#: the Train tab's options for a run of a few seconds
TINY_TRAINING = {
    "batch_size": 8,
    "val_n": 16,
    "test_n": 16,
    "log_every": 1,
    "crop_size": 8,
    "workers": 0,
}


def small_model(task: str = "sum", variance: str = "learnt", seed: int = 0, **cfg):
    """An untrained model for cluttered/``task`` at 100x100."""
    torch.manual_seed(seed)
    ds = saccade.make_dataset("cluttered", task=task, split="train")
    config = model_config(TrainConfig.from_settings(task=task, variance=variance, **cfg), ds)
    return saccade.VariationalSaccader(config)


def write_tiny_checkpoint(
    folder: Path,
    name: str,
    dataset="cluttered",
    task="sum",
    size=100,
    variance="learnt",
    n_saccades=3,
    seed=0,
) -> Path:
    """A small random model (crop 8, 16 features) saved as folder/name."""
    ds = saccade.make_dataset(dataset, task=task, split="test", size=size)
    config = saccade.ModelConfig(
        n_classes=ds.n_classes,
        class_names=list(ds.class_names),
        proxy_size=ds.spec.proxy_size,
        crop_size=8,
        hidden=16,
        features=16,
        n_saccades=n_saccades,
        variance=variance,
        dataset=ds.spec.to_dict(),
    )
    torch.manual_seed(seed)
    model = saccade.VariationalSaccader(config)
    with torch.no_grad():  # a random, non-zero location head: crops depend on the proxy
        for p in model.posterior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    saccade.save(model, folder / name, {"test_accuracy": 0.5})
    return folder / name


class Session:
    """What Gradio passes as ``gr.Request``, as far as the app reads it."""

    def __init__(self, session_hash: str):
        self.session_hash = session_hash


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the ``free_port`` fixture)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit gray) with one row of data: what a
    decompression bomb or a degenerate file looks like before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + bytes(min(width, 1 << 16))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row))
        + chunk(b"IEND", b"")
    )


@contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for real: chmod 0o555, and where that does not bind (root),
    the immutable attribute as well (chattr +i binds root too); skips where neither works."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    immutable = False
    if writable(folder) and shutil.which("chattr"):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    try:
        if writable(folder):
            pytest.skip("cannot make a read-only folder here (root, and no chattr +i)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder``."""
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def zoom_model(seed: int = 0, size: int = 32768, proxy_size: int | None = None, **cfg):
    """An untrained small VS model for the zoom benchmark at ``size``², log scale."""
    torch.manual_seed(seed)
    ds = saccade.make_dataset("zoom", split="train", size=size, proxy_size=proxy_size)
    settings = dict(
        dataset="zoom", task="ring", size=size, scale_space="log", min_scale=48 / size,
        max_scale=0.5, where_grid=8, crop_size=16, hidden=16, features=16, n_saccades=3,
    ) | cfg  # fmt: skip
    return saccade.VariationalSaccader(model_config(TrainConfig.from_settings(**settings), ds))


def zoom_batch(ds, n: int = 4) -> dict:
    """The first ``n`` samples of a zoom dataset as the imitation objective takes a batch."""
    import numpy as np

    samples = [ds[i] for i in range(n)]
    return {
        "image": [s["image"] for s in samples],
        "proxy": torch.from_numpy(np.stack([s["proxy"] for s in samples])),
        "label": torch.tensor([s["label"] for s in samples]),
        "cue_boxes": [s["cue_boxes"] for s in samples],
    }


def imitate(model, batch: dict, steps: int, lr: float = 3e-3) -> tuple[dict, dict]:
    """``steps`` teacher-forced imitation steps on the posterior (``--objective imitation``):
    the first step's terms and the last's."""
    from saccade.train.imitation import Imitation

    objective = Imitation(model, teacher_forcing=1.0)
    opt = torch.optim.Adam(model.posterior.parameters(), lr=lr)
    first = terms = None
    for _ in range(steps):
        loss, terms = objective(batch)
        first = terms if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, terms
