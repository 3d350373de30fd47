"""The Compare tab (``CompareTab``): the same image and settings through a learnt- and a fixed-variance
checkpoint of one dataset and task, side by side on shared σ axes; and 16 posterior samples
of each."""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr
import numpy as np

import saccade

from .. import looked_at, viz
from .page import Page, Tab
from .state import MAX_SACCADES, Look, State, refused, result_figures, saccade_count, session_id
from .widgets import Dropdown, examples_block, image_input, leading, settings


def sample_note(outs: list, truth: dict | None, crop_size: int) -> str:
    """What posterior samples got, in words: how many predict the example's class and the
    share of its digits they looked at (``saccade.looked_at``); "" without ground truth."""
    if truth is None:
        return ""
    right = sum(o.class_name == truth["class_name"] for o in outs)
    seen = [looked_at.covered(truth["boxes"], o.boxes, crop_size).mean() for o in outs]
    return (
        f"{right} of {len(outs)} samples predict {truth['class_name']}; "
        f"they looked at {np.mean(seen):.0%} of the digits"
    )


class CompareOutputs(NamedTuple):
    """What ``CompareTab.run`` returns, in the order of the tab's outputs: learnt, then fixed."""

    learnt_trajectory: object  # plotly figure
    learnt_sigma: object  # plotly figure, on the σ axis both share
    learnt_label: dict  # gr.Label's value
    learnt_summary: str  # Markdown
    fixed_trajectory: object
    fixed_sigma: object
    fixed_label: dict
    fixed_summary: str


class CompareLists(NamedTuple):
    """``CompareTab.on_image``: the learnt and fixed dropdowns' updates."""

    learnt: dict
    fixed: dict


def failed_compare(message: str) -> CompareOutputs:
    """Compare's panels when a run is refused: placeholders, the reason in both summaries."""
    text = f"❌ **Cannot run:** {message}"
    return CompareOutputs(
        viz.placeholder_figure(message, height=420),
        viz.placeholder_figure("", height=300),
        None,
        text,
        viz.placeholder_figure(message, height=420),
        viz.placeholder_figure("", height=300),
        None,
        text,
    )


NewCompareImage = leading(
    "NewCompareImage",
    ("learnt", "fixed"),
    CompareOutputs,
    "What ``CompareTab.on_new_image`` returns: the two dropdowns' updates, then the run's "
    "``CompareOutputs`` (``.outputs``).",
)


def compare_event(handler):
    """``handler(look, learnt, fixed)`` as Gradio's event function: the Compare inputs, in
    the tab's order (the parameters of the API's ``/compare``; ``/sample16`` has the first
    five), made one ``Look`` and the two checkpoints."""

    def event(
        image=None,
        learnt=None,
        fixed=None,
        proxy_noise=0.0,
        n_saccades=0,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ):
        look = Look(
            image,
            proxy_noise=proxy_noise,
            n_saccades=n_saccades,
            seed=seed,
            posterior=posterior,
            session=session_id(request),
        )
        return handler(look, learnt, fixed)

    event.__name__ = event.__qualname__ = handler.__name__
    event.__doc__ = handler.__doc__
    return event


