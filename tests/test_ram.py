"""The ``ram`` baseline (saccade.models.ram): shapes, gradients, sampling, the parameter
count, the sign of REINFORCE on a toy task, and the registry round trip through save, load,
predict, evaluate and the training CLI."""

import json

import numpy as np
import pytest
import torch

import saccade
import saccade.models.ram as ram_module
from saccade.evaluate.loop import evaluate
from saccade.glimpse import Pyramid
from saccade.models.objective import LossWeights
from saccade.models.ram import RAM, RAMConfig
from saccade.models.registry import create_model, model_names
from saccade.train.cli import main as train_main


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """This file's small tensors run fastest on one thread: with conftest's two, beside a
    training run on a 2-core machine, the toy task took 54 s instead of 2 s (threads waiting
    on each other). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_batch(batch: int = 3, side: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (batch, side, side), dtype=np.uint8))
    return images, torch.zeros(batch, 32, 32), torch.tensor([1, 4, 7][:batch])


def test_registered():
    assert "ram" in model_names()
    model = create_model("ram", {"n_classes": 10})
    assert isinstance(model, RAM) and model.model_name == "ram" and model.chooses_where


def test_forward_backward_shapes_and_gradients():
    torch.manual_seed(0)
    model = RAM(RAMConfig(n_classes=10))
    images, proxy, labels = tiny_batch()
    model.train()
    out = model(images, proxy, 3, generator=torch.Generator().manual_seed(0))
    assert out.sampled
    assert out.logits.shape == (3, 3, 10)
    for name in ("z", "mu", "sigma"):
        assert getattr(out, name).shape == (3, 3, 3), name
    assert out.log_pi.shape == out.baseline.shape == (3, 3)
    assert out.crops.shape == (3, 3, 12, 12)
    assert (out.z[..., 0] == -1).all() and (out.mu[..., 0] == -1).all()
    assert out.z[..., 1:].abs().max() <= 1
    assert torch.equal(out.sigma[0, 0], torch.tensor([0.0, 0.1, 0.1]))
    # the first mean comes from h_0 = 0 and a zero bias: the centre
    assert torch.equal(out.mu[0, :, 1:], torch.zeros(3, 2))
    assert not out.z.requires_grad  # hard attention: the locations are not differentiated

    total, terms = model.loss(out, labels, proxy)
    assert set(terms) >= {"loss", "ce", "acc", "reward", "reinforce", "baseline_mse"}
    assert all(isinstance(v, float) for v in terms.values())
    assert terms["loss"] == pytest.approx(
        terms["ce"] + terms["reinforce"] + terms["baseline_mse"], rel=1e-5
    )
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_mean_path_has_no_reinforce():
    torch.manual_seed(0)
    model = RAM(RAMConfig(n_classes=10))
    images, proxy, labels = tiny_batch()
    out = model(images, proxy, 3, sample=False)
    assert not out.sampled and out.log_pi is None
    assert torch.equal(out.z[..., 1:], out.mu[..., 1:].clamp(-1, 1))
    total, terms = model.loss(out, labels, proxy)
    assert terms["reinforce"] == 0.0
    total.backward()
    assert model.locator.fc.weight.grad is None  # the policy learns only from REINFORCE
    assert model.classifier.fc.weight.grad.abs().sum() > 0


def test_sampling_is_deterministic_or_reproducible():
    torch.manual_seed(0)
    model = RAM(RAMConfig(n_classes=10)).eval()
    images, proxy, _ = tiny_batch()
    a, b = model(images, proxy, 4), model(images, proxy, 4)  # eval: the mean
    assert not a.sampled and torch.equal(a.logits, b.logits) and torch.equal(a.z, b.z)

    def draw(seed):
        return model(images, proxy, 4, sample=True, generator=torch.Generator().manual_seed(seed))

    c, d, e = draw(1), draw(1), draw(2)
    assert torch.equal(c.z, d.z) and torch.equal(c.logits, d.logits)
    assert not torch.equal(c.z, e.z)
    assert not torch.equal(c.z, a.z)
    # images as a list of Pyramids give the same answer as the uint8 batch
    f = model([Pyramid(im.numpy()) for im in images], proxy, 4)
    assert torch.allclose(f.logits, a.logits, atol=1e-6)


def test_errors_name_the_input():
    model = RAM(RAMConfig(n_classes=10))
    images, proxy, _ = tiny_batch()
    with pytest.raises(ValueError, match="ram"):
        model(images, proxy, policy=object())
    with pytest.raises(ValueError, match="n_saccades"):
        model(images, proxy, 33)
    for bad, field in (
        ({"std": 0.0}, "std"),
        ({"core": "gru"}, "core"),
        ({"glimpse_fraction": 0.6, "n_scales": 3}, "glimpse_fraction"),
        ({"n_saccades": 40}, "n_saccades"),
        ({"crop_size": 0}, "crop_size"),
        ({"n_classes": 1}, "n_classes"),
    ):
        with pytest.raises(ValueError, match=field):
            RAMConfig(**bad)


def test_config_scales_and_dict():
    c = RAMConfig(n_classes=10, glimpse_fraction=0.2)
    assert c.min_scale == c.max_scale == 0.2
    d = c.to_dict()
    assert "min_scale" not in d and "max_scale" not in d  # the training CLI keeps its own
    assert RAMConfig(**d) == c
    # the finest patch reads pyramid level floor(log2(0.2 * side / 12)): none finer
    assert [RAM(c).finest_level(side) for side in (100, 2528)] == [0, 5]
    box = saccade.z_to_box(np.array([[-1.0, 0.0, 0.0]]), (100, 100), c.min_scale, c.max_scale)
    assert np.allclose(box, [[40, 40, 60, 60]])  # the finest patch, 0.2 of the side


def test_parameter_count_matches_docstring():
    for core, stated in (("rnn", 256_781), ("lstm", 651_533)):
        model = RAM(RAMConfig(n_classes=10, core=core))
        assert sum(p.numel() for p in model.parameters()) == stated
        assert f"{stated:,}" in ram_module.__doc__
    assert RAMConfig().core == "rnn"


# --- the sign of REINFORCE -------------------------------------------------------------------

SPOT = torch.tensor([-0.5, -0.5])  # the centre of the answer's square, normalised coordinates


def toy_task(n: int, seed: int):
    """48² images, black but for an 8 px square at pixels 8..16 (the top-left quarter): bright
    (label 1) or dim (label 0); two distractor squares of either brightness and sparse bright
    noise elsewhere. A 12 px glimpse at the centre cannot see the answer."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 48, 48), np.uint8)
    labels = rng.integers(0, 2, n)
    for i in range(n):
        images[i, 8:16, 8:16] = 255 if labels[i] else 96
        for _ in range(2):
            x, y = rng.integers(0, 41, 2)
            while x < 24 and y < 24:
                x, y = rng.integers(0, 41, 2)
            images[i, y : y + 8, x : x + 8] = rng.choice([96, 255])
        noise = rng.random((48, 48)) < 0.03
        noise[:24, :24] = False
        images[i][noise] = 255
    return images, torch.from_numpy(labels)


