"""What a model read at a physical scale (``--mpp``) reports, on generated slides at two
magnifications: ``python -m saccade.evaluate``'s crop sides in µm beside the canvas's pixels
(checked against ``saccade.predict``'s boxes), the app's Compare tab (the model's mpp in its
warnings, the slide opened once per request), and an array, which has no physical scale."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

import saccade
from saccade.data.folder import FolderDataset
from saccade.data.slide import write_slide

ROOT = Path(__file__).resolve().parents[1]


def _cohort(folder: Path, n: int = 3) -> Path:
    """A flat folder of 2n slides of cluttered digits (3 "normal", 8 "tumour"), 400 µm a
    side: alternately at 0.5 µm per pixel (800²) and 0.25 (1600²); and its labels.csv (the
    first two of each class held out: the test split has both magnifications)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = saccade.make_dataset("cluttered", task="single", split="train", size=100)
    rows, kept = [], {3: 0, 8: 0}
    for i in range(len(data)):
        sample = data[i]
        label = {3: "normal", 8: "tumour"}.get(sample["label"])
        if label and kept[sample["label"]] < n:
            k = len(rows)
            side, mpp = (800, 0.5) if k % 2 else (1600, 0.25)
            image = cv2.resize(sample["image"], (side, side), interpolation=cv2.INTER_LINEAR)
            write_slide(folder / f"case-{k}.tif", image, mpp=mpp)
            split = "test" if kept[sample["label"]] < 2 else "train"
            rows.append((f"case-{k}", label, split))
            kept[sample["label"]] += 1
        if min(kept.values()) == n:
            break
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("slide_id", "label", "split"), *rows])
    return folder / "labels.csv"


def _mpp_checkpoint(folder: Path, labels: Path, out: Path, variance: str = "learnt") -> Path:
    """A small random model (crop 8) of the cohort read at 0.5 µm per pixel, saved as
    ``out`` (its spec: the folder's, with mpp 0.5 and a 400 µm canvas)."""
    ds = FolderDataset(folder, "train", channels=1, labels=labels, mpp=0.5, cache=False)
    config = saccade.ModelConfig(
        n_classes=ds.n_classes,
        class_names=list(ds.class_names),
        proxy_size=ds.proxy_size,
        crop_size=8,
        hidden=16,
        features=16,
        n_saccades=3,
        variance=variance,
        dataset=ds.spec.to_dict(),
    )
    torch.manual_seed(0)
    model = saccade.VariationalSaccader(config)
    with torch.no_grad():  # a random, non-zero location head: crops depend on the proxy
        for p in model.posterior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    saccade.save(model, out, {"test_accuracy": 0.5})
    return out


def _box_sides_um(out) -> np.ndarray:
    """(T,) the side of each crop in µm (its level-0 pixels times the slide's µm each)."""
    return (out.boxes[:, 2] - out.boxes[:, 0]) * out.mpp


def test_evaluate_reports_the_crop_sides_in_um_beside_the_canvas_pixels(tmp_path):
    labels = _cohort(tmp_path / "cohort")
    model_path = _mpp_checkpoint(tmp_path / "cohort", labels, tmp_path / "model")
    command = [sys.executable, "-m", "saccade.evaluate", str(model_path), "--noise", "0"]
    command += ["--json", str(tmp_path / "r.json"), "--predictions", str(tmp_path / "p.csv")]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    side = json.loads((tmp_path / "r.json").read_text())["crop_side"]
    # the canvas: 800 px of 0.5 µm, whichever magnification each slide was scanned at
    assert side["mpp"] == 0.5 and side["image_side_min"] == side["image_side_max"] == 800
    assert side["image_side_um_min"] == side["image_side_um_max"] == 400.0
    assert side["median_um"] == side["median_px"] * 0.5
    assert len(side["median_um_per_step"]) == 3
    # the same crops, as predict gives them for each test slide in its own level-0 pixels
    # (0.25 or 0.5 µm each): the same µm
    with open(tmp_path / "p.csv", newline="") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    assert len(paths) == 4
    model = saccade.load(model_path)
    outs = [saccade.predict(model, p) for p in paths]
    assert {o.mpp for o in outs} == {0.25, 0.5}
    sides = np.stack([_box_sides_um(o) for o in outs])  # (images, T)
    np.testing.assert_allclose(side["median_um"], np.median(sides), rtol=1e-3)
    np.testing.assert_allclose(side["min_um"], sides.min(), rtol=1e-3)
    np.testing.assert_allclose(side["max_um"], sides.max(), rtol=1e-3)
    np.testing.assert_allclose(side["median_um_per_step"], np.median(sides, 0), rtol=1e-3)
    # the printed line says both
    printed = f"median {side['median_px']:.0f} px = {side['median_um']:,.0f} µm"
    assert "at 0.5 µm per pixel: " + printed in run.stdout, run.stdout
    assert "the canvas is 800 px = 400 µm a side" in run.stdout
    assert "folder/classify at 800 px (400 µm at 0.5 µm per pixel)" in run.stdout


def test_a_model_without_a_scale_reports_pixels_only(tmp_path):
    from saccade.evaluate.report import crop_side_um, format_report

    side = {"min": 0.1, "p5": 0.1, "median": 0.2, "p95": 0.3, "max": 0.3, "median_px": 20.0}
    side |= {"min_px": 10.0, "max_px": 30.0, "median_px_per_step": [20.0]}
    side |= {"image_side_min": 100, "image_side_max": 100}
    assert crop_side_um(side, None) is side and crop_side_um(None, 0.5) is None
    result = {"sample": False, "variance": "learnt", "dataset": "folder", "task": "classify"}
    result |= {"size": 100, "n_saccades": 1, "n": 1, "model_saccades": 1}
    result |= {"noise": {"0.0": [1.0]}, "crop_side": side}
    assert "µm" not in format_report(result)
    assert "median 20 px = 10 µm" in format_report(result | {"crop_side": crop_side_um(side, 0.5)})
