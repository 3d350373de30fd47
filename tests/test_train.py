"""Training: real optimizer steps, checkpoints every epoch, exact resume, and 2-process DDP."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import saccade
from saccade.train.cli import parse_args
from saccade.train.config import TrainConfig
from saccade.train.loop import fit

ROOT = Path(__file__).resolve().parents[1]


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(
        task="single",
        train_length=64,
        batch_size=32,
        epochs=2,
        val_n=32,
        test_n=32,
        workers=0,
        warmup=2,
        log_every=1,
        out=str(tmp_path / "run" / "m"),
    )
    return TrainConfig.from_settings(**(base | kw))


@pytest.mark.slow
def test_fit_writes_checkpoint_metrics_and_calls_back(tmp_path):
    events = []
    result = fit(tiny(tmp_path), callback=events.append)
    assert result["steps"] == 4
    model = saccade.load(tmp_path / "run" / "m")
    assert model.meta["epochs_done"] == 2 and model.meta["test_accuracy"] is not None
    assert model.meta["train"]["task"] == "single" and model.meta["size"] == 100
    lines = [
        json.loads(x) for x in (tmp_path / "run" / "m.metrics.jsonl").read_text().split("\n") if x
    ]
    steps = [e for e in lines if "loss" in e]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert {"ce", "recon", "kl", "train_acc", "lr"} <= set(steps[0])
    assert [e["epoch"] for e in lines if "val_acc" in e] == [1, 2]
    assert events == lines  # the callback saw every logged event
    assert not list((tmp_path / "run").glob("*.tmp*"))  # atomic writes left nothing behind


@pytest.mark.slow
def test_resume_is_exact(tmp_path):
    straight = fit(tiny(tmp_path / "a"))["model"].state_dict()

    class Stop(Exception):
        pass

    def stop_after_first_epoch(event):
        if event.get("epoch") == 1 and "val_acc" in event:
            raise Stop

    cfg = tiny(tmp_path / "b")
    with pytest.raises(Stop):
        fit(cfg, callback=stop_after_first_epoch)
    assert saccade.load(cfg.out).meta["epochs_done"] == 1
    resumed = fit(cfg, resume=True)["model"].state_dict()
    for k, v in straight.items():
        assert torch.equal(v, resumed[k]), k


@pytest.mark.slow
def test_resume_refuses_other_settings(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    fit(cfg)
    with pytest.raises(ValueError, match="other settings"):
        fit(tiny(tmp_path, epochs=2, task="sum"), resume=True)


def test_cli_help_and_bad_values(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert "--variance" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse_args(["--epochs", "0"])
    assert "epochs=0" in capsys.readouterr().err
    cfg, resume = parse_args(["--task", "id", "--variance", "fixed", "--steps", "3"])
    assert (cfg.task, cfg.model_args["variance"], cfg.steps, resume) == ("id", "fixed", 3, False)


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import torch
    from safetensors.torch import save_file
    from saccade.train import TrainConfig, fit
    out = sys.argv[1]
    cfg = TrainConfig(task="single", train_length=64, batch_size=16, epochs=1, val_n=16,
                      test_n=16, workers=0, warmup=1, out=out + "/m")
    model = fit(cfg)["model"]
    rank = os.environ["RANK"]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.st")
    """
)


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path, free_port):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        str(script),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_file(tmp_path / "rank0.st"), load_file(tmp_path / "rank1.st")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training moved the weights (2 ranks x 2 steps of 16)
    fresh = saccade.load(tmp_path / "m")
    assert fresh.meta["steps_done"] == 2


def megapixel_stages(runs: Path) -> dict[str, list[str]]:
    """The train flags of each stage of scripts/megapixel.sh, in order (its DRY_RUN mode; it
    makes the folder ``runs``, so not the repository's runs/)."""
    import shlex

    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "megapixel.sh")],
        env={**os.environ, "DRY_RUN": "1", "RUNS": str(runs)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stages = [shlex.split(line) for line in out.splitlines() if line.strip()]
    return {s[0]: s[1:] for s in stages}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["megapixel-majority-learnt", "megapixel-majority-fixed"])
