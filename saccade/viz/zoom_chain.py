"""The crop chain of one prediction drawn nested: one panel per step, each showing the region
around that step's crop (the earlier crop it lies in, else the canvas or a context square
around it) with the crop's box drawn inside, so that a crop far too small for the whole
image (a 48 px crop of a 32,768² canvas is 0.75 px of a 512 px thumbnail) is seen where it
is, zoom after zoom.

Conventions: boxes are (T, 4) x0, y0, x1, y1 in level-0 pixels (``Prediction.boxes``);
every panel's axes are level-0 pixels too, so a box drawn in any panel has the prediction's
own coordinates. The region images come from whatever reads the image by box: a
``ZoomCanvas``, a slide's ``SlidePyramid`` (``read_box(box, max_side)``), or an array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .images import channels_last, png_data_uri
from .trajectory import STEP_COLOUR, TRUTH_COLOURS, rect_shape

#: a region's image is read at most this many pixels a side
CHAIN_MAX_SIDE = 512
#: with no earlier crop around it, a step's region is this many times its crop's side
CONTEXT = 4.0
#: an earlier crop is a step's region when it holds the step's box and is at least this many
#: times larger (a crop of about the same side is a neighbour, not a zoom out)
MIN_ZOOM = 1.5
#: panels per row
COLUMNS = 4


class RegionReader(Protocol):
    """What the chain reads regions through: ``ZoomCanvas`` and ``SlidePyramid`` have it."""

    def read_box(self, box, max_side: int = 512) -> np.ndarray: ...


@dataclass(frozen=True)
class ChainStep:
    """One panel of the chain.

    Attributes:
        step: the step, from 1.
        box: (x0, y0, x1, y1) of the step's crop, level-0 pixels.
        side: the crop's side in level-0 pixels (the box's longer side).
        level: the pyramid level the glimpse read it from, floor(log2(side / crop_size))
            (clamped to ``max_level`` where known); the glimpse blends it with the next one.
        region: (x0, y0, x1, y1) the panel shows, level-0 pixels.
        parent: the step (from 1) whose crop is the region; 0: the whole image; None: a
            context square of ``CONTEXT`` times the crop's side around it.
    """

    step: int
    box: tuple[float, float, float, float]
    side: float
    level: int
    region: tuple[float, float, float, float]
    parent: int | None

    @property
    def where(self) -> str:
        """The region in words: "the whole image", "inside step 2's crop", "around it"."""
        if self.parent == 0:
            return "the whole image"
        if self.parent is not None:
            return f"inside step {self.parent}'s crop"
        return f"{CONTEXT:g}× around it"


def read_level(side: float, crop_size: int, max_level: int | None = None) -> int:
    """The pyramid level a crop of ``side`` level-0 pixels sampled by ``crop_size`` samples
    reads, as ``saccade.glimpse.glimpse`` picks it: floor(log2(side / crop_size)), at least 0
    and at most ``max_level``."""
    level = int(math.floor(math.log2(max(float(side) / int(crop_size), 1.0))))
    return level if max_level is None else min(level, int(max_level))


def _inside(inner, outer, slack: float = 0.5) -> bool:
    return (
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def _clip(region, bounds) -> tuple[float, float, float, float]:
    """``region`` shifted (not cut) to lie inside ``bounds`` where it fits, then cut to it."""
    x0, y0, x1, y1 = region
    bx0, by0, bx1, by1 = bounds
    w, h = min(x1 - x0, bx1 - bx0), min(y1 - y0, by1 - by0)
    x0 = min(max(x0, bx0), bx1 - w)
    y0 = min(max(y0, by0), by1 - h)
    return (float(x0), float(y0), float(x0 + w), float(y0 + h))


def chain_steps(
    boxes: np.ndarray,
    shape: tuple[int, int],
    crop_size: int,
    max_level: int | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> list[ChainStep]:
    """The panels of the chain of ``boxes`` (T, 4) on an image of ``shape`` (H, W) level-0
    pixels. Step 1's region is the whole image (``bounds``, default (0, 0, W, H)); step t's
    is the most recent earlier crop that holds its box and is at least ``MIN_ZOOM`` times its
    side (a zoom in), else a square ``CONTEXT`` times its side centred on it, kept inside
    ``bounds``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = (int(v) for v in shape)
    bounds = (0.0, 0.0, float(w), float(h)) if bounds is None else tuple(map(float, bounds))
    out = []
    for t, b in enumerate(boxes):
        box = tuple(float(v) for v in b)
        side = max(box[2] - box[0], box[3] - box[1])
        parent, region = None, None
        if t == 0:
            parent, region = 0, bounds
        else:
            for j in range(t - 1, -1, -1):
                earlier = tuple(boxes[j])
                if max(
                    earlier[2] - earlier[0], earlier[3] - earlier[1]
                ) >= MIN_ZOOM * side and _inside(box, earlier):
                    parent, region = j + 1, tuple(float(v) for v in earlier)
                    break
        if region is None:
            cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, CONTEXT * side / 2
            region = _clip((cx - half, cy - half, cx + half, cy + half), bounds)
        level = read_level(side, crop_size, max_level)
        out.append(ChainStep(t + 1, box, side, level, region, parent))
    return out


def _read(reader, region, max_side: int) -> np.ndarray:
    """The image under ``region`` (level-0 pixels) from ``reader``: its ``read_box``, or an
    (H, W[, C]) array cropped and downscaled."""
    if hasattr(reader, "read_box"):
        return np.asarray(reader.read_box(region, max_side))
    from ..infer import zoom  # an array: the image itself

    return zoom(np.asarray(reader), np.asarray(region, dtype=np.float64), max_side)


