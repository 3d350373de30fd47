"""The Compare tab: the same image and settings through a learnt- and a fixed-variance
checkpoint of one dataset and task, side by side on shared σ axes; and 16 posterior samples
of each."""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr

import saccade
from saccade import looked_at, viz
from saccade.app.state import (
    MAX_SACCADES,
    _n_saccades,
    _refused,
    _session_id,
    result_figures,
)
from saccade.app.widgets import Dropdown, examples_block, image_input, settings


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


class CompareUI(NamedTuple):
    """The Compare components the Train tab and the page load update."""

    learnt: object
    fixed: object


class CompareEvents:
    """The Compare tab's event functions (a part of ``saccade.app.App``)."""

    def on_compare_image(self, path, learnt, fixed, request: gr.Request | None = None):
        """``on_image`` for the Compare tab's two lists."""
        session = _session_id(request)
        return CompareLists(
            self._image_choices(path, learnt, "learnt", session),
            self._image_choices(path, fixed, "fixed", session),
        )

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
        from saccade.figures import sample_boxes

        session = _session_id(request)
        learnt, fixed = self._pair(self.truth(image), learnt, fixed, session)
        img, _ = self.image(image)
        panels = {}
        for name in (learnt, fixed):
            model = self.model(name, session)
            try:
                noise = 0.0 if proxy_noise is None else proxy_noise
                boxes = sample_boxes(model, img, 16, _n_saccades(n_saccades), noise)
            except ValueError as e:
                raise _refused(str(e)) from None
            panels[f"{model.config.variance} σ: {name}"] = (boxes, None)
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
            figs = result_figures(
                out, background, truth, v, title_prefix=f"{v} σ: ", sigma_max=sigma_max
            )
            summary = f"`{name}`: **{out.class_names[out.label]}** (p = {float(out.probs[-1, out.label]):.2f}) after {len(out.probs)} saccades."
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
    """The Compare tab's components and events (inside ``gr.Tab``)."""
    learnt_choices = app.checkpoint_choices(variance="learnt")
    fixed_choices = app.checkpoint_choices(variance="fixed")
    gr.Markdown(
        "The same image and settings through a **learnt**-variance and a "
        "**fixed**-variance checkpoint, side by side."
    )
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input("compare")
            examples_block(image, app.examples(), "Examples", elem_id="compare-examples")
        with gr.Column(scale=2):
            with gr.Row():
                learnt = Dropdown(
                    learnt_choices,
                    value=learnt_choices[0][1] if learnt_choices else None,
                    label="Learnt-variance checkpoint",
                    elem_id="compare-learnt",
                )
                fixed = Dropdown(
                    fixed_choices,
                    value=fixed_choices[0][1] if fixed_choices else None,
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
            with gr.Column():
                sides[f"{v}_trajectory"] = gr.Plot(
                    label=f"{v}: trajectory", elem_id=f"compare-{v}-trajectory"
                )
                sides[f"{v}_sigma"] = gr.Plot(
                    label=f"{v}: posterior σ", elem_id=f"compare-{v}-sigma"
                )
                sides[f"{v}_label"] = gr.Label(
                    num_top_classes=5, label=f"{v}: prediction", elem_id=f"compare-{v}-label"
                )
                sides[f"{v}_summary"] = gr.Markdown(elem_id=f"compare-{v}-summary")
    image.change(
        app.on_compare_image,
        inputs=[image, learnt, fixed],
        outputs=[learnt, fixed],
        api_visibility="private",
    )
    run.click(
        app.compare,
        inputs=[image, learnt, fixed, noise, n, seed, posterior],
        outputs=list(CompareOutputs(**sides)),
        api_name="compare",
    )
    with gr.Row():
        sample = gr.Button(
            "Sample 16 times: 16 posterior samples of each model on the image",
            elem_id="compare-sample16",
        )
    samples = gr.Plot(label="16 posterior samples", elem_id="compare-samples")
    sample.click(
        app.sample16,
        inputs=[image, learnt, fixed, noise, n],
        outputs=[samples],
        api_name="sample16",
    )
    return CompareUI(learnt, fixed)
