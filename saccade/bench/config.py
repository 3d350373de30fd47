"""One configuration of ``python -m saccade.bench``: one model, one dataset, one image side,
measured in a process of its own so that peak memories do not mix.

    python -m saccade.bench.config '{"model": "vs", "dataset": "cluttered", "side": 2528}'

prints the rows as one JSON list on its last line of stdout. Each row has ``model``,
``dataset``, ``side``, ``phase``, ``ms_per_image``, ``peak_mb``, ``params``, ``batch``,
``status`` ("ok", or why not) and ``device``. The phases:

- ``data``: making one training sample (``dataset[i]``: render, upsample, proxy) and its
  share of the batching (``saccade.train.collate``, which builds the pyramid levels a
  cropping model reads); in training both run in a DataLoader worker.
- ``train``: one optimizer step (forward, the model's own loss, backward, AdamW) on a
  collated batch, per image; ``peak_mb``: the process's peak resident memory during the
  steps above its resident memory right after its imports, i.e. above an idle process with
  the same imports (CUDA: ``torch.cuda.max_memory_allocated``).
- ``infer``: a forward pass in eval mode without gradients, per image.
- ``infer-one``: one image with the model's T from a built ``Pyramid`` (batch 1, as
  ``saccade.predict`` runs it); ``pyramid_ms`` the build, apart.
- ``epoch``: the real training loop (``saccade.train.setup`` + ``train_one_epoch``, one
  DataLoader worker, torch threads as ``python -m saccade.train --workers 1`` sets them)
  over a few batches; ``ms_per_image`` is the wall time per sample after the first batch
  (the worker's start-up is left out), ``epoch_s`` that times 60,000, and ``data_wait``
  the share of it spent waiting for data rather than in training steps.

Timings are medians. A phase that would run past the time budget is skipped with a
status that says so.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..data import make_dataset
from ..data.megapixel import N_NOISE
from ..glimpse import Pyramid
from ..models.registry import create_model
from ..train.config import PRESETS, TrainConfig, for_model
from ..train.loop import (
    collate,
    compute_threads,
    dataset_options,
    first_level_for,
    model_config,
    train_one_epoch,
)
from ..train.loop import setup as train_setup
from .timing import PeakMemory, proc_status_kb, step_fns, time_calls

#: samples per epoch that ``epoch_s`` reports
EPOCH = 60_000
#: the megapixel canvas the preset was measured at
MEGAPIXEL_SIDE = 1500


def train_config(model: str, dataset: str, side: int, **overrides) -> TrainConfig:
    """The training settings a configuration is measured with.

    cluttered: the 100² 2-digit canvas of the ``sum`` task, upsampled to ``side`` (the
    paper's protocol; at 100 not upsampled). megapixel: a ``side``² canvas with digits and
    noise strokes at their native size and the noise at the preset's density, and the VS
    preset scaled as ``saccade.models.vs.for_canvas`` scales it (proxy 0.12 of the side, the
    posterior's grid and the crop fractions in proportion). RAM: 8 glimpses of 12 px at 4
    scales (its paper's setting on 100² cluttered MNIST).
    """
    if dataset == "cluttered":
        options = {"task": "sum", "size": 100, "full_size": side if side > 100 else None}
    elif dataset == "megapixel":
        f = side / MEGAPIXEL_SIDE
        preset = PRESETS["megapixel"]
        options = dict(
            preset,
            size=side,
            proxy_size=round(preset["proxy_size"] * f),
            where_grid=max(2, round(preset["where_grid"] * f)),
            min_scale=preset["min_scale"] / f,
            max_scale=min(2.0, preset["max_scale"] / f),
            n_noise=round(N_NOISE * f * f),
        )
    else:
        raise ValueError(f"dataset={dataset!r}; accepted: cluttered, megapixel")
    if model == "ram":
        options.update(crop_size=12, n_saccades=8, n_scales=4)
    settings = for_model(options, model) | {"model": model, "dataset": dataset, **overrides}
    return TrainConfig.from_settings(**settings)


def measure(
    model: str,
    dataset: str,
    side: int,
    batch: int = 4,
    repeats: int = 5,
    device: str = "cpu",
    budget_s: float = 240.0,
    epoch_batches: int = 12,
    idle_kb: int | None = None,
) -> list[dict]:
    """The rows of one configuration (module docstring). ``budget_s``: the time the whole
    measurement may take; ``idle_kb``: the resident memory of an idle process with these
    imports (default: this process's now)."""
    start = time.perf_counter()

    def left() -> float:  # of the budget
        return budget_s - (time.perf_counter() - start)

    device_t = torch.device(device)
    idle_kb = proc_status_kb("VmRSS") if idle_kb is None else idle_kb
    cfg = train_config(model, dataset, side, device=device, batch_size=batch)
    common = {"model": model, "dataset": dataset, "side": side, "batch": batch, "device": device}
    options, _ = dataset_options(cfg)  # as the training CLI builds its data
    ds = make_dataset(dataset, split="train", length=10**6, **options)
    torch.manual_seed(0)
    net = create_model(model, model_config(cfg, ds)).to(device_t)
    common["params"] = sum(p.numel() for p in net.parameters())
    first = first_level_for(net, ds.side)

    data_row, collated = _data_row(ds, batch, first)
    rows = [common | data_row]
    rows += [common | row for row in _step_rows(net, collated, device_t, left, repeats, idle_kb)]
    del collated
    rows.append(common | _infer_one_row(net, ds, device_t, repeats))
    step_s = rows[-2]["ms_per_image"] * batch / 1e3
    n_batches = min(epoch_batches, int(left() * 0.6 / max(step_s, 1e-3)))
    epoch_row = common | {"phase": "epoch", "peak_mb": float("nan")}
    if n_batches < 3:
        return rows + [
            epoch_row
            | {
                "ms_per_image": float("nan"),
                "status": f"skipped: 3 batches need about {3 * step_s:.0f} s, "
                f"{max(0, left()):.0f} s of the budget left",
            }
        ]
    return rows + [epoch_row | _epoch_row(model, dataset, side, device, batch, n_batches)]


def _data_row(ds, batch: int, first: int) -> tuple[dict, dict]:
    """The "data" row: ``batch`` samples, and their share of the batching (the pyramid
    levels from ``first`` on, built in the worker); with the collated batch."""
    times = []
    samples = []
    for i in range(batch):
        t = time.perf_counter()
        samples.append(ds[i])
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    collated = collate(samples, first)
    collate_s = (time.perf_counter() - t) / batch
    row = {
        "phase": "data",
        "ms_per_image": 1e3 * (statistics.median(times) + collate_s),
        "peak_mb": float("nan"),
        "status": "ok",
        "what": f"sample {1e3 * statistics.median(times):.2f} ms + batching "
        f"{1e3 * collate_s:.2f} ms"
        + (f" (pyramid levels {first}..)" if first else " (the full image)"),
    }
    return row, collated


def _step_rows(net, collated: dict, device: torch.device, left, repeats: int, idle_kb: int):
    """The "train" and "infer" rows on the collated batch, within half and 0.3 of the
    budget ``left()`` leaves; the train step's peak memory above an idle process (CPU)."""
    batch = len(collated["label"])
    opt = torch.optim.AdamW(net.parameters(), lr=0.0)  # lr 0: the weights stay
    train_step, infer_step = step_fns(net, opt, collated, device)
    with PeakMemory(device) as mem:
        seconds, n, _ = time_calls(train_step, device, repeats, left() * 0.5)
    if device.type == "cpu":  # above an idle process, not above this one's samples
        peak_mb = max(0, proc_status_kb("VmHWM") - idle_kb) / 1024
    else:
        peak_mb = mem.mb
    T = getattr(net.config, "n_saccades", 1)
    train = {
        "phase": "train",
        "ms_per_image": 1e3 * seconds / batch,
        "peak_mb": peak_mb,
        "status": "ok",
        "what": f"T={T}, {n} timed step(s)",
    }
    seconds, n, _ = time_calls(infer_step, device, repeats, left() * 0.3)
    infer = {
        "phase": "infer",
        "ms_per_image": 1e3 * seconds / batch,
        "peak_mb": float("nan"),
        "status": "ok",
        "what": f"T={T}, {n} timed pass(es)",
    }
    return [train, infer]


def _infer_one_row(net, ds, device: torch.device, repeats: int) -> dict:
    """The "infer-one" row: one image from a built pyramid, as ``saccade.predict`` runs it;
    the build apart."""
    image = ds[0]["image"]
    t = time.perf_counter()
    pyramid = Pyramid(image)
    build_ms = 1e3 * (time.perf_counter() - t)
    proxy = torch.from_numpy(ds[0]["proxy"])[None].to(device)
    net.eval()
    T = getattr(net.config, "n_saccades", 1)
    with torch.no_grad():
        seconds, n, _ = time_calls(lambda p=pyramid: net([p], proxy), device, repeats, 5.0)
    return {
        "phase": "infer-one",
        "ms_per_image": 1e3 * seconds,
        "peak_mb": float("nan"),
        "status": "ok",
        "what": f"1 image, T={T}, from a built pyramid (its build: {build_ms:.1f} ms)",
        "pyramid_ms": build_ms,
    }


def _epoch_row(model: str, dataset: str, side: int, device: str, batch: int, n_batches: int):
    """The "epoch" row: the real loop over ``n_batches``, as ``python -m saccade.train
    --workers 1`` runs it (its torch threads, one DataLoader worker)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(compute_threads(1))
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = train_config(
            model,
            dataset,
            side,
            device=device,
            batch_size=batch,
            train_length=batch * n_batches,
            epochs=1,
            workers=1,
            val_n=1,
            test_n=0,
            out=str(Path(tmp) / "bench"),
        )
        run = train_setup(run_cfg, callback=lambda event: None)
        done = train_one_epoch(run.loop, 0)
    torch.set_num_threads(threads)
    after_first = done["samples"] - batch
    per_sample = (done["epoch_s"] - done["first_batch_s"]) / after_first
    wait = 1 - done["step_s"] / max(done["epoch_s"] - done["first_batch_s"], 1e-9)
    return {
        "ms_per_image": 1e3 * per_sample,
        "epoch_s": per_sample * EPOCH,
        "data_wait": max(0.0, min(1.0, wait)),
        "status": "ok",
        "what": f"{n_batches} batches, 1 worker, {compute_threads(1)} torch thread(s)",
    }


def main(argv: list[str] | None = None) -> None:
    idle_kb = proc_status_kb("VmRSS")  # after the imports, before any work
    args = json.loads((sys.argv[1:] if argv is None else argv)[0])
    rows = measure(**args, idle_kb=idle_kb)
    for row in rows:  # JSON has no NaN
        for k, v in row.items():
            if isinstance(v, float) and math.isnan(v):
                row[k] = None
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
