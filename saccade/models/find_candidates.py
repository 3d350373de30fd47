"""Where the reader finds digits: a dense training signal for the posterior's cell choice.

The score function (``objective.loss``'s S) is the only gradient the cell choice gets from
the class, too rare a signal for thousands of cells. With ``find_candidates = m``, each
training image also crops m candidate cells once and asks the model's own reader (the crop
encoder and the "evidence" classifier's per-crop head) whether a digit is there:
r = 1 − p(no digit). At every step t the posterior's categorical then learns to put its
mass where the reader found a digit that no earlier crop covered (the seen-map), a
cross-entropy weighted by r (``objective.loss``'s ``find``):

    find = − Σ_{t, b, j} r_tbj · log π_tb(cell_bj) / Σ_{t, b, j} r_tbj,
    r_tbj = r_bj · (1 − seen_tb(cell_bj)),   r without gradient

It raises the found cells' probability and, through the softmax, lowers every other cell's,
the noise strokes' among them. An eighth of the candidates are drawn from the posterior's
own categorical (Gumbel top-k: the cells it likes wrongly get corrected), the rest are the
proxy's brightest cells (every blob is bright; an empty cell needs no reading). A crop is
taken at the cell's centre plus the posterior's mean offset there, at its mean scale. No
ground-truth box is read, only the reader. The posterior stays the same distribution; this
is a second gradient for its logits. Why this form and these numbers (every step, a softmax
cross-entropy, 64 candidates): docs/results.md#finding-digits-for-the-cell-choice

``FindTeacher`` is this teacher as ``VariationalSaccader.forward`` runs it; ``reader_p_digit``
is the reader's reading, which ``python -m saccade.train.distil`` shares.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..glimpse import glimpse
from .posterior import WhereDistribution


def gumbel_top_k(logits: torch.Tensor, k: int, generator=None) -> torch.Tensor:
    """k distinct indices per row drawn from softmax(logits) without replacement:
    logits (B, n) -> (B, k) (the Gumbel top-k trick)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0)))
    return (logits.detach() + gumbel).topk(min(k, logits.shape[-1]), -1).indices


def candidate_cells(
    q: WhereDistribution, saliency: torch.Tensor, m: int, generator=None
) -> torch.Tensor:
    """m candidate cells per image (B, m): max(1, m // 8) drawn from the posterior q's
    categorical, the rest the brightest cells (saliency (B, g, g))."""
    n_own = max(1, m // 8)
    own = gumbel_top_k(q.logits, n_own, generator)
    bright = saliency.flatten(1).topk(min(m - n_own, saliency[0].numel()), -1).indices
    return torch.cat([own, bright], 1)


def candidate_z(q: WhereDistribution, cells: torch.Tensor, cell_xy: torch.Tensor) -> torch.Tensor:
    """The crops of the candidates, (B, m, 3): q's mean scale, each cell's centre (cell_xy:
    (g², 2)) plus q's mean offset in that cell."""
    rows = torch.arange(len(cells), device=cells.device)[:, None]
    xy = cell_xy[cells] + q.offset_mu[rows, cells]  # (B, m, 2)
    scale = q.scale_mu[:, None, None].expand(-1, cells.shape[1], 1)
    return torch.cat([scale, xy], -1).detach()


def reader_p_digit(model: torch.nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """The reader's P(digit) = 1 − P(no digit): crops (N, [C,] k, k) -> (N,) float32, read
    by the model's crop encoder and its classifier's per-crop head in their current mode,
    without gradient."""
    with torch.no_grad():
        logits = model.classifier.crop_logits(model.crop_encoder(crops))
        return 1 - torch.softmax(logits.float(), -1)[:, -1]


class FindTeacher:
    """The find term's targets for one forward pass: the candidates are read once, at step 0
    (``read``), and each step gives log π_t of those cells and their targets, the reader's
    r masked by the cells already seen (``step``); ``stacked`` is what ``Trace`` holds."""

    def __init__(self, cells: torch.Tensor, found: torch.Tensor):
        """cells (B, m) and the reader's r there (B, m), without gradient."""
        self.cells, self.found = cells, found
        self.log_pi: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    @classmethod
    def read(
        cls,
        model: torch.nn.Module,
        q: WhereDistribution,
        sources: list,
        saliency: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> FindTeacher:
        """m = ``find_candidates`` cells per image (``candidate_cells``) of q (the first
        step's posterior) and saliency (B, g, g), cropped (``candidate_z``) from the B
        ``sources`` and read by the model's reader: r = P(digit) ** ``find_power``."""
        c, m = model.config, model.config.find_candidates
        cells = candidate_cells(q, saliency, m, generator)
        z = candidate_z(q, cells, model.cell_xy).flatten(0, 1)  # (B·m, 3)
        with torch.no_grad():
            crops = glimpse([s for s in sources for _ in range(m)], z, c.crop_size, **model.scales)
        found = reader_p_digit(model, crops) ** c.find_power
        return cls(cells, found.view(len(cells), m).to(q.logits.dtype))

    def step(self, q: WhereDistribution, seen: torch.Tensor) -> None:
        """Record step t: log π_t (B, m) of the candidates under q, and their targets (B, m),
        r where the cell is not yet covered (seen: (B, g, g), the cells seen before t)."""
        covered = seen.flatten(1).gather(1, self.cells)
        self.log_pi.append(F.log_softmax(q.logits, -1).gather(1, self.cells))
        self.targets.append(self.found * (1 - covered))

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π (T, B, m), targets (T, B, m)): ``Trace.find_log_pi``, ``Trace.find_targets``."""
        return torch.stack(self.log_pi), torch.stack(self.targets)
