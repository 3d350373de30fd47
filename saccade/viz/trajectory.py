"""The crop trajectory over the image, animated step by step, with the posterior at each step.

Animation in a browser: ``gradio.Plot`` hands the figure to ``Plotly.react`` and drops
``figure.frames``. So the trajectory's frames are written *into* the play button's and the
slider's ``args`` (``Plotly.animate`` accepts a list of frame objects), with ``redraw=True``
so the crop box, a layout shape, is redrawn at every step (``saccade.viz.animation``).

Conventions: boxes are (T, 4) or (n, 4) arrays of x0, y0, x1, y1 in full-resolution pixels;
z = (scale, x, y) as in ``saccade.glimpse``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ..looked_at import covered_after
from .animation import FRAMES_META, animation_controls
from .images import channels_last, png_data_uri
from .panels import outside_share

STEP_COLOUR = "#ff7f0e"  # the current crop box and the path
#: ground truth: looked at (by this step) / not (yet) looked at
TRUTH_COLOURS = {True: "#2ca02c", False: "#d62728"}
SIGMA_COLOUR = "#17becf"  # the 1σ ellipse of the crop centre
#: the posterior's heat map, opaque (so that the colour bar is what is drawn): black at 0, to
#: pale yellow at the step's most probable cell (matplotlib's "inferno")
HEAT_COLOURS = [
    [0.0, "#000004"],
    [0.25, "#57106e"],
    [0.5, "#bc3754"],
    [0.75, "#f98e09"],
    [1.0, "#fcffa4"],
]
#: the colour bar's title: each step's map is scaled to its own largest cell
HEAT_TITLE = "p(cell) ÷ the step's largest"


def rect_shape(
    box,
    colour: str,
    name: str,
    width: float = 3,
    dash: str = "solid",
    opacity=1.0,
    xref: str = "x",
    yref: str = "y",
):
    """A layout shape over ``box`` (x0, y0, x1, y1) on axes ``xref``/``yref``; ``_ellipse``
    makes the inscribed one (``saccade.viz.zoom_chain`` draws its panels' boxes with it)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return {
        "type": "rect",
        "xref": xref,
        "yref": yref,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "name": name,
        "line": {"color": colour, "width": width, "dash": dash},
        "opacity": opacity,
        "layer": "above",
        "visible": True,  # explicit: an animation frame merges into the last one's shapes
    }


def _ellipse(centre, radii, colour: str, name: str, width: float, dash: str, opacity=1.0):
    (cx, cy), (rx, ry) = centre, radii
    box = (cx - rx, cy - ry, cx + rx, cy + ry)
    return rect_shape(box, colour, name, width, dash, opacity) | {"type": "circle"}


@dataclass
class _Steps:
    """A trajectory's geometry per step, in full-resolution pixels (``_steps`` makes it)."""

    h: int
    w: int
    n_steps: int
    centres: np.ndarray  # (T, 2) crop centres
    outside: np.ndarray  # (T,) the share of each crop outside the image, read as black
    crop_boxes: np.ndarray  # (T, 4) the whole crops, as evaluate judges them
    boxes: np.ndarray  # (T, 4) the crops clipped to the picture, as drawn
    sigma: np.ndarray | None  # (T, 3) posterior σ of (scale, x, y), normalised units
    radii: np.ndarray | None  # (T, 2) the 1σ ellipse's radii in pixels
    cell_probs: np.ndarray | None  # (T, g_rows, g_cols) where the heat panel is drawn
    square: tuple[float, float, float, float]  # what z's [-1, 1] and the proxy's cells span
    truth: np.ndarray  # (n, 4) ground-truth boxes
    seen: np.ndarray  # (T, n) bool: digit i looked at by one of the crops 1..t

    @property
    def heat(self) -> bool:
        """Whether the second panel (the posterior over the proxy's cells) is drawn."""
        return self.cell_probs is not None


