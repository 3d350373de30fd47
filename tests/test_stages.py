"""scripts/stages.sh, the stage runner of the training recipes: a finished stage lands in
DEST with its marker, a fresh checkout (an empty RUNS) takes the committed stage instead of
training again, and NO_COPY=1 (scripts/gpu_train.sh and its smoke test) leaves the
committed files alone. The trainer is a stand-in that writes a checkpoint's files, so the
runner's own logic is what runs."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: a stand-in trainer: python FAKE ... --out OUT writes OUT.{json,safetensors,metrics.jsonl}
#: (the JSON finished) and counts its calls in calls.txt
FAKE = """
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
json.dump({"finished": True, "argv": sys.argv[1:]}, open(out + ".json", "w"))
open(out + ".safetensors", "wb").write(b"weights")
open(out + ".metrics.jsonl", "w").write("{}\\n")
open("calls.txt", "a").write(out + "\\n")
"""


def _run_stage(cwd: Path, runs: Path, flags: str, **env) -> str:
    script = f"""
set -euo pipefail
ONLY=()
RUNS={runs}
source {ROOT / "scripts" / "stages.sh"}
CMD="python fake.py" DEST=dest stage demo {flags}
"""
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COPY": "", **env},
    )
    return out.stdout


def _calls(cwd: Path) -> int:
    calls = cwd / "calls.txt"
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_a_stage_lands_then_a_fresh_checkout_takes_it_without_training(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE)
    runs = tmp_path / "runs"
    runs.mkdir()
    assert "demo: training (--lr 1)" in _run_stage(tmp_path, runs, "--lr 1")
    assert json.loads((tmp_path / "dest" / "demo.json").read_text())["finished"]
    assert (tmp_path / "assets" / "logs" / "demo.stage").read_text() == "--lr 1\n"
    assert (tmp_path / "assets" / "logs" / "demo.metrics.jsonl").exists()
    saved = json.loads((tmp_path / "assets" / "logs" / "demo.json").read_text())
    assert saved["finished"] is True and "--lr" in saved["argv"]  # the stage's own JSON
    assert _calls(tmp_path) == 1

    fresh = tmp_path / "fresh-runs"  # a fresh checkout: RUNS is empty, the commit holds it
    fresh.mkdir()
    assert "demo: done" in _run_stage(tmp_path, fresh, "--lr 1")
    assert (fresh / "demo.safetensors").read_bytes() == b"weights"  # for --init by the next
    assert _calls(tmp_path) == 1

    other = tmp_path / "other-runs"  # other flags than the committed stage's: it trains
    other.mkdir()
    assert "demo: training (--lr 2)" in _run_stage(tmp_path, other, "--lr 2")
    assert _calls(tmp_path) == 2


def test_no_copy_leaves_the_committed_stage_and_its_marker_alone(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE)
    runs = tmp_path / "runs"
    runs.mkdir()
    _run_stage(tmp_path, runs, "--lr 1")
    committed = (tmp_path / "dest" / "demo.json").read_text()

    smoke = tmp_path / "smoke-runs"
    smoke.mkdir()
    assert "demo: training (--lr 1 --tiny)" in _run_stage(
        tmp_path, smoke, "--lr 1 --tiny", NO_COPY="1"
    )
    assert (smoke / "demo.json").exists()  # the run itself is in its RUNS
    assert (tmp_path / "dest" / "demo.json").read_text() == committed
    assert (tmp_path / "assets" / "logs" / "demo.stage").read_text() == "--lr 1\n"