def zoom_chain_figure(
    prediction,
    reader: RegionReader | np.ndarray,
    crop_size: int | None = None,
    truth: np.ndarray | None = None,
    max_side: int = CHAIN_MAX_SIDE,
    columns: int = COLUMNS,
    title: str = "The crop chain, zoom by zoom",
    panel_height: int = 300,
) -> go.Figure:
    """The crop chain of ``prediction`` drawn nested, one panel per step.

    Args:
        prediction: a ``saccade.Prediction`` (``boxes`` (T, 4) in level-0 pixels,
            ``image_shape``, ``crops`` (T, k, k) whose k is the crop size, ``square``).
        reader: what reads a region: the ``ZoomCanvas`` or the slide's ``SlidePyramid`` the
            prediction ran on (``read_box(box, max_side)``), or the full-resolution array.
        crop_size: k, the crops' side in samples (default: ``prediction.crops``').
        truth: optional (n, 4) ground-truth boxes, drawn dashed in each panel they meet
            (shapes named ``"truth"``, green in the panels of the steps whose crop holds one).
        max_side: each region is read at most this many pixels a side.
        columns: panels per row.

    Returns:
        A figure with one subplot per step (axes ``x``/``y`` for step 1, ``x2``/``y2`` for
        step 2, ...), each in level-0 pixels (y down) over the step's region
        (``chain_steps``), its image the region read through ``reader`` (a trace named
        ``"region t"``); the step's crop is the layout shape named ``"step t"`` on that
        subplot's axes, at the prediction's own box; the subplot's title gives the step, the
        crop's side in pixels, the pyramid level it read and where the region is.
        ``layout.meta["chain"]`` lists each panel's step, box, side, level, region and parent.
    """
    if prediction.boxes is None:
        raise ValueError("prediction has no boxes: the chain needs a model that crops")
    if crop_size is None:
        crop_size = int(np.asarray(prediction.crops).shape[-1])
    shape = prediction.image_shape or np.asarray(prediction.image).shape[:2]
    steps = chain_steps(
        prediction.boxes,
        shape,
        crop_size,
        getattr(reader, "max_level", None),
        _image_bounds(getattr(prediction, "square", None), shape),
    )
    columns = max(1, min(int(columns), len(steps)))
    rows = math.ceil(len(steps) / columns)
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[
            f"step {s.step}: {s.side:,.0f} px crop, level {s.level}<br>"
            f"<sup>{s.where} ({s.region[2] - s.region[0]:,.0f} px)</sup>"
            for s in steps
        ],
        horizontal_spacing=0.02,
        vertical_spacing=0.12 / rows,
    )
    truth = None if truth is None else np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    shapes = []
    for i, s in enumerate(steps):
        shapes += _panel(fig, s, i // columns + 1, i % columns + 1, reader, max_side, truth)
    fig.update_layout(
        title={"text": title, "x": 0.02},
        shapes=shapes,
        height=rows * panel_height + 70,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        showlegend=False,
        plot_bgcolor="black",
        meta={"chain": [_step_record(s) for s in steps]},
    )
    fig.update_xaxes(visible=False)  # the empty cells of the last row too
    fig.update_yaxes(visible=False)
    for annotation in fig.layout.annotations:  # the subplot titles, smaller
        annotation.font = {"size": 12}
    return fig


def _image_bounds(square, shape) -> tuple[float, float, float, float] | None:
    """The part of the square the model saw (``Prediction.square``) that is the image
    itself: a slide's padding outside it reads black, so no region reaches into it."""
    if square is None:
        return None
    return (
        max(square[0], 0.0),
        max(square[1], 0.0),
        min(square[2], shape[1]),
        min(square[3], shape[0]),
    )


def _panel(fig: go.Figure, s: ChainStep, row: int, col: int, reader, max_side, truth) -> list:
    """Draw step ``s``'s region in the subplot (row, col), its axes in level-0 pixels over
    the region; returns its shapes: the truth boxes it meets, then the step's box."""
    suffix = "" if s.step == 1 else str(s.step)
    xref, yref = f"x{suffix}", f"y{suffix}"
    image = channels_last(_read(reader, s.region, max_side))
    x0, y0, x1, y1 = s.region
    ih, iw = image.shape[:2]
    dx, dy = (x1 - x0) / iw, (y1 - y0) / ih
    fig.add_trace(
        go.Image(
            source=png_data_uri(image),
            x0=x0 + dx / 2,
            dx=dx,
            y0=y0 + dy / 2,
            dy=dy,
            hoverinfo="skip",
            name=f"region {s.step}",
        ),
        row=row,
        col=col,
    )
    fig.update_xaxes(range=[x0, x1], constrain="domain", row=row, col=col)
    fig.update_yaxes(range=[y1, y0], scaleanchor=xref, constrain="domain", row=row, col=col)
    shapes = []
    for tb in () if truth is None else truth:
        if tb[2] >= x0 and tb[0] <= x1 and tb[3] >= y0 and tb[1] <= y1:
            colour = TRUTH_COLOURS[_inside(tb, s.box)]
            shapes.append(rect_shape(tb, colour, "truth", 1.5, "dot", xref=xref, yref=yref))
    return shapes + [rect_shape(s.box, STEP_COLOUR, f"step {s.step}", 2.5, xref=xref, yref=yref)]


def _step_record(s: ChainStep) -> dict:
    """One panel in ``layout.meta["chain"]``."""
    return {
        "step": s.step,
        "box": list(s.box),
        "side": s.side,
        "level": s.level,
        "region": list(s.region),
        "parent": s.parent,
    }
