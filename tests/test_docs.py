"""The README and docs/ hold together: every relative link and image resolves, every anchor
names a heading, the README stays short, and its library snippet runs as written."""

import contextlib
import io
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 300

# [text](target) and ![alt](target); the target ends at whitespace or the closing bracket
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    kept = [
        c
        for c in text
        if c in " -_" or unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Mn"
    ]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def test_the_pages_exist_and_have_links():
    names = {p.name for p in PAGES}
    for page in ("design", "results", "own-images", "performance", "reliability", "space", "app"):
        assert f"{page}.md" in names, f"docs/{page}.md is missing"
    # the checker sees the README's images and its index of docs/
    readme_links = links(README)
    assert "assets/bench-headline.png" in readme_links
    assert sum(t.startswith("docs/") for t in readme_links) >= 7


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert broken == [], f"{page.name}: " + "; ".join(broken)


def test_the_slug_follows_github():
    assert slug("σ: what the posterior's spread says") == "σ-what-the-posteriors-spread-says"
    assert slug("The objective, exactly as trained") == "the-objective-exactly-as-trained"
    assert slug("Megapixel MNIST: data against model") == "megapixel-mnist-data-against-model"
    assert slug("Run `python app.py`") == "run-python-apppy"


def test_readme_is_short_and_keeps_its_front_matter_and_test_command():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    assert lines[0] == "---" and "sdk: gradio" in lines and "app_file: app.py" in lines
    assert "bash scripts/test.sh" in text  # CI (.ci/run) runs exactly this
    assert "pip install -r requirements.txt && python app.py" in text


def readme_snippet() -> str:
    m = re.search(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert m, "README.md has no ```python block"
    return m.group(1)


def test_readme_library_snippet_runs_as_written(monkeypatch):
    code = readme_snippet()
    for name in ("make_dataset", "load", "predict", "Pyramid", "glimpse"):
        assert f"saccade.{name}" in code
    for name in ("probs", "mu", "sigma", "boxes"):
        assert f"out.{name}" in code
    monkeypatch.chdir(ROOT)
    env: dict = {"__name__": "__readme__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), env)  # noqa: S102 - the README's own code
    out, sample, crops = env["out"], env["sample"], env["crops"]
    n_classes = len(out.class_names)
    assert n_classes == 19  # cluttered sum: 0..18
    assert out.probs.shape == (4, n_classes)
    assert np.allclose(out.probs.sum(axis=1), 1.0, atol=1e-4)
    assert out.mu.shape == out.sigma.shape == (4, 3) and (out.sigma > 0).all()
    assert np.abs(out.mu).max() <= 1.0 + 1e-6
    side = sample["image"].shape[0]
    assert out.boxes.shape == (4, 4)
    assert (out.boxes[:, 2] > out.boxes[:, 0]).all() and (out.boxes[:, :2] < side).all()
    assert tuple(crops.shape) == (1, 32, 32)
    text = printed.getvalue()
    assert f"predicted {out.class_name} truth {sample['label']}" in text
    assert "(4, 19)" in text
    # the shipped model gets this test image right (cluttered-sum-learnt: 96.3% on 5,000 test images)
    assert out.label == sample["label"]


def test_results_tables_are_what_the_evaluation_json_says():
    """README's results table and docs/results.md's learnt-against-fixed table are written by
    scripts/results_table.py from assets/eval-*.json; a hand edit or a stale table fails."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "scripts/results_table.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_codes_links_into_docs_resolve():
    """``docs/NAME.md#anchor`` in a docstring or comment names a heading of that page."""
    broken = []
    for source in sorted((ROOT / "saccade").rglob("*.py")):
        for page, anchor in re.findall(r"docs/([\w-]+\.md)#([\w-]+)", source.read_text()):
            if anchor not in anchors(ROOT / "docs" / page):
                broken.append(f"{source.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert not broken, broken