class CompareTab(Tab):
    """The Compare tab: its event functions, each taking a ``Look`` and the learnt and
    fixed checkpoints (``compare_event`` makes them from the tab's inputs), and ``build``."""

    title, id = "Compare", "compare"

    def __init__(self, state: State):
        super().__init__(state)
        self._first_screen: tuple | None | bool = False  # False: not computed yet

    def on_image(self, path, learnt, fixed, request: gr.Request | None = None) -> CompareLists:
        """When the image changes: each list puts the checkpoints of the example's task
        first and chooses the first (``State.image_choices``)."""
        return self._lists(path, learnt, fixed, session_id(request))

    def _lists(self, path, learnt, fixed, session: str) -> CompareLists:
        return CompareLists(
            self.state.image_choices(path, learnt, "learnt", session),
            self.state.image_choices(path, fixed, "fixed", session),
        )

    def examples(self) -> list[tuple[str, str]]:
        """The examples Compare offers: those of a dataset and task with both a learnt- and
        a fixed-variance checkpoint among the shipped ones (read from the checkpoints'
        JSON when the page is built, so a fixed checkpoint shipped later adds its examples)."""
        modes: dict[tuple, set] = {}
        for m in self.state.list_checkpoints():
            modes.setdefault((m.get("dataset"), m.get("task")), set()).add(m.get("variance"))
        offered = []
        for path, label in self.state.examples():
            spec = (self.state.truth(path) or {}).get("dataset", {})
            if {"learnt", "fixed"} <= modes.get((spec.get("name"), spec.get("task")), set()):
                offered.append((path, label))
        return offered

    def first_screen(self) -> tuple[str, str, str, CompareOutputs] | None:
        """(example, learnt, fixed, outputs) of Compare's first example through its best
        pair, computed once when the page is built: the tab opens on a result, like
        Explore. None when no example has a pair."""
        if self._first_screen is False:
            self._first_screen = None
            for path, _ in self.examples()[:1]:
                truth = self.state.truth(path)
                learnt, fixed = (self.state.best(truth, v, None) for v in ("learnt", "fixed"))
                try:
                    out = self.run(Look(path), learnt, fixed)
                except gr.Error:
                    break
                self._first_screen = (path, learnt, fixed, out)
        return self._first_screen

    def look(self, look: Look, learnt=None, fixed=None) -> CompareOutputs:
        """The Compare button: ``run`` with a refusal in the summaries and placeholder
        panels (the API's ``/compare`` raises)."""
        try:
            return self.run(look, learnt, fixed)
        except gr.Error as e:
            return failed_compare(str(e.message))

    def on_new_image(self, look: Look, learnt=None, fixed=None) -> NewCompareImage:
        """An example clicked or a file uploaded in Compare: the pair of the example's task is
        chosen, and the comparison runs at once."""
        lists = self._lists(look.image, learnt, fixed, look.session)
        learnt = lists.learnt.get("value") or learnt
        fixed = lists.fixed.get("value") or fixed
        if not look.image:
            return NewCompareImage(
                *lists, *failed_compare("no image: pick an example or upload one.")
            )
        return NewCompareImage(*lists, *self.look(look, learnt, fixed))

    def _pair(self, truth, learnt, fixed, session) -> tuple[str, str]:
        """The learnt and fixed checkpoints Compare runs: as chosen, else the best for the
        example; gr.Error if one is missing or they differ in dataset or task."""
        learnt = learnt or self.state.best(truth, "learnt", session)
        fixed = fixed or self.state.best(truth, "fixed", session)
        if not learnt or not fixed:
            raise refused(
                "Compare needs a learnt-variance and a fixed-variance checkpoint in "
                f"{self.state.checkpoints.name}/; train the missing one in the Train tab."
            )
        metas = {m["name"]: m for m in self.state.list_checkpoints(session)}
        tasks = {
            n: f"{metas[n].get('dataset')}/{metas[n].get('task')}"
            for n in (learnt, fixed)
            if n in metas
        }
        if len(set(tasks.values())) > 1:
            raise refused(
                f"Compare pairs two checkpoints of one dataset and task; `{learnt}` is "
                f"{tasks[learnt]} and `{fixed}` is {tasks[fixed]}. Pick a fixed-variance "
                f"checkpoint of {tasks[learnt]}, or train one in the Train tab."
            )
        return learnt, fixed

    def sample16(self, look: Look, learnt=None, fixed=None):
        """Compare's "sample 16 times": the crop boxes of 16 posterior samples (seeds 0..15)
        of each checkpoint over the image, side by side, coloured by saccade with a key (the
        paper's learnt-against-fixed figure, live); beside each panel, how many samples
        predict the example's class and how many of its digits the samples looked at.
        ``look``'s seed and posterior are not used. Returns a plotly figure."""
        truth = self.state.truth(look.image)
        learnt, fixed = self._pair(truth, learnt, fixed, look.session)
        panels = {}
        img = None
        for name in (learnt, fixed):
            model = self.state.model(name, look.session)
            # a slide (the zoom example, a server slide) is opened once as the model reads
            # it (its physical scale): the 16 samples read that one, over its one thumbnail
            source, invert = self.state.model_input(look, model)
            noise = 0.0 if look.proxy_noise is None else look.proxy_noise
            n = saccade_count(look.n_saccades)
            try:
                outs = [
                    saccade.predict(model, source, n, noise, seed=s, sample=True, invert=invert)
                    for s in range(16)
                ]
            except ValueError as e:
                raise refused(str(e)) from None
            img = source if isinstance(source, np.ndarray) else outs[0].image
            # in the pixels of ``img`` (a slide's thumbnail: image_scale per level-0 pixel)
            boxes = np.stack([o.boxes * o.image_scale for o in outs])
            panels[f"{model.config.variance} σ: {name}"] = (
                boxes,
                None,
                sample_note(outs, truth, model.config.crop_size),
            )
        return viz.posterior_samples_figure(img, panels)

    def run(self, look: Look, learnt=None, fixed=None) -> CompareOutputs:
        """The same image and settings through a learnt- and a fixed-variance checkpoint
        (the API's ``/compare``, which raises a refusal). ``look.n_saccades`` = 0 runs each
        model for its own T."""
        truth = self.state.truth(look.image)
        learnt, fixed = self._pair(truth, learnt, fixed, look.session)
        server = look.uses_server
        if not server and self.state.example_slide(look.image) is None:
            self.state.image(look.image)  # a bad upload: said before any checkpoint is run
        runs = [(name, *self.state.run(look.with_checkpoint(name))) for name in (learnt, fixed)]
        sigma_max = max(float(out.sigma.max()) for _, _, out in runs)  # one σ axis for both
        results = []
        for name, model, out in runs:
            v = model.config.variance
            figs = result_figures(
                out,
                self.state.background(look, model, out),  # a slide's: its thumbnail
                truth,
                v,
                title_prefix=f"{v} σ: ",
                sigma_max=sigma_max,
                height=460,
                model_config=model.config,
            )
            results += [
                figs["trajectory"],
                figs["sigma"],
                viz.label_dict(out.probs[-1], out.class_names),
                self._summary(name, model, out, truth),
            ]
        return CompareOutputs(*results)

    @staticmethod
    def _summary(name: str, model, out, truth: dict | None) -> str:
        """One side's summary: the prediction, the warnings, the digits looked at."""
        h, w = out.image_shape or out.image.shape[:2]  # a slide's level 0, not its thumbnail
        side = f"{w}×{h}"
        summary = (
            f"`{name}`: **{out.class_names[out.label]}** "
            f"(p = {float(out.probs[-1, out.label]):.2f}) after {len(out.probs)} saccades "
            f"on the {side} image."
        )
        warnings = saccade.infer.input_warnings(  # with the slide's scale, as Explore's
            model, out.image, truth.get("dataset") if truth else None, out.image_shape, out.mpp
        )
        summary += "".join(f"\n\n⚠️ {w}" for w in warnings)
        if truth is not None:
            hit = looked_at.covered(truth["boxes"], out.boxes, model.config.crop_size)
            summary += (
                f" Truth `{truth['class_name']}`; looked at {int(hit.sum())} of {len(hit)} digits."
            )
        return summary

    # -- the page ------------------------------------------------------------------------

    def build(self, page: Page) -> None:
        """The Compare tab's components and events (inside ``gr.Tab``), opened on its first
        example already run (``first_screen``); an example click or an upload runs."""
        gr.Markdown(
            "The same image and settings through a **learnt**-variance and a "
            "**fixed**-variance checkpoint of one task, side by side."
        )
        screen = self.first_screen()
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                image = image_input("compare", screen[0] if screen else None)
                examples = self._examples_block(image)
            with gr.Column(scale=2, min_width=300):
                learnt, fixed = self._dropdowns(screen)
                noise, n, seed, posterior = settings(
                    "compare", 0, MAX_SACCADES, 0, "0 = each model's own T"
                )
                run = gr.Button("Compare", variant="primary", elem_id="compare-run")
        outputs = list(self._sides(screen[3] if screen else CompareOutputs(*[None] * 8)))
        page.add_list("learnt", learnt)
        page.add_list("fixed", fixed)
        inputs = [image, learnt, fixed, noise, n, seed, posterior]
        run.click(
            compare_event(self.look), inputs=inputs, outputs=outputs, api_visibility="private"
        )
        api = gr.Button(visible=False, elem_id="compare-api")  # /compare raises on a refusal
        api.click(compare_event(self.run), inputs=inputs, outputs=outputs, api_name="compare")
        new_image = dict(
            fn=compare_event(self.on_new_image),
            inputs=inputs,
            outputs=[learnt, fixed, *outputs],
            api_visibility="private",
        )
        if examples is not None:
            examples.load_input_event.then(**new_image)
        image.upload(**new_image)
        image.clear(**new_image)
        self._sample16_row(inputs[:5])

    def _examples_block(self, image):
        """The examples with a learnt and a fixed checkpoint of their task; None if none."""
        offered = self.examples()
        if not offered:
            return None
        return examples_block(
            image,
            offered,
            "Examples with a learnt and a fixed checkpoint of their task: a click runs one",
            elem_id="compare-examples",
        )

    def _dropdowns(self, screen):
        """The learnt- and fixed-variance checkpoint dropdowns, on the first screen's pair
        (else the first of each mode)."""
        made = []
        for v, label in (("learnt", "Learnt"), ("fixed", "Fixed")):
            choices = self.state.checkpoint_choices(variance=v)
            first = choices[0][1] if choices else None
            made.append(
                Dropdown(
                    choices,
                    value=(screen[1 if v == "learnt" else 2] if screen else first),
                    label=f"{label}-variance checkpoint",
                    elem_id=f"compare-{v}",
                )
            )
        return tuple(made)

    @staticmethod
    def _sides(shown: CompareOutputs) -> CompareOutputs:
        """Each checkpoint's summary, trajectory, σ plot and prediction, side by side."""
        sides = {}
        with gr.Row():
            for v in ("learnt", "fixed"):
                with gr.Column(min_width=300):
                    sides[f"{v}_summary"] = gr.Markdown(
                        getattr(shown, f"{v}_summary"), elem_id=f"compare-{v}-summary"
                    )
                    sides[f"{v}_trajectory"] = gr.Plot(
                        getattr(shown, f"{v}_trajectory"),
                        show_label=False,
                        elem_id=f"compare-{v}-trajectory",
                    )
                    sides[f"{v}_sigma"] = gr.Plot(
                        getattr(shown, f"{v}_sigma"),
                        show_label=False,
                        elem_id=f"compare-{v}-sigma",
                    )
                    sides[f"{v}_label"] = gr.Label(
                        getattr(shown, f"{v}_label"),
                        num_top_classes=5,
                        label=f"{v} σ: prediction",
                        elem_id=f"compare-{v}-label",
                    )
        return CompareOutputs(**sides)

    def _sample16_row(self, inputs: list) -> None:
        """The "sample 16 times" button and its plot (``sample16`` on the image, the two
        checkpoints, the noise and the saccades)."""
        with gr.Row():
            sample = gr.Button(
                "Sample 16 times: 16 posterior samples of each model on the image",
                elem_id="compare-sample16",
            )
        samples = gr.Plot(show_label=False, elem_id="compare-samples")
        sample.click(
            compare_event(self.sample16), inputs=inputs, outputs=[samples], api_name="sample16"
        )
