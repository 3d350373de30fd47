"""``python -m saccade.train``: train a variational saccading model, or a baseline
(``--model``: any name of ``saccade.models``; each model brings its own loss).

The loop, as in timm's and RAM's trainers, is ``setup`` (data, model, optimizer, schedule),
``resume_run``, then per epoch ``train_one_epoch`` and ``end_epoch`` (validation, checkpoint),
and ``test_run`` at the end. AdamW with linear warm-up and cosine decay; a checkpoint is written atomically after every
epoch (``OUT.safetensors`` + ``OUT.json``), with the resumable state beside it
(``OUT.state.safetensors`` + ``OUT.state.json``) and metrics as JSON lines
(``OUT.metrics.jsonl``). ``--resume`` continues from the last epoch exactly: weights,
optimizer, scheduler, RNG and epoch. Data-parallel under ``torchrun`` (DDP: gloo on CPU,
nccl on CUDA) with a DistributedSampler; rank 0 alone writes files.

The per-epoch "val_acc" is measured on the first ``val_n`` test samples and is shown, never
used to pick a model; the checkpoint's ``test_accuracy`` comes from ``test_n`` test samples
at the end. Both go through ``saccade.evaluate.evaluate`` with a clean proxy, so
``test_accuracy`` is the same figure as ``python -m saccade.evaluate``'s ``accuracy``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import fields

import torch
import torch.distributed as dist

from .config import PRESETS, TrainConfig, flag_help
from .loop import compute_threads, fit


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    """``python -m saccade.train``'s command line: (the run's settings, ``--resume``). A
    ``--preset`` sets the defaults; argparse exits with a message on a bad value."""
    parser = argparse.ArgumentParser(
        prog="python -m saccade.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            truth = lambda s: s.lower() in ("1", "true", "yes")  # noqa: E731
            parser.add_argument(flag, type=truth, help=flag_help(f))
            continue
        kind = {int: int, float: float}.get(type(default), str)
        if f.name in ("steps", "full_size", "max_train_saccades", "proxy_size", "n_noise"):
            kind = int
        elif f.name == "seen_init":
            kind = float
        elif f.name == "minutes":
            kind = float
        parser.add_argument(flag, type=kind, default=default, help=flag_help(f))
    parser.add_argument("--resume", action="store_true", help="continue the run at --out")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="the settings measured for a dataset (saccade.train.PRESETS); flags given "
        "explicitly override them",
    )
    preset, _ = parser.parse_known_args(argv)
    if preset.preset:
        parser.set_defaults(**PRESETS[preset.preset])
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    args.pop("preset")
    args = {k: v for k, v in args.items() if v is not None}
    try:
        return TrainConfig(**args), resume
    except ValueError as e:
        parser.error(str(e))


def main(argv: list[str] | None = None) -> None:
    cfg, resume = parse_args(argv)
    torch.set_num_threads(compute_threads(cfg.workers))
    args = sys.argv[1:] if argv is None else argv
    command = "python -m saccade.train " + shlex.join(args)
    try:
        result = fit(cfg, resume=resume, command=command)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    except OSError as e:  # a full disk, a read-only --out
        raise SystemExit(f"error: could not write the run's files ({e})") from None
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.items() if k != "model"}))
    if dist.is_initialized():
        dist.destroy_process_group()
