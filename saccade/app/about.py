"""The About tab (``AboutTab``): the method in a few lines, and every result the evaluations and the
benchmarks wrote in assets/, as tables and plots."""

from __future__ import annotations

import json
from typing import NamedTuple

import gradio as gr

from .. import viz
from .page import Page, Tab

#: the stem of the headline benchmark's rows in assets/ (``python -m saccade.bench --json``)
HEADLINE = "bench-headline"

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


#: the numbers of the poster's figures, written beside them by ``python -m saccade.figures
#: --poster`` (its ``verdict`` sentences are what the About tab says next to each figure)
POSTER_SUMMARY = "poster-summary.json"


class PosterFigure(NamedTuple):
    """One of the seed poster's figures reproduced (``AboutTab.poster``)."""

    path: str  # the PNG in assets/
    caption: str  # what it shows
    claim: str  # what the paper's poster shows or says
    measured: str  # what our numbers say (poster-summary.json's verdict; "" without one)


#: (PNG, key in poster-summary.json, caption, the paper's claim), in the poster's order
POSTER = (
    (
        "poster-learnt-fixed-2528.png",
        "learnt_fixed",
        "Learnt against fixed variance, cluttered MNIST id at 2528²: validation accuracy per "
        "epoch (500 test images), the mean over seeds and their min–max band",
        "**The paper** (poster): a figure *Learnt vs. Fixed Variance, ClutteredMNIST "
        "2528×2528*; its table gives 95.2% on 2-MNIST ID at 2528².",
    ),
    (
        "poster-noisy-proxy.png",
        "noisy_proxy",
        "Effect of a noisy proxy: validation accuracy per epoch of cluttered sum models "
        "trained with a fixed proxy noise of 0, 0.1 and 0.3, each at its own noise",
        "**The paper** (poster): a figure *Effect of Noisy Proxy Distribution*, validation "
        "accuracy per epoch, lower with more noise.",
    ),
)

#: the command that draws them
POSTER_COMMAND = "bash scripts/poster.sh && python -m saccade.figures --poster"


class Results(NamedTuple):
    """``AboutTab.results``: every result the evaluations and the benchmarks wrote in assets/, as
    table rows and plots (``saccade.viz``); a plot with no data has no traces."""

    eval_rows: list  # one per assets/eval-*.json: the run, its accuracy first
    saccades: object  # accuracy against the number of saccades, per dataset and task
    noise: object  # accuracy against proxy noise at test time
    localisation: object  # share of the digits looked at, per saccade
    ablations: object  # accuracy of each assets/ablations/*.json run
    bench_rows: list  # the parts of ``saccade.bench`` (assets/bench-*.json, not the headline)
    bench_figure: object  # ms per image against image side


def _frame(rows: list[dict]):
    """Rows of dicts as a pandas DataFrame (columns in first-seen order)."""
    import pandas as pd

    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pd.DataFrame(rows, columns=columns)


#: the lead table's runs: each shipped model with its own crops (the rest is folded below)
LEAD_COLUMNS = ("run", "accuracy", "covered", "dataset", "task", "size", "variance", "n")


def lead_rows(rows: list[dict]) -> list[dict]:
    """The About tab's one results table: the VS runs that chose their own crops (no
    baseline, no other policy, no sampling or other-size variant), with few columns."""
    keep = [
        r
        for r in rows
        if r.get("variance") and r.get("policy", "learnt") == "learnt" and "-" in r["run"]
    ]
    keep = [r for r in keep if not r["run"].rsplit("-", 1)[-1].isdigit()]
    keep = [r for r in keep if not r["run"].endswith("-sample")]
    return [{k: r[k] for k in LEAD_COLUMNS if k in r} for r in keep]