def train_toy(sign: float, steps: int = 300, seed: int = 0) -> tuple[float, float, float]:
    """(distance of the first look's mean to the spot before, after; test accuracy) of a
    tiny RAM (T = 1, one 8 x 8 patch of 0.25 of the side, σ = 0.25) trained with Adam, the
    REINFORCE term weighted by ``sign``."""
    torch.manual_seed(seed)
    config = RAMConfig(
        n_classes=2, n_saccades=1, crop_size=8, n_scales=1, glimpse_fraction=0.25,
        glimpse_hidden=32, loc_hidden=16, hidden=32, std=0.25,
    )  # fmt: skip
    model = RAM(config)
    images, labels = toy_task(1024, seed)
    pyramids = [Pyramid(im) for im in images]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    # a negative weight is refused as a setting (LossWeights checks it): the sign-flipped
    # control gets its weight set past the check
    weights = LossWeights(cell_weight=abs(sign))
    object.__setattr__(weights, "cell_weight", sign)

    def distance() -> float:
        with torch.no_grad():  # the first look: the location network on h_0 = 0
            return float(torch.dist(model.locator(torch.zeros(1, config.hidden))[0], SPOT))

    before = distance()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (64,), generator=gen)
        out = model([pyramids[i] for i in idx], torch.zeros(64, 1, 1), generator=gen)
        total, _ = model.loss(out, labels[idx], None, weights)
        opt.zero_grad()
        total.backward()
        opt.step()
    test_images, test_labels = toy_task(512, seed + 100)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(test_images), torch.zeros(512, 1, 1))
    accuracy = float((out.logits[-1].argmax(-1) == test_labels).float().mean())
    return before, distance(), accuracy


