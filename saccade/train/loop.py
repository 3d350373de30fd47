"""The training loop, written once for every objective; the command line is
``saccade.train.cli``.

An **objective** maps a batch to its loss and the loss's named terms
(``saccade.train.objectives``: the model's own loss, i.e. the VS bound; the find term alone,
``python -m saccade.train.distil``; the reader's cross-entropy, ``python -m
saccade.train.pretrain``). What they share is written here, once:

- ``train_step``: the batch to the device, the proxy's noise augmentation, bf16 autocast on
  CUDA, the NaN check, backward, the gradient clip, the optimizer and its schedule
  (``Steps``, from ``make_steps``: AdamW, ``lr_at``'s warm-up and cosine decay, or a
  one-cycle schedule);
- ``train_one_epoch``: the steps over one epoch's batches (a ``Loop``), the running terms to
  the metrics log and the progress bar, the step count and the time budget;
- for a ``TrainConfig`` run, as in timm's and RAM's trainers: ``setup`` (data, model,
  ``Loop``), ``resume_run``, ``run_epochs`` (per epoch ``train_one_epoch`` and
  ``end_epoch``: the validation figures, the checkpoint and the resumable state, DDP's
  buffers), ``test_run``; ``fit`` is all of them.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .. import checkpoint
from ..data import make_dataset
from ..evaluate.loop import evaluate, noise_key, sample_pyramid
from ..models.registry import create_model, model_class
from . import readers
from .config import TrainConfig
from .imitation import Imitation
from .objectives import ELBO
from .sides import BySide, choosing_canvases, interleave, kept_score, other_sides


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
    batch = {
        "image": images,
        "proxy": torch.from_numpy(np.stack([s["proxy"] for s in samples])),
        "label": torch.tensor([s["label"] for s in samples]),
    }
    if all("cue_boxes" in s for s in samples):  # zoom: the imitation's teacher reads them
        batch["cue_boxes"] = [s["cue_boxes"] for s in samples]
    return batch


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


#: batch -> (the loss to minimise, a 0-d tensor; its named terms as floats, "loss" among
#: them). ``saccade.train.objectives`` holds the three trained here.
Objective = Callable[[dict], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Steps:
    """What an optimizer step updates and how: the parameters, the optimizer over them, its
    learning-rate schedule (None: constant) and the gradient-norm clip (None: no clip)."""

    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None = None
    clip: float | None = 5.0

    def lr(self) -> float:
        """The learning rate of the last step (the first group's)."""
        return self.sched.get_last_lr()[0] if self.sched else self.opt.param_groups[0]["lr"]


def make_steps(
    params,
    lr: float,
    weight_decay: float,
    total_steps: int,
    warmup: int = 0,
    schedule: str = "cosine",
    fused: bool = False,
    clip: float | None = 5.0,
) -> Steps:
    """AdamW over ``params`` with a schedule over ``total_steps``: "cosine" (``lr_at``: linear
    warm-up over ``min(warmup, total_steps // 5 + 1)`` steps, then cosine decay to 5%) or
    "one-cycle" (``torch.optim.lr_scheduler.OneCycleLR``, the reader's). ``fused``: torch's
    fused AdamW, whose numbers differ; a run that resumes is not fused
    (docs/results.md#adamw-not-fused)."""
    params = list(params)
    opt = torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, **({"fused": True} if fused else {})
    )
    if schedule == "cosine":
        ramp = min(warmup, total_steps // 5 + 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total_steps, ramp))
    elif schedule == "one-cycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=total_steps)
    else:
        raise ValueError(f"schedule={schedule!r}; accepted: cosine, one-cycle")
    return Steps(params, opt, sched, clip)


class NonFiniteLoss(ValueError):
    """The objective's loss was NaN or infinite (``train_step`` updates nothing then)."""

    def __init__(self, value: float):
        super().__init__(f"the loss became {value}")
        self.value = value


def noisy(proxy: torch.Tensor, noise_aug: float) -> torch.Tensor:
    """Training's proxy augmentation: Gaussian noise of std ~ U(0, ``noise_aug``), one draw
    per image, of a proxy (B, p, p) or (B, C, p, p), clamped to [0, 1]. A noisy proxy: the
    model must learn to be unsure."""
    shape = (len(proxy),) + (1,) * (proxy.ndim - 1)  # per image, gray or colour
    level = torch.rand(shape, device=proxy.device) * noise_aug
    return (proxy + level * torch.randn_like(proxy)).clamp(0, 1)


def train_step(
    steps: Steps, objective: Objective, batch: dict, device: torch.device, noise_aug: float = 0.0
) -> dict[str, float]:
    """One optimizer step of ``objective`` on ``batch``, as every training command takes it.

    The batch's tensors move to ``device``, but "image" (read where it lies: on the CPU, or
    memory-mapped, by the crops); its "proxy", if any, gets ``noisy``'s augmentation; the
    objective runs under bf16 autocast on CUDA; then backward, the clip, the optimizer and
    the schedule. Returns the objective's terms. Raises ``NonFiniteLoss`` before any update
    when the loss is NaN or infinite."""
    batch = {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) and k != "image" else v
        for k, v in batch.items()
    }
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        if noise_aug > 0 and "proxy" in batch:
            batch["proxy"] = noisy(batch["proxy"], noise_aug)
        total, terms = objective(batch)
    if not math.isfinite(terms["loss"]):
        raise NonFiniteLoss(terms["loss"])
    steps.opt.zero_grad(set_to_none=True)
    total.backward()
    if steps.clip is not None:
        torch.nn.utils.clip_grad_norm_(steps.params, steps.clip)
    steps.opt.step()
    if steps.sched is not None:
        steps.sched.step()
    return terms


