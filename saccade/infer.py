"""Inference: ``predict(model, image)`` runs the saccades on one image and returns what the
app, the CLIs and the tests need to show or check.

A checkpoint trained on slides at a physical scale (``--mpp``: its dataset spec records
``mpp`` and ``canvas_um``) reads every slide at that scale, whatever its own magnification;
one trained for dark-on-bright images (``--invert``: ``invert`` in the spec) reads every input
as its negative, as in training (``reading_of``)."""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .data import DATASETS, dataset_from_spec
from .data.proxy import check_noise, make_proxy
from .data.slide import Slide, open_if_slide
from .data.slide_meta import check_mpp
from .data.slide_pyramid import SlidePyramid
from .data.zoom import ZoomCanvas
from .glimpse import Pyramid, scales_of, z_to_box
from .image_io import downscale, read_image, to_model_image
from .models.vs import VariationalSaccader, canvas_layout, for_canvas, share_fits

#: the warning of an array (or untiled image) predicted by a checkpoint of a physical scale
NO_SCALE = (
    "the image has no physical scale (an array or an untiled image records none here), so a "
    "checkpoint trained at {model:g} µm per pixel reads it in its own pixels: give its scale "
    "with predict(..., mpp=µm per pixel), or write it as a slide with "
    "saccade.data.slide.write_slide(path, image, mpp=...)"
)

#: zooms are downscaled to at most this many pixels a side
ZOOM_MAX_SIDE = 512
#: a slide's ``Prediction.image`` is its thumbnail, at most this many pixels a side
THUMBNAIL_SIDE = 1024


@dataclass
class Prediction:
    """One image's saccades. T = number of saccades, k = crop side, S = image side."""

    probs: np.ndarray  # (T, n_classes) float32, class probabilities after each saccade
    label: int  # argmax of probs[-1]
    class_names: list[str]
    # The rest is None for a model that does not choose where to look (a ResNet baseline).
    mu: np.ndarray | None  # (T, 3) posterior mode of (scale, x, y): μ_s, best cell + offset
    sigma: np.ndarray | None  # (T, 3) posterior std: σ_s, and the std of x and y
    z: np.ndarray | None  # (T, 3) the z each crop used: mu, or a posterior sample
    cell_probs: np.ndarray | None  # (T, g, g) the posterior's probability of each proxy cell
    # (T, 3) the σ the variance mode fixes or learns: σ_s and the chosen cell's offset σ of
    # (x, y) (all fixed_sigma in fixed mode); ``sigma`` is the whole mixture's spread
    offset_sigma: np.ndarray | None
    cell_entropy: np.ndarray | None  # (T,) entropy of the cell choice, nats (0: one cell)
    boxes: np.ndarray | None  # (T, 4) x0, y0, x1, y1 in full-resolution pixels of ``image``
    # (T, k, k) float32 in [0, 1]: what the network saw; (T, C, k, k) for a colour model
    crops: np.ndarray | None
    zooms: list[np.ndarray] | None  # T uint8 full-resolution regions (<= ZOOM_MAX_SIDE a side)
    # the proxy used (noise included), float32 in [0, 1]: (p, p), or (C, p, p) for colour
    proxy: np.ndarray
    # (S, S) uint8, or (S, S, C) for colour: the input after conversion; for a slide, its
    # thumbnail (at most THUMBNAIL_SIDE a side, the slide's aspect, not squared)
    image: np.ndarray
    # (H, W) of what ``boxes`` are pixels of: the square input, or the slide's level 0
    image_shape: tuple[int, int] | None = None
    image_scale: float = 1.0  # pixels of ``image`` per pixel of ``boxes`` (< 1: a thumbnail)
    slide: str | None = None  # the slide's path, when predicted from a slide
    # (x0, y0, x1, y1) of the square the model saw, in the pixels of ``boxes``: z's x, y in
    # [-1, 1] and the proxy's cells span it; (0, 0, S, S) for an array, and for a slide its
    # virtual square (the slide centred in it: negative x0 or y0 where it is padded)
    square: tuple[float, float, float, float] | None = None
    # µm per pixel of ``boxes``: a slide's level 0 as read (its recorded MPP, or the
    # checkpoint's default_mpp), where known; for an array, the ``mpp`` given to predict (the
    # checkpoint's, when it read the array at its scale), else None
    mpp: float | None = None

    @property
    def class_name(self) -> str:
        return self.class_names[self.label]


