"""saccade's Gradio app: see where a Variational Saccading model looks, compare learnt and fixed
posterior variance, train a small model, read the results.

    python app.py                 # http://127.0.0.1:7860, offline, models from checkpoints/

Layout and event wiring only: every computation is a ``saccade.*`` call and every figure comes
from ``saccade.viz``. The same file runs as a Hugging Face Space (see the README's front matter).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import saccade  # noqa: E402
from saccade import bench, image_io, viz  # noqa: E402

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
CHECKPOINTS = ROOT / "checkpoints"
#: where the Train tab writes: one subfolder per browser session, never ``checkpoints/``
RUNS = Path(os.environ.get("SACCADE_RUNS_DIR", ROOT / "app-runs"))
#: caps on the app-trained checkpoints of all sessions together; the oldest go first
MAX_RUNS = 20
MAX_RUNS_MB = 300
#: requests that may wait in the queue (each runs at most two at a time)
QUEUE_SIZE = 64
#: the stem of the headline benchmark's rows in assets/ (``python -m saccade.bench --json``)
HEADLINE = "bench-headline"
#: example images shown first, in this order, with their labels (others in assets/ follow)
EXAMPLE_LABELS = {
    "cluttered-sum-100-0": "cluttered MNIST 100², sum of two digits",
    "cluttered-single-100-0": "cluttered MNIST 100², one digit",
    "cluttered-sum-2528-0": "cluttered MNIST upsampled to 2528², sum",
    "megapixel-majority-1500-0": "Megapixel MNIST 1500², majority digit",
    "folder-marks-4096-0": "colour marks 4096² (a folder dataset), blue",
    "folder-marks-4096-1": "colour marks 4096² (a folder dataset), green",
}
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"]
#: training tasks offered in the Train tab: (label, "dataset:task")
TRAIN_TASKS = [
    ("cluttered MNIST, single digit (10 classes)", "cluttered:single"),
    ("cluttered MNIST, sum of two digits (19 classes)", "cluttered:sum"),
    ("cluttered MNIST, digit pair (55 classes)", "cluttered:id"),
    ("Megapixel MNIST, majority digit (10 classes)", "megapixel:majority"),
]
#: TrainConfig fields the Train tab fixes: a quick evaluation, no data-loader processes
TRAIN_OPTIONS = {"val_n": 500, "test_n": 1000, "log_every": 10, "workers": 0}
MAX_TRAIN_STEPS = 5000
MAX_TRAIN_MINUTES = 15.0
MAX_SACCADES = 16
POSTERIOR_CHOICES = [("posterior mode", "mean"), ("a sample z ~ q(z | ·)", "sample")]


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
def _sidecar_index(folder: str, mtime: float) -> dict:
    return image_io.sidecar_index(folder)


@functools.lru_cache(maxsize=64)
def _find_truth(path: str, mtime: float, folder: str, folder_mtime: float) -> dict | None:
    return image_io.find_sidecar(path, _sidecar_index(folder, folder_mtime))


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


# ----------------------------------------------------------------------------- the app


def _trained_on(config) -> str:
    """What a checkpoint was trained on, e.g. "megapixel/majority 1500², proxy 180²"."""
    spec = config.dataset or {}
    if not spec:
        return "unrecorded data"
    side = spec.get("side", spec.get("size"))
    up = f" (a {spec['size']}² canvas upsampled)" if side != spec.get("size") else ""
    return f"{spec.get('name')}/{spec.get('task')} {side}²{up}, proxy {config.proxy_size}²"


LOG = logging.getLogger("saccade.app")


def _refused(message: str) -> gr.Error:
    """The error a user's request gets: shown to the user, and one line in the server's log
    (``refused: ...``), not a traceback."""
    LOG.warning("refused: %s", message)
    return gr.Error(message, print_exception=False)


def _session_id(request) -> str:
    """The folder name of a browser session: Gradio's session hash, letters and digits only
    (an API call without a session is "anonymous")."""
    raw = str(getattr(request, "session_hash", None) or "")
    return re.sub(r"[^A-Za-z0-9]", "", raw)[:64] or "anonymous"


def _safe_run_name(dataset: str, task: str, variance: str, n_saccades: int) -> str:
    """A checkpoint name generated from the settings and the time: never from user text."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"{dataset}-{task}-{variance}-T{int(n_saccades)}-{stamp}"
    return re.sub(r"[^A-Za-z0-9_.-]", "", name)


