"""Physical scale (``--mpp``): slides of one tissue at two magnifications read at one µm per
pixel, through ``SlidePyramid``, the folder dataset, the checkpoint and ``saccade.predict``,
on real generated slides (``write_slide`` records the MPP in the resolution tags)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import saccade
from saccade.data.folder import FolderDataset
from saccade.data.slide import Slide, write_slide
from saccade.data.slide_pyramid import SlidePyramid
from saccade.infer import input_warnings

ROOT = Path(__file__).resolve().parents[1]
SINGLE = ROOT / "checkpoints" / "cluttered-single-learnt"


def _upsampled(canvas: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(canvas, (side, side), interpolation=cv2.INTER_LINEAR)


def _twin_slides(folder: Path, canvas: np.ndarray, name: str) -> tuple[Path, Path, Path]:
    """The same tissue (``canvas``, 400 µm a side) at 0.5 µm per pixel (800²), at 0.25
    (1600²), and at 0.5 on a slide with 200 µm of black glass around it (1200², 600 µm)."""
    a = write_slide(folder / f"{name}-20x.tif", _upsampled(canvas, 800), mpp=0.5)
    b = write_slide(folder / f"{name}-40x.tif", _upsampled(canvas, 1600), mpp=0.25)
    wide = np.zeros((1200, 1200), np.uint8)
    wide[200:1000, 200:1000] = _upsampled(canvas, 800)
    c = write_slide(folder / f"{name}-wide.tif", wide, mpp=0.5)
    return a, b, c


def _box_um(out) -> np.ndarray:
    """(T, 2) width and height of each box in µm."""
    return np.stack([out.boxes[:, 2] - out.boxes[:, 0], out.boxes[:, 3] - out.boxes[:, 1]], 1) * (
        out.mpp
    )


def _from_centre_um(out) -> np.ndarray:
    """(T, 4) boxes in µm from the slide's centre."""
    h, w = out.image_shape
    return (out.boxes - np.array([w, h, w, h]) / 2) * out.mpp


@pytest.fixture(scope="module")
def single():
    return saccade.load(SINGLE)


def test_one_tissue_at_two_magnifications_gives_boxes_of_one_physical_size_and_one_class(
    tmp_path, single
):
    data = saccade.make_dataset("cluttered", task="single", split="test", size=100)
    spec = dict(single.config.dataset)
    for i in range(3):
        sample = data[i]
        paths = _twin_slides(tmp_path, sample["image"], f"s{i}")
        with Slide(paths[1]) as slide:
            np.testing.assert_allclose(slide.mpp, (0.25, 0.25), rtol=1e-6)

        # read at the slides' own pixels, a crop is a fraction of each slide's side: the
        # slide with glass around it gets boxes 1.5x as wide in µm
        single.config.dataset = spec
        native = [saccade.predict(single, p) for p in paths]
        assert native[0].mpp == 0.5 and native[1].mpp == 0.25
        np.testing.assert_allclose(_box_um(native[0]), _box_um(native[1]), rtol=1e-3)
        np.testing.assert_allclose(_box_um(native[2]), 1.5 * _box_um(native[0]), rtol=1e-3)

        # a checkpoint trained at 0.5 µm per pixel on a 400 µm canvas reads all three there
        single.config.dataset = spec | {"mpp": 0.5, "canvas_um": 400.0}
        outs = [saccade.predict(single, p) for p in paths]
        for out in outs[1:]:
            np.testing.assert_allclose(_box_um(out), _box_um(outs[0]), rtol=1e-3)
            # the same places of the tissue (the boxes in µm from the slide's centre; two
            # alike places may be visited in either order)
            ours, theirs = _from_centre_um(out), _from_centre_um(outs[0])
            gaps = np.abs(ours[:, None] - theirs[None]).max(-1).min(1)
            assert gaps.max() < 2.0, gaps
        assert {o.class_name for o in outs} == {str(sample["label"])}
        # and at 0.25 µm per pixel (finer than the 20x slide's pixels: interpolated)
        single.config.dataset = spec | {"mpp": 0.25, "canvas_um": 400.0}
        fine = [saccade.predict(single, p) for p in paths[:2]]
        np.testing.assert_allclose(_box_um(fine[0]), _box_um(outs[0]), rtol=1e-3)
        assert {o.class_name for o in fine} == {str(sample["label"])}
    # the glass slide is larger than the canvas: its parts outside it are cut, and said
    assert SlidePyramid(paths[2], mpp=0.5, canvas_um=400.0).cut
    assert not SlidePyramid(paths[0], mpp=0.5, canvas_um=400.0).cut
    # (as a folder checkpoint's spec: a generated one's would check the proxy's brightness)
    single.config.dataset = spec | {"name": "folder", "mpp": 0.5, "canvas_um": 400.0}
    said = input_warnings(single, outs[2].image, shape=outs[2].image_shape, mpp=outs[2].mpp)
    assert any("600 µm" in w and "400 µm" in w for w in said), said
    single.config.dataset = spec