def zoom(image: np.ndarray, box: np.ndarray, max_side: int = ZOOM_MAX_SIDE) -> np.ndarray:
    """The full-resolution region of ``box`` (x0, y0, x1, y1), clipped to the image and
    area-downscaled to at most ``max_side`` pixels a side; at least 1x1."""
    h, w = image.shape[:2]
    x0, y0 = (int(np.clip(np.floor(v), 0, n - 1)) for v, n in zip(box[:2], (w, h), strict=True))
    x1, y1 = (int(np.clip(np.ceil(v), 1, n)) for v, n in zip(box[2:], (w, h), strict=True))
    region = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    return np.ascontiguousarray(downscale(region, max_side))


#: how a checkpoint's dataset spec says a slide is read (``SlidePyramid``'s arguments)
READING_KEYS = ("mpp", "canvas_um", "default_mpp", "invert")


def reading_of(model: torch.nn.Module, invert: bool = False) -> dict:
    """How ``model`` reads a slide: {"mpp", "canvas_um", "default_mpp", "invert"} from its
    dataset spec (None / False where it records none: a slide's own pixels, as is), the
    ``invert`` asked for on top (two inversions cancel)."""
    spec = getattr(model.config, "dataset", None) or {}
    reading = {k: spec.get(k) for k in READING_KEYS}
    reading["invert"] = bool(reading["invert"]) != bool(invert)
    return reading


def open_slide(image, channels: int, cache_dir=None, reading: dict | None = None):
    """``image`` as the ``SlidePyramid`` of the model's ``channels`` when it is a slide (a
    ``SlidePyramid``, a ``Slide``, or the path of a tiled TIFF or of a file OpenSlide reads:
    ``saccade.data.slide.is_slide``), read as ``reading`` says (``reading_of``: the physical
    scale and the inversion; default: as is); None for anything else (an array, a PIL image,
    the path of an untiled image, decoded whole as before). A ``SlidePyramid`` already read so
    is used as it is (its tile cache and thumbnail kept)."""
    reading = {k: v for k, v in (reading or {}).items() if v is not None}
    reading.setdefault("invert", False)
    if isinstance(image, SlidePyramid):
        same = all(getattr(image, k) == reading.get(k) for k in READING_KEYS if k != "invert")
        if image.channels == channels and same and image.invert == reading["invert"]:
            return image
        return SlidePyramid(image.slide, channels, image.cache_dir, fill=image.fill, **reading)
    if isinstance(image, (str, os.PathLike)):
        image = open_if_slide(image)  # None: an ordinary image file, decoded whole
    if isinstance(image, Slide):
        return SlidePyramid(image, channels, cache_dir, **reading)
    return None


def model_input(image, channels: int, invert: bool = False) -> np.ndarray:
    """``to_model_image``, or with ``invert`` the negative of the image padded black to its
    square (as the folder dataset of an ``--invert`` run reads it: inverted, then padded)."""
    if not invert:
        return to_model_image(image, channels)
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, channels)  # decoded once; its shape gives the pad
    h, w = np.asarray(image).shape[:2]
    square = 255 - to_model_image(image, channels)
    s = square.shape[0]
    y, x = (s - h) // 2, (s - w) // 2
    pad = np.ones((s, s), bool)
    pad[y : y + h, x : x + w] = False
    square[pad] = 0
    return square


def at_scale(square: np.ndarray, mpp: float, reading: dict) -> np.ndarray:
    """An array's model input (``model_input``: (S, S[, C]) uint8 at ``mpp`` µm per pixel)
    on the canvas a checkpoint trained at a physical scale reads (``reading_of``: ``mpp`` M
    and ``canvas_um``): resampled by ``mpp`` / M as a slide's windows are (the area average
    where it shrinks, linear where it grows: ``SlidePyramid``), centred on a canvas of
    ``canvas_um`` / M pixels (its parts outside cut, the rest black, as an array's pad is):
    (N, N[, C]) uint8. The array is whole in memory already, so it is resampled once here
    rather than window by window; the copy is at most the trained canvas."""
    target = float(reading["mpp"])
    factor = mpp / target  # the canvas's pixels per pixel of the array
    s = square.shape[0]
    canvas = reading.get("canvas_um")
    n = max(1, round(float(canvas) / target)) if canvas else max(1, round(s * factor))
    # the part of the square the canvas holds (all of it when the canvas is larger)
    keep = min(s, math.ceil(n / factor) + 2)
    start = (s - keep) // 2
    part = square[start : start + keep, start : start + keep]
    side = max(1, round(keep * factor))
    how = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(part, (side, side), interpolation=how)
    out = np.zeros((n, n, *square.shape[2:]), np.uint8)
    # centred: the array's centre on the canvas's, within a pixel
    off = (n - side) // 2
    src0, dst0 = max(0, -off), max(0, off)
    length = min(side - src0, n - dst0)
    out[dst0 : dst0 + length, dst0 : dst0 + length] = resized[
        src0 : src0 + length, src0 : src0 + length
    ]
    return out