class App:
    """The app's state (where checkpoints and examples live) and its event functions.

    Every method named like a tab (``explore``, ``compare``, ``train``) is an event function:
    Gradio passes component values, the method returns component values.
    """

    def __init__(
        self,
        checkpoints: str | Path = CHECKPOINTS,
        assets: str | Path = ASSETS,
        train_options: dict | None = None,
        runs: str | Path = RUNS,
        allow_train: bool = True,
        max_runs: int = MAX_RUNS,
        max_runs_mb: float = MAX_RUNS_MB,
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
        """
        self.checkpoints = Path(checkpoints)
        self.assets = Path(assets)
        self.train_options = TRAIN_OPTIONS | (train_options or {})
        self.runs = Path(runs)
        self.allow_train = bool(allow_train)
        self.max_runs, self.max_runs_mb = int(max_runs), float(max_runs_mb)

    # -- checkpoints ---------------------------------------------------------------------

    def list_checkpoints(self, session: str | None = None) -> list[dict]:
        """The shipped checkpoints, then those ``session`` trained (each its JSON plus
        ``name``, ``path`` and ``owner``: None for shipped ones, else the session). A trained
        one never hides a shipped one of the same name. Only VS checkpoints: the app shows a
        posterior, which the baselines (``saccade.models``) do not have."""
        shipped = []
        if self.checkpoints.is_dir():
            shipped = [
                m | {"owner": None}
                for m in saccade.list_checkpoints(self.checkpoints)
                if m.get("model", "vs") == "vs"
            ]
        own = []
        folder = self.runs / session if session else None
        if folder is not None and folder.is_dir():
            names = {m["name"] for m in shipped}
            own = [
                m | {"owner": session}
                for m in saccade.list_checkpoints(folder)
                if m["name"] not in names
            ]
        return shipped + own

    @staticmethod
    def checkpoint_label(meta: dict) -> str:
        """Dropdown text: name, task, variance mode, T and test accuracy when known; "yours"
        for a checkpoint trained in this session."""
        parts = ["yours"] if meta.get("owner") else []
        parts += [
            f"{meta.get('dataset', '?')}/{meta.get('task', '?')}",
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
        with a generated example's ``truth`` the checkpoints trained on its dataset and task
        come first (shipped before own); ``variance`` keeps only that mode."""
        metas = self.list_checkpoints(session)
        if variance is not None:
            metas = [m for m in metas if m.get("variance") == variance]
        if truth is not None:
            spec = truth.get("dataset", {})

            def rank(m: dict) -> tuple:
                same_data = m.get("dataset") == spec.get("name")
                same_task = same_data and m.get("task") == spec.get("task")
                own = m.get("owner") is not None
                return (not same_task, not same_data, own, m.get("variance") != "learnt")

            metas = sorted(metas, key=rank)  # stable: ties keep the listing's order
        return [(self.checkpoint_label(m), m["name"]) for m in metas]

    def model(self, name: str | None, session: str | None = None):
        """Load (cached) the checkpoint called ``name`` (shipped, or ``session``'s own); only
        names from that listing are accepted, so a request can never make the app open
        another path, nor another session's checkpoint."""
        metas = {m["name"]: m for m in self.list_checkpoints(session)}
        if not metas:
            raise _refused(
                f"No checkpoints in {self.checkpoints.name}/. Train one in the Train tab, or "
                "put NAME.safetensors + NAME.json there."
            )
        name = name or next(iter(metas))
        if name not in metas:
            raise _refused(f"Checkpoint {name!r} is not one of: {', '.join(metas)}")
        path = str(metas[name]["path"])
        try:
            return _load_model(path, _checkpoint_mtime(path))
        except ValueError as e:
            raise _refused(f"Checkpoint {name!r} cannot be loaded: {e}") from None

    def best(self, truth: dict | None, variance: str | None, session: str | None) -> str | None:
        """The first checkpoint ``checkpoint_choices`` lists, or None when there is none."""
        return next(iter(self.checkpoint_choices(truth, variance, session)), (None, None))[1]

    def warm(self) -> None:
        """Load the default checkpoint now, so the first click does not pay for it: the one
        the first screen runs (``first_screen``, already computed by ``build_demo``), else
        the first listed."""
        if self.first_screen() is None and (name := self.best(None, None, None)):
            self.model(name)

    def first_screen(self) -> tuple[str, str, tuple] | None:
        """(example path, checkpoint, ``explore`` outputs) of the first example through its
        default checkpoint: what the page shows before any click. Computed once per App
        (at start-up, in ``build_demo``) and kept; None without examples or checkpoints."""
        if not hasattr(self, "_first_screen"):
            self._first_screen = None
            examples = self.examples()
            if examples:
                path = examples[0][0]
                name = self.best(self.truth(path), None, None)
                if name:
                    self._first_screen = (path, name, self.explore(path, name))
        return self._first_screen

    # -- images --------------------------------------------------------------------------

    def examples(self) -> list[tuple[str, str]]:
        """(path, label) of the example images: assets/*.png with a JSON sidecar."""
        found = {p.stem: p for p in sorted(self.assets.glob("*.png")) if image_io.read_sidecar(p)}
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
            raise _refused("No image: pick an example or upload an image first.")
        path = str(path)
        try:
            return _load_image(path, _mtime(path), channels)
        except ValueError as e:
            raise _refused(f"Cannot use this image: {e}") from None

    # -- Explore -------------------------------------------------------------------------

    def run(self, path, checkpoint, proxy_noise, n_saccades, seed, posterior, session=None):
        """One prediction: (model, saccade.predict output) with the app's inputs checked."""
        if path is None or path == "":
            self.image(path)  # "No image": said before any checkpoint is looked up
        model = self.model(checkpoint, session)
        image, _ = self.image(path, getattr(model.config, "channels", 1))  # colour: RGB
        n = int(n_saccades) if n_saccades else None  # None (or 0): the model's own T
        try:
            out = saccade.predict(
                model,
                image,
                n_saccades=n,
                proxy_noise=float(proxy_noise or 0.0),
                seed=int(seed or 0),
                sample=posterior == "sample",
            )
        except ValueError as e:
            raise _refused(str(e)) from None
        return model, out

    def explore(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ):
        """Explore tab: where the model looks in ``image`` and what it concludes.

        Returns: trajectory figure, σ figure, proxy figure, label dict, probabilities figure,
        gallery items, ground-truth Markdown, status Markdown.
        """
        t0 = time.perf_counter()
        truth = self.truth(image)
        session = _session_id(request)
        # No checkpoint named (an API call with defaults): the first for the example's task.
        name = checkpoint or self.best(truth, None, session)
        model, out = self.run(image, name, proxy_noise, n_saccades, seed, posterior, session)
        _, background = self.image(image, getattr(model.config, "channels", 1))  # colour: RGB
        t_predict = time.perf_counter() - t0
        cfg = model.config
        figures = self._result_figures(out, background, truth, cfg.variance)
        md_truth = (
            viz.coverage_markdown(
                truth["boxes"],
                out.boxes,
                cfg.crop_size,
                truth.get("digits"),
                truth["class_name"],
                out.class_names[out.label],
            )
            if truth is not None
            else "No ground truth: this image is not one of the generated examples."
        )
        warnings = saccade.infer.input_warnings(
            model, out.image, truth.get("dataset") if truth else None
        )
        status = "".join(f"⚠️ {w}\n\n" for w in warnings) + (
            f"**{out.class_names[out.label]}** after {len(out.probs)} saccades "
            f"(p = {float(out.probs[-1, out.label]):.2f}) · checkpoint `{name}` "
            f"({cfg.variance} σ, trained with T = {cfg.n_saccades} on {_trained_on(cfg)}) · "
            "crops at the "
            f"{'posterior mode' if posterior != 'sample' else 'sampled z'}, seed {int(seed or 0)}, "
            f"proxy noise {float(proxy_noise):g} · image "
            f"{out.image.shape[1]}×{out.image.shape[0]} · predict {t_predict * 1000:.0f} ms, "
            f"total {(time.perf_counter() - t0) * 1000:.0f} ms"
        )
        return (
            figures["trajectory"],
            figures["sigma"],
            viz.proxy_figure(out.proxy, float(proxy_noise)),
            viz.label_dict(out.probs[-1], out.class_names),
            viz.probs_figure(out.probs, out.class_names),
            viz.gallery_items(out.zooms, out.crops, out.boxes, out.sigma, out.image.shape[:2]),
            md_truth,
            status,
        )

    def export(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ) -> list[str]:
        """Explore's export: the same run as ``explore`` with these inputs, written as
        ``trajectory.gif`` (one frame per saccade, with the zooms) and ``run.json`` (z, μ, σ,
        box and probabilities per step, the checkpoint and the settings) in the session's
        folder under the system's temporary directory. Returns the two paths."""
        from saccade.export import prediction_json, trajectory_gif

        session = _session_id(request)
        name = checkpoint or self.best(self.truth(image), None, session)  # as ``explore``
        _, out = self.run(image, name, proxy_noise, n_saccades, seed, posterior, session)
        settings = {
            "proxy_noise": float(proxy_noise or 0.0),
            "n_saccades": len(out.boxes),
            "seed": int(seed or 0),
            "posterior": "sample" if posterior == "sample" else "mean",
        }
        # one folder per session, overwritten by its next export (Gradio serves a copy)
        folder = Path(tempfile.gettempdir()) / "saccade-export" / session
        folder.mkdir(parents=True, exist_ok=True)
        gif, record = folder / "trajectory.gif", folder / "run.json"
        gif.write_bytes(trajectory_gif(out))
        record.write_text(prediction_json(out, name, settings))
        return [str(gif), str(record)]

    @staticmethod
    def _result_figures(out, background, truth, variance, title_prefix="", sigma_max=None):
        side = out.image.shape[:2]
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
            ),
            "sigma": viz.sigma_figure(
                out.sigma,
                variance,
                title=f"{title_prefix}Posterior σ ({variance} variance)",
                y_max=sigma_max,
            ),
        }

    def on_image(self, path, current, request: gr.Request | None = None):
        """When the image changes: for a generated example, put the checkpoints trained on its
        task first and select the best match; otherwise keep the current choice."""
        return self._image_choices(path, current, None, _session_id(request))

    def _image_choices(self, path, current, variance, session):
        truth = self.truth(path)
        choices = self.checkpoint_choices(truth, variance, session)
        names = [c[1] for c in choices]
        value = names[0] if truth is not None and names else current
        if value not in names:
            value = names[0] if names else None
        return gr.update(choices=choices, value=value)

    def on_compare_image(self, path, learnt, fixed, request: gr.Request | None = None):
        """``on_image`` for the Compare tab's two lists."""
        session = _session_id(request)
        return (
            self._image_choices(path, learnt, "learnt", session),
            self._image_choices(path, fixed, "fixed", session),
        )

    def on_load(self, current, learnt, fixed, request: gr.Request | None = None):
        """When a page loads: the three checkpoint lists as they are on disk now (the shipped
        ones and this session's own), keeping the current choices."""
        session = _session_id(request)
        return (
            self._list_update(session, None, current),
            self._list_update(session, "learnt", learnt),
            self._list_update(session, "fixed", fixed),
        )

    _KEEP = object()

    def _list_update(self, session, variance, value=_KEEP):
        """A checkpoint dropdown's update: this session's choices (of one variance mode, or
        all), and ``value`` where it is still listed, else the first; the value unchanged
        when none is given."""
        choices = self.checkpoint_choices(variance=variance, session=session)
        if value is App._KEEP:
            return gr.update(choices=choices)
        names = [c[1] for c in choices]
        return gr.update(choices=choices, value=value if value in names else (names or [None])[0])

    def on_checkpoint(self, name, request: gr.Request | None = None):
        """When the checkpoint changes: the saccade slider goes to its T (up to 2 T)."""
        meta = {m["name"]: m for m in self.list_checkpoints(_session_id(request))}.get(name)
        if meta is None:
            return gr.update()
        t = int(meta.get("n_saccades", 4))
        return gr.update(value=t, maximum=max(MAX_SACCADES, 2 * t))

    def _pair(self, truth, learnt, fixed, session) -> tuple[str, str]:
        """The learnt and fixed checkpoints Compare runs: as chosen, else the best for the
        example; gr.Error if one is missing or they differ in dataset or task."""
        learnt = learnt or self.best(truth, "learnt", session)
        fixed = fixed or self.best(truth, "fixed", session)
        if not learnt or not fixed:
            raise _refused(
                "Compare needs a learnt-variance and a fixed-variance checkpoint in "
                f"{self.checkpoints.name}/; train the missing one in the Train tab."
            )
        metas = {m["name"]: m for m in self.list_checkpoints(session)}
        tasks = {
            n: f"{metas[n].get('dataset')}/{metas[n].get('task')}"
            for n in (learnt, fixed)
            if n in metas
        }
        if len(set(tasks.values())) > 1:
            raise _refused(
                f"Compare pairs two checkpoints of one dataset and task; `{learnt}` is "
                f"{tasks[learnt]} and `{fixed}` is {tasks[fixed]}. Pick a fixed-variance "
                f"checkpoint of {tasks[learnt]}, or train one in the Train tab."
            )
        return learnt, fixed

    def sample16(
        self,
        image,
        learnt=None,
        fixed=None,
        proxy_noise=0.0,
        n_saccades=0,
        request: gr.Request | None = None,
    ):
        """Compare's "sample 16 times": the crop boxes of 16 posterior samples (seeds 0..15)
        of each checkpoint over the image, side by side, coloured by saccade (the paper's
        learnt-against-fixed figure, live). Returns a plotly figure."""
        from saccade.figures import posterior_samples_figure, sample_boxes

        session = _session_id(request)
        learnt, fixed = self._pair(self.truth(image), learnt, fixed, session)
        img, _ = self.image(image)
        n = int(n_saccades) if n_saccades else None
        panels = {}
        for name in (learnt, fixed):
            model = self.model(name, session)
            try:
                boxes = sample_boxes(model, img, 16, n, float(proxy_noise or 0.0))
            except ValueError as e:
                raise _refused(str(e)) from None
            panels[f"{model.config.variance} σ: {name}"] = (boxes, None)
        return posterior_samples_figure(img, panels)

    # -- Compare -------------------------------------------------------------------------

    def compare(
        self,
        image,
        learnt=None,
        fixed=None,
        proxy_noise=0.0,
        n_saccades=0,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ):
        """Compare tab: the same image and settings through a learnt- and a fixed-variance
        checkpoint. ``n_saccades`` = 0 runs each model for its own T.

        Returns: for learnt then fixed: trajectory, σ figure, label dict, summary Markdown.
        """
        truth = self.truth(image)
        session = _session_id(request)
        learnt, fixed = self._pair(truth, learnt, fixed, session)
        _, background = self.image(image)
        results = []
        runs = [
            (name, *self.run(image, name, proxy_noise, n_saccades, seed, posterior, session))
            for name in (learnt, fixed)
        ]
        sigma_max = max(float(out.sigma.max()) for _, _, out in runs)  # one σ axis for both
        for name, model, out in runs:
            v = model.config.variance
            figs = self._result_figures(
                out, background, truth, v, title_prefix=f"{v} σ: ", sigma_max=sigma_max
            )
            summary = f"`{name}`: **{out.class_names[out.label]}** (p = {float(out.probs[-1, out.label]):.2f}) after {len(out.probs)} saccades."
            warnings = saccade.infer.input_warnings(
                model, out.image, truth.get("dataset") if truth else None
            )
            summary += "".join(f"\n\n⚠️ {w}" for w in warnings)
            if truth is not None:
                hit = viz.covered(truth["boxes"], out.boxes, model.config.crop_size)
                summary += (
                    f" Truth `{truth['class_name']}`; looked at {int(hit.sum())} of "
                    f"{len(hit)} digits."
                )
            results += [
                figs["trajectory"],
                figs["sigma"],
                viz.label_dict(out.probs[-1], out.class_names),
                summary,
            ]
        return tuple(results)

    # -- Train ---------------------------------------------------------------------------

    def train(
        self,
        task="cluttered:single",
        size=100,
        variance="learnt",
        n_saccades=4,
        steps=200,
        minutes=0.0,
        progress=gr.Progress(),  # noqa: B008 (Gradio's documented way to ask for progress)
        request: gr.Request | None = None,
    ):
        """Train tab (a generator): run ``saccade.train.fit`` in a thread and yield the live
        curves; at the end the new checkpoint appears in this session's Explore and Compare
        dropdowns (and in no other session's). It is written to ``runs/SESSION/``, then the
        caps on all sessions' runs are applied (``prune_runs``).

        Yields: curves figure, status Markdown, Explore dropdown, Compare learnt and fixed
        dropdowns.
        """
        from saccade.train import PRESETS, TrainConfig, fit

        if not self.allow_train:
            raise _refused("Training is turned off on this server.")
        if task not in dict((v, k) for k, v in TRAIN_TASKS):
            raise _refused(f"Unknown task {task!r}; choose one of the list.")
        if variance not in ("learnt", "fixed"):
            raise _refused(f"Variance mode must be 'learnt' or 'fixed'; got {variance!r}")
        steps = int(steps or 0)
        minutes = float(minutes or 0.0)
        if not 1 <= steps <= MAX_TRAIN_STEPS:
            raise _refused(f"Steps must be between 1 and {MAX_TRAIN_STEPS}; got {steps}")
        if not 0.0 <= minutes <= MAX_TRAIN_MINUTES:
            raise _refused(f"Minutes must be between 0 and {MAX_TRAIN_MINUTES:g}; got {minutes}")
        dataset, task_name = task.split(":")
        name = _safe_run_name(dataset, task_name, variance, n_saccades)
        session = _session_id(request)
        folder = self.runs / session
        # the settings measured for the dataset (e.g. megapixel's grid, crop sizes, pooling);
        # the tab's own choices win, and another canvas side gets the dataset's own proxy
        preset = dict(PRESETS.get(dataset, {}))
        if "size" in preset and int(size) != preset["size"]:
            preset.pop("proxy_size", None)
        settings = preset | {
            "dataset": dataset,
            "task": task_name,
            "size": int(size),
            "variance": variance,
            "n_saccades": int(n_saccades),
            "steps": steps,
            "minutes": minutes or None,
            "out": str(folder / name),
            "seed": 0,
        }
        try:
            cfg = TrainConfig(**(settings | self.train_options))
        except (TypeError, ValueError) as e:
            raise _refused(f"Bad training settings: {e}") from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _refused(f"Cannot write trained checkpoints here: {e.strerror}") from None

        events: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            torch.set_num_threads(os.cpu_count() or 1)  # this thread only; see ``launch``
            try:
                result["metrics"] = fit(cfg, callback=events.put)
            except Exception as e:  # reported to the user below
                result["error"] = e
            finally:
                events.put(None)

        threading.Thread(target=work, name=f"train-{name}", daemon=True).start()
        history: list[dict] = []
        progress(0.0, desc="building the dataset and model")
        last = 0.0
        total = steps  # until the first event says the run's own count (its epochs may cap it)
        while True:
            event = events.get()
            if event is None:
                break
            history.append(dict(event))
            total = max(1, int(event.get("total_steps") or total))
            step = int(event.get("step", 0))
            progress(min(step / total, 1.0), desc=f"step {step}/{total}")
            if time.monotonic() - last > 1.0 or "val_acc" in event:
                last = time.monotonic()
                yield (
                    viz.training_figure(history),
                    self._train_status(name, event, total),
                    gr.skip(),
                    gr.skip(),
                    gr.skip(),
                )
        if "error" in result:
            e = result["error"]
            raise gr.Error(f"Training failed: {type(e).__name__}: {e}")
        metrics = result.get("metrics") or {}
        acc = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
        n_test = self.train_options.get("test_n")
        acc_text = (
            f", test accuracy {acc:.1%} on {n_test} test images"
            if isinstance(acc, (int, float))
            else ""
        )
        for extra in folder.glob(f"{name}.state.*"):  # resuming is not offered in the app
            extra.unlink(missing_ok=True)
        removed = self.prune_runs(keep=folder / name)
        note = f" The caps removed {len(removed)} older run(s)." if removed else ""
        yield (
            viz.training_figure(history),
            f"Saved **{name}**{acc_text}. It is in your Explore and Compare lists (this "
            f"browser session only).{note}",
            self._list_update(session, None, name),
            self._list_update(session, "learnt"),
            self._list_update(session, "fixed"),
        )

    def run_files(self) -> list[tuple[float, int, Path]]:
        """(modification time, bytes, base path) of every app-trained checkpoint, oldest first."""
        out = []
        for weights in self.runs.glob("*/*.safetensors"):
            if weights.name.endswith(".state.safetensors"):
                continue
            base = weights.with_suffix("")
            files = [f for f in base.parent.glob(f"{base.name}.*") if f.is_file()]
            out.append((weights.stat().st_mtime, sum(f.stat().st_size for f in files), base))
        return sorted(out, key=lambda r: (r[0], str(r[2])))

    def prune_runs(self, keep: Path | None = None) -> list[Path]:
        """Delete the oldest app-trained checkpoints (all sessions) until at most
        ``max_runs`` remain and they take at most ``max_runs_mb``; never ``keep`` (the run
        just finished). Returns the base paths deleted."""
        runs = self.run_files()
        removed = []
        total = sum(size for _, size, _ in runs)
        for _, size, base in runs:
            over = len(runs) - len(removed) > self.max_runs or total > self.max_runs_mb * 2**20
            if not over:
                break
            if keep is not None and base == keep:
                continue
            self._delete_run(base)
            removed.append(base)
            total -= size
        return removed

    @staticmethod
    def _delete_run(base: Path) -> None:
        for f in base.parent.glob(f"{base.name}.*"):
            f.unlink(missing_ok=True)

    def delete_my_runs(self, request: gr.Request | None = None):
        """Train tab: delete every checkpoint this session trained.

        Returns: status Markdown, Explore dropdown, Compare learnt and fixed dropdowns."""
        session = _session_id(request)
        mine = [m for m in self.list_checkpoints(session) if m.get("owner") == session]
        for m in mine:
            self._delete_run(Path(m["path"]))
        return (
            f"Deleted {len(mine)} checkpoint(s) you trained.",
            self._list_update(session, None, None),
            self._list_update(session, "learnt", None),
            self._list_update(session, "fixed", None),
        )

    @staticmethod
    def on_train_task(task: str):
        """The canvas side that goes with a task: 100 for cluttered MNIST, 1500 for Megapixel."""
        return gr.update(value=1500 if str(task).startswith("megapixel") else 100)

    @staticmethod
    def _train_status(name: str, event: dict, total: int | None = None) -> str:
        """One status line; ``total`` is the run's step count, for the epoch-end events that
        do not carry it."""
        total = event.get("total_steps") or total
        step = f"step {event.get('step')}" + (f"/{total}" if total else "")
        parts = [f"Training **{name}**: {step}"]
        for key in ("loss", "ce", "kl", "train_acc", "val_acc"):
            if isinstance(event.get(key), (int, float)):
                parts.append(f"{key} {event[key]:.3f}")
        return " · ".join(parts)

    # -- About ---------------------------------------------------------------------------

    #: the paper's comparison figures that ``python -m saccade.figures`` writes in assets/
    FIGURES = {
        "noise-test.png": "Test accuracy against proxy noise at test time, learnt and fixed "
        "variance",
        "noise-train.png": "Validation accuracy per epoch of cluttered/sum runs trained with "
        "proxy noise 0, 0.1 and 0.3",
        "posterior-samples.png": "16 posterior samples of a learnt- and a fixed-variance model "
        "on one 2528² image",
    }

    def figures(self) -> list[tuple[str, str]]:
        """About tab: (path, caption) of each figure of ``FIGURES`` present in assets/."""
        return [
            (str(self.assets / name), caption)
            for name, caption in self.FIGURES.items()
            if (self.assets / name).is_file()
        ]

    def results(self):
        """About tab: (eval rows, eval figure, bench rows, bench figure) from assets/*.json
        (the parts of ``saccade.bench``; the headline is ``headline``)."""
        evals = viz.load_results(self.assets, "eval-*.json")
        parts = [r for r in viz.load_results(self.assets, "bench-*.json") if r[0] != HEADLINE]
        bench = viz.bench_rows(parts)
        return viz.eval_rows(evals), viz.eval_figure(evals), bench, viz.bench_figure(bench)

    def headline(self) -> tuple[str, object] | None:
        """About tab: (markdown table, chart) of ``python -m saccade.bench``'s headline run
        (``assets/bench-headline.json``), or None before there is one."""
        found = dict(viz.load_results(self.assets, HEADLINE + ".json"))
        rows = found.get(HEADLINE)
        if not isinstance(rows, list) or not rows:
            return None
        return bench.headline_table(rows), viz.headline_figure(rows)


