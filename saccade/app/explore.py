"""The Explore tab: where a model looks in one image, step by step, and what it concludes;
the trajectory exported as a GIF and JSON."""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import gradio as gr

import saccade

from .. import image_io, viz
from . import files
from .state import MAX_SACCADES, os_reason, refused, result_figures, session_id, trained_on
from .widgets import Dropdown, examples_block, image_input, settings

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

**Server images** (shown when the app was started with `--images DIR`) lists the slides and
images in that folder on the server, each with its size in pixels; a choice runs at once. A
slide (a tiled TIFF, SVS, OME-TIFF, ...) is never decoded whole: the proxy comes from a coarse
level, each crop and zoom from the tiles under it; the trajectory is drawn over its thumbnail,
and boxes, regions and hover positions are in its level-0 pixels.
"""


class ExploreOutputs(NamedTuple):
    """What ``explore`` returns, in the order of the tab's outputs."""

    trajectory: object  # plotly figure, animated over the steps
    sigma: object  # plotly figure
    proxy: object  # plotly figure
    label: dict  # gr.Label's value
    probs: object  # plotly figure
    gallery: list  # (PNG path, caption): each step's zoom and crop side by side
    truth: str  # Markdown
    status: str  # Markdown


class FirstScreen(NamedTuple):
    """What the page shows before any click (``first_screen``)."""

    image: str
    checkpoint: str
    outputs: ExploreOutputs


class NewImageOutputs(NamedTuple):
    """What ``on_new_image`` returns, flat as Gradio wants it: the checkpoint and saccade-count
    updates, then the fields of the run's ``ExploreOutputs`` (``.outputs``)."""

    checkpoint: object
    n_saccades: object
    trajectory: object
    sigma: object
    proxy: object
    label: dict
    probs: object
    gallery: list
    truth: str
    status: str

    @property
    def outputs(self) -> ExploreOutputs:
        return ExploreOutputs(*self[2:])


class ServerImageOutputs(NamedTuple):
    """What ``on_server_image`` returns, flat as Gradio wants it: the image input's new value
    (None: emptied, so that Look and Export run on the server image), then the fields of the
    run's ``ExploreOutputs`` (``.outputs``)."""

    image: object
    trajectory: object
    sigma: object
    proxy: object
    label: dict
    probs: object
    gallery: list
    truth: str
    status: str

    @property
    def outputs(self) -> ExploreOutputs:
        return ExploreOutputs(*self[1:])


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


class ExploreUI(NamedTuple):
    """The Explore components other tabs and the page load update."""

    checkpoint: object
    unusable: object
    server: object = None  # the "Server images" dropdown (``--images DIR``), else None


def gallery_files(items: list[tuple]) -> list[tuple[str, str]]:
    """``viz.gallery_pairs``' (image, caption) pairs with each image as a PNG file written once,
    atomically (``saccade.app.files``): given arrays, Gradio rewrote a shared file while
    serving it to another request."""
    return [(files.png_file(image), caption) for image, caption in items]


