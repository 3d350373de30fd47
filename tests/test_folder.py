"""The folder dataset: ImageFolder layout, splits, formats and modes, bad input, and training
and evaluation through it."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import saccade
from saccade import image_io
from saccade.data import dataset_from_spec
from saccade.data.folder import MIN_SIDE


def _img(rng, h, w, mode="RGB"):
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    return im.convert(mode) if mode != "RGB" else im


def make_tree(root, n=5, seed=0):
    """root/{cat,dog}/...: n images per class, each another format, size and mode."""
    rng = np.random.default_rng(seed)
    kinds = [
        ("png", "RGB", {}),
        ("jpg", "RGB", {"quality": 95}),
        ("tif", "RGB", {"tile": True}),
        ("webp", "RGBA", {"lossless": True}),
        ("bmp", "L", {}),
        ("png", "P", {}),
    ]
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            ext, mode, opts = kinds[i % len(kinds)]
            h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
            im = _img(rng, h, w, mode)
            if opts.pop("tile", False):
                im.save(root / c / f"{i}.{ext}", compression="tiff_lzw", tile=(32, 32))
            else:
                im.save(root / c / f"{i}.{ext}", **opts)
    (root / "cat" / "notes.txt").write_text("not an image, ignored")
    return root


def test_holdout_split_classes_formats_and_shapes(tmp_path):
    root = make_tree(tmp_path / "data", n=6)
    train = saccade.make_dataset("folder", root=root, split="train", size=64, cache=False)
    test = saccade.make_dataset("folder", root=root, split="test", size=64, cache=False)
    assert train.class_names == ["cat", "dog"] and train.n_classes == 2
    # 20% of each class of 6, rounded up: 2 test images a class, disjoint from train
    assert len(test) == 4 and len(train) == 8
    assert not {p for p, _ in train.items} & {p for p, _ in test.items}
    again = saccade.make_dataset("folder", root=root, split="test", size=64, cache=False)
    assert again.items == test.items  # seeded: the same files every time
    other = saccade.make_dataset(
        "folder", root=root, split="test", size=64, cache=False, holdout_seed=1
    )
    assert other.items != test.items
    labels = set()
    for i in range(len(train)):  # every format and mode becomes (64, 64, 3) uint8
        s = train[i]
        assert s["image"].shape == (64, 64, 3) and s["image"].dtype == np.uint8
        assert s["proxy"].shape == (3, 32, 32) and s["proxy"].dtype == np.float32
        assert "boxes" not in s
        labels.add(s["label"])
    assert labels == {0, 1}
    gray = saccade.make_dataset("folder", root=root, size=64, channels=1, cache=False)
    assert gray[0]["image"].shape == (64, 64) and gray[0]["proxy"].shape == (32, 32)
    # the default side: the largest image's longer side (nothing shrinks)
    assert saccade.make_dataset("folder", root=root, cache=False).size == max(
        max(Image.open(p).size) for p, _ in train.items + test.items
    )


def test_pad_to_square_then_resize(tmp_path):
    """A 40x80 (w x h) white image: padded with black to 80x80, centred, then resized to 160."""
    root = tmp_path / "d"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.full((80, 40), 255, np.uint8)).save(root / c / "x.png")
        Image.fromarray(np.full((80, 40), 255, np.uint8)).save(root / c / "y.png")
    ds = saccade.make_dataset("folder", root=root, size=160, channels=1, cache=False)
    img = ds[0]["image"]
    assert img.shape == (160, 160)
    assert img[:, :38].max() == 0 and img[:, 122:].max() == 0  # the pads
    assert img[:, 42:118].min() == 255  # the image, scaled 2x, centred


def test_given_train_test_split_and_spec_round_trip(tmp_path):
    root = tmp_path / "data"
    make_tree(root / "train", n=3)
    make_tree(root / "test", n=2, seed=1)
    train = saccade.make_dataset("folder", root=root, split="train", size=64, cache=False)
    test = saccade.make_dataset("folder", root=root, split="test", size=64, cache=False)
    assert len(train) == 6 and len(test) == 4
    assert all("/test/" in str(p) for p, _ in test.items)
    spec = json.loads(json.dumps(test.spec.to_dict()))  # as a checkpoint keeps it
    rebuilt = dataset_from_spec(spec)
    assert rebuilt.items == test.items and rebuilt.class_names == ["cat", "dog"]
    assert np.array_equal(rebuilt[1]["image"], test[1]["image"])
    with pytest.raises(ValueError, match="not the checkpoint's"):
        dataset_from_spec(spec, class_names=["cat", "cow"])


def test_bad_input_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        saccade.make_dataset("folder", root=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class subfolders"):
        saccade.make_dataset("folder", root=tmp_path / "empty")
    root = make_tree(tmp_path / "d", n=2)
    (root / "emu").mkdir()
    (root / "emu" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with (
        pytest.raises(ValueError, match="class 'emu' has no readable image"),
        pytest.warns(RuntimeWarning, match="broken.png"),
    ):
        saccade.make_dataset("folder", root=root, cache=False)
    with pytest.raises(ValueError, match="root=PATH"):
        saccade.make_dataset("folder")


def test_unreadable_and_tiny_files_are_skipped_with_one_warning(tmp_path):
    root = make_tree(tmp_path / "d", n=3)
    (root / "cat" / "broken.png").write_bytes(b"garbage")
    (root / "dog" / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((MIN_SIDE - 1, 64), np.uint8)).save(root / "dog" / "tiny.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = saccade.make_dataset("folder", root=root, size=64, cache=False, holdout=0.3)
    ours = [w for w in caught if "skipped" in str(w.message)]
    assert len(ours) == 1
    message = str(ours[0].message)
    for name in ("broken.png", "empty.jpg", "tiny.png"):
        assert name in message
    assert f"smaller than {MIN_SIDE} px" in message
    assert len(ds.skipped) == 3
    assert all(p.name not in ("broken.png", "empty.jpg", "tiny.png") for p, _ in ds.items)


def test_exif_orientation_is_applied(tmp_path):
    """A 60x30 (w x h) JPEG whose EXIF says 'rotate 90 clockwise' (6) reads as 30x60, its
    red left half on top."""
    a = np.zeros((30, 60, 3), np.uint8)
    a[:, :30, 0] = 255
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif, quality=98)
    rgb = image_io.read_image(path, channels=3)
    assert rgb.shape == (60, 30, 3)
    assert rgb[:25, :, 0].mean() > 200 and rgb[35:, :, 0].mean() < 50
    assert image_io.read_image(path).shape == (60, 30)


@pytest.mark.slow
def test_training_and_evaluation_through_the_folder(tmp_path):
    """A few training steps from the CLI's config, a checkpoint that records the folder, its
    classes and colour, and ``python -m saccade.evaluate`` rebuilding the test split (no
    boxes: no localisation)."""
    from saccade.evaluate.cli import main as evaluate_main
    from saccade.train.cli import parse_args
    from saccade.train.config import TrainConfig
    from saccade.train.loop import fit

    root = make_tree(tmp_path / "d", n=5)
    cfg, _ = parse_args(
        ["--dataset", "folder", "--root", str(root), "--size", "128", "--steps", "3"]
        + ["--batch-size", "4", "--workers", "0", "--val-n", "4", "--test-n", "4"]
        + ["--out", str(tmp_path / "ck" / "f")]
    )
    assert isinstance(cfg, TrainConfig) and cfg.root == str(root)
    result = fit(cfg, command="test")
    assert result["steps"] == 3
    model = saccade.load(tmp_path / "ck" / "f")
    c = model.config
    assert c.channels == 3 and c.class_names == ["cat", "dog"]
    assert c.dataset["name"] == "folder" and c.dataset["root"] == str(root)
    assert c.dataset["levels_from"] == model.finest_level(128)
    meta = json.loads((tmp_path / "ck" / "f.json").read_text())
    assert meta["class_names"] == ["cat", "dog"] and meta["test_n"] == 2
    out = tmp_path / "eval.json"
    evaluate_main([str(tmp_path / "ck" / "f"), "--n", "10", "--noise", "0", "0.2"]
                  + ["--localisation", "--json", str(out)])  # fmt: skip
    ev = json.loads(out.read_text())
    assert ev["n"] == 2 and ev["dataset"] == "folder" and ev["localisation"] is None
    assert 0.0 <= ev["accuracy"] <= 1.0
    with pytest.raises(SystemExit, match="elsewhere"):  # --root: the data moved
        evaluate_main([str(tmp_path / "ck" / "f"), "--root", str(tmp_path / "elsewhere")])
    # the same model on an uploaded RGB image
    pred = saccade.predict(model, next(root.glob("cat/*.png")))
    assert pred.image.ndim == 3 and pred.image.shape[2] == 3
    assert pred.proxy.shape == (3, 32, 32) and pred.crops.shape[1] == 3
    assert pred.class_name in ("cat", "dog")


def _slide_tree(root, sides):
    """root/{a,b}/s{i}.tif: one tiled slide per side and class."""
    from saccade.data.slide import write_slide

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i, side in enumerate(sides):
            image = rng.integers(0, 255, (side // 2, side, 3), np.uint8)  # w = side
            write_slide(root / c / f"s{i}.tif", image, compression="deflate")
    return root


def test_the_spec_records_the_range_of_sides_and_the_warning_uses_it(tmp_path):
    """Slides of 256 to 1024 px: the checkpoint's spec keeps the range, and predict's warning
    fires outside it only, not on a training slide smaller than the largest."""
    from saccade.infer import input_warnings

    root = _slide_tree(tmp_path / "slides", [256, 256, 512, 1024, 1024])
    train = saccade.make_dataset("folder", root=root, cache=False)  # 1 slide a class held out
    assert {train._sides[p] for p, _ in train.items} >= {256, 1024}
    assert train.spec.side_range == [256, 1024] and train.size == 1024
    model = saccade.VariationalSaccader(
        saccade.ModelConfig(n_classes=2, channels=3, dataset=train.spec.to_dict())
    )
    image = np.zeros((64, 64, 3), np.uint8)  # a thumbnail: the shape says the real size
    assert input_warnings(model, image, shape=(128, 256)) == []  # a 256 slide of training
    assert input_warnings(model, image, shape=(560, 1100)) == []  # within 10%
    (far,) = input_warnings(model, image, shape=(2000, 4000))
    assert "4000×2000" in far and "trained on 256² to 1024² images" in far
    assert "fills 0.26× the share" in far  # 1024 / 4000
    # untiled images are resized to size: their range is that one side
    make_tree(tmp_path / "photos", n=3)
    photos = saccade.make_dataset("folder", root=tmp_path / "photos", size=96, cache=False)
    assert photos.spec.side_range == [96, 96]


def test_size_with_slides_says_it_is_ignored(tmp_path):
    root = _slide_tree(tmp_path / "slides", [256, 512])
    with pytest.warns(RuntimeWarning, match=r"size=4096 is ignored for the 4 slide\(s\)") as rec:
        ds = saccade.make_dataset("folder", root=root, size=4096, cache=False)
    message = str(rec[0].message)
    assert "native size (256 to 512 px a side)" in message and "only slides" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default size, and a spec's rebuild: no warning
        saccade.make_dataset("folder", root=root, cache=False)
        saccade.make_dataset("folder", root=root, size=512, cache=False)
    assert ds.size == 4096