# ----------------------------------------------------------------------------- layout

ABOUT = r"""
### Variational Saccading, in a few lines

A huge image $x$ is seen first through a cheap low-resolution **proxy** $p$. A recurrent
network proposes, at each step $t$, a posterior $q(z_t \mid p, h_{t-1})$ over where to look,
$z_t = (\text{scale}, x, y)$: a categorical over the proxy's $g\times g$ cells, a Gaussian
offset inside the chosen cell and a Gaussian scale. A differentiable **glimpse** takes a
$k\times k$ crop $c_t$ of the full-resolution image at $z_t$ in $O(k^2)$, whatever the image's
size; the classifier reads the crops. Training maximises the evidence lower bound

$$\log p(y \mid x) \ \ge\ \mathbb{E}_{q}\big[\log p(y \mid c_{1..T})\big] + \sum_{t=1}^{T} \mathbb{E}_{q}\big[\log p(p \mid z_{\le t})\big] - \sum_{t=1}^{T} \mathrm{KL}\big(q(z_t \mid p, h_{t-1}) \,\|\, p(z_t \mid h_{t-1})\big)$$

with weights on the reconstruction and KL terms, the class term averaged over the steps
(anytime prediction) and a score-function estimator for the cell (the README lists every
departure, each measured). In **learnt** variance mode the posterior predicts the offset's and
the scale's $\sigma_t$ per step and coordinate; in **fixed** mode they are one constant. The σ
plot shows the scale's σ and the spread of the crop centre under the whole posterior (cells
and offsets). At test time the crops are taken at the posterior's mode unless a sample is
asked for. Reference: Ramapuram, Diephuis, Lavda, Webb, Kalousis, *Variational Saccading: Efficient
Inference for Large Resolution Images*, BMVC 2019 (arXiv 1812.03170).
"""

