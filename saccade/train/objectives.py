"""The objectives that ``saccade.train.loop`` trains: each maps a batch (a dict of tensors)
to (the loss to minimise, its named terms as floats, "loss" among them). The loop does the
rest (``loop.train_step``): the device, the proxy's noise, autocast, the NaN check, backward,
the clip, the optimizer and its schedule, logging, checkpoints.

- ``ELBO``: the model's own loss after a forward pass (the VS bound,
  ``saccade.models.objective.loss``; a baseline's cross-entropy), ``python -m saccade.train``;
- ``FindTerm``: the find term alone on the posterior's first step, ``python -m
  saccade.train.distil``;
- ``ReaderLoss``: the reader's cross-entropy on crops, ``python -m saccade.train.pretrain``.

A new objective is one more class here, handed to a ``loop.Loop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.objective import LossWeights, find_loss
from ..models.registry import uses_where


@dataclass
class ELBO:
    """Batch {"image" (B images or pyramids), "proxy" (B, p, p) or (B, C, p, p), "label"
    (B,)} -> ``model.loss`` of a forward pass of T saccades, with ``weights``.

    ``max_saccades``: T is drawn in [n_saccades, this] per batch (a model that looks);
    ``mode_batches``: the fraction of batches that crop at the posterior's mode, as
    evaluation does (where the posterior is flat, its mode and its samples look elsewhere).
    ``forward`` runs the pass: the model, or its DDP wrapper."""

    model: torch.nn.Module
    weights: LossWeights
    max_saccades: int | None = None
    mode_batches: float = 0.0
    forward: torch.nn.Module | None = None

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        model = self.model
        horizon = model.config.n_saccades  # a baseline's own (1 for the ResNets)
        if self.max_saccades and uses_where(model):
            horizon = int(torch.randint(horizon, self.max_saccades + 1, ()))
        at_mode = self.mode_batches > 0 and float(torch.rand(())) < self.mode_batches
        output = (self.forward or model)(
            batch["image"], batch["proxy"], horizon, sample=False if at_mode else None
        )
        return model.loss(output, batch["label"], batch["proxy"], self.weights)


@dataclass
class FindTerm:
    """Batch {"proxy" (B, p, p), "cells" (B, K) candidate cells, "found" (B, K) the
    reader's P(digit) there} -> the find term (``saccade.models.objective.find_loss``) of
    the posterior's first step (h_0 = 0, nothing seen): −Σ r log π_1(cell) / Σ r. No saccade
    is run; what it trains is the proxy encoder and the posterior."""

    model: torch.nn.Module

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model.first_step(batch["proxy"]).logits
        log_pi = F.log_softmax(logits.float(), -1).gather(1, batch["cells"])
        loss = find_loss(log_pi, batch["found"].float())
        return loss, {"loss": loss.item()}


@dataclass
class ReaderLoss:
    """Batch {"crops" (B, k, k), "target" (B,) classes or (B, n) soft targets} -> the
    cross-entropy of the reader's logits (``saccade.train.pretrain.Reader``)."""

    model: torch.nn.Module

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(self.model(batch["crops"]), batch["target"])
        return loss, {"loss": loss.item()}