def _steps(side, boxes, truth, sigma, cell_probs, proxy, crop_size, square=None) -> _Steps:
    """Check and convert ``trajectory_figure``'s arguments into per-step geometry."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = (side, side) if np.isscalar(side) else side
    square = tuple(float(v) for v in (square if square is not None else (0, 0, w, h)))
    n_steps = len(boxes)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    outside = outside_share(boxes, (h, w))  # (T,) of each crop, read as black
    crop_boxes, boxes = boxes, np.clip(boxes, 0, [w, h, w, h])  # drawn clipped to the picture
    radii = None
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64).reshape(-1, 3)
        if len(sigma) != n_steps:
            raise ValueError(f"{len(sigma)} σ rows for {n_steps} boxes")
        sw, sh = square[2] - square[0], square[3] - square[1]
        radii = np.stack([sigma[:, 1] * sw / 2, sigma[:, 2] * sh / 2], 1)
    if cell_probs is not None and proxy is not None:
        cell_probs = np.asarray(cell_probs, dtype=np.float64)
        if cell_probs.ndim != 3 or len(cell_probs) != n_steps:
            raise ValueError(f"cell_probs of shape {cell_probs.shape} for {n_steps} boxes")
    else:
        cell_probs = None
    return _Steps(
        h=h,
        w=w,
        n_steps=n_steps,
        centres=centres,
        outside=outside,
        crop_boxes=crop_boxes,
        boxes=boxes,
        sigma=sigma,
        radii=radii,
        cell_probs=cell_probs,
        square=square,
        **_truth_seen(truth, crop_boxes, crop_size),
    )


def _truth_seen(truth, crop_boxes: np.ndarray, crop_size: int | None) -> dict:
    """The ground-truth boxes and, per step, which of them the crops so far looked at
    (``saccade.looked_at.covered_after``: the whole crop, as evaluate judges it)."""
    if truth is None or not len(truth):
        return {"truth": np.zeros((0, 4)), "seen": np.zeros((len(crop_boxes), 0), bool)}
    if crop_size is None:
        raise ValueError("trajectory_figure: crop_size is needed to judge the truth boxes")
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    return {"truth": truth, "seen": covered_after(truth, crop_boxes, crop_size)}


def _truth_shapes(s: _Steps, t: int) -> list[dict]:
    """The ground-truth boxes at step t, dashed: green once one of the crops 1..t looked at
    the digit, red until then (at the last step: red = missed). Every step sets all n."""
    return [
        rect_shape(b, TRUTH_COLOURS[bool(seen)], f"truth-{i}", width=2, dash="dash")
        for i, (b, seen) in enumerate(zip(s.truth, s.seen[t], strict=True))
    ]


def heat_at(cell_probs: np.ndarray, t: int) -> np.ndarray:
    """The heat map drawn at step t: the cells' probabilities divided by that step's largest
    (so a posterior that spreads over many cells stays visible), in [0, 1]."""
    p = np.asarray(cell_probs[t], dtype=np.float64)
    return p / max(float(p.max()), 1e-12)


def _shapes_at(s: _Steps, t: int) -> list[dict]:
    """The layout shapes at step t: the truth boxes, every crop box and σ ellipse (past ones
    faded, the current one solid, later ones hidden), the crop on the proxy panel."""
    # Plotly merges an animation frame's layout.shapes into the figure's by index, so
    # every frame sets the same T crop slots (and T σ slots): earlier ones faded, the
    # current one solid, the later ones hidden (else a later step's box stays drawn at
    # step t). Every shape says ``visible`` explicitly: a slot hidden at step 1 stays
    # hidden at step 3 unless step 3's frame sets it visible again.
    crops, ellipses = [], []
    boxes, centres, radii = s.boxes, s.centres, s.radii
    for i in range(s.n_steps):
        if i < t:
            crops.append(rect_shape(boxes[i], STEP_COLOUR, "crop-past", 1.5, "dot", 0.6))
        elif i == t:
            crops.append(rect_shape(boxes[i], STEP_COLOUR, "crop", 3.5))
        else:
            crops.append(rect_shape(boxes[i], STEP_COLOUR, "crop-future", 1.5) | {"visible": False})
        if s.sigma is not None:
            if i < t:
                e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma-past", 1, "dot", 0.5)
            elif i == t:
                e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma", 2, "solid")
            else:
                e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma-future", 1, "dot")
                e["visible"] = False
            ellipses.append(e)
    extra = []
    if s.heat:
        extra = [rect_shape(boxes[t], STEP_COLOUR, "proxy-crop", 2) | {"xref": "x2", "yref": "y2"}]
    return _truth_shapes(s, t) + crops + ellipses + extra


def _path_hover(s: _Steps, i: int) -> list:
    """The hover data of centre i on the path: its step, and with σ the scale's σ and the
    ellipse's radii in pixels."""
    if s.sigma is None:
        return [i + 1]
    return [i + 1, float(s.sigma[i, 0]), float(s.radii[i, 0]), float(s.radii[i, 1])]


