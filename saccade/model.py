"""The variational saccading model: a VRNN that plans crops on a proxy and classifies from them.

One forward pass (DESIGN.md; symbols as in Ramapuram et al., BMVC 2019):

    φx = ProxyEncoder(p)                              p: the low-resolution proxy
    h_0 = 0
    for t = 1..T:
        q(z_t | φx, h_{t-1}) = N(μ_t, σ_t²)           Posterior  (σ learnt or fixed)
        p(z_t | h_{t-1})     = N(μ̃_t, σ̃_t²)          Prior
        z_t = μ_t + σ_t·ε  (training)  |  μ_t  (evaluation, unless sampling is asked for)
        c_t = glimpse(x, z_t, k)                      k×k crop of the full-resolution image
        f_t = CropEncoder(c_t)
        logits_t = Classifier(f_1..f_t, z_1..z_t)     anytime prediction after t saccades
        x̂_t = Decoder(z_t, h_{t-1})                   reconstruction of the proxy (logits)
        h_t = LSTM(h_{t-1}, [φx, embed(z_t)] (+ f_t with crop_to_rnn; off by default))

The loss is the paper's bound, as a sum (see ``loss``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .glimpse import Pyramid, as_pyramids, glimpse, scale_to_fraction

VARIANCES = ("learnt", "fixed")


@dataclass
class ModelConfig:
    """Hyperparameters of a model; saved in every checkpoint's JSON."""

    n_classes: int = 19
    class_names: list[str] = field(default_factory=list)
    proxy_size: int = 32  # side of the proxy p
    crop_size: int = 32  # k
    min_scale: float = 0.15  # crop side / image side at s = -1
    max_scale: float = 0.3  # ... at s = +1 (the paper's maximum)
    hidden: int = 256  # LSTM state h
    features: int = 256  # φx and f_t
    n_saccades: int = 4  # T used in training
    max_saccades: int = 32  # steps with their own initial location bias (anytime beyond T)
    variance: str = "learnt"  # "learnt": σ_t predicted; "fixed": σ = fixed_sigma
    fixed_sigma: float = 0.1
    min_sigma: float = 1e-3
    # Whether f_t feeds the LSTM. Measured (cluttered/single, 750 steps from scratch, one
    # seed each): 92.7% validation accuracy without, 11.9% (still at chance) with.
    crop_to_rnn: bool = False
    recon_size: int = 32  # the decoder reconstructs the proxy pooled to at most this side
    where_grid: int = 8  # g: the posterior's soft-argmax runs over g x g cells of the proxy
    dataset: dict = field(default_factory=dict)  # DatasetSpec.to_dict() of the training data

    def __post_init__(self):
        if self.variance not in VARIANCES:
            raise ValueError(f"variance={self.variance!r}; accepted: {list(VARIANCES)}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes={self.n_classes!r} must be >= 2")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.n_classes)]
        if len(self.class_names) != self.n_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names for n_classes={self.n_classes}"
            )
        if not 1 <= self.n_saccades <= self.max_saccades:
            raise ValueError(f"n_saccades={self.n_saccades!r} must be in [1, {self.max_saccades}]")
        if self.fixed_sigma <= 0:
            raise ValueError(f"fixed_sigma={self.fixed_sigma!r} must be > 0")

    def to_dict(self) -> dict:
        return asdict(self)


