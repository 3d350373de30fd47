"""The variational saccading model: a VRNN that plans crops on a proxy and classifies from them.

One forward pass (docs/design.md; symbols as in Ramapuram et al., BMVC 2019):

    φx = ProxyEncoder(p)                              p: the low-resolution proxy
    h_0 = 0
    for t = 1..T:
        q(z_t | φx, h_{t-1})                          Posterior: a cell of the proxy, a
                                                      Gaussian offset inside it, a Gaussian
                                                      scale (σ learnt or fixed)
        p(z_t | h_{t-1})                              Prior, same family
        z_t ~ q  (training)  |  the mode of q  (evaluation, unless sampling is asked for)
        c_t = glimpse(x, z_t, k)                      k×k crop of the full-resolution image
        f_t = CropEncoder(c_t)
        logits_t = Classifier(f_1..f_t, z_1..z_t)     anytime prediction after t saccades
        x̂_t = Decoder(z_t, h_{t-1})                   reconstruction of the proxy (logits)
        h_t = LSTM(h_{t-1}, [φx, embed(z_t)] (+ f_t with crop_to_rnn; off by default))

The posterior, the prior and their KL are in ``saccade.models.posterior``; the loss (the paper's
bound with its departures) in ``saccade.models.objective``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..glimpse import (
    ImageSource,
    as_pyramids,
    finest_level,
    glimpse,
    scale_to_fraction,
    scales_of,
)
from .classifier import POOLINGS, Classifier
from .find_candidates import FindTeacher, gumbel_top_k
from .objective import LossWeights, Trace, gray_proxy, loss
from .posterior import (
    Posterior,
    Prior,
    WhereDistribution,
    cell_centres,
    cell_index,
    grid_xy,
    where_kl,
)
from .registry import BaseConfig, register_model, setting

__all__ = [
    "ModelConfig",
    "VariationalSaccader",
    "Trace",
    "Policy",
    "crop_encoder_net",
    "for_canvas",
    "canvas_layout",
    "share_fits",
    "LAYOUTS",
    "VARIANCES",
]

VARIANCES = ("learnt", "fixed")
SCALE_SPACES = ("linear", "log")
SALIENCIES = ("brightness", "tissue")
CROP_ENCODERS = ("lenet", "lenet-pool")
#: how a model meets another canvas side (``for_canvas``): everything in pixels, or the
#: layout a share of the side (the objects in pixels)
LAYOUTS = ("pixels", "share")

#: A where-policy that replaces the posterior's choice (``saccade.evaluate.policies``):
#: ``policy(t, mode, seen, saliency) -> z`` with mode (B, 3) the posterior's mode,
#: seen and saliency (B, g, g), z (B, 3).
Policy = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ModelConfig(BaseConfig):
    """Hyperparameters of a model; saved in every checkpoint's JSON. ``BaseConfig`` holds
    the classes, the proxy's side p, T (``n_saccades``), ``max_saccades`` and the dataset.
    Each ``setting`` is a flag of ``python -m saccade.train`` with this help."""

    n_classes: int = 19
    # Input channels: 1 (grayscale images (H, W), proxies (B, p, p)) or C (colour images
    # (H, W, C), proxies (B, C, p, p)); from the training data (``dataset.channels``). A
    # checkpoint saved before colour existed has no such key and loads as 1.
    channels: int = 1
    crop_size: int = setting(32, "k, crop side in pixels")
    min_scale: float = setting(0.15, "crop side / image side at the smallest scale (s = -1)")
    max_scale: float = setting(0.3, "crop side / image side at the largest scale (s = +1)")
    # a checkpoint saved before the log scale existed has no such key and loads as linear
    scale_space: str = setting(
        "linear",
        "how s maps to the crop side: linear, or log (linear in the side's logarithm: a σ of "
        "s is the same factor of zoom at every scale; for ranges over orders of magnitude)",
        SCALE_SPACES,
    )
    hidden: int = setting(256, "size of the LSTM state h")
    features: int = setting(256, "size of the proxy feature φx and of each crop's f_t")
    variance: str = setting(
        "learnt", "learnt (σ_t predicted) or fixed (σ = --fixed-sigma)", VARIANCES
    )
    fixed_sigma: float = setting(0.05, "the posterior std in fixed mode")
    min_sigma: float = setting(1e-3, "the smallest std the posterior may predict")
    init_sigma: float = setting(
        0.05, "learnt variance: the posterior's std before training, plus min_sigma (offset, scale)"
    )
    max_sigma: float | None = setting(
        None,
        "learnt variance: the largest std the posterior may predict (a soft bound, "
        "σ = m·tanh(σ'/m)); default none: unbounded",
    )
    # off by default: it kept training at chance (docs/results.md#design-choices-measured)
    crop_to_rnn: bool = setting(False, "feed crop features to the LSTM (true/false)")
    recon_size: int = setting(32, "the decoder reconstructs the proxy pooled to at most this side")
    where_grid: int = setting(
        8, "g: the posterior's categorical runs over g x g cells of the proxy"
    )
    where_channels: int = setting(64, "channels of the posterior's per-cell hidden layer")
    saliency: str = setting(
        "brightness",
        "the where-network's saliency input per proxy cell (an input and a learnt prior, never "
        "a rule): brightness (the proxy's mean over its maximum) or tissue (the tissue share "
        "of the cell: Otsu on the proxy, saccade.data.tissue; bright glass does not draw it)",
        SALIENCIES,
    )
    seen_init: float | None = setting(
        None,
        "a learnt weight on the map of covered cells, added to the cell logits, starts at "
        "this value (e.g. -8: inhibition of return); default none: no such weight",
    )
    where_memory: bool = setting(
        False,
        "the posterior also reads a map of the last crop's window: the cells it covered and "
        "the cell of its centre, valued by how far it zoomed (1 at the smallest scale, 0.5 at "
        "the largest), so it can refine inside the window it just read (true/false)",
    )
    last_init: float | None = setting(
        None,
        "with --where-memory: a learnt weight on the last window's map, added to the cell "
        "logits, starts at this value (e.g. 6 beside --seen-init -8: the cell just read is "
        "less inhibited than the others covered, so zooming there stays a choice)",
    )
    offset_reach: float = setting(
        0.5,
        "how far a proxy cell's offset may reach from the cell's centre, in cells: 0.5, its "
        "own cell; 1, the cells beside it too, so that an object on a border between cells "
        "is aimed at from whichever of them is chosen (a checkpoint saved before it loads "
        "as 0.5)",
    )
    refine_grid: int = setting(
        0,
        "k: the posterior also offers k x k local cells laid over the last crop's window, "
        "scored from that crop by a small CNN of their own, so the next crop can go where the "
        "last one showed something (saccade.models.refine); 0: off",
    )
    crop_width: int = setting(16, "channels of the crop encoder's first layer (then 2x, 2x)")
    crop_encoder: str = setting(
        "lenet",
        "the crop encoder's layers: lenet (conv, norm, ReLU, pool) or lenet-pool "
        "(conv, pool, norm, ReLU: faster); a --reader must have the same",
        CROP_ENCODERS,
    )
    proxy_width: int = setting(32, "channels of the proxy encoder's first layer (then 2x)")
    pooling: str = setting(
        "max",
        "how the classifier pools the crops: max (a set), mean (a share) or evidence (each "
        "crop's class or 'no digit', summed: counts)",
        POOLINGS,
    )
    find_candidates: int = setting(
        0,
        "training only, with --pooling evidence: crop this many candidate cells per image "
        "and teach the posterior's cell logits the reader's P(digit) there (0: off)",
    )
    # at 0.5 on Megapixel MNIST a crop covers the 3 x 3 cells around it, so the next crops
    # do not read again the digit in the cell beside it (the evidence sum would count it twice)
    seen_margin: float = setting(
        0.0, "a cell counts as covered within the crop's half-side plus this many cell sides"
    )
    # r^γ has the ranking of r, so it moves no optimum of the mode; it concentrates the
    # categorical on the cells the reader is sure of, so that a drawn cell is one of them
    # (docs/results.md, "Megapixel MNIST")
    find_power: float = setting(
        1.0,
        "with --find-candidates (and python -m saccade.train.distil): the cell targets are "
        "the reader's P(digit) to this power (>1 sharpens the categorical)",
    )

    def __post_init__(self):
        if not 0 < self.offset_reach <= 2:
            raise ValueError(
                f"offset_reach={self.offset_reach!r}: a cell's offset bound in cells, in (0, 2]"
            )
        if self.variance not in VARIANCES:
            raise ValueError(f"variance={self.variance!r}; accepted: {list(VARIANCES)}")
        if self.scale_space not in SCALE_SPACES:
            raise ValueError(f"scale_space={self.scale_space!r}; accepted: {list(SCALE_SPACES)}")
        if self.saliency not in SALIENCIES:
            raise ValueError(f"saliency={self.saliency!r}; accepted: {list(SALIENCIES)}")
        super().__post_init__()
        if self.fixed_sigma <= 0:
            raise ValueError(f"fixed_sigma={self.fixed_sigma!r} must be > 0")
        if not self.init_sigma > 0:
            raise ValueError(f"init_sigma={self.init_sigma!r} must be > 0")
        if self.max_sigma is not None and not self.max_sigma > self.min_sigma:
            raise ValueError(
                f"max_sigma={self.max_sigma!r} must be greater than min_sigma={self.min_sigma!r}"
            )
        if self.where_grid < 2:
            raise ValueError(f"where_grid={self.where_grid!r} must be >= 2")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; accepted: {list(POOLINGS)}")
        self.check_at_least_one("proxy_width", "crop_size")
        if not self.find_power > 0:
            raise ValueError(f"find_power={self.find_power!r} must be > 0")
        if self.refine_grid < 0 or (self.refine_grid and self.find_candidates):
            raise ValueError(
                f"refine_grid={self.refine_grid!r} must be 0, or > 0 without find_candidates "
                "(the find term scores the proxy's cells only)"
            )
        if not self.seen_margin >= 0:
            raise ValueError(f"seen_margin={self.seen_margin!r} must be >= 0")
        if self.find_candidates < 0 or (self.find_candidates and self.pooling != "evidence"):
            raise ValueError(
                f"find_candidates={self.find_candidates!r} must be 0, or > 0 with pooling "
                "'evidence' (it reads the crops' 'no digit' outcome)"
            )


def crop_encoder_net(
    out_features: int, width: int = 16, channels: int = 1, kind: str = "lenet"
) -> nn.Sequential:
    """A LeNet-like CNN: (B, channels, S, S) -> (B, out_features), for any S >= 8.

    3x3 convolutions with max-pooling (width, 2·width, 2·width channels), which keep the
    strokes' detail that a stride-2 first layer lost. ``kind``:
    - "lenet": convolution, BatchNorm, ReLU, then pool (the shipped models before the digit
      reader);
    - "lenet-pool": convolution, pool, then BatchNorm and ReLU on the pooled map: the
      elementwise layers run on a quarter of the pixels (faster:
      docs/results.md#crop-encoder-speed).
    """
    if kind not in CROP_ENCODERS:
        raise ValueError(f"crop_encoder={kind!r}; accepted: {list(CROP_ENCODERS)}")
    w = width

    def block(c_in: int, c_out: int, pool: nn.Module) -> list[nn.Module]:
        conv, norm = nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out)
        if kind == "lenet":
            return [conv, norm, nn.ReLU(), pool]
        return [conv, pool, norm, nn.ReLU()]

    return nn.Sequential(
        *block(channels, w, nn.MaxPool2d(2)),
        *block(w, 2 * w, nn.MaxPool2d(2)),
        *block(2 * w, 2 * w, nn.AdaptiveMaxPool2d(4)),
        nn.Flatten(),
        nn.Linear(2 * w * 16, out_features),
        nn.ReLU(),
    )


def cell_saliency(proxy: torch.Tensor, grid: int, kind: str = "brightness") -> torch.Tensor:
    """The where-network's saliency per cell: (B, p, p) or (B, C, p, p) -> (B, g, g) for
    g = ``grid``. ``kind`` 'brightness': the proxy's mean brightness per cell (the mean of
    the channels) over its maximum; 'tissue': the tissue share of each cell
    (``saccade.data.tissue.proxy_cells``: Otsu on the proxy's saturation, or on its
    difference from its border's median), in [0, 1], not differentiable (as brightness's is
    not used)."""
    if kind == "tissue":
        from ..data.tissue import proxy_cells  # OpenCV on the CPU, per proxy

        return proxy_cells(proxy, grid)
    s = F.adaptive_avg_pool2d(gray_proxy(proxy)[:, None], grid)[:, 0]
    return s / (s.amax((1, 2), keepdim=True) + 1e-3)


def as_channels(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """(B, S, S) gray or (B, C, S, S) colour -> (B, C, S, S), checked against ``channels``."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{what} must have shape (B, S, S) for 1 channel or (B, {channels}, S, S); the "
            f"model takes {channels} channel(s), got {tuple(x.shape)}"
        )
    return x