class ExploreEvents:
    """The Explore tab's event functions (a part of ``saccade.app.App``)."""

    def warm(self) -> None:
        """Load the default checkpoint now, so the first click does not pay for it: the one
        the first screen runs (``first_screen``, already computed by ``build_demo``), else
        the first listed."""
        if self.first_screen() is None and (name := self.best(None, None, None)):
            self.model(name)

    def first_screen(self) -> FirstScreen | None:
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
                    self._first_screen = FirstScreen(path, name, self.explore(path, name))
        return self._first_screen

    def explore(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ) -> ExploreOutputs:
        """Explore tab: where the model looks in ``image`` (an upload or an example), else in
        the server image named ``server`` (``--images DIR``: a slide is read tile by tile,
        its trajectory drawn over its thumbnail), and what it concludes."""
        t0 = time.perf_counter()
        truth = self.truth(image)
        session = session_id(request)
        # No checkpoint named (an API call with defaults): the first for the example's task.
        name = checkpoint or self.best(truth, None, session)
        model, out = self.run(
            image, name, proxy_noise, n_saccades, seed, posterior, session, invert, server
        )
        if out.slide is not None:  # its thumbnail, already small
            background = viz.downscale(out.image)
        else:
            file = image or str(self.server_image(server).path)
            _, background = self.image(file, getattr(model.config, "channels", 1))  # colour: RGB
            if invert:
                background = 255 - background
        t_predict = time.perf_counter() - t0
        cfg = model.config
        figures = result_figures(out, background, truth, cfg.variance, model_config=cfg)
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
            model, out.image, truth.get("dataset") if truth else None, out.image_shape
        )
        h, w = out.image_shape or out.image.shape[:2]
        shown = "image" if image or not server else f"server {'slide' if out.slide else 'image'}"
        shown += "" if image or not server else f" `{server}`"
        warnings += light_ground_hint(out.image, invert)
        status = "".join(f"⚠️ {w}\n\n" for w in warnings) + (
            f"**{out.class_names[out.label]}** after {len(out.probs)} saccades "
            f"(p = {float(out.probs[-1, out.label]):.2f}) · checkpoint `{name}` "
            f"({cfg.variance} σ, trained with T = {cfg.n_saccades} on {trained_on(cfg)}) · "
            "crops at the "
            f"{'posterior mode' if posterior != 'sample' else 'sampled z'}, seed {int(seed or 0)}, "
            f"proxy noise {float(proxy_noise or 0.0):g}{' · inverted' if invert else ''} · {shown} "
            f"{w}×{h} · predict {t_predict * 1000:.0f} ms, "
            f"total {(time.perf_counter() - t0) * 1000:.0f} ms"
        )
        return ExploreOutputs(
            figures["trajectory"],
            figures["sigma"],
            viz.proxy_figure(out.proxy, float(proxy_noise or 0.0)),
            viz.label_dict(out.probs[-1], out.class_names),
            viz.probs_figure(out.probs, out.class_names),
            gallery_files(viz.gallery_pairs(out.zooms, out.crops, out.boxes, (h, w))),
            md_truth,
            status,
        )

    def look(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ) -> ExploreOutputs:
        """The Look button: ``explore``, with a refusal shown in the status line and the
        panels cleared (``failed_outputs``) instead of an error toast over stale panels. The
        API's ``/explore`` raises, so that a client gets the error."""
        try:
            return self.explore(
                image, checkpoint, proxy_noise, n_saccades, seed, posterior, invert, server, request
            )
        except gr.Error as e:
            return failed_outputs(str(e.message))

    def on_new_image(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ) -> NewImageOutputs:
        """An example clicked or a file uploaded: run it at once (``look``). For a generated
        example the checkpoint of its task comes first and is chosen, and the saccades go to
        its T; an upload keeps the current checkpoint and saccades. A bad upload is refused
        here, on arrival, in the status line."""
        session = session_id(request)
        truth = self.truth(image) if image else None
        update = self._image_choices(image, checkpoint, None, session)
        n_update = gr.update()
        if truth is not None and update.get("value"):
            checkpoint = update["value"]
            meta = {m["name"]: m for m in self.list_checkpoints(session)}.get(checkpoint, {})
            n_saccades = int(meta.get("n_saccades", n_saccades or 4))
            n_update = gr.update(value=n_saccades, maximum=max(MAX_SACCADES, 2 * n_saccades))
        if not image:
            return NewImageOutputs(
                update, n_update, *failed_outputs("no image: pick an example or upload one.")
            )
        outputs = self.look(
            image, checkpoint, proxy_noise, n_saccades, seed, posterior, invert, request=request
        )
        return NewImageOutputs(update, n_update, *outputs)

    def on_server_image(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ) -> ServerImageOutputs:
        """A server image chosen (``--images DIR``): the image input emptied (the server image
        is what Look and Export then run on) and ``look`` run on it at once; a refused name
        (outside the folder, ``..``, a NUL, unreadable) is said in the status line."""
        if not server:
            return ServerImageOutputs(gr.update(), *failed_outputs("no server image chosen."))
        outputs = self.look(
            None, checkpoint, proxy_noise, n_saccades, seed, posterior, invert, server, request
        )
        return ServerImageOutputs(None, *outputs)

    def server_list(self):
        """The server images as they are on disk now (a page load): the dropdown's choices."""
        return gr.update(choices=self.server_choices())

    @staticmethod
    def mark_stale(status: str | None) -> str:
        """An input changed without a run: ``mark_stale``."""
        return mark_stale(status)

    def export(
        self,
        image,
        checkpoint=None,
        proxy_noise=0.0,
        n_saccades=None,
        seed=0,
        posterior="mean",
        invert=False,
        server=None,
        request: gr.Request | None = None,
    ) -> list[str]:
        """Explore's export: the same run as ``explore`` with these inputs, written as
        ``trajectory.gif`` (one frame per saccade, ≥ 800 px wide: the image with the path,
        the boxes and the ground truth, beside that step's region and crop; ``viz.gif``) and ``run.json`` (z, μ, σ,
        box and probabilities per step, the checkpoint and the settings) in the session's
        folder under ``exports`` (a full disk or a read-only folder is refused with a message).
        Returns the two paths."""
        from ..export import prediction_json
        from ..viz.gif import slide_gif

        session = session_id(request)
        name = checkpoint or self.best(self.truth(image), None, session)  # as ``explore``
        model, out = self.run(
            image, name, proxy_noise, n_saccades, seed, posterior, session, invert, server
        )
        truth = self.truth(image)
        if out.slide is not None and server and not image:  # its name in DIR, not a server path
            out = dataclasses.replace(out, slide=str(server))
        settings = {
            "proxy_noise": float(proxy_noise or 0.0),
            "n_saccades": len(out.boxes),
            "seed": int(seed or 0),
            "posterior": "sample" if posterior == "sample" else "mean",
            "invert": bool(invert),
        }
        # one folder per session, overwritten by its next export (Gradio serves a copy)
        folder = self.exports / session
        gif, record = folder / "trajectory.gif", folder / "run.json"
        gif_bytes = slide_gif(
            out, None if truth is None else truth["boxes"], model.config.crop_size
        )
        data = gif_bytes, prediction_json(out, name, settings)
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

    def on_image(self, path, current, request: gr.Request | None = None):
        """When the image changes: for a generated example, put the checkpoints trained on its
        task first and select the best match; otherwise keep the current choice."""
        return self._image_choices(path, current, None, session_id(request))

    def on_checkpoint(self, name, request: gr.Request | None = None):
        """When the checkpoint changes: the saccade slider goes to its T (up to 2 T)."""
        meta = {m["name"]: m for m in self.list_checkpoints(session_id(request))}.get(name)
        if meta is None:
            return gr.update()
        t = int(meta.get("n_saccades", 4))
        return gr.update(value=t, maximum=max(MAX_SACCADES, 2 * t))


