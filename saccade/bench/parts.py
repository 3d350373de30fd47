"""The parts' benchmarks: the glimpse, the VS step at batch 64 (``--suite model``) and
Megapixel MNIST's data path against the shipped model (``--suite megapixel``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import make_dataset
from ..glimpse import Pyramid, glimpse
from ..models.registry import create_model
from .timing import PeakMemory, step_fns, sync, time_calls


def bench_glimpse(
    sides: list[int], repeats: int = 50, size: int = 32, n_crops: int = 4, device: str = "cpu"
) -> list[dict]:
    """Pyramid build ("data") and ``n_crops`` crops of ``size``^2 from the built pyramid
    ("crop"), on a cluttered 2-MNIST image upsampled to each side."""
    device = torch.device(device)
    rows = []
    gen = torch.Generator().manual_seed(0)
    z = (torch.rand(n_crops, 3, generator=gen) * 2 - 1).to(device)
    for side in tqdm(sides, desc="glimpse", unit="side"):
        options = {"size": min(side, 100), "full_size": side if side > 100 else None}
        image = make_dataset("cluttered", task="sum", split="test", **options)[0]["image"]
        builds, build_mb = [], []
        for _ in range(max(3, repeats // 10)):
            pyramid = None
            with PeakMemory("cpu") as mem_data:
                t = time.perf_counter()
                pyramid = Pyramid(image)
                builds.append(time.perf_counter() - t)
            build_mb.append(mem_data.mb)
        seconds, _, crop_mb = time_calls(
            lambda p=pyramid: glimpse(p, z, size), device, repeats, memory=True
        )
        common = {"model": "glimpse", "dataset": "cluttered", "side": side}
        rows.append(
            common
            | {
                "phase": "data",
                "ms_per_image": 1e3 * statistics.median(builds),
                "peak_mb": max(build_mb),
                "what": "Pyramid build",
            }
        )
        rows.append(
            common
            | {
                "phase": "crop",
                "ms_per_image": 1e3 * seconds,
                "peak_mb": crop_mb,
                "what": f"{n_crops} crops of {size}x{size}",
            }
        )
    return rows


def _bench_model_side(side: int, repeats: int, batch_size: int, device: torch.device) -> list:
    from ..train.config import TrainConfig
    from ..train.loop import collate, model_config

    options = {"size": min(side, 100), "full_size": side if side > 100 else None}
    ds = make_dataset("cluttered", task="sum", split="train", **options)
    batch = collate([ds[i] for i in range(batch_size)])
    torch.manual_seed(0)
    model = create_model("vs", model_config(TrainConfig(), ds)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step, infer_step = step_fns(model, opt, batch, device)

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, _, peak = time_calls(fn, device, repeats, memory=True)
        ms = 1e3 * seconds / batch_size
        rows.append(
            {
                "model": "vs",
                "dataset": "cluttered",
                "side": side,
                "phase": phase,
                "ms_per_image": ms,
                "peak_mb": peak,
                "images_per_s": 1e3 / ms,
                "what": f"batch {batch_size}, T={model.config.n_saccades}",
            }
        )
    return rows


def bench_model(
    sides: list[int], repeats: int = 20, batch_size: int = 64, device: str = "cpu"
) -> list[dict]:
    """The VS model (untrained weights, the default cluttered/sum configuration): one
    training step ("train": forward, backward, AdamW) and one inference pass ("infer") per
    batch of cluttered 2-MNIST images upsampled to each side. Images stay uint8 on the CPU
    and the glimpse reads only the windows it needs, inside the timed step, as in training."""
    rows = []
    for side in tqdm(sides, desc="model", unit="side"):
        rows += _bench_model_side(side, repeats, batch_size, torch.device(device))
    return rows


def _megapixel_model_rows(
    model, ds, samples: list[dict], batch_size: int, repeats: int, device
) -> list[dict]:
    """The "train", "infer" and "loader" rows of ``bench_megapixel`` for one canvas side;
    ``samples``: ``batch_size`` of them, drawn already."""
    from ..train.loop import collate

    batch = collate(samples[:batch_size])
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)  # lr 0: the weights stay
    what = f"batch {batch_size}, T={model.config.n_saccades}"
    train_step, infer_step = step_fns(model, opt, batch, device)

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, _, peak = time_calls(fn, device, max(2, repeats // 4), memory=True)
        rows.append(
            {
                "phase": phase,
                "what": what,
                "ms_per_image": 1e3 * seconds / batch_size,
                "peak_mb": peak,
            }
        )
    from ..train.loop import compute_threads

    default = torch.get_num_threads()
    # as the process starts, and as ``python -m saccade.train --workers 1`` sets it
    for threads in dict.fromkeys([default, compute_threads(1)]):
        torch.set_num_threads(threads)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=batch_size, collate_fn=collate, num_workers=1
        )
        steps = max(3, repeats // 4)
        batches = iter(loader)
        next(batches)  # the worker's start-up
        t = time.perf_counter()
        for _ in range(steps):
            train_step(next(batches))
        sync(device)
        rows.append(
            {
                "phase": "loader",
                "what": f"training steps fed by 1 DataLoader worker, {threads} torch "
                f"thread(s), {what}",
                "ms_per_image": 1e3 * (time.perf_counter() - t) / (steps * batch_size),
                "peak_mb": float("nan"),
            }
        )
    torch.set_num_threads(default)
    return rows


MEGAPIXEL_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints/megapixel-majority-learnt"


def bench_megapixel(
    sides: list[int],
    repeats: int = 20,
    batch_size: int = 32,
    device: str = "cpu",
    checkpoint: str | Path = MEGAPIXEL_CHECKPOINT,
) -> list[dict]:
    """Megapixel MNIST's data path against its model, per sample, at each canvas side (a
    multiple of the checkpoint's 1500: the model runs through ``model.for_canvas``, the noise
    at its density): "data" rows for drawing the canvas (``render``), the proxy
    (``make_proxy``: INTER_AREA) and batching (``collate``), both in a DataLoader worker;
    "train" and "infer" for the model (the checkpoint's architecture and weights) on a
    collated batch; and "loader" for whole training steps fed by one DataLoader worker, the
    setting of ``scripts/megapixel.sh``: when it is close to "train", training is not
    data-bound."""
    from .. import checkpoint as ckpt
    from ..data.megapixel import N_NOISE
    from ..data.proxy import make_proxy
    from ..models.vs import for_canvas
    from ..train.loop import collate

    device = torch.device(device)
    base = ckpt.load(checkpoint, device)
    rows = []
    for side in tqdm(sides, desc="megapixel", unit="side"):
        model = base if side == base.config.dataset["size"] else for_canvas(base, side)
        area = (side / base.config.dataset["size"]) ** 2
        ds = make_dataset(
            "megapixel",
            split="train",
            size=side,
            proxy_size=model.config.proxy_size,
            n_noise=round(N_NOISE * area),
            length=10**6,
        )
        common = {"model": "vs", "dataset": "megapixel", "side": side}
        n = max(repeats, batch_size)  # also the distinct samples of the model rows' batch
        timings = {"render": [], "proxy": [], "collate": []}
        samples = []
        for i in range(n):
            t = time.perf_counter()
            r = ds.render(ds.rng(i))
            timings["render"].append(time.perf_counter() - t)
            t = time.perf_counter()
            make_proxy(r.canvas, ds.proxy_size)
            timings["proxy"].append(time.perf_counter() - t)
            samples.append(ds[i])
        for _ in range(3):
            t = time.perf_counter()
            collate(samples[:batch_size])
            timings["collate"].append((time.perf_counter() - t) / min(batch_size, n))
        for what, values in timings.items():
            rows.append(
                common
                | {
                    "phase": "data",
                    "what": what,
                    "ms_per_image": 1e3 * statistics.median(values),
                    "peak_mb": float("nan"),
                }
            )
        rows += [
            common | row
            for row in _megapixel_model_rows(model, ds, samples, batch_size, repeats, device)
        ]
    return rows
