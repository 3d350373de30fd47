"""Export: the GIF has one frame per saccade showing that step's box, and the JSON
round-trips to predict's numbers."""

import io
import json

import numpy as np
from PIL import Image

import saccade
from saccade.export import CURRENT, IMAGE_SIDE, TEXT_HEIGHT, prediction_json, trajectory_gif
from tests.helpers import small_model


def test_gif_has_a_frame_per_step_with_that_steps_box():
    model = small_model().eval()
    sample = saccade.make_dataset("cluttered", task="sum", split="test", full_size=400)[0]
    out = saccade.predict(model, sample["image"], n_saccades=5)
    gif = Image.open(io.BytesIO(trajectory_gif(out)))
    assert gif.n_frames == 5 and gif.info.get("loop") == 0
    scale = IMAGE_SIDE / 400
    for t in range(5):
        gif.seek(t)
        frame = np.asarray(gif.convert("RGB"))
        x0, y0, x1, y1 = (out.boxes[t] * scale).round().astype(int)
        # the current box's left edge is drawn in the step colour (where it is on the image)
        col = int(np.clip(x0, 1, IMAGE_SIDE - 2))
        rows = np.arange(max(y0, 0), min(y1, IMAGE_SIDE)) + TEXT_HEIGHT
        edge = frame[rows, col]
        assert (np.abs(edge.astype(int) - CURRENT).sum(1) < 60).mean() > 0.8, t


def test_json_round_trips_to_the_prediction():
    model = small_model().eval()
    sample = saccade.make_dataset("cluttered", task="sum", split="test")[0]
    out = saccade.predict(model, sample["image"], n_saccades=3, proxy_noise=0.1, seed=2)
    settings = {"proxy_noise": 0.1, "n_saccades": 3, "seed": 2, "posterior": "mean"}
    record = json.loads(prediction_json(out, "tiny", settings))
    assert record["checkpoint"] == "tiny" and record["settings"] == settings
    assert [s["step"] for s in record["steps"]] == [1, 2, 3]
    np.testing.assert_allclose([s["probs"] for s in record["steps"]], out.probs, rtol=1e-6)
    np.testing.assert_allclose([s["sigma"] for s in record["steps"]], out.sigma, rtol=1e-6)
    np.testing.assert_allclose([s["box"] for s in record["steps"]], out.boxes)
    assert record["label"] == out.label and record["class_name"] == out.class_name
