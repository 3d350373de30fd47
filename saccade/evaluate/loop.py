"""The evaluation loop: a checkpoint's accuracy per noise level and per saccade, where it
looked, and its σ (``evaluate``); the command line is ``saccade.evaluate.cli``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from ..data import dataset_from_spec
from ..data.base import GeneratedDataset
from ..data.megapixel import N_NOISE as MEGAPIXEL_NOISE
from ..data.proxy import add_noise, make_proxy
from ..glimpse import ImageSource, Pyramid, scale_to_fraction, scales_of, z_to_box
from ..infer import check_saccades
from ..looked_at import COVER_FRACTION, MIN_SAMPLES, covered_after
from ..models.refine import local_cells_off
from ..models.registry import uses_where
from ..models.vs import canvas_layout, for_canvas
from .metrics import auroc, blob_cells
from .policies import POLICIES, make_policy
from .report import crop_side_um

#: the boxes of a sample without ground truth


NO_BOXES = np.zeros((0, 4), np.float32)


#: default proxy-noise levels (std as a fraction of the intensity range)
DEFAULT_NOISE = (0.0, 0.1, 0.2, 0.4)


def noise_key(level: float) -> str:
    """The JSON key of a noise level: ``"0.0"``, ``"0.1"``, ... (``str(float(level))``)."""
    return str(float(level))


def evaluation_dataset(
    model: torch.nn.Module, full_size: int | None = None, **options
) -> GeneratedDataset:
    """The test split of the dataset the model was trained on, without proxy noise.

    ``full_size`` upsamples the canvas to that side (the paper's 2528 x 2528 protocol), e.g.
    to evaluate a 100 x 100 model on the same digits at 2528 x 2528. ``options``: the
    generator's own (e.g. megapixel's ``n_noise``).
    """
    spec = model.config.dataset
    if not spec:
        raise ValueError("the model's config has no dataset spec; pass a dataset to evaluate")
    overrides = {"split": "test", "seed": 0, "proxy_noise": 0.0, "length": None, **options}
    if full_size is not None:
        overrides["side"] = int(full_size)
    return dataset_from_spec(spec, **overrides)


def larger_canvas(model: torch.nn.Module, size: int, layout: str | None = None, **options):
    """(model, dataset) for canvases of side ``size`` with the objects at their trained size
    in pixels: Megapixel MNIST's digits and noise strokes (at their trained density: 50
    strokes per 1500², so 200 at 3000²), or the zoom benchmark's cues and digits (its regions
    keep their share of the side): ``saccade.models.vs.for_canvas`` and the matching test
    split. ``layout`` (``for_canvas``'s): by default the dataset's own, "share" for the zoom
    benchmark (its proxy shows the same regions at every side), "pixels" for Megapixel.
    ``options``: the generator's own (e.g. zoom's ``render``)."""
    spec = model.config.dataset or {}
    if spec.get("name") not in ("megapixel", "zoom"):
        raise ValueError(
            f"--canvas needs a megapixel or zoom model (their objects keep their size in "
            f"pixels on a larger canvas); this one was trained on {spec.get('name')!r}"
        )
    layout = layout or canvas_layout(spec)
    if int(size) != int(spec["size"]):
        f = int(size) / int(spec["size"])
        kept = "keep the trained ones" if layout == "share" else f"scale by {f:g}"
        warnings.warn(
            f"the model was trained on {spec['size']}² canvases; evaluating on {int(size)}² "
            f"(its proxy and its grid of cells {kept}, its crops keep their sides in pixels: "
            f"saccade.models.vs.for_canvas, layout {layout!r})",
            stacklevel=2,
        )
    bigger = for_canvas(model, size, layout)
    if spec["name"] == "zoom":  # regions are a share of the side, cues and digits are pixels
        return bigger, evaluation_dataset(bigger, **options)
    factor = (int(size) / int(spec["size"])) ** 2
    return bigger, evaluation_dataset(bigger, n_noise=round(MEGAPIXEL_NOISE * factor), **options)


def check_dataset(model: torch.nn.Module, dataset: GeneratedDataset) -> None:
    """ValueError unless ``dataset`` poses the model's task: same classes, same dataset and
    task, same canvas size (the full-resolution side may differ) and same proxy size."""
    c = model.config
    name = f"{dataset.name}/{dataset.task}"
    if dataset.n_classes != c.n_classes:
        raise ValueError(
            f"the model has {c.n_classes} classes but dataset {name} has {dataset.n_classes}"
        )
    own = c.dataset
    for key, value in (("name", dataset.name), ("task", dataset.task), ("size", dataset.size)):
        if own and own.get(key) != value:
            raise ValueError(
                f"the model was trained on {key}={own.get(key)!r}, the dataset has {key}={value!r}"
            )
    channels = int(getattr(dataset, "channels", 1))
    if channels != getattr(c, "channels", 1):
        raise ValueError(
            f"the model takes {getattr(c, 'channels', 1)}-channel images, dataset {name} has "
            f"{channels} channels"
        )
    if dataset.proxy_size != c.proxy_size:
        raise ValueError(
            f"the model takes {c.proxy_size}-pixel proxies, dataset {name} makes "
            f"{dataset.proxy_size}-pixel ones"
        )


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1")
    return int(value)


def _check_levels(levels: Iterable[float]) -> list[float]:
    """Sorted distinct noise levels in [0, 1], 0 included."""
    out = {0.0}
    for level in levels:
        value = float(level)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"noise level {level!r} must be a number in [0, 1]")
        out.add(value)
    return sorted(out)


def _check_device(device: str | torch.device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r}; accepted: cpu, cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device={str(device)!r}; accepted: cpu, cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' asked for, but CUDA is not available")
    return device


def sample_pyramid(sample: dict, lazy: bool = False) -> Pyramid:
    """The pyramid of a dataset sample: the cached levels a folder sample brings
    (``sample["pyramid"]``), else one built on ``sample["image"]`` (``lazy``: only the levels
    crops read, as they read them)."""
    pyr = sample.get("pyramid")
    if pyr is None and isinstance(sample["image"], ImageSource):  # a procedural canvas
        return sample["image"]
    return pyr if pyr is not None else Pyramid(sample["image"], lazy=lazy)


class LevelTally:
    """The running sums of one proxy-noise level over the evaluated batches: ``update`` takes
    each forward pass, ``result`` gives the level's figures.

    Args:
        config: the model's config (``n_saccades``, ``min_scale``, ``max_scale``, ``crop_size``).
        steps: the saccades each forward pass takes (at least the model's own T).
        T: the saccades reported (the σ statistics run over 1..T).
        localisation: also count the ground-truth digits the crops cover.
        crop_sides: also keep every crop's side / image side (the no-noise level does).
    """

    def __init__(self, config, steps: int, T: int, localisation: bool, crop_sides: bool):
        self.config, self.T = config, T
        self.localisation, self.crop_sides = localisation, crop_sides
        self.n = 0  # images seen
        self.digits = 0  # ground-truth boxes seen
        self.hits = np.zeros(steps, np.int64)  # right after each step
        self.found = np.zeros(steps, np.int64)  # digits covered after each step
        self.sigmas: list[np.ndarray] = []  # per batch (B, T): σ of the crop centre per step
        self.errors: list[np.ndarray] = []  # per batch (B,): wrong after the model's own T
        self.sides: list[np.ndarray] = []  # per batch: crop side / image side of every crop
        self.image_sides: list[int] = []  # the side of each image's square, pixels
        self.inside = [0, 0]  # crop centres inside the image, and all crop centres (steps 1..T)
        # localisation: per image, the first step whose crop looked at every ground-truth box
        # (the deciding object of the zoom benchmark; -1: none did)
        self.first_found: list[int] = []
        # per batch (steps, B): the crop sides in the image's pixels
        self.step_pixels: list[np.ndarray] = []
        # localisation, clean level: the step-1 log π of cells holding a digit and of cells
        # holding only a distractor blob (``blob_cells``), per image
        self.ranking: list[tuple[np.ndarray, np.ndarray]] = []

    def update(
        self, trace, labels: np.ndarray, boxes: list, shapes: list, images: list | None = None
    ) -> None:
        """Add one forward pass: ``trace`` the model's output on B images (logits (steps, B,
        classes); z, σ (steps, B, 3) or None), ``labels`` (B,), ``boxes`` B (D, 4) arrays of
        ground-truth boxes, ``shapes`` the B images' shapes; ``images`` (the B full-resolution
        images) to measure how the first step's cell choice ranks digits above distractors."""
        c = self.config
        predicted = trace.logits.argmax(-1).cpu().numpy()  # (steps, B)
        self.n += len(labels)
        self.digits += sum(len(b) for b in boxes)
        self.hits += (predicted == labels).sum(1)
        self.errors.append(predicted[c.n_saccades - 1] != labels)
        if trace.sigma is not None:
            loc_sigma = trace.sigma[: self.T, :, 1:].float().mean(-1).T  # (B, T)
            self.sigmas.append(loc_sigma.cpu().numpy())
        if trace.z is not None:
            centres = trace.z[: self.T, :, 1:].float()
            self.inside[0] += int((centres.abs() <= 1).all(-1).sum())
            self.inside[1] += centres.shape[0] * centres.shape[1]
        if self.crop_sides and trace.z is not None:
            s_z = trace.z[..., 0].float().cpu()
            fraction = scale_to_fraction(s_z, **scales_of(c)).numpy()  # (steps, B)
            self.sides.append(fraction.ravel())
            # each image's own side (a slide's native square), not one side for all
            image_sides = np.array([max(shape[:2]) for shape in shapes], np.float64)
            self.step_pixels.append(fraction * image_sides)
            self.image_sides.extend(int(v) for v in image_sides)
        if self.localisation:
            z = trace.z.float().cpu().numpy()  # (steps, B, 3)
            for b, truth in enumerate(boxes):
                if len(truth):  # no boxes (a folder's photos): nothing to localise
                    crops = z_to_box(z[:, b], shapes[b], **scales_of(c))
                    done = covered_after(truth, crops, c.crop_size)  # (steps, n)
                    self.found += done.sum(1)
                    every = done.all(1)
                    self.first_found.append(int(every.argmax()) + 1 if every.any() else -1)
        cell_probs = getattr(trace, "cell_probs", None)
        # the ranking reads the image's ink: not of a procedural canvas or a slide
        whole = images is not None and all(isinstance(i, np.ndarray) for i in images)
        if self.localisation and whole and cell_probs is not None:
            log_pi = cell_probs[0].float().clamp_min(1e-30).log().cpu().numpy()  # (B, g, g)
            for b, truth in enumerate(boxes):
                digit, other = blob_cells(images[b], truth, log_pi.shape[-1])
                self.ranking.append((log_pi[b][digit], log_pi[b][other]))

    def result(self) -> dict:
        """``accuracy`` and ``covered`` (fractions of the images and of the digits, after
        1..steps saccades), ``sigma`` (the σ statistics, None for a model without σ),
        ``crop_side`` (quantiles, None unless kept) and ``inside`` (the fraction of the crop
        centres of steps 1..T inside the image; None for a model without z)."""
        return {
            "accuracy": (self.hits / self.n).tolist(),
            "covered": (self.found / max(self.digits, 1)).tolist(),
            "sigma": self._sigma(),
            "crop_side": self._crop_side(),
            "ranking": self._ranking(),
            "inside": self.inside[0] / self.inside[1] if self.inside[1] else None,
            "first_found": self._first_found(),
        }

    def _first_found(self) -> dict | None:
        """The first step whose crop looked at every ground-truth box of an image: its
        median over the images that got there, and the share of images that never did."""
        if not self.first_found:
            return None
        steps = np.array(self.first_found)
        reached = steps[steps > 0]
        return {
            "median_step": float(np.median(reached)) if len(reached) else None,
            "never": float((steps < 0).mean()),
        }

    def _ranking(self) -> dict | None:
        """How the first step's posterior ranks the cells holding a digit above the cells
        holding only a distractor (a noise stroke, a fragment): the AUROC of log π pooled over
        the images, and the mean of each image's own AUROC. None without distractors."""
        pairs = [(d, o) for d, o in self.ranking if len(d) and len(o)]
        if not pairs:
            return None
        digit, other = np.concatenate([d for d, _ in pairs]), np.concatenate([o for _, o in pairs])
        score = np.concatenate([digit, other])
        pooled = auroc(score, np.arange(len(score)) < len(digit))
        own = [auroc(np.concatenate([d, o]), np.arange(len(d) + len(o)) < len(d)) for d, o in pairs]
        return {
            "auroc": pooled,
            "auroc_per_image": float(np.mean(own)),
            "digit_cells": int(len(digit)),
            "distractor_cells": int(len(other)),
            "images": len(pairs),
        }

    def _sigma(self) -> dict | None:
        if not self.sigmas:
            return None
        values, wrong = np.concatenate(self.sigmas), np.concatenate(self.errors)  # (n, T), (n,)
        per_step = [auroc(values[:, t], wrong) for t in range(self.T)]
        return {
            "median": float(np.median(values)),
            "mean": float(values.mean()),
            "median_per_step": np.median(values, 0).tolist(),
            "mean_per_step": values.mean(0).tolist(),
            "auroc_error_per_step": per_step,
            "auroc_error": per_step[0],
        }

    def _crop_side(self) -> dict | None:
        if not self.sides:
            return None
        side = np.concatenate(self.sides)
        pixels = np.concatenate([p.ravel() for p in self.step_pixels])
        return {
            "min": float(side.min()),
            "p5": float(np.percentile(side, 5)),
            "median": float(np.median(side)),
            "p95": float(np.percentile(side, 95)),
            "max": float(side.max()),
            # the crop sides in the pixels of each image (of a slide: its level-0 pixels),
            # over every crop of every image, and the range of the images' sides
            "median_px": float(np.median(pixels)),
            # per step: the median crop side in pixels over the images (a zoom's chain)
            "median_px_per_step": np.median(np.concatenate(self.step_pixels, 1), 1).tolist(),
            "min_px": float(pixels.min()),
            "max_px": float(pixels.max()),
            "image_side_min": min(self.image_sides),
            "image_side_max": max(self.image_sides),
        }


