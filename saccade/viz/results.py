"""Results plots: training curves, the About tab's plots of the evaluations'
``assets/eval-*.json`` (accuracy against saccades and proxy noise, localisation, ablations),
and the paper's comparison figures that ``python -m saccade.figures`` writes as PNGs.

Nothing here loads a model; ``load_results`` is the one function that reads files (the JSON
that ``saccade.evaluate`` and ``saccade.bench`` write)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .images import downscale

# ----------------------------------------------------------------------------- training


def training_figure(history: list[dict]) -> go.Figure:
    """Live training curves against step: the loss and its cross-entropy term; the
    reconstruction and KL terms (log scale: they live on another scale); accuracy.

    Args:
        history: events from ``saccade.train.fit``'s callback; each has ``step`` and any of
            ``loss``, ``ce``, ``recon``, ``kl``, ``train_acc``, ``val_acc``.
    """

    panels = (("loss", "ce"), ("recon", "kl"), ("train_acc", "val_acc"))
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("loss and cross-entropy", "recon and KL", "accuracy")
    )
    for col, keys in enumerate(panels, start=1):
        for key in keys:
            pts = [(e["step"], e[key]) for e in history if "step" in e and e.get(key) is not None]
            if pts:
                x, y = zip(*pts, strict=True)
                # markers where a line cannot show: validation points, and a run of few steps
                mode = "lines+markers" if key == "val_acc" or len(pts) < 3 else "lines"
                fig.add_trace(go.Scatter(x=x, y=y, mode=mode, name=key), row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=3)
    fig.update_xaxes(title_text="step")
    # the legend below the panels, where it covers neither a subplot nor its title
    fig.update_layout(
        height=340,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
    )
    return fig


# ----------------------------------------------------------------------------- results


def load_results(folder: str | Path, pattern: str) -> list[tuple[str, object]]:
    """(file stem, parsed JSON) for each file matching ``pattern`` in ``folder``; unreadable
    or malformed files are skipped (the about tab shows what exists)."""
    found = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            found.append((path.stem, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return found


#: the columns of the About tab's accuracy table, after the run's name (accuracy first, and
#: few enough to fit 1400 px without a horizontal scroll)
EVAL_COLUMNS = ("accuracy", "covered", "policy", "dataset", "task", "size", "variance", "n")


def eval_rows(results: list[tuple[str, object]]) -> list[dict]:
    """One row per ``assets/eval-*.json`` file: the file's name, its top-level ``accuracy``,
    the share of digits looked at where measured (``covered``), and the fields that describe
    the run, in the order of ``EVAL_COLUMNS`` (the others are in the JSON)."""
    rows = []
    for stem, data in results:
        if not isinstance(data, dict) or "accuracy" not in data:
            continue
        loc = data.get("localisation")
        fields = dict(data, covered=loc.get("covered") if isinstance(loc, dict) else None)
        row = {"run": stem.removeprefix("eval-")}
        for k in EVAL_COLUMNS:
            v = fields.get(k)
            if isinstance(v, (str, int, float, bool)):
                row[k] = v
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- eval plots
# The About tab's plots of ``assets/eval-*.json`` (``python -m saccade.evaluate --json``):
# one panel per dataset and task; colour says the policy that chose the crops, the line's
# dash the variance mode, so that one legend serves every panel.

#: the colour of each crop policy (``saccade.evaluate.policies``; "learnt" is the model's own)
POLICY_COLOURS = {
    "learnt": "#636efa",
    "oracle": "#00cc96",
    "brightness": "#ffa15a",
    "random": "#8c8c8c",
}
VARIANCE_DASH = {"learnt": "solid", "fixed": "dash"}


#: baselines (no posterior, no variance mode) in the eval plots, by model
BASELINE_COLOURS = {"ram": "#ef553b", "resnet18-proxy": "#19d3f3", "resnet18-full": "#b6e880"}


def run_name(data: dict) -> str:
    """An eval run in words for a legend: "VS, learnt σ, crops by the oracle policy", or the
    baseline's name ("RAM", "ResNet-18 on the proxy") where there is no variance mode."""
    variance, policy, model = data.get("variance"), data.get("policy"), data.get("model")
    if not variance:
        names = {
            "ram": "RAM (baseline)",
            "resnet18-proxy": "ResNet-18 on the proxy (baseline)",
            "resnet18-full": "ResNet-18 on the full image (baseline)",
        }
        return names.get(str(model), f"{model or 'baseline'} (baseline)")
    chooser = {
        "learnt": "its own choice of crops",
        "oracle": "crops on the digits (oracle)",
        "brightness": "crops at the brightest cells",
        "random": "random crops",
    }.get(str(policy or "learnt"), f"the {policy} policy")
    return f"VS, {variance} σ, {chooser}"


