"""The app's shared state and the logic under every tab, with no layout: where checkpoints,
examples and trained runs live, the caches, a browser session's own folder, refusals, and
``Look``, what Explore and Compare run.

One ``State`` per app; every tab object (``saccade.app.explore.ExploreTab``, ...) holds it by
reference (``tab.state``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np

import saccade

from .. import checkpoint as ckpt
from .. import image_io, viz
from ..data import browse
from ..data.zoom import DEFAULT_RENDER

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
CHECKPOINTS = ROOT / "checkpoints"
#: where the Train tab writes: one subfolder per browser session, never ``checkpoints/``
RUNS = Path(os.environ.get("SACCADE_RUNS_DIR", ROOT / "app-runs"))
#: caps on the app-trained checkpoints of all sessions together; the oldest go first
MAX_RUNS = 20
MAX_RUNS_MB = 300
#: TrainConfig fields the Train tab fixes: a quick evaluation, no data-loader processes
TRAIN_OPTIONS = {"val_n": 500, "test_n": 1000, "log_every": 10, "workers": 0}
#: example images shown first, in this order, with their labels (others in assets/ follow)
EXAMPLE_LABELS = {
    "cluttered-sum-100-0": "cluttered 100², sum of 2 digits",
    "cluttered-single-100-0": "cluttered 100², 1 digit",
    "cluttered-sum-2528-0": "cluttered upsampled to 2528², sum",
    "megapixel-majority-1500-0": "Megapixel 1500², majority",
    "folder-marks-4096-0": "colour marks 4096², blue",
    "folder-marks-4096-1": "colour marks 4096², green",
    "zoom-32768-0": "zoom 32,768²",
}
#: the example slide of the zoom benchmark ``write_zoom_example`` writes (side, test index)
ZOOM_EXAMPLE = (32768, 0)
#: a prediction on an image of at least this side (or on a slide) also gets the crop chain
#: drawn nested (``viz.zoom_chain_figure``): its crops are too small for the trajectory
CHAIN_MIN_SIDE = 4096
MAX_SACCADES = 16
#: the caption of Explore's server listing (``State.server_info`` adds what was refused)
SERVER_INFO = (
    "The server's own slides and images, width × height in level-0 pixels; a choice runs at once."
)
#: the tile cache of each server slide the app keeps open (``--images``; 4 at most)
SLIDE_TILE_BYTES = 64 * 2**20

LOG = logging.getLogger("saccade.app")


def twin_name(name: str) -> str:
    """The name of ``name``'s twin of the other variance mode: "zoom-ring-learnt" ->
    "zoom-ring-fixed", "cluttered-id-fixed-2528" -> "cluttered-id-learnt-2528"."""
    swap = {"learnt": "fixed", "fixed": "learnt"}
    return "-".join(swap.get(part, part) for part in name.split("-"))


# ----------------------------------------------------------------------------- caches
# Keyed by path and modification time, so a replaced file is read again.


@functools.lru_cache(maxsize=8)
def _load_model(path: str, mtime: float):
    return saccade.load(path)


@functools.lru_cache(maxsize=4)  # an accepted image can be 16384² (268 MB): keep few
def _load_image(path: str, mtime: float, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(model input (S, S) uint8, or (S, S, 3) for a colour checkpoint, its downscaled
    browser background) of an image file."""
    image = image_io.to_model_image(path, channels)
    image.setflags(write=False)
    return image, viz.downscale(image)


@functools.lru_cache(maxsize=4)
def _open_slide(path: str, mtime: float, channels: int, reading: tuple = ()):
    """A server slide's ``SlidePyramid`` in ``channels``, read as ``reading`` says (the
    items of ``saccade.infer.reading_of``: a checkpoint's physical scale, and the inversion),
    kept between requests (its tile cache, at most SLIDE_TILE_BYTES, and its thumbnail with
    it); a changed file is opened again (the key's mtime)."""
    from ..data.slide import Slide
    from ..data.slide_pyramid import SlidePyramid

    given = {k: v for k, v in reading if v is not None}
    return SlidePyramid(Slide(path, cache_bytes=SLIDE_TILE_BYTES), channels, **given)


@functools.lru_cache(maxsize=4)
def _tissue_view(path: str, mtime: float) -> tuple[np.ndarray, float]:
    """(the thumbnail with its tissue mask tinted over it, the mask's share of the slide) of a
    server slide (``saccade.data.tissue``), kept between requests."""
    from ..data import tissue

    thumbnail, mask = tissue.slide_tissue(_open_slide(path, mtime, 3), 1024)
    return tissue.overlay(thumbnail, mask), float(mask.mean())


