"""``ram``: the Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu, "Recurrent Models
of Visual Attention", NIPS 2014), the classic hard-attention peer the paper quotes.

One class per component of the paper, as in kevinzakka/recurrent-visual-attention:

```
h_0 = 0
for t = 1..T:
    l_t ~ π(l | h_{t-1}) = N(μ_t, σ²),  μ_t = tanh(Linear(h_{t-1}))   LocationNetwork
    b_t = Linear(h_{t-1})                                              BaselineNetwork
    ρ(x, l_t): n_scales k x k patches around l_t, each 2x wider         Retina
    g_t = f_g(ρ(x, l_t), l_t)                                          GlimpseNetwork
    h_t = f_h(h_{t-1}, g_t)                                            CoreNetwork
    logits_t = f_a(h_t)                                                ActionNetwork
```

Design choices (each a setting of ``RAMConfig`` where it is one):

- **First location**: the location network applied to h_0 = 0, so l_1's mean is a learnt
  constant tanh(b) (it starts at the centre, b = 0) and l_1 is sampled and trained by
  REINFORCE like every later location. kevinzakka draws l_1 uniformly instead; a learnt
  first look is what a policy on a fixed-size canvas should have.
- **Location and baseline from h_{t-1}**: the action l_t and its baseline b_t are both
  functions of the state the action was chosen from. Both read h_{t-1} *detached*: the core
  is trained by the cross-entropy alone, REINFORCE trains the location network and the MSE
  trains the baseline (as kevinzakka does; the score-function gradient through the core adds
  variance and little else at this size).
- **Hard attention**: the sampled l_t is detached before the crop; the only gradient the
  location gets is REINFORCE's. The crop uses l_t clamped to [-1, 1]; log π is of the
  unclamped draw (the clamp is part of the environment, so the estimator stays unbiased).
- **Policy std**: fixed, ``std`` = 0.1 in normalised coordinates (5% of the image side).
  ``sample=False`` (evaluation) looks at the mean.
- **Retina**: ``n_scales`` patches centred on l_t, the finest ``glimpse_fraction`` of the
  image side (0.12: 12 px at 100², one sample per pixel at k = 12), each next one twice as
  wide, all resampled to k x k by ``saccade.glimpse`` from the image's area-averaged pyramid
  (O(k²) pixels read per patch, anti-aliased: the paper's "progressively lower resolution").
- **Core**: ``core="rnn"``, the paper's classification core h_t = ReLU(Linear(h_{t-1}) +
  Linear(g_t)), or ``core="lstm"`` (its dynamic-environment core, ``nn.LSTMCell``).
- **Loss**: cross-entropy of the last step (``ce_all_steps=True`` averages it over all
  steps: anytime prediction), REINFORCE with reward R = 1 when the last prediction is right,
  and the baseline's MSE to R (the paper's hybrid loss).

Parameters at the defaults with 10 classes (k = 12, 3 scales, 128/128/256, rnn core):
256,781 (``lstm``: 651,533).

``z`` follows the project's (s, x, y) convention with s = -1 always: ``config.min_scale`` and
``config.max_scale`` are both ``glimpse_fraction``, so ``saccade.z_to_box`` draws the finest
patch, the one the network sees at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..glimpse import as_pyramids, finest_level, glimpse
from .registry import BaseConfig, Output, register_model, setting

CORES = ("rnn", "lstm")


@dataclass
class RAMConfig(BaseConfig):
    """Settings of a RAM; saved in its checkpoint's JSON under ``config``. ``BaseConfig``
    holds the classes, ``proxy_size`` (the contract's; RAM never reads the proxy),
    ``n_saccades`` (T, glimpses per image), ``max_saccades`` and the dataset."""

    n_saccades: int = setting(6, "T: glimpses per image in training")
    crop_size: int = setting(12, "k, the side in samples of every retina patch")
    n_scales: int = setting(3, "retina patches per glimpse, each 2x wider than the last")
    glimpse_fraction: float = setting(0.12, "side of the finest patch / image side")
    glimpse_hidden: int = setting(128, "θ_g^0: the 'what' layer on the retina")
    loc_hidden: int = setting(128, "θ_g^1: the 'where' layer on l_t")
    hidden: int = setting(256, "size of g_t and h_t")
    core: str = setting(
        "rnn", "rnn (the paper's classification core) or lstm (its dynamic one)", CORES
    )
    std: float = setting(0.1, "σ of the location policy, in normalised coordinates")
    ce_all_steps: bool = setting(
        False, "cross-entropy on every step (anytime) instead of the last only (true/false)"
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_at_least_one(
            "proxy_size", "crop_size", "n_scales", "glimpse_hidden", "loc_hidden", "hidden"
        )
        widest = self.glimpse_fraction * 2 ** (self.n_scales - 1)
        if not 0 < self.glimpse_fraction or widest > 2:
            raise ValueError(
                f"glimpse_fraction={self.glimpse_fraction!r} must be > 0 and its widest patch "
                f"(x 2**(n_scales - 1) = {widest:g}) at most 2 image sides"
            )
        if self.core not in CORES:
            raise ValueError(f"core={self.core!r}; accepted: {list(CORES)}")
        if not self.std > 0:
            raise ValueError(f"std={self.std!r} must be > 0")

    @property
    def min_scale(self) -> float:
        """The finest patch's side / image side (z's s is always -1; see the module doc)."""
        return self.glimpse_fraction

    @property
    def max_scale(self) -> float:
        return self.glimpse_fraction


@dataclass
class RAMOutput(Output):
    """``Output`` plus what ``RAM.loss`` needs. T steps, B images."""

    log_pi: torch.Tensor | None = None  # (T, B) log π(l_t | h_{t-1}) of the drawn l_t
    baseline: torch.Tensor | None = None  # (T, B) b_t, the expected reward from h_{t-1}
    crops: torch.Tensor | None = None  # (T, B, k, k) the finest patch of each glimpse
    sampled: bool = False  # whether l_t was drawn from π (REINFORCE needs it)


class Retina(nn.Module):
    """ρ(x, l): the glimpse sensor. For locations l (B, 2) in [-1, 1], ``n_scales`` square
    patches centred on l, the i-th of side ``glimpse_fraction * 2**i`` of the image side,
    each resampled to k x k with ``saccade.glimpse`` (z = (-1, x, y), min = max scale): only
    O(k²) pixels of a pyramid level are read per patch, whatever the image's size.

    pyramids (B ``Pyramid``s), loc = l_t (B, 2) -> (B, n_scales, k, k) in [0, 1]. No
    parameters."""

    def __init__(self, crop_size: int, n_scales: int, glimpse_fraction: float):
        super().__init__()
        self.k, self.n_scales, self.fraction = crop_size, n_scales, glimpse_fraction

    def forward(self, pyramids, loc: torch.Tensor) -> torch.Tensor:
        z = torch.cat([torch.full_like(loc[:, :1], -1.0), loc], 1)  # (B, 3)
        patches = []
        for i in range(self.n_scales):
            side = self.fraction * 2**i
            patches.append(glimpse(pyramids, z, self.k, side, side))
        return torch.stack(patches, 1)


class GlimpseNetwork(nn.Module):
    """f_g(θ_g): g_t = ReLU(Linear(h_g) + Linear(h_l)) with h_g = ReLU(Linear(ρ(x, l_t)))
    ("what", θ_g^0) and h_l = ReLU(Linear(l_t)) ("where", θ_g^1).

    patches (B, n_scales, k, k), loc = l_t (B, 2) -> g_t (B, hidden)."""

    def __init__(self, n_inputs: int, glimpse_hidden: int, loc_hidden: int, hidden: int):
        super().__init__()
        self.what = nn.Linear(n_inputs, glimpse_hidden)
        self.where = nn.Linear(2, loc_hidden)
        self.what_out = nn.Linear(glimpse_hidden, hidden)
        self.where_out = nn.Linear(loc_hidden, hidden)

    def forward(self, patches: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        h_g = F.relu(self.what(patches.flatten(1)))
        h_l = F.relu(self.where(loc))
        return F.relu(self.what_out(h_g) + self.where_out(h_l))


class CoreNetwork(nn.Module):
    """f_h(θ_h): h_t = ReLU(Linear(h_{t-1}) + Linear(g_t)) (``rnn``, the paper's) or an
    ``nn.LSTMCell`` (``lstm``). g_t (B, hidden), state -> state; ``output(state)`` is h_t
    (B, hidden). The state is h_t, or (h_t, c_t) for the LSTM; ``initial`` gives h_0 = 0."""

    def __init__(self, hidden: int, kind: str = "rnn"):
        super().__init__()
        self.kind, self.hidden = kind, hidden
        if kind == "lstm":
            self.cell = nn.LSTMCell(hidden, hidden)
        else:
            self.i2h = nn.Linear(hidden, hidden)
            self.h2h = nn.Linear(hidden, hidden)

    def initial(self, batch: int, device: torch.device):
        h = torch.zeros(batch, self.hidden, device=device)
        return (h, torch.zeros_like(h)) if self.kind == "lstm" else h

    @staticmethod
    def output(state) -> torch.Tensor:
        return state[0] if isinstance(state, tuple) else state

    def forward(self, g: torch.Tensor, state):
        if self.kind == "lstm":
            return self.cell(g, state)
        return F.relu(self.i2h(g) + self.h2h(state))


class LocationNetwork(nn.Module):
    """f_l(θ_l): the mean of the Gaussian location policy, μ_t = tanh(Linear(h_{t-1})).

    h (B, hidden) -> μ (B, 2) in (-1, 1). Starts at the centre (zero bias)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.fc = nn.Linear(hidden, 2)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(h))