def _eval_series(results: list[tuple[str, object]], curve) -> dict[str, list[dict]]:
    """Eval runs grouped by "dataset/task" (in first-seen order), each run a dict with its
    ``stem``, legend ``name``, line style and ``points`` = ``curve(data)`` [(x, y), ...];
    runs without such points are left out. A run at another image size than most of its
    panel's says so in its name (and is drawn with diamonds)."""
    found: dict[str, list[tuple[str, dict, list]]] = {}
    for stem, data in results:
        points = curve(data) if isinstance(data, dict) else None
        if points:
            panel = f"{data.get('dataset', '?')}/{data.get('task', '?')}"
            found.setdefault(panel, []).append((stem, data, points))
    panels: dict[str, list[dict]] = {}
    for panel, runs in found.items():
        sizes = [d.get("size") for _, d, _ in runs]
        usual = max(sorted(set(sizes), key=str), key=sizes.count)
        for stem, data, points in runs:
            policy, variance = data.get("policy") or "learnt", data.get("variance")
            other = data.get("size") != usual
            panels.setdefault(panel, []).append(
                {
                    "stem": stem.removeprefix("eval-"),
                    "name": run_name(data) + (f", {data.get('size')}²" if other else ""),
                    "colour": POLICY_COLOURS.get(str(policy), "#ab63fa")
                    if variance
                    else BASELINE_COLOURS.get(str(data.get("model")), "#ab63fa"),
                    "dash": VARIANCE_DASH.get(variance, "dot"),
                    "other_size": other,
                    "points": points,
                }
            )
    return panels


