"""The load test's short version: concurrent gradio_client sessions against a real
`python app.py` process, each fetching every output file as a browser does; no request lost,
no file cut off (docs/reliability.md, "Load", has the full run)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_concurrent_sessions_all_get_answers_and_whole_files(tmp_path):
    out = tmp_path / "r.json"
    report = load_script().main(
        ["--clients", "4", "--requests", "2", "--rounds", "2", "--json", str(out)]
    )
    assert report["errors"] == 0 and report["server_cut_off_lines"] == 0
    assert [r["ok"] for r in report["rounds"]] == [8, 8]
    # every answer's files were fetched whole: the gallery's pictures, one per step (T = 4)
    assert [r["files_fetched"] for r in report["rounds"]] == [32, 32]
    assert all(r["server_rss_mb"] > 50 and r["p95_s"] >= r["p50_s"] > 0 for r in report["rounds"])
    assert json.loads(out.read_text())["downloads"].startswith("every output file")