def slide_reading(model, invert: bool = False) -> tuple:
    """How the app opens a slide for ``model`` with the Invert box ``invert``:
    ``saccade.infer.reading_of`` as a hashable tuple (``_open_slide``'s key)."""
    return tuple(sorted(saccade.infer.reading_of(model, invert).items()))


@functools.lru_cache(maxsize=4)
def _sidecar_index(folder: str, mtime: float) -> dict:
    return image_io.sidecar_index(folder)


@functools.lru_cache(maxsize=64)
def _find_truth(path: str, mtime: float, folder: str, folder_mtime: float) -> dict | None:
    return image_io.find_sidecar(path, _sidecar_index(folder, folder_mtime))


@functools.lru_cache(maxsize=64)
def _unusable(folder: str, signature: tuple) -> tuple[tuple[str, str], ...]:
    """``checkpoint.unusable_checkpoints`` of a folder, cached by its files' names, sizes and
    times (``_signature``): each checkpoint is loaded once per change, not per request. The
    reasons name the files by folder and file name, not by the server's absolute path."""
    return tuple(
        (name, reason.replace(str(Path(folder)) + os.sep, Path(folder).name + "/"))
        for name, reason in ckpt.unusable_checkpoints(folder)
    )


def _signature(folder: Path) -> tuple:
    """(name, size, mtime) of a folder's checkpoint files: what ``_unusable`` is keyed by."""
    out = []
    try:
        for f in folder.iterdir():
            if f.suffix in (".json", ".safetensors"):
                st = f.stat()
                out.append((f.name, st.st_size, st.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(out))


def _mtime(path: str | Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _checkpoint_mtime(path: str) -> float:
    """Newest modification time of a checkpoint's files (NAME.safetensors, NAME.json)."""
    base = Path(path)
    stem = base.with_suffix("") if base.suffix in (".json", ".safetensors") else base
    return max(_mtime(f"{stem}.safetensors"), _mtime(f"{stem}.json"), _mtime(base))


# ----------------------------------------------------------------------------- helpers


def trained_on(config) -> str:
    """What a checkpoint was trained on, e.g. "megapixel/majority 1500², proxy 180²"."""
    spec = config.dataset or {}
    if not spec:
        return "unrecorded data"
    side = spec.get("side", spec.get("size"))
    up = f" (a {spec['size']}² canvas upsampled)" if side != spec.get("size") else ""
    return f"{spec.get('name')}/{spec.get('task')} {side}²{up}, proxy {config.proxy_size}²"


def refused(message: str) -> gr.Error:
    """The error a user's request gets: shown to the user, and one line in the server's log
    (``refused: ...``), not a traceback."""
    LOG.warning("refused: %s", message)
    return gr.Error(message, print_exception=False)


def saccade_count(value):
    """The app's saccade count for ``saccade.predict``: None (the model's own T) for 0 or
    nothing, an int for an integral number (a slider sends 4.0); anything else unchanged, for
    ``predict`` to refuse with its message."""
    if value is None or (isinstance(value, (int, float)) and value == 0):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def os_reason(e: OSError) -> str:
    """A file-system error in words, without the server's paths: "No space left on device"."""
    return e.strerror or type(e).__name__


def session_id(request) -> str:
    """The folder name of a browser session: Gradio's session hash, letters and digits only
    (an API call without a session is "anonymous")."""
    return session_name(getattr(request, "session_hash", None))


def session_name(raw) -> str:
    """``raw`` (a session hash) as a folder name: letters and digits only, at most 64;
    "anonymous" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9]", "", str(raw or ""))[:64] or "anonymous"


def write_zoom_example(
    folder: str | Path = ASSETS,
    side: int = ZOOM_EXAMPLE[0],
    index: int = ZOOM_EXAMPLE[1],
    render: str = DEFAULT_RENDER,
) -> Path:
    """Write test canvas ``index`` of ``make_dataset("zoom", split="test", size=side,
    render=render)`` as the pyramidal TIFF ``folder/zoom-SIDE-INDEX.tif`` (``saccade.data.zoom.write_zoom_tiff``,
    zstd: 0.4 MB at 32,768², mostly black tiles) and its JSON sidecar (the dataset's spec and
    index, the label, ``boxes``: the deciding digit's, ``cue_boxes`` and ``region_boxes``, in
    level-0 pixels), which Explore and Compare offer as an example. Returns the TIFF's path."""
    from ..data.zoom import write_zoom_tiff

    ds = saccade.make_dataset("zoom", split="test", size=side, render=render)
    canvas, ann = ds.canvas(int(index))
    folder = Path(folder)
    path = write_zoom_tiff(canvas, folder / f"zoom-{side}-{index}.tif", compression="zstd")
    meta = {
        "dataset": ds.spec.to_dict() | {"index": int(index)},
        "label": int(ann["label"]),
        "class_name": ds.class_names[int(ann["label"])],
        "digits": [int(ann["label"])],
        **{k: np.asarray(ann[k]).tolist() for k in ("boxes", "cue_boxes", "region_boxes")},
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return path


@dataclasses.dataclass(frozen=True)
class Look:
    """One request of Explore or Compare: the image, the checkpoint, the prediction settings
    and the browser session, as the tab's inputs send them (``State.run`` checks them).

    Attributes:
        image: an uploaded file's or an example's path; empty: the server image ``server``.
        checkpoint: a listed checkpoint's name; None: the best for the image (Compare runs
            its learnt and fixed checkpoints through ``with_checkpoint``).
        proxy_noise: the proxy noise's std, a fraction of the intensity range.
        n_saccades: None or 0: the model's own T.
        seed: the seed of the proxy noise and of a posterior sample.
        posterior: "mean" crops at the posterior mode, "sample" at a sample of q.
        invert: run on the negative (255 - pixels).
        server: the name of a server image under ``--images DIR`` (Explore).
        session: the browser session's folder name (``session_name`` makes it one).
    """

    image: str | None = None
    checkpoint: str | None = None
    proxy_noise: float | None = 0.0
    n_saccades: float | None = None
    seed: float | None = 0
    posterior: str | None = "mean"
    invert: bool = False
    server: str | None = None
    session: str = "anonymous"

    def __post_init__(self):
        object.__setattr__(self, "session", session_name(self.session))

    @property
    def uses_server(self) -> bool:
        """Whether the request reads the server image ``server`` (no ``image`` given)."""
        return (self.image is None or self.image == "") and bool(self.server)

    def with_checkpoint(self, name: str | None) -> Look:
        """The same request through the checkpoint ``name``."""
        return dataclasses.replace(self, checkpoint=name)


def offset_sigma(out, config) -> np.ndarray | None:
    """(T, 2) the σ of the crop centre's offset (x, y) inside the chosen cell: from
    ``out.offset_sigma`` ((T, 3): σ of the scale, then the offset's x, y) where
    ``saccade.predict`` reports it, else, in fixed mode, the constant the checkpoint fixes
    (``config.fixed_sigma``); None when neither is known."""
    found = getattr(out, "offset_sigma", None)
    if found is not None:
        found = np.asarray(found, dtype=np.float64)
        return found.reshape(len(found), -1)[:, -2:]
    if config is not None and getattr(config, "variance", None) == "fixed":
        return np.full((len(out.sigma), 2), float(config.fixed_sigma))
    return None


def result_figures(
    out,
    background,
    truth,
    variance,
    title_prefix="",
    sigma_max=None,
    height=540,
    model_config=None,
) -> dict:
    """The trajectory and σ figures of one ``saccade.predict`` output (Explore, Compare);
    ``height``: the trajectory's, in pixels (the image panel is square and 0.62 of the
    width: a plot taller than that leaves a blank band above the Play controls)."""
    # boxes are pixels of the input (a slide's level 0, its thumbnail drawn under them)
    side = out.image_shape or out.image.shape[:2]
    return {
        "trajectory": viz.trajectory_figure(
            background,
            side,
            out.boxes,
            None if truth is None else truth["boxes"],
            title=f"{title_prefix}Where the model looked",
            sigma=out.sigma,
            cell_probs=out.cell_probs,
            proxy=out.proxy,
            crop_size=out.crops.shape[-1],
            height=height,
            square=getattr(out, "square", None),
        ),
        "sigma": viz.sigma_figure(
            out.sigma,
            variance,
            offset_sigma=offset_sigma(out, model_config),
            cell_entropy=getattr(out, "cell_entropy", None),
            title=f"{title_prefix}Posterior σ ({variance} variance)",
            y_max=sigma_max,
        ),
    }


#: ``State.list_update``'s value that leaves a dropdown's choice as it is
KEEP = object()


# ----------------------------------------------------------------------------- the state


class State:
    """Where checkpoints, examples, trained runs and exports live, and the logic every tab
    shares: listing and loading checkpoints (a session sees the shipped ones and its own),
    reading images, one checked prediction."""

    def __init__(
        self,
        checkpoints: str | Path = CHECKPOINTS,
        assets: str | Path = ASSETS,
        train_options: dict | None = None,
        runs: str | Path = RUNS,
        allow_train: bool = True,
        max_runs: int = MAX_RUNS,
        max_runs_mb: float = MAX_RUNS_MB,
        exports: str | Path | None = None,
        images: str | Path | None = None,
        images_follow_links: bool = False,
    ):
        """
        Args:
            checkpoints: the shipped checkpoints (NAME.safetensors + NAME.json), read only:
                every session lists them first.
            assets: example images (with JSON sidecars) and eval/bench JSON.
            train_options: ``TrainConfig`` fields for the Train tab beyond what the UI sets
                (defaults: ``TRAIN_OPTIONS``).
            runs: where the Train tab writes, ``runs/SESSION/NAME``: a checkpoint trained in
                a browser session is listed in that session only.
            allow_train: False turns the Train tab off (a Space that only demonstrates).
            max_runs, max_runs_mb: caps on the trained checkpoints of all sessions together,
                in number and in size; past them the oldest are deleted.
            exports: where Export writes, ``exports/SESSION/`` (default: ``saccade-export``
                in the system's temporary folder).
            images: a folder of the server's own images and slides that Explore offers
                (``python app.py --images DIR``; ``saccade.data.browse``); None: none.
            images_follow_links: also offer symlinks out of ``images`` (an opt-in).
        """
        self.checkpoints = Path(checkpoints)
        self.assets = Path(assets)
        self.train_options = TRAIN_OPTIONS | (train_options or {})
        self.runs = Path(runs)
        self.allow_train = bool(allow_train)
        self.max_runs, self.max_runs_mb = int(max_runs), float(max_runs_mb)
        self.exports = Path(exports or Path(tempfile.gettempdir()) / "saccade-export")
        self.images = None if images is None else Path(images)
        self.images_follow_links = bool(images_follow_links)

    # -- checkpoints ---------------------------------------------------------------------

    def list_checkpoints(self, session: str | None = None) -> list[dict]:
        """The shipped checkpoints, then those ``session`` trained (each its JSON plus
        ``name``, ``path`` and ``owner``: None for shipped ones, else the session). A trained
        one never hides a shipped one of the same name. Only VS checkpoints: the app shows a
        posterior, which the baselines (``saccade.models``) do not have."""
        shipped = []
        if self.checkpoints.is_dir():
            bad = {name for name, _ in self.unusable_in(self.checkpoints)}
            shipped = [
                m | {"owner": None}
                for m in saccade.list_checkpoints(self.checkpoints)
                if m["name"] not in bad and m.get("model", "vs") == "vs"
            ]
        own = []
        folder = self.runs / session if session else None
        if folder is not None and folder.is_dir():
            names = {m["name"] for m in shipped} | {n for n, _ in self.unusable_in(folder)}
            own = [
                m | {"owner": session}
                for m in saccade.list_checkpoints(folder)
                if m["name"] not in names
            ]
        return shipped + own

    @staticmethod
    def unusable_in(folder: Path) -> tuple[tuple[str, str], ...]:
        """(name, reason) of each checkpoint in ``folder`` that cannot be loaded (truncated,
        corrupt, or a config that disagrees with its weights); cached until a file changes."""
        return _unusable(str(folder), _signature(folder)) if folder.is_dir() else ()

    def unusable(self, session: str | None = None) -> list[tuple[str, str]]:
        """The unusable checkpoints among the shipped ones and ``session``'s own: the app
        leaves them out of every list and says why (``unusable_markdown``)."""
        out = list(self.unusable_in(self.checkpoints))
        if session:
            out += self.unusable_in(self.runs / session)
        return out

    def unusable_markdown(self, session: str | None = None) -> str:
        """A line per unusable checkpoint for the Explore tab, "" when there is none."""
        bad = self.unusable(session)
        if not bad:
            return ""
        lines = "\n".join(f"- `{name}`: {reason}" for name, reason in bad)
        return f"⚠️ **Unusable checkpoints** (not offered; the app runs without them):\n{lines}"

    @staticmethod
    def checkpoint_label(meta: dict) -> str:
        """Dropdown text: name, task (unless the name begins with it), variance mode, T and
        test accuracy when known; "yours" for a checkpoint trained in this session."""
        parts = ["yours"] if meta.get("owner") else []
        data = f"{meta.get('dataset', '?')}/{meta.get('task', '?')}"
        if not meta["name"].startswith(data.replace("/", "-")):  # else the name says it
            parts.append(data)
        parts += [
            f"{meta.get('variance', '?')} σ",
            f"T={meta.get('n_saccades', '?')}",
        ]
        acc = meta.get("test_accuracy")
        if isinstance(acc, (int, float)):
            parts.append(f"test acc {acc:.1%}")
        return f"{meta['name']} ({', '.join(parts)})"

    def checkpoint_choices(
        self, truth: dict | None = None, variance: str | None = None, session: str | None = None
    ):
        """(label, name) dropdown choices: the shipped checkpoints, then ``session``'s own;
        ``variance`` keeps only that mode. With a generated example's ``truth``, the
        checkpoints trained on its dataset and task come first (shipped before own, learnt σ
        before fixed), and among those the ones with a twin of the other mode (their name
        with "learnt" and "fixed" swapped: one recipe, σ learnt or fixed, so that Compare
        starts on a pair trained alike), then the higher test accuracy their JSON records
        (a heuristic: each was measured on its own test images)."""
        metas = self.list_checkpoints(session)
        names = {m["name"] for m in metas}
        if variance is not None:
            metas = [m for m in metas if m.get("variance") == variance]
        if truth is not None:
            spec = truth.get("dataset", {})

            def rank(m: dict) -> tuple:
                same_data = m.get("dataset") == spec.get("name")
                same_task = same_data and m.get("task") == spec.get("task")
                own = m.get("owner") is not None
                paired = twin_name(m["name"]) in names - {m["name"]}
                accuracy = m.get("test_accuracy")
                accuracy = accuracy if isinstance(accuracy, (int, float)) else 0.0
                learnt = m.get("variance") == "learnt"
                return (not same_task, not same_data, own, not learnt, not paired, -accuracy)

            metas = sorted(metas, key=rank)  # stable: ties keep the listing's order
        return [(self.checkpoint_label(m), m["name"]) for m in metas]

    def model(self, name: str | None, session: str | None = None):
        """Load (cached) the checkpoint called ``name`` (shipped, or ``session``'s own); only
        names from that listing are accepted, so a request can never make the app open
        another path, nor another session's checkpoint."""
        metas = {m["name"]: m for m in self.list_checkpoints(session)}
        if not metas:
            raise refused(
                f"No checkpoints in {self.checkpoints.name}/. Train one in the Train tab, or "
                "put NAME.safetensors + NAME.json there."
            )
        name = name or next(iter(metas))
        if name not in metas:
            bad = dict(self.unusable(session))
            if name in bad:
                raise refused(f"Checkpoint {name!r} is unusable: {bad[name]}")
            raise refused(f"Checkpoint {name!r} is not one of: {', '.join(metas)}")
        path = str(metas[name]["path"])
        try:
            return _load_model(path, _checkpoint_mtime(path))
        except ValueError as e:
            raise refused(f"Checkpoint {name!r} cannot be loaded: {e}") from None

    def best(self, truth: dict | None, variance: str | None, session: str | None) -> str | None:
        """The first checkpoint ``checkpoint_choices`` lists, or None when there is none."""
        return next(iter(self.checkpoint_choices(truth, variance, session)), (None, None))[1]

    # -- images --------------------------------------------------------------------------

    def examples(self) -> list[tuple[str, str]]:
        """(path, label) of the example images: assets/*.png and the example slides
        (assets/zoom-*.tif, ``write_zoom_example``), each with a JSON sidecar."""
        files = sorted(self.assets.glob("*.png")) + sorted(self.assets.glob("zoom-*.tif"))
        found = {p.stem: p for p in files if image_io.read_sidecar(p)}
        order = [s for s in EXAMPLE_LABELS if s in found] + [
            s for s in found if s not in EXAMPLE_LABELS
        ]
        return [(str(found[s]), EXAMPLE_LABELS.get(s, s)) for s in order]

    def truth(self, path: str | None) -> dict | None:
        """The ground truth of an example image (matched by content), else None."""
        if not path:
            return None
        path = str(path)
        return _find_truth(path, _mtime(path), str(self.assets), _mtime(self.assets))

    @staticmethod
    def image(path, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(model input, browser background) of an uploaded file in ``channels`` (a colour
        checkpoint's 3), cached; gr.Error if bad."""
        if path is None or path == "":
            raise refused("No image: pick an example or upload an image first.")
        path = str(path)
        try:
            return _load_image(path, _mtime(path), channels)
        except ValueError as e:
            raise refused(f"Cannot use this image: {e}") from None
        except MemoryError:
            raise refused(
                f"Cannot use this image: {Path(path).name!r} is too large to decode on this "
                f"server; accepted: at most {image_io.MAX_PIXELS:,} pixels"
            ) from None

    # -- the server's own images (``--images DIR``) ----------------------------------------

    def server_images(self) -> list[browse.ImageFile]:
        """The images and slides under ``images``, each with its size in pixels
        (``saccade.data.browse.list_images``: a bounded walk, headers only); [] without it."""
        return self.server_listing().files

    def server_listing(self) -> browse.Listing:
        """``saccade.data.browse.scan_images`` of ``images``: the files offered and those
        refused, with why (empty without ``images``)."""
        if self.images is None:
            return browse.Listing()
        return browse.scan_images(self.images, follow_links=self.images_follow_links)

    def server_info(self) -> str:
        """The listing's caption: what it shows, and how many files were refused and why."""
        note = self.server_listing().note()
        return SERVER_INFO + (f" {note}" if note else "")

    def server_choices(self) -> list[tuple[str, str]]:
        """(label, name) dropdown choices of ``server_images``: ("a.tif (40,000×30,000 px,
        slide)", "a.tif")."""
        return [(f.label, f.name) for f in self.server_images()]

    def server_image(self, name) -> browse.ImageFile:
        """The server image ``name`` (relative to ``images``), checked by
        ``saccade.data.browse.describe``; gr.Error naming it when the app has no image folder,
        or when ``name`` is absolute, has a ``..`` or a NUL byte, leads out of the folder (a
        symlink), is missing, or is not a readable image or slide."""
        if self.images is None:
            raise refused(
                f"Server image {name!r}: this app offers no server images (start it with "
                "--images DIR)"
            )
        try:
            return browse.describe(self.images, name, self.images_follow_links)
        except ValueError as e:
            message = str(e)
            raise refused(message[:1].upper() + message[1:]) from None

    def tissue_view(self, name) -> tuple[np.ndarray, float]:
        """(overlay, tissue share) of the server slide ``name`` (``_tissue_view``); gr.Error
        for a name ``server_image`` refuses, or an image that is not a slide."""
        found = self.server_image(name)
        if not found.slide:
            raise refused(f"{found.name!r} is not a slide: the tissue mask is shown for slides")
        try:
            return _tissue_view(str(found.path), _mtime(found.path))
        except ValueError as e:
            raise refused(f"Cannot use the slide {found.name!r}: {e}") from None

    def example_slide(self, path) -> Path | None:
        """The example slide (an assets/ TIFF with a sidecar: ``examples``) that the file
        ``path`` is a byte-identical copy of, else None: it is opened as a slide, read tile by
        tile, never decoded whole (an upload is decoded whole, under the upload's caps)."""
        example = (self.truth(path) or {}).get("example")
        if example is None or Path(example).suffix.lower() not in (".tif", ".tiff"):
            return None
        return Path(example)

    @staticmethod
    def slide(path: str | Path, channels: int = 1, reading: tuple = ()):
        """The ``SlidePyramid`` of a slide the app may open (an example slide, a server
        slide) in ``channels``, read as ``reading`` (``slide_reading``) says, cached between
        requests; gr.Error if it cannot be read."""
        try:
            return _open_slide(str(path), _mtime(path), channels, reading)
        except ValueError as e:
            raise refused(f"Cannot use the slide {Path(path).name!r}: {e}") from None

    def background(self, look: Look, model, out) -> np.ndarray:
        """The image under a trajectory: a slide's thumbnail (``out.image``) downscaled, else
        the input downscaled, in the checkpoint's channels and inverted as the run was."""
        if out.slide is not None:
            return viz.downscale(out.image)
        file = look.image or str(self.server_image(look.server).path)
        _, background = self.image(file, getattr(model.config, "channels", 1))
        return 255 - background if look.invert else background

    def _server_input(self, name, channels: int, invert: bool, reading: tuple = ()):
        """What ``saccade.predict`` gets for a server image: a slide's ``SlidePyramid``
        (opened once as ``reading`` says, inverted there when asked, cached; never decoded
        whole), or an ordinary image's array (decoded whole under the upload's cap, as
        ``image``; inverted here)."""
        found = self.server_image(name)
        if not found.slide:
            image, _ = self.image(str(found.path), channels)
            return 255 - image if invert else image
        try:
            return _open_slide(str(found.path), _mtime(found.path), channels, reading)
        except ValueError as e:
            raise refused(f"Cannot use the slide {found.name!r}: {e}") from None

    # -- one prediction ------------------------------------------------------------------

    def run(self, look: Look):
        """One prediction: (model, saccade.predict output) with ``look``'s inputs checked;
        ``look.invert`` runs it on the negative (255 - pixels: a dark digit on light paper
        becomes a light one on black, as the models learnt). ``look.server``: the name of a
        server image (``server_image``), used when ``look.image`` is empty; a copy of an
        example slide (``example_slide``) is read as that slide; a slide's output has its
        thumbnail as ``image`` and boxes in its level-0 pixels."""
        path = look.image
        use_server = look.uses_server
        if use_server:
            self.server_image(look.server)  # a bad name: said before any checkpoint is looked up
        elif path is None or path == "":
            self.image(path)  # "No image": said before any checkpoint is looked up
        model = self.model(look.checkpoint, look.session)
        image, invert = self.model_input(look, model)
        try:
            out = saccade.predict(  # it checks the settings and names a bad one
                model,
                image,
                n_saccades=saccade_count(look.n_saccades),  # None (or 0): the model's own T
                proxy_noise=0.0 if look.proxy_noise is None else look.proxy_noise,
                seed=look.seed or 0,
                sample=look.posterior == "sample",
                invert=invert,
            )
        except ValueError as e:
            raise refused(str(e)) from None
        return model, out

    def model_input(self, look: Look, model) -> tuple[object, bool]:
        """(what ``saccade.predict`` gets for ``look``'s image through ``model``, the
        ``invert`` it is given): a server or example slide's ``SlidePyramid`` opened as the
        model reads it (``slide_reading``: its physical scale, inverted there when asked;
        cached, so that every prediction of a request reads one, its thumbnail made once),
        or an image's array (inverted here, ``invert`` False). ``run`` and Compare's
        samples use it; gr.Error for an input ``server_image`` or ``image`` refuses."""
        path = look.image
        use_server = look.uses_server
        channels = getattr(model.config, "channels", 1)  # colour: RGB
        example_slide = None if use_server else self.example_slide(path)
        # a slide is inverted where it is read (every window, its proxy and thumbnail)
        reading = slide_reading(model, bool(look.invert))
        if use_server:
            image = self._server_input(look.server, channels, bool(look.invert), reading)
        elif example_slide is not None:  # the zoom example: read tile by tile
            image = self.slide(example_slide, channels, reading)
        else:
            image, _ = self.image(path, channels)
            if look.invert:
                image = 255 - image
        # a slide opened inverted: predict reads it as opened (an array is inverted)
        return image, bool(look.invert) and not isinstance(image, np.ndarray)

    # -- choices and lists -----------------------------------------------------------------

    def image_choices(self, path, current, variance, session):
        """A checkpoint dropdown's update when the image becomes ``path``: for a generated
        example the checkpoints of its task first and the first of them chosen; otherwise
        ``current`` where it is still listed."""
        truth = self.truth(path)
        choices = self.checkpoint_choices(truth, variance, session)
        names = [c[1] for c in choices]
        value = names[0] if truth is not None and names else current
        if value not in names:
            value = names[0] if names else None
        return gr.update(choices=choices, value=value)

    def list_update(self, session, variance, value=KEEP):
        """A checkpoint dropdown's update: this session's choices (of one variance mode, or
        all), and ``value`` where it is still listed, else the first; the value unchanged
        when it is ``KEEP``."""
        choices = self.checkpoint_choices(variance=variance, session=session)
        if value is KEEP:
            return gr.update(choices=choices)
        names = [c[1] for c in choices]
        return gr.update(choices=choices, value=value if value in names else (names or [None])[0])
