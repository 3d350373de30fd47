"""``saccade.evaluate``: accuracy per saccade and noise level, localisation, JSON and CLI.

Every test uses a tiny untrained model (cluttered/single, 3 saccades, 8-pixel crops) and a
few test images, so the whole file runs in seconds.
"""

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import saccade
from saccade.data import dataset_from_spec, make_dataset
from saccade.data.cluttered import Cluttered
from saccade.evaluate.cli import main
from saccade.evaluate.loop import check_dataset, evaluate, evaluation_dataset
from saccade.evaluate.report import format_report
from saccade.looked_at import COVER_FRACTION
from saccade.train.config import TrainConfig
from saccade.train.loop import collate, model_config

ROOT = Path(__file__).resolve().parents[1]
T = 3  # the tiny model's training number of saccades


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny untrained checkpoint on disk (weights + JSON)."""
    train_set = make_dataset("cluttered", task="single", split="train", seed=0, length=100)
    # k = 24: a 30-pixel crop resolves a 20-pixel digit in 16 samples (the looked-at rule needs 12)
    settings = TrainConfig.from_settings(task="single", crop_size=24, n_saccades=T)
    config = model_config(settings, train_set)
    config = dataclasses.replace(config, hidden=16, features=16)
    torch.manual_seed(0)
    model = saccade.VariationalSaccader(config).eval()
    # Untrained, the posterior's cell head is zero (the saliency alone picks the cell, the
    # same at every step); random weights let the recurrent state and the map of seen cells
    # move the crops, so that predictions differ between steps.
    torch.nn.init.normal_(model.posterior.cell_head.weight, std=1.0)
    model.posterior.w_sal.data.zero_()
    # Untrained, every image gets the same class (the logits' mean dominates). Centring the
    # logits on a few training images makes the class depend on the image and the step, so
    # that comparisons of predictions below are sharp.
    last = model.classifier.head[-1]
    inputs = []
    hook = last.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    batch = collate([train_set[i] for i in range(32)])
    with torch.no_grad():
        model(batch["image"], batch["proxy"])
        hook.remove()
        last.bias.copy_(-last.weight @ torch.cat(inputs).reshape(-1, last.in_features).mean(0))
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    saccade.save(model, path)
    return path


@pytest.fixture(scope="module")
def model(ckpt):
    return saccade.load(ckpt)


def relabelled(labels: list[int]) -> Cluttered:
    """The tiny model's test split (first ``len(labels)`` images) with the labels replaced:
    with labels set to some reference's predictions, agreement is exactly measurable."""

    class Relabelled(Cluttered):
        def __getitem__(self, index: int) -> dict:
            return super().__getitem__(index) | {"label": labels[index]}

    return Relabelled(task="single", split="test", seed=0, length=len(labels))


def test_json_schema_and_headline(model):
    r = evaluate(model, n=8, noise_levels=[0.2, 0.1], localisation=True)
    assert {
        "model",
        "dataset",
        "task",
        "size",
        "variance",
        "n",
        "n_saccades",
        "model_saccades",
        "sample",
        "seed",
        "accuracy",
        "per_saccade",
        "noise",
        "localisation",
    } <= set(r)
    assert (r["model"], r["dataset"], r["task"], r["size"]) == ("vs", "cluttered", "single", 100)
    assert (r["variance"], r["n"], r["n_saccades"], r["sample"]) == ("learnt", 8, T, False)
    assert list(r["noise"]) == ["0.0", "0.1", "0.2"]  # sorted, no-noise level added
    assert all(len(v) == T for v in r["noise"].values())
    assert r["per_saccade"] == r["noise"]["0.0"]
    assert r["accuracy"] == r["per_saccade"][-1]
    for v in r["noise"].values():  # fractions of 8 images
        assert np.allclose(np.array(v) * 8, np.round(np.array(v) * 8))
    loc = r["localisation"]
    assert loc["min_overlap"] == COVER_FRACTION and loc["digits"] == 8  # one digit per image
    assert list(loc["noise"]) == ["0.0", "0.1", "0.2"]
    assert loc["per_saccade"] == loc["noise"]["0.0"] and loc["covered"] == loc["per_saccade"][-1]
    assert all(np.all(np.diff(v) >= 0) for v in loc["noise"].values())  # cumulative
    json.dumps(r)  # plain JSON types


