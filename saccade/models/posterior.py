"""Where to look: the posterior q(z_t | φx, h_{t-1}) and the prior p(z_t | h_{t-1}) over
z = (s, x, y), their family (``WhereDistribution``: a categorical over the proxy's g x g cells,
a Gaussian offset inside the chosen cell, a Gaussian scale) and its exact KL (``where_kl``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from .refine import RefineHead, cell_centres, cell_index, grid_xy

__all__ = [
    "cell_centres",
    "cell_index",
    "grid_xy",
    "Posterior",
    "Prior",
    "WhereDistribution",
    "where_kl",
]


class PosteriorSettings(Protocol):
    """The fields of a model's config (``saccade.models.vs.ModelConfig``) that shape its
    ``Posterior``."""

    features: int
    hidden: int
    where_grid: int
    min_sigma: float
    max_sigma: float | None
    variance: str
    fixed_sigma: float
    where_channels: int
    seen_init: float | None
    init_sigma: float
    where_memory: bool
    last_init: float | None
    channels: int
    refine_grid: int
    offset_reach: float


@dataclass
class WhereDistribution:
    """A distribution over z = (s, x, y) of the posterior's family, for a batch of B.

    The location is a mixture: a cell i of the g x g grid with probability π_i, then
    (x, y) = c_i + δ with δ ~ N(μδ_i, diag σδ_i²) (c_i: the cell's centre in [-1, 1]).
    The scale s ~ N(μ_s, σ_s²) is independent of the location. The prior has one offset
    Gaussian for all cells (G = 1); the posterior one per cell (G = g²).

    With local cells over the last crop (``saccade.models.refine``, k x k of them) the
    categorical runs over K = g² + k² components, the local ones after the g² cells, and
    ``centres`` holds every component's centre c_i per image, since the local ones move with
    the last crop.
    """

    logits: torch.Tensor  # (B, K) component logits, log π up to a constant; K = g² (+ k²)
    offset_mu: torch.Tensor  # (B, G, 2) μδ (x, y)
    offset_sigma: torch.Tensor  # (B, G, 2) σδ
    scale_mu: torch.Tensor  # (B,)
    scale_sigma: torch.Tensor  # (B,)
    centres: torch.Tensor | None = None  # (B, K, 2) with local cells; None: the g² cells'

    @classmethod
    def cat(cls, parts: list[WhereDistribution]) -> WhereDistribution:
        """The distributions of ``parts`` stacked along the batch (a field None in them all
        stays None)."""
        return cls(
            *(
                None if getattr(parts[0], f) is None else torch.cat([getattr(p, f) for p in parts])
                for f in WHERE_FIELDS
            )
        )

    def component_centres(self, cells: torch.Tensor) -> torch.Tensor:
        """(B, K, 2) every component's centre; ``cells`` (g², 2): the grid's, used when
        ``centres`` is None."""
        return cells[None] if self.centres is None else self.centres

    def location_moments(self, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of (x, y) under the mixture; centres (g², 2) of the
        cells (``centres`` when set) -> ((B, 2), (B, 2))."""
        p = torch.softmax(self.logits, -1)[..., None]  # (B, K, 1)
        loc = self.component_centres(centres) + self.offset_mu  # (B, K, 2)
        mean = (p * loc).sum(1)
        # the spread about the mean, not E[x²] − E[x]²: a local cell's σ of a 48-px crop
        # (~1e-6 of the side) is below float32's resolution of the difference
        var = (p * ((loc - mean[:, None]).pow(2) + self.offset_sigma.pow(2))).sum(1)
        return mean, var.sqrt()


#: the tensors of a WhereDistribution, in the order of its fields (``centres`` may be None)
WHERE_FIELDS = ("logits", "offset_mu", "offset_sigma", "scale_mu", "scale_sigma", "centres")


def _normal_kl(mq, sq, mp, sp) -> torch.Tensor:
    """Elementwise KL(N(mq, sq²) ‖ N(mp, sp²)) of standard deviations sq, sp."""
    return torch.log(sp / sq) + (sq.pow(2) + (mq - mp).pow(2)) / (2 * sp.pow(2)) - 0.5


def where_kl(q: WhereDistribution, p: WhereDistribution) -> torch.Tensor:
    """KL(q ‖ p) of two where-distributions, exact: (B,).

        KL = Σ_i π^q_i log(π^q_i / π^p_i)                 the cell
           + Σ_i π^q_i KL(N(μδ^q_i, σδ^q_i²) ‖ N(μδ^p, σδ^p²))  the offset, given the cell
           + KL(N(μ_s^q, σ_s^q²) ‖ N(μ_s^p, σ_s^p²))        the scale

    This is the KL of the joint over (cell, offset, scale); the mixture over (x, y) that the
    cells and offsets induce would need an estimate, the joint does not (and bounds it above).
    """
    log_q, log_p = F.log_softmax(q.logits, -1), F.log_softmax(p.logits, -1)
    pi = log_q.exp()
    kl_cell = (pi * (log_q - log_p)).sum(-1)
    kl_off = _normal_kl(q.offset_mu, q.offset_sigma, p.offset_mu, p.offset_sigma).sum(-1)
    kl_off = (pi * kl_off).sum(-1)
    kl_scale = _normal_kl(q.scale_mu, q.scale_sigma, p.scale_mu, p.scale_sigma)
    return kl_cell + kl_off + kl_scale


def _sigma(raw: torch.Tensor, floor: float, ceiling: float | None = None) -> torch.Tensor:
    """σ = floor + exp(raw): a log-σ head, whose gradient from the KL's −log σ does not
    vanish near the floor (docs/results.md#design-choices-measured). With a ``ceiling`` m,
    σ = m·tanh(σ'/m) of that σ': about σ' well below m, never above m (a σ that the class
    term pushed up without a bound sent the sampled crops off the image: docs/results.md,
    "Megapixel MNIST")."""
    sigma = floor + torch.exp(raw.clamp(max=5.0))
    return sigma if ceiling is None else ceiling * torch.tanh(sigma / ceiling)


def _offset(raw: torch.Tensor, reach: float, grid: int) -> torch.Tensor:
    """μδ = tanh(raw) · 2r / g: at most r cells of a g x g grid from the cell's centre."""
    return torch.tanh(raw) * (2 * reach / grid)


class Prior(nn.Module):
    """p(z_t | h_{t-1}): the posterior's family from the recurrent state alone (it does not
    see the proxy). Learnt in both variance modes (the mode is the posterior's)."""

    def __init__(
        self, hidden: int, grid: int, min_sigma: float, local: int = 0, reach: float = 0.5
    ):
        """``local``: the number of local cells after the g² (``saccade.models.refine``);
        ``reach``: the offset's bound in cells (the posterior's ``offset_reach``)."""
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.cells = nn.Linear(hidden, grid * grid + local)
        self.out = nn.Linear(hidden, 6)  # μδ (2), log σδ (2), μ_s, log σ_s
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, math.log(0.1))
        with torch.no_grad():  # start where the posterior starts (see Posterior)
            self.out.bias[[0, 1]] = 0.0
            self.out.bias[4] = math.atanh(0.8)
        self.grid = grid
        self.min_sigma = min_sigma
        self.reach = reach

    def forward(self, h: torch.Tensor) -> WhereDistribution:
        x = self.net(h)
        o = self.out(x)
        return WhereDistribution(
            logits=self.cells(x),
            offset_mu=_offset(o[:, None, 0:2], self.reach, self.grid),
            offset_sigma=_sigma(o[:, None, 2:4], self.min_sigma),
            scale_mu=torch.tanh(o[:, 4]),
            scale_sigma=_sigma(o[:, 5], self.min_sigma),
        )


