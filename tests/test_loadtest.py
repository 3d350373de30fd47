"""The load test's short version: concurrent gradio_client sessions against a real
`python app.py` process, no request lost (README "Reliability" has the full run)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_concurrent_sessions_all_get_answers(tmp_path):
    report = load_script().main(
        ["--clients", "4", "--requests", "2", "--rounds", "2", "--json", str(tmp_path / "r.json")]
    )
    assert report["errors"] == 0
    assert [r["ok"] for r in report["rounds"]] == [8, 8]
    assert all(r["server_rss_mb"] > 50 and r["p95_s"] >= r["p50_s"] > 0 for r in report["rounds"])
    assert (tmp_path / "r.json").is_file()
