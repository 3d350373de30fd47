"""predict: every input kind, the returned fields, and bad inputs."""

import numpy as np
import pytest
from PIL import Image

import saccade


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.helpers import small_model

    return small_model().eval()


@pytest.fixture(scope="module")
def sample():
    return saccade.make_dataset("cluttered", task="sum", split="test")[0]


def test_fields_and_shapes(model, sample):
    out = saccade.predict(model, sample["image"], n_saccades=6, proxy_noise=0.1, seed=3)
    assert out.probs.shape == (6, 19)
    assert np.allclose(out.probs.sum(1), 1, atol=1e-5)
    assert out.label == int(out.probs[-1].argmax()) and out.class_names[out.label] == str(out.label)
    assert out.mu.shape == out.sigma.shape == out.z.shape == (6, 3)
    assert np.array_equal(out.z, out.mu)  # the mean unless sampling is asked for
    assert out.boxes.shape == (6, 4) and out.crops.shape == (6, 32, 32)
    assert len(out.zooms) == 6 and all(z.dtype == np.uint8 and z.ndim == 2 for z in out.zooms)
    assert out.proxy.shape == (32, 32) and np.array_equal(out.image, sample["image"])
    # boxes agree with z
    assert np.allclose(out.boxes, saccade.z_to_box(out.z, (100, 100), 0.15, 0.3))
    # the zoom is the image inside the (clipped) box
    x0, y0, x1, y1 = out.boxes[0]
    assert out.zooms[0].shape[0] == pytest.approx(min(y1, 100) - max(y0, 0), abs=2)


def test_noise_and_sampling_are_seeded(model, sample):
    a = saccade.predict(model, sample["image"], proxy_noise=0.2, seed=1, sample=True)
    b = saccade.predict(model, sample["image"], proxy_noise=0.2, seed=1, sample=True)
    c = saccade.predict(model, sample["image"], proxy_noise=0.2, seed=2, sample=True)
    assert np.array_equal(a.proxy, b.proxy) and np.array_equal(a.z, b.z)
    assert not np.array_equal(a.proxy, c.proxy) and not np.array_equal(a.z, c.z)
    clean = saccade.predict(model, sample["image"])
    assert np.allclose(clean.proxy, sample["proxy"])  # the same proxy as in training


@pytest.mark.parametrize("kind", ["uint8", "float", "rgb", "rgba", "uint16", "pil", "path"])
def test_input_kinds_give_the_same_prediction(model, sample, kind, tmp_path):
    img = sample["image"]
    inputs = {
        "uint8": img,
        "float": img.astype(np.float64) / 255,
        "rgb": np.repeat(img[:, :, None], 3, axis=2),
        "rgba": np.dstack([img, img, img, np.full_like(img, 255)]),
        "uint16": img.astype(np.uint16) * 257,
        "pil": Image.fromarray(img),
        "path": tmp_path / "x.png",
    }
    Image.fromarray(img).save(tmp_path / "x.png")
    ref = saccade.predict(model, img)
    out = saccade.predict(model, inputs[kind])
    assert np.abs(out.image.astype(int) - img.astype(int)).max() <= 1
    assert np.allclose(out.probs, ref.probs, atol=0.02)


def test_non_square_images_are_padded(model):
    """A wide or tall image is centred on a black square of its longer side, its pixels
    unchanged (no pixel of it is 0, so any shift or resize would show)."""
    wide = np.random.default_rng(0).integers(1, 256, (60, 100), dtype=np.uint8)
    out = saccade.predict(model, wide)
    assert out.image.shape == (100, 100)
    np.testing.assert_array_equal(out.image[20:80], wide)
    assert not out.image[:20].any() and not out.image[80:].any()
    tall = saccade.predict(model, wide.T.copy()).image
    np.testing.assert_array_equal(tall[:, 20:80], wide.T)
    assert not tall[:, :20].any() and not tall[:, 80:].any()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_saccades": 0}, "n_saccades=0"),
        ({"n_saccades": 99}, "n_saccades=99"),
        ({"n_saccades": 2.5}, "n_saccades=2.5"),
        ({"proxy_noise": 1.5}, "proxy_noise=1.5"),
        ({"proxy_noise": -0.1}, "proxy_noise=-0.1"),
    ],
)
def test_bad_arguments(model, sample, kwargs, match):
    with pytest.raises(ValueError, match=match):
        saccade.predict(model, sample["image"], **kwargs)