class _Batch(NamedTuple):
    """B consecutive test samples and what every noise level's pass shares."""

    start: int  # index of the first sample
    indices: range
    samples: list[dict]
    pyramids: list[Pyramid]
    shapes: list[tuple]
    boxes: list[np.ndarray]  # ground-truth boxes per sample ((0, 4) for a folder's photos)
    labels: np.ndarray  # (B,)


def _batches(dataset: GeneratedDataset, n: int, batch_size: int):
    """The first ``n`` samples of ``dataset`` as ``_Batch``es of ``batch_size``."""
    for start in range(0, n, batch_size):
        indices = range(start, min(n, start + batch_size))
        samples = [dataset[i] for i in indices]
        # shared by the noise levels; a folder sample brings its cached levels
        pyramids = [sample_pyramid(s, lazy=True) for s in samples]
        yield _Batch(
            start,
            indices,
            samples,
            pyramids,
            [p.shape for p in pyramids],
            [s.get("boxes", NO_BOXES) for s in samples],  # a folder has none
            np.array([s["label"] for s in samples]),
        )


def _noisy_proxies(dataset: GeneratedDataset, batch: _Batch, level: float) -> np.ndarray:
    """The (B, p, p) or (B, C, p, p) proxies the dataset would give at this noise level
    (same noise stream). A clean sample proxy plus this level's noise is the same, draw for
    draw, and does not read the full image again."""
    return np.stack(
        [
            add_noise(s["proxy"], level, dataset.rng(i, 1))
            if dataset.proxy_noise == 0
            else make_proxy(s["image"], dataset.proxy_size, level, dataset.rng(i, 1))
            for i, s in zip(batch.indices, batch.samples, strict=True)
        ]
    )


