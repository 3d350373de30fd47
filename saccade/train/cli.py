"""``python -m saccade.train``: train a variational saccading model, or a baseline
(``--model``: any name of ``saccade.models``; each model brings its own loss).

Its flags are the fields of the run's config (``saccade.train.config.TrainConfig``) and of
the chosen model's config (``--model vs``: ``saccade.models.vs.ModelConfig``), each with the
help written on the field.

The loop (``saccade.train.loop``, the one every training command uses), as in timm's and
RAM's trainers, is ``setup`` (data, model, optimizer, schedule, the model's loss as the
objective), ``resume_run``, then per epoch ``train_one_epoch`` and ``end_epoch`` (validation,
checkpoint), and ``test_run`` at the end. AdamW with linear warm-up and cosine decay; a
checkpoint is written atomically after every epoch, over the last one (``OUT.safetensors`` + ``OUT.json``), with the resumable state beside it
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
import types
import typing

import torch
import torch.distributed as dist

from ..models.registry import model_class, model_names, settings_of
from .config import PRESETS, TrainConfig, for_model
from .loop import compute_threads, fit


def parse_bool(text: str) -> bool:
    """true/false, yes/no, 1/0 (any case) -> bool; argparse reports anything else."""
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in value:
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
    return value[text.lower()]


def add_flags(group, owner: type, chosen: list, choices: dict | None = None) -> None:
    """A ``--flag`` for each field of ``chosen`` (fields of the dataclass ``owner``): typed
    by its annotation (``int | None`` takes an int), with its ``help`` and ``choices``
    metadata (or ``choices[name]``); ``crop_size`` -> ``--crop-size``."""
    hints = typing.get_type_hints(owner)
    for f in chosen:
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # X | None
            kind = next(k for k in kind.__args__ if k is not type(None))
        if kind is bool:
            kind = parse_bool
        accepted = (choices or {}).get(f.name) or f.metadata.get("choices") or None
        help = f.metadata.get("help", "").replace("%", "%%")
        help += "" if f.default is None else " (default: %(default)s)"  # a preset's, if set
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(flag, type=kind, default=f.default, choices=accepted, help=help)


def build_parser(model: str) -> argparse.ArgumentParser:
    """The command line for a run of ``model``: the run's flags (``TrainConfig``), then the
    model's (its config's ``setting`` fields)."""
    parser = argparse.ArgumentParser(
        prog="python -m saccade.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"The model settings above are those of --model {model}; "
        "`python -m saccade.train --model NAME --help` lists another's "
        f"(models: {', '.join(model_names())}).",
    )
    run = parser.add_argument_group("the run (saccade.train.config.TrainConfig)")
    add_flags(run, TrainConfig, TrainConfig.run_fields(), {"model": model_names()})
    run.add_argument("--resume", action="store_true", help="continue the run at --out")
    run.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="settings chosen for a dataset (saccade.train.config.PRESETS); flags given "
        "explicitly override them",
    )
    config_class = model_class(model).config_class
    add_flags(
        parser.add_argument_group(f"the model {model} ({config_class.__qualname__})"),
        config_class,
        settings_of(model),
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    """``python -m saccade.train``'s command line: (the run's settings, ``--resume``).

    ``--model`` (and ``--preset``, which may name one) are read first: the model decides
    which settings are flags. A preset sets defaults; argparse exits with a message on a
    bad value."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--model")
    first.add_argument("--preset")
    known, _ = first.parse_known_args(argv)
    preset = PRESETS.get(known.preset, {})
    model = known.model or preset.get("model") or TrainConfig.model
    if model not in model_names():  # the full parser's --model choices reject it, below
        model = TrainConfig.model
    parser = build_parser(model)
    parser.set_defaults(**for_model(preset, model))
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    args.pop("preset")
    try:
        return TrainConfig.from_settings(**args), resume
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
