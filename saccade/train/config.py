"""The settings of a training run (``TrainConfig``) and the presets for a dataset
(``PRESETS``).

Each setting is declared once, with its help text:
- a model's hyperparameters on its config dataclass (``saccade.models.vs.ModelConfig``,
  ``ram.RAMConfig``, ``resnet.ResNetConfig``), as ``setting(default, help)`` fields;
- the weights of the VS objective on ``saccade.models.objective.LossWeights``, which
  ``TrainConfig`` extends (its fields are the run's too);
- everything else a run needs (data, optimiser, schedule, output) here, on ``TrainConfig``;
- a stage's own settings on its config (``saccade.train.distil.DistilConfig``).
``python -m saccade.train`` (``saccade.train.cli``) makes a ``--flag`` of each, and the
checkpoint's JSON saves both under ``train``, flat, by the flags' names
(``TrainConfig.settings``). To add a knob to a model: one ``setting`` field on its config.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..data.zoom import RENDERS, check_render
from ..models.objective import LossWeights
from ..models.registry import model_class, model_names, setting, settings_of
from ..models.vs import LAYOUTS, canvas_layout
from .imitation import (
    CUE_SIDE,
    IMITATION_FITS,
    TEACHER_ORDERS,
    ZOOM_SIDES,
    check_fit,
    check_order,
    check_region_side,
    zoom_sides,
)
from .sides import parse_sizes

#: the datasets that draw their samples from a seed: ``--keep best`` validates on new ones
GENERATED = ("cluttered", "megapixel", "zoom")


@dataclass
class TrainConfig(LossWeights):
    """Everything a run needs. ``model_args`` holds the hyperparameters of ``model`` (its
    config's ``setting`` fields), completed with that config's defaults; the other fields
    are the run's own, the objective's weights among them (``LossWeights``': a config is
    the weights its loss reads). ``TrainConfig.from_settings(task="id", crop_size=24)`` takes both by
    name, as the command line does."""

    # the model
    model: str = setting("vs", "which model (saccade.models); its settings follow")
    model_args: dict = field(default_factory=dict)  # not a flag: the model's own settings
    # the data
    dataset: str = setting(
        "cluttered", "cluttered, megapixel or folder (--root: your images, one subfolder per class)"
    )
    task: str = setting("sum", "cluttered: sum, id, single; megapixel: majority")
    size: int | None = setting(
        None,
        "canvas side in pixels (default: the dataset's: 100 cluttered, 1500 megapixel; folder: "
        "its largest image; every image is padded to a square and resized to this side)",
    )
    full_size: int | None = setting(None, "upsample the canvas to this side (e.g. 2528)")
    proxy_size: int | None = setting(
        None,
        "proxy side in pixels (default: the dataset's: 32 cluttered, 0.12 of the side megapixel)",
    )
    n_noise: int | None = setting(
        None, "megapixel: noise patterns per canvas (default 50); fewer for a curriculum"
    )
    zoom_render: str | None = setting(
        None,
        "zoom: how a coarse pixel composites its samples (saccade.data.zoom.RENDERS): max, "
        "the default and the first version, where a thin cue vanishes from the proxy; mean, "
        "the area average of level 0 (docs/zoom.md, 'What the proxy shows')",
        RENDERS,
    )
    root: str | None = setting(
        None,
        "folder: the ImageFolder tree (ROOT/CLASS/*.png, or ROOT/train and ROOT/test), on "
        "disk or in a bucket (s3://bucket/slides/, gs://...: listed once, every file read as "
        "a slide by range requests; credentials from the usual AWS_* or GCS environment, "
        "AWS_ENDPOINT_URL for an S3-compatible store; pip install '.[remote]')",
    )
    channels: int = setting(3, "folder: 1 (grayscale) or 3 (RGB)")
    holdout: float = setting(
        0.2, "folder without train/ and test/: the seeded test fraction of each class"
    )
    labels: str | None = setting(
        None,
        "folder: a CSV of slide,label[,split|fold] rows naming each file's class (ROOT flat "
        "or a folder of folders; saccade.data.labels)",
    )
    fold: int | None = setting(None, "folder with --labels: hold this fold out as the test split")
    mpp: float | None = setting(
        None,
        "folder of slides: read every slide at this many µm per pixel, whatever its "
        "magnification (e.g. 0.5; its MPP from the file), as a canvas of a fixed side in µm",
    )
    default_mpp: float | None = setting(
        None, "folder with --mpp: the µm per pixel of a slide whose file records none"
    )
    canvas_um: float | None = setting(
        None, "folder with --mpp: the canvas's side in µm (default: the largest slide's)"
    )
    invert: bool = setting(
        False, "folder: train on the negative of every image (dark ink on a bright ground)"
    )
    cache: bool = setting(True, "folder: read through the pyramid cache (true/false)")
    cache_dir: str | None = setting(
        None,
        "folder: the cache's directory (default ROOT/.saccade-cache; for a bucket's ROOT, "
        "$SACCADE_SLIDE_CACHE or ~/.cache/saccade/slides)",
    )
    proxy_noise: float = setting(0.0, "std of the Gaussian noise on every proxy (train and test)")
    noise_aug: float = setting(0.3, "training proxies get Gaussian noise of std ~ U(0, this)")
    train_length: int | None = setting(
        None,
        "training samples per epoch (default: one pass over the training images: 60000 "
        "for the MNIST-made data)",
    )
    seed: int = setting(0, "seed of the training data, the weights and the batches")
    # the objective (its weights: LossWeights' fields, above)
    objective: str = setting(
        "elbo",
        "elbo (the paper's bound, the model's own loss) or imitation (zoom: learn a "
        "coarse-to-fine search from the canvases' ground truth, saccade.train.imitation)",
        ("elbo", "imitation"),
    )
    teacher_forcing: float = setting(
        0.5, "imitation: the share of crops taken where the teacher says (else the mode)"
    )
    teacher_cue_side: float = setting(
        CUE_SIDE,
        "imitation: the side in pixels of the teacher's crops that look at a cue (the cue's "
        "outer diameter is 960 px); a larger one forgives an imprecise first look",
    )
    teacher_zoom: str = setting(
        ",".join(f"{v:g}" for v in ZOOM_SIDES),
        "imitation: the crop sides in pixels, decreasing and comma-separated, with which the "
        "teacher zooms on the ring's centre once it was seen",
    )
    teacher_region_side: float | None = setting(
        None,
        "imitation: the side in pixels of a first look at each cue at its region's scale, "
        "before the cue's (above --teacher-cue-side; e.g. 4096): for a first look from the "
        "proxy that may miss a cue crop; default none: the cue's scale first",
    )
    imitation_fit: str = setting(
        "cell",
        "imitation: the teacher's z is fitted under the posterior component that holds it "
        "(cell), or also by the offsets of the proxy cells beside it, those within "
        "--offset-reach (neighbours: whichever of them the mode picks aims at it)",
        IMITATION_FITS,
    )
    teacher_order: str = setting(
        "brightness",
        "imitation: the unseen cue the teacher sends each crop to: brightness (the brightest on "
        "the proxy first) or nearest (the one nearest the posterior's mode: the model's own "
        "choice of cue, corrected in place)",
        TEACHER_ORDERS,
    )
    also_sizes: str | None = setting(
        None,
        "imitation: also train at these canvas sides, comma-separated (e.g. 65536), the "
        "batches alternating between the sides, one set of weights (saccade.train.sides); "
        "each a whole multiple or fraction of --size (with --also-layout pixels)",
    )
    also_layout: str | None = setting(
        None,
        "with --also-sizes: how the model meets the other sides (saccade.models.vs.for_canvas)."
        " share: the same proxy, grid of cells and prior, the crops kept in pixels (the "
        "default for zoom, whose regions are a share of the side); pixels: the proxy and the "
        "grid scale with the side (imitation only: the prior is then a copy)",
        LAYOUTS,
    )
    also_weight: float = setting(
        1.0,
        "with --also-sizes: the other sides' losses are multiplied by this (their imitation "
        "loss can start a thousand times the training side's; tried at 0.002 on zoom, it "
        "changed nothing: docs/results.md)",
    )
    max_train_saccades: int | None = setting(
        None, "each batch runs a random number of saccades in [T, this]"
    )
    mode_batches: float = setting(
        0.0, "fraction of batches that crop at the posterior's mode, as evaluation does"
    )
    # the optimiser and the schedule
    epochs: int = setting(10, "passes over --train-length samples")
    steps: int | None = setting(None, "stop after this many optimizer steps")
    minutes: float | None = setting(None, "stop after this many minutes of training")
    batch_size: int = setting(64, "images per optimizer step (per process under torchrun)")
    lr: float = setting(2e-3, "AdamW's peak learning rate")
    weight_decay: float = setting(1e-4, "AdamW's weight decay")
    warmup: int = setting(200, "steps of linear warm-up before the cosine decay")
    # where the weights come from
    init: str | None = setting(
        None, "start from the matching weights of this checkpoint (curriculum)"
    )
    init_parts: str | None = setting(
        None,
        "with --init: copy only these submodules, comma-separated "
        "(e.g. crop_encoder,classifier); needed when --init was trained on another dataset, "
        "task or channel count",
    )
    reader: str | None = setting(
        None,
        "copy the crop encoder of this digit reader (python -m saccade.train.pretrain) "
        "into the model, after --init",
    )
    freeze: str | None = setting(
        None,
        "submodules not trained, comma-separated (e.g. crop_encoder,classifier: keep a "
        "pre-trained reader as it is)",
    )
    # the machine and the output
    device: str = setting("cpu", "cpu or cuda (bf16 autocast on CUDA)")
    workers: int = setting(1, "DataLoader workers")
    out: str = setting("checkpoints/model", "checkpoint path without suffix, e.g. checkpoints/NAME")
    val_n: int = setting(1000, "test samples for the per-epoch accuracy")
    keep: str = setting(
        "last",
        "the weights the run ends with: the last epoch's, or the best epoch's by its val_acc "
        "(best: validated on --val-n canvases of the training split drawn with seed --seed + 1, "
        "not on test canvases; a generated dataset only)",
        ("last", "best"),
    )
    test_n: int = setting(5000, "test samples for the final accuracy")
    log_every: int = setting(20, "steps between two lines of the metrics log")

    def __post_init__(self):
        super().__post_init__()
        for name in ("epochs", "batch_size", "train_length", "size"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps!r} must be >= 1")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes={self.minutes!r} must be > 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing={self.teacher_forcing!r} must be in [0, 1]")
        if not self.teacher_cue_side > 0:
            raise ValueError(f"teacher_cue_side={self.teacher_cue_side!r} must be > 0 pixels")
        self.teacher_zoom_sides()  # ValueError for a bad list
        check_region_side(self.teacher_region_side, self.teacher_cue_side, "teacher_region_side")
        check_order(self.teacher_order, "teacher_order")
        check_fit(self.imitation_fit, "imitation_fit")
        if self.zoom_render is not None:
            if self.dataset != "zoom":
                raise ValueError(f"zoom_render: dataset={self.dataset!r} has one renderer")
            check_render(self.zoom_render, "zoom_render")
        if self.objective == "imitation" and self.dataset != "zoom":
            raise ValueError(
                f"objective='imitation' learns the zoom benchmark's search; dataset="
                f"{self.dataset!r} has no cues (use --dataset zoom, or --objective elbo)"
            )
        if not 0.0 <= self.mode_batches <= 1.0:
            raise ValueError(f"mode_batches={self.mode_batches!r} must be in [0, 1]")
        if not 0.0 <= self.noise_aug <= 1.0:
            raise ValueError(f"noise_aug={self.noise_aug!r} must be in [0, 1]")
        if not self.also_weight > 0:  # NaN too
            raise ValueError(f"also_weight={self.also_weight!r} must be a number > 0")
        if self.also_layout not in (None, *LAYOUTS):
            raise ValueError(f"also_layout={self.also_layout!r}: one of {', '.join(LAYOUTS)}")
        layout = self.sides_layout()
        if parse_sizes(self.also_sizes) and self.objective != "imitation" and layout != "share":
            raise ValueError(
                f"also_sizes={self.also_sizes!r} with also_layout={layout!r} takes --objective "
                "imitation: at another side the model's prior is then a copy, which the bound's "
                "KL would train apart (also_layout='share' shares it)"
            )
        if self.keep == "best" and self.dataset not in GENERATED:
            raise ValueError(
                f"keep='best' validates on new canvases of the training split, which dataset="
                f"{self.dataset!r} cannot draw; accepted with it: {sorted(GENERATED)}"
            )
        self._check_folder_reading()
        if self.model not in model_names():
            raise ValueError(f"model={self.model!r}; accepted: {model_names()}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r}; accepted: cpu, cuda")
        self.model_args = self._complete(self.model_args)
        T = self.model_args.get("n_saccades", 1)
        if self.max_train_saccades is not None and self.max_train_saccades < T:
            raise ValueError(
                f"max_train_saccades={self.max_train_saccades!r} must be >= n_saccades={T}"
            )

    def sides_layout(self) -> str:
        """How --also-sizes meets the other sides: --also-layout, by default the dataset's
        (``saccade.models.vs.canvas_layout``: share for zoom)."""
        return self.also_layout or canvas_layout({"name": self.dataset})

    def teacher_zoom_sides(self) -> tuple[float, ...]:
        """``teacher_zoom`` as pixel sides (``imitation.zoom_sides``: ValueError unless they
        are numbers > 0, decreasing)."""
        return zoom_sides(self.teacher_zoom, "teacher_zoom")

    def _check_folder_reading(self) -> None:
        """--mpp, --default-mpp, --canvas-um and --invert: folder settings, checked."""
        from ..data.slide_meta import check_mpp

        scale = {"mpp": self.mpp, "default_mpp": self.default_mpp, "canvas_um": self.canvas_um}
        given = [k for k, v in scale.items() if v is not None] + ["invert"] * self.invert
        if given and self.dataset != "folder":
            raise ValueError(f"{given} are settings of --dataset folder, not {self.dataset!r}")
        for name in ("mpp", "default_mpp"):
            if scale[name] is not None:
                check_mpp(scale[name], f"--{name.replace('_', '-')}")
        if self.mpp is None and (self.default_mpp is not None or self.canvas_um is not None):
            raise ValueError(
                "--default-mpp and --canvas-um need --mpp (the scale slides are read at)"
            )
        if self.canvas_um is not None and not self.canvas_um > 0:
            raise ValueError(f"--canvas-um: {self.canvas_um!r} must be a positive number of µm")

    def _complete(self, given: dict) -> dict:
        """``given`` over the defaults of ``model``'s settings, checked by building its
        config (ValueError naming an unknown setting or a bad value)."""
        defaults = {f.name: f.default for f in settings_of(self.model)}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(
                f"model {self.model!r} has no settings {unknown}; accepted: {sorted(defaults)}"
            )
        args = defaults | given
        model_class(self.model).config_class(**args)
        return args

    @classmethod
    def run_fields(cls) -> list:
        """The run's own fields (every field but ``model_args``), each a flag, in the order
        of the class, with the objective's weights (``LossWeights``', which a dataclass puts
        first) after the data, where ``--help`` lists the objective."""
        weights = [f.name for f in fields(LossWeights)]
        own = [f for f in fields(cls) if f.name not in weights and f.name != "model_args"]
        after = [f.name for f in own].index("seed") + 1  # the data's last
        return own[:after] + list(fields(LossWeights)) + own[after:]

    @classmethod
    def from_settings(cls, **settings) -> TrainConfig:
        """A config from settings named as the flags are (``crop_encoder``, ``lr``, ...): the
        run's fields, and the hyperparameters of ``settings["model"]`` (default vs).
        ValueError names a setting that neither has."""
        run = {f.name for f in cls.run_fields()}
        return cls(
            **{k: v for k, v in settings.items() if k in run},
            model_args={k: v for k, v in settings.items() if k not in run},
        )

    @classmethod
    def from_saved(cls, train: dict) -> TrainConfig:
        """The config a checkpoint's ``train`` block records. A block written before the
        models' settings moved to their configs also holds the other models' settings (e.g.
        ``grid`` in a vs run's): those are dropped."""
        return cls.from_settings(**for_model(train, train.get("model", "vs")))

    def settings(self) -> dict:
        """Every setting by name, flat: the run's and the model's (the checkpoint's
        ``train`` block; ``from_settings(**cfg.settings())`` gives ``cfg`` back)."""
        return {f.name: getattr(self, f.name) for f in self.run_fields()} | self.model_args


def for_model(settings: dict, model: str) -> dict:
    """The ``settings`` (named as the flags are) that a run of ``model`` takes: the run's
    and that model's own. A preset measured with vs gives another model its data, objective
    and schedule."""
    known = {f.name for f in TrainConfig.run_fields()} | {f.name for f in settings_of(model)}
    return {k: v for k, v in settings.items() if k in known}


#: Named settings for a dataset, run's and model's alike (``--preset NAME``; flags given
#: explicitly win). Why each value: docs/results.md#the-megapixel-preset
PRESETS: dict[str, dict] = {
    "megapixel": {
        "dataset": "megapixel",
        "task": "majority",
        "size": 1500,
        "proxy_size": 375,
        "where_grid": 45,
        "where_channels": 32,
        "proxy_width": 16,
        "pooling": "evidence",
        "find_candidates": 64,
        "crop_encoder": "lenet-pool",
        "seen_margin": 0.5,
        "min_scale": 0.03,
        "max_scale": 0.035,
        "max_sigma": 0.05,
        "seen_init": -8.0,
        "n_saccades": 10,
        "batch_size": 32,
        "lr": 1e-3,
        "beta_kl": 1e-3,
        "noise_aug": 0.1,
    }
}