def check_saccades(n_saccades, model: torch.nn.Module) -> int:
    """``n_saccades`` as an int in [1, ``config.max_saccades``]; ValueError naming it if not."""
    top = model.config.max_saccades
    if isinstance(n_saccades, bool) or not isinstance(n_saccades, (int, np.integer)):
        raise ValueError(f"n_saccades={n_saccades!r} must be an integer in [1, {top}]")
    if not 1 <= int(n_saccades) <= top:
        raise ValueError(f"n_saccades={n_saccades!r} must be in [1, {top}]")
    return int(n_saccades)


def check_seed(seed) -> int:
    """``seed`` as an int in [0, 2**63); an integral float (a UI's number) is accepted."""
    try:
        value = int(seed)
        ok = not isinstance(seed, bool) and value == seed and 0 <= value < 2**63
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"seed={seed!r} must be an integer in [0, 2**63)")
    return value


def at_side(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.nn.Module:
    """``model`` for an image of ``shape`` (H, W, ...): a zoom-benchmark model (its dataset
    "zoom") on a canvas of another side meets it as ``evaluate --canvas`` does, through
    ``for_canvas(model, side, "share")``: the same proxy and cells, its crops kept in pixels
    (the cues and digits are pixels at every side). Any other model, the trained side, or a
    side too small for its largest crop: ``model`` itself (crops a share of the side)."""
    spec = getattr(model.config, "dataset", None) or {}
    side, trained = max(int(v) for v in shape[:2]), int(spec.get("size") or 0)
    if spec.get("name") != "zoom" or side == trained or not isinstance(model, VariationalSaccader):
        return model
    if not share_fits(model.config, side):
        return model
    return for_canvas(model, side, canvas_layout(spec))


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    image,
    n_saccades: int | None = None,
    proxy_noise: float = 0.0,
    seed: int = 0,
    sample: bool = False,
    slide_cache_dir: str | os.PathLike | None | bool = None,
    invert: bool = False,
    mpp: float | None = None,
) -> Prediction:
    """Run the model's saccades on one image.

    Args:
        model: a loaded model (``saccade.load``), any of ``saccade.models``.
        image: (H, W) / (H, W, C) array of any integer, bool or float dtype, a PIL image, or a
            path to an image file; converted to a square uint8 image of the model's channels
            as in training (``saccade.image_io.to_model_image``: grayscale, or RGB for a
            colour checkpoint, ``config.channels`` = 3). A slide (the path of a tiled TIFF,
            SVS, OME-TIFF, or of a file OpenSlide reads, or a ``Slide``/``SlidePyramid``) is
            never decoded whole: the proxy comes from its coarsest level at least the proxy's
            side, the crops from the tiles under them, ``boxes`` are in its level-0 pixels,
            ``zooms`` are read at a level of at most ZOOM_MAX_SIDE pixels a side, and
            ``image`` is its thumbnail (``saccade.data.slide_pyramid``).
        n_saccades: T (default: the model's training T); up to ``config.max_saccades``.
        proxy_noise: std of Gaussian proxy noise as a fraction of the intensity range, [0, 1].
        seed: seeds the proxy noise and, with ``sample``, the posterior draws; [0, 2**63).
        sample: draw z from the posterior instead of using its mode.
        slide_cache_dir: where coarse levels made for a slide without a pyramid are cached
            (default ``saccade.data.slide_pyramid.default_cache_dir()``; False: not cached).
        invert: run on the negative (255 - pixels): a dark-on-bright image for a model of
            bright ink on black; on a slide, every read is inverted (no copy is made). A
            checkpoint trained with ``--invert`` inverts its inputs itself; ``invert`` then
            undoes it.
        mpp: µm per pixel of an array, a PIL image or an untiled image file, which record no
            physical scale here (``Prediction.mpp`` then gives it); for a slide, its scale
            where its file records none (in place of the checkpoint's ``default_mpp``; a
            scale the file records is used). (0, 100]; ValueError otherwise.

    A zoom-benchmark checkpoint on a canvas of another side keeps its crops in pixels
    (``at_side``), as ``python -m saccade.evaluate --canvas`` does.

    A checkpoint trained at a physical scale (``--mpp``) reads a slide at its µm per pixel
    (``reading_of``); a slide that records no scale is then a ValueError unless the checkpoint
    has a ``default_mpp`` (or ``mpp`` is given). An array (or untiled image) given with
    ``mpp`` is read at the checkpoint's scale too (``at_scale``: resampled onto its canvas;
    ``image``, ``boxes`` and ``square`` are then of that canvas, ``Prediction.mpp`` the
    checkpoint's). Without ``mpp`` it is read in its own pixels, as before, with a
    ``UserWarning`` saying it has no physical scale: a warning, not an error, because an
    array already at the checkpoint's scale (a tile cut at its µm per pixel) is right as it
    is, and an upload in the app still runs (``input_warnings`` says it there).

    Raises ValueError naming the argument and what is accepted for a bad ``n_saccades``,
    ``proxy_noise`` (NaN included) or ``seed``, and for an image that cannot be used (NaN or
    infinite values, too small or too large, an unreadable file: ``saccade.image_io``).
    """
    c = model.config
    T = check_saccades(c.n_saccades if n_saccades is None else n_saccades, model)
    noise = check_noise(proxy_noise)
    seed = check_seed(seed)
    source = _open_input(model, image, slide_cache_dir, invert, mpp)
    model = at_side(model, source.pyramid.shape)
    c = model.config
    proxy = source.proxy(c.proxy_size, noise, seed)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        trace = model(
            [source.pyramid],
            torch.from_numpy(proxy)[None].to(device),
            T,
            sample=sample,
            generator=generator,
        )
    finally:
        model.train(was_training)
    probs = torch.softmax(trace.logits[:, 0].float(), -1).cpu().numpy()

    def first(name: str) -> np.ndarray | None:  # the one image's (T, ...) array, if any
        value = getattr(trace, name, None)
        return None if value is None else value[:, 0].float().cpu().numpy()

    z = first("z")
    boxes = None if z is None else z_to_box(z, source.pyramid.shape, **scales_of(c))
    view = source.view(boxes)
    return Prediction(
        probs=probs,
        label=int(probs[-1].argmax()),
        class_names=list(c.class_names),
        mu=first("mu"),
        sigma=first("sigma"),
        z=z,
        cell_probs=first("cell_probs"),
        offset_sigma=first("offset_sigma"),
        cell_entropy=first("cell_entropy"),
        boxes=view["boxes"],
        crops=first("crops"),
        zooms=view["zooms"],
        proxy=proxy,
        image=view["shown"],
        image_shape=tuple(int(v) for v in view["shape"]),
        image_scale=view["scale"],
        slide=view["path"],
        square=view["square"],
        mpp=view["mpp"],
    )


