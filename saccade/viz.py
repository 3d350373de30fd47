"""Figures and display helpers for the app: pure functions from arrays to plotly figures.

Nothing here loads a model or touches the file system except ``load_results`` (which reads the
JSON that ``saccade.evaluate`` and ``saccade.bench`` write). Every figure is a plain
``plotly.graph_objects.Figure``; the app only shows them.

Conventions: an image is an (S, S) uint8 array; boxes are (T, 4) or (n, 4) arrays of
x0, y0, x1, y1 in full-resolution pixels; z = (scale, x, y) as in ``saccade.glimpse``.

Animation in a browser: ``gradio.Plot`` hands the figure to ``Plotly.react`` and drops
``figure.frames``. So the trajectory's frames are written *into* the play button's and the
slider's ``args`` (``Plotly.animate`` accepts a list of frame objects), with ``redraw=True``
so the crop box, a layout shape, is redrawn at every step.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import image_io
from .glimpse import COVER_FRACTION, MIN_SAMPLES, box_coverage, looked_at

#: the longest side, in pixels, of an image sent to the browser as a figure background
BACKGROUND_SIDE = 512

COORDS = ("scale", "x", "y")
STEP_COLOUR = "#ff7f0e"  # the current crop box and the path
TRUTH_COLOURS = {True: "#2ca02c", False: "#d62728"}  # ground truth: covered / missed
SIGMA_COLOUR = "#17becf"  # the 1σ ellipse of the crop centre
#: the posterior's heat layer over the gray proxy: transparent where p = 0
HEAT_COLOURS = [
    [0.0, "rgba(255, 255, 0, 0)"],
    [0.25, "rgba(255, 200, 0, 0.45)"],
    [1.0, "rgba(255, 0, 0, 0.9)"],
]
#: ``layout.meta.animation`` of a figure whose frames ``PLOTLY_FRAMES_JS`` registers by name
FRAMES_META = "saccade-frames"
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


# ----------------------------------------------------------------------------- images


def downscale(image: np.ndarray, max_side: int = BACKGROUND_SIDE) -> np.ndarray:
    """``image_io.downscale`` to the browser background's size by default."""
    return image_io.downscale(image, max_side)


def enlarge(image: np.ndarray, min_side: int = 128) -> np.ndarray:
    """Nearest-neighbour upsampling of a small image by an integer factor so its shorter side
    reaches ``min_side`` (pixels stay visible as pixels in a browser). Floats in [0, 1] become
    uint8."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    f = max(1, int(np.ceil(min_side / max(1, min(a.shape[:2])))))
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1) if f > 1 else a


def channels_last(image: np.ndarray) -> np.ndarray:
    """A colour model's (C, p, p) proxy or (C, k, k) crop as (p, p, C) for display; gray
    (p, p) and (H, W, C) images as they are."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[2] not in (3, 4):
        return a.transpose(1, 2, 0)
    return a


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 (h, w) gray or (h, w, 3) RGB image as a ``data:image/png;base64,...`` URI
    (lossless)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]  # OpenCV encodes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


# ----------------------------------------------------------------------------- coverage


def covered(
    truth: np.ndarray, boxes: np.ndarray, crop_size: int, fraction: float = COVER_FRACTION
) -> np.ndarray:
    """(n,) bool: digit i was looked at by some crop (``saccade.glimpse.looked_at``: the crop
    holds at least ``fraction`` of its box's area and resolves it in its ``crop_size``
    samples)."""
    return looked_at(truth, boxes, crop_size, fraction).any(axis=1)


def coverage_markdown(
    truth: np.ndarray,
    boxes: np.ndarray,
    crop_size: int,
    digits: list[int] | None = None,
    class_name: str | None = None,
    predicted: str | None = None,
    fraction: float = COVER_FRACTION,
) -> str:
    """A short Markdown report: which ground-truth digits some crop box covered, and when."""
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


# ----------------------------------------------------------------------------- trajectory