class ProxyEncoder(nn.Module):
    """φx: the proxy (B, p, p) or (B, in_channels, p, p) -> a feature map (B, C, g, g) on a
    g x g grid of cells (C = 2·width), and a global feature (B, features)."""

    def __init__(self, features: int, grid: int, width: int = 32, in_channels: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.channels = 2 * width
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, stride=2, padding=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, self.channels, 3, stride=2, padding=1),
            nn.BatchNorm2d(self.channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(grid),
        )
        self.global_ = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(self.channels * 16, features),
            nn.ReLU(),
        )

    def forward(self, proxy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.conv(as_channels(proxy, self.in_channels, "proxy"))
        return fmap, self.global_(fmap)


class CropEncoder(nn.Module):
    """f_t: a crop (B, k, k) or (B, in_channels, k, k) -> (B, features)."""

    def __init__(self, features: int, width: int = 16, in_channels: int = 1, kind="lenet"):
        super().__init__()
        self.in_channels = in_channels
        # channels_last weights: faster on the CPU (docs/results.md#crop-encoder-speed); the
        # weights' values and saved layout are unchanged.
        self.net = crop_encoder_net(features, width, in_channels, kind).to(
            memory_format=torch.channels_last
        )

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.net(as_channels(crop, self.in_channels, "crop"))


class Decoder(nn.Module):
    """x̂_t: (z_t, h_{t-1}) -> proxy logits (B, r, r), r = recon side."""

    def __init__(self, hidden: int, side: int):
        super().__init__()
        self.side = side
        self.net = nn.Sequential(
            nn.Linear(3 + hidden, hidden), nn.ReLU(), nn.Linear(hidden, side * side)
        )

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, h], 1)).view(-1, self.side, self.side)


