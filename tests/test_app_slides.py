"""Explore on the server's own slides (``python app.py --images DIR``, issue 24 item 7), on the
path a user takes: the "Server images" dropdown lists what is under DIR with its size; a choice
runs the app's own event function, which predicts through ``saccade.predict`` on the slide
(never decoded whole) and draws the trajectory over its thumbnail in level-0 pixels; the
zooms are read from the slide; Export writes a GIF of one frame per saccade; a name outside
DIR, with ``..`` or a NUL, a symlink out of DIR and an unreadable file are refused.

The slide is generated here with ``saccade.data.slide.write_slide`` (a tiled, pyramidal
TIFF), rectangular (1800 × 1200), so that its virtual square is larger than it.
"""

import base64
import io
import json
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import saccade  # noqa: E402
from saccade import app, image_io  # noqa: E402
from saccade.app import Look  # noqa: E402
from saccade.data import browse  # noqa: E402
from saccade.data.slide import write_slide  # noqa: E402
from saccade.viz import gif as gif_module  # noqa: E402
from tests.helpers import png_with_header, write_tiny_checkpoint  # noqa: E402

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
W, H = 1800, 1200  # the slide's level 0
SLIDE = "scans/wide.tif"
CKPT = "b-sum-learnt"
T = 3


def slide_canvas() -> np.ndarray:
    """(H, W) uint8: a dark textured ground with bright blocks (zooms are not constant)."""
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 40, (H, W), dtype=np.uint8)
    for x, y in [(200, 150), (900, 500), (1500, 900), (600, 1000)]:
        canvas[y : y + 120, x : x + 90] = 230
    return canvas


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> dict:
    """DIR with a slide, a PNG, a hidden folder, a cache folder, an unreadable file, an
    untiled PNG over the pixel cap and a symlink out of DIR; checkpoints beside it."""
    root = tmp_path_factory.mktemp("served")
    os.environ.setdefault("SACCADE_SLIDE_CACHE", str(root / "slide-cache"))
    images = root / "images"
    (images / "scans").mkdir(parents=True)
    write_slide(images / SLIDE, slide_canvas(), tile=128, compression="deflate", min_side=128)
    Image.fromarray(np.full((200, 300), 200, np.uint8)).save(images / "photo.png")
    for hidden in (".hidden", ".saccade-cache"):
        (images / hidden).mkdir()
        write_slide(images / hidden / "x.tif", slide_canvas()[:256, :256], tile=128)
    (images / "notes.tif").write_text("not an image")
    (images / "huge.png").write_bytes(png_with_header(20000, 20000))  # header only
    secret = root / "secret.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(secret)
    (images / "escape.png").symlink_to(secret)
    ckpts = root / "checkpoints"
    ckpts.mkdir()
    write_tiny_checkpoint(ckpts, CKPT, n_saccades=T)
    return {"root": root, "images": images, "ckpts": ckpts, "secret": secret}


@pytest.fixture(scope="module")
def the_app(served) -> app.App:
    return app.App(served["ckpts"], ROOT / "assets", images=served["images"])


def component(demo, elem_id: str):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def explore_api_inputs(demo) -> list[str]:
    config = demo.config
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    dep = next(d for d in config["dependencies"] if d.get("api_name") == "explore")
    return [elem[i] for i in dep["inputs"]]