def _traces_at(s: _Steps, t: int) -> list[dict]:
    """The data that changes with the step: the path up to step t, the current centre and,
    with the heat panel, the posterior over the cells."""
    c = s.centres[: t + 1]
    data = [
        {
            "x": c[:, 0].tolist(),
            "y": c[:, 1].tolist(),
            "customdata": [_path_hover(s, i) for i in range(t + 1)],
        },
        {
            "x": [float(s.centres[t, 0])],
            "y": [float(s.centres[t, 1])],
            "text": [f"step {t + 1}"],
        },
    ]
    if s.heat:
        p = s.cell_probs[t]
        data.append(
            {
                "z": heat_at(s.cell_probs, t).tolist(),
                "text": [[f"{v:.4f}" for v in row] for row in p],
            }
        )
    return data


def _step_title(s: _Steps, title: str, t: int) -> str:
    """The title at step t; it says when the crop reaches past the image's border."""
    note = ""
    if s.outside[t] > 0.005:
        note = f" (crop clipped at the border: {s.outside[t]:.0%} of it is outside, read as black)"
    return f"{title}: step {t + 1}{note}"


def _frame(s: _Steps, title: str, t: int) -> dict:
    """Animation frame t, named ``"step t+1"``: the changing traces, shapes and title."""
    return {
        "name": f"step {t + 1}",
        "data": _traces_at(s, t),
        "traces": [1, 2, 3] if s.heat else [1, 2],
        "layout": {"shapes": _shapes_at(s, t), "title": {"text": _step_title(s, title, t)}},
    }


def _image_panel(s: _Steps, background: np.ndarray) -> go.Figure:
    """The figure's first panel at the last step: the image, the path between the crop
    centres (hover: step, centre, σ) and the current centre."""
    last = s.n_steps - 1
    h, w = s.h, s.w
    bh, bw = background.shape[:2]
    hover = "step %{customdata[0]}: centre (%{x:.0f}, %{y:.0f})"
    if s.sigma is not None:
        hover += (
            "<br>1σ: x ±%{customdata[2]:.0f} px, y ±%{customdata[3]:.0f} px"
            "<br>σ of the scale: %{customdata[1]:.3f}"
        )
    return go.Figure(
        data=[
            go.Image(
                source=png_data_uri(background),
                x0=0.5 * w / bw,
                dx=w / bw,
                y0=0.5 * h / bh,
                dy=h / bh,
                hoverinfo="skip",
                name="image",
            ),
            go.Scatter(
                **_traces_at(s, last)[0],
                mode="lines+markers",
                line={"color": STEP_COLOUR, "width": 2},
                marker={"size": 6},
                name="path",
                hovertemplate=hover + "<extra></extra>",
            ),
            go.Scatter(
                **_traces_at(s, last)[1],
                mode="markers+text",
                textposition="top center",
                textfont={"color": STEP_COLOUR},
                marker={"size": 11, "color": STEP_COLOUR, "symbol": "x"},
                name="current",
                hoverinfo="skip",
            ),
        ]
    )


