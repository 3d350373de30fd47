"""Where-policies for ablations: what does the learnt posterior's choice of location add?

``python -m saccade.evaluate CHECKPOINT --policy NAME`` runs the model as usual (its crop
encoder, classifier and recurrent state) but takes each crop where the policy says:

- ``learnt``: the posterior's own choice (the model unchanged);
- ``brightness``: a heuristic, the centre of the brightest proxy cell that no earlier crop
  covered (the brightest of all once every cell is covered);
- ``random``: a centre drawn uniformly so that the crop lies inside the image;
- ``oracle``: the centre of a ground-truth digit box, the digits in turn;
- ``scale-max``, ``scale-min``: the posterior's own locations, the crop scale pinned at its
  largest (s = +1) or smallest (s = -1): what the learnt zoom adds (the zoom benchmark);
- ``proxy-cells``: the posterior's own choice with its local cells over the last crop masked
  (a model trained with ``--refine-grid``; ``saccade.models.refine.local_cells_off``): what
  looking again inside the last crop adds.

The location policies keep the model's own crop scale (the posterior's μ_s), so that only the
location differs; the scale policies keep its locations. A policy is ``policy(t, mode, seen, saliency) -> z``: mode (B, 3) the
posterior's mode, seen and saliency (B, g, g) (``VariationalSaccader.forward``), z (B, 3).
"""

from __future__ import annotations

import numpy as np
import torch

from ..glimpse import scale_to_fraction
from ..models.posterior import cell_centres
from ..models.vs import Policy

POLICIES = ("learnt", "brightness", "random", "oracle", "scale-max", "scale-min", "proxy-cells")


def brightness() -> Policy:
    """The brightest cell not yet covered (a heuristic, no learning)."""

    def choose(t, mode, seen, saliency):
        B, g, _ = saliency.shape
        score = saliency.reshape(B, -1) - 10.0 * seen.reshape(B, -1)  # saliency is in [0, 1]
        best = score.argmax(-1)
        centres = cell_centres(g, mode.dtype, mode.device)
        return torch.stack([mode[:, 0], centres[best % g], centres[best // g]], 1)

    return choose


def random(min_scale: float, max_scale: float, seed: int = 0, log_scale: bool = False) -> Policy:
    """Uniform crop centres, the crop inside the image."""
    generator = torch.Generator().manual_seed(int(seed))

    def choose(t, mode, seen, saliency):
        half = scale_to_fraction(mode[:, 0], min_scale, max_scale, log_scale)  # half-side
        u = torch.rand((len(mode), 2), generator=generator).to(mode)
        xy = (2 * u - 1) * (1 - half[:, None])
        return torch.cat([mode[:, :1], xy], 1)

    return choose


def pinned_scale(s: float) -> Policy:
    """The posterior's mode with its scale replaced by ``s`` (+1: the largest crop, -1: the
    smallest)."""

    def choose(t, mode, seen, saliency):
        return torch.cat([torch.full_like(mode[:, :1], float(s)), mode[:, 1:]], 1)

    return choose


def oracle(boxes: list[np.ndarray], shapes: list[tuple[int, int]]) -> Policy:
    """Crop b at step t is centred on ground-truth digit t mod n_b of image b, the digits
    taken top to bottom (then left to right): not in the generator's order, which for
    Megapixel MNIST lists the label's digits first (docs/results.md#oracle-digit-order).

    Args:
        boxes: per image, its (n_b, 4) ground-truth boxes x0, y0, x1, y1 in pixels.
        shapes: per image, its (H, W).
    """
    centres = []
    for b, (h, w) in zip(boxes, shapes, strict=True):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        if len(b) == 0:
            raise ValueError("the oracle policy needs at least one ground-truth box per image")
        xy = np.stack([(b[:, 0] + b[:, 2]) / w - 1, (b[:, 1] + b[:, 3]) / h - 1], 1)
        centres.append(xy[np.lexsort((xy[:, 0], xy[:, 1]))])

    def choose(t, mode, seen, saliency):
        xy = np.stack([c[t % len(c)] for c in centres])
        return torch.cat([mode[:, :1], torch.from_numpy(xy).to(mode)], 1)

    return choose


def make_policy(
    name: str,
    boxes: list[np.ndarray] | None = None,
    shapes: list[tuple[int, int]] | None = None,
    min_scale: float = 0.15,
    max_scale: float = 0.3,
    seed: int = 0,
    log_scale: bool = False,
) -> Policy | None:
    """The policy called ``name`` (None for ``learnt`` and ``proxy-cells``: the model's own
    choice; ``evaluate`` masks the local cells for the latter)."""
    if name in ("learnt", "proxy-cells"):
        return None
    if name == "brightness":
        return brightness()
    if name == "random":
        return random(min_scale, max_scale, seed, log_scale)
    if name in ("scale-max", "scale-min"):
        return pinned_scale(1.0 if name == "scale-max" else -1.0)
    if name == "oracle":
        if boxes is None or shapes is None:
            raise ValueError("the oracle policy needs the ground-truth boxes of the images")
        return oracle(boxes, shapes)
    raise ValueError(f"policy={name!r}; accepted: {list(POLICIES)}")
