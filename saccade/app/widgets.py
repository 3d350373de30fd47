"""Pieces more than one tab uses, written once: the input components whose own checks are
refusals, the image input with its examples, the prediction settings, and the flat outputs
of an event that updates a few inputs before a tab's results."""

from __future__ import annotations

import collections

import gradio as gr

from .state import refused

UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"]
POSTERIOR_CHOICES = [("posterior mode", "mean"), ("a sample of q", "sample")]


def _refusing(base: type) -> type:
    """``base`` (a Gradio input component) whose own check of a value sent to it (a
    dropdown's or radio's choices, a slider's or number's range, a file's type) is a refused
    request like the app's: the message names the input, and the server's log gets one
    ``refused:`` line instead of Gradio's traceback. ``is_template`` keeps the frontend and
    the API naming it as ``base``. (Gradio's component metaclass would also write a ``.pyi``
    stub beside the file that defines a component class, here ``widgets.pyi``, which fails on
    a read-only Space: that is turned off while the class is made.)"""
    import gradio.component_meta as meta

    stub_writer = getattr(meta, "create_or_modify_pyi", None)
    meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:

        class Refusing(base):
            is_template = True

            def preprocess(self, payload):
                try:
                    return super().preprocess(payload)
                except gr.Error as e:
                    raise refused(f"{self.label}: {e.message}") from None
                except (TypeError, ValueError, OverflowError) as e:  # e.g. NaN into an int
                    raise refused(f"{self.label}: {payload!r} cannot be used ({e})") from None

    finally:
        if stub_writer is not None:
            meta.create_or_modify_pyi = stub_writer
    Refusing.__name__ = Refusing.__qualname__ = f"Refusing{base.__name__}"
    return Refusing


Dropdown, Slider, Number, Radio, File = (
    _refusing(c) for c in (gr.Dropdown, gr.Slider, gr.Number, gr.Radio, gr.File)
)


def image_input(prefix: str, value=None):
    """The image a tab runs on: an upload (or an example's path), refused when not an image."""
    return File(
        value,
        label="Image",
        file_types=UPLOAD_TYPES,
        type="filepath",
        elem_id=f"{prefix}-image",
    )


def examples_block(image, examples: list[tuple[str, str]], label: str, elem_id=None):
    """The example images (``State.examples``) for ``image``, each under its label."""
    return gr.Examples(
        [[p] for p, _ in examples],
        inputs=[image],
        example_labels=[text for _, text in examples],
        label=label,
        elem_id=elem_id,
    )


def settings(prefix: str, n_value: int, n_max: int, n_min: int = 1, n_info: str = ""):
    """The shared prediction settings: proxy noise, saccades, seed, posterior mode/sample."""
    with gr.Row():
        noise = Slider(
            0.0,
            1.0,
            value=0.0,
            step=0.05,
            label="Proxy noise (std)",
            info="a fraction of the intensity range",
            elem_id=f"{prefix}-noise",
        )
        n = Slider(
            n_min,
            n_max,
            value=n_value,
            step=1,
            label="Number of saccades",
            info=n_info,
            elem_id=f"{prefix}-saccades",
        )
    with gr.Row():
        seed = Number(value=0, precision=0, label="Seed", elem_id=f"{prefix}-seed")
        posterior = Radio(
            POSTERIOR_CHOICES, value="mean", label="Crop at", elem_id=f"{prefix}-posterior"
        )
    return noise, n, seed, posterior


def leading(name: str, fields: tuple[str, ...], base: type, doc: str) -> type:
    """A named tuple class ``name``: ``fields`` (the updates of a few inputs), then the
    fields of ``base`` (a tab's outputs, a named tuple), flat as Gradio wants an event's
    outputs; its ``.outputs`` is the ``base`` part, e.g. ``NewImageOutputs(checkpoint,
    n_saccades, *ExploreOutputs)``."""
    flat = collections.namedtuple(name, (*fields, *base._fields))
    skip = len(fields)
    return type(
        name,
        (flat,),
        {
            "__doc__": doc,
            "__slots__": (),
            "__module__": base.__module__,
            "outputs": property(lambda self: base(*self[skip:]), doc=f"the ``{base.__name__}``"),
        },
    )