@dataclass
class _Input:
    """What ``predict`` reads: an in-memory image (``img``, its lazy ``Pyramid``), a slide
    (``SlidePyramid``) or a procedural canvas (``ZoomCanvas``), and the µm per pixel it is read
    at (an array's, given)."""

    pyramid: object
    img: np.ndarray | None = None
    slide: SlidePyramid | None = None
    canvas: ZoomCanvas | None = None
    mpp: float | None = None

    def proxy(self, side: int, noise: float, seed: int) -> np.ndarray:
        """The (side, side) proxy (``make_proxy``, or the slide's or canvas's own)."""
        rng = np.random.default_rng(seed)
        if self.img is not None:
            return make_proxy(self.img, side, noise, rng)
        return self.pyramid.proxy(side, noise, rng)

    def view(self, boxes: np.ndarray | None) -> dict:
        """What the prediction shows of ``boxes`` (T, 4) in the pyramid's pixels: the boxes
        in the image's pixels, their zooms, the image shown (a slide's or canvas's
        thumbnail), its level-0 shape and scale, the slide's path, the square read and the
        µm per pixel."""
        if self.img is not None:
            img = self.img
            return {
                "boxes": boxes,
                "zooms": None if boxes is None else [zoom(img, b) for b in boxes],
                "shown": img,
                "shape": img.shape[:2],
                "scale": 1.0,
                "path": None,
                "square": (0.0, 0.0, float(img.shape[1]), float(img.shape[0])),
                "mpp": self.mpp,
            }
        if self.slide is not None:  # level-0 boxes, zooms, thumbnail: one read
            read = self.slide.read_boxes(boxes, ZOOM_MAX_SIDE, THUMBNAIL_SIDE)
            return {
                "boxes": read.boxes,
                "zooms": read.zooms,
                "shown": read.thumbnail,
                "shape": read.image_shape,
                "scale": read.thumbnail.shape[1] / read.image_shape[1],
                "path": read.path,
                "square": read.square,
                "mpp": read.mpp,
            }
        canvas = self.canvas  # read where it lies (its square's offset)
        (ox, oy), side = canvas.offset, float(canvas.shape[0])
        shown = canvas.thumbnail(THUMBNAIL_SIDE)
        return {
            "boxes": boxes,
            "zooms": None if boxes is None else [canvas.read_box(b, ZOOM_MAX_SIDE) for b in boxes],
            "shown": shown,
            "shape": canvas.image_shape,
            "scale": shown.shape[1] / canvas.image_shape[1],
            "path": None,
            "square": (-float(ox), -float(oy), side - ox, side - oy),
            "mpp": None,
        }


