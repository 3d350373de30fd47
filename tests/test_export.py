"""Export: the JSON round-trips to predict's numbers (the GIF is ``saccade.viz.gif``'s,
tested with the app)."""

import json

import numpy as np

import saccade
from saccade.export import prediction_json
from tests.helpers import small_model


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
