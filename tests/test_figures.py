"""The paper's comparison figures: the numbers they draw are the numbers they are given."""

import numpy as np
import pytest

from saccade import figures


def test_noise_test_figure_draws_accuracy_at_T_per_level():
    r = {
        "model_saccades": 2,
        "variance": "learnt",
        "noise": {"0.0": [0.5, 0.9], "0.3": [0.4, 0.8], "0.1": [0.45, 0.85]},
    }
    fig = figures.noise_test_figure({"a": r})
    (line,) = fig.data
    assert list(line.x) == [0.0, 0.1, 0.3]
    assert list(line.y) == pytest.approx([90, 85, 80])


def test_noise_train_figure_prefers_accuracy_at_the_training_noise():
    events = [
        {"step": 1, "loss": 1.0},
        {"epoch": 1, "val_acc": 0.5, "val_acc_train_noise": 0.4},
        {"epoch": 2, "val_acc": 0.7},
    ]
    (line,) = figures.noise_train_figure({"noise 0.3": events}).data
    assert list(line.x) == [1, 2] and list(line.y) == pytest.approx([40, 70])


def test_posterior_samples_figure_draws_every_box():
    image = np.zeros((200, 200), np.uint8)
    boxes = np.tile(np.array([10.0, 20.0, 70.0, 80.0]), (16, 3, 1))  # 16 samples, T = 3
    fig = figures.posterior_samples_figure(image, {"learnt": (boxes, 0.9), "fixed": (boxes, None)})
    lines = [tr for tr in fig.data if tr.type == "scatter"]
    assert len(lines) == 2 * 16 * 3
    assert fig.layout.annotations[0].text == "learnt: 90.0% sampling"
    # the box is drawn in the downscaled image's coordinates, y flipped for the heatmap
    assert max(lines[0].x) == pytest.approx(70.0) and min(lines[0].y) == pytest.approx(120.0)


def test_cli_names_bad_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit, match="expected LABEL=METRICS_FILE"):
        figures.main(["--out", str(tmp_path), "--runs", "no-label"])
    with pytest.raises(SystemExit, match="nothere.json"):
        figures.main(["--out", str(tmp_path), "--eval", str(tmp_path / "nothere.json")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="error"):
        figures.main(["--out", str(tmp_path), "--eval", str(bad)])
    assert not list(tmp_path.glob("*.png"))