class Posterior(nn.Module):
    """q(z_t | φx, h_{t-1}) over z = (s, x, y): a categorical over the g x g cells of the proxy,
    a Gaussian offset from the chosen cell's centre, and a Gaussian scale
    (``WhereDistribution``).

        a_t = ReLU(Conv3x3([F, saliency, seen]) + W h_{t-1})         (B, c, g, g)
        [score, μδ, log σδ]_i = Conv1x1(a_t)_i                     per cell i
        π_t = softmax(score_t + w_sal · saliency),   μδ_i = tanh(·) · 2r / g  (at most r cells)
        μ_s, log σ_s = MLP([φx, h_{t-1}])

    Where to look is the network's choice: the saliency (the proxy's brightness per cell over
    its maximum) and the map of cells that earlier crops covered are inputs, like the proxy's
    features, and no rule overrides the categorical. A categorical over cells can put its mass
    on two digits at once, and its spread is what "unsure where to look" means (why not a
    Gaussian: docs/results.md#design-choices-measured). σ: ``learnt`` predicts σδ per
    cell and coordinate and σ_s; ``fixed`` uses ``fixed_sigma`` for all of them (the
    categorical is learnt in both modes).
    """

    def __init__(self, channels: int, config: PosteriorSettings):
        """``channels``: of the proxy's feature map; ``config``: the model's
        (``PosteriorSettings``: where_grid is g, where_channels is c)."""
        super().__init__()
        features, hidden, grid = config.features, config.hidden, config.where_grid
        init_sigma, memory = config.init_sigma, config.where_memory
        seen_init, last_init = config.seen_init, config.last_init
        c = config.where_channels
        # the maps beside the proxy's features: saliency, seen, and with ``memory`` the last
        # window's (where the previous crop was, and at what zoom)
        self.n_maps = 3 if memory else 2
        self.conv = nn.Conv2d(channels + self.n_maps, c, 3, padding=1)
        self.state = nn.Linear(hidden, c)
        self.cell_head = nn.Conv2d(c, 5, 1)  # score, μδ (2), log σδ (2)
        nn.init.zeros_(self.cell_head.weight)  # start uniform over cells, offsets 0
        nn.init.zeros_(self.cell_head.bias)
        start = math.log(init_sigma)  # σ = min_sigma + exp(raw) starts at about init_sigma
        nn.init.constant_(self.cell_head.bias[3:], start)
        # with --refine-grid k: k x k local cells over the last crop (saccade.models.refine)
        k = config.refine_grid
        self.refine = RefineHead(config.channels, hidden, k) if k else None
        local = self.refine.features if k else 0
        if k:
            self.register_buffer("cell_xy", grid_xy(grid), persistent=False)
        self.net = nn.Sequential(nn.Linear(features + hidden + local, hidden), nn.ReLU())
        self.scale = nn.Linear(hidden, 2)  # μ_s (before tanh), log σ_s
        nn.init.zeros_(self.scale.weight)
        nn.init.constant_(self.scale.bias, start)
        nn.init.constant_(self.scale.bias[:1], math.atanh(0.8))
        # A learnt weight on the saliency input, started at 8 so that the first crops (while
        # the classifier cannot yet tell a digit) mostly land on bright blobs (from 0 training
        # sat at chance: docs/results.md#design-choices-measured). ``evaluate --policy
        # brightness`` measures what learning adds to it.
        self.w_sal = nn.Parameter(torch.tensor(8.0))
        # A learnt weight on the map of covered cells (inhibition of return), for Megapixel
        # MNIST, where without it the mode took all its crops at one cell (docs/results.md).
        if seen_init is not None:
            self.w_seen = nn.Parameter(torch.tensor(float(seen_init)))
        # With the last window's map, a learnt weight on it too: the cell just read is less
        # inhibited than the other covered cells, so that zooming there stays a choice.
        if memory and last_init is not None:
            self.w_last = nn.Parameter(torch.tensor(float(last_init)))
        self.grid = grid
        # the offset's bound, r cells (``offset_reach``): 0.5, inside its cell
        self.reach = config.offset_reach
        self.fixed_sigma = config.fixed_sigma if config.variance == "fixed" else None
        self.min_sigma = config.min_sigma
        self.max_sigma = config.max_sigma

    def _logits(self, scores, saliency, seen, last=None) -> torch.Tensor:
        """Cell logits (B, g²): the learnt scores plus the learnt weights times the maps."""
        logits = scores + self.w_sal * saliency.flatten(1)
        if hasattr(self, "w_seen"):
            logits = logits + self.w_seen * seen.flatten(1)
        if hasattr(self, "w_last"):
            logits = logits + self.w_last * last.flatten(1)
        return logits

    def image_term(self, fmap: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """The part of Conv3x3([F, saliency, seen]) that does not change over the steps:
        fmap (B, C, g, g), saliency (B, g, g) -> (B, c, g, g). A convolution is linear in
        its input channels, so computing it once per image and adding the seen-map's part
        at each step gives the same result as the whole convolution at each step (which, at
        g = 45, cost 77M multiply-adds per step)."""
        x = torch.cat([fmap, saliency[:, None]], 1)
        return F.conv2d(x, self.conv.weight[:, : 1 - self.n_maps], self.conv.bias, padding=1)

    def forward(
        self,
        image_term: torch.Tensor,
        phi: torch.Tensor,
        h: torch.Tensor,
        saliency: torch.Tensor,
        seen: torch.Tensor,
        last: torch.Tensor | None = None,
        window: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> WhereDistribution:
        """image_term (B, c, g, g) from ``image_term``, phi (B, features), h (B, hidden),
        saliency and seen (B, g, g); with ``memory``, ``last`` (B, g, g) the last window's
        map (``VariationalSaccader._last_window``); with local cells, ``window`` the last
        crop (B, [C,] s, s), its centre (B, 2) and its side over the image's (B,), or None
        before the first crop."""
        maps = seen[:, None] if self.n_maps == 2 else torch.stack([seen, last], 1)
        seen_term = F.conv2d(maps, self.conv.weight[:, 1 - self.n_maps :], padding=1)
        a = F.relu(image_term + seen_term + self.state(h)[:, :, None, None])
        out = self.cell_head(a).flatten(2).transpose(1, 2)  # (B, g², 5)
        local = None if self.refine is None else self.refine(*(window or (None,) * 3), h)
        scale_in = [phi, h] + ([] if local is None else [local["pooled"]])
        s = self.scale(self.net(torch.cat(scale_in, 1)))
        offset_sigma, scale_sigma = self._sigmas(out[..., 3:5], s[:, 1])
        where = WhereDistribution(
            logits=self._logits(out[..., 0], saliency, seen, last),
            offset_mu=_offset(out[..., 1:3], self.reach, self.grid),
            offset_sigma=offset_sigma,
            scale_mu=torch.tanh(s[:, 0]),
            scale_sigma=scale_sigma,
        )
        return where if local is None else self._with_local(where, local)

    def _sigmas(self, offset: torch.Tensor, scale: torch.Tensor):
        """σδ and σ_s from their raw heads."""
        return self._sigma_of(offset), self._sigma_of(scale)

    def _sigma_of(self, raw: torch.Tensor) -> torch.Tensor:
        """σ from a raw head (learnt), or ``fixed_sigma`` (fixed)."""
        if self.fixed_sigma is None:
            return _sigma(raw, self.min_sigma, self.max_sigma)
        return torch.full_like(raw, self.fixed_sigma)

    def _with_local(self, where: WhereDistribution, local: dict) -> WhereDistribution:
        """``where`` over the g² cells and the k² local ones after them: their σδ in units of
        the last crop's side (``saccade.models.refine``)."""
        sigma = self._sigma_of(local["raw_sigma"])
        B = where.logits.shape[0]
        return WhereDistribution(
            logits=torch.cat([where.logits, local["logits"]], 1),
            offset_mu=torch.cat([where.offset_mu, local["offset_mu"]], 1),
            offset_sigma=torch.cat([where.offset_sigma, sigma * local["scale"]], 1),
            scale_mu=where.scale_mu,
            scale_sigma=where.scale_sigma,
            centres=torch.cat([self.cell_xy.expand(B, -1, -1), local["centres"]], 1),
        )
