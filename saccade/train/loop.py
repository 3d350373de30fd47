"""The training loop: ``setup``, ``resume_run``, ``train_one_epoch``, ``end_epoch``,
``test_run`` and ``fit``; the command line is ``saccade.train.cli``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .. import checkpoint
from ..data import make_dataset
from ..evaluate.loop import evaluate, noise_key, sample_pyramid
from ..models.objective import LossWeights
from ..models.registry import create_model, model_class, uses_where
from . import pretrain
from .config import TrainConfig


def model_config(cfg: TrainConfig, dataset):
    """The config of model ``cfg.model`` for ``dataset``: the run's ``model_args``, and from
    the dataset its classes, channels, proxy side and spec (those the config has)."""
    config_class = model_class(cfg.model).config_class
    known = config_class.__dataclass_fields__
    channels = int(getattr(dataset, "channels", 1))
    if channels != 1 and "channels" not in known:
        raise ValueError(
            f"model {cfg.model!r} takes grayscale images only; the dataset has {channels} "
            "channels (use --channels 1)"
        )
    from_data = {
        "n_classes": dataset.n_classes,
        "class_names": dataset.class_names,
        "channels": channels,
        "proxy_size": dataset.proxy_size,
        "dataset": dataset.spec.to_dict() | {"split": "train"},
    }
    return config_class(**cfg.model_args, **{k: v for k, v in from_data.items() if k in known})


def collate(samples: list[dict], first_level: int = 0) -> dict:
    """Stack what training needs: images, proxy (B, p, p) or (B, C, p, p), label (B,).

    ``first_level`` 0: images as a (B, H, W) or (B, H, W, C) uint8 tensor. Above 0: a list
    of B ``Pyramid``s holding only levels ``first_level``.. (``Pyramid.coarse``), built
    here, i.e. in the DataLoader worker: the main process then neither builds pyramids nor
    receives full images it never reads (``first_level_for``). A sample that brings its own
    ``pyramid`` (the folder dataset's cache: memory-mapped levels) gives those levels, read
    from disk; the full image is then never read."""
    # a slide has no image; a procedural canvas (zoom) is its own image source
    if first_level > 0 or any(not isinstance(s.get("image"), np.ndarray) for s in samples):
        images = [sample_pyramid(s).coarse(first_level) for s in samples]
    else:
        images = torch.from_numpy(np.stack([s["image"] for s in samples]))
    return {
        "image": images,
        "proxy": torch.from_numpy(np.stack([s["proxy"] for s in samples])),
        "label": torch.tensor([s["label"] for s in samples]),
    }


def first_level_for(model: torch.nn.Module, side: int) -> int:
    """The finest pyramid level ``model`` can read on images of ``side`` pixels: its
    ``finest_level(side)`` where it defines one (the models that crop), else 0 (the
    full-image baselines read every pixel)."""
    finest = getattr(model, "finest_level", None)
    return 0 if finest is None else int(finest(side))


def lr_at(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine decay to 5%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Run:
    """One training run as ``setup`` builds it and the epochs advance it."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    train_set: object
    val_set: object
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    total_steps: int
    log: Callable[[dict], None]
    command: str | None = None
    init_from: dict | None = None
    start_epoch: int = 0
    step: int = 0
    elapsed: float = 0.0  # seconds spent in training steps
    history: list = field(default_factory=list)  # the end-of-epoch events
    quiet: bool = False  # no progress bars nor printed lines (a callback shows progress)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main_rank(self) -> bool:
        return self.rank == 0


def _process_group(device: torch.device) -> tuple[torch.device, int, int]:
    """(device, rank, world size): under torchrun, join the process group (gloo on CPU,
    nccl on CUDA, one GPU per local rank)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device, 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device, dist.get_rank(), dist.get_world_size()


def dataset_options(cfg: TrainConfig) -> tuple[dict, int | None]:
    """(``make_dataset`` options, training length) of a run: its task (a folder's own
    options for ``--dataset folder``), size, proxy and noise settings. A setting left None is
    not passed, so the dataset's own default holds: its side (100 cluttered, 1500 megapixel,
    a folder's largest image) and its length (one pass over its training images)."""
    if cfg.dataset == "folder":  # the folder's classes are its task
        options = {
            "root": cfg.root,
            "channels": cfg.channels,
            "holdout": cfg.holdout,
            "cache": cfg.cache,
            "cache_dir": cfg.cache_dir,
            "labels": cfg.labels,
            "fold": cfg.fold,
        }
    else:
        options = {"task": cfg.task}
    # n_noise: a curriculum stage (the checkpoint's JSON keeps the command)
    given = {"size": cfg.size, "full_size": cfg.full_size, "proxy_size": cfg.proxy_size}
    given["n_noise"] = cfg.n_noise
    options |= {"proxy_noise": cfg.proxy_noise} | {k: v for k, v in given.items() if v is not None}
    return options, cfg.train_length


def setup(
    cfg: TrainConfig,
    callback: Callable[[dict], None] | None = None,
    command: str | None = None,
    resume: bool = False,
) -> Run:
    """Data, model (``cfg.model`` from the registry, on the device, from ``cfg.init``'s
    matching weights if given), optimizer, schedule and the metrics log of a fresh run."""
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' asked for, but CUDA is not available")
    device, rank, world = _process_group(device)

    options, length = dataset_options(cfg)
    train_set = make_dataset(cfg.dataset, split="train", seed=cfg.seed, length=length, **options)
    val_set = make_dataset(cfg.dataset, split="test", seed=0, **options)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, model_config(cfg, train_set)).to(device)
    if hasattr(train_set, "levels_from"):
        # the cache keeps only the pyramid levels the crops read (none finer); the checkpoint's
        # spec records it, so evaluation reads the same levels
        first = first_level_for(model, train_set.side)
        train_set.levels_from = val_set.levels_from = first
        model.config.dataset = train_set.spec.to_dict() | {"split": "train"}
    init_from = None
    if cfg.init and not resume:
        parts = [p.strip() for p in cfg.init_parts.split(",")] if cfg.init_parts else None
        if parts is None:
            check_init_matches(cfg.init, model.config)
        copied = checkpoint.load_matching(model, cfg.init, parts)
        init_from = {"checkpoint": str(cfg.init), "parts": parts, "tensors_copied": len(copied)}
    if cfg.reader and not resume:
        if not hasattr(model, "crop_encoder"):
            raise ValueError(f"reader={cfg.reader!r}: model {cfg.model!r} has no crop encoder")
        meta = pretrain.load_into(model, cfg.reader)
        init_from = (init_from or {}) | {
            "reader": str(cfg.reader),
            "reader_command": meta.get("command"),
            "reader_test_accuracy": meta.get("test_accuracy"),
        }
    trained = [p for p in freeze(model, cfg.freeze).parameters() if p.requires_grad]
    # not fused: --resume must continue bitwise (docs/results.md#adamw-not-fused)
    opt = torch.optim.AdamW(trained, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / (cfg.batch_size * world))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.steps is not None:
        total_steps = min(total_steps, cfg.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_at(s, total_steps, min(cfg.warmup, total_steps // 5 + 1))
    )
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    metrics_path = Path(str(cfg.out) + ".metrics.jsonl")
    if rank == 0:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            metrics_path.write_text("")

    def log(event: dict) -> None:
        if rank == 0:
            with metrics_path.open("a") as f:
                f.write(json.dumps(event) + "\n")
            if callback is not None:
                callback(event)

    return Run(
        cfg, device, rank, world, train_set, val_set, model, ddp_model, opt, sched,
        total_steps, log, command, init_from, quiet=callback is not None,
    )  # fmt: skip


def frozen_parts(model: torch.nn.Module, names: str | None) -> list[torch.nn.Module]:
    """The submodules that ``--freeze a,b`` names (None: none). Raises ValueError naming an
    unknown submodule and listing the model's."""
    children = dict(model.named_children())
    parts = []
    for name in [n.strip() for n in names.split(",") if n.strip()] if names else []:
        if name not in children:
            raise ValueError(
                f"freeze={names!r}: no submodule {name!r}; accepted: {sorted(children)}"
            )
        parts.append(children[name])
    return parts


def freeze(model: torch.nn.Module, names: str | None) -> torch.nn.Module:
    """Stop the gradient of the named submodules; returns the model. They also stay in
    evaluation mode while the rest trains (``train_mode``): a frozen reader's BatchNorm keeps
    its own statistics instead of those of the model's crops, mostly empty at first."""
    for part in frozen_parts(model, names):
        part.requires_grad_(False)
    return model


def train_mode(model: torch.nn.Module, frozen: str | None) -> None:
    """``model.train()``, the frozen submodules (``--freeze``) left in evaluation mode."""
    model.train()
    for part in frozen_parts(model, frozen):
        part.eval()


def check_init_matches(init: str, config) -> None:
    """Refuse ``--init`` from a checkpoint of another dataset, task or channel count (copying
    all of it would mix parts trained for other inputs); ``--init-parts`` lifts it."""
    meta = checkpoint.read_meta(init)
    theirs, ours = meta.get("config", {}), config.to_dict()
    t_data, o_data = theirs.get("dataset", {}), ours.get("dataset", {})
    pairs = {
        "dataset": (t_data.get("name"), o_data.get("name")),
        "task": (t_data.get("task"), o_data.get("task")),
        "channels": (theirs.get("channels", 1), ours.get("channels", 1)),
    }
    differ = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if differ:
        said = "; ".join(
            f"{k} {a!r} (init) against {b!r} (this run)" for k, (a, b) in differ.items()
        )
        raise ValueError(
            f"init={init!r} was trained for other data: {said}. Say which parts to copy with "
            "--init-parts (e.g. crop_encoder,classifier)"
        )


def resume_run(run: Run) -> None:
    """Continue the run saved at ``cfg.out``: weights, optimizer, scheduler, RNG, epoch,
    step, time and history, refusing a checkpoint trained with other settings."""
    cfg = run.cfg
    meta = checkpoint.read_meta(cfg.out)
    saved = {"model": meta.get("model", "vs")} | meta.get("train", {})
    ours = cfg.settings()
    keys = ("model", "dataset", "task", "size", "full_size", "variance", "n_saccades", "crop_size")
    mismatch = {
        k: (saved[k], ours[k]) for k in keys if k in saved and k in ours and saved[k] != ours[k]
    }
    if mismatch:
        raise ValueError(f"--resume: {cfg.out} was trained with other settings: {mismatch}")
    run.model.load_state_dict(checkpoint.load(cfg.out).state_dict())
    tensors, state = checkpoint.load_state(cfg.out)
    if meta.get("steps_done") != state.get("step"):
        # killed between writing the checkpoint and its state: they are of two epochs
        raise ValueError(
            f"--resume: the checkpoint {cfg.out}.json (step {meta.get('steps_done')}) and its "
            f"training state {cfg.out}.state.json (step {state.get('step')}) disagree (the run "
            "stopped while saving); train again without --resume, or --init from it"
        )
    checkpoint.restore_optimizer(run.opt, tensors, state["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    run.start_epoch, run.step = state["epoch"] + 1, state["step"]
    run.elapsed, run.history = state["elapsed_s"], state["history"]
    run.sched.last_epoch = run.step - 1
    run.sched.step()  # recompute the learning rate for the restored step
    run.init_from = meta.get("init_from")


def _loader(run: Run, epoch: int) -> torch.utils.data.DataLoader:
    cfg = run.cfg
    if run.distributed:
        sampler = torch.utils.data.DistributedSampler(
            run.train_set, run.world, run.rank, shuffle=True, seed=cfg.seed * 1000 + epoch
        )
    else:
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        sampler = torch.utils.data.RandomSampler(run.train_set, generator=gen)
    first = first_level_for(run.model, run.train_set.side)
    return torch.utils.data.DataLoader(
        run.train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=functools.partial(collate, first_level=first),
        num_workers=cfg.workers,
        persistent_workers=False,
    )


def train_one_epoch(run: Run, epoch: int, budget_s: float | None = None) -> dict:
    """Optimizer steps over one epoch, until its end, ``total_steps`` or ``budget_s`` seconds
    of training. Returns {"epoch_s", "first_batch_s" (the workers' start-up), "samples",
    "step_s" (time in training steps; the rest of epoch_s waited for data), "stopped" (the
    run ends after this epoch)}.

    Raises ValueError when the loss turns NaN or infinite: nothing of this epoch is saved,
    so the checkpoint of the last finished epoch stays as it was."""
    cfg, device, model = run.cfg, run.device, run.model
    weights = LossWeights(cfg.beta_recon, cfg.beta_kl, cfg.cell_weight, cfg.find_weight)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    train_mode(model, cfg.freeze)
    bar = tqdm(
        _loader(run, epoch),
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not run.main_rank or run.quiet,
        unit="batch",
    )
    t_epoch = time.perf_counter()
    first_s = None  # until the first batch arrived: the workers' start-up
    samples, elapsed0 = 0, run.elapsed
    running: dict[str, float] = {}
    n_running = 0
    stopped = False
    for batch in bar:
        t0 = time.perf_counter()
        if first_s is None:
            first_s = t0 - t_epoch
        samples += len(batch["label"])
        proxy = batch["proxy"].to(device, non_blocking=True)
        labels = batch["label"].to(device, non_blocking=True)
        with autocast:
            if cfg.noise_aug > 0:  # a noisy proxy: the model must learn to be unsure
                shape = (len(proxy),) + (1,) * (proxy.ndim - 1)  # per image, gray or colour
                level = torch.rand(shape, device=device) * cfg.noise_aug
                proxy = (proxy + level * torch.randn_like(proxy)).clamp(0, 1)
            horizon = model.config.n_saccades  # a baseline's own (1 for the ResNets)
            if cfg.max_train_saccades and uses_where(model):
                horizon = int(torch.randint(horizon, cfg.max_train_saccades + 1, ()))
            # A batch at the mode trains the classifier on the crops evaluation takes
            # (where the posterior is flat, its mode and its samples look elsewhere).
            at_mode = cfg.mode_batches > 0 and float(torch.rand(())) < cfg.mode_batches
            output = run.ddp_model(
                batch["image"], proxy, horizon, sample=False if at_mode else None
            )
            total, terms = model.loss(output, labels, proxy, weights)
        if not math.isfinite(terms["loss"]):
            kept = (
                f"the checkpoint of epoch {run.history[-1]['epoch']} in {cfg.out} is kept"
                if run.history
                else f"no epoch had finished, so nothing was written to {cfg.out}"
            )
            raise ValueError(
                f"the loss became {terms['loss']} at step {run.step + 1} (epoch {epoch + 1}): "
                f"training stopped; {kept}. Try a lower --lr (it was {cfg.lr})"
            )
        run.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        run.opt.step()
        run.sched.step()
        run.step += 1
        run.elapsed += time.perf_counter() - t0
        for k, v in terms.items():
            running[k] = running.get(k, 0.0) + v
        n_running += 1
        if run.step % cfg.log_every == 0 or run.step == run.total_steps:
            avg = {k: v / n_running for k, v in running.items()}
            running, n_running = {}, 0
            bar.set_postfix(loss=f"{avg['loss']:.3f}", acc=f"{avg['acc']:.3f}")
            run.log(
                {
                    "step": run.step,
                    "total_steps": run.total_steps,
                    "epoch": epoch + 1,
                    "lr": run.sched.get_last_lr()[0],
                    **{("train_acc" if k == "acc" else k): round(v, 5) for k, v in avg.items()},
                }
            )
        if run.step >= run.total_steps or (budget_s is not None and run.elapsed >= budget_s):
            stopped = True
            break
    return {
        "epoch_s": time.perf_counter() - t_epoch,
        "first_batch_s": first_s or 0.0,
        "samples": samples,
        "step_s": run.elapsed - elapsed0,  # in training steps; the rest waited for data
        "stopped": stopped,
    }


def end_epoch(run: Run, epoch: int, epoch_s: float) -> None:
    """After an epoch: the validation accuracy, then the checkpoint and the resumable state
    (rank 0; under DDP the BatchNorm statistics are rank 0's, as DDP broadcasts)."""
    cfg = run.cfg
    if run.distributed:
        for buffer in run.model.buffers():
            dist.broadcast(buffer, 0)
    if run.main_rank:
        noise = [cfg.proxy_noise] if cfg.proxy_noise > 0 else []
        result = evaluate(run.model, cfg.val_n, noise, dataset=run.val_set, device=run.device)
        val = np.array(result["per_saccade"])
        event = {
            "epoch": epoch + 1,
            "step": run.step,
            "val_acc": round(float(val[-1]), 5),
            "val_acc_per_saccade": [round(float(v), 5) for v in val],
            # at the proxy noise it trains with (the same as val_acc when that is 0)
            "val_acc_train_noise": round(
                float(result["noise"][noise_key(cfg.proxy_noise)][run.model.config.n_saccades - 1]),
                5,
            ),
            "epoch_s": round(epoch_s, 2),
            "train_s": round(run.elapsed, 2),
        }
        run.history.append(event)
        if not run.quiet:
            tqdm.write(
                f"epoch {epoch + 1}: val_acc {val[-1]:.4f} "
                f"(per saccade {np.round(val, 3).tolist()}), {epoch_s:.0f}s"
            )
        meta = {
            "command": run.command,
            "train": cfg.settings(),
            "init_from": run.init_from,
            "epochs_done": epoch + 1,
            "steps_done": run.step,
            "train_time_s": round(run.elapsed, 2),
            "history": run.history,
        }
        checkpoint.save(run.model, cfg.out, meta)
        checkpoint.save_state(cfg.out, run.opt, epoch, run.step, run.elapsed, run.history)
        run.log(event)  # after the save: a callback that stops the run loses nothing
    if run.distributed:
        dist.barrier()


def test_run(run: Run) -> float:
    """The final ``test_accuracy`` on ``test_n`` test samples, written into the checkpoint."""
    cfg = run.cfg
    test = np.array(
        evaluate(
            run.model,
            cfg.test_n,
            [0.0],
            dataset=run.val_set,
            device=run.device,
            progress=not run.quiet,
        )["per_saccade"]
    )
    meta = checkpoint.read_meta(cfg.out)
    meta.pop("config", None)
    meta.update(
        test_accuracy=round(float(test[-1]), 5),
        test_accuracy_per_saccade=[round(float(v), 5) for v in test],
        test_n=min(cfg.test_n, len(run.val_set)),
    )
    checkpoint.save(run.model, cfg.out, meta)
    run.log({"test_accuracy": round(float(test[-1]), 5), "test_n": meta["test_n"]})
    return float(test[-1])


def fit(
    cfg: TrainConfig,
    callback: Callable[[dict], None] | None = None,
    resume: bool = False,
    command: str | None = None,
) -> dict:
    """Train; returns the final metrics and, under "model", the trained model.

    ``callback(event)`` gets a dict every ``log_every`` steps (step, total_steps, epoch, loss,
    ce, acc as train_acc, lr, and the model's other loss terms) and after each epoch (epoch,
    step, val_acc); with a callback, no progress bars are drawn.
    """
    run = setup(cfg, callback, command, resume)
    if resume:
        resume_run(run)
    budget_s = cfg.minutes * 60 if cfg.minutes else None
    for epoch in range(run.start_epoch, cfg.epochs):
        if run.step >= run.total_steps:
            break
        done = train_one_epoch(run, epoch, budget_s)
        end_epoch(run, epoch, done["epoch_s"])
        if done["stopped"]:
            break
    result = {"steps": run.step, "train_time_s": round(run.elapsed, 2), "model": run.model}
    if run.main_rank and cfg.test_n > 0:
        result["test_accuracy"] = test_run(run)
    if run.distributed:
        dist.barrier()
    return result


def compute_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads for the training process: one core is left to each DataLoader worker
    (``OMP_NUM_THREADS``, when set, wins): a thread competing with a worker for its core
    slows both (docs/results.md#torch-threads-beside-the-data-workers)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return max(1, torch.get_num_threads())
    cores = cores or os.cpu_count() or 1
    return max(1, cores - max(0, int(workers)))