def _nothing_saved() -> str:
    return "nothing was saved"


@dataclass
class Loop:
    """One objective's training, as ``train_one_epoch`` advances it: the ``Steps``, the
    objective, ``batches(epoch)`` (an iterable of batch dicts), the model it puts in
    training mode each epoch (``frozen`` submodules left in evaluation mode), and where the
    running terms go (``log(event)`` every ``log_every`` steps, a progress bar unless
    ``quiet``). ``kept()`` says what a failed step leaves on disk."""

    steps: Steps
    objective: Objective
    batches: Callable[[int], Iterable[dict]]
    model: torch.nn.Module
    total_steps: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    epochs: int = 1
    noise_aug: float = 0.0
    frozen: str | None = None
    log_every: int = 20
    log: Callable[[dict], None] = field(default=lambda event: None)
    quiet: bool = False
    kept: Callable[[], str] = _nothing_saved
    step: int = 0
    elapsed: float = 0.0  # seconds spent in training steps


def train_one_epoch(loop: Loop, epoch: int, budget_s: float | None = None) -> dict:
    """``train_step``s over the batches of one epoch, until its end, ``total_steps`` or
    ``budget_s`` seconds of training. Returns {"epoch_s", "first_batch_s" (the workers'
    start-up), "samples", "step_s" (time in training steps; the rest of epoch_s waited for
    data), "stopped" (the run ends after this epoch), "terms" (the epoch's mean of each)}.

    Raises ValueError when the loss turns NaN or infinite: nothing of this epoch is saved,
    so what the last finished epoch saved stays as it was (``kept``)."""
    train_mode(loop.model, loop.frozen)
    bar = tqdm(
        loop.batches(epoch),
        desc=f"epoch {epoch + 1}/{loop.epochs}",
        disable=loop.quiet,
        unit="batch",
    )
    t_epoch = time.perf_counter()
    first_s = None  # until the first batch arrived: the workers' start-up
    samples, elapsed0 = 0, loop.elapsed
    running: dict[str, float] = {}
    epoch_sums: dict[str, float] = {}
    n_running = n_epoch = 0
    stopped = False
    for batch in bar:
        t0 = time.perf_counter()
        if first_s is None:
            first_s = t0 - t_epoch
        samples += len(next(iter(batch.values())))
        try:
            terms = train_step(loop.steps, loop.objective, batch, loop.device, loop.noise_aug)
        except NonFiniteLoss as e:
            raise ValueError(
                f"the loss became {e.value} at step {loop.step + 1} (epoch {epoch + 1}): "
                f"training stopped; {loop.kept()}. Try a lower --lr (it was "
                f"{loop.steps.opt.defaults['lr']})"
            ) from None
        loop.step += 1
        loop.elapsed += time.perf_counter() - t0
        for k, v in terms.items():
            running[k] = running.get(k, 0.0) + v
            epoch_sums[k] = epoch_sums.get(k, 0.0) + v
        n_running += 1
        n_epoch += 1
        if loop.step % loop.log_every == 0 or loop.step == loop.total_steps:
            avg = {k: v / n_running for k, v in running.items()}
            running, n_running = {}, 0
            bar.set_postfix({k: f"{avg[k]:.3f}" for k in ("loss", "acc") if k in avg})
            loop.log(
                {
                    "step": loop.step,
                    "total_steps": loop.total_steps,
                    "epoch": epoch + 1,
                    "lr": loop.steps.lr(),
                    **{("train_acc" if k == "acc" else k): round(v, 5) for k, v in avg.items()},
                }
            )
        if loop.step >= loop.total_steps or (budget_s is not None and loop.elapsed >= budget_s):
            stopped = True
            break
    return {
        "epoch_s": time.perf_counter() - t_epoch,
        "first_batch_s": first_s or 0.0,
        "samples": samples,
        "step_s": loop.elapsed - elapsed0,  # in training steps; the rest waited for data
        "stopped": stopped,
        "terms": {k: v / n_epoch for k, v in epoch_sums.items()},
    }