def test_one_step_of_the_shipped_megapixel_stages(tmp_path, name):
    stages = megapixel_stages(tmp_path / "runs")
    assert list(stages) == [
        "megapixel-distil",
        "megapixel-distil-sharp",
        "megapixel-distil-more",
        "megapixel-majority-learnt",
        "megapixel-majority-fixed",
    ]
    argv = list(stages[name])
    if "--init" in argv:  # the previous stage's weights: not needed for one step
        i = argv.index("--init")
        del argv[i : i + 2]
    argv += ["--steps", "1", "--batch-size", "2", "--train-length", "2", "--val-n", "2"]
    argv += ["--test-n", "0", "--workers", "0", "--out", str(tmp_path / "mp")]
    cfg, _ = parse_args(argv)
    assert (cfg.dataset, cfg.task, cfg.size) == ("megapixel", "majority", 1500)
    assert cfg.model_args["n_saccades"] == 10
    # the reader stays as it was trained, and the proxy encoder as the distillation left it
    assert cfg.freeze == "crop_encoder,classifier,proxy_encoder"
    result = fit(cfg)
    model = result["model"]
    c = model.config
    assert result["steps"] == 1
    assert (c.proxy_size, c.where_grid, c.pooling) == (375, 45, "evidence")
    assert c.find_candidates > 0 and c.find_power == 3
    # frozen: the reader's weights and its BatchNorm statistics as trained; and the proxy
    # encoder's, here untrained, which one step left as they were
    assert not any(p.requires_grad for p in model.proxy_encoder.parameters())
    reader = load_file(str(ROOT / "checkpoints" / "readers" / "megapixel.safetensors"))
    for k, v in model.crop_encoder.state_dict().items():
        if "num_batches" not in k:
            assert torch.equal(reader[f"crop_encoder.{k}"], v), k
    # a crop holds a whole 28 px digit (oracle 99.9% at 50 px; 96.6% at the old 30 px floor)
    assert c.min_scale * 1500 >= 40 and c.max_scale * 1500 <= 60
    assert c.max_sigma is not None and c.max_sigma <= 0.05  # samples stay near the mode
    # a flag given explicitly wins over the preset
    cfg, _ = parse_args(["--preset", "megapixel", "--n-saccades", "6"])
    assert (cfg.model_args["n_saccades"], cfg.model_args["where_grid"], cfg.dataset) == (
        6,
        45,
        "megapixel",
    )
    # the checkpoint records the configuration and its command
    meta = json.loads((tmp_path / "mp.json").read_text())
    assert meta["config"]["where_grid"] == 45 and meta["train"]["n_saccades"] == c.n_saccades


def test_compute_threads_leave_a_core_to_each_worker(monkeypatch):
    from saccade.train.loop import compute_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert compute_threads(1, cores=2) == 1 and compute_threads(0, cores=2) == 2
    assert compute_threads(4, cores=16) == 12 and compute_threads(8, cores=4) == 1


@pytest.mark.slow
def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from saccade.models.vs import VariationalSaccader

    real_loss = VariationalSaccader.loss
    calls = []

    def loss_turning_nan(self, trace, labels, proxy, weights=None):
        total, terms = real_loss(self, trace, labels, proxy, weights)
        calls.append(1)
        if len(calls) == 3:  # the first step of epoch 2
            total = total * float("nan")
            terms = {**terms, "loss": float("nan")}
        return total, terms

    monkeypatch.setattr(VariationalSaccader, "loss", loss_turning_nan)
    cfg = tiny(tmp_path)
    with pytest.raises(ValueError) as err:
        fit(cfg, callback=lambda e: None)
    message = str(err.value)
    assert "the loss became nan at step 3 (epoch 2)" in message
    assert f"the checkpoint of epoch 1 in {cfg.out} is kept" in message and "--lr" in message
    kept = saccade.load(cfg.out)
    assert kept.meta["epochs_done"] == 1 and kept.meta["steps_done"] == 2
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    # from the command line: one line naming the problem, no traceback
    calls.clear()
    with pytest.raises(SystemExit, match="error: the loss became nan at step 3"):
        from saccade.train.cli import main

        main(
            ["--task", "single", "--train-length", "64", "--batch-size", "32", "--epochs", "2"]
            + ["--val-n", "32", "--test-n", "32", "--workers", "0", "--out", str(tmp_path / "c")]
        )


