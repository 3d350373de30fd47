"""``python -m saccade.train.distil``: the reader's targets on real Megapixel MNIST canvases,
the where-network learning them, the command's checkpoint, an exact resume and errors; and
the recipes' stages on a fresh checkout (scripts/stages.sh)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import saccade
from saccade import checkpoint
from saccade.evaluate.metrics import auroc, blob_cells
from saccade.train.cli import parse_args
from saccade.train.distil import ReaderCrops, distil, main, read
from saccade.train.loop import setup
from saccade.train.objectives import FindTerm

ROOT = Path(__file__).resolve().parent.parent
READER = ROOT / "checkpoints" / "readers" / "megapixel"
FLAGS = ["--preset", "megapixel", "--reader", str(READER), "--workers", "0"]


@pytest.fixture(scope="module")
def megapixel_run(tmp_path_factory):
    """A fresh megapixel model with the shipped reader in, and 4 training canvases."""
    out = tmp_path_factory.mktemp("distil") / "m"
    cfg, _ = parse_args(FLAGS + ["--train-length", "4", "--out", str(out)])
    return setup(cfg)


@pytest.mark.slow
def test_the_readers_targets_rank_digit_cells_above_distractor_cells(megapixel_run):
    """What the stage teaches, read off real canvases: the reader's P(digit) at the brightest
    cells is higher where a digit is than where a noise stroke is (the boxes measure)."""
    run = megapixel_run
    data = ReaderCrops(run.train_set, run.model, candidates=256, side=45)
    g = run.model.config.where_grid
    scores, positive, digits_in = [], [], []
    for i in range(3):
        t, sample = data[i], run.train_set[i]
        assert t["proxy"].dtype == torch.uint8 and t["cells"].shape == (256,)
        assert t["crops"].shape == (256, 32, 32)
        assert np.allclose(t["proxy"].numpy() / 255, sample["proxy"], atol=1 / 255)
        found = np.zeros(g * g)
        found[t["cells"].numpy()] = read(run.model, t["crops"]).numpy()
        digit, other = (m.flatten() for m in blob_cells(sample["image"], sample["boxes"], g))
        digits_in.append(np.isin(np.flatnonzero(digit), t["cells"].numpy()).mean())
        scores += [found[digit], found[other]]
        positive += [np.ones(digit.sum(), bool), np.zeros(other.sum(), bool)]
    assert np.mean(digits_in) == 1.0  # every digit's cell is among the candidates
    assert auroc(np.concatenate(scores), np.concatenate(positive)) > 0.95


@pytest.mark.slow
def test_the_where_network_learns_the_targets(megapixel_run):
    """A few steps on one batch raise log π of the cells the reader found a digit in."""
    run = megapixel_run
    model = run.model
    data = ReaderCrops(run.train_set, model, candidates=64, side=45)
    batch = [data[i] for i in range(2)]
    proxy = torch.stack([b["proxy"] for b in batch]).float() / 255
    cells = torch.stack([b["cells"] for b in batch])
    found = torch.stack([read(model, b["crops"]) for b in batch])
    params = [*model.proxy_encoder.parameters(), *model.posterior.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    model.train()
    losses = []
    objective = FindTerm(model)
    for _ in range(15):
        loss, _ = objective({"proxy": proxy, "cells": cells, "found": found})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.slow
def test_the_command_writes_a_checkpoint_that_leaves_the_reader(tmp_path, capsys):
    out = tmp_path / "d"
    argv = FLAGS + ["--train-length", "8", "--batch-size", "4", "--val-n", "2", "--out", str(out)]
    main(argv + ["--epochs", "1", "--candidates", "32"])
    meta = json.loads((tmp_path / "d.json").read_text())
    assert meta["epochs_done"] == 1 and meta["finished"] is True and meta["steps_done"] == 2
    assert meta["command"].startswith("python -m saccade.train.distil --preset megapixel")
    assert meta["distil"]["candidates"] == 32 and 0 <= meta["history"][0]["ranking"] <= 1
    # the reader stayed as it was trained; the where-network moved
    model, reader = saccade.load(out), load_file(str(READER) + ".safetensors")
    for k, v in model.crop_encoder.state_dict().items():
        assert torch.equal(reader[f"crop_encoder.{k}"], v), k
    fresh = setup(parse_args(argv)[0]).model
    assert not torch.equal(fresh.posterior.conv.weight, model.posterior.conv.weight)
    # and the next stage takes it as --init
    cfg, _ = parse_args(FLAGS + ["--init", str(out), "--out", str(tmp_path / "next")])
    assert setup(cfg).init_from["tensors_copied"] > 0


@pytest.mark.slow
def test_a_stage_stopped_after_an_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    """Stopped once its first epoch is saved, then ``--resume``d: the weights and each
    epoch's figures are those of the run that was not stopped (the proxy noise draws from
    the RNG the state saved)."""
    argv = FLAGS + ["--train-length", "8", "--batch-size", "4", "--val-n", "2", "--epochs", "2"]
    straight, _ = parse_args(argv + ["--out", str(tmp_path / "straight")])
    assert straight.noise_aug > 0
    distil(straight, candidates=32)

    class Stop(Exception):
        pass

    def stop_after_the_first_epoch(event):
        if event.get("epoch") == 1 and "ranking" in event:
            raise Stop

    cfg, _ = parse_args(argv + ["--out", str(tmp_path / "stopped")])
    with pytest.raises(Stop):
        distil(cfg, candidates=32, callback=stop_after_the_first_epoch)
    meta = checkpoint.read_meta(cfg.out)
    assert meta["epochs_done"] == 1 and meta["finished"] is False
    distil(cfg, candidates=32, resume=True)
    a, b = load_file(f"{straight.out}.safetensors"), load_file(f"{cfg.out}.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    timing = ("epoch_s", "train_s")
    figures = [
        [
            {k: v for k, v in e.items() if k not in timing}
            for e in checkpoint.read_meta(p)["history"]
        ]
        for p in (straight.out, cfg.out)
    ]
    assert len(figures[0]) == 2 and figures[0] == figures[1]
    assert (
        checkpoint.read_meta(cfg.out)["distil"]["ranking_before"]
        == meta["distil"]["ranking_before"]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--candidates", "0"], "candidates=0 must be >= 1"),
        (["--target-side", "200"], "target_side=200.0 px"),
        (["--pooling", "mean"], "pooling 'evidence'"),
        (["--batch-size", "4"], "train_length=2 must be >= batch_size=4"),
    ],
)
def test_bad_flags_are_named(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(
            FLAGS
            + [
                "--train-length",
                "2",
                "--batch-size",
                "2",
                "--val-n",
                "1",
                "--out",
                str(tmp_path / "x"),
            ]
            + argv
        )
    assert message in capsys.readouterr().err + str(exit.value.code)


def _fake_trainer(folder: Path) -> Path:
    """A trainer for scripts/stages.sh that writes a finished checkpoint in no time and
    counts its calls."""
    script = folder / "fake_train.sh"
    script.write_text(
        '#!/usr/bin/env bash\nout=""\nwhile [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done\n'
        'echo run >> calls.txt\necho \'{"finished": true}\' > "$out.json"\n'
        'echo w > "$out.safetensors"\necho "{}" > "$out.metrics.jsonl"\n'
    )
    script.chmod(0o755)
    return script


def _stage(folder: Path, trainer: Path, flags: str) -> str:
    recipe = (
        f'set -euo pipefail\nRUNS=runs\nmkdir -p runs\nONLY=()\nsource "{ROOT}/scripts/stages.sh"\n'
        f'CMD="{trainer}" DEST=checkpoints/stages stage s1 {flags}\n'
    )
    proc = subprocess.run(
        ["bash", "-c", recipe], cwd=folder, capture_output=True, text=True, env=os.environ
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_committed_stage_is_done_on_a_fresh_checkout_and_rerun_when_its_flags_change(
    tmp_path,
):
    trainer = _fake_trainer(tmp_path)
    assert "s1: training" in _stage(tmp_path, trainer, "--lr 1")
    assert (tmp_path / "checkpoints/stages/s1.json").is_file()
    assert (tmp_path / "assets/logs/s1.stage").read_text().strip() == "--lr 1"
    subprocess.run(["rm", "-r", str(tmp_path / "runs")], check=True)  # a fresh checkout
    assert "s1: done" in _stage(tmp_path, trainer, "--lr 1")
    assert (tmp_path / "runs/s1.json").is_file()  # back for the stages that --init from it
    assert (tmp_path / "calls.txt").read_text().count("run") == 1
    subprocess.run(["rm", "-r", str(tmp_path / "runs")], check=True)
    assert "s1: training" in _stage(tmp_path, trainer, "--lr 2")  # another recipe
    assert (tmp_path / "calls.txt").read_text().count("run") == 2
