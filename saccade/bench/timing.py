"""How ``saccade.bench`` and ``saccade.bench.config`` measure: wall time of repeated calls
(``time_calls``), peak memory (``PeakMemory``) and the training and inference steps they
time (``step_fns``: the training loop's own step)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from ..models.objective import LossWeights
from ..train import loop
from ..train.objectives import ELBO


def proc_status_kb(key: str) -> int:
    """A ``/proc/self/status`` figure in kB, e.g. ``VmRSS`` (resident now) or ``VmHWM`` (its
    peak); KeyError if the line is missing (Linux only)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Context manager measuring peak memory growth, in MB, inside the block.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the peak resident set size (VmHWM),
    reset on entry through ``/proc/self/clear_refs`` (Linux); where that is unavailable,
    ``mb`` is NaN rather than a made-up number.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.start = proc_status_kb("VmRSS") * 1024
            except OSError:
                self.start = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.start is not None:
            self.mb = max(0, proc_status_kb("VmHWM") * 1024 - self.start) / 2**20


class Timing(NamedTuple):
    seconds: float  # the median of the timed calls
    calls: int  # how many were timed
    peak_mb: float  # peak memory over the timed calls after the first (NaN unless asked)


def time_calls(
    fn: Callable[[], object],
    device: torch.device,
    repeats: int,
    budget_s: float = math.inf,
    memory: bool = False,
) -> Timing:
    """Time ``fn()``: a first call (the warm-up), then up to ``repeats`` more while the
    total stays within ``budget_s``; a first call longer than a tenth of the budget is the
    measurement (one call). The device is synchronised around every call. ``memory``: also
    the peak memory of the calls after the first (``PeakMemory``)."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t
    if first > budget_s / 10:
        return Timing(first, 1, float("nan"))
    times, start = [], time.perf_counter()
    with PeakMemory(device) if memory else _NoMemory() as mem:
        while len(times) < repeats and time.perf_counter() - start + first < budget_s:
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
    return Timing(statistics.median(times or [first]), max(1, len(times)), mem.mb)


class _NoMemory:
    mb = float("nan")

    def __enter__(self) -> _NoMemory:
        return self

    def __exit__(self, *exc) -> None:
        pass


def step_fns(
    model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict, device: torch.device
) -> tuple[Callable, Callable]:
    """``(train_step, infer_step)`` on ``batch`` (``saccade.train.collate``'s: images on the
    CPU, proxy and labels moved to ``device`` once, here).

    ``train_step(other=None)``: the training loop's own step (``saccade.train.loop.train_step``:
    the model's loss as ``objectives.ELBO`` computes it, backward, the gradient clip, ``opt``;
    no schedule, no proxy noise) in training mode, on the batch or on the collated batch
    ``other`` (moved inside the step, as a training loop's batches are). ``infer_step()``: a
    forward pass in eval mode without gradients."""
    moved = batch | {"proxy": batch["proxy"].to(device), "label": batch["label"].to(device)}
    steps = loop.Steps([p for group in opt.param_groups for p in group["params"]], opt)
    objective = ELBO(model, LossWeights())

    def train_step(other: dict | None = None) -> None:
        model.train()
        loop.train_step(steps, objective, moved if other is None else other, device)

    @torch.no_grad()
    def infer_step() -> None:
        model.eval()
        model(batch["image"], moved["proxy"])

    return train_step, infer_step
