"""Imitation of a coarse-to-fine search, the zoom benchmark's first stage (``--objective
imitation``); the paper's objective follows it (docs/zoom.md).

On a zoom canvas the class loss says nothing until a crop of about 50 px lands on a 28 px
digit somewhere in 32,768², so a posterior started at random never gets a gradient to follow.
This stage teaches it, from the canvases' ground truth, the search a person would make
(``Teacher``): look at the cues one by one at the cue's scale (``CUE_SIDE`` px, or
``--teacher-cue-side``), the brightest on the proxy first (``--teacher-order brightness``)
or the one nearest where the posterior would look (``nearest``), until one is the ring; then
zoom on the ring's centre, to ``MID_SIDE`` px, then to ``READ_SIDE`` px (or through the
sides of ``--teacher-zoom``), and stay there.

The teacher answers for whatever the model did before (DAgger, Ross et al. 2011): at each
step it says what it would do next given the crops taken so far (which cues they showed at
the cue's scale or finer, how far they zoomed on the ring), and the crop is taken where the
teacher says with probability ``teacher_forcing``, else at the posterior's mode, so that the
posterior also sees its own mistakes answered (a first trial with the teacher's crops alone
learnt to stay where it first looked; the model measured so far still stays after one or
two cues: docs/results.md#the-zoom-benchmark). The posterior learns the teacher's next z by
maximum likelihood under its own family:

    L = − mean_t [ log π_t(cell*_t) + log N(δ*_t; μδ_t, σδ_t) + log N(s*_t; μ_s,t, σ_s,t) ]
        + CE of the class after the last step

with cell*_t the cell that holds z*_t's centre and δ*_t its offset from the cell's centre.
The teacher's z is the target, never an input: the posterior must infer from the proxy, the
crops (``crop_to_rnn``) and the last window's map (``where_memory``) where it is and what it
saw. Nothing of the teacher runs at evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..data.zoom import CUE_RADIUS
from ..glimpse import fraction_to_scale, scale_to_fraction, scales_of
from ..models.refine import cell_index

#: the teacher's crop sides, level-0 pixels: a cue with a margin, a few digits, one digit
CUE_SIDE, MID_SIDE, READ_SIDE = 2.6 * CUE_RADIUS, 160.0, 48.0
#: the crop sides from the ring's centre down, after the cue's (``Teacher``'s ``zoom``)
ZOOM_SIDES = (MID_SIDE, READ_SIDE)
#: which unseen cue the teacher sends the crop to (``Teacher``'s ``order``)
TEACHER_ORDERS = ("brightness", "nearest")
#: how the teacher's z is fitted (``Imitation``'s ``fit``): under the component that holds it,
#: or also by the offsets of the proxy cells beside it (``neighbour_log_density``)
IMITATION_FITS = ("cell", "neighbours")


def check_order(order: str, name: str) -> str:
    """``order`` if it is one of ``TEACHER_ORDERS``; ValueError naming ``name`` otherwise."""
    if order not in TEACHER_ORDERS:
        raise ValueError(f"{name}={order!r}; accepted: {list(TEACHER_ORDERS)}")
    return order


def check_region_side(region_side: float | None, cue_side: float, name: str) -> None:
    """ValueError naming ``name`` unless ``region_side`` is None or a crop side in pixels above
    ``cue_side`` (the teacher's first look at a cue's region, ``Teacher``)."""
    if region_side is not None and not region_side > cue_side:
        raise ValueError(
            f"{name}={region_side!r} must be a crop side in pixels above the cue's "
            f"({cue_side:g}), or None"
        )


def check_fit(fit: str, name: str) -> str:
    """``fit`` if it is one of ``IMITATION_FITS``; ValueError naming ``name`` otherwise."""
    if fit not in IMITATION_FITS:
        raise ValueError(f"{name}={fit!r}; accepted: {list(IMITATION_FITS)}")
    return fit


def zoom_sides(sides, name: str) -> tuple[float, ...]:
    """The teacher's zoom chain: pixel sides, a sequence or a comma-separated string (the
    flag's), as floats; ValueError naming ``name`` unless they are numbers > 0, decreasing."""
    try:
        parts = str(sides).split(",") if isinstance(sides, str) else list(sides)
        out = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        out = ()
    if not out or list(out) != sorted(set(out), reverse=True) or min(out) <= 0:
        raise ValueError(
            f"{name}={sides!r}: crop sides in pixels, > 0, decreasing and comma-separated "
            "(e.g. '480,160,48')"
        )
    return out