def conv_encoder(out_features: int) -> nn.Sequential:
    """A small CNN: (B, 1, S, S) -> (B, out_features), for any S >= 8.

    Strided from the first layer: about 2.3M multiply-adds for a 32x32 input, so that a
    batch of crops trains at hundreds of images per second on two CPU cores."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, stride=2, padding=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64 * 16, out_features),
        nn.ReLU(),
    )


class ProxyEncoder(nn.Module):
    """φx: the proxy (B, p, p) -> a feature map (B, C, g, g) on a g x g grid of cells, and a
    global feature (B, features)."""

    channels = 64

    def __init__(self, features: int, grid: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, self.channels, 3, stride=2, padding=1),
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
        fmap = self.conv(proxy[:, None])
        return fmap, self.global_(fmap)


class CropEncoder(nn.Module):
    """f_t: a crop (B, k, k) -> (B, features)."""

    def __init__(self, features: int):
        super().__init__()
        self.net = conv_encoder(features)

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.net(crop[:, None])


class Prior(nn.Module):
    """p(z_t | h_{t-1}): an MLP to a diagonal Gaussian over z = (s, x, y); returns μ (B, 3) in
    (-1, 1) and σ (B, 3). Learnt in both variance modes (the mode is the posterior's)."""

    def __init__(self, hidden: int, min_sigma: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, 3)
        self.sigma = nn.Linear(hidden, 3)
        self.min_sigma = min_sigma

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.net(h)
        return torch.tanh(self.mu(x)), F.softplus(self.sigma(x)) + self.min_sigma


class Posterior(nn.Module):
    """q(z_t | φx, h_{t-1}): a diagonal Gaussian over z = (s, x, y).

    The centre's mean is a spatial soft-argmax over the g x g cells of the proxy:

        score_t(i) = a·F_i + <W_q h_{t-1}, W_k F_i> + w_sal·saliency_i − w_ior·seen_t(i)
        (μ_x, μ_y) = Σ_i softmax(score_t)_i · c_i   over the 3 x 3 cells around the best
                                                     unseen cell
                                                     c_i: the cell centres in [-1, 1]
        μ_s = tanh(MLP([φx, h_{t-1}]) + b_t)
        σ = softplus(MLP([φx, h_{t-1}])) (learnt)  or  a constant (fixed)

    saliency is the proxy's mean brightness per cell (over its maximum) and seen marks the
    cells inside earlier crops (inhibition of return). Both weights are learnt, initialised
    so that the first crops go to the brightest blobs and later ones elsewhere. Why: with an
    MLP from features to (x, y), the where-gradient through the crops is weak and noisy early
    on, Adam turns it into a drift and the crops ran into a corner of the image (measured on
    cluttered/single: chance accuracy after 600 steps). The soft-argmax keeps the centre inside
    the image and ties it to what the proxy shows where.
    """

    def __init__(
        self,
        channels: int,
        features: int,
        hidden: int,
        grid: int,
        max_saccades: int,
        min_sigma: float,
        fixed_sigma: float | None,
    ):
        super().__init__()
        self.score = nn.Conv2d(channels, 1, 1)
        self.key = nn.Conv2d(channels, 32, 1)
        self.query = nn.Linear(hidden, 32)
        for layer in (self.score, self.query):  # start from saliency and inhibition alone
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.w_sal = nn.Parameter(torch.tensor(8.0))
        self.w_ior = nn.Parameter(torch.tensor(8.0))
        self.net = nn.Sequential(nn.Linear(features + hidden, hidden), nn.ReLU())
        self.scale = nn.Linear(hidden, 1)
        nn.init.zeros_(self.scale.weight)
        nn.init.zeros_(self.scale.bias)
        self.scale_bias = nn.Parameter(torch.full((max_saccades,), math.atanh(0.8)))
        self.sigma = None if fixed_sigma is not None else nn.Linear(hidden, 3)
        if self.sigma is not None:  # σ starts at softplus(-2.25) = 0.1
            nn.init.constant_(self.sigma.bias, -2.25)
        self.fixed_sigma = fixed_sigma
        self.min_sigma = min_sigma
        centres = (2 * torch.arange(grid, dtype=torch.float32) + 1) / grid - 1
        self.register_buffer("centres", centres, persistent=False)
        index = torch.arange(grid * grid)
        self.register_buffer("cell_rows", index // grid, persistent=False)
        self.register_buffer("cell_cols", index % grid, persistent=False)

    def forward(
        self,
        fmap: torch.Tensor,
        phi: torch.Tensor,
        h: torch.Tensor,
        saliency: torch.Tensor,
        seen: torch.Tensor,
        t: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """fmap (B, C, g, g), phi (B, features), h (B, hidden), saliency and seen (B, g, g)
        -> μ (B, 3), σ (B, 3)."""
        B, _, g, _ = fmap.shape
        score = self.score(fmap)[:, 0] + torch.einsum("bc,bcij->bij", self.query(h), self.key(fmap))
        score = (score + self.w_sal * saliency - self.w_ior * seen).reshape(B, -1)
        # Local soft-argmax: the softmax runs over the 3 x 3 cells around the best cell, so
        # two bright blobs give a crop on one of them, not one between them.
        # The best cell is chosen among the cells no earlier crop covered (while any are
        # left): without this the learnt scores, trained on one-digit images, sent every
        # crop after the second back to the same cell (cluttered/sum: 63% of digits seen).
        best = (score.detach() - 1e4 * seen.reshape(B, -1)).argmax(-1)  # (B,)
        rows, cols = best // g, best % g
        near = ((self.cell_rows[None] - rows[:, None]).abs() <= 1) & (
            (self.cell_cols[None] - cols[:, None]).abs() <= 1
        )
        p = torch.softmax(score.masked_fill(~near, float("-inf")), -1).reshape(B, g, g)
        mu_x = (p.sum(1) * self.centres).sum(-1)  # columns
        mu_y = (p.sum(2) * self.centres).sum(-1)  # rows
        hid = self.net(torch.cat([phi, h], 1))
        mu_s = torch.tanh(self.scale(hid)[:, 0] + self.scale_bias[t])
        mu = torch.stack([mu_s, mu_x, mu_y], 1)
        if self.sigma is None:
            sigma = torch.full_like(mu, self.fixed_sigma)
        else:
            sigma = F.softplus(self.sigma(hid)) + self.min_sigma
        return mu, sigma


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


class Classifier(nn.Module):
    """Anytime class logits from the crops so far: max-pool over steps of what-and-where
    features e_t = ReLU(W f_t + V z_t), then an MLP. Max-pooling is order-free (the tasks are
    about a set of digits) and a crop seen twice does not count twice."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.what = nn.Linear(features, features)
        self.where = nn.Linear(3, features)
        self.head = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, n_classes)
        )

    def step(self, f: torch.Tensor, z: torch.Tensor, pooled: torch.Tensor | None):
        e = F.relu(self.what(f) + self.where(z))
        pooled = e if pooled is None else torch.maximum(pooled, e)
        return self.head(pooled), pooled


@dataclass
class Trace:
    """Everything a forward pass produced, stacked over the T steps."""

    logits: torch.Tensor  # (T, B, n_classes)
    mu: torch.Tensor  # (T, B, 3) posterior mean
    sigma: torch.Tensor  # (T, B, 3) posterior std
    prior_mu: torch.Tensor  # (T, B, 3)
    prior_sigma: torch.Tensor  # (T, B, 3)
    z: torch.Tensor  # (T, B, 3) the z used for each crop
    crops: torch.Tensor  # (T, B, k, k)
    recon: torch.Tensor  # (T, B, r, r) reconstruction logits of the proxy


class VariationalSaccader(nn.Module):
    """The VRNN of the paper; ``forward(images, proxy)`` runs T saccades."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.proxy_encoder = ProxyEncoder(c.features, c.where_grid)
        self.crop_encoder = CropEncoder(c.features)
        fixed = c.fixed_sigma if c.variance == "fixed" else None
        self.posterior = Posterior(
            ProxyEncoder.channels,
            c.features,
            c.hidden,
            c.where_grid,
            c.max_saccades,
            c.min_sigma,
            fixed,
        )
        self.prior = Prior(c.hidden, c.min_sigma)
        self.z_embed = nn.Sequential(nn.Linear(3, 64), nn.ReLU())
        rnn_in = c.features + 64 + (c.features if c.crop_to_rnn else 0)
        self.rnn = nn.LSTMCell(rnn_in, c.hidden)
        self.decoder = Decoder(c.hidden, min(c.recon_size, c.proxy_size))
        self.classifier = Classifier(c.features, c.n_classes)

    def forward(
        self,
        images,
        proxy: torch.Tensor,
        n_saccades: int | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
        where_grad: bool = True,
    ) -> Trace:
        """Run the saccades.

        Args:
            images: the full-resolution images, anything ``saccade.glimpse`` takes for a batch:
                a (B, H, W) uint8 tensor/array or a list of B ``Pyramid``s (CPU).
            proxy: (B, p, p) float proxies on the model's device.
            n_saccades: T (default: the config's); up to ``max_saccades``.
            sample: draw z from the posterior (default: in training mode only).
            generator: for the draws (reproducible sampling at inference).
            where_grad: let the loss reach z through the crops; training turns it off for a
                warm-up, while the crop classifier learns what a digit is from the initial
                crops (before that, the easiest way to lower the cross-entropy is to look at
                empty background, and the crops drift off the digits).
        """
        c = self.config
        T = c.n_saccades if n_saccades is None else int(n_saccades)
        if not 1 <= T <= c.max_saccades:
            raise ValueError(f"n_saccades={n_saccades!r} must be in [1, {c.max_saccades}]")
        sample = self.training if sample is None else sample
        if proxy.ndim != 3:
            raise ValueError(f"proxy must have shape (B, p, p), got {tuple(proxy.shape)}")
        B = proxy.shape[0]
        sources: list[Pyramid] = as_pyramids(images, B)
        fmap, phi = self.proxy_encoder(proxy)
        g = c.where_grid
        saliency = F.adaptive_avg_pool2d(proxy[:, None], g)[:, 0]
        saliency = saliency / (saliency.amax((1, 2), keepdim=True) + 1e-3)  # (B, g, g)
        seen = proxy.new_zeros(B, g, g)
        centres = self.posterior.centres
        h = proxy.new_zeros(B, c.hidden)
        cell = proxy.new_zeros(B, c.hidden)
        pooled = None
        out: dict[str, list[torch.Tensor]] = {k: [] for k in Trace.__dataclass_fields__}
        for t in range(T):
            mu, sigma = self.posterior(fmap, phi, h, saliency, seen, t)
            if not where_grad:  # the posterior is held still (the KL then trains the prior)
                mu, sigma = mu.detach(), sigma.detach()
            p_mu, p_sigma = self.prior(h)
            if sample:
                eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                z = mu + sigma * eps
            else:
                z = mu
            crop = glimpse(sources, z, c.crop_size, c.min_scale, c.max_scale)
            f = self.crop_encoder(crop)
            logits, pooled = self.classifier.step(f, z.detach(), pooled)
            # z reaches the loss through the crop only (and the KL): the decoder, the
            # classifier's "where" input and the LSTM see z detached. Measured on
            # cluttered/single: with those gradient paths open, μ ran into a corner of the
            # image (tanh saturated at ±1) within 100-500 steps and accuracy stayed at chance.
            z_in = z.detach()
            recon = self.decoder(z_in, h)
            rnn_in = [phi, self.z_embed(z_in)] + ([f] if c.crop_to_rnn else [])
            h, cell = self.rnn(torch.cat(rnn_in, 1), (h, cell))
            # inhibition of return: mark the cells whose centre this crop covered
            half = scale_to_fraction(z_in[:, 0], c.min_scale, c.max_scale)[:, None]  # (B, 1)
            in_x = (centres[None] - z_in[:, 1:2]).abs() < half  # (B, g) columns
            in_y = (centres[None] - z_in[:, 2:3]).abs() < half  # (B, g) rows
            seen = torch.maximum(seen, (in_y[:, :, None] & in_x[:, None, :]).to(seen.dtype))
            for k, v in zip(out, (logits, mu, sigma, p_mu, p_sigma, z, crop, recon), strict=True):
                out[k].append(v)
        return Trace(**{k: torch.stack(v) for k, v in out.items()})


def gaussian_kl(
    mu_q: torch.Tensor, sigma_q: torch.Tensor, mu_p: torch.Tensor, sigma_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(μq, σq²) ‖ N(μp, σp²)) of diagonal Gaussians, summed over the last dim.

    Takes standard deviations σ (the original code passed log σ² where σ was expected).
    """
    var_q, var_p = sigma_q.pow(2), sigma_p.pow(2)
    kl = torch.log(sigma_p / sigma_q) + (var_q + (mu_q - mu_p).pow(2)) / (2 * var_p) - 0.5
    return kl.sum(-1)


def loss(
    trace: Trace, labels: torch.Tensor, proxy: torch.Tensor, beta: float = 0.01
) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's bound as a principled sum:

        loss = CE + β · Σ_t ( recon_t + KL(q(z_t | ·) ‖ p(z_t | h_{t-1})) )

    CE is the cross-entropy of the class after each saccade, averaged over the T steps (so
    every prefix of the saccades is trained: anytime prediction). recon_t is the Bernoulli
    negative log-likelihood (BCE with logits) of the proxy, summed over its pixels. Every term
    is averaged over the batch. The original implementation multiplied the cross-entropy by
    the ELBO and passed log σ² where σ was expected in its KL; this one adds the terms.

    Returns the loss and the terms as floats (ce, recon, kl, loss, acc of the last step).
    """
    T = trace.logits.shape[0]
    ce = F.cross_entropy(trace.logits.flatten(0, 1), labels.repeat(T))
    r = trace.recon.shape[-1]
    target = proxy if proxy.shape[-1] == r else F.adaptive_avg_pool2d(proxy, r)
    target = target.clamp(0, 1).expand_as(trace.recon)
    recon = F.binary_cross_entropy_with_logits(trace.recon, target, reduction="none")
    recon = recon.sum((-1, -2)).sum(0).mean()
    kl = gaussian_kl(trace.mu, trace.sigma, trace.prior_mu, trace.prior_sigma).sum(0).mean()
    total = ce + beta * (recon + kl)
    acc = (trace.logits[-1].argmax(-1) == labels).float().mean()
    terms = {
        "loss": total.item(),
        "ce": ce.item(),
        "recon": recon.item(),
        "kl": kl.item(),
        "acc": acc.item(),
    }
    return total, terms