@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((4, 4), np.uint8), "at least 8 px"),
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        (np.zeros((0, 0), np.uint8), "at least 8 px"),
        (np.array([["a"] * 10] * 10), "dtype"),
        ("no/such/file.png", "does not exist"),
        (12, "must be a numpy array"),
    ],
)
def test_bad_images(model, image, match):
    with pytest.raises(ValueError, match=match):
        saccade.predict(model, image)


def test_not_an_image_file(model, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        saccade.predict(model, bad)


def test_input_warnings_name_what_differs_from_the_training_data(model, sample):
    from saccade.infer import input_warnings

    spec = model.config.dataset
    # a sample of the checkpoint's own dataset: nothing to say
    assert input_warnings(model, sample["image"], spec) == []
    # the same canvas upsampled (the 2528² protocol): digits fill the same share of a crop
    up = saccade.make_dataset("cluttered", task="sum", split="test", full_size=400, length=1)
    assert input_warnings(model, up[0]["image"], up.spec.to_dict()) == []
    # an upload of another size: the crops cover another share of its objects
    said = input_warnings(model, np.zeros((50, 400), np.uint8) + 5)
    assert any("400×50" in w and "trained on 100² images" in w for w in said)
    # another dataset and task: named, with the canvas size
    mega = saccade.make_dataset("megapixel", split="test", size=300, length=1)
    said = input_warnings(model, mega[0]["image"], mega.spec.to_dict())
    assert any("from megapixel/majority" in w and "cluttered/sum" in w for w in said)
    assert any("300² canvas" in w for w in said)
    # a photo-like image: its proxy is far brighter than any training proxy
    photo = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    said = input_warnings(model, photo)
    assert len(said) == 1 and "mean brightness is 0.5" in said[0]


def test_rgb_round_trip_through_predict(tmp_path):
    """A colour checkpoint: saved, loaded (channels kept), and an RGB PNG goes through
    predict as RGB: (S, S, 3) image, (3, p, p) proxy, (T, 3, k, k) crops, colour zooms;
    a gray checkpoint saved before colour existed (no ``channels`` key) loads as 1."""
    import json

    import torch

    from saccade.models.vs import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(n_classes=3, class_names=["a", "b", "c"], channels=3, proxy_size=16)
    saccade.save(saccade.VariationalSaccader(config), tmp_path / "rgb")
    model = saccade.load(tmp_path / "rgb")
    assert model.config.channels == 3
    img = np.zeros((120, 100, 3), np.uint8)
    img[10:40, 20:60, 0] = 255
    img[60:90, 50:80, 1] = 200
    Image.fromarray(img).save(tmp_path / "x.png")
    out = saccade.predict(model, tmp_path / "x.png", n_saccades=3)
    assert out.image.shape == (120, 120, 3)
    assert out.image[10:40, 30:70, 0].min() == 255 and out.image[10:40, 30:70, 1].max() == 0
    assert out.proxy.shape == (3, 16, 16)
    assert out.crops.shape == (3, 3, 32, 32)
    assert all(z.ndim == 3 and z.shape[2] == 3 for z in out.zooms)
    assert out.class_name in ("a", "b", "c") and out.probs.shape == (3, 3)
    same = saccade.predict(model, img, n_saccades=3)  # an array gives the same answer
    assert np.allclose(same.probs, out.probs)
    # an old gray checkpoint: its JSON has no channels
    gray = ModelConfig(n_classes=2)
    saccade.save(saccade.VariationalSaccader(gray), tmp_path / "old")
    meta_path = tmp_path / "old.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["channels"]
    meta_path.write_text(json.dumps(meta))
    old = saccade.load(tmp_path / "old")
    assert old.config.channels == 1
    assert saccade.predict(old, img).image.shape == (120, 120)
