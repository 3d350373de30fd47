"""The classifier of the VS model: anytime class logits from the crops so far.

Three ways to pool the T crops, all order-free (the tasks are about a set of digits):

- "max": a what-and-where feature e_t = ReLU(W f_t + V z_t) per crop, max-pooled over the
  steps, then an MLP. A crop seen twice does not count twice, but neither can three 7s
  outweigh one 2.
- "mean": the same e_t averaged, so that a class's share of the crops counts (it does not
  tally: docs/results.md#mean-pooling-on-megapixel-mnist).
- "evidence": each crop alone gives 11 outcomes, the n classes and "no digit here",
  p_t = softmax(MLP(ReLU(W f_t))); the evidence of the crops so far is summed,
  E_t = Σ_{s≤t} p_s[:n], and the logits are log(E_t + ε). Three crops on a 5 outvote two on
  a 7, and a crop on a noise stroke adds almost nothing. The per-crop head is the one
  ``python -m saccade.train.pretrain --kind megapixel`` pre-trains; its "no digit" probability is
  also the reader's confidence that the crop found a digit (``saccade.models.find_candidates``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

POOLINGS = ("max", "mean", "evidence")
#: added to the summed evidence before the log: the logits of "nothing found yet" are equal
EVIDENCE_EPS = 1e-2


class Classifier(nn.Module):
    """Anytime class logits from the crops' features f (B, features) and where they were
    taken z (B, 3) ("evidence" reads f only)."""

    def __init__(self, features: int, n_classes: int, pooling: str = "max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r}; accepted: {list(POOLINGS)}")
        self.pooling = pooling
        self.n_classes = n_classes
        self.what = nn.Linear(features, features)
        outputs = n_classes
        if pooling == "evidence":
            outputs += 1  # "no digit here"
        else:
            self.where = nn.Linear(3, features)
        self.head = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, outputs)
        )

    def crop_logits(self, f: torch.Tensor) -> torch.Tensor:
        """ "evidence": each crop's own logits over the n classes and "no digit" (last):
        f (..., features) -> (..., n + 1)."""
        return self.head(F.relu(self.what(f)))

    def _features(self, f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """e_t = ReLU(W f_t + V z_t) (max and mean), or p_t[:n] (evidence)."""
        if self.pooling == "evidence":
            return torch.softmax(self.crop_logits(f), -1)[..., : self.n_classes]
        return F.relu(self.what(f) + self.where(z))

    def _logits(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.pooling == "evidence":
            return torch.log(pooled + EVIDENCE_EPS)
        return self.head(pooled)

    def step(self, f: torch.Tensor, z: torch.Tensor, pooled: torch.Tensor | None, t: int):
        """f (B, features), z (B, 3), pooled: the previous step's pool (None at t = 0);
        returns logits (B, n_classes) after t + 1 crops and the new pool."""
        e = self._features(f, z)
        if pooled is None:
            pooled = e
        elif self.pooling == "max":
            pooled = torch.maximum(pooled, e)
        elif self.pooling == "mean":  # a running mean
            pooled = pooled + (e - pooled) / (t + 1)
        else:  # evidence: a running sum
            pooled = pooled + e
        return self._logits(pooled), pooled

    def all_steps(self, f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The logits after each of T crops at once: f (T, B, features), z (T, B, 3) ->
        (T, B, n_classes); the same values as T calls of ``step``."""
        e = self._features(f, z)
        if self.pooling == "max":
            pooled = torch.cummax(e, 0).values
        elif self.pooling == "mean":
            steps = torch.arange(1, len(e) + 1, dtype=e.dtype, device=e.device)
            pooled = e.cumsum(0) / steps[:, None, None]
        else:
            pooled = e.cumsum(0)
        return self._logits(pooled)