def test_a_window_at_a_physical_scale_is_the_area_average_of_the_finer_slide(tmp_path):
    canvas = saccade.make_dataset("cluttered", task="single", split="test", size=100)[0]["image"]
    a, b, _ = _twin_slides(tmp_path, canvas, "w")
    pa, pb = SlidePyramid(a, mpp=0.5, cache_dir=False), SlidePyramid(b, mpp=0.5, cache_dir=False)
    assert pa.shape == pb.shape == (800, 800) and (pa.scale, pb.scale) == (1.0, 2.0)
    for level in range(3):
        n = 800 >> level  # the whole level, less a margin
        wa = pa.read_window(level, 3, 5, n - 8, n - 10).astype(int)
        wb = pb.read_window(level, 3, 5, n - 8, n - 10).astype(int)
        # the 40x slide's pixels area-averaged against the 20x slide's (both JPEG-coded)
        assert np.abs(wa - wb).mean() < 1.0 and wa.std() > 10, level
    np.testing.assert_allclose(pa.proxy(32), pb.proxy(32), atol=0.02)
    # a canvas larger than the slide: a virtual pad of the slide's background, centred
    wide = SlidePyramid(a, mpp=0.5, canvas_um=800.0, cache_dir=False)
    assert wide.shape == (1600, 1600) and wide.offset == (400.0, 400.0)
    assert wide.square_box == (-400.0, -400.0, 1200.0, 1200.0)
    np.testing.assert_array_equal(
        wide.read_window(0, 400, 400, 800, 800), pa.read_window(0, 0, 0, 800, 800)
    )


