"""What a model read at a physical scale (``--mpp``) reports, on generated slides at two
magnifications: ``python -m saccade.evaluate``'s crop sides in µm beside the canvas's pixels
(checked against ``saccade.predict``'s boxes), the app's Compare tab (the model's mpp in its
warnings, the slide opened once per request), and an array, which has no physical scale."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import saccade
from saccade import viz
from saccade.data.folder import FolderDataset
from saccade.data.slide import write_slide
from saccade.data.slide_pyramid import SlidePyramid

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


@pytest.fixture(scope="module")
def served_mpp(tmp_path_factory) -> dict:
    """A learnt and a fixed checkpoint read at 0.5 µm per pixel on a 400 µm canvas, and a
    server folder with a slide of 600 µm a side at 0.25 µm per pixel (2400²): larger than
    the canvas, so both tabs warn."""
    root = tmp_path_factory.mktemp("served-mpp")
    os.environ.setdefault("SACCADE_SLIDE_CACHE", str(root / "slide-cache"))
    labels = _cohort(root / "cohort")
    ckpts = root / "checkpoints"
    for variance in ("learnt", "fixed"):
        _mpp_checkpoint(root / "cohort", labels, ckpts / f"mpp-{variance}", variance)
    images = root / "images"
    images.mkdir()
    canvas = saccade.make_dataset("cluttered", task="single", split="test", size=100)[0]
    wide = np.full((2400, 2400), 20, np.uint8)
    wide[400:2000, 400:2000] = cv2.resize(canvas["image"], (1600, 1600))
    write_slide(images / "wide.tif", wide, mpp=0.25)
    return {"ckpts": ckpts, "images": images}


@pytest.fixture
def opens(monkeypatch) -> list:
    """Every ``SlidePyramid`` made from now on (the app's slide cache emptied first)."""
    from saccade.app import state

    made = []
    real = SlidePyramid.__init__

    def counted(self, *args, **kwargs):
        made.append(args[0] if args else kwargs.get("slide"))
        real(self, *args, **kwargs)

    state._open_slide.cache_clear()
    monkeypatch.setattr(SlidePyramid, "__init__", counted)
    return made


@pytest.mark.slow
def test_compare_on_a_server_slide_reads_it_once_at_the_models_scale(served_mpp, opens):
    from saccade import app
    from saccade.app import Look

    the_app = app.App(served_mpp["ckpts"], ROOT / "assets", images=served_mpp["images"])
    path = served_mpp["images"] / "wide.tif"
    look = Look(server="wide.tif")
    out = the_app.compare.run(look, "mpp-learnt", "mpp-fixed")
    assert len(opens) == 1  # both checkpoints read the slide so: one pyramid, one thumbnail
    for name, label, summary in (
        ("mpp-learnt", out.learnt_label, out.learnt_summary),
        ("mpp-fixed", out.fixed_label, out.fixed_summary),
    ):
        ref = saccade.predict(saccade.load(served_mpp["ckpts"] / name), path)
        assert ref.mpp == 0.25 and ref.image_shape == (2400, 2400)
        assert label == viz.label_dict(ref.probs[-1], ref.class_names)
        # Explore's warning: the slide is larger than the model's canvas
        assert "The slide is 600 µm a side" in summary and "400 µm" in summary, summary
        explore = the_app.explore.look(Look(checkpoint=name, server="wide.tif"))
        assert "The slide is 600 µm a side" in explore.status
    # its 16 posterior samples per checkpoint: the same pyramid, the samples predict's
    opens.clear()
    the_app.compare.sample16(look, "mpp-learnt", "mpp-fixed")
    assert opens == []  # kept from the run (the app's cache): not opened per sample
    state_cache = saccade.app.state._open_slide
    state_cache.cache_clear()
    fig = the_app.compare.sample16(look, "mpp-learnt", "mpp-fixed")
    assert len(opens) == 1, opens
    model = saccade.load(served_mpp["ckpts"] / "mpp-learnt")
    refs = [saccade.predict(model, path, sample=True, seed=s) for s in range(16)]
    f = viz.downscale(refs[0].image, 512).shape[0] / refs[0].image.shape[0]
    drawn = [t.x[0] for t in fig.data if t.type == "scatter" and t.xaxis == "x"][: 16 * 3]
    expected = np.concatenate([r.boxes[:, 0] * r.image_scale * f for r in refs])
    np.testing.assert_allclose(drawn, expected, rtol=1e-5)


@pytest.fixture(scope="module")
def single_at_half_um():
    """The shipped single model, its spec read at 0.5 µm per pixel on a 400 µm canvas."""
    model = saccade.load(ROOT / "checkpoints" / "cluttered-single-learnt")
    model.config.dataset = dict(model.config.dataset) | {"mpp": 0.5, "canvas_um": 400.0}
    return model


def _from_centre_um(out) -> np.ndarray:
    """(T, 4) boxes in µm from the centre of what they are pixels of."""
    h, w = out.image_shape
    return (out.boxes - np.array([w, h, w, h]) / 2) * out.mpp


def test_an_array_with_its_mpp_is_read_at_the_checkpoints_scale(tmp_path, single_at_half_um):
    model = single_at_half_um
    data = saccade.make_dataset("cluttered", task="single", split="test", size=100)
    for i in range(3):
        sample = data[i]
        fine = cv2.resize(sample["image"], (1600, 1600), interpolation=cv2.INTER_LINEAR)
        coarse = cv2.resize(sample["image"], (800, 800), interpolation=cv2.INTER_LINEAR)
        # the 40x array with its scale, the 20x one, and the 40x one written as a slide
        slide = write_slide(tmp_path / f"s{i}.tif", fine, mpp=0.25, compression="deflate")
        outs = [
            saccade.predict(model, fine, mpp=0.25),
            saccade.predict(model, coarse, mpp=0.5),
            saccade.predict(model, slide),
        ]
        assert [o.mpp for o in outs] == [0.5, 0.5, 0.25]
        assert outs[0].image.shape == outs[1].image.shape == (800, 800)  # the 400 µm canvas
        for out in outs[1:]:
            gaps = np.abs(_from_centre_um(out)[:, None] - _from_centre_um(outs[0])[None])
            assert gaps.max(-1).min(1).max() < 0.5  # the same places, in µm (0.04 measured)
            assert out.class_name == outs[0].class_name == str(sample["label"])
            np.testing.assert_allclose(out.probs, outs[0].probs, atol=1e-3)
    # a 40x array without its scale is read in its own pixels, and predict says so
    with pytest.warns(UserWarning, match=r"the image has no physical scale .* mpp="):
        plain = saccade.predict(model, fine)
    assert plain.mpp is None and plain.image.shape == (1600, 1600)
    scaled = saccade.predict(model, fine, mpp=0.25)
    spec = model.config.dataset
    try:  # as a folder checkpoint's spec (a generated one's would check the proxy's brightness)
        model.config.dataset = spec | {"name": "folder"}
        said = saccade.infer.input_warnings(model, plain.image, shape=plain.image_shape)
        assert any("records no physical scale" in w and "write_slide" in w for w in said), said
        said = saccade.infer.input_warnings(model, scaled.image, mpp=scaled.mpp)
        assert not any("physical scale" in w for w in said), said
    finally:
        model.config.dataset = spec


@pytest.mark.parametrize("bad", [0, -1, float("nan"), 200, "x", True])
def test_an_absurd_mpp_for_an_array_is_refused_naming_it(single_at_half_um, bad):
    image = np.zeros((100, 100), np.uint8)
    with pytest.raises(ValueError, match=r"^mpp: .* accepted: a finite number of µm per pixel"):
        saccade.predict(single_at_half_um, image, mpp=bad)


def test_mpp_gives_the_scale_of_a_slide_that_records_none(tmp_path, single_at_half_um):
    canvas = saccade.make_dataset("cluttered", task="single", split="test", size=100)[0]
    image = cv2.resize(canvas["image"], (800, 800), interpolation=cv2.INTER_LINEAR)
    path = write_slide(tmp_path / "unscaled.tif", image, compression="deflate")
    with pytest.raises(ValueError, match="records no physical scale"):
        saccade.predict(single_at_half_um, path)
    out = saccade.predict(single_at_half_um, path, mpp=1.0)  # 800 µm: larger than the canvas
    assert out.mpp == 1.0 and out.square == (200.0, 200.0, 600.0, 600.0)
    # a model without a scale reads an array in its pixels; mpp only says their size
    plain = saccade.load(ROOT / "checkpoints" / "cluttered-single-learnt")
    out = saccade.predict(plain, image, mpp=0.5)
    assert out.mpp == 0.5 and out.image.shape == (800, 800)