LICENCES = """
### Data and licences

Code: MIT. The example images and all training data are generated from the real MNIST digits
bundled in `saccade/data/` (Yann LeCun and Corinna Cortes), distributed under
**CC BY-SA 3.0**; see `saccade/data/LICENSE-MNIST.md`. Nothing is downloaded: the app makes no
network requests.
"""

EXPLORE_HELP = f"""
Pick an example or upload an image (PNG, JPEG, TIFF, WebP, BMP or GIF; gray, RGB or RGBA,
8 or 16 bit; at least {image_io.MIN_SIDE} px a side and at most {image_io.MAX_PIXELS:,} pixels).
It is converted as in training: grayscale, padded to a square, bright digits on black. The
trajectory plot has **Play** and a step slider; dashed boxes are the ground-truth digits of a
generated example (green: looked at, red: missed). The blue ellipse is 1σ of the posterior
around each crop centre (hover a centre for σ in pixels and the σ of the scale); the right
panel is the posterior over the proxy's cells at that step, as heat over the proxy.
"""


def _theme():
    # System fonts: the default theme would fetch Google Fonts, and the app stays offline.
    return gr.themes.Soft(
        font=[gr.themes.Font("ui-sans-serif"), "system-ui", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "monospace"],
    )


CSS = """
#explore-status, #compare-status { min-height: 1.5em; }
"""


