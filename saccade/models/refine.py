"""Looking again inside the last crop: the posterior's k x k *local* cells (``--refine-grid k``).

The posterior's categorical runs over the proxy's g x g cells, so where it looks is no finer
than a cell (1,024 px of a 32,768² zoom canvas at g = 32) plus an offset that the proxy and
the recurrent state must supply. On a canvas whose answer is a 28-px digit inside a 1,000-px
cue (``saccade.data.zoom``) the next crop must go where the last one *showed* something, to
within a few pixels, and only the last crop can say where that is.

``RefineHead`` adds k² components to the categorical, laid out as a k x k grid over the last
crop's window (its centre (x, y) and its side, a fraction f of the image side):

    centre_ij = (x, y) + f · (c_j, c_i)          c: ``cell_centres(k)`` in [-1, 1]
    a = ReLU(CNN(crop_{t-1}) + W h_{t-1})          (B, w, k, k): a map over the last crop
    [score, μδ, σδ']_ij = Conv1x1(a)_ij            μδ = tanh(·) · f / k (half a local cell)
    logit_ij = score_ij + gate(mean and max of CNN(crop_{t-1}))

and a learnt offset σ in units of the last crop's side (σδ = f · σδ'), so that a σ means
the same at every zoom, as the log scale does for the scale. The CNN is its own small
network, trained with the posterior (the crop encoder may be a frozen reader). Before the
first crop there is no window, and the local cells have no mass. Its pooled features also
reach the scale's MLP, so that how far to zoom can depend on what the last crop showed.

What it adds is measured by the same model without it (``--refine-grid 0``):
docs/zoom.md, "Looking again inside the last crop".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

#: the logit of a local cell before the first crop: no mass (finite, so that 0 · log stays 0)
NO_WINDOW = -1e4


def cell_centres(g: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(g,) centres of the g cells of a side in normalised coordinates [-1, 1]."""
    return (2 * torch.arange(g, dtype=dtype, device=device) + 1) / g - 1


def grid_xy(g: int) -> torch.Tensor:
    """(g², 2) the centres (x, y) of a g x g grid in [-1, 1], row-major like a flattened
    (g, g) map."""
    c = cell_centres(g)
    return torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(-1, 2)


def cell_index(xy: torch.Tensor, g: int) -> torch.Tensor:
    """The index (N,) in a row-major g x g grid over [-1, 1]² of the cell holding each point
    of xy (N, 2) (x, y); points outside go to the nearest edge cell."""
    col = ((xy[:, 0] + 1) / 2 * g).floor().clamp(0, g - 1).long()
    row = ((xy[:, 1] + 1) / 2 * g).floor().clamp(0, g - 1).long()
    return row * g + col


class RefineHead(nn.Module):
    """The k² local components over the last crop (module docstring).

    Args:
        channels: of the crops (1 gray, C colour).
        hidden: size of the recurrent state h.
        k: the local grid's side.
        width: channels of the head's CNN.
    """

    def __init__(self, channels: int, hidden: int, k: int, width: int = 32):
        super().__init__()
        self.k, self.width = k, width
        self.net = nn.Sequential(
            nn.Conv2d(channels, width // 2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width // 2, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(k),
        )
        self.state = nn.Linear(hidden, width)
        self.head = nn.Conv2d(width, 5, 1)  # score, μδ (2), log σδ' (2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # σδ' starts at about half a local cell: σδ ≈ f / (2k)
        nn.init.constant_(self.head.bias[3:], math.log(1.0 / (2 * k)))
        self.gate = nn.Linear(2 * width, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.register_buffer("unit_xy", grid_xy(k), persistent=False)
        # False: the local cells have no mass, as before the first crop (``local_cells_off``)
        self.enabled = True

    @property
    def features(self) -> int:
        """Size of the pooled features it hands the scale's MLP."""
        return 2 * self.width

    def forward(
        self,
        crop: torch.Tensor | None,
        xy: torch.Tensor | None,
        fraction: torch.Tensor | None,
        h: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """crop (B, [C,] s, s): the last crop, or None before the first; xy (B, 2) its
        centre; fraction (B,) its side over the image side; h (B, hidden).

        Returns {"logits" (B, k²), "centres" (B, k², 2), "offset_mu" (B, k², 2),
        "raw_sigma" (B, k², 2): σδ' before the floor (σδ = fraction · σδ'),
        "scale" (B, 1, 1): the fraction, "pooled" (B, 2·width)}."""
        B, K = h.shape[0], self.k * self.k
        if crop is None or not self.enabled:
            zeros = h.new_zeros(B, K, 2)
            return {
                "logits": h.new_full((B, K), NO_WINDOW),
                "centres": zeros,
                "offset_mu": zeros,
                "raw_sigma": zeros + self.head.bias[3:],
                "scale": h.new_ones(B, 1, 1),
                "pooled": h.new_zeros(B, self.features),
            }
        x = crop if crop.ndim == 4 else crop[:, None]
        fmap = self.net(x.to(h.dtype))  # (B, w, k, k)
        pooled = torch.cat([fmap.mean((2, 3)), fmap.amax((2, 3))], 1)
        a = F.relu(fmap + self.state(h)[:, :, None, None])
        out = self.head(a).flatten(2).transpose(1, 2)  # (B, k², 5)
        f = fraction.to(h.dtype)[:, None, None]  # (B, 1, 1)
        return {
            "logits": out[..., 0] + self.gate(pooled),
            "centres": xy.to(h.dtype)[:, None] + f * self.unit_xy[None],
            "offset_mu": torch.tanh(out[..., 1:3]) * f / self.k,
            "raw_sigma": out[..., 3:5],
            "scale": f,
            "pooled": pooled,
        }


@contextmanager
def local_cells_off(model: nn.Module) -> Iterator[None]:
    """Run ``model`` (a VS model with ``refine_grid``) with its local cells masked: it looks
    among the proxy's cells only (``evaluate --policy proxy-cells``, the ablation of what
    looking again inside the last crop adds to the same weights)."""
    head = getattr(getattr(model, "posterior", None), "refine", None)
    if head is None:
        raise ValueError("the model has no local cells (it was trained with --refine-grid 0)")
    head.enabled = False
    try:
        yield
    finally:
        head.enabled = True
