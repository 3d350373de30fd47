"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (everything else), like
Hugging Face's ``save_pretrained``. Loading never unpickles anything.

The JSON's top-level keys: ``format``, ``model`` (a name of ``saccade.models.registry``:
"vs", "resnet18-full", ...; it picks the class that ``load`` builds), ``dataset``, ``task``, ``size`` (the
full-resolution side), ``variance``, ``n_saccades``, ``test_accuracy``, ``class_names``,
``config`` (the ModelConfig), plus whatever training recorded (metrics, time, curriculum).
Resumable training state (optimizer moments, RNG) lives in ``NAME.state.safetensors`` and
``NAME.state.json``, which are not shipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .models.registry import create_model

FORMAT = "saccade-checkpoint/1"


def paths(name: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, json) paths of a checkpoint given as ``dir/NAME`` with or without a suffix."""
    p = Path(name)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save(model: torch.nn.Module, name: str | os.PathLike, meta: dict | None = None) -> Path:
    """Save a registered model's weights and config atomically; returns the JSON path."""
    weights, config = paths(name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    c = model.config
    data = {
        "format": FORMAT,
        "model": model.model_name,
        "dataset": c.dataset.get("name"),
        "task": c.dataset.get("task"),
        "size": c.dataset.get("side"),
        "variance": getattr(c, "variance", None),  # None: the model has no posterior
        "n_saccades": c.n_saccades,
        "test_accuracy": None,
        "class_names": c.class_names,
        **(meta or {}),
        "config": c.to_dict(),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda p: save_file(state, str(p), metadata={"format": FORMAT}))
    atomic_write(config, lambda p: p.write_text(json.dumps(data, indent=1) + "\n"))
    return config


def _state_paths(name: str | os.PathLike) -> tuple[Path, Path]:
    base = paths(name)[0].with_suffix("")
    return base.with_name(base.name + ".state.safetensors"), base.with_name(
        base.name + ".state.json"
    )


def _optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.contiguous()
            else:
                scalars[f"{pid}.{k}"] = float(v)
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    """Load into ``opt`` what ``save_state`` wrote (``load_state``'s tensors and JSON)."""
    state: dict[int, dict] = {}
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = torch.tensor(v)
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_state(
    name: str | os.PathLike, opt, epoch: int, step: int, elapsed: float, history: list
) -> None:
    """The resumable training state beside checkpoint ``name``, written atomically: the
    optimizer's tensors and the torch RNG in ``NAME.state.safetensors``; epoch, step,
    elapsed time, metric history and the optimizer's scalars in ``NAME.state.json``."""
    tensors, opt_meta = _optimizer_state(opt)
    tensors["rng.torch"] = torch.get_rng_state()
    weights, meta = _state_paths(name)
    atomic_write(weights, lambda p: save_file(tensors, str(p)))
    data = {
        "epoch": epoch,
        "step": step,
        "elapsed_s": elapsed,
        "history": history,
        "optimizer": opt_meta,
    }
    atomic_write(meta, lambda p: p.write_text(json.dumps(data) + "\n"))


def load_state(name: str | os.PathLike) -> tuple[dict, dict]:
    """(tensors, JSON) of ``save_state``; ValueError naming the file when it is missing or
    corrupt (never unpickled)."""
    weights, meta = _state_paths(name)
    if not weights.is_file() or not meta.is_file():
        raise ValueError(f"--resume: no training state at {weights} / {meta}")
    try:
        return load_file(str(weights)), json.loads(meta.read_text())
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"--resume: training state {weights} is corrupt ({e})") from None


def read_meta(name: str | os.PathLike) -> dict:
    """The checkpoint's JSON, validated; ValueError naming the file if it is bad."""
    _, config = paths(name)
    if not config.is_file():
        raise ValueError(f"checkpoint config {config} does not exist")
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint config {config} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"checkpoint config {config} is not a saccade checkpoint ({FORMAT})")
    return meta


def load(name: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a checkpoint saved by ``save`` as a model in eval mode, with ``.meta`` = its JSON:
    the class registered under its ``"model"`` (``saccade.models.create_model``).

    Raises ValueError naming the file when a file is missing, truncated or corrupt, or when
    the config does not match the weights.
    """
    weights, config = paths(name)
    meta = read_meta(name)
    try:
        model = create_model(meta.get("model", "vs"), meta["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint config {config} has a bad model config ({e})") from None
    if not weights.is_file():
        raise ValueError(f"checkpoint weights {weights} do not exist")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"checkpoint weights {weights} are truncated or corrupt ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"checkpoint weights {weights} do not match its config {config.name}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}"
        )
    model.load_state_dict(state)
    model.meta = meta
    return model.to(device).eval()


def list_checkpoints(folder: str | os.PathLike = "checkpoints") -> list[dict]:
    """The JSON of every valid checkpoint in ``folder`` (sorted by name), each with ``name``
    and ``path`` (``folder/NAME``) added. Invalid ones are skipped."""
    out = []
    for config in sorted(Path(folder).glob("*.json")):
        if config.name.endswith(".state.json"):
            continue
        base = config.with_suffix("")
        try:
            meta = read_meta(base)
        except ValueError:
            continue
        if paths(base)[0].is_file():
            out.append({**meta, "name": base.name, "path": str(base)})
    return out


def load_matching(
    model: torch.nn.Module, name: str | os.PathLike, parts: list[str] | None = None
) -> list[str]:
    """Copy every weight of checkpoint ``name`` whose name and shape match into ``model``
    (curriculum: e.g. a ``sum`` model started from a ``single`` one; the class head, whose
    shape differs, stays fresh). ``parts``: copy only the weights of these submodules
    (e.g. ``["crop_encoder"]``: a digit reader for another dataset). Returns the names
    copied."""
    modules = {n.split(".")[0] for n, _ in model.named_parameters()}
    unknown = sorted(set(parts or []) - modules)
    if unknown:
        raise ValueError(
            f"init parts {unknown} are not parts of the model; accepted: {sorted(modules)}"
        )
    weights, _ = paths(name)
    read_meta(name)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"checkpoint weights {weights} are truncated or corrupt ({e})") from None
    own = model.state_dict()
    copied = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    if parts:
        copied = [k for k in copied if k.split(".")[0] in parts]
    model.load_state_dict({k: state[k] for k in copied}, strict=False)
    return copied


def unusable_checkpoints(folder: str | os.PathLike = "checkpoints") -> list[tuple[str, str]]:
    """(name, reason) of every checkpoint in ``folder`` that cannot be used, sorted by name:
    each ``NAME.json`` or ``NAME.safetensors`` (resumable ``NAME.state.*`` aside) is loaded in
    full, so a missing half, a config that is not JSON or not a saccade checkpoint, truncated
    or corrupt weights, and a config that disagrees with its weights are all found. The reason
    is ``load``'s message, which names the file. An app lists these as unusable instead of
    offering them (``list_checkpoints`` only reads the JSON)."""
    bases = {
        f.name[: -len(f.suffix)]
        for pattern in ("*.json", "*.safetensors")
        for f in Path(folder).glob(pattern)
        if not f.name.endswith((".state.json", ".state.safetensors"))
    }
    out = []
    for name in sorted(bases):
        try:
            load(Path(folder) / name)
        except Exception as e:  # any failure makes it unusable; the caller keeps going
            reason = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            out.append((name, reason))
    return out
