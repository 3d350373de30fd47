"""The settings of a training run (``TrainConfig``), the presets measured for a dataset
(``PRESETS``) and the command line of ``python -m saccade.train`` built from them
(``parse_args``): every field of ``TrainConfig`` is a ``--flag`` (``crop_size`` ->
``--crop-size``) whose help is the field's ``help`` metadata, written once, here.
``saccade.train`` re-exports all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.classifier import POOLINGS
from ..models.registry import model_names


def option(default, help: str):
    """A ``TrainConfig`` field with its ``--flag``'s help (``{models}`` in it: the model
    names, filled in when the help is shown)."""
    return field(default=default, metadata={"help": help})


def flag_help(f) -> str | None:
    """The ``--flag`` help of the ``TrainConfig`` field ``f`` (None: it has none)."""
    text = f.metadata.get("help")
    return None if text is None else text.replace("{models}", ", ".join(model_names()))


@dataclass
class TrainConfig:
    """Everything a run needs; saved in the checkpoint's JSON under ``train``. A field's
    ``help`` metadata (``option``) is its ``--flag``'s help."""

    model: str = option("vs", "which model: {models} (saccade.models)")
    dataset: str = option(
        "cluttered", "cluttered, megapixel or folder (--root: your images, one subfolder per class)"
    )
    task: str = option("sum", "cluttered: sum, id, single; megapixel: majority")
    size: int = option(
        100,
        "canvas side in pixels (folder: every image is padded to a square and "
        "resized to this side)",
    )
    full_size: int | None = option(None, "upsample the canvas to this side (e.g. 2528)")
    root: str | None = option(
        None, "folder: the ImageFolder tree (ROOT/CLASS/*.png, or ROOT/train and ROOT/test)"
    )
    channels: int = option(3, "folder: 1 (grayscale) or 3 (RGB)")
    holdout: float = option(
        0.2, "folder without train/ and test/: the seeded test fraction of each class"
    )
    cache: bool = option(True, "folder: read through the pyramid cache (true/false)")
    cache_dir: str | None = option(
        None, "folder: the cache's directory (default ROOT/.saccade-cache)"
    )
    variance: str = option("learnt", "learnt or fixed posterior variance")
    fixed_sigma: float = option(0.05, "the posterior std in fixed mode")
    n_saccades: int = option(4, "T, crops per image")
    crop_size: int = option(32, "k, crop side in pixels")
    min_scale: float = option(0.15, "crop side / image side at the smallest scale")
    max_scale: float = option(0.3, "crop side / image side at the largest scale")
    crop_to_rnn: bool = option(False, "feed crop features to the LSTM (true/false; default false)")
    epochs: int = 10
    steps: int | None = option(None, "stop after this many optimizer steps")
    minutes: float | None = option(None, "stop after this many minutes of training")
    train_length: int = option(
        60000, "training samples per epoch (folder: default one pass over the images)"
    )
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200  # steps
    beta_recon: float = option(1e-3, "weight of the reconstruction NLL")
    beta_kl: float = option(1e-2, "weight of the KL to the prior")
    cell_weight: float = option(
        1.0, "weight of the score-function term of the cell choice (0: off)"
    )
    find_weight: float = option(
        1.0, "weight of the reader's cell signal, with --find-candidates (saccade.models.find)"
    )
    proxy_noise: float = 0.0
    noise_aug: float = option(0.3, "training proxies get Gaussian noise of std ~ U(0, this)")
    max_train_saccades: int | None = option(
        None, "each batch runs a random number of saccades in [T, this]"
    )
    mode_batches: float = option(
        0.0, "fraction of batches that crop at the posterior's mode, as evaluation does"
    )
    crop_width: int = option(16, "channels of the crop encoder's first layer")
    crop_encoder: str = option(
        "lenet",
        "the crop encoder's layers: lenet (conv, norm, ReLU, pool) or lenet-pool "
        "(conv, pool, norm, ReLU: faster); a --reader must have the same",
    )
    proxy_size: int | None = option(
        None,
        "proxy side in pixels (default: the dataset's: 32 cluttered, 0.12 of the side megapixel)",
    )
    n_noise: int | None = option(
        None, "megapixel: noise patterns per canvas (default 50); fewer for a curriculum"
    )
    proxy_width: int = option(32, "channels of the proxy encoder's first layer")
    where_grid: int = option(8, "g: the posterior's categorical runs over g x g cells of the proxy")
    where_channels: int = option(64, "channels of the posterior's per-cell hidden layer")
    seen_init: float | None = option(
        None,
        "start a learnt weight on the map of covered cells at this value "
        "(e.g. -8: inhibition of return); default none",
    )
    pooling: str = option(
        "max",
        "how the classifier pools the crops: max (a set), mean (a share) or evidence (each "
        "crop's class or 'no digit', summed: counts)",
    )
    find_candidates: int = option(
        0,
        "with --pooling evidence: crop this many candidate cells per training image and teach "
        "the posterior's cell logits the reader's P(digit) there (0: off)",
    )
    seen_margin: float = option(
        0.0, "a cell counts as covered within the crop's half-side plus this many cell sides"
    )
    grid: int = option(
        12, "resnet18-grid: cut the image into GRID x GRID tiles (12: the paper's 144)"
    )
    n_scales: int = option(3, "ram: scales of the retina, each twice as wide, all k x k")
    seed: int = 0
    out: str = option("checkpoints/model", "checkpoint path without suffix, e.g. checkpoints/NAME")
    device: str = option("cpu", "cpu or cuda (bf16 autocast on CUDA)")
    workers: int = option(1, "DataLoader workers")
    init: str | None = option(
        None, "start from the matching weights of this checkpoint (curriculum)"
    )
    init_parts: str | None = option(
        None,
        "with --init: copy only these submodules, comma-separated "
        "(e.g. crop_encoder,classifier); needed when --init was trained on another dataset, "
        "task or channel count",
    )
    freeze: str | None = option(
        None,
        "submodules not trained, comma-separated (e.g. crop_encoder,classifier: keep a "
        "pre-trained reader as it is)",
    )
    reader: str | None = option(
        None,
        "copy the crop encoder of this digit reader (python -m saccade.train.pretrain) "
        "into the model, after --init",
    )
    val_n: int = option(1000, "test samples for the per-epoch accuracy")
    test_n: int = option(5000, "test samples for the final accuracy")
    log_every: int = 20

    def __post_init__(self):
        for name in ("epochs", "batch_size", "n_saccades", "crop_size", "train_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps!r} must be >= 1")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes={self.minutes!r} must be > 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if not 0.0 <= self.mode_batches <= 1.0:
            raise ValueError(f"mode_batches={self.mode_batches!r} must be in [0, 1]")
        if not 0.0 <= self.noise_aug <= 1.0:
            raise ValueError(f"noise_aug={self.noise_aug!r} must be in [0, 1]")
        if self.max_train_saccades is not None and self.max_train_saccades < self.n_saccades:
            raise ValueError(
                f"max_train_saccades={self.max_train_saccades!r} must be >= n_saccades="
                f"{self.n_saccades}"
            )
        for name in ("beta_recon", "beta_kl", "cell_weight", "find_weight", "seen_margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; accepted: {list(POOLINGS)}")
        if self.model not in model_names():
            raise ValueError(f"model={self.model!r}; accepted: {model_names()}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r}; accepted: cpu, cuda")


