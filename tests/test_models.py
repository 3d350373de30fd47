"""The model registry and the ResNet-18 baselines: forward/backward on tiny inputs, parameter
counts against torchvision's, save/load round trips through the registry, and the baselines
through the same train/evaluate/predict paths as VS."""

import numpy as np
import pytest
import torch

import saccade
from saccade.evaluate.loop import evaluate
from saccade.models.registry import create_model, model_names
from saccade.models.resnet import ResNet18
from saccade.train.config import TrainConfig
from saccade.train.loop import fit, model_config

BASELINES = ["resnet18-full", "resnet18-grid", "resnet18-proxy"]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build(name: str, task: str = "single", **kw):
    torch.manual_seed(0)
    ds = saccade.make_dataset("cluttered", task=task, split="train", length=16)
    cfg = TrainConfig.from_settings(model=name, task=task, **kw)
    return create_model(name, model_config(cfg, ds)), ds


def test_registry_lists_every_model_and_refuses_unknown_ones():
    assert {"vs", *BASELINES} <= set(model_names())
    with pytest.raises(ValueError, match="model='nope' is not known; accepted"):
        create_model("nope", {})
    with pytest.raises(ValueError, match="has no settings \\['wings'\\]"):
        create_model("resnet18-proxy", {"n_classes": 10, "wings": 2})
    with pytest.raises(ValueError, match="model='nope'"):
        TrainConfig(model="nope")


def test_resnet18_has_torchvisions_layout_and_parameter_count():
    # torchvision.models.resnet18(): 11,689,512 parameters (3-channel stem, 1000 classes)
    assert n_params(ResNet18(3, 1000)) == 11_689_512
    # the baselines' grayscale stem (64·1·7·7) and a 10-class head (512·10 + 10)
    assert n_params(ResNet18(1, 10)) == 11_689_512 - 64 * 2 * 49 - 512 * 990 - 990
    names = {n for n, _ in ResNet18(1, 10).named_parameters()}
    assert {
        "conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.bias",
        "fc.weight",
    } <= names


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_forward_backward_and_loss(name):
    model, ds = build(name, grid=4)
    batch = [ds[i] for i in range(3)]
    images = torch.from_numpy(np.stack([s["image"] for s in batch]))
    proxy = torch.from_numpy(np.stack([s["proxy"] for s in batch]))
    labels = torch.tensor([s["label"] for s in batch])
    out = model(images, proxy)
    assert out.logits.shape == (1, 3, 10) and out.z is None and out.sigma is None
    total, terms = model.loss(out, labels, proxy)
    total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert set(terms) >= {"loss", "ce", "acc"} and terms["loss"] == pytest.approx(
        float(total.detach())
    )
    with pytest.raises(ValueError, match="does not choose where to look"):
        model(images, proxy, policy=lambda *a: None)


def test_inputs_reach_the_baselines_they_should_and_no_others():
    """resnet18-proxy reads only the proxy; resnet18-full and -grid only the image."""
    ds = saccade.make_dataset("cluttered", task="single", split="train", length=4)
    images = torch.from_numpy(np.stack([ds[i]["image"] for i in range(2)]))
    proxy = torch.from_numpy(np.stack([ds[i]["proxy"] for i in range(2)]))
    for name in BASELINES:
        model = build(name, grid=4)[0].eval()
        base = model(images, proxy).logits
        other_image = model(torch.flip(images, [1]), proxy).logits
        other_proxy = model(images, torch.flip(proxy, [1])).logits
        reads_image = not torch.allclose(base, other_image)
        reads_proxy = not torch.allclose(base, other_proxy)
        assert (reads_image, reads_proxy) == (
            (False, True) if name == "resnet18-proxy" else (True, False)
        )


def test_grid_tiles_cover_the_image_in_row_major_order():
    model = build("resnet18-grid", grid=3)[0]
    image = torch.arange(2 * 7 * 7, dtype=torch.uint8).view(2, 7, 7)  # 7 pads to 9: tiles of 3
    tiles = model.tiles(image, torch.device("cpu"))
    assert tiles.shape == (2 * 9, 1, 3, 3)
    assert torch.equal(tiles[1, 0] * 255, image[0, 0:3, 3:6].float())  # row 0, column 1
    assert torch.equal(tiles[9 + 3, 0] * 255, image[1, 3:6, 0:3].float())  # image 1, row 1
    assert float(tiles[8, 0, 1:, :].abs().sum()) == 0  # the padding is black


@pytest.mark.parametrize("name", ["vs", *BASELINES])
def test_save_load_round_trip_through_the_registry(tmp_path, name):
    model, ds = build(name, **({"grid": 4} if name == "resnet18-grid" else {}))
    model.eval()
    saccade.save(model, tmp_path / "m")
    meta = saccade.checkpoint.read_meta(tmp_path / "m")
    assert meta["model"] == name
    loaded = saccade.load(tmp_path / "m")
    assert type(loaded) is type(model)
    sample = ds[0]
    images = torch.from_numpy(sample["image"][None])
    proxy = torch.from_numpy(sample["proxy"][None])
    with torch.no_grad():
        assert torch.equal(model(images, proxy).logits, loaded(images, proxy).logits)


@pytest.mark.slow
def test_a_baseline_trains_evaluates_and_predicts_through_the_common_paths(tmp_path):
    cfg = TrainConfig(
        model="resnet18-proxy",
        task="single",
        train_length=64,
        batch_size=32,
        epochs=1,
        val_n=16,
        test_n=16,
        workers=0,
        out=str(tmp_path / "p"),
    )
    result = fit(cfg, callback=lambda e: None)
    assert result["steps"] == 2 and 0 <= result["test_accuracy"] <= 1
    model = saccade.load(tmp_path / "p")
    assert model.meta["model"] == "resnet18-proxy" and model.meta["variance"] is None
    got = evaluate(model, n=16, noise_levels=[0.1])
    assert got["model"] == "resnet18-proxy" and len(got["per_saccade"]) == 1
    assert got["sigma"] is None and got["crop_side"] is None
    assert got["accuracy"] == pytest.approx(result["test_accuracy"])
    with pytest.raises(ValueError, match="does not choose where to look"):
        evaluate(model, n=4, policy="random")
    image = saccade.make_dataset("cluttered", task="single", split="test", length=1)[0]["image"]
    pred = saccade.predict(model, image)
    assert pred.probs.shape == (1, 10) and pred.boxes is None and pred.sigma is None


@pytest.mark.parametrize("name", ["resnet18-proxy", "resnet18-grid", "resnet18-full"])
def test_resnet_baselines_take_colour(name):
    from saccade.models.registry import create_model

    model = create_model(name, {"n_classes": 2, "channels": 3, "grid": 2, "proxy_size": 8})
    assert model.net.conv1.in_channels == 3
    model.eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    proxy = torch.from_numpy(images[:, ::4, ::4].transpose(0, 3, 1, 2) / 255).float()
    with torch.no_grad():
        base = model(images, proxy).logits
        assert base.shape == (1, 2, 2)
        # each channel alone changes the answer, each in its own way: a model that drops
        # two channels, or that only sees their mean, fails here
        changed = []
        for c in range(3):
            one_images, one_proxy = images.copy(), proxy.clone()
            one_images[..., c] = 255 - one_images[..., c]
            one_proxy[:, c] = 1 - one_proxy[:, c]
            changed.append(model(one_images, one_proxy).logits)
    for c, logits in enumerate(changed):
        assert (logits - base).abs().max() > 1e-4, f"channel {c} is ignored"
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert (changed[a] - changed[b]).abs().max() > 1e-4, f"channels {a} and {b} look alike"