def test_first_level_is_zero_for_full_image_baselines():
    from saccade.models.registry import create_model
    from saccade.train.loop import first_level_for

    proxy_model = create_model("resnet18-proxy", {"n_classes": 10})
    assert first_level_for(proxy_model, 8192) == 0
    vs = saccade.models.create_model("vs", {"n_classes": 10, "min_scale": 0.15, "crop_size": 32})
    assert first_level_for(vs, 8192) == 5  # 0.15 * 8192 / 32 = 38.4 samples apart


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_and_state_of_two_epochs(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    fit(cfg, callback=lambda e: None)
    state = Path(cfg.out + ".state.json")
    data = json.loads(state.read_text())
    state.write_text(json.dumps(data | {"step": data["step"] - 1}))  # as if killed mid-save
    with pytest.raises(
        ValueError, match=r"\(step 2\) and its training state .* \(step 1\) disagree"
    ):
        fit(tiny(tmp_path, epochs=2), callback=lambda e: None, resume=True)


@pytest.mark.slow
def test_cli_names_a_write_failure_without_a_traceback(tmp_path, monkeypatch):
    from saccade import checkpoint
    from saccade.train.cli import main

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save", full)
    argv = ["--task", "single", "--train-length", "32", "--batch-size", "32", "--epochs", "1"]
    argv += ["--val-n", "8", "--test-n", "0", "--workers", "0", "--out", str(tmp_path / "m")]
    with pytest.raises(SystemExit, match="error: could not write the run's files .*No space left"):
        main(argv)


def test_freeze_names_a_submodule_or_says_which_exist():
    from saccade.train.loop import freeze, train_mode
    from tests.helpers import small_model

    model = freeze(small_model(), "crop_encoder, classifier")
    assert not any(p.requires_grad for p in model.crop_encoder.parameters())
    assert all(p.requires_grad for p in model.posterior.parameters())
    train_mode(model, "crop_encoder,classifier")
    assert model.training and model.posterior.training and not model.crop_encoder.training
    with pytest.raises(ValueError, match=r"no submodule 'reader'; accepted: \[.*'crop_encoder'"):
        freeze(small_model(), "reader")


def test_each_setting_is_a_flag_typed_by_its_annotation(capsys):
    from saccade.models.registry import settings_of

    with pytest.raises(SystemExit):
        parse_args(["--model", "ram", "--help"])
    ram_help = capsys.readouterr().out
    assert "--glimpse-fraction" in ram_help and "--where-grid" not in ram_help
    cfg, _ = parse_args(
        ["--seen-init", "-8", "--crop-to-rnn", "yes", "--proxy-size", "40", "--max-saccades", "9"]
    )
    assert cfg.model_args["seen_init"] == -8.0 and cfg.model_args["crop_to_rnn"] is True
    assert cfg.proxy_size == 40 and cfg.model_args["max_saccades"] == 9
    # every hyperparameter of every model has its help, and no flag is declared twice
    run = {f.name for f in TrainConfig.run_fields()}
    for name in saccade.models.model_names():
        for f in settings_of(name):
            assert f.metadata.get("help") and f.name not in run, (name, f.name)
    for bad in (
        ["--crop-to-rnn", "maybe"],
        ["--pooling", "sum"],
        ["--model", "ram", "--pooling", "max"],
        ["--model", "bogus"],
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert "error: " in capsys.readouterr().err, bad  # argparse's message, no traceback
    with pytest.raises(ValueError, match=r"model 'resnet18-full' has no settings \['crop_size'\]"):
        TrainConfig.from_settings(model="resnet18-full", crop_size=12)


def test_a_preset_gives_another_model_the_settings_it_has():
    cfg, _ = parse_args(["--model", "resnet18-proxy", "--preset", "megapixel"])
    assert (cfg.dataset, cfg.proxy_size, cfg.lr) == ("megapixel", 375, 1e-3)
    assert cfg.model_args == {"grid": 12}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "checkpoints").glob("*.json")), ids=lambda p: p.stem
)
def test_a_shipped_checkpoints_train_block_gives_back_its_model_settings(path):
    meta = json.loads(path.read_text())
    cfg = TrainConfig.from_saved(meta["train"])
    assert cfg.model == meta["model"]
    config = saccade.models.model_class(cfg.model).config_class(**meta["config"])  # as loaded
    assert cfg.model_args == {k: getattr(config, k) for k in cfg.model_args}
    assert TrainConfig.from_settings(**cfg.settings()) == cfg


def test_a_setting_left_out_is_the_datasets_own_and_one_given_is_passed(tmp_path):
    """--size and --train-length default to None: the dataset's own side and length. Given,
    even at the value the generated data takes by default, they reach the dataset."""
    from saccade.train.loop import dataset_options

    folder = ["--dataset", "folder", "--root", str(tmp_path)]
    options, length = dataset_options(parse_args(folder)[0])
    assert "size" not in options and length is None  # its largest image, one pass
    options, length = dataset_options(
        parse_args(folder + ["--size", "100", "--train-length", "60000"])[0]
    )
    assert options["size"] == 100 and length == 60000
    options, _ = dataset_options(parse_args(["--dataset", "megapixel", "--task", "majority"])[0])
    assert "size" not in options  # the generator's 1500, not cluttered's 100
    assert saccade.make_dataset("megapixel", **options).size == 1500
    assert dataset_options(parse_args([])[0])[0] == {"task": "sum", "proxy_noise": 0.0}