def cue_centres(cue_boxes: np.ndarray) -> np.ndarray:
    """(n, 2) centres (x, y) of (n, 4) boxes."""
    return np.stack(
        [(cue_boxes[:, 0] + cue_boxes[:, 2]) / 2, (cue_boxes[:, 1] + cue_boxes[:, 3]) / 2], 1
    )


class Teacher:
    """The search's next z for a batch, given the z taken so far.

    Args:
        cue_boxes: per image, its (n, 4) cue boxes in level-0 pixels, the ring's first.
        side: the canvases' side in pixels.
        scales: the model's crop-side range (``glimpse.scales_of``).
        brightness: per image, each cue's brightness on the proxy: the cues in that order.
        order: ``brightness`` (that order, else top to bottom) or ``nearest``: the unseen cue
            nearest the posterior's mode at each step (``next(mode)``), so that the model's
            own choice of cue is corrected in place rather than replaced by another that
            looks the same on the proxy.
        cue_side: the side of a crop that looks at a cue (default ``CUE_SIDE``); a crop of
            up to twice that side over a cue's centre has seen it.
        zoom: the crop sides, decreasing, that zoom on the ring's centre once it was seen:
            each crop goes to the first side below two thirds of the finest crop so far over
            the ring's centre, the last side once there (default ``ZOOM_SIDES``).
        region_side: with a side (pixels, above ``cue_side``), each cue is first looked at
            with a crop of that side (its region's scale), then at ``cue_side``: the first
            look from the proxy may miss by more than half a cue crop (its aim is a share of
            the canvas side, so twice the pixels at twice the side), and the region crop
            says where the cue is. A crop of up to twice ``region_side`` over a cue's centre
            has located it. None (the default): the cue's scale from the first look.
    """

    def __init__(
        self,
        cue_boxes: list[np.ndarray],
        side: int,
        scales: dict,
        brightness: list[np.ndarray] | None = None,
        order: str = "brightness",
        cue_side: float = CUE_SIDE,
        zoom: tuple[float, ...] = ZOOM_SIDES,
        region_side: float | None = None,
    ):
        check_order(order, "order")
        zoom = zoom_sides(zoom, "zoom")
        check_region_side(region_side, cue_side, "region_side")
        self.region_side = None if region_side is None else float(region_side)
        self.nearest, self.cue_side, self.zoom = order == "nearest", float(cue_side), zoom
        self.side, self.scales = float(side), scales
        self.centres = [cue_centres(b) for b in cue_boxes]
        # visiting order: the brightest cue of the proxy first (``brightness``: per image, each
        # cue's, as the posterior's saliency input has it), else top to bottom
        if brightness is not None:
            self.order = [np.argsort(-np.asarray(b), kind="stable") for b in brightness]
        else:
            self.order = [np.lexsort((c[:, 0], c[:, 1])) for c in self.centres]
        B = len(cue_boxes)
        self.seen = [np.zeros(len(c), bool) for c in self.centres]  # looked at, cue scale or finer
        self.located = [np.zeros(len(c), bool) for c in self.centres]  # at the region's or finer
        self.finest = np.full(B, np.inf)  # the smallest crop so far that holds the ring's centre

    def z_for(self, xy: np.ndarray, crop_side: float) -> list[float]:
        s = float(fraction_to_scale(crop_side / self.side, **self.scales))
        return [s, 2 * xy[0] / self.side - 1, 2 * xy[1] / self.side - 1]

    def next(self, mode: np.ndarray | None = None) -> np.ndarray:
        """(B, 3) what the teacher would look at now; ``mode`` (B, 3): the posterior's
        (the ``nearest`` order needs it)."""
        out = []
        for b, centres in enumerate(self.centres):
            ring = centres[0]
            if self.seen[b][0]:  # the ring was seen: zoom on its centre
                crop = next((v for v in self.zoom if self.finest[b] > 1.5 * v), self.zoom[-1])
                out.append(self.z_for(ring, crop))
                continue
            unseen = [k for k in self.order[b] if not self.seen[b][k]]
            # a cue just located at the region's scale is looked at next, at the cue's
            unseen = [k for k in unseen if self.located[b][k]] or unseen
            if self.nearest:
                xy = (np.asarray(mode[b, 1:], np.float64) + 1) / 2 * self.side
                k = min(unseen, key=lambda k: float(np.abs(centres[k] - xy).max()))
            else:
                k = unseen[0]
            far = self.region_side is not None and not self.located[b][k]
            out.append(self.z_for(centres[k], self.region_side if far else self.cue_side))
        return np.asarray(out, np.float32)

    def update(self, z: torch.Tensor) -> None:
        """Record the crops of z (B, 3) just taken."""
        z = z.detach().double().cpu()
        frac = scale_to_fraction(z[:, 0], **self.scales).numpy()
        half = frac * self.side / 2
        cx, cy = ((z[:, 1:].numpy() + 1) / 2 * self.side).T
        for b, centres in enumerate(self.centres):
            inside = (np.abs(centres[:, 0] - cx[b]) < half[b]) & (
                np.abs(centres[:, 1] - cy[b]) < half[b]
            )
            if 2 * half[b] <= 2 * self.cue_side:
                self.seen[b] |= inside
            if self.region_side is None or 2 * half[b] <= 2 * self.region_side:
                self.located[b] |= inside
            if inside[0]:
                self.finest[b] = min(self.finest[b], 2 * half[b])