def server_dropdown(app):
    """The "Server images" dropdown: the slides and images under ``--images DIR`` with their
    size (``State.server_choices``); hidden without ``--images``."""
    return Dropdown(
        app.server_choices() if app.images is not None else [],
        value=None,
        label="Server images",
        info="The server's own slides and images, width × height in level-0 pixels; a choice "
        "runs at once",
        visible=app.images is not None,
        elem_id="explore-server",
    )


def wire_server(app, server, image, examples, inputs: list, outputs: list) -> None:
    """With ``--images``: the server image joins ``inputs`` (last: the API's /explore and
    /export gain it), a choice runs ``on_server_image`` (which empties the upload), and an
    upload or an example click clears the choice. Without it, nothing: the API and the
    events stay as they were."""
    if app.images is None:
        return
    inputs.append(server)
    server.input(
        app.on_server_image, inputs=inputs, outputs=[image, *outputs], api_visibility="private"
    )
    for chosen in (image.upload, examples.load_input_event.then):
        chosen(lambda: None, outputs=[server], queue=False, api_visibility="private")


def build(app) -> ExploreUI:
    """The Explore tab's components and events (inside ``gr.Tab``), opened on the first
    example already run (``first_screen``). An example click or an upload runs at once
    (``on_new_image``); a changed setting marks the result out of date until Look."""
    choices = app.checkpoint_choices()
    metas = {m["name"]: m for m in app.list_checkpoints()}
    first = choices[0][1] if choices else None
    screen = app.first_screen()
    first_image, shown = (
        (screen.image, screen.outputs) if screen else (None, ExploreOutputs(*[None] * 8))
    )
    if screen:
        first = screen.checkpoint
    t_first = int(metas[first].get("n_saccades", 4)) if first else 4

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            image = image_input("explore", first_image)
            examples = examples_block(
                image,
                app.examples(),
                "Examples (generated test images with ground truth): a click runs one",
                elem_id="explore-examples",
            )
            server = server_dropdown(app)
            checkpoint = Dropdown(
                choices,
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
            unusable = gr.Markdown(app.unusable_markdown(), elem_id="explore-unusable")
        with gr.Column(scale=3, min_width=320):
            status = gr.Markdown(shown.status, elem_id="explore-status")
            trajectory = gr.Plot(
                shown.trajectory
                or viz.placeholder_figure("Pick an example or upload an image, then Look."),
                show_label=False,
                elem_id="explore-trajectory",
            )
    with gr.Row():
        label = gr.Label(
            shown.label, num_top_classes=5, label="Prediction", elem_id="explore-label"
        )
        probs = gr.Plot(shown.probs, show_label=False, elem_id="explore-probs")
    truth_md = gr.Markdown(shown.truth, elem_id="explore-truth")
    with gr.Row():
        sigma = gr.Plot(shown.sigma, show_label=False, elem_id="explore-sigma")
        proxy = gr.Plot(shown.proxy, show_label=False, elem_id="explore-proxy")
    gallery = gr.Gallery(
        shown.gallery,
        label="Each step: the full-resolution region (left) and the k×k crop the network saw "
        "(right)",
        format="png",
        columns=4,
        height="auto",
        object_fit="contain",
        elem_id="explore-gallery",
    )
    with gr.Row():
        export = gr.Button("Export GIF and JSON", elem_id="explore-export")
        exported = gr.File(
            label="The trajectory as an animated GIF (with the zooms) and its numbers as JSON",
            file_count="multiple",
            interactive=False,
            elem_id="explore-exported",
        )
    with gr.Accordion("Help: image formats, limits and how to read the plots", open=False):
        gr.Markdown(EXPLORE_HELP, elem_id="explore-help")

    inputs = [image, checkpoint, noise, n_sacc, seed, posterior, invert]
    outputs = list(
        ExploreOutputs(trajectory, sigma, proxy, label, probs, gallery, truth_md, status)
    )
    wire_server(app, server, image, examples, inputs, outputs)
    export.click(app.export, inputs=inputs, outputs=[exported], api_name="export")
    run.click(app.look, inputs=inputs, outputs=outputs, api_visibility="private")
    # The API's /explore raises on a refusal (a client gets the error); the page's events
    # show it in the status line. An invisible button carries the API endpoint.
    api = gr.Button(visible=False, elem_id="explore-api")
    api.click(app.explore, inputs=inputs, outputs=outputs, api_name="explore")
    new_image = dict(
        fn=app.on_new_image,
        inputs=inputs,
        outputs=[checkpoint, n_sacc, *outputs],
        api_visibility="private",
    )
    examples.load_input_event.then(**new_image)
    image.upload(**new_image)
    image.clear(**new_image)
    for changed in (
        checkpoint.input,
        seed.input,
        posterior.input,
        invert.input,
        noise.release,
        n_sacc.release,
    ):
        changed(
            app.mark_stale,
            inputs=[status],
            outputs=[status],
            queue=False,
            show_progress="hidden",
            api_visibility="private",
        )
    checkpoint.change(
        app.on_checkpoint, inputs=[checkpoint], outputs=[n_sacc], api_visibility="private"
    )
    return ExploreUI(checkpoint, unusable, server if app.images is not None else None)