def _image_axes(s: _Steps) -> dict:
    """The first panel's axes: the image's pixels, y down, one pixel square."""
    return {
        "xaxis": {"range": [0, s.w], "visible": False, "constrain": "domain"},
        "yaxis": {
            "range": [s.h, 0],
            "visible": False,
            "scaleanchor": "x",
            "constrain": "domain",
            "constraintoward": "top",  # in a narrow column the image sits under the title
        },
    }


def _proxy_overlay(proxy: np.ndarray) -> np.ndarray:
    """The proxy as white strokes whose opacity is its brightness (half at most): drawn over
    the heat map, the digits show where they are without changing the colour of the cells
    around them, which stay what the colour bar says."""
    p = channels_last(np.asarray(proxy, dtype=np.float64))
    luma = p.mean(axis=2) if p.ndim == 3 else p
    alpha = np.clip(np.rint(np.clip(luma, 0, 1) * 128), 0, 255).astype(np.uint8)
    white = np.full(alpha.shape + (3,), 255, np.uint8)
    return np.dstack([white, alpha])


def _add_posterior_panel(fig: go.Figure, s: _Steps, proxy: np.ndarray, axes: dict) -> None:
    """The second panel (axes x2, y2): the posterior's heat map at the last step, each step
    scaled to its own largest cell (``heat_at``), opaque, with the proxy's strokes over it;
    ``axes`` (``_image_axes``) gains the panel's axes and shares the width. The panel spans
    the model's square (``s.square``: a rectangular slide's padding included)."""
    x0, y0, x1, y1 = s.square
    h, w = y1 - y0, x1 - x0
    g_rows, g_cols = s.cell_probs.shape[1:]
    overlay = _proxy_overlay(proxy)
    ph, pw = overlay.shape[:2]
    last = _traces_at(s, s.n_steps - 1)[2]
    fig.add_trace(
        go.Heatmap(
            z=last["z"],
            text=last["text"],
            x0=x0 + 0.5 * w / g_cols,
            dx=w / g_cols,
            y0=y0 + 0.5 * h / g_rows,
            dy=h / g_rows,
            zmin=0.0,
            zmax=1.0,
            colorscale=HEAT_COLOURS,
            hovertemplate="p(cell) = %{text}<br>÷ the step's largest: %{z:.2f}<extra></extra>",
            colorbar={
                "title": {"text": HEAT_TITLE, "side": "right"},
                "thickness": 10,
                "len": 0.5,
                "x": 1.0,
                "xanchor": "left",
                "y": 1.0,
                "yanchor": "top",
                "tickvals": [0, 0.5, 1],
            },
            name="posterior",
            xaxis="x2",
            yaxis="y2",
        )
    )
    fig.add_trace(
        go.Image(
            source=png_data_uri(overlay),
            x0=x0 + 0.5 * w / pw,
            dx=w / pw,
            y0=y0 + 0.5 * h / ph,
            dy=h / ph,
            hoverinfo="skip",
            name="proxy",
            xaxis="x2",
            yaxis="y2",
        )
    )
    axes["xaxis"]["domain"] = [0.0, 0.62]
    axes["xaxis2"] = {
        "domain": [0.65, 1.0],
        "range": [x0, x1],
        "visible": False,
        "constrain": "domain",
        "anchor": "y2",
    }
    axes["yaxis2"] = {
        "range": [y1, y0],
        "visible": False,
        "scaleanchor": "x2",
        "constrain": "domain",
        "constraintoward": "top",
        "anchor": "x2",
    }