def test_a_new_objective_trains_through_the_loop():
    """An objective is all a new training needs: a least-squares fit through ``Loop`` gets the
    loop's schedule, clip, logging and NaN check."""
    from saccade.train.loop import Loop, make_steps, train_one_epoch

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)

    def objective(batch):
        loss = ((model(batch["x"])[:, 0] - batch["y"]) ** 2).mean()
        return loss, {"loss": loss.item()}

    def batches(epoch):
        for i in range(0, 64, 16):
            yield {"x": x[i : i + 16], "y": y[i : i + 16]}

    events = []
    steps = make_steps(model.parameters(), 0.1, 0.0, total_steps=40, warmup=4)
    loop = Loop(steps, objective, batches, model, 40, epochs=10, log_every=4, log=events.append)
    first = train_one_epoch(loop, 0)
    for epoch in range(1, 10):
        last = train_one_epoch(loop, epoch)
    assert loop.step == 40 and last["stopped"] and last["samples"] == 64
    assert first["terms"]["loss"] > 0.5  # y's variance is about 5
    assert last["terms"]["loss"] < 0.1 * first["terms"]["loss"], (first, last)  # 5.0 -> 0.19
    assert [e["step"] for e in events] == list(range(4, 41, 4))
    assert events[-1]["lr"] == pytest.approx(0.1 * 0.05)  # decayed to 5%
    loop.objective = lambda batch: (torch.tensor(float("nan")), {"loss": float("nan")})
    before = model.weight.detach().clone()
    with pytest.raises(ValueError, match=r"the loss became nan at step 41 \(epoch 11\)"):
        train_one_epoch(loop, 10)
    assert torch.equal(model.weight, before)  # nothing was updated


def test_each_epoch_logs_the_posterior_sigma_per_saccade(tmp_path):
    """The per-epoch event (metrics log and checkpoint history) carries the validation σ of
    the crop centre after each saccade, beside the accuracy: what σ does over training."""
    import json

    from saccade.train.config import TrainConfig
    from saccade.train.loop import fit

    cfg = TrainConfig.from_settings(
        task="sum", crop_size=8, hidden=16, features=16, n_saccades=3, batch_size=8,
        steps=2, warmup=1, workers=0, val_n=8, test_n=0, out=str(tmp_path / "run"),
    )  # fmt: skip
    fit(cfg)
    events = [
        json.loads(line) for line in (tmp_path / "run.metrics.jsonl").read_text().splitlines()
    ]
    epoch = next(e for e in events if "val_acc" in e)
    sigma = epoch["val_sigma_per_saccade"]
    assert len(sigma) == 3 and all(0 < s < 2 for s in sigma)
    saved = json.loads((tmp_path / "run.json").read_text())["history"][-1]
    assert saved["val_sigma_per_saccade"] == sigma


def test_keep_best_ends_with_the_best_validated_epoch_chosen_off_the_test_canvases(tmp_path):
    """--keep best: the run ends with the weights of its best epoch by val_acc (a later,
    worse epoch does not overwrite them), says which in its JSON, and validates on canvases
    drawn from the training split, so that the test figure is not the one it chose by."""
    from saccade import checkpoint
    from saccade.train.loop import keep_best, run_epochs, setup

    cfg = tiny(tmp_path, epochs=3, keep="best", lr=5e-2)
    run = setup(cfg)
    assert (run.val_set.split, run.test_set.split) == ("train", "test")
    assert run.val_set.seed == cfg.seed + 1
    scores, weights = iter([0.5, 0.9, 0.7]), []

    def validate(run, done):  # the accuracies of three epochs, the best in the middle
        weights.append({k: v.clone() for k, v in run.model.state_dict().items()})
        return {"val_acc": next(scores)}

    run_epochs(run, validate=validate)
    assert keep_best(run) == 2
    saved = checkpoint.load(cfg.out)
    assert saved.meta["kept_epoch"] == 2
    assert [e["val_acc"] for e in saved.meta["history"]] == [0.5, 0.9, 0.7]
    for k, v in saved.state_dict().items():
        assert torch.equal(v, weights[1][k]), k
    assert any(not torch.equal(weights[1][k], weights[2][k]) for k in weights[1])
    with pytest.raises(ValueError, match="keep='best'.*folder"):
        TrainConfig.from_settings(dataset="folder", data_dir=str(tmp_path), keep="best")