def _cohort(folder: Path, n: int = 4) -> Path:
    """A flat folder of 2n slides, n per class (3 "normal", 8 "tumour"), alternately at 0.5
    µm per pixel (800²) and 0.25 (1600²), and its labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    data = saccade.make_dataset("cluttered", task="single", split="train", size=100)
    rows, kept = [], {3: 0, 8: 0}
    for i in range(len(data)):
        sample = data[i]
        label = {3: "normal", 8: "tumour"}.get(sample["label"])
        if label and kept[sample["label"]] < n:
            k = sum(kept.values())
            side, mpp = (800, 0.5) if k % 2 else (1600, 0.25)
            write_slide(folder / f"case-{k}.tif", _upsampled(sample["image"], side), mpp=mpp)
            rows.append((f"case-{k}", label))
            kept[sample["label"]] += 1
        if min(kept.values()) == n:
            break
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("slide_id", "label"), *rows])
    return folder / "labels.csv"


def test_the_folder_reads_every_slide_on_one_canvas_in_um(tmp_path):
    labels = _cohort(tmp_path)
    ds = FolderDataset(tmp_path, "train", channels=1, labels=labels, mpp=0.5, cache=False)
    assert ds.canvas_um == 400.0 and ds.size == 800 and ds.side_range == [800, 800]
    spec = ds.spec.to_dict()
    assert spec["mpp"] == 0.5 and spec["canvas_um"] == 400.0 and spec["invert"] is False
    scales = set()
    for i in range(len(ds)):
        pyramid = ds[i]["pyramid"]
        assert pyramid.shape == (800, 800)
        scales.add(pyramid.scale)
    assert scales == {1.0, 2.0}  # both magnifications, read at one scale
    # at 1 µm per pixel the canvas is 400 px; the test split is rebuilt from the spec
    coarse = FolderDataset(tmp_path, "test", channels=1, labels=labels, mpp=1.0, cache=False)
    assert coarse.size == 400 and coarse[0]["pyramid"].shape == (400, 400)
    # without --mpp, each slide keeps its own pixels
    plain = FolderDataset(tmp_path, "train", channels=1, labels=labels, cache=False)
    assert plain.side_range == [800, 1600] and plain.spec.to_dict()["mpp"] is None


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), 101, "x"])
def test_an_absurd_mpp_is_refused_naming_the_flag(tmp_path, bad):
    labels = _cohort(tmp_path, 1)
    with pytest.raises(ValueError, match=r"mpp \(--mpp\).*\(0, 100\] \(about"):
        FolderDataset(tmp_path, channels=1, labels=labels, mpp=bad)
    with pytest.raises(ValueError, match=r"default_mpp \(--default-mpp\).*\(0, 100\]"):
        FolderDataset(tmp_path, channels=1, labels=labels, mpp=0.5, default_mpp=bad)
    with pytest.raises(ValueError, match=r"mpp: .* accepted: a finite number of µm"):
        SlidePyramid(tmp_path / "case-0.tif", mpp=bad)


def test_the_cli_refuses_an_absurd_mpp(capsys):
    from saccade.train.cli import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--dataset", "folder", "--root", ".", "--mpp", "0"])
    assert "--mpp: 0.0 is not a scale; accepted: a finite number of µm per pixel in (0, 100]" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "cluttered", "--mpp", "0.5"])
    assert "settings of --dataset folder" in capsys.readouterr().err


def test_a_slide_without_an_mpp_is_refused_unless_a_default_is_given(tmp_path, single):
    labels = _cohort(tmp_path, 1)
    canvas = np.zeros((600, 900), np.uint8)
    canvas[200:400, 300:600] = 200
    write_slide(tmp_path / "unscaled.tif", canvas)  # no resolution tags
    with open(labels, "a", newline="") as f:
        csv.writer(f).writerow(("unscaled", "normal"))
    with pytest.raises(ValueError, match=r"1 slide\(s\) .* no physical scale .*unscaled\.tif.*"):
        FolderDataset(tmp_path, channels=1, labels=labels, mpp=0.5)
    ds = FolderDataset(tmp_path, channels=1, labels=labels, mpp=0.5, default_mpp=1.0, cache=False)
    assert ds.canvas_um == 900.0 and ds.size == 1800  # the unscaled slide, 900 px of 1 µm
    # predict at a checkpoint's mpp: the same refusal, or the checkpoint's default
    spec = dict(single.config.dataset)
    try:
        single.config.dataset = spec | {"mpp": 0.5, "canvas_um": 900.0}
        with pytest.raises(ValueError, match=r"'unscaled.tif' records no physical scale"):
            saccade.predict(single, tmp_path / "unscaled.tif")
        single.config.dataset |= {"default_mpp": 1.0}
        out = saccade.predict(single, tmp_path / "unscaled.tif")
        assert out.mpp == 1.0 and out.square == (0.0, -150.0, 900.0, 750.0)
    finally:
        single.config.dataset = spec
    # a slide that records an absurd scale (200 µm per pixel) is named
    tifffile_slide = tmp_path / "absurd" / "a.tif"
    tifffile_slide.parent.mkdir()
    write_slide(tifffile_slide, canvas, mpp=200.0)
    with pytest.raises(ValueError, match=r"the MPP recorded by slide 'a.tif': 200"):
        SlidePyramid(tifffile_slide, mpp=0.5)


@pytest.mark.slow
def test_a_checkpoint_trained_with_mpp_predicts_other_magnifications_at_its_scale(tmp_path):
    labels = _cohort(tmp_path / "cohort")
    out = tmp_path / "model"
    command = [sys.executable, "-m", "saccade.train", "--dataset", "folder", "--channels", "1"]
    command += ["--root", str(tmp_path / "cohort"), "--labels", str(labels), "--mpp", "0.5"]
    command += ["--epochs", "1", "--batch-size", "4", "--workers", "0", "--val-n", "2"]
    command += ["--test-n", "2", "--out", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    saved = json.loads(out.with_suffix(".json").read_text())["config"]["dataset"]
    assert saved["mpp"] == 0.5 and saved["canvas_um"] == 400.0 and saved["size"] == 800
    model = saccade.load(out)
    canvas = saccade.make_dataset("cluttered", task="single", split="test", size=100)[1]["image"]
    a, b, _ = _twin_slides(tmp_path, canvas, "new")
    pa, pb = saccade.predict(model, a), saccade.predict(model, b)
    np.testing.assert_allclose(_box_um(pa), _box_um(pb), rtol=1e-3)
    assert math.isclose(pa.square[2] * 0.5, 400.0) and math.isclose(pb.square[2] * 0.25, 400.0)
    assert pa.label == pb.label
    np.testing.assert_allclose(pa.probs, pb.probs, atol=0.05)
