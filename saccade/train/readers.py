"""A digit reader's files: ``OUT.safetensors`` (the crop encoder's weights, and a megapixel
reader's per-crop head, keys as in the model) and ``OUT.json`` (the command, the settings, the
accuracy), written by ``python -m saccade.train.pretrain`` (``save``) and copied into a
model by ``python -m saccade.train --reader`` (``load_into``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write

FORMAT = "saccade-reader-1"


def save(model: nn.Module, out: str | Path, meta: dict) -> None:
    """OUT.safetensors (``crop_encoder.*``, and ``classifier.*`` for a megapixel reader: keys
    as in the model) and OUT.json, each written atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = ["crop_encoder"] + (["classifier"] if hasattr(model, "classifier") else [])
    state = {
        f"{part}.{k}": v.contiguous()
        for part in parts
        for k, v in getattr(model, part).state_dict().items()
    }
    atomic_write(
        out.with_suffix(".safetensors"),
        lambda p: save_file(state, str(p), metadata={"format": FORMAT}),
    )
    text = json.dumps({"format": FORMAT, **meta}, indent=1)
    atomic_write(out.with_suffix(".json"), lambda p: p.write_text(text))


def load_into(model: nn.Module, path: str | Path) -> dict:
    """Copy a reader's crop encoder (``path``.safetensors) into ``model.crop_encoder``, and a
    megapixel reader's per-crop head into ``model.classifier`` (an "evidence" classifier).

    Raises ValueError naming the file when it is not a reader or its shapes differ from the
    model's (another crop_width, features, channel count, number of classes or pooling).
    Returns the reader's JSON."""
    path = Path(path)
    weights, meta_file = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if not weights.is_file() or not meta_file.is_file():
        raise ValueError(f"reader={str(path)!r}: expected {weights} and {meta_file}")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"reader={str(path)!r} is not a digit reader (format {FORMAT!r})")
    state = load_file(str(weights))
    parts = sorted({k.split(".", 1)[0] for k in state})
    own = {
        f"{part}.{k}": v
        for part in parts
        if isinstance(getattr(model, part, None), nn.Module)
        for k, v in getattr(model, part).state_dict().items()
    }
    bad = sorted(
        k
        for k in set(own) | set(state)
        if k not in state or k not in own or state[k].shape != own[k].shape
    )
    if bad:
        raise ValueError(
            f"reader={str(path)!r} does not fit the model's {', '.join(parts).replace('_', ' ')} (crop_width, "
            f"features and channels must match, and a megapixel reader needs pooling "
            f"'evidence' over 10 classes; reader: {meta.get('config')}); first mismatch: {bad[0]}"
        )
    for part in parts:
        n = len(part) + 1
        getattr(model, part).load_state_dict(
            {k[n:]: v for k, v in state.items() if k.startswith(part + ".")}, strict=True
        )
    return meta