def gaussian_log_density(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; μ, σ²), elementwise."""
    return -0.5 * ((x - mu) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)


def component_of(
    model, z: torch.Tensor, z_last: torch.Tensor | None, frac: torch.Tensor | None = None
) -> torch.Tensor:
    """The posterior component that holds z (N, 3): the proxy's cell of its centre, or, with
    local cells (``refine_grid`` k) and z inside the last crop's window (z_last (N, 3); None,
    or a row of NaN, where there was no crop before), the local cell of the k x k grid over
    that window. ``frac`` (N,): the last crops' sides over the image's, if known."""
    cells = model._cell_of(z)
    k = model.config.refine_grid
    if not k or z_last is None:
        return cells
    if frac is None:
        frac = scale_to_fraction(z_last[:, 0], **scales_of(model.config))
    u = (z[:, 1:] - z_last[:, 1:]) / frac[:, None]  # in [-1, 1] inside the window (NaN: outside)
    local = model.config.where_grid**2 + cell_index(u, k)
    return torch.where((u.abs() < 1).all(1), local, cells)


def log_density(
    model, where, z: torch.Tensor, z_last: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior's log-density of z (N, 3) under ``where`` (a ``WhereDistribution`` of
    N rows) at the component that holds it (``component_of``; z_last (N, 3): the crops
    before): log π(component) + log N(offset) + log N(scale) (N,), and the component (N,)."""
    g = model.config.where_grid
    local = where.centres is not None and z_last is not None
    frac = scale_to_fraction(z_last[:, 0], **scales_of(model.config)) if local else None
    cells = component_of(model, z, z_last, frac)
    rows = torch.arange(len(z), device=z.device)
    log_pi = torch.log_softmax(where.logits.float(), -1)[rows, cells]
    centres = where.component_centres(model.cell_xy).expand(len(z), -1, -1)[rows, cells]
    # the offset stays inside its cell: half a cell of the proxy's grid, or of the local one
    half = torch.full((len(z),), 1.0 / g, device=z.device)
    if local:
        half = torch.where(cells < g * g, half, frac / model.config.refine_grid)
    bound = 0.999 * half.to(z)[:, None]
    offset = (z[:, 1:] - centres).clamp(-bound, bound)
    log_off = gaussian_log_density(
        offset, where.offset_mu[rows, cells], where.offset_sigma[rows, cells]
    ).sum(-1)
    log_s = gaussian_log_density(z[:, 0], where.scale_mu, where.scale_sigma)
    return log_pi + log_off + log_s, cells


