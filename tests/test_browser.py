"""A real Chromium drives the app: pick an example, press Look, see the label and the gallery,
press Play and watch the crop box move; measure click-to-rendered latency on the 2528²
example; check that the page makes no request outside the app.

Uses Debian's Chromium (/usr/bin/chromium) through Playwright. Skipped only when Chromium is
missing and CI is not set; in CI it must run. ``SACCADE_SCREENSHOT=path.png`` also saves the
screenshot there (that is how ``assets/screenshot-explore.png`` is made).
"""

import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

import app  # noqa: E402
import saccade  # noqa: E402
from saccade import image_io  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIG = ROOT / "assets" / "cluttered-sum-2528-0.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: click-to-rendered bound for the 2528² example (issue 4: 1.5 s on 2 CPU cores)
LATENCY_BOUND_S = float(os.environ.get("SACCADE_LATENCY_BOUND_S", "1.5"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not IN_CI,
        reason=f"Chromium not found at {CHROMIUM} (and CI is not set)",
    ),
]

ALL_RENDERED = """([seed, n]) => {
  const status = document.querySelector('#explore-status');
  if (!status || !status.innerText.includes('seed ' + seed + ',')) return false;
  const imgs = [...document.querySelectorAll('#explore-gallery img')];
  if (imgs.length < n || !imgs.every(i => i.complete && i.naturalWidth > 0)) return false;
  for (const id of ['explore-trajectory', 'explore-sigma', 'explore-proxy', 'explore-probs']) {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd.data || !gd.data.length) return false;
  }
  const label = document.querySelector('#explore-label');
  return !!label && label.innerText.trim().length > 0;
}"""

CROP_BOX = """() => {
  const gd = document.querySelector('#explore-trajectory .js-plotly-plot');
  const box = (gd.layout.shapes || []).find(s => s.name === 'crop');
  return {x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1, title: gd.layout.title.text,
          background: gd.data[0].type === 'image' && gd.data[0].source.startsWith('data:image/png')};
}"""

BACKGROUND_DRAWN = """() => {
  const bg = document.querySelector('#explore-trajectory .js-plotly-plot image');
  return !!bg && (bg.getAttribute('href') || '').startsWith('data:image/png');
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipped_checkpoints() -> Path | None:
    """The repository's checkpoints/ when it has a model for the 2528² example's task (then the
    latency is measured on a real model), else None."""
    folder = ROOT / "checkpoints"
    metas = saccade.list_checkpoints(folder) if folder.is_dir() else []
    ok = any(m.get("dataset") == "cluttered" and m.get("task") == "sum" for m in metas)
    return folder if ok else None


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = shipped_checkpoints()
    if folder is None:
        from test_app import write_tiny_checkpoint

        folder = tmp_path_factory.mktemp("checkpoints")
        write_tiny_checkpoint(folder, "tiny-sum-learnt", n_saccades=4)
        write_tiny_checkpoint(folder, "tiny-sum-fixed", variance="fixed", n_saccades=4)
    the_app = app.App(folder)
    demo = app.build_demo(the_app)
    the_app.warm()  # as `python app.py` does
    app.launch(
        demo,
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
    )
    yield the_app, demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1900},
        )
        yield context
        context.close()


def test_explore_in_a_real_browser(served, browser, tmp_path):
    the_app, url = served
    outside = []
    page = browser.new_page()
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else outside.append(r.url)
        ),
    )
    page.goto(url)
    page.wait_for_selector("#explore-run")
    # the placeholder plot means plotly.js is loaded with the page, not on the first click
    page.wait_for_function("() => !!document.querySelector('#explore-trajectory .js-plotly-plot')")

    # pick the 2528² example: the checkpoint list puts its task first
    truth = the_app.truth(str(BIG))
    best_label, best = the_app.checkpoint_choices(truth)[0]
    page.locator("#explore-examples").get_by_text("upsampled to 2528").click()
    page.wait_for_function(
        "() => document.querySelector('#explore-image').innerText.includes('2528')"
    )
    page.wait_for_function(
        "(label) => document.querySelector('#explore-checkpoint input').value === label",
        arg=best_label,
    )
    model = the_app.model(best)
    T = int(model.config.n_saccades)
    expected = saccade.predict(model, image_io.to_model_image(BIG))

    # click-to-rendered latency, a few runs (seeds differ so every run is told apart)
    latencies = []
    for seed in range(1, 7):
        page.fill("#explore-seed input", str(seed))
        page.keyboard.press("Tab")
        t0 = time.perf_counter()
        page.click("#explore-run")
        page.wait_for_function(ALL_RENDERED, arg=[seed, 2 * T], polling="raf", timeout=30_000)
        latencies.append(time.perf_counter() - t0)
    first, median = latencies[0], statistics.median(latencies)
    report = {"first_s": round(first, 3), "median_s": round(median, 3), "runs_s": latencies}
    (tmp_path / "latency.json").write_text(json.dumps(report))
    print(f"\nExplore latency on the 2528² example, click to rendered: {report}")

    # the prediction and the gallery
    label_text = page.locator("#explore-label").inner_text()
    assert expected.class_names[expected.label] in label_text
    captions = page.locator("#explore-gallery").inner_text()
    assert "step 1:" in captions and f"step {T}:" in captions
    assert page.locator("#explore-gallery img").count() == 2 * T
    assert "Covered" in page.locator("#explore-truth").inner_text()

    # Play: the crop box really moves through the steps, over the image
    start = page.evaluate(CROP_BOX)
    assert start["background"] and start["title"].endswith(f"step {T}")
    assert (start["x0"], start["y0"]) == pytest.approx(tuple(expected.boxes[-1, :2]), abs=1e-3)
    page.locator("#explore-trajectory").get_by_text("Play").click()
    seen = []
    t_end = time.monotonic() + 0.7 * T + 2.0
    while time.monotonic() < t_end:
        seen.append(page.evaluate(CROP_BOX))
        page.wait_for_timeout(100)
    titles = [s["title"] for s in seen]
    assert {f"Where the model looked: step {t + 1}" for t in range(T)} <= set(titles)
    positions = {(round(s["x0"], 3), round(s["y0"], 3)) for s in seen}
    assert len(positions) >= min(T, len({tuple(b[:2]) for b in expected.boxes.round(3)}))
    for s in seen:  # each step shows that step's box, on the background
        step = int(s["title"].rsplit(" ", 1)[1])
        assert (s["x0"], s["y0"]) == pytest.approx(tuple(expected.boxes[step - 1, :2]), abs=1e-3)
        assert s["background"]
    assert page.evaluate(BACKGROUND_DRAWN)  # the image survived the redraws

    shot = tmp_path / "explore.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("SACCADE_SCREENSHOT"):  # the README's picture: the top of the tab
        page.evaluate("() => window.scrollTo(0, 0)")
        clip = {"x": 0, "y": 0, "width": 1400, "height": 1340}
        page.screenshot(path=os.environ["SACCADE_SCREENSHOT"], clip=clip)

    assert outside == [], f"the page requested outside hosts: {outside[:5]}"
    assert median <= LATENCY_BOUND_S, f"median latency {median:.2f} s > {LATENCY_BOUND_S} s"