class AboutTab(Tab):
    """The About tab: its content from assets/, read when the page is built, and ``build``
    (no events)."""

    title, id = "About", "about"

    #: the paper's comparison figures that ``python -m saccade.figures`` writes in assets/
    FIGURES = {
        "noise-test.png": "Test accuracy against proxy noise at test time, learnt and fixed "
        "variance",
        "noise-train.png": "Validation accuracy per epoch of cluttered/sum runs trained with "
        "proxy noise 0, 0.1 and 0.3",
        "posterior-samples.png": "16 posterior samples of a learnt- and a fixed-variance model "
        "on one 2528² image",
        "poster-posterior-samples-2528.png": "16 posterior samples of the learnt- and the "
        "fixed-variance id models trained at 2528², on one 2528² test image",
    }

    def poster(self) -> list[PosterFigure]:
        """About tab: the seed poster's figures present in assets/ (``POSTER``), each with
        the paper's claim and the verdict of ``poster-summary.json`` (empty when it is
        missing or unreadable)."""
        try:
            summary = json.loads((self.state.assets / POSTER_SUMMARY).read_text())
        except (OSError, ValueError):
            summary = {}
        if not isinstance(summary, dict):
            summary = {}
        found = []
        for name, key, caption, claim in POSTER:
            path = self.state.assets / name
            if path.is_file():
                part = summary.get(key)
                measured = part.get("verdict", "") if isinstance(part, dict) else ""
                found.append(PosterFigure(str(path), caption, claim, str(measured)))
        return found

    def figures(self) -> list[tuple[str, str]]:
        """About tab: (path, caption) of each figure of ``FIGURES`` present in assets/."""
        return [
            (str(self.state.assets / name), caption)
            for name, caption in self.FIGURES.items()
            if (self.state.assets / name).is_file()
        ]

    def results(self) -> Results:
        """About tab: the results in assets/*.json as rows and plots (the parts of
        ``saccade.bench``; its headline is ``headline``)."""
        evals = viz.load_results(self.state.assets, "eval-*.json")
        ablations = viz.load_results(self.state.assets / "ablations", "*.json")
        parts = [
            r
            for r in viz.load_results(self.state.assets, "bench-*.json")
            if not r[0].startswith(HEADLINE)
        ]
        bench = viz.bench_rows(parts)
        return Results(
            eval_rows=viz.eval_rows(evals),
            saccades=viz.saccades_figure(evals),
            noise=viz.noise_figure(evals),
            localisation=viz.localisation_figure(evals),
            ablations=viz.ablation_figure(ablations),
            bench_rows=bench,
            bench_figure=viz.bench_figure(bench),
        )

    def zoom_sides(self):
        """About tab: accuracy against canvas side on the zoom benchmark, VS and the
        baselines (``viz.canvas_side``: assets/eval-zoom-*.json and the zoom baselines'
        eval-baseline-*zoom*.json), or None before there is any."""
        from ..viz import canvas_side

        found = [
            r
            for pattern in canvas_side.ZOOM_EVAL_PATTERNS
            for r in viz.load_results(self.state.assets, pattern)
        ]
        runs = canvas_side.zoom_runs(found)
        return canvas_side.canvas_side_figure(runs) if runs else None

    def headline(self) -> tuple[str, object] | None:
        """About tab: (markdown table, chart) of ``python -m saccade.bench``'s headline run
        (``assets/bench-headline.json``), or None before there is one."""
        found = dict(viz.load_results(self.state.assets, HEADLINE + ".json"))
        rows = found.get(HEADLINE)
        if not isinstance(rows, list) or not rows:
            return None
        return viz.headline_table(rows, compact=True), viz.headline_figure(rows)

    def build(self, page: Page) -> None:
        """The About tab's content (inside ``gr.Tab``): no events, all read at start-up. It
        leads with the method and one results table; every other table and plot is folded."""
        latex = [
            {"left": "$$", "right": "$$", "display": True},
            {"left": "$", "right": "$", "display": False},
        ]
        gr.Markdown(ABOUT, latex_delimiters=latex)
        results = self.results()
        _evaluations(results)
        _zoom_sides(self.zoom_sides())
        _poster(self.poster())
        if results.ablations.data:
            with gr.Accordion(
                "Ablations (assets/ablations/*.json, scripts/ablations.sh)", open=False
            ):
                gr.Plot(results.ablations, show_label=False, elem_id="about-ablations-plot")
        figures = self.figures()
        if figures:
            with gr.Accordion("The paper's comparison figures", open=False):
                for path, caption in figures:
                    gr.Image(path, label=caption, show_label=True, interactive=False)
        _benchmarks(self.headline(), results)
        with gr.Accordion("Data and licences", open=False):
            gr.Markdown(LICENCES)