def trajectory_figure(
    background: np.ndarray,
    side: int | tuple[int, int],
    boxes: np.ndarray,
    truth: np.ndarray | None = None,
    title: str = "Where the model looked",
    frame_ms: int = 700,
    height: int = 640,
    sigma: np.ndarray | None = None,
    cell_probs: np.ndarray | None = None,
    proxy: np.ndarray | None = None,
    crop_size: int | None = None,
    square: tuple[float, float, float, float] | None = None,
) -> go.Figure:
    """The crop trajectory over the image, animated; optionally the posterior at each step.

    Args:
        background: (h, w) uint8, the image downscaled for the browser (see ``downscale``).
        side: S or (H, W), the full-resolution size that ``boxes`` and ``truth`` refer to.
        boxes: (T, 4) crop boxes, full-resolution pixels.
        truth: optional (n, 4) ground-truth digit boxes, drawn dashed (shapes ``"truth-i"``):
            at step t green when one of the crops 1..t looked at the digit, red when none has
            yet (``saccade.looked_at.covered_after``; needs ``crop_size``, the crops' k).
        frame_ms: time per step when playing.
        sigma: optional (T, 3) posterior σ of (scale, x, y) in normalised units (x, y in
            [-1, 1] across the image). σx and σy are drawn as a 1σ ellipse (layout shapes of
            type "circle" named ``"sigma"``, ``"sigma-past"``, ``"sigma-future"``) around each
            crop centre, with radii σx·W/2 and σy·H/2 pixels. The σ of the scale is not drawn:
            it is in the hover text of each centre on the path (with σx, σy in pixels).
        cell_probs: optional (T, g, g) posterior probability of each proxy cell, row-major
            [row = y, col = x]. With ``proxy``, a second panel (axes x2, y2) shows the heat
            map (a ``Heatmap`` trace named ``"posterior"``), the proxy's strokes in white over
            it: cell (r, c) covers [c·W/g, (c+1)·W/g) x [r·H/g, (r+1)·H/g) of ``square``
            (the image by default); at step t its colour is cell_probs[t, r, c] divided by the
            step's largest (``heat_at``; the colour bar says so, the hover gives p itself),
            opaque, black at 0. The current crop box is drawn on it too (the shape ``"proxy-crop"``).
        proxy: (p, p) floats in [0, 1], the proxy the posterior saw.
        square: (x0, y0, x1, y1) of the square the model saw, in the pixels of ``boxes``
            (``Prediction.square``): σ's normalised units and the proxy's cells span it.
            Default (0, 0, W, H), the image itself; a rectangular slide's virtual square is
            larger than the slide, and its background (the thumbnail) spans (0, 0, W, H).

    Returns:
        A figure showing the last step (all boxes, the current one bold, the path between
        centres); the Play button and the step slider animate it step by step: the boxes,
        the ellipses, the path and the heat layer all change together, since one frame sets
        them all. The current crop is the layout shape named ``"crop"``. Frame t is named
        ``"step t+1"``; ``PLOTLY_FRAMES_JS`` registers the frames under those names in the
        browser so that the slider follows Play (see there).
    """
    s = _steps(side, boxes, truth, sigma, cell_probs, proxy, crop_size, square)
    frames = [_frame(s, title, t) for t in range(s.n_steps)]
    fig = _image_panel(s, background)
    axes = _image_axes(s)
    if s.heat:
        _add_posterior_panel(fig, s, proxy, axes)
    fig.update_layout(
        title={"text": f"{title}: step {s.n_steps}", "x": 0.02},
        shapes=_shapes_at(s, s.n_steps - 1),
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 60},
        showlegend=False,
        plot_bgcolor="black",
        meta={"animation": FRAMES_META},
        **axes,
        **animation_controls(frames, frame_ms),
    )
    if s.heat:
        fig.add_annotation(
            text="posterior over proxy cells",
            xref="x2 domain",
            yref="y2 domain",
            x=0.0,
            y=1.0,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
        )
    return fig
