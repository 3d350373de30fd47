"""The Explore tab (``ExploreTab``): where a model looks in one image, step by step, and what
it concludes; the trajectory exported as a GIF and JSON."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from pathlib import Path
from typing import NamedTuple

import gradio as gr

import saccade

from .. import image_io, viz
from . import files
from .page import Page, Tab
from .state import (
    CHAIN_MIN_SIDE,
    MAX_SACCADES,
    Look,
    State,
    os_reason,
    refused,
    result_figures,
    session_id,
    slide_reading,
    trained_on,
)
from .widgets import Dropdown, examples_block, image_input, leading, settings

EXPLORE_HELP = f"""
Pick an example or upload an image (PNG, JPEG, TIFF, WebP, BMP or GIF; gray, RGB or RGBA,
8 or 16 bit; at least {image_io.MIN_SIDE} px a side, at most {image_io.MAX_PIXELS:,} pixels and
{image_io.MAX_FILE_BYTES // 2**20} MiB): it runs at once. It is converted as in training:
grayscale (RGB for a colour checkpoint), padded to a square; the models learnt bright digits
on black, so tick **Invert** for a dark digit on white paper. A changed setting marks the
result out of date until **Look**.

The trajectory plot has **Play** and a step slider. Dashed boxes are the ground-truth digits
of a generated example: green from the step a crop first looks at the digit, red until then
(at the last step, red means missed). The blue ellipse is 1σ of the posterior around each
crop centre (hover a centre for σ in pixels and the σ of the scale). The right panel is the
posterior over the proxy's cells at that step, each step scaled to its own most probable cell
(the colour bar says so; hover a cell for its probability), the proxy's strokes in white
over it. The σ plot shows apart what the variance mode sets (the scale's σ and the offset's
σ in the chosen cell) and the spread of the crop centre over the cells. Each gallery picture
is one step: the full-resolution region (W×H px) and the k×k crop the network saw.

**The crop chain** (shown under the trajectory for a slide or an image of at least
{CHAIN_MIN_SIDE:,} px a side, such as the zoom example): one panel per step, each over the
earlier crop that holds the step's crop (else the whole image, or a square four times the
crop's side around it), the crop's box drawn inside in level-0 pixels, titled with the crop's
side and the pyramid level it was read from (the glimpse blends it with the next coarser one).
On a 32,768² canvas a 48 px crop is a twentieth of a thumbnail's pixel: here it is seen inside
the 160 px crop it refines.

**Server images** (shown when the app was started with `--images DIR`) lists the slides and
images in that folder on the server, each with its size in pixels; a choice runs at once. A
slide (a tiled TIFF, SVS, OME-TIFF, ...) is never decoded whole: the proxy comes from a coarse
level, each crop and zoom from the tiles under it; the trajectory is drawn over its thumbnail,
and boxes, regions and hover positions are in its level-0 pixels.
"""


class ExploreOutputs(NamedTuple):
    """What ``ExploreTab.run`` returns, in the order of the tab's outputs."""

    trajectory: object  # plotly figure, animated over the steps
    sigma: object  # plotly figure
    proxy: object  # plotly figure
    label: dict  # gr.Label's value
    probs: object  # plotly figure
    gallery: list  # (PNG path, caption): each step's zoom and crop side by side
    truth: str  # Markdown
    status: str  # Markdown


class FirstScreen(NamedTuple):
    """What the page shows before any click (``ExploreTab.first_screen``)."""

    image: str
    checkpoint: str
    outputs: ExploreOutputs


NewImageOutputs = leading(
    "NewImageOutputs",
    ("checkpoint", "n_saccades"),
    ExploreOutputs,
    "What ``on_new_image`` returns: the checkpoint and saccade-count updates, then the run's "
    "``ExploreOutputs`` (``.outputs``).",
)
ServerImageOutputs = leading(
    "ServerImageOutputs",
    ("image",),
    ExploreOutputs,
    "What ``on_server_image`` returns: the image input's new value (None: emptied, so that "
    "Look and Export run on the server image), then the run's ``ExploreOutputs`` "
    "(``.outputs``).",
)

#: the status line's first words when the settings changed since the result was computed
STALE = "⏳ **Out of date:**"


def failed_outputs(message: str) -> ExploreOutputs:
    """What Explore shows when a run is refused: the reason in the status line and every
    panel back to its placeholder (nothing left from an earlier image)."""
    return ExploreOutputs(
        viz.placeholder_figure(message),
        viz.placeholder_figure("", height=300),
        viz.placeholder_figure("", height=300),
        None,
        viz.placeholder_figure("", height=300),
        [],
        "",
        f"❌ **Cannot run:** {message}",
    )


def light_ground_hint(image, invert: bool) -> list[str]:
    """A hint when the image's ground is light (a dark digit on white paper): the models
    learnt light digits on a black ground, so the Invert box should be ticked. The ground is
    the image's median brightness; [] when it is dark or the image is already inverted."""
    import numpy as np

    if invert or float(np.median(np.asarray(image))) <= 127:
        return []
    return [
        "The ground of this image is light (a dark digit on white paper?), but the model "
        "learnt light digits on a black ground: tick **Invert** and Look again."
    ]


def mark_stale(status: str | None) -> str:
    """The status line once an input changed without a run: it says so, above the result it
    describes (the panels stay, marked, until Look)."""
    status = status or ""
    if status.startswith(STALE) or status.startswith("❌"):
        return status
    return (
        f"{STALE} the settings changed since this result; press **Look** to run with them.\n\n"
        + status
    )


def gallery_files(items: list[tuple]) -> list[tuple[str, str]]:
    """``viz.gallery_pairs``' (image, caption) pairs with each image as a PNG file written once,
    atomically (``saccade.app.files``): given arrays, Gradio rewrote a shared file while
    serving it to another request."""
    return [(files.png_file(image), caption) for image, caption in items]


def truth_markdown(truth: dict | None, out, crop_size: int) -> str:
    """How the crops covered a generated example's digits (``viz.coverage_markdown``)."""
    if truth is None:
        return "No ground truth: this image is not one of the generated examples."
    return viz.coverage_markdown(
        truth["boxes"],
        out.boxes,
        crop_size,
        truth.get("digits"),
        truth["class_name"],
        out.class_names[out.label],
    )


def explore_event(handler):
    """``handler(look)`` as Gradio's event function: the Explore inputs, in the tab's order
    (the parameters of the API's ``/explore`` and ``/export``), made one ``Look``."""

    def event(
        image=None,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ):
        session = session_id(request)
        return handler(
            Look(
                image, checkpoint, proxy_noise, n_saccades, seed, posterior, invert, server, session
            )
        )

    event.__name__ = event.__qualname__ = handler.__name__
    event.__doc__ = handler.__doc__
    return event


class ExploreInputs(NamedTuple):
    """The Explore inputs a run reads, in ``explore_event``'s order (the server image, with
    ``--images``, joins them last)."""

    image: object
    checkpoint: object
    proxy_noise: object
    n_saccades: object
    seed: object
    posterior: object
    invert: object


class ExploreTab(Tab):
    """The Explore tab: its event functions, each taking a ``Look`` (``explore_event`` makes
    one from the tab's inputs), and ``build``."""

    title, id = "Explore", "explore"

    #: the large-image predictions kept for their crop chain (``chain``), the most recent
    RECENT = 8

    def __init__(self, state: State):
        super().__init__(state)
        self._first_screen: FirstScreen | None | bool = False  # False: not computed yet
        # Look -> (checkpoint name, model, prediction, truth) of recent large-image runs: the
        # chain event that follows a run draws from it instead of predicting again
        self._recent: collections.OrderedDict = collections.OrderedDict()
        self._recent_lock = threading.Lock()

    def warm(self) -> None:
        """Load the default checkpoint now, so the first click does not pay for it: the one
        the first screen runs (``first_screen``, already computed by ``build``), else the
        first listed."""
        if self.first_screen() is None and (name := self.state.best(None, None, None)):
            self.state.model(name)

    def first_screen(self) -> FirstScreen | None:
        """(example path, checkpoint, ``run`` outputs) of the first example through its
        default checkpoint: what the page shows before any click. Computed once per tab
        object (at start-up, in ``build``) and kept; None without examples or checkpoints."""
        if self._first_screen is False:
            self._first_screen = None
            examples = self.state.examples()
            if examples:
                path = examples[0][0]
                name = self.state.best(self.state.truth(path), None, None)
                if name:
                    self._first_screen = FirstScreen(path, name, self.run(Look(path, name)))
        return self._first_screen

    def _predict(self, look: Look):
        """(checkpoint name, model, ``saccade.predict`` output, ground truth) of ``look``; no
        checkpoint named (an API call with defaults): the first for the example's task."""
        truth = self.state.truth(look.image)
        name = look.checkpoint or self.state.best(truth, None, look.session)
        model, out = self.state.run(look.with_checkpoint(name))
        return name, model, out, truth

    def _background(self, look: Look, model, out):
        """The image under the trajectory (``State.background``)."""
        return self.state.background(look, model, out)

    @staticmethod
    def is_large(out) -> bool:
        """Whether a prediction gets the crop chain: on a slide (or canvas), or on an image of
        at least ``CHAIN_MIN_SIDE`` a side."""
        shape = out.image_shape or out.image.shape[:2]
        return out.slide is not None or out.image_scale < 1 or max(shape) >= CHAIN_MIN_SIDE

    @staticmethod
    def _key(look: Look) -> Look:
        """``look`` as the chain's cache key: the server image does not count beside an
        image (the run uses the image)."""
        return dataclasses.replace(look, server=None) if look.image else look

    def _remember(self, look: Look, found: tuple) -> None:
        with self._recent_lock:
            self._recent[self._key(look)] = found
            self._recent.move_to_end(self._key(look))
            while len(self._recent) > self.RECENT:
                self._recent.popitem(last=False)

    def _reader(self, look: Look, model, out):
        """What the chain reads regions through: the slide the prediction read (cached open),
        else the model's input array (inverted as the run was)."""
        channels = getattr(model.config, "channels", 1)
        if out.slide is not None:  # opened as the run read it (scale, inversion)
            return self.state.slide(out.slide, channels, slide_reading(model, bool(look.invert)))
        file = look.image or str(self.state.server_image(look.server).path)
        image, _ = self.state.image(file, channels)
        return 255 - image if look.invert else image

    def chain(self, look: Look):
        """The crop chain of ``look``'s prediction drawn nested (``viz.zoom_chain_figure``:
        a panel per step, the region around its crop read from the slide, the crop's box, its
        side and pyramid level), with the example's ground truth; None when the image is not
        large (``is_large``). Taken from the run that just happened where it is kept, else
        predicted again (the same settings give the same crops). Raises a refusal as
        ``run``."""
        with self._recent_lock:
            found = self._recent.get(self._key(look))
        if found is None:
            found = self._predict(look)
        name, model, out, truth = found
        if not self.is_large(out):
            return None
        return viz.zoom_chain_figure(
            out,
            self._reader(look, model, out),
            model.config.crop_size,
            truth=None if truth is None else truth["boxes"],
            title=f"The crop chain of `{name}`, zoom by zoom",
        )

    def _first_chain(self, screen: FirstScreen | None):
        """The first screen's chain: drawn from its run when that was on a large image (and
        so kept), else None (no second prediction at start-up)."""
        if screen is None:
            return None
        look = Look(screen.image, screen.checkpoint)
        with self._recent_lock:
            kept = self._key(look) in self._recent
        return self.chain(look) if kept else None

    def on_chain(self, look: Look):
        """The chain panel after a run: ``chain``'s figure shown, or the panel hidden (an
        image that is not large, or a refused run: the status line says why)."""
        try:
            fig = self.chain(look)
        except gr.Error:
            fig = None
        return gr.update(value=fig, visible=fig is not None)

    def run(self, look: Look) -> ExploreOutputs:
        """Where the model looks in ``look.image`` (an upload or an example), else in the
        server image ``look.server`` (``--images DIR``: a slide is read tile by tile, its
        trajectory drawn over its thumbnail), and what it concludes: the API's ``/explore``,
        which raises a refusal (``gr.Error``)."""
        t0 = time.perf_counter()
        name, model, out, truth = self._predict(look)
        background = self._background(look, model, out)
        t_predict = time.perf_counter() - t0
        if self.is_large(out):
            self._remember(look, (name, model, out, truth))
        cfg = model.config
        figures = result_figures(out, background, truth, cfg.variance, model_config=cfg)
        h, w = out.image_shape or out.image.shape[:2]
        return ExploreOutputs(
            figures["trajectory"],
            figures["sigma"],
            viz.proxy_figure(out.proxy, float(look.proxy_noise or 0.0)),
            viz.label_dict(out.probs[-1], out.class_names),
            viz.probs_figure(out.probs, out.class_names),
            gallery_files(viz.gallery_pairs(out.zooms, out.crops, out.boxes, (h, w))),
            truth_markdown(truth, out, cfg.crop_size),
            self._status(look, name, model, out, truth, t0, t_predict),
        )

    @staticmethod
    def _status(look: Look, name: str, model, out, truth, t0: float, t_predict: float) -> str:
        """The status line: the warnings, then the prediction, the checkpoint, the settings,
        what was run on and the time it took."""
        cfg = model.config
        warnings = saccade.infer.input_warnings(
            model, out.image, truth.get("dataset") if truth else None, out.image_shape, out.mpp
        )
        warnings += light_ground_hint(out.image, look.invert)
        h, w = out.image_shape or out.image.shape[:2]
        shown = "image"
        if not look.image and look.server:
            shown = f"server {'slide' if out.slide else 'image'} `{look.server}`"
        return "".join(f"⚠️ {w}\n\n" for w in warnings) + (
            f"**{out.class_names[out.label]}** after {len(out.probs)} saccades "
            f"(p = {float(out.probs[-1, out.label]):.2f}) · checkpoint `{name}` "
            f"({cfg.variance} σ, trained with T = {cfg.n_saccades} on {trained_on(cfg)}) · "
            "crops at the "
            f"{'posterior mode' if look.posterior != 'sample' else 'sampled z'}, "
            f"seed {int(look.seed or 0)}, proxy noise {float(look.proxy_noise or 0.0):g}"
            f"{' · inverted' if look.invert else ''} · {shown} {w}×{h} · "
            f"predict {t_predict * 1000:.0f} ms, "
            f"total {(time.perf_counter() - t0) * 1000:.0f} ms"
        )

    def look(self, look: Look) -> ExploreOutputs:
        """The Look button: ``run``, with a refusal shown in the status line and the panels
        cleared (``failed_outputs``) instead of an error toast over stale panels. The API's
        ``/explore`` raises, so that a client gets the error."""
        try:
            return self.run(look)
        except gr.Error as e:
            return failed_outputs(str(e.message))

    def on_new_image(self, look: Look) -> NewImageOutputs:
        """An example clicked or a file uploaded: run it at once (``look``). For a generated
        example the checkpoint of its task comes first and is chosen, and the saccades go to
        its T; an upload keeps the current checkpoint and saccades. A bad upload is refused
        here, on arrival, in the status line. The upload replaces a server image."""
        look = dataclasses.replace(look, server=None)
        truth = self.state.truth(look.image) if look.image else None
        update = self.state.image_choices(look.image, look.checkpoint, None, look.session)
        n_update = gr.update()
        if truth is not None and update.get("value"):
            meta = self._meta(update["value"], look.session) or {}
            n = int(meta.get("n_saccades", look.n_saccades or 4))
            look = dataclasses.replace(look, checkpoint=update["value"], n_saccades=n)
            n_update = gr.update(value=n, maximum=max(MAX_SACCADES, 2 * n))
        if not look.image:
            return NewImageOutputs(
                update, n_update, *failed_outputs("no image: pick an example or upload one.")
            )
        return NewImageOutputs(update, n_update, *self.look(look))

    def on_server_image(self, look: Look) -> ServerImageOutputs:
        """A server image chosen (``--images DIR``): the image input emptied (the server image
        is what Look and Export then run on) and ``look`` run on it at once; a refused name
        (outside the folder, ``..``, a NUL, unreadable) is said in the status line."""
        if not look.server:
            return ServerImageOutputs(gr.update(), *failed_outputs("no server image chosen."))
        return ServerImageOutputs(None, *self.look(dataclasses.replace(look, image=None)))

    def export(self, look: Look) -> list[str]:
        """Explore's export: the same run as ``run``, written as ``trajectory.gif`` (one
        frame per saccade, ≥ 800 px wide: the image with the path, the boxes and the ground
        truth, beside that step's region and crop; ``viz.gif``) and ``run.json`` (z, μ, σ,
        box and probabilities per step, the checkpoint and the settings) in the session's
        folder under ``exports`` (a full disk or a read-only folder is refused with a
        message). Returns the two paths."""
        from ..export import prediction_json
        from ..viz.gif import slide_gif

        name, model, out, truth = self._predict(look)
        if out.slide is not None and look.server and not look.image:  # its name in DIR
            out = dataclasses.replace(out, slide=str(look.server))
        elif out.slide is not None:  # an example slide: its file name, not the server's path
            out = dataclasses.replace(out, slide=Path(out.slide).name)
        settings = {
            "proxy_noise": float(look.proxy_noise or 0.0),
            "n_saccades": len(out.boxes),
            "seed": int(look.seed or 0),
            "posterior": "sample" if look.posterior == "sample" else "mean",
            "invert": bool(look.invert),
        }
        # one folder per session, overwritten by its next export (Gradio serves a copy)
        folder = self.state.exports / look.session
        gif, record = folder / "trajectory.gif", folder / "run.json"
        boxes = None if truth is None else truth["boxes"]
        data = slide_gif(out, boxes, model.config.crop_size), prediction_json(out, name, settings)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            gif.write_bytes(data[0])
            record.write_text(data[1])
        except OSError as e:  # a full disk, a read-only folder
            raise refused(
                f"Cannot write the export: {os_reason(e)} in the server's export folder; "
                "the run itself worked (the Explore outputs show it). Try again later."
            ) from None
        return [str(gif), str(record)]

    def _meta(self, name, session) -> dict | None:
        """The listed checkpoint ``name``'s JSON, None when it is not listed."""
        return {m["name"]: m for m in self.state.list_checkpoints(session)}.get(name)

    def on_image(self, path, current, request: gr.Request | None = None):
        """When the image changes: for a generated example, put the checkpoints trained on its
        task first and select the best match; otherwise keep the current choice."""
        return self.state.image_choices(path, current, None, session_id(request))

    def on_checkpoint(self, name, request: gr.Request | None = None):
        """When the checkpoint changes: the saccade slider goes to its T (up to 2 T)."""
        meta = self._meta(name, session_id(request))
        if meta is None:
            return gr.update()
        t = int(meta.get("n_saccades", 4))
        return gr.update(value=t, maximum=max(MAX_SACCADES, 2 * t))

    def on_page_load(self, request: gr.Request | None = None):
        """When a page loads: the unusable-checkpoints note for this session."""
        return self.state.unusable_markdown(session_id(request))

    def server_list(self):
        """The server images as they are on disk now (a page load): the dropdown's choices."""
        return gr.update(choices=self.state.server_choices(), info=self.state.server_info())

    # -- the page ------------------------------------------------------------------------

    def build(self, page: Page) -> None:
        """The Explore tab's components and events (inside ``gr.Tab``), opened on the first
        example already run (``first_screen``). An example click or an upload runs at once
        (``on_new_image``); a changed setting marks the result out of date until Look."""
        screen = self.first_screen()
        shown = screen.outputs if screen else ExploreOutputs(*[None] * 8)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                inputs, examples, server, run = self._input_column(screen)
                unusable = gr.Markdown(self.state.unusable_markdown(), elem_id="explore-unusable")
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown(shown.status, elem_id="explore-status")
                trajectory = gr.Plot(
                    shown.trajectory
                    or viz.placeholder_figure("Pick an example or upload an image, then Look."),
                    show_label=False,
                    elem_id="explore-trajectory",
                )
                first_chain = self._first_chain(screen)
                chain = gr.Plot(
                    first_chain,
                    show_label=False,
                    visible=first_chain is not None,
                    elem_id="zoom-chain",
                )
        outputs = self._result_panels(shown, trajectory, status)
        export, exported = self._export_row()
        with gr.Accordion("Help: image formats, limits and how to read the plots", open=False):
            gr.Markdown(EXPLORE_HELP, elem_id="explore-help")
        page.add_list("checkpoint", inputs.checkpoint)
        page.demo.load(self.on_page_load, outputs=[unusable], api_visibility="private")
        run_inputs = list(inputs)
        runs = self._wire_server(page, server, inputs.image, examples, run_inputs, list(outputs))
        runs += self._wire_runs(inputs, examples, run, run_inputs, outputs, (export, exported))
        for done in runs:  # after each run on the page: its crop chain, or the panel hidden
            done.then(
                explore_event(self.on_chain),
                inputs=run_inputs,
                outputs=[chain],
                show_progress="hidden",
                api_visibility="private",
            )
        self._wire_settings(inputs, status)

    def _first_choice(self, screen: FirstScreen | None) -> tuple[str | None, int]:
        """The checkpoint the dropdown opens on (the first screen's, else the first listed)
        and its T."""
        choices = self.state.checkpoint_choices()
        first = screen.checkpoint if screen else (choices[0][1] if choices else None)
        meta = (self._meta(first, None) if first else None) or {}
        return first, int(meta.get("n_saccades", 4))

    def _input_column(self, screen: FirstScreen | None):
        """The image, its examples, the server images, the checkpoint, the settings and the
        Look button. Returns (``ExploreInputs``, examples, server dropdown, Look and the
        API's hidden button)."""
        first, t_first = self._first_choice(screen)
        image = image_input("explore", screen.image if screen else None)
        examples = examples_block(
            image,
            self.state.examples(),
            "Examples with ground truth: a click runs one",
            elem_id="explore-examples",
        )
        server = self._server_dropdown()
        self._tissue = self._tissue_toggle()
        checkpoint = Dropdown(
            self.state.checkpoint_choices(),
            value=first,
            label="Checkpoint (task, variance mode, T, test accuracy)",
            elem_id="explore-checkpoint",
        )
        noise, n_sacc, seed, posterior = settings(
            "explore", t_first, max(MAX_SACCADES, 2 * t_first)
        )
        invert = gr.Checkbox(
            False,
            label="Invert the image (for a dark digit on a light ground)",
            elem_id="explore-invert",
        )
        run = gr.Button("Look", variant="primary", elem_id="explore-run")
        inputs = ExploreInputs(image, checkpoint, noise, n_sacc, seed, posterior, invert)
        return inputs, examples, server, run

    @staticmethod
    def _result_panels(shown: ExploreOutputs, trajectory, status) -> ExploreOutputs:
        """The prediction, the probabilities, the ground truth, the σ and proxy plots and
        the gallery, opened on ``shown``. Returns every output component, ``trajectory`` and
        ``status`` (made beside the inputs) among them."""
        with gr.Row():
            label = gr.Label(
                shown.label, num_top_classes=5, label="Prediction", elem_id="explore-label"
            )
            probs = gr.Plot(shown.probs, show_label=False, elem_id="explore-probs")
        truth = gr.Markdown(shown.truth, elem_id="explore-truth")
        with gr.Row():
            sigma = gr.Plot(shown.sigma, show_label=False, elem_id="explore-sigma")
            proxy = gr.Plot(shown.proxy, show_label=False, elem_id="explore-proxy")
        gallery = gr.Gallery(
            shown.gallery,
            label="Each step: the full-resolution region (left) and the k×k crop the network "
            "saw (right)",
            format="png",
            columns=4,
            height="auto",
            object_fit="contain",
            elem_id="explore-gallery",
        )
        return ExploreOutputs(trajectory, sigma, proxy, label, probs, gallery, truth, status)

    @staticmethod
    def _export_row():
        """The export button and the files it returns."""
        with gr.Row():
            export = gr.Button("Export GIF and JSON", elem_id="explore-export")
            exported = gr.File(
                label="The trajectory as an animated GIF (with the zooms) and its numbers as JSON",
                file_count="multiple",
                interactive=False,
                elem_id="explore-exported",
            )
        return export, exported

    def _server_dropdown(self):
        """The "Server images" dropdown: the slides and images under ``--images DIR`` with
        their size (``State.server_choices``); hidden without ``--images``."""
        images = self.state.images is not None
        return Dropdown(
            self.state.server_choices() if images else [],
            value=None,
            label="Server images",
            info=self.state.server_info(),
            visible=images,
            elem_id="explore-server",
        )

    def _tissue_toggle(self):
        """The "Show the tissue mask" box and the thumbnail it shows, for a server slide
        (``on_tissue``); hidden without ``--images``."""
        images = self.state.images is not None
        box = gr.Checkbox(
            False,
            label="Show the tissue mask of the server slide",
            visible=images,
            elem_id="explore-tissue",
        )
        shown = gr.Image(visible=False, interactive=False, elem_id="explore-tissue-image")
        return box, shown

    def on_tissue(self, show, server):
        """The tissue image's update: the server slide's thumbnail with its mask tinted over
        it (``State.tissue_view``), captioned with its share of the slide; hidden when the
        box is not ticked or no server slide is chosen."""
        if not show or not server:
            return gr.update(visible=False, value=None)
        try:
            view, share = self.state.tissue_view(server)
        except gr.Error as e:
            return gr.update(visible=True, value=None, label=str(e))
        label = f"Tissue mask (Otsu on the thumbnail): {share:.0%} of {server}"
        return gr.update(visible=True, value=view, label=label)

    def _wire_server(self, page: Page, server, image, examples, inputs: list, outputs: list):
        """With ``--images``: the server image joins ``inputs`` (last: the API's /explore and
        /export gain it), a choice runs ``on_server_image`` (which empties the upload), an
        upload or an example click clears the choice, and a page load lists the folder as it
        is then. Without it, nothing: the API and the events stay as they were. Returns the
        run's event ([] without it)."""
        if self.state.images is None:
            return []
        inputs.append(server)
        chosen_run = server.input(
            explore_event(self.on_server_image),
            inputs=inputs,
            outputs=[image, *outputs],
            api_visibility="private",
        )
        for chosen in (image.upload, examples.load_input_event.then):
            chosen(lambda: None, outputs=[server], queue=False, api_visibility="private")
        box, shown = self._tissue
        for changed in (box.change, server.change):
            changed(self.on_tissue, [box, server], [shown], api_visibility="private")
        page.demo.load(self.server_list, outputs=[server], api_visibility="private")
        return [chosen_run]

    def _wire_runs(self, inputs, examples, run, run_inputs, outputs, export_row) -> list:
        """Look, the API's /explore and /export, and a new image (an example, an upload or
        the image cleared), each on ``run_inputs``. Returns the page's run events (Look and
        the new images; not the API's)."""
        export, exported = export_row
        outputs = list(outputs)
        export.click(
            explore_event(self.export), inputs=run_inputs, outputs=[exported], api_name="export"
        )
        looked = run.click(
            explore_event(self.look),
            inputs=run_inputs,
            outputs=outputs,
            api_visibility="private",
        )
        # The API's /explore raises on a refusal (a client gets the error); the page's events
        # show it in the status line. An invisible button carries the API endpoint.
        api = gr.Button(visible=False, elem_id="explore-api")
        api.click(explore_event(self.run), inputs=run_inputs, outputs=outputs, api_name="explore")
        new_image = dict(
            fn=explore_event(self.on_new_image),
            inputs=run_inputs,
            outputs=[inputs.checkpoint, inputs.n_saccades, *outputs],
            api_visibility="private",
        )
        return [
            looked,
            examples.load_input_event.then(**new_image),
            inputs.image.upload(**new_image),
            inputs.image.clear(**new_image),
        ]

    def _wire_settings(self, inputs: ExploreInputs, status) -> None:
        """A changed setting marks the result out of date (``mark_stale``); a changed
        checkpoint moves the saccade slider to its T."""
        for changed in (
            inputs.checkpoint.input,
            inputs.seed.input,
            inputs.posterior.input,
            inputs.invert.input,
            inputs.proxy_noise.release,
            inputs.n_saccades.release,
        ):
            changed(
                mark_stale,
                inputs=[status],
                outputs=[status],
                queue=False,
                show_progress="hidden",
                api_visibility="private",
            )
        inputs.checkpoint.change(
            self.on_checkpoint,
            inputs=[inputs.checkpoint],
            outputs=[inputs.n_saccades],
            api_visibility="private",
        )