@pytest.mark.slow
def test_reinforce_moves_the_policy_to_the_answer():
    before, after, accuracy = train_toy(+1.0)
    assert before == pytest.approx(0.7071, abs=1e-3)  # starts at the centre
    assert after < 0.1  # measured: 0.016 (seeds 1-3: 0.015, 0.019, 0.014)
    assert accuracy > 0.9  # measured: 1.0; chance is 0.5
    # the same run with the REINFORCE term's sign flipped walks away from the answer
    before, after, accuracy = train_toy(-1.0)
    assert after > before  # measured: 0.74 (seeds 1-3: 1.17, 1.17, 0.93)
    assert accuracy < 0.65  # measured: 0.51


# --- the registry round trip -----------------------------------------------------------------


def single_model(seed: int = 0) -> tuple[RAM, object]:
    torch.manual_seed(seed)
    ds = saccade.make_dataset("cluttered", task="single", split="test", length=8)
    config = RAMConfig(
        n_classes=ds.n_classes,
        class_names=ds.class_names,
        proxy_size=ds.proxy_size,
        dataset=ds.spec.to_dict() | {"split": "train"},
        n_saccades=3,
    )
    return RAM(config), ds


def test_save_load_predict_evaluate(tmp_path):
    model, ds = single_model()
    model.eval()
    path = saccade.checkpoint.save(model, tmp_path / "r", {"test_accuracy": 0.0})
    assert json.loads(path.read_text())["model"] == "ram"
    loaded = saccade.checkpoint.load(tmp_path / "r")
    assert isinstance(loaded, RAM) and loaded.config == model.config
    images = torch.from_numpy(np.stack([ds[i]["image"] for i in range(4)]))
    proxy = torch.from_numpy(np.stack([ds[i]["proxy"] for i in range(4)]))
    assert torch.equal(model(images, proxy).logits, loaded(images, proxy).logits)

    pred = saccade.predict(loaded, ds[0]["image"], n_saccades=4)
    assert pred.probs.shape == (4, 10) and np.allclose(pred.probs.sum(1), 1, atol=1e-5)
    assert pred.boxes.shape == (4, 4)
    assert np.allclose(pred.boxes[:, 2] - pred.boxes[:, 0], 12.0)  # 0.12 of 100 px
    assert np.allclose(pred.sigma, [[0.0, 0.1, 0.1]] * 4)
    assert pred.crops.shape == (4, 12, 12)

    result = evaluate(loaded, n=8, noise_levels=[0.1], dataset=ds, localisation=True)
    assert result["model"] == "ram" and result["n"] == 8
    assert len(result["per_saccade"]) == 3
    assert all(0.0 <= a <= 1.0 for a in result["per_saccade"])
    assert result["crop_side"]["min"] == pytest.approx(0.12)
    assert result["sigma"]["0.0"]["median"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="ram"):
        evaluate(loaded, n=8, dataset=ds, policy="random")


@pytest.mark.slow
def test_training_cli_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "ram-single"
    train_main(
        ["--model", "ram", "--task", "single", "--steps", "20", "--train-length", "320",
         "--batch-size", "16", "--val-n", "32", "--test-n", "32", "--workers", "0",
         "--log-every", "10", "--out", str(out)]
    )  # fmt: skip
    model = saccade.load(out)
    assert isinstance(model, RAM) and model.config.n_classes == 10
    assert model.meta["steps_done"] == 20 and 0.0 <= model.meta["test_accuracy"] <= 1.0
    events = [
        json.loads(line) for line in out.with_suffix(".metrics.jsonl").read_text().splitlines()
    ]
    logged = [e for e in events if "reinforce" in e]
    assert [e["step"] for e in logged] == [10, 20]
    assert all(np.isfinite(e["loss"]) and "baseline_mse" in e for e in logged)
