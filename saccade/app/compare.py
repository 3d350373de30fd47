"""The Compare tab: the same image and settings through a learnt- and a fixed-variance
checkpoint of one dataset and task, side by side on shared σ axes; and 16 posterior samples
of each."""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr
import numpy as np

import saccade

from .. import looked_at, viz
from .state import MAX_SACCADES, refused, result_figures, saccade_count, session_id
from .widgets import Dropdown, examples_block, image_input, settings


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
    """What ``compare`` returns, in the order of the tab's outputs: learnt, then fixed."""

    learnt_trajectory: object  # plotly figure
    learnt_sigma: object  # plotly figure, on the σ axis both share
    learnt_label: dict  # gr.Label's value
    learnt_summary: str  # Markdown
    fixed_trajectory: object
    fixed_sigma: object
    fixed_label: dict
    fixed_summary: str


class CompareLists(NamedTuple):
    """``on_compare_image``: the learnt and fixed dropdowns' updates."""

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


class NewCompareImage(NamedTuple):
    """``on_new_compare_image``, flat as Gradio wants it: the two dropdowns' updates, then
    the fields of the run's ``CompareOutputs`` (``.outputs``)."""

    learnt: dict
    fixed: dict
    learnt_trajectory: object
    learnt_sigma: object
    learnt_label: dict
    learnt_summary: str
    fixed_trajectory: object
    fixed_sigma: object
    fixed_label: dict
    fixed_summary: str

    @property
    def outputs(self) -> CompareOutputs:
        return CompareOutputs(*self[2:])


class CompareUI(NamedTuple):
    """The Compare components the Train tab and the page load update."""

    learnt: object
    fixed: object