def _check_policy(model: torch.nn.Module, policy: str, localisation: bool) -> bool:
    """Whether ``model`` chooses where to look; ValueError for a policy or a localisation it
    cannot take."""
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r}; accepted: {list(POLICIES)}")
    looks = uses_where(model)
    if not looks and (policy != "learnt" or localisation):
        raise ValueError(
            f"model {model.model_name!r} does not choose where to look: no --policy "
            "ablation and no --localisation"
        )
    if policy == "proxy-cells" and not getattr(model.config, "refine_grid", 0):
        raise ValueError(
            "policy='proxy-cells' masks a model's local cells over the last crop; this model "
            "has none (it was trained with --refine-grid 0)"
        )
    return looks


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    n: int = 5000,
    noise_levels: Iterable[float] = DEFAULT_NOISE,
    n_saccades: int | None = None,
    localisation: bool = False,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    sample: bool = False,
    seed: int = 0,
    dataset: GeneratedDataset | None = None,
    progress: bool = False,
    policy: str = "learnt",
    on_clean_pass: Callable[[range, list[dict], object], None] | None = None,
) -> dict:
    """Accuracy (and optionally localisation) after each saccade, at each proxy-noise level.

    Args:
        model: a loaded model (``saccade.load``), any of ``saccade.models``; moved to
            ``device``, left in its mode. For a model that does not choose where to look (the
            ResNet baselines) only the accuracies are measured: ``policy`` must be
            "learnt", ``localisation`` False, and ``sigma`` / ``crop_side`` are None.
        n: evaluate the first n test samples (fewer if the split is shorter).
        noise_levels: proxy-noise stds in [0, 1]; 0 is always added.
        n_saccades: T (default: the model's training T); up to ``config.max_saccades``.
        localisation: also measure how many ground-truth digits the crops cover.
        batch_size: images per forward pass.
        device: "cpu" or "cuda"; the full-resolution images stay on the CPU.
        sample: draw z from the posterior instead of using its mean; reproducible for a
            given ``seed`` and ``batch_size``.
        seed: seeds the posterior draws (the test images and their noise are fixed).
        dataset: evaluate on this dataset instead of the checkpoint's test split; it must
            pose the model's task (``check_dataset``). Its own proxy noise is ignored.
        progress: show a tqdm progress bar on stderr.
        policy: where to look: ``learnt`` (the model's posterior) or an ablation of
            ``saccade.evaluate.policies`` (``brightness``, ``random``, ``oracle``).
        on_clean_pass: called after each batch's no-noise pass with its sample indices, its
            samples and the model's trace (per-image results: ``saccade.evaluate.predictions``).

    Returns:
        A dict as ``saccade.evaluate.cli``'s docstring describes the JSON (without
        ``checkpoint``). Accuracies
        are fractions of n, lists over saccades 1..T.
    """
    c = model.config
    n = _check_count(n, "n")
    batch_size = _check_count(batch_size, "batch_size")
    levels = _check_levels(noise_levels)
    T = check_saccades(c.n_saccades if n_saccades is None else n_saccades, model)
    steps = max(T, c.n_saccades)  # the headline accuracy is at the model's own T
    device = _check_device(device)
    dataset = evaluation_dataset(model) if dataset is None else dataset
    check_dataset(model, dataset)
    n = min(n, len(dataset))
    looks = _check_policy(model, policy, localisation)

    model.to(device)
    was_training = model.training
    model.eval()
    # One generator per level: the no-noise numbers do not depend on the other levels asked.
    generators = {lv: torch.Generator(device=device).manual_seed(int(seed)) for lv in levels}
    tallies = {lv: LevelTally(c, steps, T, localisation, lv == 0.0) for lv in levels}
    start_time = time.perf_counter()
    bar = tqdm(total=n, desc="evaluate", unit="image", disable=not progress, leave=False)
    masked = contextlib.ExitStack()  # with proxy-cells: the local cells masked until the end
    if policy == "proxy-cells":
        masked.enter_context(local_cells_off(model))
    try:
        for batch in _batches(dataset, n, batch_size):
            for level in levels:
                where = None
                if looks:
                    seed_b = seed * 1_000_003 + batch.start
                    where = make_policy(
                        policy, batch.boxes, batch.shapes, **scales_of(c), seed=seed_b
                    )
                trace = model(
                    batch.pyramids,
                    torch.from_numpy(_noisy_proxies(dataset, batch, level)).to(device),
                    steps,
                    sample=sample,
                    generator=generators[level],
                    policy=where,
                )
                # a slide's sample has no image (it is never decoded whole): no ranking
                whole = level == 0.0 and all("image" in s for s in batch.samples)
                images = [s["image"] for s in batch.samples] if whole else None
                tallies[level].update(trace, batch.labels, batch.boxes, batch.shapes, images)
                if on_clean_pass is not None and level == 0.0:
                    on_clean_pass(batch.indices, batch.samples, trace)
            bar.update(len(batch.samples))
    finally:
        bar.close()
        model.train(was_training)
        masked.close()

    per_level = {noise_key(lv): tally.result() for lv, tally in tallies.items()}
    result = _result(model, dataset, per_level, n, T, looks, policy, sample, seed)
    if localisation:
        result["localisation"] = _localisation(per_level, tallies[0.0].digits, c.n_saccades, T)
    result["time_s"] = round(time.perf_counter() - start_time, 3)
    return result