def _settings(prefix: str, n_value: int, n_max: int, n_min: int = 1, n_info: str = ""):
    """The shared prediction settings: proxy noise, saccades, seed, posterior mode/sample."""
    with gr.Row():
        noise = gr.Slider(
            0.0,
            1.0,
            value=0.0,
            step=0.05,
            label="Proxy noise (std, fraction of intensity range)",
            elem_id=f"{prefix}-noise",
        )
        n = gr.Slider(
            n_min,
            n_max,
            value=n_value,
            step=1,
            label="Number of saccades",
            info=n_info,
            elem_id=f"{prefix}-saccades",
        )
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", elem_id=f"{prefix}-seed")
        posterior = gr.Radio(
            POSTERIOR_CHOICES, value="mean", label="Crop at", elem_id=f"{prefix}-posterior"
        )
    return noise, n, seed, posterior


def build_demo(app: App | None = None) -> gr.Blocks:
    """The Blocks app: Explore, Compare, Train and About tabs wired to ``app``'s methods."""
    app = app or App()
    examples = app.examples()
    choices = app.checkpoint_choices()
    metas = {m["name"]: m for m in app.list_checkpoints()}
    first = choices[0][1] if choices else None
    # the page opens on the first example already run (computed once, here at start-up)
    screen = app.first_screen()
    first_image, shown = (screen[0], screen[2]) if screen else (None, (None,) * 8)
    if screen:
        first = screen[1]
    t_first = int(metas[first].get("n_saccades", 4)) if first else 4
    learnt_choices = app.checkpoint_choices(variance="learnt")
    fixed_choices = app.checkpoint_choices(variance="fixed")

    with gr.Blocks(title="saccade: Variational Saccading") as demo:
        gr.Markdown(
            "# saccade: where does a Variational Saccading model look?\n"
            "A model sees a low-resolution proxy of a large image, decides where to look, takes "
            "a few small full-resolution crops and classifies from them."
        )
        with gr.Tab("Explore", id="explore"):
            gr.Markdown(EXPLORE_HELP)
            with gr.Row():
                with gr.Column(scale=1):
                    image = gr.File(
                        first_image,
                        label="Image",
                        file_types=UPLOAD_TYPES,
                        type="filepath",
                        elem_id="explore-image",
                    )
                    gr.Examples(
                        [[p] for p, _ in examples],
                        inputs=[image],
                        example_labels=[label for _, label in examples],
                        label="Examples (generated test images with ground truth)",
                        elem_id="explore-examples",
                    )
                    checkpoint = gr.Dropdown(
                        choices,
                        value=first,
                        label="Checkpoint (task, variance mode, T)",
                        elem_id="explore-checkpoint",
                    )
                    noise, n_sacc, seed, posterior = _settings(
                        "explore", t_first, max(MAX_SACCADES, 2 * t_first)
                    )
                    run = gr.Button("Look", variant="primary", elem_id="explore-run")
                with gr.Column(scale=2):
                    status = gr.Markdown(shown[7], elem_id="explore-status")
                    trajectory = gr.Plot(
                        shown[0]
                        or viz.placeholder_figure("Pick an example or upload an image, then Look."),
                        label="Crop trajectory",
                        elem_id="explore-trajectory",
                    )
                    with gr.Row():
                        label = gr.Label(
                            shown[3], num_top_classes=5, label="Prediction", elem_id="explore-label"
                        )
                        probs = gr.Plot(
                            shown[4], label="Probabilities per saccade", elem_id="explore-probs"
                        )
                    truth_md = gr.Markdown(shown[6], elem_id="explore-truth")
            with gr.Row():
                sigma = gr.Plot(shown[1], label="Posterior σ", elem_id="explore-sigma")
                proxy = gr.Plot(shown[2], label="Proxy as seen", elem_id="explore-proxy")
            gallery = gr.Gallery(
                shown[5],
                label="Full-resolution region (left) and the k×k crop the network saw (right)",
                format="png",
                columns=4,
                height=640,
                object_fit="contain",
                elem_id="explore-gallery",
            )
            with gr.Row():
                export = gr.Button("Export GIF and JSON", elem_id="explore-export")
                exported = gr.File(
                    label="The trajectory as an animated GIF (with the zooms) and its numbers "
                    "as JSON",
                    file_count="multiple",
                    interactive=False,
                    elem_id="explore-exported",
                )
            export.click(
                app.export,
                inputs=[image, checkpoint, noise, n_sacc, seed, posterior],
                outputs=[exported],
                api_name="export",
            )
            run.click(
                app.explore,
                inputs=[image, checkpoint, noise, n_sacc, seed, posterior],
                outputs=[trajectory, sigma, proxy, label, probs, gallery, truth_md, status],
                api_name="explore",
            )
            image.change(
                app.on_image,
                inputs=[image, checkpoint],
                outputs=[checkpoint],
                api_visibility="private",
            )
            checkpoint.change(
                app.on_checkpoint, inputs=[checkpoint], outputs=[n_sacc], api_visibility="private"
            )

        with gr.Tab("Compare", id="compare"):
            gr.Markdown(
                "The same image and settings through a **learnt**-variance and a "
                "**fixed**-variance checkpoint, side by side."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    c_image = gr.File(
                        label="Image",
                        file_types=UPLOAD_TYPES,
                        type="filepath",
                        elem_id="compare-image",
                    )
                    gr.Examples(
                        [[p] for p, _ in examples],
                        inputs=[c_image],
                        example_labels=[label for _, label in examples],
                        label="Examples",
                    )
                with gr.Column(scale=2):
                    with gr.Row():
                        c_learnt = gr.Dropdown(
                            learnt_choices,
                            value=learnt_choices[0][1] if learnt_choices else None,
                            label="Learnt-variance checkpoint",
                            elem_id="compare-learnt",
                        )
                        c_fixed = gr.Dropdown(
                            fixed_choices,
                            value=fixed_choices[0][1] if fixed_choices else None,
                            label="Fixed-variance checkpoint",
                            elem_id="compare-fixed",
                        )
                    c_noise, c_n, c_seed, c_post = _settings(
                        "compare", 0, MAX_SACCADES, 0, "0 = each model's own T"
                    )
                    c_run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            sides = []
            with gr.Row():
                for v in ("learnt", "fixed"):
                    with gr.Column():
                        sides += [
                            gr.Plot(label=f"{v}: trajectory", elem_id=f"compare-{v}-trajectory"),
                            gr.Plot(label=f"{v}: posterior σ", elem_id=f"compare-{v}-sigma"),
                            gr.Label(
                                num_top_classes=5,
                                label=f"{v}: prediction",
                                elem_id=f"compare-{v}-label",
                            ),
                            gr.Markdown(elem_id=f"compare-{v}-summary"),
                        ]
            c_image.change(
                app.on_compare_image,
                inputs=[c_image, c_learnt, c_fixed],
                outputs=[c_learnt, c_fixed],
                api_visibility="private",
            )
            c_run.click(
                app.compare,
                inputs=[c_image, c_learnt, c_fixed, c_noise, c_n, c_seed, c_post],
                outputs=sides,
                api_name="compare",
            )
            with gr.Row():
                c_sample = gr.Button(
                    "Sample 16 times: 16 posterior samples of each model on the image",
                    elem_id="compare-sample16",
                )
            c_samples = gr.Plot(label="16 posterior samples", elem_id="compare-samples")
            c_sample.click(
                app.sample16,
                inputs=[c_image, c_learnt, c_fixed, c_noise, c_n],
                outputs=[c_samples],
                api_name="sample16",
            )

        with gr.Tab("Train", id="train", visible=app.allow_train):
            gr.Markdown(
                "Train a small model on generated data, on this machine's CPU. **One training "
                "runs at a time** (concurrency limit 1): a second request waits in the queue. "
                f"Budget: at most {MAX_TRAIN_STEPS} steps or {MAX_TRAIN_MINUTES:g} minutes.\n\n"
                "**Your checkpoints are yours.** A model trained here is saved under a generated "
                "name and listed in this browser session only, after the shipped checkpoints, "
                "which the app never changes. Trained checkpoints of all visitors together are "
                f"capped at {app.max_runs} and {app.max_runs_mb:g} MB; past that the oldest are "
                "deleted. Delete yours at any time with the button below."
            )
            with gr.Row():
                t_task = gr.Dropdown(
                    TRAIN_TASKS, value="cluttered:single", label="Dataset and task"
                )
                t_size = gr.Number(
                    value=100,
                    precision=0,
                    minimum=28,
                    maximum=4096,
                    label="Canvas side (px)",
                    elem_id="train-size",
                )
                t_var = gr.Radio(["learnt", "fixed"], value="learnt", label="Posterior variance")
                t_n = gr.Slider(1, 8, value=4, step=1, label="Saccades T")
            with gr.Row():
                t_steps = gr.Number(
                    value=200,
                    precision=0,
                    minimum=1,
                    maximum=MAX_TRAIN_STEPS,
                    label="Steps",
                    elem_id="train-steps",
                )
                t_min = gr.Number(
                    value=0,
                    minimum=0,
                    maximum=MAX_TRAIN_MINUTES,
                    label="Minutes (0 = steps only; otherwise stops at whichever comes first)",
                )
                t_run = gr.Button("Train", variant="primary", elem_id="train-run")
            t_status = gr.Markdown(elem_id="train-status")
            t_plot = gr.Plot(label="Loss and accuracy", elem_id="train-plot")
            t_delete = gr.Button("Delete the checkpoints I trained", elem_id="train-delete")
            t_task.change(
                app.on_train_task, inputs=[t_task], outputs=[t_size], api_visibility="private"
            )
            t_run.click(
                app.train,
                inputs=[t_task, t_size, t_var, t_n, t_steps, t_min],
                outputs=[t_plot, t_status, checkpoint, c_learnt, c_fixed],
                api_name="train",
                concurrency_limit=1,
                concurrency_id="train",
            )
            t_delete.click(
                app.delete_my_runs,
                outputs=[t_status, checkpoint, c_learnt, c_fixed],
                api_visibility="private",
            )

        with gr.Tab("About", id="about"):
            gr.Markdown(
                ABOUT,
                latex_delimiters=[
                    {"left": "$$", "right": "$$", "display": True},
                    {"left": "$", "right": "$", "display": False},
                ],
            )
            eval_rows, eval_fig, bench, bench_fig = app.results()
            gr.Markdown("### Accuracy (from `assets/eval-*.json`, written by `saccade.evaluate`)")
            if eval_rows:
                gr.Dataframe(_frame(eval_rows), interactive=False, elem_id="about-eval")
                gr.Plot(eval_fig, elem_id="about-eval-plot")
            else:
                gr.Markdown("_No evaluation results yet: run `python -m saccade.evaluate`._")
            for path, caption in app.figures():
                gr.Image(path, label=caption, show_label=True, interactive=False)
            headline = app.headline()
            if headline is not None:
                gr.Markdown(
                    "### VS against the baselines (from `assets/bench-headline.json`, written "
                    "by `python -m saccade.bench`; README, Performance)\n\n" + headline[0]
                )
                gr.Plot(headline[1], elem_id="about-headline-plot")
            gr.Markdown(
                "### Speed and memory (from `assets/bench-*.json`, written by `saccade.bench`)"
            )
            if bench:
                gr.Dataframe(_frame(bench), interactive=False, elem_id="about-bench")
                gr.Plot(bench_fig, elem_id="about-bench-plot")
            else:
                gr.Markdown("_No benchmark results yet: run `python -m saccade.bench`._")
            gr.Markdown(LICENCES)
        demo.load(
            app.on_load,
            inputs=[checkpoint, c_learnt, c_fixed],
            outputs=[checkpoint, c_learnt, c_fixed],
            api_visibility="private",
        )
    return demo


def _frame(rows: list[dict]):
    """Rows of dicts as a pandas DataFrame (columns in first-seen order)."""
    import pandas as pd

    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pd.DataFrame(rows, columns=columns)


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme, CSS and page-load JavaScript (Gradio 6 takes them in
    ``launch``; the script names the trajectory's animation frames, see
    ``viz.PLOTLY_FRAMES_JS``), the default queue for every event (the train event has its own
    limit of 1) and no SSR (no Node)."""
    # One intra-op thread per request: a single image's saccades are small ops, and on a
    # shared CPU two OpenMP threads made Explore ~10x slower (35 ms -> 300-600 ms on 2 busy
    # cores). Threads started later (Gradio's workers) inherit this; training sets its own.
    torch.set_num_threads(int(os.environ.get("SACCADE_APP_THREADS", "1")))
    options = {
        "theme": _theme(),
        "css": CSS,
        "ssr_mode": False,
        "max_file_size": "200mb",
        "footer_links": ["api"],
        "js": viz.PLOTLY_FRAMES_JS,  # the trajectory's slider follows Play
    }
    # Two events at a time (two cores: each Explore uses one torch thread); up to QUEUE_SIZE
    # requests wait, and past that Gradio answers "Queue is full, please try again" at once
    # rather than holding a connection open (scripts/loadtest.py: 20 sessions, README).
    return demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE).launch(**(options | kwargs))


def _limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc's ``mallopt(M_ARENA_MAX, arenas)``, as ``MALLOC_ARENA_MAX`` would set it: with
    an arena per worker thread, freed image buffers stayed in the process (scripts/loadtest.py,
    20 sessions: RSS +35% from round 1 to 3; with 2 arenas, +6%). False where there is no glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, int(arenas)))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> None:
    if "MALLOC_ARENA_MAX" not in os.environ:  # before Gradio starts its threads
        _limit_malloc_arenas()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS)
    parser.add_argument(
        "--runs",
        type=Path,
        default=RUNS,
        help="where the Train tab writes (one folder per browser session; env SACCADE_RUNS_DIR)",
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        default=os.environ.get("SACCADE_NO_TRAIN", "").lower() in ("1", "true", "yes"),
        help="turn the Train tab off, e.g. on a Space that only demonstrates "
        "(env SACCADE_NO_TRAIN=1)",
    )
    args = parser.parse_args(argv)
    the_app = App(args.checkpoints, runs=args.runs, allow_train=not args.no_train)
    demo = build_demo(the_app)
    the_app.warm()
    launch(demo, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
