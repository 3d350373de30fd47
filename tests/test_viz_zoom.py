"""The zoom chain figure (``saccade.viz.zoom_chain``), as the user sees it: one panel per step,
each over the region around that step's crop, the crop's box drawn inside it at the
prediction's own level-0 coordinates, titled with the step, the crop's side and the pyramid
level the glimpse read; a region's picture is the canvas (or the slide written from it) read
there."""

from __future__ import annotations

import base64
import dataclasses
import math

import cv2
import numpy as np
import pytest

import saccade
from saccade import viz
from saccade.data.zoom import write_zoom_tiff
from tests.helpers import zoom_model

SIDE = 32768


@pytest.fixture(scope="module")
def canvas_and_truth():
    ds = saccade.make_dataset("zoom", split="test", size=SIDE)
    canvas, ann = ds.canvas(0)
    return canvas, ann


@pytest.fixture(scope="module")
def prediction(canvas_and_truth):
    canvas, _ = canvas_and_truth
    return saccade.predict(zoom_model(), canvas, n_saccades=3)


def nested(prediction, ann):
    """The same prediction with the chain a trained model takes: a cue (1,250 px) on the
    ring, then its centre (160 px), then the digit (48 px)."""
    digit = ann["boxes"][0]
    cx, cy = (digit[0] + digit[2]) / 2, (digit[1] + digit[3]) / 2
    boxes = np.array([[cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2] for s in (1250, 160, 48)])
    boxes[0] += [100, -80, 100, -80]  # the cue's crop is not centred on the digit
    return dataclasses.replace(prediction, boxes=boxes.astype(np.float32))


def decode(uri: str) -> np.ndarray:
    data = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def panel_shapes(fig, step: int) -> list:
    suffix = "" if step == 1 else str(step)
    return [s for s in fig.layout.shapes if s.xref == f"x{suffix}" and s.yref == f"y{suffix}"]


def test_one_panel_per_step_with_its_box_at_the_predictions_coordinates(
    prediction, canvas_and_truth
):
    k = prediction.crops.shape[-1]
    fig = viz.zoom_chain_figure(prediction, canvas_and_truth[0])
    images = [t for t in fig.data if t.type == "image"]
    assert [t.name for t in images] == [f"region {t + 1}" for t in range(len(prediction.boxes))]
    for t, box in enumerate(prediction.boxes):
        step = t + 1
        (shape,) = [s for s in panel_shapes(fig, step) if s.name == f"step {step}"]
        np.testing.assert_allclose([shape.x0, shape.y0, shape.x1, shape.y1], box, atol=1e-3)
        side = float(box[2] - box[0])
        level = int(math.floor(math.log2(max(side / k, 1.0))))
        title = fig.layout.annotations[t].text
        assert title.startswith(f"step {step}: {side:,.0f} px crop, level {level}<br>")
        # the panel's axes span its region, and the crop's centre lies inside it
        suffix = "" if t == 0 else str(step)
        x0, x1 = fig.layout[f"xaxis{suffix}"].range
        y1, y0 = fig.layout[f"yaxis{suffix}"].range
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert x0 <= cx <= x1 and y0 <= cy <= y1
        assert fig.layout.meta["chain"][t]["level"] == level
    # step 1's panel is the whole canvas
    assert list(fig.layout.xaxis.range) == [0, SIDE]
    assert "the whole image" in fig.layout.annotations[0].text


