"""Accuracy against canvas side on the zoom benchmark, one line per model: VS (learnt or
fixed σ, its own crops or a pinned policy such as ``scale-max``) and the baselines, each
point one ``python -m saccade.evaluate`` JSON (``--canvas SIDE``)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from .benchmark import PALETTE

#: the evaluations' files in assets/ that hold zoom runs (VS, and the baselines' own names)
ZOOM_EVAL_PATTERNS = ("eval-zoom-*.json", "eval-baseline-*zoom*.json")


def zoom_runs(results: list[tuple[str, object]]) -> list[dict]:
    """The zoom runs among ``(stem, JSON)`` pairs (``load_results``): those whose
    ``dataset`` is "zoom" with a numeric ``accuracy`` and ``size``, each with ``run`` (the
    stem) and ``series`` (the line it belongs to: ``series_name``)."""
    runs = []
    for stem, data in results:
        if not isinstance(data, dict) or data.get("dataset") != "zoom":
            continue
        acc, size = data.get("accuracy"), data.get("size")
        if not isinstance(acc, (int, float)) or not isinstance(size, (int, float)):
            continue
        runs.append(dict(data, run=stem.removeprefix("eval-"), series=series_name(data)))
    return runs


def series_name(data: dict) -> str:
    """A run's line: "VS zoom-ring-learnt" (the checkpoint's name, so that two models of one
    variance mode are two lines), "VS fixed σ, scale-max" (no checkpoint named), "VS
    zoom-ring-learnt, sampled", "VS zoom-ring-learnt, proxy scaled" (``--canvas-layout
    pixels``), "resnet18-proxy", ...; on canvases of the area-average renderer (the JSON's
    ``render`` "mean"), each with ", mean render", so that a model's runs on the two
    renderers are two lines."""
    model = data.get("model") or "vs"
    render = ", mean render" if data.get("render") == "mean" else ""
    if model != "vs":
        return str(model) + render
    checkpoint = data.get("checkpoint")
    if checkpoint:
        name = f"VS {Path(str(checkpoint)).name}"
    else:
        name = f"VS {data.get('variance') or '?'} σ"
    policy = data.get("policy")
    if policy and policy != "learnt":
        name += f", {policy}"
    if data.get("sample"):
        name += ", sampled"
    if data.get("canvas_layout") == "pixels":  # --canvas-layout pixels: the proxy scaled
        name += ", proxy scaled"
    return name + render


def canvas_side_figure(runs: list[dict], title: str = "Zoom: accuracy against canvas side"):
    """Accuracy (y, %) against canvas side (x, log 2) of ``zoom_runs``, one line per series
    (VS's solid, the baselines' dashed), a point per side (hover: the run's file). Several
    runs of one series at one side: the one with more canvases. Returns a plotly figure
    (no traces when ``runs`` is empty)."""
    by_series: dict[str, dict[int, dict]] = {}
    for r in runs:
        side = int(r["size"])
        points = by_series.setdefault(r["series"], {})
        if side not in points or (r.get("n") or 0) > (points[side].get("n") or 0):
            points[side] = r
    fig = go.Figure()
    for i, (series, points) in enumerate(sorted(by_series.items())):
        sides = sorted(points)
        fig.add_trace(
            go.Scatter(
                x=sides,
                y=[100 * float(points[s]["accuracy"]) for s in sides],
                customdata=[[points[s]["run"], points[s].get("n")] for s in sides],
                mode="lines+markers",
                name=series,
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "dash": "solid" if series.startswith("VS") else "dash",
                },
                hovertemplate="%{x:,}²: %{y:.1f}%<br>%{customdata[0]} (n = %{customdata[1]})"
                "<extra>%{fullData.name}</extra>",
            )
        )
    sides = sorted({int(r["size"]) for r in runs})
    fig.update_layout(
        title={"text": title, "x": 0.02},
        xaxis={
            "title": "canvas side (px)",
            "type": "log",
            "tickvals": sides,
            "ticktext": [f"{s:,}" for s in sides],
        },
        yaxis={"title": "test accuracy (%)", "range": [0, 100]},
        height=420,
        margin={"l": 60, "r": 10, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