def neighbour_log_density(model, where, z: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The mean log-density of z's position (N, 3) under the offsets of the proxy cells
    beside the one that holds it (``cells`` (N,), ``component_of``), those within the offset's
    reach (``offset_reach`` r: |z − c_j| < r cells in x and y); 0 for a row without any, and
    for a row held by a local cell (``--imitation-fit neighbours``):

        mean_{j ≠ cell, j within reach} log N(z − c_j; μδ_j, σδ_j²)      (N,)

    A heuristic beside the likelihood, as a detector trains every anchor near an object: a
    cue near a border spreads its ink, and the posterior's mass, over up to four cells, and
    whichever of them the mode picks then aims at the cue."""
    g = model.config.where_grid
    reach = 2 * model.config.offset_reach / g
    delta = z[:, None, 1:] - model.cell_xy[None]  # (N, g², 2)
    near = (delta.abs() < reach).all(-1)
    rows = torch.arange(len(z), device=z.device)
    held = cells < g * g
    near[rows[held], cells[held]] = False
    near &= held[:, None]
    log_n = gaussian_log_density(
        delta, where.offset_mu[:, : g * g], where.offset_sigma[:, : g * g]
    ).sum(-1)
    count = near.sum(1)
    return torch.where(near, log_n, 0.0).sum(1) / count.clamp_min(1)


@dataclass
class Imitation:
    """Batch {"image", "proxy", "label", "cue_boxes"} -> the imitation loss (module
    docstring) and its terms: ``imitation`` (the negative log-likelihood of the teacher's z
    per step), ``cell_acc`` (the posterior's most probable cell is the teacher's), ``ce`` and
    ``acc`` (after the last step), ``teacher_acc`` (the crops were the teacher's where it
    forced them)."""

    model: torch.nn.Module
    teacher_forcing: float = 0.5
    ce_weight: float = 1.0
    forward: torch.nn.Module | None = None
    order: str = "brightness"
    cue_side: float = CUE_SIDE
    zoom: tuple[float, ...] = ZOOM_SIDES
    region_side: float | None = None
    fit: str = "cell"

    def __post_init__(self):
        check_fit(self.fit, "fit")

    def __call__(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        model = self.model
        T = model.config.n_saccades
        side = batch["image"][0].shape[0]
        cues = batch["cue_boxes"]
        with torch.no_grad():  # each cue's brightness on the proxy sets the search's order
            saliency = model.saliency(batch["proxy"]).flatten(1).cpu()
            brightness = []
            for b, boxes in enumerate(cues):
                xy = torch.from_numpy(2 * cue_centres(boxes) / side - 1).float()
                cells = cell_index(xy.to(saliency.device), model.config.where_grid)
                brightness.append(saliency[b, cells.cpu()].numpy())
        teacher = Teacher(
            cues, side, scales_of(model.config), brightness, self.order, self.cue_side,
            self.zoom, self.region_side,
        )  # fmt: skip
        targets: list[torch.Tensor] = []
        forced = torch.rand(T, len(batch["label"])) < self.teacher_forcing

        def choose(t, mode, seen, saliency):
            seen_mode = mode.detach().cpu().numpy() if teacher.nearest else None
            target = torch.from_numpy(teacher.next(seen_mode)).to(mode)
            targets.append(target)
            z = torch.where(forced[t].to(mode.device)[:, None], target, mode)
            teacher.update(z)
            return z

        trace = (self.forward or model)(
            batch["image"], batch["proxy"], T, sample=False, policy=choose
        )
        z_star = torch.stack(targets)  # (T, B, 3)
        # each step's crop before (NaN at the first step: no window holds anything)
        z_last = torch.cat([torch.full_like(trace.z[:1], math.nan), trace.z[:-1]]).detach()
        z_star, z_last = z_star.flatten(0, 1), z_last.flatten(0, 1)
        log_q, cells = log_density(model, trace.where, z_star, z_last)
        if self.fit == "neighbours":
            log_q = log_q + neighbour_log_density(model, trace.where, z_star, cells)
        nll = -log_q.mean()
        labels = batch["label"]
        ce = torch.nn.functional.cross_entropy(trace.logits[-1].float(), labels)
        loss = nll + self.ce_weight * ce
        best = trace.where.logits.argmax(-1)
        terms = {
            "loss": loss.item(),
            "imitation": nll.item(),
            "ce": ce.item(),
            "acc": (trace.logits[-1].argmax(-1) == labels).float().mean().item(),
            "cell_acc": (best == cells).float().mean().item(),
        }
        return loss, terms
