"""``python -m saccade.bench --suite step``: the VS training step with two crop encoders,
side by side in one run.

"before" is the "lenet" crop encoder (convolution, BatchNorm, ReLU, then pool) with its
weights in the default (contiguous) layout; "after" is the encoder that
``scripts/cluttered.sh`` trains with: "lenet-pool" (pool before norm and ReLU) with
channels_last weights (docs/results.md keeps why it replaced the first). Everything else is the same model: both run the parts that read no
later step once on all T steps (``VariationalSaccader.forward``), and both take the training
loop's own step (``saccade.train.loop.train_step``: the loss, backward, the clip, the same
AdamW, not fused). Both run cluttered/single at 100², T = 4, on the
same batch, in the same process, alternating, so that the load of a shared machine falls on
both alike. Rows: ms per image and per step at each batch size, and the ratio before/after.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch
from tqdm import tqdm

from ..data import make_dataset
from ..models.objective import LossWeights
from ..models.registry import create_model
from ..train.loop import Steps, train_step
from ..train.objectives import ELBO

VARIANTS = ("before", "after")


def _model_and_optimizer(variant: str, config):
    torch.manual_seed(0)
    kind = "lenet" if variant == "before" else "lenet-pool"
    model = create_model("vs", dataclasses.replace(config, crop_encoder=kind))
    if variant == "before":
        model.crop_encoder.net.to(memory_format=torch.contiguous_format)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return model.train(), opt


def bench_step(
    sides: list[int] | None = None,
    repeats: int = 20,
    batch_sizes: tuple[int, ...] = (64, 1),
    device: str = "cpu",
) -> list[dict]:
    """Median training-step time of each variant at each batch size (``sides`` is unused:
    the step is timed at 100², where the model's own work is all there is)."""
    from ..train.config import TrainConfig
    from ..train.loop import collate, model_config

    ds = make_dataset("cluttered", task="single", split="train", size=100)
    config = model_config(TrainConfig(task="single"), ds)
    rows = []
    for batch_size in batch_sizes:
        batch = collate([ds[i] for i in range(batch_size)])
        runs = {v: _model_and_optimizer(v, config) for v in VARIANTS}
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}

        # the training loop's step (T = 4, no schedule) of each variant's model
        steps = {
            v: (Steps(list(m.parameters()), opt), ELBO(m, LossWeights()))
            for v, (m, opt) in runs.items()
        }

        def step(v: str, batch=batch, steps=steps) -> None:
            train_step(*steps[v], batch, torch.device("cpu"))

        for v in VARIANTS:  # warm-up
            step(v)
        n = repeats if batch_size > 8 else 5 * repeats
        for _ in tqdm(range(n), desc=f"step, batch {batch_size}", unit="pair"):
            for v in VARIANTS:
                t = time.perf_counter()
                step(v)
                times[v].append(time.perf_counter() - t)
        medians = {v: statistics.median(times[v]) for v in VARIANTS}
        for v in VARIANTS:
            rows.append(
                {
                    "model": "vs",
                    "dataset": "cluttered",
                    "side": 100,
                    "phase": f"train-{v}",
                    "batch": batch_size,
                    "ms_per_image": 1e3 * medians[v] / batch_size,
                    "ms_per_step": 1e3 * medians[v],
                    "speedup": medians["before"] / medians[v],
                    "threads": torch.get_num_threads(),
                    "peak_mb": float("nan"),
                    "what": f"batch {batch_size}, T=4, {n} steps each, alternating",
                }
            )
    return rows