def _evaluations(results: Results) -> None:
    """The lead results table, then every evaluation and its plots, folded."""
    gr.Markdown(
        "### Results: each shipped model choosing its own crops\n"
        "Test accuracy after the model's T saccades and the share of the digits looked at "
        "(`assets/eval-*.json`, written by `python -m saccade.evaluate`). Every run, the "
        "baselines and the plots are below, folded."
    )
    lead = lead_rows(results.eval_rows)
    if lead:
        gr.Dataframe(_frame(lead), interactive=False, wrap=True, elem_id="about-eval")
    else:
        gr.Markdown("_No evaluation results yet: run `python -m saccade.evaluate`._")
    if not results.eval_rows:
        return
    with gr.Accordion(
        f"Every evaluation ({len(results.eval_rows)} runs: policies, baselines, sizes)",
        open=False,
    ):
        gr.Dataframe(
            _frame(results.eval_rows), interactive=False, wrap=True, elem_id="about-eval-all"
        )
    with gr.Accordion("Accuracy, noise and localisation plots", open=False):
        gr.Plot(results.saccades, show_label=False, elem_id="about-eval-plot")
        if results.noise.data:
            gr.Plot(results.noise, show_label=False, elem_id="about-noise-plot")
        if results.localisation.data:
            gr.Plot(results.localisation, show_label=False, elem_id="about-localisation-plot")


def _zoom_sides(figure) -> None:
    """The zoom benchmark's accuracy against canvas side (``AboutTab.zoom_sides``), or a
    sentence saying it is not measured yet."""
    gr.Markdown(
        "### Zoom: accuracy against canvas side\n"
        "Gigapixel canvases whose digit is readable only near full resolution "
        "(docs/zoom.md): VS and the baselines at each side, from `python -m saccade.evaluate "
        "CHECKPOINT --canvas SIDE` (`assets/eval-zoom-*.json`).",
        elem_id="about-zoom-sides-text",
    )
    if figure is None:
        gr.Markdown(
            "_No zoom evaluation yet: the figure appears when `assets/eval-zoom-*.json` "
            "files are there._",
            elem_id="about-zoom-sides-none",
        )
    else:  # folded: About leads with the method and one results table
        with gr.Accordion("Accuracy against canvas side (plot)", open=False):
            gr.Plot(figure, show_label=False, elem_id="about-zoom-sides")


def _poster(figures: list[PosterFigure]) -> None:
    """The seed poster's figures reproduced, each beside the paper's claim and ours."""
    if not figures:
        return
    gr.Markdown(
        "### The poster's figures at the poster's size\n"
        f"Drawn from the training logs in `assets/logs/` by `{POSTER_COMMAND}` "
        "(docs/results.md has the tables)."
    )
    for i, fig in enumerate(figures):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Image(
                    fig.path,
                    label=fig.caption,
                    show_label=True,
                    interactive=False,
                    elem_id=f"about-poster-{i}",
                )
            with gr.Column(scale=2):
                text = fig.claim
                if fig.measured:
                    text += "\n\n**Measured here:** " + fig.measured
                gr.Markdown(text, elem_id=f"about-poster-{i}-text")


def _benchmarks(headline: tuple[str, object] | None, results: Results) -> None:
    """The headline benchmark (``AboutTab.headline``) and the parts' speed and memory."""
    if headline is not None:
        with gr.Accordion("VS against the baselines: speed and memory", open=False):
            gr.Markdown(
                "From `assets/bench-headline.json`, written by `python -m saccade.bench` "
                "(README, Performance). Training step per image at batch 4; side (c) "
                "cluttered, (m) Megapixel; every column in the JSON.\n\n" + headline[0],
                elem_id="about-headline",
            )
            gr.Plot(headline[1], show_label=False, elem_id="about-headline-plot")
    with gr.Accordion("Speed and memory of the parts (assets/bench-*.json)", open=False):
        if results.bench_rows:
            gr.Dataframe(
                _frame(results.bench_rows), interactive=False, wrap=True, elem_id="about-bench"
            )
            gr.Plot(results.bench_figure, show_label=False, elem_id="about-bench-plot")
        else:
            gr.Markdown("_No benchmark results yet: run `python -m saccade.bench`._")
