"""The attention-sampling baseline (``saccade.models.ats``): its estimator, its deterministic
mode, one real training step through the CLI and an evaluation of what it wrote."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import saccade
from saccade.checkpoint import load
from saccade.evaluate.cli import main as evaluate_main
from saccade.models.ats import ATS, ATSConfig, ats_pool
from saccade.models.posterior import cell_centres
from saccade.models.registry import create_model, model_names

ROOT = Path(__file__).resolve().parents[1]
READER = ROOT / "checkpoints" / "readers" / "megapixel"


def test_registered_and_looks_once():
    assert "ats" in model_names()
    model = create_model("ats", {"n_classes": 10})
    assert isinstance(model, ATS) and model.model_name == "ats" and not model.chooses_where
    c = model.config
    assert (c.n_saccades, c.max_saccades, c.grid) == (1, 1, 45)
    assert c.min_scale == c.max_scale == pytest.approx(50 / 1500)


def test_the_estimator_is_unbiased_in_value_and_in_gradient():
    torch.manual_seed(0)
    P, C, n, M = 5, 3, 4, 40_000  # positions, classes, patches, independent draws
    scores = torch.randn(P, requires_grad=True)
    e = torch.rand(P, C)  # a fixed feature per position
    w = torch.randn(C)  # a fixed linear read-out of the pooled features

    a = torch.softmax(scores, 0)
    exact_value = a @ e  # E_a[e], (C,)
    (exact_grad,) = torch.autograd.grad(exact_value @ w, scores)

    a = torch.softmax(scores, 0).expand(M, P)
    gen = torch.Generator().manual_seed(1)
    idx = torch.multinomial(a.detach(), n, replacement=True, generator=gen)  # (M, n)
    pooled = ats_pool(a, idx, e[idx], sampled=True)  # (M, C)
    (pooled @ w).mean().backward()

    # the mean of M estimates: within 4.5 standard errors of the exact value and gradient
    value_se = pooled.detach().std(0) / M**0.5
    assert (pooled.detach().mean(0) - exact_value.detach()).abs().le(4.5 * value_se).all()
    # per-draw gradients, to know the standard error of their mean
    per_draw = []
    for m in range(200):
        s = scores.detach().clone().requires_grad_(True)
        pm = ats_pool(torch.softmax(s, 0)[None], idx[m : m + 1], e[idx[m : m + 1]], True)
        (g,) = torch.autograd.grad(pm[0] @ w, s)
        per_draw.append(g)
    grad_se = torch.stack(per_draw).std(0) / M**0.5
    assert (scores.grad - exact_grad).abs().le(4.5 * grad_se + 1e-6).all()
    assert (scores.grad - exact_grad).norm() < 0.05 * exact_grad.norm()
    # one draw's value is the plain mean of its patches' features (a / stopgrad(a) = 1)
    assert torch.allclose(pooled[0].detach(), e[idx[0]].mean(0))


def test_the_deterministic_mode_pools_the_top_n_renormalised():
    a = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    e = torch.eye(4)[None, [1, 2]]  # the features of positions 1 and 2
    pooled = ats_pool(a, torch.tensor([[1, 2]]), e, sampled=False)
    assert torch.allclose(pooled, torch.tensor([[0.0, 0.625, 0.375, 0.0]]))


def brightness_attention(model: ATS, gain: float = 60.0) -> None:
    """Make the attention score of position (r, c) gain x the view's pixel (4r, 4c): centre
    taps of 1 through the convolutions (stride 2 twice), zero elsewhere."""
    with torch.no_grad():
        for layer in model.attention.net:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
                layer.bias.zero_()
                k = layer.kernel_size[0] // 2
                layer.weight[0, 0, k, k] = 1.0
        model.attention.net[-1].weight[0, 0, 0, 0] = gain


def test_the_patches_land_on_the_most_attended_positions():
    torch.manual_seed(0)
    side, p = 256, 32
    model = ATS(
        ATSConfig(n_classes=10, proxy_size=p, view_size=p, n_patches=3, patch_px=32,
                  dataset={"size": side})
    )  # fmt: skip
    brightness_attention(model)
    model.eval()
    g = model.config.grid  # 8 positions a side
    spots = [(2, 5, 1.0), (6, 1, 0.9), (0, 7, 0.8)]  # (row, column, brightness), by attention
    proxy = torch.zeros(2, p, p)
    images = np.zeros((2, side, side), np.uint8)
    centres = (cell_centres(g) + 1) / 2 * side  # pixel centre of each row / column
    for r, c, v in spots:
        proxy[:, 4 * r, 4 * c] = v
        y, x = int(centres[r]), int(centres[c])
        images[:, y - 8 : y + 8, x - 8 : x + 8] = 255  # a bright square where it will look
    out = model(images, proxy)
    assert not out.sampled and out.logits.shape == (1, 2, 10)
    assert out.z is None and out.mu is None and out.sigma is None
    want = torch.tensor([[-1.0, cell_centres(g)[c], cell_centres(g)[r]] for r, c, _ in spots])
    for b in range(2):
        assert torch.allclose(out.positions[b], want)
        assert out.indices[b].tolist() == [r * g + c for r, c, _ in spots]
    # each patch (32 px, 32 samples) holds its 16 px square: a quarter of it bright
    assert out.crops.shape == (2, 3, 32, 32)
    assert torch.allclose(out.crops.mean((-1, -2)), torch.full((2, 3), 0.25), atol=0.03)
    assert out.attention.flatten(1).max(1).values.min() > 0.99  # gain 60: one dominates
    # sampled, the n draws all land on the dominating position
    out = model(images, proxy, sample=True, generator=torch.Generator().manual_seed(0))
    assert out.sampled and (out.indices == spots[0][0] * g + spots[0][1]).all()
    with pytest.raises(ValueError, match="does not choose where to look"):
        model(images, proxy, policy=lambda *a: None)
    with pytest.raises(ValueError, match="n_saccades must be 1"):
        model(images, proxy, 2)


def test_loss_is_cross_entropy_less_the_weighted_entropy():
    torch.manual_seed(0)
    model = ATS(ATSConfig(n_classes=10, proxy_size=32, view_size=32, n_patches=2))
    model.train()
    images = torch.randint(0, 256, (3, 200, 200), dtype=torch.uint8)
    out = model(images, torch.rand(3, 32, 32), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1, 2, 3])
    total, terms = model.loss(out, labels)
    assert {"loss", "ce", "acc", "entropy", "top_attention"} <= set(terms)
    a = out.attention.flatten(1)
    entropy = float(-(a * a.log()).sum(1).mean().detach())
    assert terms["entropy"] == pytest.approx(entropy, rel=1e-5)
    assert terms["loss"] == pytest.approx(terms["ce"] - 0.01 * entropy, rel=1e-5)
    total.backward()
    assert model.attention.net[0].weight.grad.abs().sum() > 0  # the attention learns


@pytest.mark.parametrize(
    "settings, name",
    [
        ({"n_patches": 0}, "n_patches"),
        ({"patch_px": 400, "dataset": {"size": 300}}, "patch_px"),
        ({"patch_px": 0}, "patch_px"),
        ({"view_size": 8, "n_patches": 5}, "n_patches"),  # 2 x 2 positions
        ({"view_size": 2}, "view_size"),
        ({"crop_encoder": "vgg"}, "crop_encoder"),
        ({"n_saccades": 3}, "n_saccades"),
    ],
)
def test_a_bad_setting_is_named(settings, name):
    with pytest.raises(ValueError, match=name):
        create_model("ats", {"n_classes": 10} | settings)


@pytest.mark.slow  # trains
def test_one_training_step_through_the_cli_then_load_and_evaluate(tmp_path):
    out = tmp_path / "ats"
    cmd = [sys.executable, "-m", "saccade.train", "--model", "ats", "--dataset", "megapixel"]
    cmd += ["--task", "majority", "--size", "300", "--view-size", "36", "--n-patches", "3"]
    cmd += ["--patch-px", "40", "--steps", "1", "--batch-size", "4", "--train-length", "4"]
    cmd += ["--val-n", "4", "--test-n", "4", "--workers", "0", "--reader", str(READER)]
    cmd += ["--freeze", "crop_encoder,classifier", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["steps"] == 1

    model = load(out)
    assert isinstance(model, ATS) and not model.training
    c = model.config
    assert (c.patch_px, c.n_patches, c.proxy_size, c.dataset["size"]) == (40, 3, 36, 300)
    assert c.min_scale == pytest.approx(40 / 300)
    reader = load_file(str(READER) + ".safetensors")
    for k, v in model.crop_encoder.state_dict().items():  # the reader, loaded and frozen
        if "num_batches" not in k:
            assert torch.equal(reader[f"crop_encoder.{k}"], v), k

    report, rows = tmp_path / "eval.json", tmp_path / "rows.csv"
    evaluate_main(
        [str(out), "--n", "6", "--noise", "0", "0.1", "--json", str(report)]
        + ["--predictions", str(rows)]
    )
    result = json.loads(report.read_text())
    assert result["model"] == "ats" and result["policy"] is None and result["n"] == 6
    assert set(result["noise"]) == {"0.0", "0.1"} and result["sigma"] is None
    # evaluate's answer on each of the first 6 clean test canvases is predict's on that canvas,
    # and its accuracy is theirs against the canvases' own labels
    test = saccade.make_dataset("megapixel", split="test", size=300, length=6)
    with rows.open() as f:
        said = list(csv.DictReader(f))
    assert [int(r["index"]) for r in said] == list(range(6))
    names = model.config.class_names
    right = []
    for row in said:
        sample = test[int(row["index"])]
        pred = saccade.predict(model, sample["image"])
        assert pred.class_name == row["prediction"], row
        assert row["label"] == names[sample["label"]]
        right.append(pred.class_name == names[sample["label"]])
    assert result["accuracy"] == pytest.approx(np.mean(right))