def test_accuracy_agrees_with_predict(model):
    n = 8
    test_set = evaluation_dataset(model)
    samples = [test_set[i] for i in range(n)]
    preds = [saccade.predict(model, s["image"]).probs.argmax(-1) for s in samples]  # (T,) each
    preds = np.stack(preds, 1)  # (T, n)
    labels = np.array([s["label"] for s in samples])
    # the premise of a sharp test: classes vary over images and over steps
    assert len(set(preds[-1])) > 1 and (preds != preds[-1]).any()
    assert evaluate(model, n=n, noise_levels=[])["per_saccade"] == pytest.approx(
        (preds == labels).mean(1).tolist(), abs=1e-12
    )
    # An untrained model is near chance; with the labels set to predict's final classes the
    # comparison is sharp: 100% at step T, and the agreement of earlier steps with it.
    r = evaluate(model, n=n, noise_levels=[], dataset=relabelled(preds[-1].tolist()))
    assert r["per_saccade"][-1] == 1.0
    assert r["per_saccade"] == pytest.approx((preds == preds[-1]).mean(1).tolist(), abs=1e-12)
    # the headline accuracy stays at the model's own T when fewer or more saccades are asked
    for steps in (2, 5):
        other = evaluate(
            model, n=n, noise_levels=[], dataset=relabelled(preds[-1].tolist()), n_saccades=steps
        )
        assert other["accuracy"] == 1.0 and len(other["per_saccade"]) == steps
        assert other["per_saccade"][:T] == r["per_saccade"][:steps]
        assert other["per_saccade"][-1] < 1.0, "premise: step 2 or 5 differs from step 3"


def test_noisy_accuracy_agrees_with_the_noisy_dataset(model):
    """Level 0.4 must see exactly the proxies of the test split rebuilt with proxy_noise=0.4."""
    n = 8
    noisy = dataset_from_spec(
        model.config.dataset, split="test", seed=0, proxy_noise=0.4, length=None
    )
    samples = [noisy[i] for i in range(n)]
    with torch.no_grad():
        trace = model(
            np.stack([s["image"] for s in samples]),
            torch.from_numpy(np.stack([s["proxy"] for s in samples])),
        )
    preds = trace.logits.argmax(-1).numpy()  # (T, n)
    r = evaluate(model, n=n, noise_levels=[0.4], dataset=relabelled(preds[-1].tolist()))
    assert r["noise"]["0.4"] == pytest.approx((preds == preds[-1]).mean(1).tolist(), abs=1e-12)
    clean = [saccade.predict(model, s["image"]).probs.argmax(-1) for s in samples]
    clean = np.stack(clean, 1)
    assert (clean != preds).any()  # the premise: the noise changes some predictions
    assert r["noise"]["0.0"] == pytest.approx((clean == preds[-1]).mean(1).tolist(), abs=1e-12)


def test_localisation_with_crops_placed_on_and_off_the_digits(model, monkeypatch):
    """Crop 1 off the image, crop 2 centred on each image's digit, crop 3 off again:
    0% covered after one saccade, 100% after two and three, at every noise level."""
    n = 6
    test_set = evaluation_dataset(model)
    c = model.config
    boxes = np.stack([test_set[i]["boxes"][0] for i in range(n)])
    on_digit = torch.tensor(saccade.box_to_z(boxes, (100, 100), c.min_scale, c.max_scale))
    on_digit[:, 0] = 1.0  # the largest crop: 30 px, wider than any 28 px digit
    off_image = torch.tensor([[1.0, 5.0, 5.0]]).expand(n, 3)

    def placed(*args, **kwargs):
        return lambda t, mode, seen, saliency: torch.cat(
            [on_digit[:, :1], (on_digit if t == 1 else off_image)[:, 1:]], 1
        ).to(mode)

    monkeypatch.setattr(saccade.evaluate.loop, "make_policy", placed)
    r = evaluate(model, n=n, noise_levels=[0.4], localisation=True, batch_size=n)
    loc = r["localisation"]
    assert loc["digits"] == n
    assert loc["noise"] == {"0.0": [0.0, 1.0, 1.0], "0.4": [0.0, 1.0, 1.0]}
    assert loc["covered"] == 1.0
    # 12-pixel crops centred on the digits hold half of the narrow ink boxes only
    monkeypatch.setattr(model.config, "min_scale", 0.12)
    on_digit[:, 0] = -1.0
    small = evaluate(model, n=n, noise_levels=[], localisation=True, batch_size=n)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    inside = np.minimum(width, 12) * np.minimum(height, 12)  # the crop shares the box's centre
    expected = float(np.mean(inside >= 0.5 * width * height))
    assert 0.0 < expected < 1.0  # the premise: some digits are covered, some are not
    assert small["localisation"]["per_saccade"] == pytest.approx([0.0, expected, expected])


