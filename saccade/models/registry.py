"""Every model behind one interface, looked up by name (as timm's ``_registry.py``).

A checkpoint's JSON names its model (``"model": "vs"``); ``create_model(name, config)``
builds it. A model is one file that decorates its class with ``@register_model("name")``.

The contract every registered model keeps:

- ``config_class``: a dataclass extending ``BaseConfig`` (``n_classes``, ``class_names``,
  ``proxy_size``, ``n_saccades``, ``max_saccades`` and ``dataset``, the training data's spec);
  saved in the checkpoint's JSON under ``config``. Its fields declared with ``setting(default,
  help)`` are the model's hyperparameters: ``python -m saccade.train --model NAME`` makes each
  one a ``--flag`` (``crop_size`` -> ``--crop-size``), typed by its annotation, with that help.
  The fields named in ``derived`` are filled in from the training data instead.
- ``forward(images, proxy, n_saccades=None, sample=None, generator=None, policy=None)``:
  ``images`` as ``saccade.glimpse`` takes a batch ((B, H, W) uint8 or a list of B
  ``Pyramid``s, on the CPU), ``proxy`` (B, p, p) float on the model's device. Returns an
  object with ``logits`` (T, B, n_classes): the class after each step (T = 1 for a model
  that looks once), and ``z``, ``mu``, ``sigma`` (T, B, 3) where the model has a where-
  distribution over (scale, x, y), else None. ``policy`` (``saccade.evaluate.policies``) is accepted
  only by models that choose where to look.
- ``loss(output, labels, proxy, weights=None) -> (total, terms)``: its own training
  objective; ``terms`` holds floats, at least ``loss``, ``ce`` and ``acc``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch
import torch.nn as nn

_MODELS: dict[str, type[nn.Module]] = {}

#: the modules that register models; imported on first lookup
_MODULES = (
    "saccade.models.vs",
    "saccade.models.resnet18_full",
    "saccade.models.resnet18_grid",
    "saccade.models.resnet18_proxy",
    "saccade.models.ram",
    "saccade.models.ats",
)


def setting(default, help: str, choices: tuple = ()):
    """A config field that is a setting (a ``--flag`` of ``python -m saccade.train``), with
    its help text and, for a string, the values it accepts."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices)})


@dataclass
class BaseConfig:
    """What every model's config holds and checks; saved in its checkpoint's JSON under
    ``config``. A model's config extends it with its own fields (re-declaring a field here
    changes only its default) and checks, calling ``super().__post_init__()`` first."""

    #: fields set from the training data (or fixed by the model), not by a flag
    derived: ClassVar[tuple[str, ...]] = (
        "n_classes", "class_names", "proxy_size", "channels", "dataset"
    )  # fmt: skip

    n_classes: int = 10
    class_names: list[str] = field(default_factory=list)  # default: "0".."n_classes - 1"
    proxy_size: int = 32  # side of the proxy p
    n_saccades: int = setting(4, "T: crops per image in training (the default at inference)")
    max_saccades: int = setting(32, "the most steps a forward pass may take")
    dataset: dict = field(default_factory=dict)  # DatasetSpec.to_dict() of the training data

    def __post_init__(self):
        if self.n_classes < 2:
            raise ValueError(f"n_classes={self.n_classes!r} must be >= 2")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.n_classes)]
        if len(self.class_names) != self.n_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names for n_classes={self.n_classes}"
            )
        if not 1 <= self.n_saccades <= self.max_saccades:
            raise ValueError(
                f"n_saccades={self.n_saccades!r} must be in [1, max_saccades={self.max_saccades}]"
            )
        # ``channels``, where a model takes colour (a config without it takes grayscale only)
        if hasattr(self, "channels") and not 1 <= self.channels <= 4:
            raise ValueError(f"channels={self.channels!r} must be in 1..4")

    def check_at_least_one(self, *names: str) -> None:
        """ValueError naming the first of the integer fields ``names`` below 1."""
        for name in names:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class OneLookConfig(BaseConfig):
    """``BaseConfig`` of a model that looks once (T = 1: the ResNet baselines, ``ats``):
    ``n_saccades`` and ``max_saccades`` are fixed at 1, not flags."""

    derived: ClassVar[tuple[str, ...]] = BaseConfig.derived + ("n_saccades", "max_saccades")

    n_saccades: int = 1
    max_saccades: int = 1

    def __post_init__(self):
        if self.n_saccades != 1 or self.max_saccades != 1:
            raise ValueError(
                f"the model looks once: n_saccades = max_saccades = 1, got "
                f"n_saccades={self.n_saccades!r}, max_saccades={self.max_saccades!r}"
            )
        super().__post_init__()


def check_one_look(model: nn.Module, n_saccades, policy) -> None:
    """What the forward pass of a model that looks once refuses: a ``policy`` (it does not
    choose where to look) and ``n_saccades`` other than None or 1."""
    if policy is not None:
        raise ValueError(f"model {model.model_name!r} does not choose where to look: no policy")
    if n_saccades not in (None, 1):
        raise ValueError(f"model {model.model_name!r} looks once: n_saccades must be 1")


@dataclass
class Output:
    """What a model without a where-distribution returns: the class after each step."""

    logits: torch.Tensor  # (T, B, n_classes)
    z: torch.Tensor | None = None  # (T, B, 3) where each step looked, if anywhere
    mu: torch.Tensor | None = None  # (T, B, 3)
    sigma: torch.Tensor | None = None  # (T, B, 3)


def register_model(name: str):
    """Class decorator: make ``create_model(name, ...)`` build this class."""

    def add(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is registered twice")
        cls.model_name = name
        _MODELS[name] = cls
        return cls

    return add


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def model_names() -> list[str]:
    """The registered names, sorted."""
    _load_all()
    return sorted(_MODELS)


def model_class(name: str) -> type[nn.Module]:
    _load_all()
    if name not in _MODELS:
        raise ValueError(f"model={name!r} is not known; accepted: {sorted(_MODELS)}")
    return _MODELS[name]


def settings_of(name: str) -> list[dataclasses.Field]:
    """The hyperparameters of model ``name``: its config's fields less the ``derived`` ones,
    in declaration order (each with its ``default`` and its ``metadata["help"]``)."""
    cls = model_class(name).config_class
    return [f for f in dataclasses.fields(cls) if f.name not in cls.derived]


def create_model(name: str, config) -> nn.Module:
    """A fresh model ``name`` built from ``config``: its ``config_class`` or a dict of it
    (ValueError naming a bad key)."""
    cls = model_class(name)
    if isinstance(config, dict):
        known = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"model {name!r} has no settings {unknown}; accepted: {sorted(known)}")
        config = cls.config_class(**config)
    elif not isinstance(config, cls.config_class):
        raise ValueError(
            f"model {name!r} takes a {cls.config_class.__name__}, got {type(config).__name__}"
        )
    return cls(config)


def uses_where(model: nn.Module) -> bool:
    """Whether ``model`` chooses where to look (accepts ``policy``, returns z)."""
    return bool(getattr(model, "chooses_where", False))