class BaselineNetwork(nn.Module):
    """b_t = Linear(h_{t-1}): the expected reward from the state l_t is chosen in, the
    REINFORCE baseline (variance reduction). h (B, hidden) -> b (B,)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.fc = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)[:, 0]


class ActionNetwork(nn.Module):
    """f_a(θ_a): the classifier, logits_t = Linear(h_t). h (B, hidden) -> (B, n_classes)."""

    def __init__(self, hidden: int, n_classes: int):
        super().__init__()
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


@register_model("ram")
class RAM(nn.Module):
    """The Recurrent Attention Model; ``forward(images, proxy)`` takes T glimpses."""

    config_class = RAMConfig
    chooses_where = True

    def __init__(self, config: RAMConfig):
        super().__init__()
        self.config = c = config
        self.retina = Retina(c.crop_size, c.n_scales, c.glimpse_fraction)
        self.glimpse_net = GlimpseNetwork(
            c.n_scales * c.crop_size**2, c.glimpse_hidden, c.loc_hidden, c.hidden
        )
        self.core = CoreNetwork(c.hidden, c.core)
        self.locator = LocationNetwork(c.hidden)
        self.baseliner = BaselineNetwork(c.hidden)
        self.classifier = ActionNetwork(c.hidden, c.n_classes)

    def finest_level(self, side: int) -> int:
        """The finest pyramid level the retina reads on images of ``side`` pixels: that of
        the finest patch (``glimpse`` reads level floor(log2(spacing)) and the next, spacing =
        glimpse_fraction * side / k samples apart); the training loader sends only the levels
        from there on."""
        return finest_level(side, self.config.glimpse_fraction, self.config.crop_size)

    def forward(
        self,
        images,
        proxy: torch.Tensor,
        n_saccades: int | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
        policy=None,
    ) -> RAMOutput:
        """T glimpses of each image.

        Args:
            images: (B, H, W) uint8 batch (tensor or array, CPU) or a list of B ``Pyramid``s.
            proxy: (B, p, p); only its batch size is checked (RAM looks at the image alone).
            n_saccades: T (default ``config.n_saccades``), in [1, max_saccades].
            sample: draw l_t ~ N(μ_t, σ²) (default: ``self.training``), else l_t = μ_t.
            generator: the torch.Generator of the draws (reproducible sampling).
            policy: must be None: RAM has no policy ablations.

        Returns:
            ``RAMOutput``: logits (T, B, C); z (T, B, 3) = (-1, l_t clamped to [-1, 1]);
            mu (T, B, 3) = (-1, μ_t); sigma (T, B, 3) = (0, σ, σ); log_pi, baseline (T, B);
            crops (T, B, k, k), the finest patches; sampled.
        """
        if policy is not None:
            raise ValueError(
                f"model {self.model_name!r} has no policy ablations for ram: policy must be None"
            )
        c = self.config
        T = c.n_saccades if n_saccades is None else n_saccades
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)):
            raise ValueError(f"n_saccades={T!r} must be an integer in [1, {c.max_saccades}]")
        if not 1 <= int(T) <= c.max_saccades:
            raise ValueError(f"n_saccades={T!r} must be in [1, {c.max_saccades}]")
        sample = self.training if sample is None else bool(sample)
        batch = len(images)
        if proxy is not None and len(proxy) != batch:
            raise ValueError(f"proxy has {len(proxy)} rows for a batch of {batch} images")
        pyramids = as_pyramids(images, batch)  # built once, shared by all glimpses and scales
        device = self.classifier.fc.weight.device

        state = self.core.initial(batch, device)
        logits, locs, means, log_pis, baselines, crops = [], [], [], [], [], []
        for _ in range(int(T)):
            h = self.core.output(state).detach()  # REINFORCE and the MSE stay off the core
            mean = self.locator(h)  # (B, 2)
            baselines.append(self.baseliner(h))
            if sample:
                eps = torch.randn(
                    batch, 2, generator=generator, device=generator.device if generator else device
                ).to(device)
                l_t = (mean + c.std * eps).detach()  # hard attention: no gradient to the crop
                log_pis.append(torch.distributions.Normal(mean, c.std).log_prob(l_t).sum(-1))
            else:
                l_t = mean.detach()
            l_t = l_t.clamp(-1.0, 1.0)
            patches = self.retina(pyramids, l_t.float())  # (B, n_scales, k, k)
            state = self.core(self.glimpse_net(patches.to(mean.dtype), l_t), state)
            logits.append(self.classifier(self.core.output(state)))
            locs.append(l_t)
            means.append(mean)
            crops.append(patches[:, 0])

        def with_scale(xy: list[torch.Tensor], s: float) -> torch.Tensor:  # (T, B, 3)
            xy = torch.stack(xy)
            return torch.cat([torch.full_like(xy[..., :1], s), xy], -1)

        sigma = torch.tensor([0.0, c.std, c.std], device=device).expand(int(T), batch, 3)
        return RAMOutput(
            logits=torch.stack(logits),
            z=with_scale(locs, -1.0),
            mu=with_scale(means, -1.0),
            sigma=sigma,
            log_pi=torch.stack(log_pis) if sample else None,
            baseline=torch.stack(baselines),
            crops=torch.stack(crops),
            sampled=sample,
        )

    def loss(
        self, output: RAMOutput, labels: torch.Tensor, proxy=None, weights=None
    ) -> tuple[torch.Tensor, dict]:
        """The hybrid loss of the paper:

            loss = CE + w · REINFORCE + MSE(b, R)

        - CE: cross-entropy of the last step's logits (all steps averaged when
          ``config.ce_all_steps``).
        - R = 1 when the last step's prediction is right, else 0.
        - REINFORCE = -mean_b Σ_t log π(l_t | h_{t-1}) · (R - b_t), b_t detached: its gradient
          is minus the policy gradient of the expected reward. 0 unless l_t was sampled.
        - MSE: mean over t and b of (b_t - R)², which trains the baseline.
        - w = ``weights.cell_weight`` (a ``saccade.models.objective.LossWeights``; None: 1). Not checked:
          a negative w ascends the loss of the reward, as the sign test does.

        terms: loss, ce, acc, reward, reinforce, baseline_mse (floats).
        """
        logits = output.logits.float()
        last = logits[-1]
        if self.config.ce_all_steps:
            ce = F.cross_entropy(logits.flatten(0, 1), labels.repeat(len(logits)))
        else:
            ce = F.cross_entropy(last, labels)
        reward = (last.argmax(-1) == labels).float()  # (B,)
        baseline = output.baseline.float()  # (T, B)
        baseline_mse = F.mse_loss(baseline, reward.expand_as(baseline))
        w = 1.0 if weights is None else float(weights.cell_weight)
        if output.sampled and output.log_pi is not None:
            advantage = (reward[None] - baseline).detach()  # (T, B)
            reinforce = -(output.log_pi.float() * advantage).sum(0).mean()
        else:
            reinforce = torch.zeros((), device=logits.device)
        total = ce + w * reinforce + baseline_mse
        terms = {
            "loss": total.item(),
            "ce": ce.item(),
            "acc": reward.mean().item(),
            "reward": reward.mean().item(),
            "reinforce": reinforce.item(),
            "baseline_mse": baseline_mse.item(),
        }
        return total, terms