def _eval_panels_figure(panels: dict, title: str, x_title: str, y_title: str, integer_x: bool):
    """One subplot per panel of ``_eval_series``, one shared legend, y from 0 to 1."""
    names = list(panels) or ["no results"]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True)
    shown: set[str] = set()
    for col, panel in enumerate(names, start=1):
        for run in panels.get(panel, []):
            x, y = zip(*run["points"], strict=True)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=run["name"],
                    legendgroup=run["name"],
                    showlegend=run["name"] not in shown,
                    line={"color": run["colour"], "dash": run["dash"], "width": 2},
                    marker={"symbol": "diamond" if run["other_size"] else "circle", "size": 6},
                    hovertemplate=f"{run['stem']}<br>{x_title} %{{x}}<br>{y_title} %{{y:.3f}}"
                    "<extra></extra>",
                ),
                1,
                col,
            )
            shown.add(run["name"])
        top = max((max(p[0] for p in r["points"]) for r in panels.get(panel, [])), default=1)
        fig.update_xaxes(
            title_text=x_title,
            dtick=(1 if top <= 10 else 2) if integer_x else None,
            tickformat="d" if integer_x else None,
            row=1,
            col=col,
        )
    fig.update_yaxes(range=[0, 1.02])
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_layout(
        title={"text": title, "x": 0.02},
        template="plotly_white",
        height=400,
        margin={"l": 50, "r": 10, "t": 70, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    return fig


def _per_saccade(data: dict):
    values = data.get("per_saccade")
    if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
        return [(i + 1, float(v)) for i, v in enumerate(values)]
    return None


def _at_model_t(values: list, data: dict):
    """The accuracy after the model's own T saccades in a per-saccade list (the run may go on
    past it), else after the last."""
    t = data.get("model_saccades") or len(values)
    return float(values[min(int(t), len(values)) - 1])


def _per_noise(data: dict):
    noise = data.get("noise")
    if not isinstance(noise, dict) or len(noise) < 2:
        return None
    try:
        return sorted((float(k), _at_model_t(v, data)) for k, v in noise.items() if v)
    except (TypeError, ValueError, IndexError):
        return None


def _localised(data: dict):
    loc = data.get("localisation")
    values = loc.get("per_saccade") if isinstance(loc, dict) else None
    if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
        return [(i + 1, float(v)) for i, v in enumerate(values)]
    return None


def saccades_figure(results: list[tuple[str, object]]) -> go.Figure:
    """Test accuracy against the number of saccades, per dataset and task: the model's own
    policy (blue) against the oracle, brightness and random policies; learnt σ solid, fixed
    σ dashed."""
    return _eval_panels_figure(
        _eval_series(results, _per_saccade),
        "Test accuracy against the number of saccades",
        "saccades",
        "accuracy",
        integer_x=True,
    )


def noise_figure(results: list[tuple[str, object]]) -> go.Figure:
    """Test accuracy after the model's T saccades against the proxy's noise at test time
    (std, a fraction of the intensity range), per dataset and task, for each run evaluated
    at several noise levels."""
    return _eval_panels_figure(
        _eval_series(results, _per_noise),
        "Test accuracy against proxy noise at test time (after the model's T saccades)",
        "proxy noise σ",
        "accuracy",
        integer_x=False,
    )


def localisation_figure(results: list[tuple[str, object]]) -> go.Figure:
    """The share of ground-truth digits looked at (a crop covering the digit, see
    ``saccade.looked_at``) after each saccade, per dataset and task."""
    return _eval_panels_figure(
        _eval_series(results, _localised),
        "Localisation: share of the digits looked at, after each saccade",
        "saccades",
        "digits looked at",
        integer_x=True,
    )


def ablation_figure(results: list[tuple[str, object]]) -> go.Figure:
    """Test accuracy of each ablation run (``assets/ablations/*.json``, ``saccade.evaluate``
    output) as bars, clean and at each other proxy noise it was evaluated at."""
    fig = go.Figure()
    rows = [(s, d) for s, d in results if isinstance(d, dict) and "accuracy" in d]
    levels = sorted(
        {k for _, d in rows if isinstance(d.get("noise"), dict) for k in d["noise"]},
        key=float,
    )
    for level in levels or ["0.0"]:
        x, y = [], []
        for stem, data in rows:
            noise = data.get("noise") if isinstance(data.get("noise"), dict) else {}
            if level in noise and noise[level]:
                y.append(_at_model_t(noise[level], data))
            elif float(level) == 0.0:
                y.append(float(data["accuracy"]))
            else:
                continue
            x.append(stem)
        fig.add_trace(go.Bar(x=x, y=y, name=f"proxy noise {float(level):g}"))
    fig.update_layout(
        title={"text": "Ablations: test accuracy of each departure removed", "x": 0.02},
        template="plotly_white",
        barmode="group",
        height=360,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        yaxis={"title": "accuracy", "range": [0, 1.02]},
    )
    return fig


# ----------------------------------------------------------------------------- paper figures
# ``python -m saccade.figures`` writes these as PNGs in assets/ (with ``noise_figure``).


def noise_train_figure(runs: dict[str, list[dict]]) -> go.Figure:
    """Validation accuracy per epoch, one line per training run, at the proxy noise the run
    trains with.

    Args:
        runs: {label: the run's metric events (``NAME.metrics.jsonl``)}; the events with
            ``val_acc_train_noise`` (or else ``val_acc``) are drawn.
    """
    fig = go.Figure()
    for label, events in runs.items():
        val = [e for e in events if "val_acc" in e]
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] for e in val],
                y=[100 * e.get("val_acc_train_noise", e["val_acc"]) for e in val],
                mode="lines+markers",
                name=label,
            )
        )
    fig.update_layout(
        title={"text": "Validation accuracy per epoch, by training proxy noise", "x": 0.02},
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy (%)"},
        width=720,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


#: one colour per saccade in ``posterior_samples_figure`` (the legend keys them)
SACCADE_COLOURS = ["#e41a1c", "#ff7f00", "#ffff33", "#4daf4a", "#377eb8", "#984ea3", "#f781bf"]


def posterior_samples_figure(image: np.ndarray, panels: dict[str, tuple]) -> go.Figure:
    """Crop boxes of posterior samples drawn over the image, one panel per model, one colour
    per saccade with a legend that keys them.

    Args:
        image: (S, S) uint8 (or (S, S, 3): drawn in gray), full resolution (drawn downscaled).
        panels: {title: (boxes (n, T, 4) in full-resolution pixels, accuracy when sampling
            or None[, a note under the title, e.g. what the samples covered])}.
    """
    small = downscale(image, 512)
    if small.ndim == 3:
        small = small.mean(axis=2)
    f = small.shape[0] / image.shape[0]
    titles = []
    for t, (_, acc, *note) in panels.items():
        text = t if acc is None else f"{t}: {100 * acc:.1f}% sampling"
        titles.append(text + (f"<br><sup>{note[0]}</sup>" if note and note[0] else ""))
    fig = make_subplots(1, len(panels), subplot_titles=titles, horizontal_spacing=0.04)
    palette = SACCADE_COLOURS
    n_steps = 0
    for col, (boxes, *_) in enumerate(panels.values(), start=1):
        fig.add_trace(go.Heatmap(z=small[::-1], colorscale="gray", showscale=False), 1, col)
        for sample in boxes:
            n_steps = max(n_steps, len(sample))
            for t, (x0, y0, x1, y1) in enumerate(sample):
                ys = small.shape[0] - np.array([y0, y0, y1, y1, y0]) * f
                fig.add_trace(
                    go.Scatter(
                        x=np.array([x0, x1, x1, x0, x0]) * f,
                        y=ys,
                        mode="lines",
                        line={"color": palette[t % len(palette)], "width": 1},
                        opacity=0.6,
                        legendgroup=f"saccade {t + 1}",
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    1,
                    col,
                )
        fig.update_xaxes(range=[0, small.shape[1]], visible=False, row=1, col=col)
        fig.update_yaxes(
            range=[0, small.shape[0]], visible=False, scaleanchor=f"x{col}", row=1, col=col
        )
    for t in range(n_steps):  # the colour key: one legend entry per saccade
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"color": palette[t % len(palette)], "width": 3},
                name=f"saccade {t + 1}",
                legendgroup=f"saccade {t + 1}",
                showlegend=True,
            )
        )
    fig.update_layout(
        width=420 * len(panels),
        height=520,
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
        title={"text": "16 posterior samples of each model (colour: the saccade)", "x": 0.02},
        legend={"orientation": "h", "y": -0.02, "x": 0, "yanchor": "top", "title": {"text": ""}},
    )
    return fig