def test_nested_chain_zooms_into_the_earlier_crop_and_shows_the_digit(prediction, canvas_and_truth):
    canvas, ann = canvas_and_truth
    pred = nested(prediction, ann)
    fig = viz.zoom_chain_figure(pred, canvas, truth=ann["boxes"])
    chain = fig.layout.meta["chain"]
    assert [c["parent"] for c in chain] == [0, 1, 2]  # canvas, then inside each earlier crop
    assert "inside step 1's crop" in fig.layout.annotations[1].text
    assert "inside step 2's crop" in fig.layout.annotations[2].text
    # step 3's panel (the 160 px crop as its region) shows its box and the digit it holds
    (box,) = [s for s in panel_shapes(fig, 3) if s.name == "step 3"]
    np.testing.assert_allclose([box.x0, box.y0, box.x1, box.y1], pred.boxes[2], atol=1e-3)
    (digit,) = [s for s in panel_shapes(fig, 3) if s.name == "truth"]
    assert digit.line.color == viz.TRUTH_COLOURS[True]
    np.testing.assert_allclose([digit.x0, digit.y0, digit.x1, digit.y1], ann["boxes"][0])
    assert list(fig.layout.xaxis3.range) == pytest.approx([pred.boxes[1][0], pred.boxes[1][2]])
    # its picture is the canvas read under the 160 px region, at full resolution
    picture = decode(fig.data[2].source)
    np.testing.assert_array_equal(picture, canvas.read_box(pred.boxes[1], 512))
    assert picture.shape == (160, 160) and picture.max() == 255  # the digit's ink
    # levels: 1250 / k, 160 / k, 48 / k
    k = pred.crops.shape[-1]
    assert [c["level"] for c in chain] == [
        int(math.floor(math.log2(s / k))) for s in (1250, 160, 48)
    ]


def test_a_crop_outside_the_earlier_ones_gets_a_context_square(prediction, canvas_and_truth):
    canvas, ann = canvas_and_truth
    pred = nested(prediction, ann)
    boxes = pred.boxes.copy()
    boxes[1] += 5000  # the 160 px crop moved out of the cue's crop
    steps = viz.chain_steps(boxes, (SIDE, SIDE), pred.crops.shape[-1], canvas.max_level)
    assert steps[1].parent is None
    x0, y0, x1, y1 = steps[1].region
    assert x1 - x0 == pytest.approx(4 * 160) and y1 - y0 == pytest.approx(4 * 160)
    assert (x0 + x1) / 2 == pytest.approx((boxes[1][0] + boxes[1][2]) / 2)
    # step 3 (inside neither the moved crop nor far enough inside the cue's): the cue's crop
    assert steps[2].parent == 1
    # a crop by the canvas's edge: its context square is shifted inside the canvas
    edge = viz.chain_steps(np.array([[0, 0, SIDE, SIDE], [-10, -10, 150, 150]]), (SIDE, SIDE), 16)
    assert edge[1].region == (0.0, 0.0, 640.0, 640.0)


def test_slide_reads_the_same_regions_as_the_canvas(tmp_path, prediction, canvas_and_truth):
    canvas, ann = canvas_and_truth
    path = write_zoom_tiff(canvas, tmp_path / "zoom.tif", compression="zstd")
    model = zoom_model()
    on_slide = saccade.predict(model, str(path), n_saccades=3)
    np.testing.assert_allclose(on_slide.boxes, prediction.boxes, atol=1e-3)
    from saccade.data.slide import Slide
    from saccade.data.slide_pyramid import SlidePyramid

    slide = SlidePyramid(Slide(path), 1)
    pred = nested(on_slide, ann)
    a = viz.zoom_chain_figure(pred, slide)
    b = viz.zoom_chain_figure(nested(prediction, ann), canvas)
    for t in range(3):
        assert a.layout.annotations[t].text == b.layout.annotations[t].text
        # the slide reads a coarser source and downscales: the same picture, another size
        on_disk, rendered = decode(a.data[t].source), decode(b.data[t].source)
        small = cv2.resize(on_disk, rendered.shape[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - rendered).mean() < 3
    # the digit's panel (160 px, read at level 0 by both) is the same, pixel for pixel
    np.testing.assert_array_equal(decode(a.data[2].source), decode(b.data[2].source))


def test_refuses_a_prediction_without_boxes(prediction):
    with pytest.raises(ValueError, match="no boxes"):
        viz.zoom_chain_figure(dataclasses.replace(prediction, boxes=None), np.zeros((8, 8)))
