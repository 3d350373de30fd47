"""``Trace``: what one forward pass of the VS model produced, stacked over its T steps (the
model's output; ``saccade.models.objective.loss`` reads it, ``saccade.infer`` shows it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Trace:
    """Everything a forward pass produced, stacked over the T steps."""

    logits: torch.Tensor  # (T, B, n_classes)
    mu: torch.Tensor  # (T, B, 3) the posterior's mode: μ_s and the best cell's centre + μδ
    sigma: torch.Tensor  # (T, B, 3) σ_s and the std of (x, y) under the posterior
    z: torch.Tensor  # (T, B, 3) the z used for each crop
    crops: torch.Tensor  # (T, B, k, k); (T, B, C, k, k) for a colour model
    recon: torch.Tensor  # (T, B, r, r) reconstruction logits of the proxy
    kl: torch.Tensor  # (T, B) KL(q(z_t | ·) ‖ p(z_t | h_{t-1}))
    log_q_cell: torch.Tensor  # (T, B) log π of the cell each crop used
    cell_probs: torch.Tensor  # (T, B, g, g) the posterior's π over the cells
    # (T, B, 3) what the variance mode fixes or learns: σ_s and the chosen cell's offset σδ
    # (x, y); in fixed mode all three are fixed_sigma (``sigma`` adds the spread over cells)
    offset_sigma: torch.Tensor
    cell_entropy: torch.Tensor  # (T, B) entropy of the cell choice in nats (0: one cell)
    sampled: bool = False  # whether z was drawn from q (the cell term of ``loss`` needs it)
    # training with find_candidates = m (``saccade.models.find_candidates``): each step's log π of m
    # candidate cells (T, B, m) and the reader's P(digit) in their crops, 0 once a crop
    # covered the cell (T, B, m); else None
    find_log_pi: torch.Tensor | None = None
    find_targets: torch.Tensor | None = None
    # the posterior of every step, stacked step-major over T·B (a ``WhereDistribution``): the
    # density of any z under it (``saccade.train.imitation``)
    where: object | None = None
    # (T, B) the same KL with q's cell probabilities held constant: its gradient reaches the
    # prior, q's offsets and scale, not q's cell scores (``LossWeights.kl_cell`` "prior")
    kl_cell_fixed: torch.Tensor | None = None