@register_model("vs")
class VariationalSaccader(nn.Module):
    """The VRNN of the paper; ``forward(images, proxy)`` runs T saccades."""

    config_class = ModelConfig
    chooses_where = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.proxy_encoder = ProxyEncoder(c.features, c.where_grid, c.proxy_width, c.channels)
        self.crop_encoder = CropEncoder(c.features, c.crop_width, c.channels, c.crop_encoder)
        self.posterior = Posterior(self.proxy_encoder.channels, c)
        self.prior = Prior(c.hidden, c.where_grid, c.min_sigma, c.refine_grid**2, c.offset_reach)
        self.z_embed = nn.Sequential(nn.Linear(3, 64), nn.ReLU())
        rnn_in = c.features + 64 + (c.features if c.crop_to_rnn else 0)
        self.rnn = nn.LSTMCell(rnn_in, c.hidden)
        self.decoder = Decoder(c.hidden, min(c.recon_size, c.proxy_size))
        self.classifier = Classifier(c.features, c.n_classes, c.pooling)
        # (g,) cell centres of a side; (g², 2) (x, y), row-major like the flattened (g, g) maps
        self.register_buffer("centres", cell_centres(c.where_grid), persistent=False)
        self.register_buffer("cell_xy", grid_xy(c.where_grid), persistent=False)

    @property
    def scales(self) -> dict:
        """The crop-side range as ``saccade.glimpse``'s functions take it (``glimpse``,
        ``z_to_box``, ``box_to_z``, ``scale_to_fraction``): min_scale, max_scale, log_scale."""
        return scales_of(self.config)

    def finest_level(self, side: int) -> int:
        """The finest pyramid level a crop reads on images of ``side`` pixels."""
        return finest_level(side, self.config.min_scale, self.config.crop_size)

    def saliency(self, proxy: torch.Tensor) -> torch.Tensor:
        """``cell_saliency`` on the model's g x g cells: (B, [C,] p, p) -> (B, g, g)."""
        return cell_saliency(proxy, self.config.where_grid, self.config.saliency)

    def _encode(self, proxy: torch.Tensor):
        """What every step reads of the proxy: the proxy (B, p, p) or (B, C, p, p), the
        posterior's image term (B, c, g, g), φx (B, features) and the saliency (B, g, g)."""
        proxy = as_channels(proxy, self.config.channels, "proxy")
        if self.config.channels == 1:
            proxy = proxy[:, 0]
        fmap, phi = self.proxy_encoder(proxy)
        saliency = self.saliency(proxy)
        return proxy, self.posterior.image_term(fmap, saliency), phi, saliency

    def first_step(self, proxy: torch.Tensor) -> WhereDistribution:
        """q(z_1 | φx, h_0 = 0) before any crop, as ``forward``'s first step computes it:
        proxies (B, [C,] p, p) -> the posterior over the first saccade (its ``logits``:
        (B, g²)). ``python -m saccade.train.distil`` trains it alone."""
        proxy, image_term, phi, saliency = self._encode(proxy)
        B, g = proxy.shape[0], self.config.where_grid
        h, seen = proxy.new_zeros(B, self.config.hidden), proxy.new_zeros(B, g, g)
        return self.posterior(image_term, phi, h, saliency, seen, seen)

    def forward(
        self,
        images,
        proxy: torch.Tensor,
        n_saccades: int | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
        policy: Policy | None = None,
    ) -> Trace:
        """Run the saccades.

        Args:
            images: the full-resolution images, anything ``saccade.glimpse`` takes for a batch:
                a (B, H, W) uint8 tensor/array or a list of B ``Pyramid``s (CPU).
            proxy: (B, p, p) float proxies on the model's device; (B, C, p, p) for a model
                of C > 1 channels.
            n_saccades: T (default: the config's); up to ``max_saccades``.
            sample: draw z from the posterior (default: in training mode only); otherwise z
                is the posterior's mode (the most probable cell, its mean offset, μ_s).
            generator: for the draws (reproducible sampling at inference).
            policy: look where this policy says instead (``saccade.evaluate.policies``: the ablations of
                ``evaluate --policy``); the rest of the model runs as usual.
        """
        c = self.config
        T = c.n_saccades if n_saccades is None else int(n_saccades)
        if not 1 <= T <= c.max_saccades:
            raise ValueError(f"n_saccades={n_saccades!r} must be in [1, {c.max_saccades}]")
        sample = self.training if sample is None else sample
        proxy, image_term, phi, saliency = self._encode(proxy)
        B = proxy.shape[0]
        g = c.where_grid
        sources: list[ImageSource] = as_pyramids(images, B)
        seen = proxy.new_zeros(B, g, g)
        last = proxy.new_zeros(B, g, g)  # the last window's map (where_memory)
        h = proxy.new_zeros(B, c.hidden)
        cell_state = proxy.new_zeros(B, c.hidden)
        window = None  # the last crop, its centre and side (refine_grid: the local cells)
        pooled = None
        steps: dict[str, list] = {k: [] for k in ("q", "h", "z", "mode", "cell", "crop", "logits")}
        # Only the posterior, the glimpse and the LSTM must run step by step: the prior, the
        # decoder and the KL read h_{t-1} and z_t, and (without crop_to_rnn) the crop encoder
        # and the classifier read only the crops, so they run once on all T steps after the
        # loop: the same function in fewer, larger operators (BatchNorm's training statistics
        # then pool the T steps; tests/test_vs.py checks it against a step-by-step loop).
        deferred = not c.crop_to_rnn
        teacher = None  # the find term's candidates, read once (``find_candidates``)
        for t in range(T):
            q = self.posterior(image_term, phi, h, saliency, seen, last, window)
            if t == 0 and sample and self.training and c.find_candidates and policy is None:
                teacher = FindTeacher.read(self, q, sources, saliency, generator)
            if teacher is not None:
                teacher.step(q, seen)
            mode, cell, z = self._choose(q, sample, generator)
            if policy is not None:
                z = policy(t, mode.detach(), seen, saliency).to(mode)
                cell = self._cell_of(z)
            crop = glimpse(sources, z, c.crop_size, **self.scales)
            # z reaches the loss through the crop (and the KL); the classifier's "where" input,
            # the decoder and the LSTM see it detached (docs/results.md#design-choices-measured).
            z_in = z.detach()
            if not deferred:
                f = self.crop_encoder(crop)
                logits, pooled = self.classifier.step(f, z_in, pooled, t)
                steps["logits"].append(logits)
            for k, v in (("q", q), ("h", h), ("z", z), ("mode", mode), ("cell", cell)):
                steps[k].append(v)
            steps["crop"].append(crop)
            rnn_in = [phi, self.z_embed(z_in)] + ([f] if c.crop_to_rnn else [])
            h, cell_state = self.rnn(torch.cat(rnn_in, 1), (h, cell_state))
            covered = self._covered_cells(z_in)
            seen = torch.maximum(seen, covered)
            if c.where_memory:
                last = self._last_window(z_in, covered)
            if c.refine_grid:
                window = (crop, z_in[:, 1:], scale_to_fraction(z_in[:, 0], **self.scales))
        trace = self._trace(steps, T, B, deferred, bool(sample) and policy is None)
        if teacher is not None:
            trace.find_log_pi, trace.find_targets = teacher.stacked()
        return trace

    def _choose(
        self, q: WhereDistribution, sample: bool, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The posterior's mode (B, 3) (the most probable cell, its mean offset, μ_s), the
        cell (B,) of the crop and its z (B, 3): the mode, or a draw from q when sampling."""
        B = q.logits.shape[0]
        rows = torch.arange(B, device=q.logits.device)
        log_pi = F.log_softmax(q.logits, -1)
        best = log_pi.argmax(-1)
        centres = q.component_centres(self.cell_xy).expand(B, -1, -1)  # (B, K, 2)
        mode = torch.cat([q.scale_mu[:, None], centres[rows, best] + q.offset_mu[rows, best]], 1)
        if not sample:
            return mode, best, mode
        # The Gumbel-max trick: argmax(log π + Gumbel noise) ~ Categorical(π), faster than
        # torch.multinomial (docs/results.md#gumbel-max-for-the-cell-draw).
        cell = gumbel_top_k(log_pi, 1, generator)[:, 0]
        eps = torch.randn((B, 3), generator=generator, device=log_pi.device, dtype=mode.dtype)
        xy = centres[rows, cell] + q.offset_mu[rows, cell]
        xy = xy + q.offset_sigma[rows, cell] * eps[:, 1:]
        return mode, cell, torch.cat([(q.scale_mu + q.scale_sigma * eps[:, 0])[:, None], xy], 1)

    def _trace(self, steps: dict[str, list], T: int, B: int, deferred: bool, sampled: bool):
        """Everything that reads the steps but not the next one, on all T·B at once."""
        g = self.config.where_grid
        q = WhereDistribution.cat(steps["q"])  # (T·B, ...), step-major
        h_prev, z, cell = (torch.cat(steps[k]) for k in ("h", "z", "cell"))
        rows = torch.arange(T * B, device=z.device)
        log_pi = F.log_softmax(q.logits, -1)
        _, loc_sigma = q.location_moments(self.cell_xy)
        crops = torch.stack(steps["crop"])  # (T, B, [C,] k, k)
        if deferred:
            features = self.crop_encoder(crops.flatten(0, 1)).view(T, B, -1)
            logits = self.classifier.all_steps(features, z.detach().view(T, B, 3))
        else:
            logits = torch.stack(steps["logits"])
        prior = self.prior(h_prev)
        recon, kl = self.decoder(z.detach(), h_prev), where_kl(q, prior)
        values = {
            "mu": torch.cat(steps["mode"]),
            "sigma": torch.cat([q.scale_sigma[:, None], loc_sigma], 1),
            "z": z,
            "recon": recon,
            "kl": kl,
            "kl_cell_fixed": where_kl(replace(q, logits=q.logits.detach()), prior),
            "log_q_cell": log_pi[rows, cell],
            "cell_probs": self._cell_mass(q, log_pi.exp()).view(-1, g, g),
            "offset_sigma": torch.cat([q.scale_sigma[:, None], q.offset_sigma[rows, cell]], 1),
            "cell_entropy": -(log_pi.exp() * log_pi).sum(-1),
        }
        shaped = {k: v.view(T, B, *v.shape[1:]) for k, v in values.items()}
        return Trace(logits=logits, crops=crops, **shaped, sampled=sampled, where=q)

    def loss(
        self,
        trace: Trace,
        labels: torch.Tensor,
        proxy: torch.Tensor,
        weights: LossWeights | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training objective (``saccade.models.objective.loss``)."""
        return loss(trace, labels, proxy, weights)

    def _cell_mass(self, q: WhereDistribution, probs: torch.Tensor) -> torch.Tensor:
        """(N, g²): the probability of each of the proxy's cells, the local cells' mass
        (``refine_grid``) added to the cell that holds their centre; probs (N, K)."""
        g2 = self.config.where_grid**2
        if probs.shape[1] == g2:
            return probs
        xy = q.centres[:, g2:]  # (N, k², 2)
        holder = cell_index(xy.flatten(0, 1), self.config.where_grid)
        return probs[:, :g2].scatter_add(1, holder.view(len(xy), -1), probs[:, g2:])

    def _cell_of(self, z: torch.Tensor) -> torch.Tensor:
        """The cell index (B,) holding each crop centre of z (B, 3)."""
        return cell_index(z[:, 1:], self.config.where_grid)

    def _last_window(self, z: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
        """(B, g, g): the cells the crop of z (B, 3) covered (``covered``) and the cell of its
        centre (a crop smaller than a cell covers no cell centre), each valued by the zoom:
        (3 - s) / 4, 1 at the smallest crop (s = -1), 0.5 at the largest."""
        B, g = z.shape[0], self.config.where_grid
        centre = F.one_hot(self._cell_of(z), g * g).view(B, g, g).to(z.dtype)
        depth = (3 - z[:, 0].clamp(-1, 1)) / 4
        return torch.maximum(covered, centre) * depth[:, None, None]

    def _covered_cells(self, z: torch.Tensor) -> torch.Tensor:
        """(B, g, g) 1 where a cell's centre lies inside the crop of z (B, 3) (widened by
        ``seen_margin`` cells), else 0."""
        c = self.config
        half = scale_to_fraction(z[:, 0], **self.scales)[:, None]  # (B, 1)
        half = half + c.seen_margin * 2 / c.where_grid
        in_x = (self.centres[None] - z[:, 1:2]).abs() < half  # (B, g) columns
        in_y = (self.centres[None] - z[:, 2:3]).abs() < half  # (B, g) rows
        return (in_y[:, :, None] & in_x[:, None, :]).to(z.dtype)


def for_canvas(
    model: VariationalSaccader, size: int, layout: str = "pixels"
) -> VariationalSaccader:
    """The same weights, run on canvases of side ``size`` whose objects keep their size in
    pixels (e.g. a Megapixel MNIST model of 1500² on 3000² canvases: more ground to cover).

    ``layout`` says what else keeps its size (``LAYOUTS``):
    - "share": the layout is a share of the side (the zoom benchmark's regions, radius S/16)
      while the objects are pixels (its cues and digits). The proxy, the grid and the prior
      are the trained ones, so the proxy shows the same layout in the same cells and
      positions mean what they meant in training; only the crop sides (fractions of the
      image side) are divided by f = size / the training side, so that a crop spans the
      same pixels. Any f > 0 whose largest crop fits the canvas (max_scale / f <= 1).
    - "pixels" (the default), everything is pixels: more ground to cover, as follows.

    With f = size / the training canvas side, the proxy keeps its scale (side p·f), so the
    proxy encoder's map has g·f cells a side, and the posterior, a convolution per cell,
    runs on g·f x g·f cells; crop sides (fractions of the image side) are divided by f, so a
    crop spans the same pixels as in training. The prior's categorical over the g² cells is
    spread evenly over the f² cells each one becomes (its logits minus log f²), so its KL
    keeps its meaning. The classifier's and the recurrent state's view of z (normalised
    coordinates) is the one thing not kept: a unit of x now spans f times the pixels.

    On a smaller canvas (f = 1/2, 1/4, ...) each of the g·f x g·f cells merges (1/f)² of the
    trained ones, and the prior's logit of a merged cell is the mean of theirs plus log (1/f)²,
    an approximation of their log-sum that only the KL reads (predictions do not use the
    prior).

    Raises ValueError unless g·f and p·f are whole numbers (e.g. f = 2, or 1/2).
    """
    c = model.config
    trained = int(c.dataset.get("size", 0)) if c.dataset else 0
    if trained < 1:
        raise ValueError("the model's config records no training canvas size")
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: one of {', '.join(LAYOUTS)}")
    f = int(size) / trained
    crops = {"min_scale": c.min_scale / f, "max_scale": c.max_scale / f}  # kept in pixels
    state = model.state_dict()
    if layout == "share":
        if not share_fits(c, size):
            raise ValueError(
                f"size={size!r}: the largest crop of a model trained on {trained}² canvases "
                f"({c.max_scale:g} of the side) would be {c.max_scale / f:g} of a {size}² "
                f"canvas; with layout='share' the side must be at least "
                f"{math.ceil(c.max_scale * trained)}"
            )
        dataset = dict(c.dataset, size=int(size), side=int(size))
        return _rebuilt(model, state, {**crops, "dataset": dataset})
    grid, proxy = c.where_grid * f, c.proxy_size * f
    whole = min(f, 1 / f)
    if (
        abs(1 / whole - round(1 / whole)) > 1e-9
        or round(grid) < 2
        or abs(grid - round(grid)) > 1e-9
        or abs(proxy - round(proxy)) > 1e-9
    ):
        raise ValueError(
            f"size={size!r}: a model trained on {trained}² canvases (g = {c.where_grid}, proxy "
            f"{c.proxy_size}²) runs on sides that make g and the proxy whole multiples or "
            f"whole fractions, e.g. {2 * trained} or {trained // 2}"
        )
    dataset = dict(c.dataset, size=int(size), side=int(size), proxy_size=round(proxy))
    weight, bias = _prior_cells(
        state["prior.cells.weight"], state["prior.cells.bias"], c, G=round(grid)
    )
    state["prior.cells.weight"], state["prior.cells.bias"] = weight, bias
    changes = {
        **crops,
        "where_grid": round(grid),
        "proxy_size": round(proxy),
        "recon_size": min(c.recon_size, c.proxy_size),  # the decoder keeps its side
        "dataset": dataset,
    }
    return _rebuilt(model, state, changes)


def share_fits(config: ModelConfig, size: int) -> bool:
    """Whether a model of ``config`` runs on a side ``size`` with layout "share": its largest
    crop, kept in pixels, fits the canvas (max_scale · trained side <= size)."""
    return config.max_scale * int(config.dataset["size"]) <= int(size)


def canvas_layout(spec: dict) -> str:
    """How a model of dataset ``spec`` meets another side (``for_canvas``'s ``layout``):
    "share" for the zoom benchmark, whose regions are a share of the side (docs/zoom.md),
    else "pixels"."""
    return "share" if spec.get("name") == "zoom" else "pixels"


def _rebuilt(model: VariationalSaccader, state: dict, changes: dict) -> VariationalSaccader:
    """A VariationalSaccader of ``model``'s config with ``changes``, holding ``state``, on
    ``model``'s device and in its mode (``for_canvas``)."""
    out = VariationalSaccader(ModelConfig(**{**asdict(model.config), **changes}))
    out.load_state_dict(state)
    out.meta = getattr(model, "meta", {})
    return out.to(next(model.parameters()).device).train(model.training)


def _prior_cells(weight, bias, c: ModelConfig, G: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's cell layer (weight (g² + k², hidden), bias) of a model of ``c``, for G x G
    cells of the proxy (``for_canvas``); the local cells (``refine_grid``) keep their rows."""
    g = c.where_grid
    local_w, local_b = weight[g * g :], bias[g * g :]
    if G >= g:  # cell (r, c) of the fine grid belongs to cell (r // k, c // k) of the trained
        k = round(G / g)
        rows = (torch.arange(G)[:, None] // k * g + torch.arange(G)[None, :] // k).flatten()
        w, b = weight[rows], bias[rows] - 2 * math.log(k)
    else:  # each cell merges k x k trained ones: the mean of their logits, plus log k²
        k = round(g / G)
        w = weight[: g * g].view(G, k, G, k, -1).mean((1, 3)).reshape(G * G, -1)
        b = bias[: g * g].view(G, k, G, k).mean((1, 3)).reshape(-1) + 2 * math.log(k)
    return torch.cat([w, local_w]), torch.cat([b, local_b])