def _open_input(model, image, slide_cache_dir, invert: bool, mpp: float | None) -> _Input:
    """``predict``'s ``image`` opened as the model reads it (``predict``'s docstring)."""
    if isinstance(image, ZoomCanvas):  # rendered where it is read, like a slide
        return _Input(pyramid=image, canvas=image)
    reading = reading_of(model, invert)
    given_mpp = None if mpp is None else check_mpp(mpp, "mpp")
    slide_options = reading if given_mpp is None else reading | {"default_mpp": given_mpp}
    channels = getattr(model.config, "channels", 1)
    slide = open_slide(image, channels, slide_cache_dir, slide_options)
    if slide is not None:
        return _Input(pyramid=slide, slide=slide)
    img = model_input(image, channels, reading["invert"])
    if reading["mpp"] is not None and given_mpp is None:
        warnings.warn(NO_SCALE.format(model=reading["mpp"]), UserWarning, stacklevel=4)
    elif reading["mpp"] is not None:
        img = at_scale(img, given_mpp, reading)
        given_mpp = float(reading["mpp"])  # µm per pixel of the canvas read
    return _Input(pyramid=Pyramid(img, lazy=True), img=img, mpp=given_mpp)


#: generated samples whose proxies set the range an input's proxy brightness is checked against
REFERENCE_SAMPLES = 32


@functools.lru_cache(maxsize=16)
def _reference_brightness(spec_items: tuple) -> tuple[float, float]:
    """(lowest, highest) mean proxy brightness of REFERENCE_SAMPLES test samples of the
    dataset a checkpoint was trained on (its ``config.dataset``), without noise."""
    spec = dict(spec_items)
    spec.update(split="test", length=REFERENCE_SAMPLES, proxy_noise=0.0)
    data = dataset_from_spec(spec)
    means = [float(data[i]["proxy"].mean()) for i in range(len(data))]
    return min(means), max(means)


def _zoom_side_note(side: int, trained: int) -> str:
    """``input_warnings``' sentence for a zoom model on a canvas of another side."""
    return (
        f"The canvas is {side:,}² and the checkpoint was trained on {trained:,}² canvases: "
        "its crops keep their sides in pixels (saccade.predict's at_side), but its search "
        "was learnt at its own side and is less accurate at others (docs/results.md)."
    )


