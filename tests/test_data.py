"""Generators: determinism, labels, placement, split separation, proxy and noise."""

import numpy as np
import pytest

import saccade
from saccade.data.cluttered import PAIRS
from saccade.data.mnist import load_mnist
from saccade.data.placement import overlaps


def test_mnist_bundle_is_real_and_checked():
    images, labels = load_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist()[:3] == [5923, 6742, 5958]  # the official counts
    test_images, _ = load_mnist("test")
    assert test_images.shape == (10000, 28, 28)


def test_mnist_corrupt_file_is_named(tmp_path, monkeypatch):
    from saccade.data import mnist

    bad = tmp_path / "mnist_test.npz"
    bad.write_bytes(b"not an npz")
    monkeypatch.setattr(mnist, "DATA_DIR", tmp_path)
    mnist.load_mnist.cache_clear()
    try:
        with pytest.raises(ValueError, match="mnist_test.npz is corrupt"):
            mnist.load_mnist("test")
        bad.unlink()
        with pytest.raises(FileNotFoundError, match="mnist_test.npz is missing"):
            mnist.load_mnist("test")
    finally:
        mnist.load_mnist.cache_clear()


@pytest.mark.parametrize(
    "name,options",
    [
        ("cluttered", {"task": "sum"}),
        ("cluttered", {"task": "id", "size": 84}),
        ("megapixel", {"task": "majority", "size": 400}),
    ],
)
def test_samples_are_deterministic_and_seed_dependent(name, options):
    a = saccade.make_dataset(name, split="train", seed=3, **options)
    b = saccade.make_dataset(name, split="train", seed=3, **options)
    c = saccade.make_dataset(name, split="train", seed=4, **options)
    for i in (0, 7):
        assert np.array_equal(a[i]["image"], b[i]["image"])
        assert np.array_equal(a[i]["proxy"], b[i]["proxy"])
        assert a[i]["label"] == b[i]["label"]
    assert not np.array_equal(a[0]["image"], c[0]["image"])
    assert not np.array_equal(a[0]["image"], a[1]["image"])


def test_cluttered_labels_match_their_digits():
    for task, n_classes in [("single", 10), ("sum", 19), ("id", 55)]:
        ds = saccade.make_dataset("cluttered", task=task, split="test", length=200)
        assert ds.n_classes == n_classes == len(ds.class_names)
        labels = []
        for i in range(200):
            s = ds[i]
            d = sorted(int(x) for x in s["digits"])
            if task == "single":
                expected = d[0]
            elif task == "sum":
                expected = sum(d)
            else:
                expected = PAIRS.index(tuple(d))
            assert s["label"] == expected
            labels.append(s["label"])
        assert 0 <= min(labels) and max(labels) < n_classes
        assert len(set(labels)) > n_classes // 3  # labels are spread, not constant


def test_megapixel_majority_label():
    ds = saccade.make_dataset("megapixel", split="test", size=500, length=30)
    for i in range(30):
        s = ds[i]
        counts = np.bincount(s["digits"], minlength=10)
        assert counts.max() == 3 and counts.argmax() == s["label"]
        assert len(s["digits"]) == 5


def test_megapixel_invariants_at_1500_and_3000():
    """At 1500² (50 noise patterns) and 3000² (200: the same density): the proxy at 0.12 of
    the side, five untouched 28-pixel test digits (three of the label), no noise on them, the
    same share of lit pixels, and the same sample for the same index."""
    test_images, _ = load_mnist("test")
    lit = {}
    for size, n_noise in ((1500, 50), (3000, 200)):
        ds = saccade.make_dataset("megapixel", split="test", size=size, n_noise=n_noise, length=3)
        shares = []
        for i in range(3):
            s = ds[i]
            assert s["image"].shape == (size, size) and s["image"].dtype == np.uint8
            assert s["proxy"].shape == (round(0.12 * size),) * 2
            assert len(s["digits"]) == 5 and (s["digits"] == s["label"]).sum() == 3
            boxes = s["boxes"]
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= size).all()
            digit_area = 0
            for d_id, (x0, y0, x1, y1) in zip(s["digit_ids"], boxes.astype(int), strict=True):
                digit = test_images[d_id]
                r0, c0 = np.argwhere(digit > 0).min(0)
                assert np.array_equal(
                    s["image"][y0:y1, x0:x1], digit[r0 : r0 + y1 - y0, c0 : c0 + x1 - x0]
                )
                digit_area += int((digit > 0).sum())
            shares.append(((s["image"] > 0).sum() - digit_area) / size**2)
            np.testing.assert_array_equal(ds[i]["image"], s["image"])
        lit[size] = np.mean(shares)
    assert lit[1500] > 0.002  # 50 patterns of 1-3 strokes: about 0.4% of the canvas
    assert lit[3000] == pytest.approx(lit[1500], rel=0.3)


@pytest.mark.parametrize(
    "name,options",
    [
        ("cluttered", {"task": "sum", "size": 84}),
        ("cluttered", {"task": "sum", "size": 100, "full_size": 300}),
        ("megapixel", {"size": 256}),
    ],
)
def test_digits_inside_canvas_without_overlap(name, options):
    ds = saccade.make_dataset(name, split="train", length=40, **options)
    for i in range(40):
        s = ds[i]
        side = s["image"].shape[0]
        boxes = s["boxes"]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= side).all()
        for j in range(len(boxes)):
            others = [tuple(b) for k, b in enumerate(boxes) if k != j]
            assert not overlaps(tuple(boxes[j]), others)
        # the ink is really there: each box holds bright pixels
        for x0, y0, x1, y1 in boxes.astype(int):
            assert s["image"][y0:y1, x0:x1].max() > 100


