"""Faults injected for real (issue 11): a SIGKILL of a real training process, then --resume;
truly truncated and disagreeing checkpoints; a read-only folder; a full disk (ENOSPC)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import saccade
from saccade import app, checkpoint
from saccade.app import Look
from tests.helpers import TINY_TRAINING, Session, read_only

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
SMALL = ASSETS / "cluttered-sum-100-0.png"
SHIPPED = ROOT / "checkpoints" / "cluttered-sum-learnt"  # read only: copied, never changed


# ----------------------------------------------------------------------------- SIGKILL


def train_command(out: Path, resume: bool = False) -> list[str]:
    """A tiny ``python -m saccade.train`` run: 2 epochs of 24 steps."""
    args = [sys.executable, "-m", "saccade.train", "--task", "single", "--train-length", "384"]
    args += ["--batch-size", "16", "--epochs", "2", "--val-n", "16", "--test-n", "16"]
    args += ["--workers", "0", "--warmup", "2", "--log-every", "1", "--crop-size", "8"]
    return args + ["--out", str(out)] + (["--resume"] if resume else [])


def run_env() -> dict:
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path):
    straight, killed = tmp_path / "straight" / "m", tmp_path / "killed" / "m"
    done = subprocess.run(
        train_command(straight), env=run_env(), cwd=ROOT, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]

    proc = subprocess.Popen(
        train_command(killed),
        env=run_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = Path(f"{killed}.state.json")
    metrics = Path(f"{killed}.metrics.jsonl")
    deadline = time.monotonic() + 240
    try:
        # the first epoch's checkpoint and state are written, and the second epoch has begun
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file() and '"epoch": 2' in metrics.read_text():
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # killed in the middle of epoch 2: what is on disk is epoch 1's
    assert json.loads(state.read_text())["epoch"] == 0
    assert checkpoint.read_meta(killed)["epochs_done"] == 1
    steps_logged = [json.loads(x) for x in metrics.read_text().splitlines() if '"loss"' in x]
    assert 24 < steps_logged[-1]["step"] < 48

    # a save killed half-way leaves its temporary file (saccade.atomic): the resume removes it
    stale = killed.parent / "m.state.safetensors.tmp-99999-deadbeef"
    stale.write_bytes(b"half a state")
    resumed = subprocess.run(
        train_command(killed, resume=True),
        env=run_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(f"{straight}.safetensors"), load_file(f"{killed}.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert checkpoint.read_meta(killed)["epochs_done"] == 2
    # the run keeps one checkpoint and one resumable state, the last epoch's, not one per epoch
    names = ["m.json", "m.metrics.jsonl", "m.safetensors", "m.state.json", "m.state.safetensors"]
    assert sorted(p.name for p in killed.parent.iterdir()) == names
    assert sorted(p.name for p in straight.parent.iterdir()) == names


# ----------------------------------------------------------------------------- checkpoints


def broken_checkpoints(folder: Path) -> dict[str, str]:
    """Copies of a shipped checkpoint, each broken one way, in ``folder``; returns name ->
    the part of the refusal that names the file and the fault."""
    folder.mkdir(parents=True, exist_ok=True)
    weights, config = (Path(f"{SHIPPED}{s}") for s in (".safetensors", ".json"))

    def copy(name: str) -> tuple[Path, Path]:
        w, c = folder / f"{name}.safetensors", folder / f"{name}.json"
        shutil.copyfile(weights, w)
        shutil.copyfile(config, c)
        return w, c

    copy("good")
    w, _ = copy("cut-weights")
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])  # a truly truncated file
    w, _ = copy("cut-header")
    w.write_bytes(w.read_bytes()[:5])
    _, c = copy("cut-json")
    c.write_bytes(c.read_bytes()[: c.stat().st_size // 2])
    _, c = copy("disagree")  # the JSON says a wider model than the weights hold
    meta = json.loads(c.read_text())
    meta["config"]["hidden"] *= 2
    c.write_text(json.dumps(meta))
    w, c = copy("no-json")
    c.unlink()
    w, c = copy("no-weights")
    w.unlink()
    return {
        "cut-weights": "cut-weights.safetensors are truncated or corrupt",
        "cut-header": "cut-header.safetensors are truncated or corrupt",
        "cut-json": "cut-json.json is not valid JSON",
        "disagree": "disagree.safetensors do not match its config disagree.json",
        "no-json": "no-json.json does not exist",
        "no-weights": "no-weights.safetensors do not exist",
    }


def test_broken_checkpoints_are_refused_naming_the_file(tmp_path):
    expected = broken_checkpoints(tmp_path)
    for name, message in expected.items():
        with pytest.raises(ValueError, match=message.replace(".", r"\.")):
            saccade.load(tmp_path / name)
    assert saccade.load(tmp_path / "good").config.n_classes == 19
    found = dict(checkpoint.unusable_checkpoints(tmp_path))
    assert set(found) == set(expected)  # "good" is usable; .state files are not checkpoints
    for name, message in expected.items():
        assert message in found[name]


def test_the_app_starts_and_names_unusable_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    expected = broken_checkpoints(folder)
    the_app = app.App(folder, ASSETS, runs=tmp_path / "runs")
    demo = app.build_demo(the_app)  # starts: the first screen ran on the good checkpoint
    assert the_app.explore.first_screen().checkpoint == "good"
    assert [v for _, v in the_app.state.checkpoint_choices()] == ["good"]  # none of the broken
    text = the_app.state.unusable_markdown()
    for name, message in expected.items():
        assert f"- `{name}`: " in text and message in text
    assert str(tmp_path) not in text  # the server's paths stay private
    shown = [
        b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) == "explore-unusable"
    ]
    assert shown == [text]
    with pytest.raises(gr.Error, match="'cut-weights' is unusable: .*truncated or corrupt"):
        the_app.explore.run(Look(str(SMALL), "cut-weights"))
    assert the_app.explore.run(Look(str(SMALL), "good")).label  # and the good one runs
    # a checkpoint that breaks while the app runs is dropped from the lists at once
    (folder / "good.json").write_text("{")
    assert the_app.state.checkpoint_choices() == []
    assert "- `good`: " in the_app.state.unusable_markdown()


# ----------------------------------------------------------------------------- disks


def trainer(tmp_path: Path, runs: Path) -> app.App:
    shutil.copyfile(f"{SHIPPED}.json", tmp_path / "shipped.json")
    shutil.copyfile(f"{SHIPPED}.safetensors", tmp_path / "shipped.safetensors")
    return app.App(tmp_path, ASSETS, train_options=TINY_TRAINING, runs=runs)


def train_once(the_app: app.App, session: str = "alice"):
    return list(
        the_app.train.run("cluttered:single", 100, "learnt", 2, 1, 0, request=Session(session))
    )


@pytest.mark.slow
def test_read_only_runs_folder_is_a_message_not_a_crash(tmp_path):
    runs = tmp_path / "runs"
    the_app = trainer(tmp_path, runs)
    with read_only(runs):
        with pytest.raises(gr.Error, match=r"Cannot train: the server cannot write trained"):
            train_once(the_app)
    # the session's own folder read-only: training runs, its save fails, and the app says so
    with read_only(runs / "bob"):
        with pytest.raises(gr.Error, match=r"Training stopped: the server could not save"):
            train_once(the_app, "bob")
    assert the_app.explore.run(Look(str(SMALL), "shipped")).label  # and keeps serving


@pytest.mark.slow
def test_full_disk_while_training_is_a_message(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "save_file", full)  # the weights' write
    the_app = trainer(tmp_path, tmp_path / "runs")
    with pytest.raises(gr.Error) as err:
        train_once(the_app)
    assert "Training stopped: the server could not save" in err.value.message
    assert "(No space left on device)" in err.value.message
    assert not list((tmp_path / "runs").rglob("*.tmp*"))  # half-written files removed
    assert [m["name"] for m in the_app.state.list_checkpoints("alice")] == ["shipped"]
    monkeypatch.undo()
    *_, last = train_once(the_app)  # space again: the next run saves
    assert "Saved **cluttered-single-learnt-T2-" in last.status


def test_export_to_a_read_only_or_full_disk_is_a_message(tmp_path, monkeypatch):
    exports = tmp_path / "exports"
    the_app = app.App(ROOT / "checkpoints", ASSETS, runs=tmp_path / "runs", exports=exports)
    with read_only(exports):
        with pytest.raises(
            gr.Error,
            match=r"Cannot write the export: Permission denied|"
            r"Cannot write the export: Operation not permitted",
        ):
            the_app.explore.export(Look(str(SMALL), "cluttered-sum-learnt"))

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(gr.Error, match=r"Cannot write the export: No space left on device"):
        the_app.explore.export(Look(str(SMALL), "cluttered-sum-learnt"))
    monkeypatch.undo()
    gif, record = the_app.explore.export(Look(str(SMALL), "cluttered-sum-learnt"))
    assert Path(gif).stat().st_size > 0 and json.loads(Path(record).read_text())["checkpoint"]


@pytest.mark.slow
def test_delete_on_a_read_only_folder_says_what_was_kept(tmp_path):
    runs = tmp_path / "runs"
    the_app = trainer(tmp_path, runs)
    *_, last = train_once(the_app)
    name = last.checkpoint["value"]
    with read_only(runs / "alice"):
        status = the_app.train.delete_my_runs(request=Session("alice")).status
    assert status.startswith("Deleted 0 checkpoint(s)") and f"refused to delete 1: {name}" in status
    assert the_app.train.delete_my_runs(request=Session("alice")).status.startswith("Deleted 1 ")


def test_a_read_only_checkpoints_folder_serves(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(f"{SHIPPED}{suffix}", folder / f"shipped{suffix}")
    with read_only(folder):
        the_app = app.App(folder, ASSETS, runs=tmp_path / "runs")
        app.build_demo(the_app)
        label = the_app.explore.run(Look(str(SMALL), "shipped")).label
        assert (
            max(label, key=label.get)
            == saccade.predict(saccade.load(folder / "shipped"), SMALL).class_name
        )
    assert np.isfinite(list(label.values())).all()
