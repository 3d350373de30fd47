"""The per-prediction panels beside the trajectory: the posterior's σ, the proxy the model
saw, the class probabilities after each saccade, the crops' gallery, which digits were
looked at, and the placeholder shown before the first run."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..looked_at import COVER_FRACTION, MIN_SAMPLES, box_coverage, looked_at
from .images import channels_last, enlarge, png_data_uri

COORDS = ("scale", "x", "y")
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def placeholder_figure(text: str, height: int = 560) -> go.Figure:
    """An empty figure with a message (shown before the first run; it also makes the browser
    load plotly.js with the page rather than on the first click)."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    fig.update_layout(
        height=height,
        margin=_MARGIN,
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return fig


# ----------------------------------------------------------------------------- posterior


def sigma_figure(
    sigma: np.ndarray,
    variance: str = "learnt",
    title: str | None = None,
    y_max: float | None = None,
    offset_sigma: np.ndarray | None = None,
    cell_entropy: np.ndarray | None = None,
):
    """The posterior's σ after each saccade, in two panels that say apart what the variance
    mode sets and what the cells add.

    Left, *what the {variance} mode sets*: the σ of the scale and, where known, the σ of the
    offset inside the chosen cell (x, y): constant in fixed mode, predicted in learnt mode.
    Right, *spread over cells*: the σ of the crop centre (x, y) under the whole posterior (the
    mixture of every cell's offset Gaussian): it grows when the cells' probability spreads,
    in either mode.

    Args:
        sigma: (T, 3) ``saccade.predict``'s σ: of the scale, and of x and y under the mixture.
        variance: "learnt" or "fixed".
        y_max: the top of both y axes; give two figures the same one to compare them.
        offset_sigma: (T, 2) the chosen cell's offset σ of (x, y), or None when not known.
        cell_entropy: (T,) the entropy of the cell choice in nats, or None: the spread's
            hover says it as "about exp(H) cells".

    Traces: 0 the scale's σ, 1-2 the mixture's σ of x and y (``sigma[:, i]`` for i = 0, 1, 2),
    then the offset's σ of x and y when given. The lines differ in dash and marker as well as
    colour, so that equal σ of x and y stay visible as two lines.
    """
    from plotly.subplots import make_subplots

    sigma = np.asarray(sigma, dtype=np.float64).reshape(-1, 3)
    steps = list(range(1, len(sigma) + 1))
    mode_words = "fixed: one constant" if variance == "fixed" else "learnt: predicted per step"
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=(f"what the mode sets ({mode_words})", "spread over the cells"),
    )

    cells = None
    if cell_entropy is not None:
        cells = np.exp(np.asarray(cell_entropy, dtype=np.float64).reshape(-1)).tolist()

    def line(y, name, colour, dash, symbol, col):
        hover = {}
        if col == 2 and cells is not None:
            hover = {
                "customdata": cells,
                "hovertemplate": f"{name}: %{{y:.3f}}<br>the posterior spread over about "
                "%{customdata:.1f} cells<extra></extra>",
            }
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=np.asarray(y, float).tolist(),
                mode="lines+markers",
                name=name,
                line={"dash": dash, "color": colour},
                marker={"symbol": symbol, "size": 8},
                **hover,
            ),
            1,
            col,
        )

    line(sigma[:, 0], "σ of the scale", "#636efa", "solid", "circle", 1)
    line(sigma[:, 1], "spread of the centre, x", "#ef553b", "dash", "square-open", 2)
    line(sigma[:, 2], "spread of the centre, y", "#00cc96", "dot", "x", 2)
    if offset_sigma is not None:
        off = np.asarray(offset_sigma, dtype=np.float64).reshape(-1, 2)
        line(off[:, 0], "σ in the chosen cell, x", "#ab63fa", "dash", "diamond-open", 1)
        line(off[:, 1], "σ in the chosen cell, y", "#ffa15a", "dot", "triangle-up", 1)
    else:
        fig.add_annotation(
            text="(σ in the chosen cell: not reported)",
            xref="x domain",
            yref="y domain",
            x=0.5,
            y=0.95,
            showarrow=False,
            font={"size": 11, "color": "#666"},
        )
    if title is None:
        title = f"Posterior σ per step ({variance} variance)"
    yaxis = {"rangemode": "tozero"}
    if y_max is not None and y_max > 0:
        yaxis["range"] = [0, 1.05 * float(y_max)]
    fig.update_yaxes(**yaxis)
    fig.update_yaxes(title_text="σ (image width = 2)", row=1, col=1)
    fig.update_xaxes(title_text="saccade", dtick=1)
    fig.update_annotations(font_size=12, selector={"text": f"what the mode sets ({mode_words})"})
    fig.update_layout(
        title={"text": title, "x": 0.02},
        height=360,
        margin={"l": 50, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"},
    )
    return fig


def proxy_figure(proxy: np.ndarray, noise: float = 0.0) -> go.Figure:
    """The proxy the model saw, (p, p) or a colour model's (C, p, p) floats in [0, 1], noise
    included, shown pixelated."""
    p = channels_last(np.asarray(proxy, dtype=np.float64))
    img = enlarge(np.clip(p, 0, 1), 256)
    fig = go.Figure(go.Image(source=png_data_uri(img), hoverinfo="skip"))
    fig.update_layout(
        title={"text": f"Proxy {p.shape[1]}×{p.shape[0]}, noise σ = {noise:g}", "x": 0.02},
        height=300,
        margin=_MARGIN,
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
    )
    return fig


# ----------------------------------------------------------------------------- prediction


def label_dict(probs: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Class name -> probability for ``gradio.Label``, from (n_classes,) probabilities."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if len(probs) != len(class_names):
        raise ValueError(f"{len(probs)} probabilities for {len(class_names)} class names")
    return {name: float(p) for name, p in zip(class_names, probs, strict=True)}


#: class names that are colours are drawn in their own colour (white and yellow darkened, so
#: that they show on a white plot)
NAMED_COLOURS = {
    "red": "#d62728",
    "green": "#2ca02c",
    "blue": "#1f77b4",
    "yellow": "#bcbd22",
    "orange": "#ff7f0e",
    "purple": "#9467bd",
    "pink": "#e377c2",
    "brown": "#8c564b",
    "black": "#000000",
    "gray": "#7f7f7f",
    "grey": "#7f7f7f",
    "white": "#c7c7c7",
    "cyan": "#17becf",
    "magenta": "#e31a9c",
}


def class_colour(name: str) -> str | None:
    """The colour a class is drawn in when its name is a colour ("Red", "green"), else None
    (plotly's own cycle)."""
    return NAMED_COLOURS.get(str(name).strip().lower())


def probs_figure(probs: np.ndarray, class_names: list[str], top: int = 5, title=None):
    """How the top classes' probabilities evolve over saccades.

    Args:
        probs: (T, n_classes) class probabilities after each saccade.
        top: how many classes to draw: those with the highest probability at any step.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    order = np.argsort(-probs.max(axis=0), kind="stable")[:top]
    steps = list(range(1, len(probs) + 1))
    fig = go.Figure(
        [
            go.Scatter(
                x=steps,
                y=probs[:, c].tolist(),
                mode="lines+markers",
                name=str(class_names[c]),
                line={"color": class_colour(class_names[c])},
            )
            for c in order
        ]
    )
    fig.update_layout(
        title={"text": title or "Class probabilities after each saccade", "x": 0.02},
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "saccade", "dtick": 1},
        yaxis={"title": "p(class)", "range": [0, 1.02]},
        legend={"title": {"text": "class"}},
    )
    return fig


def outside_share(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(T,) the share of each box (x0, y0, x1, y1) that lies outside an image of ``shape``
    (H, W): the part of the crop that reads as black."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = shape
    inside = np.clip(boxes, 0, [w, h, w, h])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    return 1 - kept / np.maximum(area, 1e-9)


def gallery_items(
    zooms: list[np.ndarray],
    crops: np.ndarray,
    boxes: np.ndarray,
    sigma: np.ndarray,
    shape: tuple[int, int] | None = None,
) -> list[tuple[np.ndarray, str]]:
    """Pairs for ``gradio.Gallery``: the full-resolution region of each step's box next to the
    k×k crop the network saw, captioned with step, box and σ. Images under 128 px a side are
    enlarged by an integer factor (nearest neighbour) so the browser does not blur them.

    Args:
        zooms: T uint8 arrays (the full-resolution regions, clipped to the image).
        crops: (T, k, k) floats in [0, 1], or (T, C, k, k) for a colour model.
        boxes: (T, 4) boxes; sigma: (T, 3).
        shape: (H, W) of the image: a crop that reaches past its border says how much of it
            is outside (black in the crop, cut from the region).
    """
    items = []
    k = int(np.asarray(crops).shape[-1])
    outside = outside_share(boxes, shape) if shape is not None else np.zeros(len(boxes))
    for t, (zoom, crop, box, sig) in enumerate(zip(zooms, crops, boxes, sigma, strict=True)):
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        s = ", ".join(f"{v:.3f}" for v in np.asarray(sig, float))
        items.append(
            (
                enlarge(np.asarray(zoom, np.uint8), 128),  # small regions: pixels stay crisp
                f"step {t + 1}: full-res box ({x0}, {y0})-({x1}, {y1}), σ (s, x, y) = ({s})",
            )
        )
        note = ""
        if outside[t] > 0.005:
            note = f"; {outside[t]:.0%} of it is past the image's border and reads as black"
        crop = channels_last(crop)  # a colour model's (C, k, k)
        items.append((enlarge(crop, 128), f"step {t + 1}: the {k}×{k} crop the network saw{note}"))
    return items


def _to_height(image: np.ndarray, height: int) -> np.ndarray:
    """A uint8 image resized to ``height`` rows (nearest neighbour when enlarging, so the
    crop's pixels stay pixels; area averaging when shrinking), as RGB."""
    import cv2

    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    h, w = a.shape[:2]
    width = max(1, int(round(w * height / max(h, 1))))
    method = cv2.INTER_NEAREST if height >= h else cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(a), (width, height), interpolation=method)


def gallery_pairs(
    zooms: list[np.ndarray],
    crops: np.ndarray,
    boxes: np.ndarray,
    shape: tuple[int, int] | None = None,
    height: int = 192,
    gap: int = 8,
) -> list[tuple[np.ndarray, str]]:
    """One picture per step for ``gradio.Gallery``: the full-resolution region of the step's
    box (left) and the k×k crop the network saw (right), side by side at ``height`` pixels
    with a white gap, under a short caption, "step t: W×H px → k×k" (the region's size in
    the image's pixels, the crop's samples; a pair can never be split across rows, and the
    caption fits the one line the gallery gives it).

    Args:
        zooms: T uint8 arrays (the full-resolution regions, clipped to the image).
        crops: (T, k, k) floats in [0, 1], or (T, C, k, k) for a colour model.
        boxes: (T, 4) boxes.
        shape: (H, W) of the image: a crop past its border says how much of it is outside.

    Returns:
        T (RGB uint8 image, caption) pairs.
    """
    items = []
    k = int(np.asarray(crops).shape[-1])
    outside = outside_share(boxes, shape) if shape is not None else np.zeros(len(boxes))
    for t, (zoom, crop, box) in enumerate(zip(zooms, crops, boxes, strict=True)):
        left = _to_height(np.asarray(zoom), height)
        right = _to_height(channels_last(crop), height)
        white = np.full((height, gap, 3), 255, np.uint8)
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        note = f", {outside[t]:.0%} out" if outside[t] > 0.005 else ""
        # short: the gallery shows one line under each picture (region px -> crop samples)
        caption = f"step {t + 1}: {x1 - x0}×{y1 - y0} px → {k}×{k}{note}"
        items.append((np.concatenate([left, white, right], axis=1), caption))
    return items


# ----------------------------------------------------------------------------- coverage


def coverage_markdown(
    truth: np.ndarray,
    boxes: np.ndarray,
    crop_size: int,
    digits: list[int] | None = None,
    class_name: str | None = None,
    predicted: str | None = None,
    fraction: float = COVER_FRACTION,
) -> str:
    """A short Markdown report: which ground-truth digits some crop box covered, and when
    (the rule: ``saccade.looked_at``)."""
    cov = box_coverage(truth, boxes)
    seen = looked_at(truth, boxes, crop_size, fraction)  # (n, T)
    lines = []
    if class_name is not None:
        verdict = ""
        if predicted is not None:
            verdict = " - predicted correctly" if predicted == class_name else " - predicted wrong"
        lines.append(f"**Ground truth:** class `{class_name}`{verdict}.")
    hits = 0
    for i, row in enumerate(cov):
        name = f"digit {digits[i]}" if digits is not None and i < len(digits) else f"box {i + 1}"
        best = int(row.argmax()) if row.size else 0
        share = float(row[best]) if row.size else 0.0
        if seen[i].any():
            hits += 1
            first = int(np.argmax(seen[i]))
            lines.append(
                f"- {name}: **looked at** (first at step {first + 1}; best {share:.0%} inside step {best + 1})"
            )
        elif share >= fraction:
            lines.append(f"- {name}: **missed**: inside a crop, but too small in it to read")
        else:
            lines.append(f"- {name}: **missed** (at most {share:.0%} inside a crop)")
    lines.insert(
        1 if class_name is not None else 0,
        f"Covered {hits} of {len(cov)} digits. Rule: a digit counts as looked at when one crop "
        f"box holds at least {fraction:.0%} of its ground-truth box and the digit spans at "
        f"least {MIN_SAMPLES} of the crop's {int(crop_size)} samples across.",
    )
    return "\n".join(lines)
