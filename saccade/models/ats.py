"""``ats``: attention sampling (Katharopoulos & Fleuret, "Processing Megapixel Images with
Deep Attention-Sampling Models", ICML 2019), the Megapixel MNIST baseline of its own paper.

The model looks once: an attention distribution over positions of a low-resolution view,
n patches of the full-resolution image drawn from it, and the attention-weighted mean of
the patches' features, estimated from the draws:

```
v = area-resize(p, view_size)                         the view: the proxy, resized
s = AttentionNet(v)              (B, g, g)            one score per position
a = softmax(s)                   over the g² positions
i_1..i_n ~ Cat(a)  (with replacement; training, or sample=True)
       | the n most attended positions               (evaluation: the deterministic mode)
x_k = glimpse(x, z(i_k), k)      patch_px-pixel patch of the canvas centred on position i_k
e_k = softmax(crop_logits(CropEncoder(x_k)))[:n_classes]   the digit reader's evidence
pooled = (1/n) Σ_k (a_{i_k} / stopgrad(a_{i_k})) · e_k        the ATS estimator of E_a[e]
logits = log(pooled + ε)                              the evidence classifier's convention
```

The estimator: its value is (1/n) Σ_k e_{i_k}, an unbiased Monte Carlo estimate of
E_a[e] = Σ_i a_i e_i; its gradient with respect to the attention is
(1/n) Σ_k (e_{i_k} / a_{i_k}) ∇a_{i_k}, whose expectation is Σ_i e_i ∇a_i = ∇ E_a[e]: an
unbiased gradient of the expectation without a score function (no REINFORCE, no baseline),
the paper's eq. 7 for sampling with replacement. The feature network gets the ordinary
gradient of the sampled patches.

Design choices (each a setting of ``ATSConfig`` where it is one):

- **View**: the proxy (B, p, p) area-resized to ``view_size`` = 180 (Megapixel: 375 -> 180,
  one view pixel 8.3 canvas pixels; the paper's view is 1/5 of the canvas, 300²). Bilinear
  when the proxy is smaller than the view (tiny canvases in the tests).
- **Attention network**: 3x3 convolutions with ReLU (``attention_width`` channels; the second
  and third of stride 2), one more 3x3 at the grid's resolution, then a 1x1 convolution to
  one score per position, on a g x g grid with g = ceil(view_size / 4) (45 at 180: 33 canvas
  pixels between positions, against a 50 px patch, so every 28 px digit lies whole in some
  patch; the VS model's ``where_grid`` is 45 too). Position (r, c) is the centre of the r-th
  row, c-th column cell of the g x g grid over the image, x = -1 + (2c + 1) / g (the
  convolution's receptive field, 17 view pixels, holds that centre).
- **Entropy regulariser**: loss = CE - ``entropy_weight`` · H(a) (the paper's multinomial
  entropy regulariser, positive weights spread the attention: with one position's
  attention near 1 the n draws would all read the same patch).
- **Patches**: side ``patch_px`` = 50 canvas pixels, read as ``crop_size`` = 32 samples by
  ``saccade.glimpse`` from the image's area-averaged pyramid (O(k²) per patch); z = (-1, x,
  y) with ``min_scale == max_scale == patch_px / canvas side`` (the canvas side is the
  training data's ``size``; 1500, Megapixel's, for a config without a dataset), as
  ``ram`` sets its ``glimpse_fraction``.
- **Features**: the VS model's crop encoder and "evidence" classifier (same attribute names,
  sizes and kinds), so ``--reader checkpoints/readers/megapixel`` loads the pre-trained
  digit reader; e_k is its probability of each class (the "no digit" outcome left out: a
  patch on a noise stroke adds almost nothing).
- **Deterministic mode** (``sample=False``, evaluation's default): the n most attended
  positions, pooled = Σ_k a_{i_k} e_k / Σ_k a_{i_k} (the attention renormalised over the
  top n), the expectation E_a[e] restricted to where the attention is. With sampling the
  same positions can be drawn twice; at the top n they cannot.
- **T = 1**: the model looks once, so ``n_saccades`` and ``max_saccades`` are fixed at 1 and
  ``logits`` is (1, B, n_classes). It has no where-distribution over (s, x, y) per step,
  so ``z``, ``mu``, ``sigma`` are None and ``evaluate`` measures only the accuracies (no
  ``--policy``, no ``--localisation``); the n patch positions are in ``positions``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..glimpse import as_pyramids, finest_level, glimpse
from .classifier import Classifier
from .posterior import cell_centres
from .registry import OneLookConfig, Output, check_one_look, register_model, setting
from .vs import CROP_ENCODERS, CropEncoder

#: the canvas side assumed by a config without a dataset spec: Megapixel MNIST's
DEFAULT_CANVAS = 1500


@dataclass
class ATSConfig(OneLookConfig):
    """Settings of an attention-sampling model; saved in its checkpoint's JSON. ``BaseConfig``
    holds the classes, the proxy's side and the dataset; T is 1 (``OneLookConfig``)."""

    view_size: int = setting(
        180, "side of the view the attention network reads (the proxy, resized)"
    )
    n_patches: int = setting(10, "n: patches per image (drawn from the attention, or its top n)")
    patch_px: int = setting(50, "side of a patch in canvas pixels")
    crop_size: int = setting(32, "k, the side in samples a patch is read at")
    crop_width: int = setting(16, "channels of the crop encoder's first layer (then 2x, 2x)")
    crop_encoder: str = setting(
        "lenet-pool", "the crop encoder's kind (as vs's; the digit reader's)", CROP_ENCODERS
    )
    features: int = setting(256, "size of each patch's feature f")
    attention_width: int = setting(8, "channels of the attention network's convolutions")
    entropy_weight: float = setting(
        0.01, "weight of the attention's entropy, subtracted from the loss (0: off)"
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_at_least_one(
            "n_patches", "patch_px", "crop_size", "crop_width", "features", "attention_width"
        )
        if self.view_size < 4:
            raise ValueError(f"view_size={self.view_size!r} must be >= 4")
        if self.n_patches > self.grid**2:
            raise ValueError(
                f"n_patches={self.n_patches!r} must be at most the {self.grid}x{self.grid} "
                f"attention positions of view_size={self.view_size}"
            )
        if self.patch_px > self.canvas:
            raise ValueError(
                f"patch_px={self.patch_px!r} must be at most the canvas side ({self.canvas} px)"
            )
        if self.crop_encoder not in CROP_ENCODERS:
            raise ValueError(f"crop_encoder={self.crop_encoder!r}; accepted: {list(CROP_ENCODERS)}")
        if not math.isfinite(self.entropy_weight):
            raise ValueError(f"entropy_weight={self.entropy_weight!r} must be finite")

    @property
    def grid(self) -> int:
        """g: the attention grid's side, ceil(view_size / 4) (two stride-2 convolutions)."""
        return math.ceil(self.view_size / 4)

    @property
    def canvas(self) -> int:
        """The training canvas's side in pixels (``dataset["size"]``, else 1500)."""
        return int((self.dataset or {}).get("size") or DEFAULT_CANVAS)

    @property
    def min_scale(self) -> float:
        """A patch's side / image side (every patch's s is -1; min = max)."""
        return self.patch_px / self.canvas

    @property
    def max_scale(self) -> float:
        return self.min_scale


@dataclass
class ATSOutput(Output):
    """``Output`` plus what ``ATS.loss`` and a reader of the model need. B images, n patches,
    g x g attention positions."""

    attention: torch.Tensor | None = None  # (B, g, g) a, summing to 1 per image
    indices: torch.Tensor | None = None  # (B, n) the patches' positions, row-major in (g, g)
    positions: torch.Tensor | None = None  # (B, n, 3) their z = (-1, x, y)
    evidence: torch.Tensor | None = None  # (B, n, n_classes) e_k
    crops: torch.Tensor | None = None  # (B, n, k, k) what the reader saw
    sampled: bool = False  # drawn from a (with replacement), else the top n


class AttentionNet(nn.Module):
    """The attention network: a view (B, S, S) in [0, 1] -> scores (B, g, g), g = ceil(S/4).

    conv3x3(1, w) ReLU, conv3x3(w, w, stride 2) ReLU, conv3x3(w, w, stride 2) ReLU,
    conv3x3(w, w) ReLU, conv1x1(w, 1); 17 view pixels of receptive field."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 1, 1),
        )

    def forward(self, view: torch.Tensor) -> torch.Tensor:
        return self.net(view[:, None])[:, 0]


def ats_pool(
    attention: torch.Tensor, indices: torch.Tensor, evidence: torch.Tensor, sampled: bool
) -> torch.Tensor:
    """The pooled evidence of n patches.

    attention (B, P) the distribution over P positions, indices (B, n) the patches'
    positions, evidence (B, n, C) their features e_k. ``sampled`` (the indices were drawn
    from ``attention`` with replacement): (1/n) Σ_k (a_{i_k} / stopgrad(a_{i_k})) e_k, whose
    value and gradient with respect to ``attention`` are unbiased estimates of those of
    E_a[e] = Σ_i a_i e_i. Else (the top n): Σ_k a_{i_k} e_k / Σ_k a_{i_k}. Returns (B, C)."""
    a = attention.gather(1, indices)  # (B, n)
    if sampled:
        w = a / a.detach() / indices.shape[1]
    else:
        w = a / a.sum(1, keepdim=True)
    return (w[..., None] * evidence).sum(1)


@register_model("ats")
class ATS(nn.Module):
    """Attention sampling; ``forward(images, proxy)`` reads n patches where a points."""

    config_class = ATSConfig
    chooses_where = False  # no (s, x, y) per step: no policy ablations, no localisation

    def __init__(self, config: ATSConfig):
        super().__init__()
        self.config = c = config
        self.attention = AttentionNet(c.attention_width)
        self.crop_encoder = CropEncoder(c.features, c.crop_width, 1, c.crop_encoder)
        self.classifier = Classifier(c.features, c.n_classes, "evidence")
        centres = cell_centres(c.grid)  # (g,) in (-1, 1)
        # (g², 2) position centres (x, y), row-major like the flattened (g, g) scores
        xy = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), -1).reshape(-1, 2)
        self.register_buffer("position_xy", xy, persistent=False)

    def finest_level(self, side: int) -> int:
        """The finest pyramid level a patch reads on images of ``side`` pixels."""
        return finest_level(side, self.config.min_scale, self.config.crop_size)

    def view(self, proxy: torch.Tensor) -> torch.Tensor:
        """The proxy (B, p, p) resized to (B, S, S), S = ``view_size``: area-averaged, or
        bilinear when p < S."""
        if proxy.ndim != 3:
            raise ValueError(f"proxy must have shape (B, p, p), got {tuple(proxy.shape)}")
        size = self.config.view_size
        x = proxy[:, None].float()
        if proxy.shape[-1] >= size:
            x = F.interpolate(x, size=(size, size), mode="area")
        else:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x[:, 0]

    def attend(self, proxy: torch.Tensor) -> torch.Tensor:
        """a: the attention (B, g, g), a softmax over the g² positions of the proxy's view."""
        scores = self.attention(self.view(proxy))
        return torch.softmax(scores.flatten(1), -1).view_as(scores)

    def forward(
        self,
        images,
        proxy: torch.Tensor,
        n_saccades: int | None = None,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
        policy=None,
    ) -> ATSOutput:
        """One look at each image: n patches where the attention points.

        Args:
            images: (B, H, W) uint8 batch (tensor or array, CPU) or a list of B ``Pyramid``s.
            proxy: (B, p, p) float in [0, 1].
            n_saccades: None or 1 (the model looks once).
            sample: draw the n positions from a with replacement (default: ``self.training``),
                else take the n most attended (the deterministic mode).
            generator: the torch.Generator of the draws (reproducible sampling).
            policy: must be None: the model has no policy ablations.

        Returns:
            ``ATSOutput``: logits (1, B, C); z, mu, sigma None; attention (B, g, g); indices
            (B, n); positions (B, n, 3); evidence (B, n, C); crops (B, n, k, k); sampled.
        """
        check_one_look(self, n_saccades, policy)
        c = self.config
        sample = self.training if sample is None else bool(sample)
        batch, n = len(images), c.n_patches
        if len(proxy) != batch:
            raise ValueError(f"proxy has {len(proxy)} rows for a batch of {batch} images")
        pyramids = as_pyramids(images, batch)
        attention = self.attend(proxy)  # (B, g, g)
        flat = attention.flatten(1)  # (B, P)
        with torch.no_grad():
            if sample:
                device = generator.device if generator is not None else flat.device
                probs = flat.detach().float().to(device)
                indices = torch.multinomial(probs, n, replacement=True, generator=generator)
                indices = indices.to(flat.device)
            else:
                indices = flat.topk(n, 1).indices
        xy = self.position_xy[indices]  # (B, n, 2)
        z = torch.cat([torch.full_like(xy[..., :1], -1.0), xy], -1)  # (B, n, 3)
        crops = glimpse(
            [p for p in pyramids for _ in range(n)],
            z.reshape(-1, 3).float(),
            c.crop_size,
            c.min_scale,
            c.max_scale,
        )  # (B·n, k, k)
        crop_logits = self.classifier.crop_logits(self.crop_encoder(crops.to(flat.dtype)))
        evidence = torch.softmax(crop_logits, -1)[..., : c.n_classes].view(batch, n, -1)
        pooled = ats_pool(flat, indices, evidence, sample)
        return ATSOutput(
            logits=self.classifier._logits(pooled)[None],  # log(pooled + ε), as "evidence"
            attention=attention,
            indices=indices,
            positions=z,
            evidence=evidence,
            crops=crops.view(batch, n, c.crop_size, c.crop_size),
            sampled=sample,
        )

    def loss(
        self, output: ATSOutput, labels: torch.Tensor, proxy=None, weights=None
    ) -> tuple[torch.Tensor, dict]:
        """loss = CE - ``entropy_weight`` · H(a), H(a) = -Σ_i a_i log a_i averaged over the
        batch (nats). terms: loss, ce, acc, entropy, top_attention (the mean largest a_i).
        ``weights`` (the VS model's loss weights) are not read."""
        logits = output.logits[-1].float()
        ce = F.cross_entropy(logits, labels)
        a = output.attention.flatten(1).float()
        entropy = -(a * torch.log(a.clamp_min(1e-12))).sum(1).mean()
        total = ce - self.config.entropy_weight * entropy
        acc = (logits.argmax(-1) == labels).float().mean()
        terms = {
            "loss": total.item(),
            "ce": ce.item(),
            "acc": acc.item(),
            "entropy": entropy.item(),
            "top_attention": a.max(1).values.mean().item(),
        }
        return total, terms