def _result(model, dataset, per_level: dict, n, T, looks, policy, sample, seed) -> dict:
    """The result's keys from ``model`` to ``crop_side`` (``saccade.evaluate.cli``'s
    docstring), from the ``LevelTally.result`` of each level (keyed by ``noise_key``)."""
    c = model.config
    spec = dataset.spec
    accuracy = {key: r["accuracy"] for key, r in per_level.items()}
    sigmas = {key: r["sigma"] for key, r in per_level.items()}
    return {
        "model": model.model_name,
        "policy": policy if looks else None,  # None: the model does not choose where to look
        "dataset": spec.name,
        "task": spec.task,
        "size": spec.side,
        **({"render": spec.render} if hasattr(spec, "render") else {}),  # zoom's renderer
        "variance": getattr(c, "variance", None),
        "n": n,
        "n_saccades": T,
        "model_saccades": c.n_saccades,
        "sample": bool(sample),
        "seed": int(seed),
        "accuracy": accuracy["0.0"][c.n_saccades - 1],
        "per_saccade": accuracy["0.0"][:T],
        "noise": {key: values[:T] for key, values in accuracy.items()},
        # σ of the crop centre (the mean of its x and y σ), per image and step, and how well
        # σ predicts the model's own error after T saccades (AUROC; 0.5 = not at all;
        # ``auroc_error`` takes the first step's σ: how unsure the model is where to look)
        "sigma": None if None in sigmas.values() else sigmas,
        # crop side / image side over all crops at no noise: where the scale ends up
        # (and in µm for a model read at a physical scale: ``report.crop_side_um``)
        "crop_side": crop_side_um(per_level["0.0"]["crop_side"], getattr(spec, "mpp", None)),
        # the fraction of the crop centres (steps 1..T, each noise level) inside the image:
        # with --sample, where the posterior's draws land
        "centres_inside": {key: r["inside"] for key, r in per_level.items()},
    }


def _localisation(per_level: dict, n_digits: int, own_t: int, T: int) -> dict | None:
    """The result's ``localisation``: None when no sample has ground-truth boxes (a folder
    dataset: nothing to measure)."""
    if n_digits == 0:
        return None
    share = {key: r["covered"] for key, r in per_level.items()}
    return {
        "min_overlap": COVER_FRACTION,
        "min_samples": MIN_SAMPLES,
        "digits": n_digits,
        "covered": share["0.0"][own_t - 1],
        "per_saccade": share["0.0"][:T],
        "noise": {key: values[:T] for key, values in share.items()},
        # the first step's cell choice: digits against distractors (``blob_cells``)
        "ranking": per_level["0.0"]["ranking"],
        # the first step whose crop looked at every box of an image (median; the share never)
        "first_found": per_level["0.0"]["first_found"],
    }