def _rect(box, colour: str, name: str, width: float = 3, dash: str = "solid", opacity=1.0):
    """A layout shape over ``box`` (x0, y0, x1, y1); ``_ellipse`` makes the inscribed one."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y",
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
    return _rect(box, colour, name, width, dash, opacity) | {"type": "circle"}


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
) -> go.Figure:
    """The crop trajectory over the image, animated; optionally the posterior at each step.

    Args:
        background: (h, w) uint8, the image downscaled for the browser (see ``downscale``).
        side: S or (H, W), the full-resolution size that ``boxes`` and ``truth`` refer to.
        boxes: (T, 4) crop boxes, full-resolution pixels.
        truth: optional (n, 4) ground-truth digit boxes, drawn dashed: green when looked at
            (see ``covered``; needs ``crop_size``, the crops' k), red when missed.
        frame_ms: time per step when playing.
        sigma: optional (T, 3) posterior σ of (scale, x, y) in normalised units (x, y in
            [-1, 1] across the image). σx and σy are drawn as a 1σ ellipse (layout shapes of
            type "circle" named ``"sigma"``, ``"sigma-past"``, ``"sigma-future"``) around each
            crop centre, with radii σx·W/2 and σy·H/2 pixels. The σ of the scale is not drawn:
            it is in the hover text of each centre on the path (with σx, σy in pixels).
        cell_probs: optional (T, g, g) posterior probability of each proxy cell, row-major
            [row = y, col = x]. With ``proxy``, a second panel (axes x2, y2) shows the proxy in
            gray under a heat layer (a ``Heatmap`` trace named ``"posterior"``): cell (r, c)
            covers [c·W/g, (c+1)·W/g) x [r·H/g, (r+1)·H/g) of the image's coordinates, its
            colour is cell_probs[t, r, c] on one scale for all steps (0 to the largest
            probability of any step), transparent where the posterior puts nothing. The
            current crop box is drawn on it too (the shape named ``"proxy-crop"``).
        proxy: (p, p) floats in [0, 1], the proxy the posterior saw.

    Returns:
        A figure showing the last step (all boxes, the current one bold, the path between
        centres); the Play button and the step slider animate it step by step: the boxes,
        the ellipses, the path and the heat layer all change together, since one frame sets
        them all. The current crop is the layout shape named ``"crop"``. Frame t is named
        ``"step t+1"``; ``PLOTLY_FRAMES_JS`` registers the frames under those names in the
        browser so that the slider follows Play (see there).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = (side, side) if np.isscalar(side) else side
    n_steps = len(boxes)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    outside = outside_share(boxes, (h, w))  # (T,) of each crop, read as black
    crop_boxes, boxes = boxes, np.clip(boxes, 0, [w, h, w, h])  # drawn clipped to the picture
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64).reshape(-1, 3)
        if len(sigma) != n_steps:
            raise ValueError(f"{len(sigma)} σ rows for {n_steps} boxes")
        radii = np.stack([sigma[:, 1] * w / 2, sigma[:, 2] * h / 2], 1)
    heat = cell_probs is not None and proxy is not None
    if heat:
        cell_probs = np.asarray(cell_probs, dtype=np.float64)
        if cell_probs.ndim != 3 or len(cell_probs) != n_steps:
            raise ValueError(f"cell_probs of shape {cell_probs.shape} for {n_steps} boxes")
        g_rows, g_cols = cell_probs.shape[1:]
        z_max = max(float(cell_probs.max()), 1e-6)

    truth_shapes = []
    if truth is not None and len(truth):
        if crop_size is None:
            raise ValueError("trajectory_figure: crop_size is needed to judge the truth boxes")
        hit = covered(truth, crop_boxes, crop_size)  # the whole crop, as evaluate judges it
        truth_shapes = [
            _rect(b, TRUTH_COLOURS[bool(c)], f"truth-{i}", width=2, dash="dash")
            for i, (b, c) in enumerate(zip(np.asarray(truth, float), hit, strict=True))
        ]

    def shapes_at(t: int) -> list[dict]:
        # Plotly merges an animation frame's layout.shapes into the figure's by index, so
        # every frame sets the same T crop slots (and T σ slots): earlier ones faded, the
        # current one solid, the later ones hidden (else a later step's box stays drawn at
        # step t). Every shape says ``visible`` explicitly: a slot hidden at step 1 stays
        # hidden at step 3 unless step 3's frame sets it visible again.
        crops, ellipses = [], []
        for i in range(n_steps):
            if i < t:
                crops.append(_rect(boxes[i], STEP_COLOUR, "crop-past", 1.5, "dot", 0.6))
            elif i == t:
                crops.append(_rect(boxes[i], STEP_COLOUR, "crop", 3.5))
            else:
                crops.append(_rect(boxes[i], STEP_COLOUR, "crop-future", 1.5) | {"visible": False})
            if sigma is not None:
                if i < t:
                    e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma-past", 1, "dot", 0.5)
                elif i == t:
                    e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma", 2, "solid")
                else:
                    e = _ellipse(centres[i], radii[i], SIGMA_COLOUR, "sigma-future", 1, "dot")
                    e["visible"] = False
                ellipses.append(e)
        extra = []
        if heat:
            extra = [_rect(boxes[t], STEP_COLOUR, "proxy-crop", 2) | {"xref": "x2", "yref": "y2"}]
        return truth_shapes + crops + ellipses + extra

    def path_hover(i: int) -> list:
        if sigma is None:
            return [i + 1]
        return [i + 1, float(sigma[i, 0]), float(radii[i, 0]), float(radii[i, 1])]

    def traces_at(t: int) -> list[dict]:
        c = centres[: t + 1]
        data = [
            {
                "x": c[:, 0].tolist(),
                "y": c[:, 1].tolist(),
                "customdata": [path_hover(i) for i in range(t + 1)],
            },
            {
                "x": [float(centres[t, 0])],
                "y": [float(centres[t, 1])],
                "text": [f"step {t + 1}"],
            },
        ]
        if heat:
            data.append({"z": cell_probs[t].tolist()})
        return data

    def frame(t: int) -> dict:
        return {
            "name": f"step {t + 1}",
            "data": traces_at(t),
            "traces": [1, 2, 4] if heat else [1, 2],
            "layout": {"shapes": shapes_at(t), "title": {"text": step_title(t)}},
        }

    def step_title(t: int) -> str:
        note = ""
        if outside[t] > 0.005:
            note = (
                f" (crop clipped at the border: {outside[t]:.0%} of it is outside, read as black)"
            )
        return f"{title}: step {t + 1}{note}"

    frames = [frame(t) for t in range(n_steps)]
    last = n_steps - 1
    bh, bw = background.shape[:2]
    hover = "step %{customdata[0]}: centre (%{x:.0f}, %{y:.0f})"
    if sigma is not None:
        hover += (
            "<br>1σ: x ±%{customdata[2]:.0f} px, y ±%{customdata[3]:.0f} px"
            "<br>σ of the scale: %{customdata[1]:.3f}"
        )
    fig = go.Figure(
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
                **traces_at(last)[0],
                mode="lines+markers",
                line={"color": STEP_COLOUR, "width": 2},
                marker={"size": 6},
                name="path",
                hovertemplate=hover + "<extra></extra>",
            ),
            go.Scatter(
                **traces_at(last)[1],
                mode="markers+text",
                textposition="top center",
                textfont={"color": STEP_COLOUR},
                marker={"size": 11, "color": STEP_COLOUR, "symbol": "x"},
                name="current",
                hoverinfo="skip",
            ),
        ]
    )
    layout_axes = {
        "xaxis": {"range": [0, w], "visible": False, "constrain": "domain"},
        "yaxis": {
            "range": [h, 0],
            "visible": False,
            "scaleanchor": "x",
            "constrain": "domain",
            "constraintoward": "top",  # in a narrow column the image sits under the title
        },
    }
    if heat:
        p = channels_last(np.asarray(proxy, dtype=np.float64))
        ph, pw = p.shape[:2]
        gray = np.clip(np.rint(np.clip(p, 0, 1) * 255), 0, 255).astype(np.uint8)
        fig.add_trace(
            go.Image(
                source=png_data_uri(gray),
                x0=0.5 * w / pw,
                dx=w / pw,
                y0=0.5 * h / ph,
                dy=h / ph,
                hoverinfo="skip",
                name="proxy",
                xaxis="x2",
                yaxis="y2",
            )
        )
        rows, cols = np.mgrid[0:g_rows, 0:g_cols]
        fig.add_trace(
            go.Heatmap(
                z=cell_probs[last].tolist(),
                x0=0.5 * w / g_cols,
                dx=w / g_cols,
                y0=0.5 * h / g_rows,
                dy=h / g_rows,
                zmin=0.0,
                zmax=z_max,
                colorscale=HEAT_COLOURS,
                customdata=np.stack([rows, cols], -1).tolist(),
                hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}: "
                "p = %{z:.3f}<extra></extra>",
                colorbar={
                    "title": {"text": "p(cell)", "side": "right"},
                    "thickness": 10,
                    "len": 0.4,
                    "x": 1.0,
                    "xanchor": "left",
                    "y": 1.0,
                    "yanchor": "top",
                },
                name="posterior",
                xaxis="x2",
                yaxis="y2",
            )
        )
        layout_axes["xaxis"]["domain"] = [0.0, 0.62]
        layout_axes["xaxis2"] = {
            "domain": [0.65, 1.0],
            "range": [0, w],
            "visible": False,
            "constrain": "domain",
            "anchor": "y2",
        }
        layout_axes["yaxis2"] = {
            "range": [h, 0],
            "visible": False,
            "scaleanchor": "x2",
            "constrain": "domain",
            "constraintoward": "top",
            "anchor": "x2",
        }
    animate_opts = {
        "frame": {"duration": frame_ms, "redraw": True},
        "transition": {"duration": 0},
        "mode": "immediate",
        "fromcurrent": False,
    }
    step_opts = {
        "frame": {"duration": 0, "redraw": True},
        "transition": {"duration": 0},
        "mode": "immediate",
    }
    fig.update_layout(
        title={"text": f"{title}: step {n_steps}", "x": 0.02},
        shapes=shapes_at(last),
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 60},
        showlegend=False,
        plot_bgcolor="black",
        meta={"animation": FRAMES_META},
        **layout_axes,
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 8, "r": 8},
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [frames, animate_opts]},
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0}, "mode": "immediate"}],
                    },
                ],
            }
        ],
        sliders=[
            {
                "active": last,
                "x": 0.25,
                "len": 0.75,
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 8},
                "currentvalue": {"prefix": "step "},
                "steps": [
                    {"label": str(t + 1), "method": "animate", "args": [[frames[t]], step_opts]}
                    for t in range(n_steps)
                ],
            }
        ],
    )
    if heat:
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