def test_the_listing_shows_the_slide_and_images_with_their_size(the_app, served):
    listed = {c[1]: c[0] for c in the_app.state.server_choices()}
    assert listed == {
        "huge.png": "huge.png (20,000×20,000 px, image)",
        "photo.png": "photo.png (300×200 px, image)",
        SLIDE: f"{SLIDE} (1,800×1,200 px, slide)",
    }  # not: hidden and cache folders, the unreadable file, the symlink out of DIR
    demo = app.build_demo(the_app)
    dropdown = component(demo, "explore-server")
    assert dropdown.visible and [c[1] for c in dropdown.choices] == sorted(listed)
    assert explore_api_inputs(demo)[-1] == "explore-server"
    # the walk's bounds: depth and number of files
    deep = served["images"] / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(deep / "too-deep.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(deep.parent / "deep.png")
    names = [f.name for f in browse.list_images(served["images"])]
    assert "a/b/c/d/deep.png" in names and "a/b/c/d/e/too-deep.png" not in names
    # a page load lists the folder as it is now
    assert "a/b/c/d/deep.png" in [c[1] for c in the_app.explore.server_list()["choices"]]
    # at most max_files image files are looked at, DIR's own first: escape.png (a symlink
    # out), huge.png, notes.tif (unreadable); then no folder is entered
    assert [f.name for f in browse.list_images(served["images"], max_files=3)] == ["huge.png"]


def test_without_images_nothing_changes(served):
    plain = app.App(served["ckpts"], ROOT / "assets")
    demo = app.build_demo(plain)
    assert not component(demo, "explore-server").visible
    assert "explore-server" not in explore_api_inputs(demo)  # the API keeps its 7 inputs
    assert plain.state.server_choices() == []
    with pytest.raises(gr.Error, match="no server images"):
        plain.explore.run(Look(None, CKPT, server=SLIDE))


def test_a_slide_chosen_runs_through_predict_over_its_thumbnail(the_app, served, monkeypatch):
    def no_whole_decode(*args, **kwargs):
        raise AssertionError("the slide was decoded whole")

    monkeypatch.setattr(image_io, "read_image", no_whole_decode)
    monkeypatch.setattr(saccade.infer, "to_model_image", no_whole_decode)
    got = the_app.explore.on_server_image(Look(None, CKPT, 0.0, T, 0, "mean", False, SLIDE))
    assert got.image is None  # the upload emptied: Look and Export run on the slide
    out = got.outputs
    assert "server slide `scans/wide.tif` 1800×1200" in out.status, out.status
    model = saccade.load(served["ckpts"] / CKPT)
    ref = saccade.predict(model, str(served["images"] / SLIDE), n_saccades=T)
    assert ref.image_shape == (H, W) and ref.image.shape[:2] != (H, W)  # a thumbnail
    fig = out.trajectory
    # the thumbnail spans exactly the slide's level-0 extent
    image = next(t for t in fig.data if t.type == "image" and t.name == "image")
    with Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1]))) as shown:
        bw, bh = shown.size  # the thumbnail, downscaled for the browser
    assert bw / bh == pytest.approx(W / H, rel=0.01)  # the slide's aspect, not squared
    assert image.dx * bw == pytest.approx(W) and image.dy * bh == pytest.approx(H)
    assert list(fig.layout.xaxis.range) == [0, W] and list(fig.layout.yaxis.range) == [H, 0]
    # the crop boxes: predict's level-0 boxes, clipped to the slide, inside the thumbnail
    crops = [s for s in fig.layout.shapes if s.name and s.name.startswith("crop")]
    drawn = np.array([[s.x0, s.y0, s.x1, s.y1] for s in crops])
    np.testing.assert_allclose(drawn, np.clip(ref.boxes, 0, [W, H, W, H]), atol=1e-6)
    assert (drawn[:, [0, 2]] >= 0).all() and (drawn[:, [0, 2]] <= W).all()
    assert (drawn[:, [1, 3]] >= 0).all() and (drawn[:, [1, 3]] <= H).all()
    assert (drawn[:, 2] > drawn[:, 0]).all() and (drawn[:, 3] > drawn[:, 1]).all()
    # σ and the proxy's cells span the virtual square (1800², the slide centred in it)
    x0, y0, x1, y1 = ref.square
    assert (x1 - x0, y1 - y0) == (W, W) and x0 == 0 and -y0 == pytest.approx((W - H) / 2, abs=64)
    sigma = next(s for s in fig.layout.shapes if s.name == "sigma")
    assert (sigma.x1 - sigma.x0) / 2 == pytest.approx(ref.sigma[-1, 1] * W / 2, rel=1e-6)
    assert (sigma.y1 - sigma.y0) / 2 == pytest.approx(ref.sigma[-1, 2] * W / 2, rel=1e-6)
    assert list(fig.layout.yaxis2.range) == [pytest.approx(y1), pytest.approx(y0)]
    # the zooms, read from the slide at a readable level: real pictures, not blank
    assert len(out.gallery) == T
    for t, (path, caption) in enumerate(out.gallery):
        pixels = np.asarray(Image.open(path))
        assert min(pixels.shape[:2]) >= 64 and pixels.std() > 0
        assert caption.startswith(f"step {t + 1}: ")
    for zoom, box in zip(ref.zooms, ref.boxes, strict=True):
        assert 0 < max(zoom.shape[:2]) <= saccade.infer.ZOOM_MAX_SIDE and zoom.std() > 0
        side = max(box[2] - box[0], box[3] - box[1])
        assert max(zoom.shape[:2]) >= min(side, saccade.infer.ZOOM_MAX_SIDE) - 1
    assert max(out.label, key=out.label.get) == ref.class_names[ref.label]
    # the Look button after the choice runs the same (the image input is now empty)
    again = the_app.explore.look(Look(None, CKPT, 0.0, T, 0, "mean", False, SLIDE))
    assert [s.x0 for s in again.trajectory.layout.shapes] == [s.x0 for s in fig.layout.shapes]


def test_export_writes_a_gif_of_one_frame_per_saccade_for_a_slide(the_app):
    gif, record = the_app.explore.export(Look(None, CKPT, 0.0, T, 0, "mean", False, SLIDE))
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == T and im.width >= 800
        frames = []
        for i in range(T):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    assert all(not np.array_equal(frames[0], f) for f in frames[1:])  # the steps differ
    # the boxes are drawn on the thumbnail, clipped to it: none reaches into the title band
    # (a crop past the slide's border lies in its virtual padding)
    for frame in frames:
        band = frame[: gif_module.TITLE - 6].astype(int)
        orange = (band[..., 0] > 200) & (abs(band[..., 1] - 127) < 40) & (band[..., 2] < 80)
        assert not orange.any()
    data = json.loads(Path(record).read_text())
    assert data["slide"] == SLIDE  # its name in DIR, not the server's path
    assert data["boxes_shape"] == [H, W] and len(data["steps"]) == T


