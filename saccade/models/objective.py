"""The training objective of the VS model: the paper's bound with its departures (``loss``),
its weights (``LossWeights``) and the find term (``find_loss``), which
``python -m saccade.train.distil`` also trains alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .registry import setting
from .trace import Trace


def gray_proxy(proxy: torch.Tensor) -> torch.Tensor:
    """(B, p, p) as it is; (B, C, p, p) -> the mean of its channels (B, p, p)."""
    return proxy.mean(1) if proxy.ndim == 4 else proxy


@dataclass
class LossWeights:
    """The weights of ``loss``, each declared once, here: ``TrainConfig`` takes them as its own
    fields (it extends this class), so they are flags of ``python -m saccade.train`` by these
    names and saved in the checkpoint's ``train`` block."""

    beta_recon: float = setting(1e-3, "weight of the reconstruction NLL")
    beta_kl: float = setting(1e-2, "weight of the KL to the prior")
    cell_weight: float = setting(
        1.0, "weight of the score-function term of the cell choice (0: off)"
    )
    find_weight: float = setting(
        1.0,
        "weight of the reader's cell signal, with --find-candidates (saccade.models.find_candidates)",
    )
    ce_steps: int = setting(
        0,
        "the class term on the last K steps only (1: the paper's bound; 0: every step, anytime)",
    )
    kl_cell: str = setting(
        "both",
        "what the cell's part of the KL trains: both (q's cell scores and the prior's) or prior "
        "(the prior's only: with --cell-weight 0, q's cell scores then get no gradient)",
        choices=("both", "prior"),
    )

    def __post_init__(self):
        for name in ("beta_recon", "beta_kl", "cell_weight", "find_weight", "ce_steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.ce_steps != int(self.ce_steps):
            raise ValueError(f"ce_steps={self.ce_steps!r} must be a whole number of steps")
        if self.kl_cell not in ("both", "prior"):
            raise ValueError(f"kl_cell={self.kl_cell!r} must be 'both' or 'prior'")


def find_loss(log_pi: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    """The find term: −Σ r · log π(cell) / Σ r (the sum floored at 1), over candidate cells'
    log π (any shape: (T, B, m) in ``loss``, (B, K) in the distillation) and the reader's
    P(digit) r there, of the same shape (``saccade.models.find_candidates``)."""
    return -(found * log_pi).sum() / found.sum().clamp_min(1.0)


def loss(
    trace: Trace, labels: torch.Tensor, proxy: torch.Tensor, weights: LossWeights | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective, exactly as trained:

        loss = CE + β_rec · Σ_t recon_t + β_kl · Σ_t KL_t + w_cell · S

    - CE: cross-entropy of the class after each saccade, averaged over the T steps (the
      paper's bound has the last step only; the average trains every prefix: anytime
      prediction); with ``ce_steps`` K > 0, over the last K steps only (K = 1: the paper's).
    - recon_t: Bernoulli NLL (BCE with logits) of the proxy given z_≤t, summed over its pixels
      (of a colour proxy, the mean of its channels: the decoder draws where things are).
    - KL_t = KL(q(z_t | φx, h_{t-1}) ‖ p(z_t | h_{t-1})), exact for the family (``where_kl``).
      With ``kl_cell`` "prior", q's cell probabilities are held constant in it: the same
      value, whose gradient trains the prior's cells but not q's (whose only other gradient
      is S's: with w_cell 0, the cell choice stays as a first stage left it).
    - S, the score-function (REINFORCE) surrogate for the cell, a discrete choice that the
      crop's gradient cannot reach: S = mean_b Σ_t A_t · log π_t(cell_t), with A_t the
      cost-to-go Σ_{t'≥t} (w_t'·CE_t' + β_rec·recon_t'), w_t' the step's weight in CE,
      minus its batch mean. Its value is zero in expectation; its gradient is the gradient
      of the expected cost through the cell's probability. The offset and the scale are
      reparameterised and get their gradient through the crop, like the paper's Gaussian.
      S is 0 unless z was sampled.

    - find (``find_candidates`` > 0 only): the first step's log π of m candidate cells,
      weighted by the reader's P(digit) in their crops (``saccade.models.find_candidates``), with
      weight w_find. It is not part of the bound: a second, dense signal for the cell.

    β_rec and β_kl are 1 in the bound; they are weights here because the reconstruction sums
    p² pixels and would drown the class term, and the KL's weight sets how sure the posterior
    may be (docs/design.md, "The objective, exactly as trained"). Every term is averaged over the batch.

    Returns the loss and the terms as floats (loss, bound = the loss without S, ce, recon,
    kl, acc of the last step, entropy of the cell choice in nats).
    """
    w = weights or LossWeights()
    T, B = trace.logits.shape[:2]
    ce_t = F.cross_entropy(trace.logits.flatten(0, 1), labels.repeat(T), reduction="none").view(
        T, B
    )
    r = trace.recon.shape[-1]
    proxy = gray_proxy(proxy)
    target = proxy if proxy.shape[-1] == r else F.adaptive_avg_pool2d(proxy, r)
    target = target.clamp(0, 1).expand_as(trace.recon)
    recon_t = F.binary_cross_entropy_with_logits(trace.recon, target, reduction="none")
    recon_t = recon_t.sum((-1, -2))  # (T, B)
    if w.ce_steps:  # the class term of the last K steps only
        K = min(int(w.ce_steps), T)
        ce_step = torch.cat([ce_t.new_zeros(T - K, B), ce_t[T - K :] / K])  # (T, B)
        ce = ce_t[T - K :].mean()
    else:  # every step's, anytime
        ce_step, ce = ce_t / T, ce_t.mean()
    recon, kl = recon_t.sum(0).mean(), trace.kl.sum(0).mean()
    bound = ce + w.beta_recon * recon + w.beta_kl * kl
    if w.kl_cell == "prior" and trace.kl_cell_fixed is not None:
        # the same value; the gradient of the cell's part reaches the prior only
        kl_grad = trace.kl_cell_fixed.sum(0).mean()
        bound = ce + w.beta_recon * recon + w.beta_kl * kl_grad
    surrogate = trace.kl.new_zeros(())
    if trace.sampled and B > 1 and w.cell_weight:
        cost = (ce_step + w.beta_recon * recon_t).detach()
        to_go = cost.flip(0).cumsum(0).flip(0)  # (T, B)
        advantage = to_go - to_go.mean(1, keepdim=True)  # the batch mean as the baseline
        surrogate = (advantage * trace.log_q_cell).sum(0).mean()
    total = bound + w.cell_weight * surrogate
    find = trace.kl.new_zeros(())
    if trace.find_log_pi is not None and w.find_weight:
        find = find_loss(trace.find_log_pi, trace.find_targets)
        total = total + w.find_weight * find
    probs = trace.cell_probs.flatten(2)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
    acc = (trace.logits[-1].argmax(-1) == labels).float().mean()
    terms = {
        "loss": total.item(),
        "bound": bound.item(),
        "ce": ce.item(),
        "recon": recon.item(),
        "kl": kl.item(),
        "acc": acc.item(),
        "cell_entropy": entropy.item(),
    }
    if trace.find_log_pi is not None:
        terms["find"] = find.item()
        terms["found"] = trace.find_targets.mean().item()  # the candidates' mean P(digit)
    return total, terms