#: Page-load JavaScript (``launch(js=...)``) that makes the trajectory's slider follow Play.
#:
#: Why: a plotly slider moves with an animation only through its command observer
#: (plotly.js src/plots/command.js, ``computeAnimateBindings``), which binds when every
#: step's ``args[0]`` is a one-element list holding a frame *name*; it then watches
#: ``_fullLayout._currentFrame``, which ``Plotly.animate`` sets only for frames it looked up
#: by name (frames given as objects leave it null). ``gradio.Plot`` calls ``Plotly.react``
#: without ``figure.frames``, so no frame has a name in the browser, and the figure carries
#: its frames as objects in the Play button's and the steps' args (that works, but the
#: slider stays where it was during Play).
#:
#: What: whenever a plot whose ``layout.meta.animation`` is ``FRAMES_META`` still has frame
#: objects in its Play button, register them with ``Plotly.addFrames`` (a frame of the same
#: name is replaced) and ``Plotly.relayout`` the Play button and the slider steps to use the
#: names. The figure works without this script (as before: Play and the slider animate; the
#: slider just does not follow Play). Plotly is ``window.Plotly`` once gradio has loaded it.
PLOTLY_FRAMES_JS = """
() => {
  const META = "__META__";
  const seen = new WeakSet();
  const enhance = (gd) => {
    const P = window.Plotly, lay = gd.layout;
    if (!P || !lay || seen.has(lay) || !lay.meta || lay.meta.animation !== META) return;
    const play = ((lay.updatemenus || [])[0] || {}).buttons;
    const steps = ((lay.sliders || [])[0] || {}).steps;
    if (!play || !steps || !play[0] || !Array.isArray(play[0].args)) return;
    const frames = play[0].args[0];
    if (!Array.isArray(frames) || !frames.length || typeof frames[0] !== "object") return;
    seen.add(lay);
    const names = frames.map((f) => f.name);
    const update = {"updatemenus[0].buttons[0].args": [names, play[0].args[1]]};
    steps.forEach((s, i) => {
      update["sliders[0].steps[" + i + "].args"] = [[names[i]], s.args[1]];
    });
    P.addFrames(gd, frames)
      .then(() => P.relayout(gd, update))
      .catch((e) => console.warn("saccade: named frames failed", e));
  };
  let queued = false;
  const scan = () => {
    queued = false;
    document.querySelectorAll(".js-plotly-plot").forEach(enhance);
  };
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(scan); }
  }).observe(document.body, {childList: true, subtree: true});
  scan();
}
""".replace("__META__", FRAMES_META)


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
):
    """Posterior standard deviation of (scale, x, y) after each saccade.

    Args:
        sigma: (T, 3) posterior std per step and coordinate.
        variance: "learnt" or "fixed" (in fixed mode the scale's σ is flat by construction).
        y_max: the top of the y axis; give two figures the same one to compare them (each
            axis autoscaled on its own made σ 0.001 and σ 0.1 look alike).

    The three lines differ in dash and marker as well as colour, so that equal σ of x and y
    (they often are) stay visible as two lines.
    """
    sigma = np.asarray(sigma, dtype=np.float64).reshape(-1, 3)
    steps = list(range(1, len(sigma) + 1))
    styles = [("solid", "circle"), ("dash", "square-open"), ("dot", "x")]
    fig = go.Figure(
        [
            go.Scatter(
                x=steps,
                y=sigma[:, i].tolist(),
                mode="lines+markers",
                name=f"σ {name}",
                line={"dash": dash},
                marker={"symbol": symbol, "size": 9},
            )
            for i, (name, (dash, symbol)) in enumerate(zip(COORDS, styles, strict=True))
        ]
    )
    if title is None:
        title = f"Posterior σ per step ({variance} variance)"
    yaxis = {"title": "σ", "rangemode": "tozero"}
    if y_max is not None and y_max > 0:
        yaxis["range"] = [0, 1.05 * float(y_max)]
    fig.update_layout(
        title={"text": title, "x": 0.02},
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "saccade", "dtick": 1},
        yaxis=yaxis,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
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
                x=steps, y=probs[:, c].tolist(), mode="lines+markers", name=str(class_names[c])
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

#: the colour of each crop policy (``saccade.policy``; "learnt" is the model's own)
POLICY_COLOURS = {
    "learnt": "#636efa",
    "oracle": "#00cc96",
    "brightness": "#ffa15a",
    "random": "#8c8c8c",
}
VARIANCE_DASH = {"learnt": "solid", "fixed": "dash"}


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
            policy, variance = str(data.get("policy", "learnt")), str(data.get("variance", "?"))
            other = data.get("size") != usual
            panels.setdefault(panel, []).append(
                {
                    "stem": stem.removeprefix("eval-"),
                    "name": f"{variance} σ, {policy} policy"
                    + (f", {data.get('size')}²" if other else ""),
                    "colour": POLICY_COLOURS.get(policy, "#ab63fa"),
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
    ``saccade.glimpse.looked_at``) after each saccade, per dataset and task."""
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
