"""``python -m saccade.figures``: the CLI that writes the paper's comparison figures (the
figures themselves are ``saccade.viz``'s, tested in test_viz.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from saccade import figures, viz
from saccade.viz import poster


def test_cli_names_bad_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit, match="expected LABEL=METRICS_FILE"):
        figures.main(["--out", str(tmp_path), "--runs", "no-label"])
    with pytest.raises(SystemExit, match="nothere.json"):
        figures.main(["--out", str(tmp_path), "--eval", str(tmp_path / "nothere.json")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="error"):
        figures.main(["--out", str(tmp_path), "--eval", str(bad)])
    assert not list(tmp_path.glob("*.png"))


# ----------------------------------------------------------------------------- the poster

LEARNT = {0: [0.50, 0.80, 0.90, 0.96], 1: [0.60, 0.85, 0.93, 0.97], 2: [0.55, 0.70, 0.92, 0.95]}
FIXED = {0: [0.40, 0.70, 0.85, 0.90], 1: [0.45, 0.75, 0.80, 0.91], 2: [0.42, 0.72, 0.86, 0.92]}
NOISE = {"0": [0.3, 0.6, 0.8, 0.82, 0.83], "0.1": [0.3, 0.5, 0.7, 0.78, 0.8], "0.3": [0.2, 0.3]}


def write_log(path, val, test=None, at_noise=None):
    """A metrics.jsonl as python -m saccade.train writes it: step events, one event per
    epoch, the test accuracy last."""
    lines = []
    for epoch, acc in enumerate(val, start=1):
        lines.append({"step": 10 * epoch - 5, "epoch": epoch, "loss": 1.0, "train_acc": 0.1})
        event = {"epoch": epoch, "step": 10 * epoch, "val_acc": acc, "epoch_s": 1.0}
        if at_noise is not None:
            event["val_acc_train_noise"] = at_noise[epoch - 1]
        lines.append(event)
    if test is not None:
        lines.append({"test_accuracy": test, "test_n": 2000})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))


def poster_logs(folder, learnt=LEARNT, fixed=FIXED, tests=None):
    """Fake poster logs: learnt and fixed seeds (test accuracy: the last val + 0.001 unless
    given), and the noisy-proxy runs (clean val 0.9, at their noise NOISE's)."""
    folder.mkdir(exist_ok=True)
    for mode, seeds in (("learnt", learnt), ("fixed", fixed)):
        for seed, val in seeds.items():
            test = (tests or {}).get((mode, seed), val[-1] + 0.001)
            write_log(folder / f"poster-id-{mode}-2528-s{seed}.metrics.jsonl", val, test)
    for noise, val in NOISE.items():
        write_log(folder / f"poster-sum-noise-{noise}.metrics.jsonl", [0.9] * len(val), 0.5, val)
    (folder / "cluttered-id-learnt.metrics.jsonl").write_text("")  # not a poster run
    return folder


def test_poster_band_mean_and_table_are_the_logs_numbers(tmp_path):
    groups, noise = figures.poster_runs(poster_logs(tmp_path / "logs"))
    assert set(groups) == {"learnt", "fixed"} and len(groups["learnt"]) == 3
    assert list(noise) == ["noise 0", "noise 0.1", "noise 0.3"]  # by noise, not by name
    fig = viz.learnt_fixed_figure(groups)
    traces = {t.name: t for t in fig.data}
    for mode, seeds in (("learnt", LEARNT), ("fixed", FIXED)):
        per_epoch = np.array(list(seeds.values())).T  # (epochs, seeds)
        assert list(traces[f"{mode} min"].x) == [1, 2, 3, 4]
        assert list(traces[f"{mode} min"].y) == pytest.approx(100 * per_epoch.min(axis=1))
        assert list(traces[f"{mode} max"].y) == pytest.approx(100 * per_epoch.max(axis=1))
        assert traces[f"{mode} max"].fill == "tonexty"  # the band: filled down to the min
        mean = traces[f"{mode} (mean of 3 seeds)"]
        assert list(mean.y) == pytest.approx(100 * per_epoch.mean(axis=1))
        assert list(traces[f"{mode} seed 1"].y) == pytest.approx([100 * v for v in seeds[1]])

    rows = {r["run"]: r for r in poster.noise_rows(noise)}
    for noise_level, val in NOISE.items():
        row = rows[f"noise {noise_level}"]
        assert row["last_mean"] == pytest.approx(np.mean(val[-3:]))  # at its own noise
        assert row["final"] == val[-1] and row["best"] == max(val) and row["test"] == 0.5
    fig = viz.noisy_proxy_figure(noise)
    assert [list(t.y) for t in fig.data] == [
        pytest.approx([100 * v for v in val]) for val in NOISE.values()
    ]
    table = poster.noise_markdown(poster.noise_rows(noise))
    assert f"| noise 0.1 | 5 | {100 * np.mean(NOISE['0.1'][-3:]):.1f}% (last 3)" in table


def test_a_resumed_epoch_keeps_its_last_event(tmp_path):
    path = tmp_path / "poster-id-learnt-2528-s0.metrics.jsonl"
    write_log(path, [0.5, 0.6])
    with path.open("a") as f:  # epoch 2 again after a resume, then epoch 3 and the test
        for e in ({"epoch": 2, "val_acc": 0.7}, {"epoch": 3, "val_acc": 0.8}):
            f.write(json.dumps(e) + "\n")
        f.write(json.dumps({"test_accuracy": 0.81}) + "\n")
    events = figures.read_events(path)
    assert [e["val_acc"] for e in poster.epoch_events(events)] == [0.5, 0.7, 0.8]
    assert poster.test_accuracy(events) == 0.81


def test_the_verdict_claims_a_mode_only_beyond_the_seeds_spread(tmp_path):
    groups, _ = figures.poster_runs(poster_logs(tmp_path / "apart"))
    summary = poster.seed_summary(groups)
    learnt, fixed = summary["modes"]["learnt"], summary["modes"]["fixed"]
    tests = [v[-1] + 0.001 for v in LEARNT.values()]
    assert learnt["test"]["mean"] == pytest.approx(np.mean(tests))
    assert learnt["test"]["spread"] == pytest.approx(max(tests) - min(tests))
    assert learnt["final_val"]["sd"] == pytest.approx(np.std([0.96, 0.97, 0.95], ddof=1))
    assert [r["epoch_at_level"] for r in summary["seeds"][:3]] == [3, 3, 3]  # first >= 0.9
    assert fixed["epoch_at_level"] == pytest.approx((4 + 4 + 4) / 3)  # 0.85, 0.80, 0.86 < 0.9
    verdict = poster.learnt_fixed_verdict(summary)
    # learnt's test mean is 5.0 points above fixed's, the spread 2 points: a claim
    assert "learnt ends higher (test accuracy 5.0 points higher" in verdict
    assert "learnt converges faster" in verdict
    # the same curves, but the test accuracies overlap: no claim either way
    tests = {("learnt", 0): 0.90, ("learnt", 1): 0.93, ("learnt", 2): 0.95}
    tests |= {("fixed", 0): 0.91, ("fixed", 1): 0.94, ("fixed", 2): 0.92}
    groups, _ = figures.poster_runs(poster_logs(tmp_path / "close", tests=tests))
    verdict = poster.learnt_fixed_verdict(poster.seed_summary(groups))
    assert "neither ends higher beyond the seeds' spread" in verdict
    assert "learnt by 0.3 points, within the spread of 5.0" in verdict
    table = poster.learnt_fixed_markdown(poster.seed_summary(groups))
    assert "| fixed | 1 | 4 | 91.0% | 94.00% |" in table


def test_poster_needs_its_logs(tmp_path):
    with pytest.raises(SystemExit, match="no poster-"):
        figures.main(["--poster", "--logs", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="not a folder"):
        figures.main(["--poster", "--logs", str(tmp_path / "none"), "--out", str(tmp_path)])
    (tmp_path / "poster-sum-noise-0.metrics.jsonl").write_text('{"epoch": 1, "val_acc": 0.5}\nx')
    with pytest.raises(SystemExit, match="line 2: not JSON"):
        figures.main(["--poster", "--logs", str(tmp_path), "--out", str(tmp_path)])
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.slow
def test_poster_command_writes_both_figures_and_their_numbers(tmp_path):
    """python -m saccade.figures --poster, in a real process, on fake logs: PNG and HTML of
    both figures, and the summary the About tab reads (no checkpoints: no samples figure)."""
    logs, out = poster_logs(tmp_path / "logs"), tmp_path / "out"
    missing = str(tmp_path / "no-checkpoint")
    cmd = [sys.executable, "-m", "saccade.figures", "--poster", "--logs", str(logs)]
    page = tmp_path / "results.md"
    page.write_text(
        "# R\n<!-- poster-learnt-fixed:begin -->\nold\n<!-- poster-learnt-fixed:end -->\nkept\n"
    )
    cmd += ["--out", str(out), "--poster-samples", missing, missing, "--docs", str(page)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    names = {"poster-learnt-fixed-2528", "poster-noisy-proxy"}
    assert {p.name for p in out.iterdir()} == {
        f"{n}.{ext}" for n in names for ext in ("png", "html")
    } | {"poster-summary.json"}
    assert "wrote" in done.stdout
    for name in names:
        assert Image.open(out / f"{name}.png").size == (720, 440)
        assert "plotly" in (out / f"{name}.html").read_text()
    summary = json.loads((out / "poster-summary.json").read_text())
    rows = summary["noisy_proxy"]["rows"]
    assert [r["last_mean"] for r in rows] == pytest.approx(
        [np.mean(v[-3:]) for v in NOISE.values()]
    )
    assert summary["learnt_fixed"]["verdict"].startswith("Over 3 learnt seeds and 3 fixed seeds: ")
    # the page's marked table is the summary's (no noisy-proxy markers there: nothing added)
    text = page.read_text()
    assert "old" not in text and text.endswith("<!-- poster-learnt-fixed:end -->\nkept\n")
    assert summary["learnt_fixed"]["markdown"] in text and "noise 0.1" not in text
    assert "(out/poster-learnt-fixed-2528.png)" in text  # the figure, linked from the page
    assert f"wrote {page}" in done.stdout
