"""``python -m saccade.figures``: the CLI that writes the paper's comparison figures (the
figures themselves are ``saccade.viz``'s, tested in test_viz.py)."""

import pytest

from saccade import figures


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
