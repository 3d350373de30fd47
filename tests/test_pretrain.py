"""saccade.train.pretrain: the digit reader pre-trained on plain MNIST, and train --reader / --init."""

import json

import numpy as np
import pytest
import torch

from saccade.data.megapixel_crops import NONE, megapixel_crops
from saccade.data.mnist import load_mnist
from saccade.looked_at import box_coverage
from saccade.models.classifier import Classifier
from saccade.models.vs import ModelConfig, VariationalSaccader
from saccade.train import pretrain as reader_module
from saccade.train import readers
from saccade.train.config import TrainConfig
from saccade.train.loop import check_init_matches, fit


def test_digit_crops_hold_the_digit():
    images, _ = load_mnist("train")
    cfg = reader_module.ReaderConfig(clutter=0, max_shift=0, min_window=34, max_window=34)
    crops = reader_module.digit_crops(images[:8], torch.Generator().manual_seed(0), cfg, images)
    assert crops.shape == (8, 32, 32)
    assert 0 <= float(crops.min()) and float(crops.max()) <= 1
    # a window of 34 px around a 28 px digit: all of its ink, none of it near the border
    ink = crops.sum((1, 2)).numpy()
    expected = images[:8].reshape(8, -1).sum(1) / 255 * (32 / 34) ** 2
    assert np.allclose(ink, expected, rtol=0.05)
    assert float(crops[:, :2].sum() + crops[:, -2:].sum()) == 0.0


@pytest.mark.slow
def test_reader_learns_and_loads_into_the_model(tmp_path):
    cfg = reader_module.ReaderConfig(epochs=3, train_n=2048, test_n=500, lr=3e-3, batch_size=128)
    model, metrics = reader_module.train_reader(cfg, quiet=True)
    # 2,048 digits, 48 steps: far from 99%, but far above chance (10%)
    assert metrics["test_accuracy"] > 0.4
    readers.save(model, tmp_path / "r", {"command": "test", "config": {}, **metrics})
    vs = VariationalSaccader(ModelConfig(n_classes=10, crop_encoder="lenet-pool"))
    readers.load_into(vs, tmp_path / "r")
    for k, v in model.crop_encoder.state_dict().items():
        assert torch.equal(vs.crop_encoder.state_dict()[k], v)
    for other in ({"crop_width": 8, "crop_encoder": "lenet-pool"}, {"crop_encoder": "lenet"}):
        model = VariationalSaccader(ModelConfig(n_classes=10, **other))
        with pytest.raises(ValueError, match="does not fit the model's crop encoder"):
            readers.load_into(model, tmp_path / "r")
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a digit reader"):
        readers.load_into(vs, tmp_path / "x")
    with pytest.raises(ValueError, match="expected"):
        readers.load_into(vs, tmp_path / "missing")


def test_all_steps_equals_step_by_step():
    torch.manual_seed(0)
    for pooling in ("max", "mean", "evidence"):
        clf = Classifier(16, 5, pooling)
        f, z = torch.randn(6, 3, 16), torch.randn(6, 3, 3)
        pooled, step_logits = None, []
        for t in range(6):
            logits, pooled = clf.step(f[t], z[t], pooled, t)
            step_logits.append(logits)
        assert torch.allclose(clf.all_steps(f, z), torch.stack(step_logits), atol=1e-6)


@pytest.mark.slow
def test_init_from_another_task_is_refused_unless_parts_are_named(tmp_path):
    single = ModelConfig(n_classes=10, dataset={"name": "cluttered", "task": "single"})
    sum_ = ModelConfig(n_classes=19, dataset={"name": "cluttered", "task": "sum"})
    check_init_matches("checkpoints/cluttered-single-learnt", single)  # same data: fine
    with pytest.raises(ValueError, match=r"task 'single' \(init\) against 'sum'.*--init-parts"):
        check_init_matches("checkpoints/cluttered-single-learnt", sum_)
    colour = ModelConfig(n_classes=10, channels=3, dataset={"name": "cluttered", "task": "single"})
    with pytest.raises(ValueError, match=r"channels 1 \(init\) against 3"):
        check_init_matches("checkpoints/cluttered-single-learnt", colour)
    cfg = dict(task="sum", steps=1, train_length=16, batch_size=8, val_n=4, test_n=0, workers=0)
    with pytest.raises(ValueError, match="trained for other data"):
        fit(TrainConfig(**cfg, init="checkpoints/cluttered-single-learnt", out=str(tmp_path / "a")))
    out = fit(
        TrainConfig(
            **cfg,
            init="checkpoints/cluttered-single-learnt",
            init_parts="crop_encoder",
            out=str(tmp_path / "b"),
        ),
        callback=lambda e: None,
    )
    assert out["steps"] == 1
    meta = json.loads((tmp_path / "b.json").read_text())
    assert meta["init_from"]["parts"] == ["crop_encoder"]
    assert np.isfinite(meta["train_time_s"])