def test_an_ordinary_server_image_runs_and_keeps_the_cap(the_app):
    out = the_app.explore.run(Look(None, CKPT, 0.0, T, 0, "mean", False, "photo.png"))
    assert "server image `photo.png`" in out.status and len(out.gallery) == T
    with pytest.raises(gr.Error, match="268,435,456 pixels"):  # untiled, over the cap
        the_app.explore.run(Look(None, CKPT, 0.0, T, 0, "mean", False, "huge.png"))
    # Invert runs on a slide: read inverted, tile by tile (tests/test_slide_reading.py)
    inverted = the_app.explore.run(Look(None, CKPT, 0.0, T, 0, "mean", True, SLIDE))
    assert "inverted" in inverted.status and len(inverted.gallery) == T


@pytest.mark.parametrize(
    "name, words",
    [
        ("../secret.png", "'..' is refused"),
        ("scans/../../secret.png", "'..' is refused"),
        ("SECRET", "absolute path is refused"),  # the secret's absolute path
        ("/etc/passwd", "absolute path is refused"),
        ("wide\x00.tif", "NUL byte"),
        ("escape.png", "outside the server's image folder"),  # a symlink out of DIR
        ("notes.tif", "not a readable image or slide"),
        ("missing.tif", "does not exist"),
        (".hidden/x.tif", "hidden and cache files"),
    ],
)
def test_refusals_name_the_input(the_app, served, name, words):
    if name == "SECRET":
        name = str(served["secret"])
    with pytest.raises(gr.Error) as caught:
        the_app.explore.run(Look(None, CKPT, 0.0, T, 0, "mean", False, name))
    message = str(caught.value.message)
    assert words in message and repr(name) in message, message
    assert str(served["root"]) not in message.replace(repr(name), "")  # no server paths
    # the page's events say it in the status line, panels cleared
    shown = the_app.explore.on_server_image(Look(None, CKPT, 0.0, T, 0, "mean", False, name))
    assert shown.status.startswith("❌") and words in shown.status and shown.gallery == []
    with pytest.raises(gr.Error):
        the_app.explore.export(Look(None, CKPT, 0.0, T, 0, "mean", False, name))


@pytest.mark.slow
def test_the_api_takes_the_server_image_and_refuses_a_name_not_listed(the_app, free_port):
    """Through gradio_client: /explore and /export take the server image's name as their last
    input; a name not listed is refused by the dropdown itself, naming the input."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    demo = app.build_demo(the_app)
    app.launch(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        client = Client(demo.local_url, verbose=False, download_files=False)
        settings = (None, CKPT, 0.0, T, 0, "mean", False)
        result = client.predict(*settings, SLIDE, api_name="/explore")
        assert "server slide `scans/wide.tif` 1800×1200" in result[-1]
        files = client.predict(*settings, SLIDE, api_name="/export")
        assert [Path(f["path"]).name for f in files] == ["trajectory.gif", "run.json"]
        with pytest.raises(AppError, match=r"Server images: .*\.\./secret\.png"):
            client.predict(*settings, "../secret.png", api_name="/explore")
    finally:
        demo.close()


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
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


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason=f"Chromium not found at {CHROMIUM} (and CI is not set)",
)
def test_a_browser_picks_the_server_slide_and_sees_it(served, free_port, tmp_path):
    """A real Chromium: the Server images dropdown offers the slide; choosing it runs at once
    and the page shows the slide's status line, its thumbnail under the trajectory and one
    gallery picture per saccade."""
    from playwright.sync_api import sync_playwright

    the_app = app.App(served["ckpts"], ROOT / "assets", images=served["images"])
    demo = app.build_demo(the_app)
    app.launch(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    label = dict((name, text) for text, name in the_app.state.server_choices())[SLIDE]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1900},
            )
            page = browser.new_page()
            page.goto(demo.local_url)
            page.wait_for_selector("#explore-server input", state="visible")
            page.click("#explore-server input")
            page.get_by_role("option", name=label).click()
            page.wait_for_function(
                "() => document.querySelector('#explore-status').innerText"
                ".includes('server slide scans/wide.tif 1800×1200')",
                timeout=60_000,
            )
            page.wait_for_function(
                f"() => [...document.querySelectorAll('#explore-gallery img')]"
                f".filter(i => i.complete && i.naturalWidth > 0).length === {T}",
                timeout=30_000,
            )
            drawn = page.evaluate(
                """() => {
                  const gd = document.querySelector('#explore-trajectory .js-plotly-plot');
                  const crop = gd.layout.shapes.find((s) => s.name === 'crop');
                  return {x: gd.layout.xaxis.range, y: gd.layout.yaxis.range,
                          crop: [crop.x0, crop.y0, crop.x1, crop.y1],
                          image: gd.data[0].type, empty: document.querySelector(
                            '#explore-image').innerText}; }"""
            )
            assert drawn["x"] == [0, W] and drawn["y"] == [H, 0] and drawn["image"] == "image"
            x0, y0, x1, y1 = drawn["crop"]
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert "Cannot run" not in page.locator("#explore-status").inner_text()
            browser.close()
    finally:
        demo.close()
