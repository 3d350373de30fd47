"""Training on canvases of several sides at once (``--also-sizes``): one model, seen at each
side through ``saccade.models.vs.for_canvas``.

A VS model trained at side S meets a side S·f in one of two ways (``--also-layout``, by
default the dataset's: ``canvas_layout``):
- "share" (zoom, whose regions are a share of the side): the trained proxy, grid of cells
  and prior, only the crop sides divided by f so that crops keep their pixels. The view is
  the same network with another crop range; it shares every parameter, the prior's too, so
  any objective trains through it. Tried from ``zoom-refine-t12`` by imitation at 32,768²
  and 65,536², it lost at both (83.6% and 53.0%, from 88.9% and 56.0%; docs/results.md).
- "pixels": the proxy and the grid scaled by f. Its search was learnt on one layout of the
  proxy and one span of its normalised coordinates: the zoom benchmark's
  ``zoom-refine-t12``, trained at 32,768², reads 88.9% there and 33.8% at 65,536² this way
  (docs/results.md), and training on both sides this way did not help (34.4% at 65,536²
  after 4 epochs, while 32,768² fell to 72.6%). The views share every parameter but the
  prior's, whose cells are the grid's (``for_canvas`` derives them): only the KL reads the
  prior, and the imitation objective has none, so this layout takes ``--objective
  imitation`` only.

Each epoch alternates batches of the training side and of each other side
(``train_length`` canvases of each), each side's batch run by a view of the model
(``shared_view``) made of the model's own parameters, so that one set of weights learns at
every side and the checkpoint is the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from ..data import make_dataset
from ..models.vs import for_canvas


def parse_sizes(text: str | None, name: str = "also_sizes") -> tuple[int, ...]:
    """``"65536"`` or ``"16384,65536"`` as canvas sides (empty for None); ValueError naming
    ``name`` unless each is a whole number >= 2."""
    if not text:
        return ()
    try:
        sizes = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(
            f"{name}={text!r}: canvas sides in pixels, comma-separated (e.g. 65536)"
        ) from None
    if not sizes or any(s < 2 for s in sizes):
        raise ValueError(f"{name}={text!r}: each side must be a whole number >= 2")
    return sizes


def shared_view(model: torch.nn.Module, size: int, layout: str = "pixels") -> torch.nn.Module:
    """``for_canvas(model, size, layout)`` made of ``model``'s own parameters and BatchNorm
    statistics (with layout "pixels" every one but the prior's, see the module docstring):
    the view keeps its own modules, whose grid-dependent parts (the proxy encoder's pooling
    to g·f cells, the cells' centres) are the side's, so a step of the view trains
    ``model``. ValueError from ``for_canvas`` for a side it cannot run at."""
    view = for_canvas(model, size, layout)
    theirs = dict(model.named_parameters()) | dict(model.named_buffers())
    for name, tensor in list(view.named_parameters()) + list(view.named_buffers()):
        if (name.startswith("prior.") and layout == "pixels") or name not in theirs:
            continue
        if theirs[name].shape != tensor.shape:  # the grid's own (e.g. the cells' centres)
            continue
        path, _, leaf = name.rpartition(".")
        module = view.get_submodule(path)
        if isinstance(theirs[name], torch.nn.Parameter):
            setattr(module, leaf, theirs[name])
        else:
            module._buffers[leaf] = theirs[name]
    return view


@dataclass
class Side:
    """Another canvas side of a run: its training and validation samples, the model's view
    there and the objective that trains through it."""

    size: int
    train_set: object
    val_set: object
    model: torch.nn.Module
    objective: Callable[[dict], tuple[torch.Tensor, dict]]


def other_sides(
    cfg, options: dict, length: int, model: torch.nn.Module, objective_for: Callable, first_level
) -> list[Side]:
    """One ``Side`` per ``cfg.also_sizes``: ``length`` training canvases drawn with seeds of
    their own (cfg.seed + 1000·(i + 1)), validation canvases (the test split's, or with
    ``--keep best`` the training split's drawn with that seed + 1), and
    ``objective_for(view)``; the views meet their sides as ``cfg.also_layout`` says. ``first_level(view, side)``: the finest level the view reads."""
    sides = []
    layout = cfg.sides_layout()
    for i, size in enumerate(parse_sizes(cfg.also_sizes)):
        view = shared_view(model, size, layout)
        at = options | {"size": size, "proxy_size": view.config.proxy_size}
        seed = cfg.seed + 1000 * (i + 1)
        train_set = make_dataset(cfg.dataset, split="train", seed=seed, length=length, **at)
        if cfg.keep == "best":  # as the training side's: the test canvases choose nothing
            val_set = choosing_canvases(cfg, seed, at)
        else:
            val_set = make_dataset(cfg.dataset, split="test", seed=0, **at)
        train_set.levels_from = val_set.levels_from = first_level(view, size)
        sides.append(Side(size, train_set, val_set, view, objective_for(view)))
    return sides


def choosing_canvases(cfg, seed: int, options: dict):
    """The canvases ``--keep best`` validates on at one side (the training side's with
    ``cfg.seed``, each other side's with its own seed): ``cfg.val_n`` of the training split
    drawn with ``seed`` + 1, so that choosing an epoch looks at no test canvas."""
    return make_dataset(cfg.dataset, split="train", seed=seed + 1, length=cfg.val_n, **options)


def kept_score(figures: dict) -> float:
    """What ``--keep best`` ranks an epoch's validation ``figures`` by: ``val_acc``, or with
    --also-sizes its mean with each other side's ``val_acc_SIDE``."""
    sides = [v for k, v in figures.items() if k.startswith("val_acc_") and k[8:].isdigit()]
    return (figures["val_acc"] + sum(sides)) / (1 + len(sides))


@dataclass
class BySide:
    """The objective of a run on several sides: a batch goes to the objective of its
    canvases' side (``objectives``: side -> objective), its loss times the side's weight
    (``--also-weight`` for the other sides; the terms logged are unweighted)."""

    objectives: dict[int, Callable[[dict], tuple[torch.Tensor, dict]]]
    weights: dict[int, float] = field(default_factory=dict)  # side -> its loss's factor (1)

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        side = int(batch["image"][0].shape[0])
        if side not in self.objectives:
            raise ValueError(
                f"a batch of {side}² canvases; this run trains {sorted(self.objectives)}"
            )
        loss, terms = self.objectives[side](batch)
        return loss * self.weights.get(side, 1.0), terms


def interleave(iterables: Iterable[Iterable[dict]]) -> Iterator[dict]:
    """Round robin over ``iterables`` (one batch of each in turn) until every one is spent."""
    iterators = [iter(it) for it in iterables]
    while iterators:
        for it in list(iterators):
            try:
                yield next(it)
            except StopIteration:
                iterators.remove(it)