def test_sampling_is_reproducible(model):
    a = evaluate(model, n=4, noise_levels=[], localisation=True, sample=True, seed=3)
    b = evaluate(model, n=4, noise_levels=[], localisation=True, sample=True, seed=3)
    assert a["sample"] is True and a["seed"] == 3
    assert a["per_saccade"] == b["per_saccade"] and a["localisation"] == b["localisation"]


def test_full_size_and_mismatched_datasets(model):
    big = evaluation_dataset(model, full_size=200)
    assert (big.size, big.side, big.split, big.proxy_noise) == (100, 200, "test", 0.0)
    r = evaluate(model, n=2, noise_levels=[], dataset=big, localisation=True)
    assert r["size"] == 200 and r["localisation"]["digits"] == 2
    with pytest.raises(ValueError, match="10 classes but dataset cluttered/sum has 19"):
        check_dataset(model, make_dataset("cluttered", task="sum", split="test"))
    with pytest.raises(ValueError, match="name='cluttered', the dataset has name='megapixel'"):
        check_dataset(model, make_dataset("megapixel", split="test", size=300, proxy_size=32))
    with pytest.raises(ValueError, match="size=100, the dataset has size=60"):
        check_dataset(model, make_dataset("cluttered", task="single", split="test", size=60))
    with pytest.raises(ValueError, match="32-pixel proxies"):
        check_dataset(model, make_dataset("cluttered", task="single", proxy_size=16))
    with pytest.raises(ValueError, match="full_size=50 must be at least size=100"):
        evaluation_dataset(model, full_size=50)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n": 0}, "n=0 must be an integer >= 1"),
        ({"n": 2.5}, "n=2.5 must be an integer >= 1"),
        ({"noise_levels": [0.1, 1.5]}, "noise level 1.5 must be a number in"),
        ({"noise_levels": [float("nan")]}, "noise level nan"),
        ({"n_saccades": 0}, "n_saccades=0 must be in"),
        ({"n_saccades": 33}, "n_saccades=33 must be in"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_bad_arguments_raise_value_errors(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(model, **kwargs)


def run_main(argv: list[str]) -> str:
    """``main(argv)`` must exit with a one-line ``error: ...``; returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_cli_errors_are_one_line(ckpt, tmp_path):
    assert "n=0" in run_main([str(ckpt), "--n", "0"])
    assert "noise level 1.5" in run_main([str(ckpt), "--noise", "0", "1.5"])
    assert "n_saccades=40" in run_main([str(ckpt), "--saccades", "40"])
    assert "does not exist" in run_main([str(tmp_path / "missing")])
    assert "full_size=10" in run_main([str(ckpt), "--full-size", "10"])
    bad = tmp_path / "bad"
    for suffix in (".json", ".safetensors"):
        src = ckpt.with_name(ckpt.name + suffix)
        (tmp_path / f"bad{suffix}").write_bytes(src.read_bytes())
    weights = tmp_path / "bad.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    assert "bad.safetensors are truncated or corrupt" in run_main([str(bad)])
    (tmp_path / "bad.json").write_text("{not json")
    assert "bad.json is not valid JSON" in run_main([str(bad)])


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("--localisation", "--noise", "--saccades", "--sample", "50%", "--json"):
        assert phrase in text


@pytest.mark.slow
def test_cli_end_to_end(ckpt, model, tmp_path):
    out = tmp_path / "out" / "eval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "saccade.evaluate", str(ckpt), "--n", "16", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["checkpoint"] == str(ckpt) and data["n"] == 16
    assert list(data["noise"]) == ["0.0", "0.1", "0.2", "0.4"]  # the default levels
    assert data["accuracy"] == data["noise"]["0.0"][T - 1]
    # the same numbers as the function, and the table prints them
    expected = evaluate(model, n=16)
    assert data["noise"] == expected["noise"]
    table = format_report(expected)
    assert table in proc.stdout
    lines = proc.stdout.splitlines()
    assert "| proxy noise | 1 | 2 | 3 (trained) |" in lines
    row = "| 0.4 | " + " | ".join(f"{v:.4f}" for v in data["noise"]["0.4"]) + " |"
    assert row in lines
    assert "localisation" not in data


def _cuda_check():
    spec = importlib.util.spec_from_file_location("cuda_check", ROOT / "scripts" / "cuda_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_cuda_check_script_runs_and_names_a_mismatch():
    """scripts/cuda_check.py (run on a GPU machine: docs/testing.md) compares a shipped
    checkpoint on the CPU with itself here, without gradio; without CUDA, ``--device cuda``
    says so and exits 2; a class that flips or a difference above ``--atol`` is named."""
    script = ROOT / "scripts" / "cuda_check.py"
    ckpt = ROOT / "checkpoints" / "cluttered-sum-learnt.json"
    code = (
        "import runpy, sys; sys.modules['gradio'] = None; "  # importing gradio would fail
        f"sys.argv = ['cuda_check', '--device', 'cpu', '--n', '2', {str(ckpt)!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "cluttered-sum-learnt: same on 2 images" in proc.stdout
    if not torch.cuda.is_available():
        proc = subprocess.run(
            [sys.executable, str(script), "--device", "cuda", str(ckpt)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and "CUDA is not available" in proc.stderr, proc.stderr
    check = _cuda_check()
    cpu = {"label": np.array([1, 2, 3]), "probs": np.zeros((3, 2, 4)), "z": np.zeros((3, 2, 3))}
    cpu["sigma"] = np.zeros(0)  # a model without sigma: not compared
    same = {k: v.copy() for k, v in cpu.items()}
    assert check.compare("m", cpu, same, atol=1e-3) == []
    dev = same | {"label": np.array([1, 0, 3]), "z": cpu["z"] + np.eye(3)[None, :2] * 0.01}
    problems = check.compare("m", cpu, dev, atol=1e-3)
    assert len(problems) == 2, problems
    assert "class differs on 1 of 3 images" in problems[0] and "image [1]" in problems[0]
    assert "z differs by up to 0.01" in problems[1]


def _digit_and_stroke() -> tuple[np.ndarray, np.ndarray]:
    """A 100² image: a digit (its box given) with centre (20, 20), in cell (0, 0) of a 4x4
    grid; a stroke with centre (74.5, 70.5), in cell (2, 2); a speck too small to be a blob."""
    image = np.zeros((100, 100), np.uint8)
    image[10:30, 10:30] = 255
    image[70:72, 55:95] = 255
    image[50, 50] = 255
    return image, np.array([[10, 10, 30, 30]], np.float32)


def test_blob_cells_tell_digit_cells_from_distractor_cells():
    from saccade.evaluate.metrics import blob_cells, ink_blobs

    image, boxes = _digit_and_stroke()
    centres, is_digit = ink_blobs(image, boxes)
    assert len(centres) == 2 and is_digit.tolist() == [True, False]  # the speck is no blob
    digit, other = blob_cells(image, boxes, 4)
    assert digit.sum() == 1 and digit[0, 0]
    assert other.sum() == 1 and other[2, 2]


def test_ranking_auroc_follows_where_the_first_step_puts_its_mass():
    from types import SimpleNamespace

    from saccade.evaluate.loop import LevelTally

    image, boxes = _digit_and_stroke()
    config = SimpleNamespace(n_saccades=1, min_scale=0.1, max_scale=0.3, crop_size=16)
    results = {}
    for favoured, cell in (("digit", (0, 0)), ("stroke", (2, 2))):
        pi = torch.full((1, 1, 4, 4), 0.01)
        pi[(0, 0, *cell)] = 0.5
        trace = SimpleNamespace(
            logits=torch.zeros(1, 1, 10), z=torch.zeros(1, 1, 3), sigma=None, cell_probs=pi
        )
        tally = LevelTally(config, 1, 1, localisation=True, crop_sides=False)
        tally.update(trace, np.array([0]), [boxes], [(100, 100)], [image])
        results[favoured] = tally.result()["ranking"]["auroc"]
    assert results == {"digit": 1.0, "stroke": 0.0}


def test_centres_inside_says_where_the_sampled_crops_land():
    """``centres_inside``: the share of crop centres inside the image. At the mode every
    centre is a cell centre plus at most half a cell; samples of a σ 400 times the image
    leave it, and ``max_sigma`` keeps them in."""
    from tests.helpers import small_model

    def pushed(**cfg):
        model = small_model(task="single", variance="learnt", seed=1, **cfg)
        with torch.no_grad():
            model.posterior.cell_head.bias[3:] = np.log(400.0)
        return model

    wild, bounded = pushed(), pushed(max_sigma=0.05)
    at_mode = evaluate(wild, n=16, noise_levels=[0.1], localisation=False)
    assert at_mode["centres_inside"] == {"0.0": 1.0, "0.1": 1.0}
    sampled = evaluate(wild, n=16, noise_levels=[], localisation=False, sample=True)
    assert sampled["centres_inside"]["0.0"] < 0.1
    kept = evaluate(bounded, n=16, noise_levels=[], localisation=False, sample=True)
    assert kept["centres_inside"]["0.0"] > 0.9