@dataclass
class Run:
    """One ``TrainConfig`` run as ``setup`` builds it: its data, model, the ``Loop`` that
    trains it, and what ``run_epochs`` saves after each epoch."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    train_set: object
    val_set: object
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    loop: Loop
    log: Callable[[dict], None]
    command: str | None = None
    init_from: dict | None = None
    start_epoch: int = 0
    history: list = field(default_factory=list)  # the end-of-epoch events
    quiet: bool = False  # no progress bars nor printed lines (a callback shows progress)
    test_set: object | None = None  # the final test's samples (None: val_set's)
    sides: list = field(default_factory=list)  # --also-sizes: ``sides.Side``s

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main_rank(self) -> bool:
        return self.rank == 0

    def kept(self) -> str:
        """What a run that stops now leaves at ``cfg.out``."""
        if self.history:
            return f"the checkpoint of epoch {self.history[-1]['epoch']} in {self.cfg.out} is kept"
        return f"no epoch had finished, so nothing was written to {self.cfg.out}"


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
            "mpp": cfg.mpp,
            "default_mpp": cfg.default_mpp,
            "canvas_um": cfg.canvas_um,
            "invert": cfg.invert,
        }
    else:
        options = {"task": cfg.task}
    # n_noise: a curriculum stage (the checkpoint's JSON keeps the command)
    given = {"size": cfg.size, "full_size": cfg.full_size, "proxy_size": cfg.proxy_size}
    given |= {"n_noise": cfg.n_noise, "render": cfg.zoom_render}
    options |= {"proxy_noise": cfg.proxy_noise} | {k: v for k, v in given.items() if v is not None}
    return options, cfg.train_length


def setup(
    cfg: TrainConfig,
    callback: Callable[[dict], None] | None = None,
    command: str | None = None,
    resume: bool = False,
    parameters: Callable[[torch.nn.Module], Iterable[torch.nn.Parameter]] | None = None,
    drop_last: bool = False,
) -> Run:
    """Data, model (``cfg.model`` from the registry, on the device, from ``cfg.init``'s
    matching weights if given), the metrics log of a fresh run, and its ``Loop``: AdamW over
    ``parameters(model)`` (default: every parameter ``--freeze`` leaves) with ``lr_at``'s
    schedule, the model's own loss (``objectives.ELBO``) over the DataLoader's batches.
    ``drop_last``: an epoch leaves out the last partial batch (the steps per epoch are
    rounded down)."""
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' asked for, but CUDA is not available")
    device, rank, world = _process_group(device)

    options, length = dataset_options(cfg)
    train_set = make_dataset(cfg.dataset, split="train", seed=cfg.seed, length=length, **options)
    test_set = make_dataset(cfg.dataset, split="test", seed=0, **options)
    val_set = test_set
    if cfg.keep == "best":  # choosing an epoch on test canvases would flatter its test figure
        val_set = choosing_canvases(cfg, cfg.seed, options)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, model_config(cfg, train_set)).to(device)
    if hasattr(train_set, "levels_from"):
        # the cache keeps only the pyramid levels the crops read (none finer); the checkpoint's
        # spec records it, so evaluation reads the same levels
        first = first_level_for(model, train_set.side)
        train_set.levels_from = val_set.levels_from = test_set.levels_from = first
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
        meta = readers.load_into(model, cfg.reader)
        init_from = (init_from or {}) | {
            "reader": str(cfg.reader),
            "reader_command": meta.get("command"),
            "reader_test_accuracy": meta.get("test_accuracy"),
        }
    sides = []
    if cfg.also_sizes:  # the same weights trained at other canvas sides (saccade.train.sides)
        if world > 1:
            raise ValueError("also_sizes: training on several sides runs in one process only")
        view_objective = lambda view: objective_for(cfg, view, view)  # noqa: E731
        sides = other_sides(cfg, options, length, model, view_objective, first_level_for)
    freeze(model, cfg.freeze)
    if parameters is None:
        trained = [p for p in model.parameters() if p.requires_grad]
    else:
        trained = list(parameters(model))
    batches = math.floor if drop_last else math.ceil
    steps_per_epoch = batches(len(train_set) / (cfg.batch_size * world)) * (1 + len(sides))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.steps is not None:
        total_steps = min(total_steps, cfg.steps)
    steps = make_steps(trained, cfg.lr, cfg.weight_decay, total_steps, cfg.warmup)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    metrics_path = Path(str(cfg.out) + ".metrics.jsonl")
    if rank == 0:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(cfg.out)
        if not resume:
            metrics_path.write_text("")

    def log(event: dict) -> None:
        if rank == 0:
            with metrics_path.open("a") as f:
                f.write(json.dumps(event) + "\n")
            if callback is not None:
                callback(event)

    objective = objective_for(cfg, model, ddp_model)
    if sides:  # --also-sizes: each batch through the view of its side
        by_side = {s.size: s.objective for s in sides} | {train_set.side: objective}
        objective = BySide(by_side, {s.size: cfg.also_weight for s in sides})
    loop = Loop(
        steps, objective, lambda epoch: _batches(run, epoch), model, total_steps, device,
        cfg.epochs, cfg.noise_aug, cfg.freeze, cfg.log_every, log,
        quiet=callback is not None or rank != 0,
    )  # fmt: skip
    run = Run(
        cfg, device, rank, world, train_set, val_set, model, ddp_model, loop, log, command,
        init_from, quiet=callback is not None, test_set=test_set, sides=sides,
    )  # fmt: skip
    loop.kept = run.kept
    return run


def objective_for(cfg: TrainConfig, model: torch.nn.Module, forward: torch.nn.Module):
    """The run's objective (``cfg.objective``) training ``model`` through ``forward`` (the
    model, or its DDP wrapper)."""
    if cfg.objective == "imitation":
        return Imitation(
            model,
            cfg.teacher_forcing,
            forward=forward,
            order=cfg.teacher_order,
            cue_side=cfg.teacher_cue_side,
            zoom=cfg.teacher_zoom_sides(),
            region_side=cfg.teacher_region_side,
            fit=cfg.imitation_fit,
        )
    return ELBO(model, cfg, cfg.max_train_saccades, cfg.mode_batches, forward)


def remove_stale_temporaries(out: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that a save killed half-way left beside checkpoint
    ``out`` (``OUT.safetensors.tmp-PID-RANDOM``, ``saccade.atomic``): a run keeps one
    checkpoint and one training state, each overwritten after every epoch. Returns them."""
    out = Path(out)
    stale = sorted(out.parent.glob(f"{out.name}.*.tmp-*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
    cfg, loop = run.cfg, run.loop
    meta = checkpoint.read_meta(cfg.out)
    saved = {"model": meta.get("model", "vs")} | meta.get("train", {})
    ours = cfg.settings()
    # the canvas side as the dataset resolved it (--size None is the dataset's own)
    saved_side = meta.get("config", {}).get("dataset", {}).get("size")
    if saved_side is not None:
        saved["size"], ours["size"] = saved_side, run.model.config.dataset.get("size")
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
    checkpoint.restore_optimizer(loop.steps.opt, tensors, state["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    run.start_epoch, loop.step = state["epoch"] + 1, state["step"]
    loop.elapsed, run.history = state["elapsed_s"], state["history"]
    loop.steps.sched.last_epoch = loop.step - 1
    loop.steps.sched.step()  # recompute the learning rate for the restored step
    run.init_from = meta.get("init_from")


def _batches(run: Run, epoch: int) -> Iterable[dict]:
    """An epoch's batches: the training side's, alternating with each other side's
    (``--also-sizes``)."""
    if not run.sides:
        return _loader(run, epoch)
    loaders = [_loader(run, epoch)]
    loaders += [_loader(run, epoch, s.train_set, s.model) for s in run.sides]
    return interleave(loaders)


def _loader(run: Run, epoch: int, dataset=None, model=None) -> torch.utils.data.DataLoader:
    cfg = run.cfg
    dataset = run.train_set if dataset is None else dataset
    if run.distributed:
        sampler = torch.utils.data.DistributedSampler(
            dataset, run.world, run.rank, shuffle=True, seed=cfg.seed * 1000 + epoch
        )
    else:
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        sampler = torch.utils.data.RandomSampler(dataset, generator=gen)
    first = first_level_for(run.model if model is None else model, dataset.side)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=functools.partial(collate, first_level=first),
        num_workers=cfg.workers,
        persistent_workers=False,
    )


#: ``validate(run, done)``: the figures an epoch's event and checkpoint record, from the run
#: and ``train_one_epoch``'s result
Validate = Callable[[Run, dict], dict]


def val_accuracy(run: Run, done: dict) -> dict:
    """The per-epoch figures of ``python -m saccade.train``: the accuracy after each saccade
    on the first ``val_n`` test samples, with a clean proxy and at the run's proxy noise, and
    for a model with a posterior its median σ of the crop centre per saccade (clean proxy)."""
    cfg = run.cfg
    noise = [cfg.proxy_noise] if cfg.proxy_noise > 0 else []
    result = evaluate(run.model, cfg.val_n, noise, dataset=run.val_set, device=run.device)
    val = np.array(result["per_saccade"])
    at_noise = result["noise"][noise_key(cfg.proxy_noise)][run.model.config.n_saccades - 1]
    figures = {
        "val_acc": round(float(val[-1]), 5),
        "val_acc_per_saccade": [round(float(v), 5) for v in val],
        # at the proxy noise it trains with (the same as val_acc when that is 0)
        "val_acc_train_noise": round(float(at_noise), 5),
    }
    if result.get("sigma"):  # a model with a posterior: the median σ of the crop centre
        sigma = result["sigma"][noise_key(0.0)]["median_per_step"]
        figures["val_sigma_per_saccade"] = [round(float(v), 5) for v in sigma]
    for side in run.sides:  # --also-sizes: the accuracy at each other side
        at = evaluate(side.model, cfg.val_n, [0.0], dataset=side.val_set, device=run.device)
        figures[f"val_acc_{side.size}"] = round(float(at["per_saccade"][-1]), 5)
    return figures


def end_epoch(
    run: Run, epoch: int, done: dict, validate: Validate = val_accuracy, extra: dict | None = None
) -> None:
    """After an epoch: ``validate``'s figures, then the checkpoint (``extra`` added to its
    JSON) and the resumable state, each overwriting the last epoch's (rank 0; under DDP the
    BatchNorm statistics are rank 0's, as DDP broadcasts)."""
    cfg, loop = run.cfg, run.loop
    if run.distributed:
        for buffer in run.model.buffers():
            dist.broadcast(buffer, 0)
    if run.main_rank:
        figures = validate(run, done)
        event = {
            "epoch": epoch + 1,
            "step": loop.step,
            **figures,
            "epoch_s": round(done["epoch_s"], 2),
            "train_s": round(loop.elapsed, 2),
        }
        run.history.append(event)
        if not run.quiet:
            said = ", ".join(f"{k} {v}" for k, v in figures.items())
            tqdm.write(f"epoch {epoch + 1}: {said}, {done['epoch_s']:.0f}s")
        meta = {
            "command": run.command,
            "train": cfg.settings(),
            "init_from": run.init_from,
            **(extra or {}),
            "epochs_done": epoch + 1,
            "steps_done": loop.step,
            "train_time_s": round(loop.elapsed, 2),
            "history": run.history,
        }
        checkpoint.save(run.model, cfg.out, meta)
        if cfg.keep == "best" and kept_score(figures) >= max(map(kept_score, run.history)):
            checkpoint.save(run.model, best_path(cfg.out), meta)
        checkpoint.save_state(cfg.out, loop.steps.opt, epoch, loop.step, loop.elapsed, run.history)
        run.log(event)  # after the save: a callback that stops the run loses nothing
    if run.distributed:
        dist.barrier()


def run_epochs(
    run: Run,
    validate: Validate = val_accuracy,
    extra: Callable[[bool], dict] | None = None,
) -> None:
    """The epochs from ``run.start_epoch``: ``train_one_epoch``, then ``end_epoch``, until
    ``cfg.epochs``, the step count or ``cfg.minutes`` of training; ``extra(last)`` adds to
    each checkpoint's JSON (``last``: no epoch follows)."""
    cfg = run.cfg
    budget_s = cfg.minutes * 60 if cfg.minutes else None
    for epoch in range(run.start_epoch, cfg.epochs):
        if run.loop.step >= run.loop.total_steps:
            break
        done = train_one_epoch(run.loop, epoch, budget_s)
        last = done["stopped"] or epoch + 1 == cfg.epochs
        end_epoch(run, epoch, done, validate, extra(last) if extra else None)
        if done["stopped"]:
            break


def best_path(out: str | os.PathLike) -> str:
    """Where ``--keep best`` keeps the best-validated epoch's checkpoint beside ``out``."""
    return f"{out}.best"


def keep_best(run: Run) -> int:
    """``--keep best``: the best-validated epoch's weights (the last of equals, by
    ``kept_score``: with --also-sizes the mean over the sides) replace the last epoch's at
    ``cfg.out``, whose JSON keeps the whole history and says its epoch ("kept_epoch")."""
    cfg = run.cfg
    best = checkpoint.load(best_path(cfg.out), device=run.device)
    run.model.load_state_dict(best.state_dict())
    meta = checkpoint.read_meta(cfg.out)
    meta.pop("config", None)
    meta["kept_epoch"] = best.meta["epochs_done"]
    checkpoint.save(run.model, cfg.out, meta)
    return meta["kept_epoch"]


def test_run(run: Run) -> float:
    """The final ``test_accuracy`` on ``test_n`` test samples, written into the checkpoint."""
    cfg = run.cfg
    test_set = run.val_set if run.test_set is None else run.test_set
    test = np.array(
        evaluate(
            run.model,
            cfg.test_n,
            [0.0],
            dataset=test_set,
            device=run.device,
            progress=not run.quiet,
        )["per_saccade"]
    )
    meta = checkpoint.read_meta(cfg.out)
    meta.pop("config", None)
    meta.update(
        test_accuracy=round(float(test[-1]), 5),
        test_accuracy_per_saccade=[round(float(v), 5) for v in test],
        test_n=min(cfg.test_n, len(test_set)),
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
    run_epochs(run)
    if cfg.keep == "best" and run.main_rank and run.history:
        keep_best(run)
    result = {
        "steps": run.loop.step,
        "train_time_s": round(run.loop.elapsed, 2),
        "model": run.model,
    }
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
