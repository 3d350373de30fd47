"""The benchmark's results (``python -m saccade.bench``, ``assets/bench-*.json``): time per
image against image side, and the headline's table and chart of a training step's time and
peak memory per model."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def bench_rows(results: list[tuple[str, object]]) -> list[dict]:
    """Flatten ``assets/bench-*.json`` contents (lists of rows with model, dataset, side, phase,
    ms_per_image, peak_mb) into one list of rows; malformed rows are skipped."""
    keys = ("model", "dataset", "side", "phase", "ms_per_image", "peak_mb")
    rows = []
    for _, data in results:
        for row in data if isinstance(data, list) else []:
            if isinstance(row, dict) and all(k in row for k in keys):
                row = {k: row[k] for k in keys} | {"what": row.get("what", "")}
                for k in ("ms_per_image", "peak_mb"):  # 3 significant digits for the table
                    if isinstance(row[k], float):
                        row[k] = float(f"{row[k]:.3g}")
                rows.append(row)
    return rows


def bench_figure(rows: list[dict]) -> go.Figure:
    """Milliseconds per image against image side, one line per (model, phase): flat lines
    mean the cost does not depend on the image's size."""
    fig = go.Figure()
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["model"], r["phase"]), []).append(r)
    for (model, phase), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["side"])
        fig.add_trace(
            go.Scatter(
                x=[r["side"] for r in rs],
                y=[r["ms_per_image"] for r in rs],
                mode="lines+markers",
                name=f"{model} {phase}",
            )
        )
    fig.update_layout(
        title={"text": "Time per image against image side", "x": 0.02},
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "image side (px)", "type": "log"},
        yaxis={"title": "ms per image", "type": "log"},
    )
    return fig


#: one colour per model (Plotly's default sequence)
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")


def headline_figure(rows: list[dict]) -> go.Figure:
    """``python -m saccade.bench``'s headline chart: ms per image of a training step (left)
    and its peak memory (right) against the image side, log-log, one line per model and
    dataset (dotted: Megapixel MNIST)."""
    fig = make_subplots(
        1, 2, subplot_titles=("training step, ms per image", "training step, peak memory (MB)")
    )
    train = [r for r in rows if r["phase"] == "train" and r.get("status") == "ok"]
    series = sorted({(r["model"], r["dataset"]) for r in train})
    for model, dataset in series:
        pts = sorted((r["side"], r["ms_per_image"], r["peak_mb"]) for r in train
                     if (r["model"], r["dataset"]) == (model, dataset))  # fmt: skip
        name = f"{model} ({dataset})"
        dash = "solid" if dataset == "cluttered" else "dot"
        models = sorted({m for m, _ in series})
        colour = PALETTE[models.index(model) % len(PALETTE)]
        for col, values in ((1, [p[1] for p in pts]), (2, [p[2] for p in pts])):
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=values,
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    mode="lines+markers",
                    line={"color": colour, "dash": dash},
                ),
                1,
                col,
            )
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text="image side (pixels)", row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=col)
    fig.update_layout(
        template="plotly_white", height=460, margin={"l": 50, "r": 20, "t": 40, "b": 50}
    )
    return fig


def headline_table(rows: list[dict], compact: bool = False) -> str:
    """A markdown table: one line per (dataset, side, model). ``compact``: only the training
    step's time and memory, the epoch, the ratio to resnet18-grid and the status (narrow
    enough for the About tab)."""
    cells: dict[tuple, dict] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["side"], r["model"]), {})[r["phase"]] = r

    def num(v, fmt):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def ms(phases, phase, fmt=".2f"):
        return num(phases.get(phase, {}).get("ms_per_image"), fmt)

    columns = {  # header: (cell of a configuration's phases, alignment)
        "dataset": (lambda k, ph: k[0], "---"),
        "side": (lambda k, ph: str(k[1]), "---:"),
        "model": (lambda k, ph: k[2], "---"),
        "params": (lambda k, ph: num(ph.get("train", {}).get("params"), ","), "---:"),
        "data ms": (lambda k, ph: ms(ph, "data"), "---:"),
        "train ms": (lambda k, ph: ms(ph, "train"), "---:"),
        "infer ms": (lambda k, ph: ms(ph, "infer"), "---:"),
        "1-image ms": (lambda k, ph: ms(ph, "infer-one", ".1f"), "---:"),
        "epoch s (60k)": (lambda k, ph: num(ph.get("epoch", {}).get("epoch_s"), ".0f"), "---:"),
        "data wait": (lambda k, ph: num(ph.get("epoch", {}).get("data_wait"), ".0%"), "---:"),
        "peak MB": (lambda k, ph: num(ph.get("train", {}).get("peak_mb"), ".0f"), "---:"),
        "train × grid": (lambda k, ph: num(ph.get("train", {}).get("vs_grid"), ".2g"), "---:"),
        "peak × grid": (
            lambda k, ph: num(ph.get("train", {}).get("peak_vs_grid"), ".2g"),
            "---:",
        ),
        "status": (
            lambda k, ph: (
                "; ".join(sorted({p.get("status", "ok") for p in ph.values()} - {"ok"})) or "ok"
            ),
            "---",
        ),
    }
    if compact:
        keep = ("side", "model", "train ms", "peak MB", "epoch s (60k)", "train × grid", "status")
        columns = {k: v for k, v in columns.items() if k in keep}
        columns["side"] = (lambda k, ph: f"{k[1]} ({k[0][0]})", "---:")  # c / m: the dataset
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(align for _, align in columns.values()) + "|",
    ]
    for key, ph in cells.items():
        lines.append("| " + " | ".join(cell(key, ph) for cell, _ in columns.values()) + " |")
    return "\n".join(lines)