#: Named settings of TrainConfig for a dataset (``--preset NAME``; flags given explicitly win).
#: megapixel, each choice measured (scripts/megapixel.sh, docs/results.md, "Megapixel MNIST"): a proxy
#: of 0.25 of the side (375² at 1500²; at 0.12, attention sampling's 180², an MLP on the
#: proxy's blobs tells a digit from a stroke pattern at AUC 0.90, at 0.25 at 0.97, and the
#: where-policy must rank 5 digits above 50 strokes); the posterior over 45 x 45 cells, a
#: cell about a digit (33 px); crops of 30-52 px at 1500² (k = 32: a 20 px digit spans 12-21
#: samples); T = 10 (the benchmark's 10 patches); "evidence" pooling (each crop's class or
#: "no digit", summed: the majority needs counts; mean pooling read one digit among noise,
#: 57.6% with the crops on the digits); the reader's signal for the cell choice on 64
#: candidates (``saccade.models.find``); a learnt inhibition of return started at -8 over
#: the 3 x 3 cells around each crop (``seen_margin``; without it the mode took all 10 crops
#: at the brightest cell); β_kl = 1e-3 (at 1e-2 the KL to the prior flattened the 2025-cell
#: posterior to uniform in 150 steps); a proxy encoder of width 8 and 32 posterior channels
#: (21 -> 13 ms per training image at width 16 and 64 channels, measured on 2 cores).
PRESETS: dict[str, dict] = {
    "megapixel": {
        "dataset": "megapixel",
        "task": "majority",
        "size": 1500,
        "proxy_size": 375,
        "where_grid": 45,
        "where_channels": 32,
        "proxy_width": 8,
        "pooling": "evidence",
        "find_candidates": 64,
        "crop_encoder": "lenet-pool",
        "seen_margin": 0.5,
        "min_scale": 0.02,
        "max_scale": 0.035,
        "seen_init": -8.0,
        "n_saccades": 10,
        "batch_size": 32,
        "lr": 1e-3,
        "beta_kl": 1e-3,
        "noise_aug": 0.1,
    }
}
