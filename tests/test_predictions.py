"""Per-image results of ``python -m saccade.evaluate``: ``--predictions`` rows checked against
``saccade.predict`` on the same images (generated digits, and a folder of slides of two sizes),
the AUROC against hand-computed cases, and the crop sides in each image's own pixels."""

import csv
import json

import numpy as np
import pytest
import torch

import saccade
from saccade.data.slide import write_slide
from saccade.evaluate.cli import main
from saccade.evaluate.loop import evaluation_dataset
from saccade.evaluate.predictions import class_aurocs
from tests.helpers import write_tiny_checkpoint


def test_binary_auroc_by_hand():
    # positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 (pos, neg) pairs, 3 are
    # ordered right (0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4), one wrong: 3/4
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - p1, p1], 1)
    found = class_aurocs(probs, np.array([0, 0, 1, 1]), ["benign", "tumour"])
    assert found["auroc"] == pytest.approx(0.75)
    # one-vs-rest of class 0 scores 1 - p1 for label 0: the same pairs, the same 3/4
    assert found["per_class"] == {"benign": pytest.approx(0.75), "tumour": pytest.approx(0.75)}
    # a tie between a positive and a negative counts a half: (1 + 0.5) / 2
    tied = class_aurocs(np.array([[0.5, 0.5], [0.8, 0.2], [0.5, 0.5]]), np.array([1, 0, 0]), "ab")
    assert tied["auroc"] == pytest.approx(0.75)


def test_one_vs_rest_auroc_with_three_classes():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.6, 0.1, 0.3]])
    labels = np.array([0, 1, 2, 2])
    found = class_aurocs(probs, labels, ["a", "b", "c"])
    assert found["auroc"] is None  # not a binary task
    # class a: positive 0.7 against 0.2, 0.3, 0.6 -> 3/3; class b: 0.5 against 0.2, 0.3, 0.1
    # -> 1; class c: positives 0.4, 0.3 against 0.1, 0.3 -> (2 + 1.5) / 4
    assert found["per_class"] == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.875})
    missing = class_aurocs(probs[:2], labels[:2], ["a", "b", "c"])
    assert missing["per_class"]["c"] is None  # no image of class c
    with pytest.raises(ValueError, match="must be"):
        class_aurocs(probs, labels, ["a", "b"])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predictions_of_generated_digits_agree_with_predict(tmp_path):
    ckpt = write_tiny_checkpoint(tmp_path, "tiny", task="single", n_saccades=3)
    out, preds = tmp_path / "preds.csv", tmp_path / "r.json"
    main([str(ckpt), "--n", "6", "--noise", "0", "--saccades", "2", "--predictions", str(out)]
         + ["--json", str(preds)])  # fmt: skip
    rows = _rows(out)
    model = saccade.load(ckpt)
    names = model.config.class_names
    assert list(rows[0]) == ["index", "path", "label", "prediction"] + [f"prob_{c}" for c in names]
    test_set = evaluation_dataset(model)
    assert [int(r["index"]) for r in rows] == list(range(6))
    for i, row in enumerate(rows):
        sample = test_set[i]
        pred = saccade.predict(model, sample["image"], n_saccades=2)
        probs = np.array([float(row[f"prob_{c}"]) for c in names])
        assert probs == pytest.approx(pred.probs[-1], abs=2e-6)
        assert row["prediction"] == pred.class_name and row["path"] == ""
        assert row["label"] == names[sample["label"]]
    data = json.loads(preds.read_text())
    assert data["auroc"] is None and data["auroc_saccades"] == 2  # ten classes
    assert set(data["auroc_per_class"]) == set(names)


def _folder_checkpoint(tmp_path, root):
    """A random colour model whose spec is the folder ``root`` (ImageFolder of slides), as
    trained with ``--size 4096`` (which slides ignore, with a warning)."""
    with pytest.warns(RuntimeWarning, match="size=4096 is ignored for the 6 slide"):
        ds = saccade.make_dataset("folder", root=root, split="train", size=4096, cache=False)
    config = saccade.ModelConfig(
        n_classes=2,
        class_names=ds.class_names,
        proxy_size=ds.proxy_size,
        channels=3,
        crop_size=8,
        hidden=16,
        features=16,
        n_saccades=2,
        dataset=ds.spec.to_dict(),
    )
    torch.manual_seed(0)
    model = saccade.VariationalSaccader(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    saccade.save(model, tmp_path / "slides")
    return tmp_path / "slides"


def test_predictions_of_slides_and_their_crop_sides(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "slides"
    for c, name in enumerate(("benign", "tumour")):
        (root / "train" / name).mkdir(parents=True)
        (root / "test" / name).mkdir(parents=True)
        write_slide(root / "train" / name / "a.tif", rng.integers(0, 255, (512, 512, 3), np.uint8))
        for i, side in enumerate((512, 1024)):  # two sizes in the test split
            image = rng.integers(0, 255, (side, side, 3), np.uint8) // (c + 1)
            write_slide(root / "test" / name / f"s{i}.tif", image, compression="deflate")
    ckpt = _folder_checkpoint(tmp_path, root)
    out = tmp_path / "p" / "preds.csv"
    with pytest.warns(RuntimeWarning, match="size=4096 is ignored"):  # the spec's, rebuilt
        main([str(ckpt), "--noise", "0", "--predictions", str(out)]
             + ["--json", str(tmp_path / "r.json")])  # fmt: skip
    report = capsys.readouterr().out
    rows = _rows(out)
    model = saccade.load(ckpt)
    assert len(rows) == 4
    for row in rows:
        pred = saccade.predict(model, row["path"], slide_cache_dir=False)
        probs = [float(row["prob_benign"]), float(row["prob_tumour"])]
        assert probs == pytest.approx(pred.probs[-1], abs=2e-6)
        assert row["prediction"] == pred.class_name
        assert row["label"] in row["path"]  # .../test/LABEL/sI.tif
    data = json.loads((tmp_path / "r.json").read_text())
    labels = np.array([row["label"] == "tumour" for row in rows])
    p_tumour = np.array([float(row["prob_tumour"]) for row in rows])
    pairs = [(p > q) + 0.5 * (p == q) for p in p_tumour[labels] for q in p_tumour[~labels]]
    assert data["auroc"] == pytest.approx(np.mean(pairs), abs=1e-5)
    assert f"AUROC after 2 saccades ('tumour' positive): {data['auroc']:.3f}" in report
    # the crop sides in each slide's own pixels: half the slides are twice the side
    side = data["crop_side"]
    assert (side["image_side_min"], side["image_side_max"]) == (512, 1024)
    assert side["min_px"] >= side["min"] * 512 - 1e-6
    assert side["max_px"] <= side["max"] * 1024 + 1e-6
    assert side["max_px"] > side["max"] * 512  # a 1024 slide's crop is larger than any of 512
    assert "the images are 512 to 1024 px a side" in report
    # the spec says 4096 (the --size given), but crops are fractions of each slide's own side
    assert data["size"] == 4096 and "folder/classify (512 to 1024 px a side)" in report
    assert "4096 px" not in report