class CompareEvents:
    """The Compare tab's event functions (a part of ``saccade.app.App``)."""

    def on_compare_image(self, path, learnt, fixed, request: gr.Request | None = None):
        """``on_image`` for the Compare tab's two lists."""
        session = session_id(request)
        return CompareLists(
            self._image_choices(path, learnt, "learnt", session),
            self._image_choices(path, fixed, "fixed", session),
        )

    def compare_examples(self) -> list[tuple[str, str]]:
        """The examples Compare offers: those of a dataset and task with both a learnt- and
        a fixed-variance checkpoint among the shipped ones (read from the checkpoints'
        JSON when the page is built, so a fixed checkpoint shipped later adds its examples)."""
        modes: dict[tuple, set] = {}
        for m in self.list_checkpoints():
            modes.setdefault((m.get("dataset"), m.get("task")), set()).add(m.get("variance"))
        offered = []
        for path, label in self.examples():
            spec = (self.truth(path) or {}).get("dataset", {})
            if {"learnt", "fixed"} <= modes.get((spec.get("name"), spec.get("task")), set()):
                offered.append((path, label))
        return offered

    def compare_first_screen(self) -> tuple[str, str, str, CompareOutputs] | None:
        """(example, learnt, fixed, outputs) of Compare's first example through its best
        pair, computed once when the page is built: the tab opens on a result, like
        Explore. None when no example has a pair."""
        if not hasattr(self, "_compare_first"):
            self._compare_first = None
            for path, _ in self.compare_examples()[:1]:
                truth = self.truth(path)
                learnt, fixed = (self.best(truth, v, None) for v in ("learnt", "fixed"))
                try:
                    out = self.compare(path, learnt, fixed)
                except gr.Error:
                    break
                self._compare_first = (path, learnt, fixed, out)
        return self._compare_first

    def look_compare(
        self,
        image,
        learnt=None,
        fixed=None,
        proxy_noise=0.0,
        n_saccades=0,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ) -> CompareOutputs:
        """The Compare button: ``compare`` with a refusal in the summaries and placeholder
        panels (the API's ``/compare`` raises)."""
        try:
            return self.compare(
                image, learnt, fixed, proxy_noise, n_saccades, seed, posterior, request
            )
        except gr.Error as e:
            return failed_compare(str(e.message))

    def on_new_compare_image(
        self,
        image,
        learnt=None,
        fixed=None,
        proxy_noise=0.0,
        n_saccades=0,
        seed=0,
        posterior="mean",
        request: gr.Request | None = None,
    ) -> NewCompareImage:
        """An example clicked or a file uploaded in Compare: the pair of the example's task is
        chosen, and the comparison runs at once."""
        lists = self.on_compare_image(image, learnt, fixed, request)
        learnt = lists.learnt.get("value") or learnt
        fixed = lists.fixed.get("value") or fixed
        if not image:
            return NewCompareImage(
                *lists, *failed_compare("no image: pick an example or upload one.")
            )
        outputs = self.look_compare(
            image, learnt, fixed, proxy_noise, n_saccades, seed, posterior, request
        )
        return NewCompareImage(*lists, *outputs)

    def _pair(self, truth, learnt, fixed, session) -> tuple[str, str]:
        """The learnt and fixed checkpoints Compare runs: as chosen, else the best for the
        example; gr.Error if one is missing or they differ in dataset or task."""
        learnt = learnt or self.best(truth, "learnt", session)
        fixed = fixed or self.best(truth, "fixed", session)
        if not learnt or not fixed:
            raise refused(
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
            raise refused(
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
        of each checkpoint over the image, side by side, coloured by saccade with a key (the
        paper's learnt-against-fixed figure, live); beside each panel, how many samples
        predict the example's class and how many of its digits the samples looked at.
        Returns a plotly figure."""
        session = session_id(request)
        truth = self.truth(image)
        learnt, fixed = self._pair(truth, learnt, fixed, session)
        panels = {}
        img = None
        for name in (learnt, fixed):
            model = self.model(name, session)
            img, _ = self.image(image, getattr(model.config, "channels", 1))
            noise = 0.0 if proxy_noise is None else proxy_noise
            try:
                outs = [
                    saccade.predict(
                        model, img, saccade_count(n_saccades), noise, seed=s, sample=True
                    )
                    for s in range(16)
                ]
            except ValueError as e:
                raise refused(str(e)) from None
            boxes = np.stack([o.boxes for o in outs])
            panels[f"{model.config.variance} σ: {name}"] = (
                boxes,
                None,
                sample_note(outs, truth, model.config.crop_size),
            )
        return viz.posterior_samples_figure(img, panels)

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
    ) -> CompareOutputs:
        """Compare tab: the same image and settings through a learnt- and a fixed-variance
        checkpoint. ``n_saccades`` = 0 runs each model for its own T."""
        truth = self.truth(image)
        session = session_id(request)
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
            figs = result_figures(
                out,
                background,
                truth,
                v,
                title_prefix=f"{v} σ: ",
                sigma_max=sigma_max,
                height=460,
                model_config=model.config,
            )
            side = f"{out.image.shape[1]}×{out.image.shape[0]}"
            summary = (
                f"`{name}`: **{out.class_names[out.label]}** "
                f"(p = {float(out.probs[-1, out.label]):.2f}) after {len(out.probs)} saccades "
                f"on the {side} image."
            )
            warnings = saccade.infer.input_warnings(
                model, out.image, truth.get("dataset") if truth else None
            )
            summary += "".join(f"\n\n⚠️ {w}" for w in warnings)
            if truth is not None:
                hit = looked_at.covered(truth["boxes"], out.boxes, model.config.crop_size)
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
        return CompareOutputs(*results)


def build(app) -> CompareUI:
    """The Compare tab's components and events (inside ``gr.Tab``), opened on its first
    example already run (``compare_first_screen``); an example click or an upload runs."""
    learnt_choices = app.checkpoint_choices(variance="learnt")
    fixed_choices = app.checkpoint_choices(variance="fixed")
    screen = app.compare_first_screen()
    first_image, first_learnt, first_fixed, shown = screen or (
        None,
        learnt_choices[0][1] if learnt_choices else None,
        fixed_choices[0][1] if fixed_choices else None,
        CompareOutputs(*[None] * 8),
    )
    offered = app.compare_examples()
    gr.Markdown(
        "The same image and settings through a **learnt**-variance and a "
        "**fixed**-variance checkpoint of one task, side by side."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            image = image_input("compare", first_image)
            examples = (
                examples_block(
                    image,
                    offered,
                    "Examples with a learnt and a fixed checkpoint of their task: a click runs one",
                    elem_id="compare-examples",
                )
                if offered
                else None
            )
        with gr.Column(scale=2, min_width=300):
            learnt = Dropdown(
                learnt_choices,
                value=first_learnt,
                label="Learnt-variance checkpoint",
                elem_id="compare-learnt",
            )
            fixed = Dropdown(
                fixed_choices,
                value=first_fixed,
                label="Fixed-variance checkpoint",
                elem_id="compare-fixed",
            )
            noise, n, seed, posterior = settings(
                "compare", 0, MAX_SACCADES, 0, "0 = each model's own T"
            )
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
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
                    getattr(shown, f"{v}_sigma"), show_label=False, elem_id=f"compare-{v}-sigma"
                )
                sides[f"{v}_label"] = gr.Label(
                    getattr(shown, f"{v}_label"),
                    num_top_classes=5,
                    label=f"{v} σ: prediction",
                    elem_id=f"compare-{v}-label",
                )
    inputs = [image, learnt, fixed, noise, n, seed, posterior]
    outputs = list(CompareOutputs(**sides))
    run.click(app.look_compare, inputs=inputs, outputs=outputs, api_visibility="private")
    api = gr.Button(visible=False, elem_id="compare-api")  # /compare raises on a refusal
    api.click(app.compare, inputs=inputs, outputs=outputs, api_name="compare")
    new_image = dict(
        fn=app.on_new_compare_image,
        inputs=inputs,
        outputs=[learnt, fixed, *outputs],
        api_visibility="private",
    )
    if examples is not None:
        examples.load_input_event.then(**new_image)
    image.upload(**new_image)
    image.clear(**new_image)
    with gr.Row():
        sample = gr.Button(
            "Sample 16 times: 16 posterior samples of each model on the image",
            elem_id="compare-sample16",
        )
    samples = gr.Plot(show_label=False, elem_id="compare-samples")
    sample.click(
        app.sample16,
        inputs=[image, learnt, fixed, noise, n],
        outputs=[samples],
        api_name="sample16",
    )
    return CompareUI(learnt, fixed)