def test_train_and_test_digits_never_mix():
    train_images, _ = load_mnist("train")
    test_images, _ = load_mnist("test")
    ds = saccade.make_dataset("cluttered", task="sum", split="test", n_clutter=0, length=20)
    for i in range(20):
        s = ds[i]
        for d_id, (x0, y0, x1, y1) in zip(s["digit_ids"], s["boxes"].astype(int), strict=True):
            digit = test_images[d_id]
            # the digit's pixels are exactly a test digit's pixels
            r0, c0 = np.argwhere(digit > 0).min(0)
            assert np.array_equal(
                s["image"][y0:y1, x0:x1], digit[r0 : r0 + y1 - y0, c0 : c0 + x1 - x0]
            )
    # and the digit ids of a test set index the test split (10k), never the train split
    ids = np.concatenate([ds[i]["digit_ids"] for i in range(20)])
    assert ids.max() < len(test_images) < len(train_images)
    tr = saccade.make_dataset("cluttered", task="sum", split="train", seed=0, length=5)
    assert not np.array_equal(tr[0]["image"], ds[0]["image"])


def test_proxy_shapes_and_range():
    assert saccade.make_dataset("cluttered", split="test")[0]["proxy"].shape == (32, 32)
    mp = saccade.make_dataset("megapixel", split="test", size=1500)[0]
    assert mp["proxy"].shape == (180, 180) and mp["proxy"].dtype == np.float32
    assert mp["image"].shape == (1500, 1500) and mp["image"].dtype == np.uint8
    up = saccade.make_dataset("cluttered", split="test", full_size=2528)[0]
    assert up["image"].shape == (2528, 2528) and up["proxy"].shape == (32, 32)
    assert 0.0 <= up["proxy"].min() and up["proxy"].max() <= 1.0


def test_proxy_noise_statistics():
    clean = saccade.make_dataset("cluttered", split="test", proxy_size=64)
    noisy = saccade.make_dataset("cluttered", split="test", proxy_size=64, proxy_noise=0.1)
    diffs = []
    for i in range(20):
        a, b = clean[i], noisy[i]
        assert np.array_equal(a["image"], b["image"])  # noise touches the proxy only
        dark = a["proxy"] > 0.2  # away from the 0 clip: unclipped Gaussian both sides
        mid = (a["proxy"] > 0.2) & (a["proxy"] < 0.8)
        diffs.append((b["proxy"] - a["proxy"])[mid])
        assert b["proxy"].min() >= 0 and b["proxy"].max() <= 1
        assert dark.any()
    d = np.concatenate(diffs)
    assert len(d) > 300
    assert abs(d.std() - 0.1) < 0.02 and abs(d.mean()) < 0.02
    # on the black background, clipping keeps only the positive half of the noise
    background = np.concatenate([noisy[i]["proxy"][clean[i]["proxy"] == 0] for i in range(5)])
    assert 0.4 < (background > 0).mean() < 0.6


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: saccade.make_dataset("imagenet"), "name='imagenet'.*accepted"),
        (lambda: saccade.make_dataset("cluttered", task="product"), "task='product'.*accepted"),
        (lambda: saccade.make_dataset("cluttered", size=20), "size=20"),
        (lambda: saccade.make_dataset("cluttered", task="single", size=27), "size=27"),
        (lambda: saccade.make_dataset("megapixel", size=100), "size=100"),
        (lambda: saccade.make_dataset("cluttered", split="val"), "split='val'"),
        (lambda: saccade.make_dataset("cluttered", proxy_noise=1.5), "proxy_noise=1.5"),
        (lambda: saccade.make_dataset("cluttered", colour=True), "colour"),
    ],
)
def test_bad_dataset_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_proxy_of_a_huge_image_halves_first_and_stays_an_area_average():
    import cv2

    from saccade.data.proxy import make_proxy

    rng = np.random.default_rng(0)
    big = cv2.resize(rng.integers(0, 256, (100, 100), dtype=np.uint8), (2528, 2528))
    direct = cv2.resize(big, (32, 32), interpolation=cv2.INTER_AREA) / 255.0
    assert np.abs(make_proxy(big, 32) - direct).max() <= 2.5 / 255  # via 316² halves
    # under 16 proxies wide (Megapixel's 1500² -> 180²), the proxy is the direct resize
    canvas = rng.integers(0, 256, (1500, 1500), dtype=np.uint8)
    direct = cv2.resize(canvas, (180, 180), interpolation=cv2.INTER_AREA) / 255.0
    assert np.array_equal(make_proxy(canvas, 180), direct.astype(np.float32))


def test_colour_proxy_is_channels_first_and_each_channel_the_gray_proxy():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    proxy = saccade.make_proxy(img, 32)
    assert proxy.shape == (3, 32, 32) and proxy.dtype == np.float32
    for c in range(3):
        assert np.allclose(proxy[c], saccade.make_proxy(np.ascontiguousarray(img[:, :, c]), 32))
    noisy = saccade.make_proxy(img, 32, 0.2, np.random.default_rng(1))
    assert noisy.shape == (3, 32, 32) and 0 <= noisy.min() and noisy.max() <= 1
    assert 0.1 < float(np.std(noisy - proxy)) < 0.25