def test_crop_encoder_kinds_are_named():
    with pytest.raises(ValueError, match="crop_encoder='resnet'; accepted"):
        VariationalSaccader(ModelConfig(n_classes=10, crop_encoder="resnet"))
    for kind in ("lenet", "lenet-pool"):
        model = VariationalSaccader(ModelConfig(n_classes=10, crop_encoder=kind)).eval()
        with torch.no_grad():
            assert model.crop_encoder(torch.rand(2, 32, 32)).shape == (2, 256)


def test_megapixel_crops_label_a_whole_digit_as_itself_and_a_missing_one_as_none():
    images, labels = load_mnist("train")
    rng = np.random.default_rng(0)
    crops, targets = megapixel_crops(images[:64], labels[:64], rng, digit_fraction=0.0)
    assert crops.shape == (64, 32, 32) and targets.shape == (64, 11)
    assert torch.equal(targets[:, NONE], torch.ones(64))  # no digit offered: all "no digit"
    crops, targets = megapixel_crops(images[:256], labels[:256], rng, noise_rate=0.0)
    assert torch.allclose(targets.sum(1), torch.ones(256))
    digit = targets[:, :NONE].amax(1)
    # the offered digit's class is the only one with weight, and a whole digit counts fully
    assert torch.equal(
        targets[:, :NONE].argmax(1)[digit > 0], torch.from_numpy(labels[:256]).long()[digit > 0]
    )
    assert (digit == 1).sum() > 50 and ((digit > 0) & (digit < 1)).sum() > 5
    # the soft label follows the ink: a crop read as a whole digit holds more ink than one
    # labelled "no digit" without any noise drawn
    assert crops[digit == 1].sum((1, 2)).mean() > 2 * crops[digit == 0].sum((1, 2)).mean()
    assert box_coverage((0, 0, 10, 10), (5, 5, 20, 20))[0, 0] == pytest.approx(0.25)


@pytest.mark.slow
def test_a_megapixel_reader_loads_into_an_evidence_classifier(tmp_path):
    cfg = reader_module.ReaderConfig(
        kind="megapixel", epochs=1, train_n=512, test_n=200, batch_size=128, min_window=30,
        max_window=52,
    )  # fmt: skip
    model, metrics = reader_module.train_reader(cfg, quiet=True)
    assert 0 <= metrics["test_accuracy"] <= 1
    readers.save(model, tmp_path / "r", {"command": "test", "config": {}, **metrics})
    vs = VariationalSaccader(
        ModelConfig(n_classes=10, crop_encoder="lenet-pool", pooling="evidence")
    ).eval()
    readers.load_into(vs, tmp_path / "r")
    crops, _ = megapixel_crops(*(a[:16] for a in load_mnist("test")), np.random.default_rng(1))
    model.eval()
    with torch.no_grad():  # the model's per-crop head is the reader's
        expected = model(crops)
        got = vs.classifier.crop_logits(vs.crop_encoder(crops))
    assert torch.allclose(expected, got, atol=1e-5)
    # a megapixel reader does not fit a model without a "no digit" outcome
    with pytest.raises(ValueError, match="does not fit the model's classifier"):
        readers.load_into(
            VariationalSaccader(
                ModelConfig(n_classes=10, crop_encoder="lenet-pool", pooling="mean")
            ),
            tmp_path / "r",
        )


def test_evidence_pooling_sums_each_crops_vote():
    """Three crops that read 5 outvote two that read 7, and a crop that reads "no digit"
    leaves the answer as it was."""
    clf = Classifier(4, 10, "evidence")
    votes = {5: 0, 7: 1, NONE: 2}  # feature index -> outcome

    def crop_logits(f):
        out = torch.full(f.shape[:-1] + (11,), -20.0)
        for outcome, i in votes.items():
            out[..., outcome] = torch.where(f[..., i] > 0, 20.0, -20.0)
        return out

    clf.crop_logits = crop_logits
    f = torch.zeros(6, 1, 4)
    for t, i in enumerate([1, 0, 1, 0, 0, 2]):  # 7, 5, 7, 5, 5, no digit
        f[t, 0, i] = 1
    logits = clf.all_steps(f, torch.zeros(6, 1, 3))[:, 0]
    assert logits.argmax(-1).tolist()[:1] == [7]
    assert logits[4].argmax().item() == 5 and logits[5].argmax().item() == 5
    assert torch.allclose(logits[4], logits[5], atol=1e-4)