def input_warnings(
    model: torch.nn.Module,
    image: np.ndarray,
    dataset: dict | None = None,
    shape: tuple[int, int] | None = None,
    mpp: float | None = None,
) -> list[str]:
    """Ways in which ``image`` is unlike what the checkpoint was trained on; [] when none.

    Args:
        model: a loaded model; ``model.config.dataset`` is its training data's spec.
        image: (S, S) uint8, the model's input (``to_model_image``).
        dataset: the spec of the dataset the image comes from, where known (a generated
            example's sidecar): a name or task unlike the checkpoint's is reported.
        shape: (H, W) of the full-resolution input where ``image`` is smaller (a slide's
            thumbnail: ``Prediction.image_shape``); default ``image``'s own.
        mpp: µm per pixel of ``shape`` (``Prediction.mpp``), where known; None for a
            checkpoint of a physical scale says the image had none (an array read as is).

    Checks, each a sentence the app shows: the dataset and task; the canvas side (for an
    example) or the image side (for an upload) against the training one, more than 10% apart
    (crops are fractions of the side, so they then cover another share of the objects); and
    the proxy's mean brightness against the range of REFERENCE_SAMPLES generated training
    proxies (outside half the lowest .. twice the highest: a photo, not digits on black). A
    checkpoint trained at a physical scale (``mpp`` in its spec) reads every slide on its
    canvas, so the side in pixels does not matter: a slide larger than the canvas (by more
    than 10%, in µm) is reported instead, its parts outside it unseen, and an image without
    a physical scale (``mpp`` None) is reported as read in its own pixels.
    """
    spec = model.config.dataset or {}
    out = []
    if not spec:
        return ["The checkpoint does not record its training data: nothing can be checked."]
    trained = f"{spec.get('name')}/{spec.get('task')}"
    if dataset is not None:
        given = f"{dataset.get('name')}/{dataset.get('task')}"
        if given != trained:
            out.append(
                f"This image is from {given}, but the checkpoint was trained on {trained}: "
                "its answer is about another task."
            )
    if dataset is not None and dataset.get("size") and spec.get("size"):
        # a generated example: its canvas side sets the digits' share of the image (an
        # upsampled canvas keeps it)
        size, trained_size = int(dataset["size"]), int(spec["size"])
        if spec.get("name") == "zoom" and size != trained_size:
            out.append(_zoom_side_note(size, trained_size))
        elif not 0.9 <= size / trained_size <= 1.1:
            out.append(
                f"Its digits are drawn on a {size}² canvas; the checkpoint was trained on "
                f"{trained_size}² canvases: crops are fractions of the image side, so a digit "
                f"fills {trained_size / size:.2g}× the share of a crop it did in training."
            )
    elif spec.get("mpp") is not None:
        if mpp is None:  # an array or untiled image predicted without predict's mpp=
            out.append(
                f"The image records no physical scale; the checkpoint reads slides at "
                f"{spec['mpp']:g} µm per pixel, so it read this one in its own pixels: its "
                "answer holds only if the image is at that scale. Write it as a slide with "
                "its scale (saccade.data.slide.write_slide(path, image, mpp=...)), or give "
                "it with saccade.predict(..., mpp=...)."
            )
        if mpp is not None and shape is not None and spec.get("canvas_um"):
            extent, canvas = max(shape) * float(mpp), float(spec["canvas_um"])
            if extent > 1.1 * canvas:
                out.append(
                    f"The slide is {extent:,.0f} µm a side; the checkpoint reads slides on a "
                    f"canvas of {canvas:,.0f} µm (at {spec['mpp']:g} µm per pixel): its parts "
                    "outside the centred canvas are not seen."
                )
    elif spec.get("side"):
        # a folder's spec records the range of its training inputs' sides (slides keep
        # their own); other specs one side
        h, w = shape or image.shape[:2]
        side = max(h, w)
        lo, hi = (int(v) for v in spec.get("side_range") or (spec["side"], spec["side"]))
        if spec.get("name") == "zoom" and side != int(spec.get("size") or side):
            out.append(_zoom_side_note(side, int(spec["size"])))
        elif not 0.9 * lo <= side <= 1.1 * hi:
            trained = f"{lo}²" if lo == hi else f"{lo}² to {hi}²"
            nearest = lo if side < lo else hi
            out.append(
                f"The image is {w}×{h}; the checkpoint was trained on {trained} images. Crops "
                "are fractions of the image side: an object as many pixels wide as in training "
                f"fills {nearest / side:.2g}× the share of a crop it did there."
            )
    if spec.get("name") in DATASETS and spec.get("name") != "folder":  # generated data only
        lo, hi = _reference_brightness(tuple(sorted(spec.items())))
        mean = float(make_proxy(image, model.config.proxy_size).mean())
        if not lo / 2 <= mean <= 2 * hi:
            out.append(
                f"The proxy's mean brightness is {mean:.3f}; {trained} proxies have "
                f"{lo:.3f}–{hi:.3f}: this image is unlike the training data (e.g. a photo, "
                "or dark digits on a light ground), and the prediction means little."
            )
    return out
