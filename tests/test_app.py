"""The app: event functions called directly, then the launched app through gradio_client.

Models are tiny random checkpoints written by a fixture, so these tests do not depend on the
shipped weights; what is checked is that the app shows exactly what ``saccade.predict`` says.
"""

import json
import os
import re
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import saccade  # noqa: E402
from saccade import app, image_io, viz  # noqa: E402
from saccade.app import Look  # noqa: E402
from saccade.app.about import AboutTab  # noqa: E402
from saccade.app.compare import CompareOutputs  # noqa: E402
from saccade.app.explore import ExploreOutputs, ExploreTab  # noqa: E402
from saccade.app.page import Page  # noqa: E402
from saccade.app.train_tab import TrainOutputs, TrainTab  # noqa: E402
from tests.helpers import (  # noqa: E402
    TINY_TRAINING,
    Session,
    png_with_header,
    write_tiny_checkpoint,
)

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
BIG = ASSETS / "cluttered-sum-2528-0.png"
SMALL = ASSETS / "cluttered-sum-100-0.png"
SINGLE = ASSETS / "cluttered-single-100-0.png"
MEGA = ASSETS / "megapixel-majority-1500-0.png"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    write_tiny_checkpoint(folder, "a-sum-fixed", variance="fixed")
    write_tiny_checkpoint(folder, "b-sum-learnt")
    write_tiny_checkpoint(folder, "c-single-learnt", task="single", n_saccades=2)
    write_tiny_checkpoint(folder, "d-mega-learnt", dataset="megapixel", task="majority", size=1500)
    (folder / "broken.json").write_text("{not json")  # skipped by the listing
    return folder


@pytest.fixture(scope="module")
def the_app(ckpts) -> app.App:
    return app.App(ckpts, ASSETS)


def direct(ckpts: Path, name: str, image, **kw):
    return saccade.predict(saccade.load(ckpts / name), image_io.to_model_image(image), **kw)


# ----------------------------------------------------------------------------- Explore


def test_explore_shows_what_predict_returns(the_app, ckpts):
    traj, sigma, proxy, label, probs, gallery, truth, status = the_app.explore.run(
        Look(str(BIG), "b-sum-learnt")
    )
    ref = direct(ckpts, "b-sum-learnt", BIG)
    T = 3
    # trajectory: one animation frame per saccade, boxes = predict's boxes
    frames = traj.layout.updatemenus[0].buttons[0].args[0]
    assert len(frames) == T
    for t, frame in enumerate(frames):
        crop = next(s for s in frame["layout"]["shapes"] if s["name"] == "crop")
        np.testing.assert_allclose([crop[k] for k in ("x0", "y0", "x1", "y1")], ref.boxes[t])
    assert traj.layout.xaxis.range == (0, 2528)
    # the posterior at each step: heat = predict's cell_probs over the step's largest (p in
    # the hover text), 1σ ellipses from its σ
    for t, frame in enumerate(frames):
        p = ref.cell_probs[t]
        np.testing.assert_allclose(frame["data"][2]["z"], p / p.max(), rtol=1e-5)
        np.testing.assert_allclose(np.array(frame["data"][2]["text"], float), p, atol=1e-4)
        ellipse = next(s for s in frame["layout"]["shapes"] if s["name"] == "sigma")
        np.testing.assert_allclose(ellipse["x1"] - ellipse["x0"], ref.sigma[t, 1] * 2528, rtol=1e-5)
        np.testing.assert_allclose(ellipse["y1"] - ellipse["y0"], ref.sigma[t, 2] * 2528, rtol=1e-5)
    assert len(traj.to_json()) < 600_000  # the 2528² image is sent downscaled
    # ground truth of the example drawn dashed
    assert len([s for s in traj.layout.shapes if s.name.startswith("truth")]) == 2
    # σ, probabilities, label
    for i in range(3):
        np.testing.assert_allclose(sigma.data[i].y, ref.sigma[:, i], rtol=1e-6)
    assert probs.data[0].name == ref.class_names[int(ref.probs.max(0).argmax())]
    assert max(label, key=label.get) == ref.class_names[ref.label]
    assert sum(label.values()) == pytest.approx(1.0, abs=1e-4)
    assert proxy.layout.title.text.startswith(f"Proxy {ref.proxy.shape[0]}×")
    # gallery: one picture per step, the zoom and the crop side by side, a short caption
    assert len(gallery) == T
    # each image a PNG file in Gradio's cache, holding exactly the zoom / the enlarged crop
    pair = np.asarray(Image.open(gallery[0][0]))
    expected = viz.gallery_pairs(ref.zooms, ref.crops, ref.boxes, ref.image.shape[:2])[0]
    assert np.array_equal(pair, expected[0]) and pair.shape[0] == 192
    assert gallery[0][1] == expected[1] and gallery[0][1].startswith("step 1: ")
    assert gallery[0][1].endswith("→ 8×8") and len(gallery[0][1]) <= 26
    # the example's ground truth: label 4, two digits
    assert "class `4`" in truth and "Covered" in truth and "digit 2" in truth
    assert ref.class_names[ref.label] in status and "2528×2528" in status


def test_output_images_are_written_once_and_never_rewritten(tmp_path):
    """Two runs with the same pictures get the same file, written once (its inode and time
    stay): Gradio's own cache rewrote it in place, cutting off a download in progress."""
    from saccade.app import files

    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    first = files.png_file(image, tmp_path)
    before = os.stat(first)
    again = files.png_file(image.copy(), tmp_path)
    after = os.stat(again)
    assert again == first and (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert np.array_equal(np.asarray(Image.open(first)), image)
    assert files.png_file(image + 1, tmp_path) != first  # other pictures, another file
    assert not list(tmp_path.glob("*/.tmp-*"))  # no temporary file left behind


def test_default_checkpoint_matches_the_example_task(the_app):
    # an API call with defaults on a generated example uses a checkpoint of its task, learnt
    # first; the first listed checkpoint ("a-sum-fixed") would be the wrong variance
    *_, status = the_app.explore.run(Look(str(SINGLE)))
    assert "c-single-learnt" in status
    *_, status = the_app.explore.run(Look(str(BIG)))
    assert "b-sum-learnt" in status


def test_explore_settings_change_the_run(the_app, ckpts):
    def boxes(fig):
        return np.array(
            [
                [s["x0"], s["y0"]]
                for f in fig.layout.updatemenus[0].buttons[0].args[0]
                for s in f["layout"]["shapes"]
                if s["name"] == "crop"
            ]
        )

    base = the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 3, 0, "mean"))
    longer = the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 6, 0, "mean"))
    assert len(boxes(longer.trajectory)) == 6 and len(longer.gallery) == 6
    np.testing.assert_allclose(
        boxes(longer.trajectory)[:3], boxes(base.trajectory)
    )  # same first steps
    # posterior mean: the seed does not matter; a sample: it does
    np.testing.assert_allclose(
        boxes(the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 3, 5, "mean")).trajectory),
        boxes(base.trajectory),
    )
    s1 = boxes(
        the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 3, 1, "sample")).trajectory
    )
    s2 = boxes(
        the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 3, 2, "sample")).trajectory
    )
    assert not np.allclose(s1, s2)
    ref = direct(ckpts, "b-sum-learnt", SMALL, seed=2, sample=True)
    np.testing.assert_allclose(s2, ref.boxes[:, :2])
    # proxy noise is applied to the proxy shown
    clean = the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0)).proxy
    noisy = the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.5)).proxy
    assert clean.data[0].source != noisy.data[0].source
    assert "noise σ = 0.5" in noisy.layout.title.text


def test_fixed_variance_looks_fixed(the_app, ckpts):
    """Fixed mode: what the mode fixes (the scale's σ and the offset's σ in the chosen cell)
    is drawn flat at the constant, apart from the spread of the centre over the cells, which
    predict reports and which grows with the learnt cell probabilities."""
    sigma = the_app.explore.run(Look(str(SMALL), "a-sum-fixed", 0.0, 5)).sigma
    assert "fixed" in sigma.layout.title.text
    left = [tr for tr in sigma.data if tr.xaxis == "x"]
    assert [tr.name for tr in left] == [
        "σ of the scale",
        "σ in the chosen cell, x",
        "σ in the chosen cell, y",
    ]
    for trace in left:
        assert np.ptp(trace.y) == 0 and trace.y[0] == pytest.approx(0.05)
    ref = direct(ckpts, "a-sum-fixed", SMALL, n_saccades=5)
    spread = [tr for tr in sigma.data if tr.xaxis == "x2"]
    for i, trace in enumerate(spread, start=1):
        assert trace.name.startswith("spread of the centre")
        np.testing.assert_allclose(trace.y, ref.sigma[:, i], rtol=1e-6)
        assert min(trace.y) >= 0.05 - 1e-6


def test_uploaded_image_without_ground_truth(the_app, tmp_path):
    path = tmp_path / "mine.png"
    Image.open(SMALL).transpose(Image.FLIP_LEFT_RIGHT).save(path)
    out = the_app.explore.run(Look(str(path), "b-sum-learnt"))
    assert "No ground truth" in out.truth
    assert not [s for s in out.trajectory.layout.shapes if s.name.startswith("truth")]
    # a byte copy of an example under another name is recognised
    copy = tmp_path / "copy.png"
    copy.write_bytes(SMALL.read_bytes())
    assert "Covered" in the_app.explore.run(Look(str(copy), "b-sum-learnt")).truth


def test_checkpoint_choices_show_task_and_variance_and_sort_by_example(the_app, ckpts):
    choices = the_app.state.checkpoint_choices()
    assert [v for _, v in choices] == [
        "a-sum-fixed",
        "b-sum-learnt",
        "c-single-learnt",
        "d-mega-learnt",
    ]
    label = dict((v, k) for k, v in choices)["a-sum-fixed"]
    assert "cluttered/sum" in label and "fixed σ" in label and "T=3" in label
    first = {
        SINGLE: "c-single-learnt",
        SMALL: "b-sum-learnt",  # matching task; learnt before fixed
        MEGA: "d-mega-learnt",
    }
    for path, name in first.items():
        assert the_app.state.checkpoint_choices(the_app.state.truth(str(path)))[0][1] == name
        assert the_app.explore.on_image(str(path), "a-sum-fixed")["value"] == name
    # an upload without ground truth keeps the user's choice
    assert the_app.explore.on_image(None, "a-sum-fixed")["value"] == "a-sum-fixed"
    explore_dd, learnt_dd, fixed_dd = Page(the_app.state, None).on_load(
        "gone", "c-single-learnt", None
    )
    unusable = the_app.explore.on_page_load()
    assert explore_dd["value"] == "a-sum-fixed" and len(explore_dd["choices"]) == 4
    # the fixture's broken.json is named as unusable, with the reason, and offered nowhere
    assert "Unusable checkpoints" in unusable and "- `broken`: checkpoint config" in unusable
    assert "broken.json is not valid JSON" in unusable and str(ckpts) not in unusable
    assert learnt_dd["value"] == "c-single-learnt" and fixed_dd["value"] == "a-sum-fixed"
    update = the_app.explore.on_checkpoint("c-single-learnt")
    assert update["value"] == 2 and update["maximum"] >= 4
    assert [v for _, v in the_app.state.checkpoint_choices(variance="fixed")] == ["a-sum-fixed"]


def test_an_example_starts_on_a_learnt_and_fixed_pair_of_one_recipe(tmp_path):
    """When an example is chosen, Explore and Compare start on NAME-learnt (and Compare on
    NAME-fixed: one recipe, σ learnt or fixed) rather than on a learnt checkpoint without a
    fixed twin that lists first; among twins, on the higher recorded test accuracy."""
    from saccade.app.state import twin_name

    for name, variance in (("a-sum-learnt", "learnt"), ("b-sum-fixed", "fixed"),
                           ("b-sum-learnt", "learnt")):  # fmt: skip
        write_tiny_checkpoint(tmp_path, name, variance=variance)
    the_app = app.App(tmp_path, ASSETS)
    truth = the_app.state.truth(str(SMALL))
    assert [v for _, v in the_app.state.checkpoint_choices()][:2] == ["a-sum-learnt", "b-sum-fixed"]
    assert the_app.state.checkpoint_choices(truth)[0][1] == "b-sum-learnt"
    assert the_app.state.checkpoint_choices(truth, "learnt")[0][1] == "b-sum-learnt"
    assert the_app.explore.on_image(str(SMALL), "a-sum-learnt")["value"] == "b-sum-learnt"
    lists = the_app.compare.on_image(str(SMALL), None, None)
    assert (lists.learnt["value"], lists.fixed["value"]) == ("b-sum-learnt", "b-sum-fixed")
    # two pairs: the more accurate one by its JSON's test accuracy
    for name, variance in (("c-sum-fixed", "fixed"), ("c-sum-learnt", "learnt")):
        path = write_tiny_checkpoint(tmp_path, name, variance=variance)
        meta = json.loads(path.with_suffix(".json").read_text()) | {"test_accuracy": 0.9}
        path.with_suffix(".json").write_text(json.dumps(meta))
    fresh = app.App(tmp_path, ASSETS)
    assert fresh.state.checkpoint_choices(truth)[0][1] == "c-sum-learnt"
    assert fresh.compare.on_image(str(SMALL), None, None).fixed["value"] == "c-sum-fixed"
    assert twin_name("cluttered-id-fixed-2528") == "cluttered-id-learnt-2528"


def test_the_shipped_zoom_example_opens_on_the_shipped_learnt_and_fixed_pair():
    """With the shipped checkpoints, the zoom example starts Explore on zoom-mean-learnt
    (of the learnt-and-fixed pairs, the most accurate) and Compare on it against
    zoom-mean-fixed (not on the imitation-only models, which list first by name)."""
    shipped = app.App(ROOT / "checkpoints", ASSETS)
    zoom = str(ASSETS / "zoom-32768-0.tif")
    assert shipped.explore.on_image(zoom, None)["value"] == "zoom-mean-learnt"
    lists = shipped.compare.on_image(zoom, None, None)
    pair = (lists.learnt["value"], lists.fixed["value"])
    assert pair == ("zoom-mean-learnt", "zoom-mean-fixed")


def test_a_checkpoint_is_loaded_once_until_its_file_changes(the_app, ckpts):
    """Requests for one checkpoint share one loaded model (each request does not read the
    file again), and a rewritten file is read again."""
    first = the_app.state.model("b-sum-learnt")
    assert the_app.state.model("b-sum-learnt") is first
    path = ckpts / "b-sum-learnt.json"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert the_app.state.model("b-sum-learnt") is not first
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_export_writes_a_gif_of_t_frames_and_the_runs_json(the_app, ckpts):
    import json

    from PIL import Image

    gif, record = the_app.explore.export(Look(str(SMALL), "b-sum-learnt", 0.0, 5, 3, "sample"))
    # a picture for a slide: one frame per saccade, >= 800 px wide, the ground truth drawn
    # (green or red dashes) beside the zoom, for the 100² example too
    movie = Image.open(gif)
    assert movie.n_frames == 5 and movie.size[0] >= 800
    movie.seek(4)
    last = np.asarray(movie.convert("RGB")).reshape(-1, 3)
    from saccade.viz.gif import TRUTH_RGB

    truth_colours = {tuple(c) for c in TRUTH_RGB.values()}
    assert truth_colours & {tuple(c) for c in np.unique(last, axis=0)}
    data = json.loads(Path(record).read_text())
    assert data["checkpoint"] == "b-sum-learnt" and len(data["steps"]) == 5
    assert data["settings"] == {
        "proxy_noise": 0.0,
        "n_saccades": 5,
        "seed": 3,
        "posterior": "sample",
        "invert": False,
    }
    ref = direct(ckpts, "b-sum-learnt", SMALL, n_saccades=5, seed=3, sample=True)
    np.testing.assert_allclose(data["steps"][-1]["probs"], ref.probs[-1], rtol=1e-5)


def test_the_first_screen_is_the_first_example_run_once(ckpts, monkeypatch):
    fresh = app.App(ckpts, ASSETS)
    calls = []
    real = ExploreTab.run
    monkeypatch.setattr(
        ExploreTab, "run", lambda self, *a, **k: calls.append(a) or real(self, *a, **k)
    )
    path, name, shown = fresh.explore.first_screen()
    assert (
        path == fresh.state.examples()[0][0]
        and name == fresh.state.checkpoint_choices(fresh.state.truth(path))[0][1]
    )
    assert f"`{name}`" in shown.status and len(shown.gallery) > 0
    demo = app.build_demo(fresh)  # the page's initial values are that run, not recomputed
    assert len(calls) == 1 and fresh.explore.first_screen().outputs is shown
    status = next(
        b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "explore-status"
    )
    assert status.value == shown.status
    assert (
        app.App(ckpts, ASSETS / "none").explore.first_screen() is None
    )  # no examples: placeholders


def test_a_new_tab_is_one_class_holding_the_shared_state(ckpts):
    """A ``Tab`` subclass added to ``App.tabs`` is built on the page inside its own
    ``gr.Tab``, with the app's one ``State`` (the tabs share it by reference), and its own
    event is wired; a tab that needs the checkpoint lists before Explore and Compare built
    them is told which are missing."""
    from saccade.app.page import Tab

    class NotesTab(Tab):
        title, id = "Notes", "notes"

        def build(self, page):
            count = gr.Markdown(elem_id="notes-count")
            gr.Button(elem_id="notes-run").click(self.count, outputs=[count], api_name="notes")

        def count(self):
            return f"{len(self.state.list_checkpoints())} checkpoints"

    the = app.App(ckpts, ASSETS)
    notes = NotesTab(the.state)
    assert notes.state is the.explore.state is the.train.state
    the.tabs = (*the.tabs, notes)
    demo = app.build_demo(the)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Explore", "Compare", "Train", "About", "Notes"]
    assert "notes" in {d.get("api_name") for d in demo.config["dependencies"]}
    assert notes.count() == "4 checkpoints"
    the.tabs = (the.train, the.explore, the.compare)  # Train first: no lists to update yet
    with pytest.raises(ValueError, match="checkpoint list.*checkpoint, learnt, fixed"):
        app.build_demo(the)


def test_a_look_names_one_session_folder():
    """``Look.session`` is a folder name whatever a caller passes (as ``session_id``)."""
    assert Look(session="../../etc").session == "etc"
    assert Look(session="").session == "anonymous" and Look().session == "anonymous"
    look = Look("x.png", "a", 0.1, 3, 2, "sample", True, None, "ab")
    assert look.with_checkpoint("b") == Look("x.png", "b", 0.1, 3, 2, "sample", True, None, "ab")


def test_outputs_are_wired_in_the_order_of_the_named_tuples(the_app):
    """Each event's outputs on the page are the fields of the named tuple its function
    returns, in order (``explore-gallery`` is ``ExploreOutputs.gallery``)."""
    config = app.build_demo(the_app).config
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    wired = {d.get("api_name"): [elem[i] for i in d["outputs"]] for d in config["dependencies"]}
    assert wired["explore"] == [f"explore-{f}" for f in ExploreOutputs._fields]
    assert wired["compare"] == ["compare-" + f.replace("_", "-") for f in CompareOutputs._fields]
    lists = ["explore-checkpoint", "compare-learnt", "compare-fixed"]
    assert wired["train"] == ["train-plot", "train-status", *lists]
    assert list(TrainOutputs._fields) == ["plot", "status", "checkpoint", "learnt", "fixed"]
    assert wired["on_load"] == lists
    assert wired["on_page_load"] == ["explore-unusable"]


def test_sample16_draws_16_posterior_samples_of_each_model(the_app, ckpts):
    from saccade.figures import sample_boxes

    fig = the_app.compare.sample16(
        Look(str(SMALL), proxy_noise=0.0, n_saccades=2), "b-sum-learnt", "a-sum-fixed"
    )
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split("<br>")[0] for t in titles] == [
        "learnt σ: b-sum-learnt",
        "fixed σ: a-sum-fixed",
    ]
    boxes = [tr for tr in fig.data if tr.type == "scatter" and not tr.showlegend]
    assert len(boxes) == 2 * 16 * 2  # two panels, 16 samples, 2 saccades
    assert [tr.name for tr in fig.data if tr.showlegend] == ["saccade 1", "saccade 2"]
    model = saccade.load(ckpts / "b-sum-learnt")
    ref = sample_boxes(model, image_io.to_model_image(SMALL), 16, 2)
    assert len({tuple(np.round(b, 3).ravel()) for b in ref}) > 1  # the samples differ
    # beside each panel: the samples that predict the example's class, the digits they saw
    outs = [
        saccade.predict(model, image_io.to_model_image(SMALL), 2, seed=s, sample=True)
        for s in range(16)
    ]
    right = sum(o.class_name == "4" for o in outs)
    assert f"{right} of 16 samples predict 4; they looked at" in titles[0]
    with pytest.raises(gr.Error, match="one dataset and task"):
        the_app.compare.sample16(Look(str(SINGLE)), "c-single-learnt", "a-sum-fixed")


def test_compare_pairs_only_checkpoints_of_one_task(the_app):
    with pytest.raises(gr.Error, match="one dataset and task.*cluttered/single.*cluttered/sum"):
        the_app.compare.run(Look(str(SINGLE)), "c-single-learnt", "a-sum-fixed")


def test_another_datasets_model_is_never_run_in_silence(the_app):
    status = the_app.explore.run(Look(str(MEGA), "b-sum-learnt")).status
    assert "`b-sum-learnt`" in status
    assert "from megapixel/majority, but the checkpoint was trained on cluttered/sum" in status
    assert "1500² canvas" in status
    assert "trained with T = 3 on cluttered/sum 100², proxy 32²" in status
    status = the_app.explore.run(Look(str(MEGA), "d-mega-learnt")).status
    assert "`d-mega-learnt`" in status and "⚠️" not in status
    assert "on megapixel/majority 1500², proxy 180²" in status
    summary = the_app.compare.run(Look(str(MEGA)), "b-sum-learnt", "a-sum-fixed").learnt_summary
    assert "another task" in summary


@pytest.mark.parametrize("name", ["nope", "../a-sum-fixed", str(ROOT / "checkpoints" / "x")])
def test_only_listed_checkpoints_are_opened(the_app, name):
    with pytest.raises(gr.Error, match="is not one of"):
        the_app.explore.run(Look(str(SMALL), name))


def test_no_checkpoints_is_a_clear_error(tmp_path):
    empty = app.App(tmp_path / "none", ASSETS)
    assert empty.state.checkpoint_choices() == []
    with pytest.raises(gr.Error, match="No checkpoints"):
        empty.explore.run(Look(str(SMALL)))
    with pytest.raises(gr.Error, match="No image"):
        app.App(tmp_path, ASSETS).explore.run(Look(None))


def test_bad_settings_are_clear_errors(the_app):
    with pytest.raises(gr.Error, match="n_saccades"):
        the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 0.0, 1000))
    with pytest.raises(gr.Error, match="noise"):
        the_app.explore.run(Look(str(SMALL), "b-sum-learnt", 2.0))


# ----------------------------------------------------------------------------- uploads


def make_upload(tmp_path: Path, kind: str) -> Path:
    """One file of each kind a user might upload, generated here."""
    rng = np.random.default_rng(0)
    digits = np.zeros((64, 64), np.uint8)
    digits[20:40, 25:35] = 255
    if kind == "not-an-image":
        p = tmp_path / "notes.png"
        p.write_text("a text file with an image's name")
    elif kind == "truncated":
        full = tmp_path / "full.png"
        Image.fromarray(rng.integers(0, 256, (300, 300), dtype=np.uint8)).save(full)
        p = tmp_path / "truncated.png"
        p.write_bytes(full.read_bytes()[:3000])
    elif kind == "zero":
        p = tmp_path / "zero.png"
        p.write_bytes(png_with_header(0, 0))
    elif kind == "one-pixel":
        p = tmp_path / "one.png"
        Image.new("L", (1, 1), 255).save(p)
    elif kind == "bomb":
        p = tmp_path / "bomb.png"
        p.write_bytes(png_with_header(50000, 50000))
    elif kind == "16-bit":
        p = tmp_path / "deep.png"
        Image.fromarray(digits.astype(np.uint16) * 257).save(p)
    elif kind == "cmyk":
        p = tmp_path / "cmyk.tif"
        cmyk = np.zeros((64, 64, 4), np.uint8)
        cmyk[..., 3] = 255 - digits  # black ink everywhere but the digit
        Image.fromarray(cmyk, "CMYK").save(p)
    elif kind == "palette":
        p = tmp_path / "pal.png"
        Image.fromarray(digits).convert("P").save(p)
    elif kind == "rgba":
        p = tmp_path / "rgba.png"
        rgba = np.dstack([digits] * 3 + [np.full_like(digits, 255)])
        rgba[:10, :10] = [255, 255, 255, 0]  # transparent white reads as black
        Image.fromarray(rgba, "RGBA").save(p)
    elif kind == "animated-gif":
        p = tmp_path / "anim.gif"
        frames = [Image.fromarray(digits), Image.fromarray(255 - digits)]
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    elif kind == "jpeg-rgb":
        p = tmp_path / "photo.jpg"
        Image.fromarray(np.dstack([digits] * 3)).save(p, quality=98)
    elif kind == "webp-gray":
        p = tmp_path / "img.webp"
        Image.fromarray(digits).save(p, lossless=True)
    elif kind == "bmp":
        p = tmp_path / "img.bmp"
        Image.fromarray(digits).save(p)
    else:
        raise AssertionError(kind)
    return p


BAD_UPLOADS = {
    "not-an-image": "is not an image",
    "truncated": "is truncated or corrupt",
    "zero": "'zero.png'",
    "one-pixel": "is 1x1 pixels; accepted: at least 8 px",
    "bomb": "50000x50000 = 2,500,000,000 pixels; accepted: at most",
}
GOOD_UPLOADS = ["16-bit", "cmyk", "palette", "rgba", "animated-gif", "jpeg-rgb", "webp-gray", "bmp"]


@pytest.mark.parametrize("kind", list(BAD_UPLOADS))
def test_bad_upload_is_a_clear_error(the_app, tmp_path, kind):
    path = make_upload(tmp_path, kind)
    with pytest.raises(gr.Error) as err:
        the_app.explore.run(Look(str(path), "b-sum-learnt"))
    assert err.value.message.startswith("Cannot use this image: ")
    assert BAD_UPLOADS[kind] in err.value.message


def test_an_example_click_runs_it_with_the_checkpoint_of_its_task(the_app):
    """What an example click runs (no Look press): the example's task's checkpoint is chosen,
    the saccades go to its T and the outputs are that run's."""
    new = the_app.explore.on_new_image(Look(str(SINGLE), "b-sum-learnt", 0.0, 3, 0, "mean"))
    assert new.checkpoint["value"] == "c-single-learnt" and new.n_saccades["value"] == 2
    out = new.outputs
    assert "c-single-learnt" in out.status and "100×100" in out.status
    ref = the_app.explore.run(Look(str(SINGLE), "c-single-learnt", 0.0, 2))
    assert out.gallery == ref.gallery and out.truth == ref.truth and "class `" in out.truth
    assert out.status.split(" · predict")[0] == ref.status.split(" · predict")[0]


def test_a_bad_upload_is_refused_on_arrival_in_the_status_line(the_app, tmp_path):
    """An upload runs when it arrives; a bad one puts its reason in the status line and
    clears every panel (no result of an earlier image stays), with no error raised."""
    path = make_upload(tmp_path, "truncated")
    new = the_app.explore.on_new_image(Look(str(path), "b-sum-learnt", 0.0, 3, 0, "mean"))
    out = new.outputs
    assert out.status.startswith("❌ **Cannot run:** Cannot use this image: ")
    assert BAD_UPLOADS["truncated"] in out.status
    assert out.gallery == [] and out.truth == "" and out.label is None
    assert not [tr for tr in out.trajectory.data]  # the placeholder, not an old trajectory
    assert new.checkpoint["value"] == "b-sum-learnt"  # an upload keeps the checkpoint
    look = the_app.explore.look(Look(str(path), "b-sum-learnt"))  # the Look button says the same
    assert look.status == out.status
    cleared = the_app.explore.on_new_image(Look(None, "b-sum-learnt")).outputs  # the image removed
    assert cleared.gallery == [] and "no image" in cleared.status


def test_a_dark_digit_on_white_paper_is_offered_invert(the_app, ckpts, tmp_path):
    """A light ground: the status line suggests Invert; with it the model sees exactly the
    negative (what it learnt: light digits on black), and the hint goes."""
    paper = 255 - image_io.to_model_image(SMALL)  # the example, dark on white
    path = tmp_path / "paper.png"
    Image.fromarray(paper).save(path)
    plain = the_app.explore.look(Look(str(path), "b-sum-learnt"))
    assert "tick **Invert**" in plain.status
    inverted = the_app.explore.look(Look(str(path), "b-sum-learnt", invert=True))
    assert "Invert**" not in inverted.status and "inverted" in inverted.status
    ref = direct(ckpts, "b-sum-learnt", SMALL)  # the example itself, light on black
    assert max(inverted.label, key=inverted.label.get) == ref.class_names[ref.label]
    assert "tick **Invert**" not in the_app.explore.look(Look(str(SMALL), "b-sum-learnt")).status


def test_a_changed_setting_marks_the_result_out_of_date():
    from saccade.app.explore import STALE, mark_stale

    status = "**7** after 3 saccades (p = 0.50) · checkpoint `b-sum-learnt`"
    stale = mark_stale(status)
    assert stale.startswith(STALE) and "press **Look**" in stale and stale.endswith(status)
    assert mark_stale(stale) == stale  # marked once
    assert mark_stale("❌ **Cannot run:** x") == "❌ **Cannot run:** x"


@pytest.mark.parametrize("kind", GOOD_UPLOADS)
def test_accepted_uploads_are_converted_as_in_training(the_app, tmp_path, kind):
    path = make_upload(tmp_path, kind)
    out = the_app.explore.run(Look(str(path), "b-sum-learnt"))
    image, _ = the_app.state.image(str(path))
    assert image.shape == (64, 64) and image.dtype == np.uint8
    assert (
        image[30, 30] > 230 and image[5, 5] < 25 and image[50, 50] < 25
    )  # digit bright, rest dark
    assert len(out.gallery) == 3


# ----------------------------------------------------------------------------- Compare


def test_compare_runs_both_variance_modes(the_app, ckpts):
    out = the_app.compare.run(
        Look(str(BIG), proxy_noise=0.0, n_saccades=0, seed=0, posterior="mean"),
        "b-sum-learnt",
        "a-sum-fixed",
    )
    assert len(out) == 8
    traj_l, sigma_l, label_l, md_l, traj_f, sigma_f, label_f, md_f = out
    ref_l = direct(ckpts, "b-sum-learnt", BIG)
    ref_f = direct(ckpts, "a-sum-fixed", BIG)
    for traj, ref in ((traj_l, ref_l), (traj_f, ref_f)):
        crop = next(s for s in traj.layout.shapes if s.name == "crop")
        np.testing.assert_allclose([crop.x0, crop.y0, crop.x1, crop.y1], ref.boxes[-1])
    assert "learnt" in sigma_l.layout.title.text and "fixed" in sigma_f.layout.title.text
    assert np.ptp(sigma_f.data[0].y) == 0  # the scale's σ is the constant in fixed mode
    # one σ axis for both models, up to the larger σ of the two, so that they compare
    top = max(ref_l.sigma.max(), ref_f.sigma.max())
    assert tuple(sigma_l.layout.yaxis.range) == tuple(sigma_f.layout.yaxis.range)
    assert sigma_l.layout.yaxis.range[1] == pytest.approx(1.05 * top)
    assert max(label_f, key=label_f.get) == ref_f.class_names[ref_f.label]
    assert "`b-sum-learnt`" in md_l and "Truth `4`" in md_f
    # defaults pick one checkpoint of each mode
    assert len(the_app.compare.run(Look(str(SMALL)))) == 8


def test_compare_offers_only_examples_with_a_learnt_and_a_fixed_checkpoint(the_app, tmp_path):
    """Compare's examples are those whose dataset and task has both modes among the
    checkpoints (the fixture: cluttered/sum only), and the tab opens on the first one run."""
    offered = [Path(p).stem for p, _ in the_app.compare.examples()]
    assert offered == ["cluttered-sum-100-0", "cluttered-sum-2528-0"]
    for path, _ in the_app.compare.examples():  # each runs: no refusal
        out = the_app.compare.look(Look(path))
        assert "❌" not in out.learnt_summary + out.fixed_summary
    path, learnt, fixed, out = the_app.compare.first_screen()
    assert (Path(path).stem, learnt, fixed) == (
        "cluttered-sum-100-0",
        "b-sum-learnt",
        "a-sum-fixed",
    )
    assert "`b-sum-learnt`" in out.learnt_summary and "`a-sum-fixed`" in out.fixed_summary
    # a fixed checkpoint shipped later adds its task's examples
    folder = tmp_path / "more"
    folder.mkdir()
    write_tiny_checkpoint(folder, "s-learnt", task="single", n_saccades=2)
    assert app.App(folder, ASSETS).compare.examples() == []
    write_tiny_checkpoint(folder, "s-fixed", task="single", variance="fixed", n_saccades=2)
    assert [Path(p).stem for p, _ in app.App(folder, ASSETS).compare.examples()] == [
        "cluttered-single-100-0"
    ]


def test_a_compare_example_click_runs_it_and_a_refusal_is_shown_in_place(the_app):
    new = the_app.compare.on_new_image(
        Look(str(BIG), proxy_noise=0.0, n_saccades=0, seed=0, posterior="mean"), None, None
    )
    assert new.learnt["value"] == "b-sum-learnt" and new.fixed["value"] == "a-sum-fixed"
    assert "`b-sum-learnt`" in new.outputs.learnt_summary
    bad = the_app.compare.look(Look(str(SINGLE)), "c-single-learnt", "a-sum-fixed")
    assert bad.learnt_summary.startswith("❌ **Cannot run:** Compare pairs two checkpoints")
    assert bad.learnt_label is None and not list(bad.learnt_trajectory.data)


def test_compare_needs_both_modes(tmp_path):
    write_tiny_checkpoint(tmp_path, "only-learnt")
    with pytest.raises(gr.Error, match="fixed-variance checkpoint"):
        app.App(tmp_path, ASSETS).compare.run(Look(str(SMALL)))


# ----------------------------------------------------------------------------- Train


@pytest.mark.slow
def test_train_streams_curves_and_adds_the_checkpoint(tmp_path, ckpts):
    folder = tmp_path / "ckpts"
    trainer = app.App(folder, ASSETS, train_options=TINY_TRAINING, runs=tmp_path / "runs")
    bar = []  # what the progress bar is given, in order

    def progress(value, desc=""):
        bar.append((value, desc))

    updates = list(trainer.train.run("cluttered:single", 100, "fixed", 2, 4, 0, progress=progress))
    assert len(updates) >= 2
    # it fills step by step and stays full to the end (the final test event moves nothing)
    values = [v for v, _ in bar]
    assert values[0] == 0.0 and values == sorted(values) and values[-1] == 1.0
    assert bar[-1][1] == "step 4/4 (evaluating)" and ("step 2/4" in [d for _, d in bar])
    fig, status, explore_dd, learnt_dd, fixed_dd = updates[-1]
    losses = next(tr for tr in fig.data if tr.name == "loss")
    assert list(losses.x) == [1, 2, 3, 4] and all(np.isfinite(losses.y))
    name = explore_dd["value"]
    assert re.fullmatch(r"cluttered-single-fixed-T2-\d{8}-\d{6}", name)
    own = tmp_path / "runs" / "anonymous"  # an API call without a browser session
    assert name in status and (own / f"{name}.safetensors").is_file()
    assert not (own / f"{name}.state.safetensors").exists()  # no resuming in the app
    assert not folder.exists()  # nothing written beside the shipped checkpoints
    assert name in [v for _, v in fixed_dd["choices"]] and learnt_dd["choices"] == []
    meta = trainer.state.list_checkpoints("anonymous")[0]
    assert meta["variance"] == "fixed" and meta["n_saccades"] == 2 and meta["task"] == "single"
    out = trainer.explore.run(Look(str(SINGLE), name))  # the new model is usable right away
    assert len(out.gallery) == 2


@pytest.mark.slow
def test_a_checkpoint_trained_in_one_session_is_listed_in_that_session_only(tmp_path, ckpts):
    runs = tmp_path / "runs"
    shipped = {p.name: p.stat().st_mtime for p in ckpts.iterdir()}
    trainer = app.App(ckpts, ASSETS, train_options=TINY_TRAINING, runs=runs, max_runs=2)
    alice, bob = Session("alice-1"), Session("bob/../2")
    default = trainer.state.checkpoint_choices()[0][1]
    names = []
    for _ in range(3):
        *_, last = trainer.train.run("cluttered:single", 100, "learnt", 2, 1, 0, request=alice)
        names.append(last.checkpoint["value"])
        time.sleep(1.1)  # generated names carry the second
    # Alice sees her newest runs (the cap of 2 removed the oldest), after the shipped ones
    alice_names = [v for _, v in trainer.state.checkpoint_choices(session="alice1")]
    assert alice_names[: len(shipped_names(ckpts))] == shipped_names(ckpts)
    assert names[0] not in alice_names and names[1:] == alice_names[-2:]
    assert (
        "yours"
        in dict((v, k) for k, v in trainer.state.checkpoint_choices(session="alice1"))[names[2]]
    )
    # Bob sees none of them, and cannot open them by name; the defaults stay the shipped ones
    assert not set(names) & {v for _, v in trainer.state.checkpoint_choices(session="bob2")}
    with pytest.raises(gr.Error, match="is not one of"):
        trainer.explore.run(Look(str(SINGLE), names[2], session=bob.session_hash))
    page = Page(trainer.state, None)
    assert page.on_load(None, None, None, request=bob).checkpoint["value"] == default
    assert trainer.explore.on_image(str(SINGLE), None, request=alice)["value"] == "c-single-learnt"
    assert (
        len(trainer.explore.run(Look(str(SINGLE), names[2], session=alice.session_hash)).gallery)
        == 2
    )
    # the shipped checkpoints were not touched; only the runs folder was written
    assert {p.name: p.stat().st_mtime for p in ckpts.iterdir()} == shipped
    assert sorted(p.name for p in runs.iterdir()) == ["alice1"]
    # Alice deletes hers; Bob's list is as it was
    status, explore_dd, *_ = trainer.train.delete_my_runs(request=alice)
    assert "Deleted 2" in status and explore_dd["value"] == default
    assert trainer.state.list_checkpoints("alice1") == trainer.state.list_checkpoints()


def shipped_names(folder: Path) -> list[str]:
    return [m["name"] for m in saccade.list_checkpoints(folder)]


def test_the_train_tab_can_be_turned_off(tmp_path, monkeypatch):
    off = app.App(tmp_path / "none", ASSETS, runs=tmp_path / "runs", allow_train=False)
    with pytest.raises(gr.Error, match="turned off"):
        next(off.train.run("cluttered:single", 100, "learnt", 2, 1, 0))
    demo = app.build_demo(off)
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert [t.label for t in tabs if not t.visible] == ["Train"]
    seen = {}
    monkeypatch.setattr(app.demo, "launch", lambda demo, **kw: seen.update(demo=demo))
    monkeypatch.setattr(ExploreTab, "warm", lambda self: None)
    monkeypatch.setenv("SACCADE_NO_TRAIN", "1")
    app.main(["--checkpoints", str(tmp_path / "none"), "--runs", str(tmp_path / "runs")])
    train_tab = [b for b in seen["demo"].blocks.values() if isinstance(b, gr.Tab)]
    assert [t.label for t in train_tab if not t.visible] == ["Train"]


def test_train_task_sets_its_canvas_side():
    assert TrainTab.on_train_task("megapixel:majority")["value"] == 1500
    assert TrainTab.on_train_task("cluttered:sum")["value"] == 100


@pytest.mark.parametrize(
    "args,message",
    [
        (("cluttered:nope", 100, "learnt", 2, 4, 0), "Unknown task"),
        (("cluttered:single", 100, "maybe", 2, 4, 0), "Variance mode"),
        (("cluttered:single", 100, "learnt", 2, 10**6, 0), "Steps must be"),
        (("cluttered:single", 100, "learnt", 2, 4, 600), "Minutes must be"),
    ],
)
def test_train_refuses_bad_settings(tmp_path, args, message):
    with pytest.raises(gr.Error, match=message):
        next(app.App(tmp_path, ASSETS, runs=tmp_path / "runs").train.run(*args))
    assert not list(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- About


def test_about_tables_read_what_exists(tmp_path):
    rows = [
        {
            "model": "vs",
            "dataset": "cluttered",
            "side": 100,
            "phase": "infer",
            "ms_per_image": 3.0,
            "peak_mb": 12.0,
        }
    ]
    import json

    (tmp_path / "bench-x.json").write_text(json.dumps(rows))
    (tmp_path / "eval-m.json").write_text(
        json.dumps({"accuracy": 0.91, "per_saccade": [0.5, 0.91]})
    )
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "no-kl.json").write_text(json.dumps({"accuracy": 0.8}))
    out = app.App(tmp_path, tmp_path).about.results()
    assert out.eval_rows == [{"run": "m", "accuracy": 0.91}]
    assert out.bench_rows[0]["ms_per_image"] == 3.0 and len(out.bench_figure.data) == 1
    assert [list(tr.y) for tr in out.saccades.data] == [[0.5, 0.91]]
    assert not out.noise.data and not out.localisation.data  # not measured in eval-m
    assert list(out.ablations.data[0].x) == ["no-kl"] and list(out.ablations.data[0].y) == [0.8]
    assert app.App(tmp_path, tmp_path / "none").about.results().eval_rows == []


def test_about_plots_every_result_in_the_shipped_assets():
    """Each eval run's per-saccade accuracy, noise curve and localisation, the ablations and
    the benchmark parts are each a plot (as the About tab shows them)."""
    evals = [s.name for s in ASSETS.glob("eval-*.json")]
    out = app.App(ASSETS, ASSETS).about.results()
    assert len(out.saccades.data) == len(evals) == len(out.eval_rows)
    assert list(out.eval_rows[0])[:2] == ["run", "accuracy"]
    located = [
        s for s in ASSETS.glob("eval-*.json") if json.loads(s.read_text()).get("localisation")
    ]
    assert len(out.localisation.data) == len(located) < len(evals)  # not the baselines'
    noisy = [t for t in out.noise.data if len(t.x) > 1]
    assert noisy and all(list(t.x) == sorted(t.x) and t.x[0] == 0.0 for t in noisy)
    assert len(out.ablations.data[0].x) == len(list((ASSETS / "ablations").glob("*.json")))
    assert out.bench_figure.data
    # the saccade axes have whole-number ticks only
    assert all(
        ax.tickformat == "d" for ax in (out.saccades.layout.xaxis, out.saccades.layout.xaxis2)
    )


def test_about_shows_the_headline_benchmark_apart_from_the_parts(tmp_path):
    import json

    row = {"dataset": "cluttered", "side": 2528, "batch": 4, "device": "cpu", "status": "ok"}
    rows = [
        row
        | {"model": "vs", "phase": "train", "ms_per_image": 2.0, "peak_mb": 50.0}
        | {"params": 1_757_281},
        row
        | {"model": "resnet18-grid", "phase": "train", "ms_per_image": 9000.0}
        | {"peak_mb": 5000.0, "params": 11_175_370},
        row
        | {"model": "resnet18-grid", "phase": "epoch", "ms_per_image": None}
        | {"peak_mb": None, "status": "over the time cap (300 s)"},
    ]
    assert app.App(tmp_path, tmp_path).about.headline() is None
    (tmp_path / "bench-headline.json").write_text(json.dumps(rows))
    table, fig = app.App(tmp_path, tmp_path).about.headline()
    assert "| 2528 (c) | vs | 2.00 |  | 50 |" in table  # compact: train ms, epoch, MB
    assert "over the time cap (300 s)" in table
    assert {t.name for t in fig.data} == {"vs (cluttered)", "resnet18-grid (cluttered)"}
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert app.App(tmp_path, tmp_path).about.results().bench_rows == []  # not among the parts' rows


# ----------------------------------------------------------------------------- served


@pytest.fixture(scope="module")
def served(the_app, free_port):
    demo = app.build_demo(the_app)
    app.launch(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served, verbose=False, download_files=False)


@pytest.mark.slow
def test_client_explore_with_only_the_image(client, ckpts):
    from gradio_client import handle_file

    result = ExploreOutputs(*client.predict(handle_file(str(BIG)), api_name="/explore"))
    assert len(result) == 8
    label = result.label
    # the dropdown's default: the checkpoint of the first screen (the first example's best)
    ref = direct(ckpts, "b-sum-learnt", BIG)
    assert label["label"] == ref.class_names[ref.label]
    assert "2528×2528" in result.status and "b-sum-learnt" in result.status
    assert len(result.gallery) == 3


@pytest.mark.slow
def test_client_endpoints_and_defaults(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = info["/explore"]["parameters"]
    # every parameter has a default: the image's is the first screen's example
    assert params[0]["parameter_name"] == "image"
    assert all(p["parameter_has_default"] for p in params)
    assert {"/explore", "/compare", "/train"} <= set(info)
    assert not any(name.startswith("/on_") for name in info)  # helpers stay private


@pytest.mark.slow
def test_client_bad_uploads_then_app_keeps_serving(client, tmp_path):
    from gradio_client import handle_file

    for kind, message in BAD_UPLOADS.items():
        with pytest.raises(Exception, match=re.escape(message)):
            client.predict(handle_file(str(make_upload(tmp_path, kind))), api_name="/explore")
    with pytest.raises(Exception, match="Invalid file type"):
        txt = tmp_path / "notes.txt"
        txt.write_text("hello")
        client.predict(handle_file(str(txt)), api_name="/explore")
    result = ExploreOutputs(
        *client.predict(
            handle_file(str(SMALL)), "b-sum-learnt", 0.2, 4, 1, "sample", api_name="/explore"
        )
    )
    assert len(result.gallery) == 4 and "b-sum-learnt" in result.status


@pytest.mark.slow
def test_client_compare(client, ckpts):
    """/compare with only the image: one checkpoint of each mode, and what each panel shows
    (label, probability, last crop, σ) is what ``saccade.predict`` gives for it."""
    from gradio_client import handle_file

    out = CompareOutputs(*client.predict(handle_file(str(SMALL)), api_name="/compare"))
    assert "`b-sum-learnt`" in out.learnt_summary and "`a-sum-fixed`" in out.fixed_summary
    panels = {
        "b-sum-learnt": (out.learnt_label, out.learnt_trajectory, out.learnt_sigma),
        "a-sum-fixed": (out.fixed_label, out.fixed_trajectory, out.fixed_sigma),
    }
    ranges, top = [], 0.0
    for name, (label, trajectory, sigma) in panels.items():
        ref = direct(ckpts, name, SMALL)
        assert label["label"] == ref.class_name, name
        shown = {c["label"]: c["confidence"] for c in label["confidences"]}
        assert shown[ref.class_name] == pytest.approx(ref.probs[-1].max(), abs=1e-5), name
        shapes = json.loads(trajectory["plot"])["layout"]["shapes"]
        crop = next(s for s in shapes if s.get("name") == "crop")
        drawn = [crop["x0"], crop["y0"], crop["x1"], crop["y1"]]
        np.testing.assert_allclose(drawn, np.clip(ref.boxes[-1], 0, 100), atol=1e-3)
        sigma = json.loads(sigma["plot"])
        ranges.append(sigma["layout"]["yaxis"]["range"])
        top = max(top, float(ref.sigma.max()))
        if name.endswith("fixed"):  # the scale's σ is the constant in fixed mode
            assert np.ptp(sigma["data"][0]["y"]) == 0
    assert ranges[0] == ranges[1] and ranges[0][1] == pytest.approx(1.05 * top)


def test_about_lists_only_the_figures_that_exist(tmp_path):
    (tmp_path / "noise-test.png").write_bytes(b"")  # only its presence matters here
    figures = app.App(tmp_path, tmp_path).about.figures()
    assert figures == [(str(tmp_path / "noise-test.png"), AboutTab.FIGURES["noise-test.png"])]


def test_about_shows_the_poster_figures_with_their_verdicts(tmp_path, ckpts):
    """The poster's figures (python -m saccade.figures --poster) appear in the built About tab
    when their PNGs exist, each beside the paper's claim and poster-summary.json's verdict."""
    assert app.App(ckpts, tmp_path).about.poster() == []
    for name in ("poster-learnt-fixed-2528.png", "poster-noisy-proxy.png"):
        Image.new("L", (8, 8)).save(tmp_path / name)
    bare = app.App(ckpts, tmp_path).about.poster()  # no summary yet: no verdict
    assert [Path(f.path).name for f in bare] == [
        "poster-learnt-fixed-2528.png",
        "poster-noisy-proxy.png",
    ]
    assert [f.measured for f in bare] == ["", ""] and "95.2%" in bare[0].claim
    verdicts = {"learnt_fixed": {"verdict": "Over 3 and 3 seeds: neither ends higher."}}
    verdicts["noisy_proxy"] = {"verdict": "noise 0: 90.0%, noise 0.3: 80.0%."}
    (tmp_path / "poster-summary.json").write_text(json.dumps(verdicts))
    the = app.App(ckpts, tmp_path)
    shown = the.about.poster()
    assert [f.measured for f in shown] == [v["verdict"] for v in verdicts.values()]
    blocks = {
        b.elem_id: b for b in app.build_demo(the).blocks.values() if getattr(b, "elem_id", None)
    }
    assert Path(blocks["about-poster-0"].value["path"]).name == "poster-learnt-fixed-2528.png"
    assert "neither ends higher" in blocks["about-poster-0-text"].value
    assert "noise 0.3: 80.0%" in blocks["about-poster-1-text"].value
    (tmp_path / "poster-summary.json").write_text("{not json")  # unreadable: no verdict
    assert [f.measured for f in app.App(ckpts, tmp_path).about.poster()] == ["", ""]


@pytest.mark.slow
def test_served_sessions_do_not_see_each_others_checkpoints(tmp_path, ckpts, free_port):
    """Two gradio_client sessions on a real server: what one trains, the other cannot run."""
    from gradio_client import Client, handle_file

    runs = tmp_path / "runs"
    trainer = app.App(ckpts, ASSETS, train_options=TINY_TRAINING, runs=runs)
    demo = app.build_demo(trainer)
    app.launch(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        alice = Client(demo.local_url, verbose=False, download_files=False)
        bob = Client(demo.local_url, verbose=False, download_files=False)
        out = TrainOutputs(
            *alice.predict("cluttered:single", 100, "learnt", 2, 1, 0, api_name="/train")
        )
        name = out.checkpoint["value"]  # the Explore dropdown's update
        assert re.fullmatch(r"cluttered-single-learnt-T2-\d{8}-\d{6}", name)
        assert [p.name for p in runs.iterdir()] == [re.sub(r"[^A-Za-z0-9]", "", alice.session_hash)]
        mine = ExploreOutputs(*alice.predict(handle_file(str(SINGLE)), name, api_name="/explore"))
        assert f"`{name}`" in mine.status
        # refused by Gradio's check of the session's dropdown choices, or by the app's
        with pytest.raises(Exception, match="is not one of|is not in the list of choices"):
            bob.predict(handle_file(str(SINGLE)), name, api_name="/explore")
    finally:
        demo.close()


def test_train_status_and_plot_of_a_one_step_run():
    # the epoch-end event has no total_steps: the status keeps the run's
    status = TrainTab._train_status("run", {"epoch": 1, "step": 1, "val_acc": 0.1}, 1)
    assert "step 1/1" in status and "None" not in status
    fig = viz.training_figure([{"step": 1, "loss": 2.0, "ce": 2.3, "train_acc": 0.1}])
    one_point = [tr for tr in fig.data if tr.name in ("loss", "ce", "train_acc")]
    assert len(one_point) == 3 and all("markers" in tr.mode for tr in one_point)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0


@pytest.mark.slow
def test_the_server_log_gets_one_line_per_refused_request(tmp_path, ckpts, free_port):
    """`python app.py` as a real process: three refused requests give three `refused:` lines
    and no traceback, and the next good request succeeds."""
    import subprocess
    import sys

    from gradio_client import Client, handle_file

    port = free_port()
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    args += ["--checkpoints", str(ckpts), "--runs", str(tmp_path / "runs")]
    server = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        for _ in range(120):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
                break
            except Exception:
                time.sleep(0.5)
        files = {"text.png": b"not an image", "empty.png": b"", "page.png": b"<html></html>"}
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
            with pytest.raises(Exception, match="Cannot use this image"):
                client.predict(handle_file(str(tmp_path / name)), api_name="/explore")
        assert (
            len(client.predict(handle_file(str(SMALL)), "b-sum-learnt", api_name="/explore")) == 8
        )
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    refused = [line for line in log.splitlines() if line.startswith("refused: ")]
    assert len(refused) == 3, log
    assert "Traceback" not in log and all("Cannot use this image" in line for line in refused)


def test_a_colour_checkpoint_sees_an_upload_in_colour(tmp_path):
    """A folder-trained colour checkpoint: the upload reaches the model as RGB, the proxy and
    crops are shown in colour, the label is one of the checkpoint's class names."""
    from saccade.models.vs import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(
        n_classes=2, class_names=["cat", "dog"], channels=3, proxy_size=16,
        dataset={"name": "folder", "task": "classify", "size": 64, "side": 64},
    )  # fmt: skip
    saccade.save(saccade.VariationalSaccader(config), tmp_path / "ck" / "rgb")
    a = np.zeros((64, 64, 3), np.uint8)
    a[:32, :, 0] = 255  # red top half
    Image.fromarray(a).save(tmp_path / "up.png")
    the = app.App(tmp_path / "ck", ASSETS)
    model, out = the.state.run(Look(str(tmp_path / "up.png"), "rgb", 0.0, 2, 0, "mean"))
    assert out.image.shape == (64, 64, 3) and out.image[:32, :, 0].min() == 255
    assert out.proxy.shape == (3, 16, 16) and out.class_name in ("cat", "dog")
    result = the.explore.run(Look(str(tmp_path / "up.png"), "rgb", 0.0, 2))
    assert len(result) == 8
    crop = viz.channels_last(out.crops[0])
    assert crop.shape == (32, 32, 3)


# ----------------------------------------------------------------------------- the zoom example

ZOOM = ASSETS / "zoom-32768-0.tif"


@pytest.fixture(scope="module")
def zoom_app(tmp_path_factory) -> app.App:
    """An app with a tiny learnt and a tiny fixed zoom checkpoint (any zoom/ring checkpoint
    is offered for the zoom example), and a cluttered one."""
    from tests.helpers import zoom_model

    folder = tmp_path_factory.mktemp("zoom-checkpoints")
    saccade.save(zoom_model(), folder / "z-learnt", {"test_accuracy": 0.1})
    saccade.save(zoom_model(seed=1, variance="fixed"), folder / "z-fixed")
    write_tiny_checkpoint(folder, "b-sum-learnt")
    return app.App(folder, ASSETS)


def test_the_zoom_example_is_offered_and_runs_as_a_slide(zoom_app, tmp_path):
    """The committed zoom example (a 32,768² pyramidal TIFF, 0.4 MB) is one of Explore's
    examples; a copy of it (Gradio hands the example over as a copy) is run as that slide,
    tile by tile: the same crops as ``saccade.predict`` on the TIFF and on the canvas."""
    assert ZOOM.stat().st_size < 1.5 * 2**20
    assert str(ZOOM) in [p for p, _ in zoom_app.state.examples()]
    copy = tmp_path / "upload" / "zoom-32768-0.tif"
    copy.parent.mkdir()
    copy.write_bytes(ZOOM.read_bytes())
    assert zoom_app.state.example_slide(str(copy)) == ZOOM
    new = zoom_app.explore.on_new_image(Look(str(copy)))
    assert new.checkpoint["value"] == "z-learnt"  # the example's task first, learnt first
    out = new.outputs
    model = zoom_app.state.model("z-learnt")
    expected = saccade.predict(model, str(ZOOM))
    canvas, ann = saccade.make_dataset("zoom", split="test", size=32768).canvas(0)
    np.testing.assert_allclose(saccade.predict(model, canvas).boxes, expected.boxes, atol=1e-3)
    frames = out.trajectory.layout.updatemenus[0].buttons[0].args[0]
    for t, frame in enumerate(frames):
        crop = next(s for s in frame["layout"]["shapes"] if s["name"] == "crop")
        drawn = np.clip(expected.boxes[t], 0, 32768)  # a crop past the border is drawn clipped
        np.testing.assert_allclose([crop[k] for k in ("x0", "y0", "x1", "y1")], drawn, atol=1e-3)
    assert "image 32768×32768" in out.status and "❌" not in out.status
    assert f"class `{ann['label']}`" in out.truth
    assert len(out.gallery) == len(expected.boxes)
    # invert runs on a slide too: every read of it inverted
    inverted = zoom_app.explore.look(Look(str(copy), "z-learnt", invert=True))
    assert "· inverted" in inverted.status and "❌" not in inverted.status


def test_explore_draws_the_zoom_chain_of_a_large_image_only(zoom_app):
    """On the zoom example the chain has one panel per step, each step's box at
    ``saccade.predict``'s level-0 box and titled with its side and the level it read; on a
    small image the panel is hidden."""
    look = Look(str(ZOOM), "z-learnt", n_saccades=3)
    zoom_app.explore.run(look)
    fig = zoom_app.explore.chain(look)
    expected = saccade.predict(zoom_app.state.model("z-learnt"), str(ZOOM), n_saccades=3)
    k = expected.crops.shape[-1]
    for t, box in enumerate(expected.boxes):
        suffix = "" if t == 0 else str(t + 1)
        (shape,) = [s for s in fig.layout.shapes if s.name == f"step {t + 1}"]
        assert (shape.xref, shape.yref) == (f"x{suffix}", f"y{suffix}")
        np.testing.assert_allclose([shape.x0, shape.y0, shape.x1, shape.y1], box, atol=1e-3)
        side = float(box[2] - box[0])
        level = int(np.floor(np.log2(side / k)))
        assert fig.layout.annotations[t].text.startswith(
            f"step {t + 1}: {side:,.0f} px crop, level {level}"
        )
    # the ground-truth digit is drawn where a panel shows it (dotted "truth" shapes)
    truth = zoom_app.state.truth(str(ZOOM))["boxes"][0]
    for s in fig.layout.shapes:
        if s.name == "truth":
            np.testing.assert_allclose([s.x0, s.y0, s.x1, s.y1], truth)
    # the same figure when the run is not remembered (predicted again: same crops)
    fresh = app.App(zoom_app.state.checkpoints, ASSETS)
    again = fresh.explore.chain(look)
    assert [s.x0 for s in again.layout.shapes] == [s.x0 for s in fig.layout.shapes]
    shown = zoom_app.explore.on_chain(look)
    assert shown["visible"] is True and shown["value"] is not None
    small = zoom_app.explore.on_chain(Look(str(SMALL), "b-sum-learnt"))
    assert small["visible"] is False and small["value"] is None
    # a refused run hides it (its status line says why)
    assert zoom_app.explore.on_chain(Look(str(ZOOM), "nope"))["visible"] is False


def test_the_chain_panel_follows_every_run_on_the_page(zoom_app):
    """The page wires the chain panel (``zoom-chain``) after Look, an example click, an
    upload and a cleared image, each with the run's inputs; the API's /explore keeps its 8
    outputs."""
    demo = app.build_demo(zoom_app)
    config = demo.get_config_file()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    chain_events = [
        d for d in config["dependencies"] if [ids.get(o) for o in d["outputs"]] == ["zoom-chain"]
    ]
    assert len(chain_events) == 4
    assert all(ids.get(d["inputs"][0]) == "explore-image" for d in chain_events)
    explore = next(d for d in config["dependencies"] if d.get("api_name") == "explore")
    assert len(explore["outputs"]) == 8


def test_compare_runs_learnt_against_fixed_on_the_zoom_example(zoom_app):
    """With a learnt and a fixed zoom checkpoint, Compare offers the zoom example and runs
    both on it (the slide read tile by tile), each side's boxes those of ``saccade.predict``;
    its 16 posterior samples are drawn over the slide's thumbnail."""
    assert str(ZOOM) in [p for p, _ in zoom_app.compare.examples()]
    out = zoom_app.compare.run(Look(str(ZOOM)))
    for name, traj, summary in (
        ("z-learnt", out.learnt_trajectory, out.learnt_summary),
        ("z-fixed", out.fixed_trajectory, out.fixed_summary),
    ):
        expected = saccade.predict(zoom_app.state.model(name), str(ZOOM))
        crop = next(s for s in traj.layout.shapes if s.name == "crop")
        drawn = np.clip(expected.boxes[-1], 0, 32768)
        np.testing.assert_allclose([crop.x0, crop.y0, crop.x1, crop.y1], drawn, atol=1e-3)
        assert f"`{name}`" in summary and "32768×32768" in summary and "Truth `3`" in summary
    fig = zoom_app.compare.sample16(Look(str(ZOOM)))
    assert "z-learnt" in fig.layout.annotations[0].text
    thumb = saccade.predict(zoom_app.state.model("z-learnt"), str(ZOOM), seed=0, sample=True)
    # drawn over the thumbnail shown at 512 px: level-0 pixels x image_scale x 512 / its side
    first = thumb.boxes[0] * thumb.image_scale * 512 / thumb.image.shape[1]
    np.testing.assert_allclose(min(fig.data[1].x), first[0], rtol=1e-4)


def test_about_draws_accuracy_against_canvas_side_when_measured(tmp_path, ckpts):
    """About's zoom figure: one line per model from assets/eval-zoom-*.json and the zoom
    baselines' JSON (``python -m saccade.evaluate``'s fields), a point per canvas side; a
    sentence and no plot before there is any."""

    def blocks(assets):
        demo = app.build_demo(app.App(ckpts, assets))
        return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}

    none = blocks(tmp_path)
    assert "about-zoom-sides" not in none and "No zoom evaluation yet" in str(
        none["about-zoom-sides-none"].value
    )
    runs = {
        "eval-zoom-ring-learnt.json": ("vs", "learnt", "learnt", 32768, 0.93),
        "eval-zoom-ring-learnt-65536.json": ("vs", "learnt", "learnt", 65536, 0.88),
        "eval-zoom-ring-learnt-policy-scale-max.json": ("vs", "scale-max", "learnt", 32768, 0.3),
        "eval-baseline-resnet18-proxy-zoom-ring.json": ("resnet18-proxy", None, None, 32768, 0.11),
        "eval-cluttered-sum-learnt-x.json": ("vs", "learnt", "learnt", 100, 0.99),  # not zoom
        "eval-zoom-other.json": ("vs", "learnt", "learnt", 32768, 0.5),  # another learnt model
        "eval-zoom-ring-learnt-65536-pixels.json": ("vs", "learnt", "learnt", 65536, 0.34),
        "eval-zoom-ring-learnt-on-mean.json": ("vs", "learnt", "learnt", 32768, 0.97),
    }
    for name, (model, policy, variance, size, acc) in runs.items():
        data = {"model": model, "policy": policy, "variance": variance, "size": size}
        if "on-mean" in name:  # --zoom-render mean: the area-average renderer's canvases
            data["render"] = "mean"
        if name.endswith("-pixels.json"):  # --canvas-layout pixels: the proxy scaled
            data["canvas_layout"] = "pixels"
        if name == "eval-zoom-other.json":
            data["checkpoint"] = "checkpoints/stages/zoom-other"
        data |= {"dataset": "cluttered" if "cluttered" in name else "zoom", "accuracy": acc}
        (tmp_path / name).write_text(json.dumps(data | {"n": 2000, "task": "ring"}))
    fig = app.App(ckpts, tmp_path).about.zoom_sides()
    lines = {t.name: (list(t.x), list(t.y)) for t in fig.data}
    assert lines == {
        "VS learnt σ": ([32768, 65536], [93.0, 88.0]),
        "VS learnt σ, scale-max": ([32768], [30.0]),
        "VS zoom-other": ([32768], [50.0]),  # its own line, named for its checkpoint
        "VS learnt σ, proxy scaled": ([65536], [34.0]),  # the layout's ablation, its own line
        "VS learnt σ, mean render": ([32768], [97.0]),  # the other renderer: its own line
        "resnet18-proxy": ([32768], [11.0]),
    }
    assert fig.layout.xaxis.type == "log"
    assert blocks(tmp_path)["about-zoom-sides"].value is not None


def test_export_of_the_zoom_example_names_the_example_not_the_servers_path(zoom_app, tmp_path):
    """Export on the zoom example: a GIF of one frame per saccade and the run's JSON, whose
    boxes are ``saccade.predict``'s level-0 boxes and whose slide is the example's file name."""
    the = app.App(zoom_app.state.checkpoints, ASSETS, exports=tmp_path)
    gif, record = the.explore.export(Look(str(ZOOM), "z-learnt", n_saccades=3, session="s1"))
    data = json.loads(Path(record).read_text())
    assert data["slide"] == "zoom-32768-0.tif" and data["boxes_shape"] == [32768, 32768]
    expected = saccade.predict(the.state.model("z-learnt"), str(ZOOM), n_saccades=3)
    np.testing.assert_allclose([s["box"] for s in data["steps"]], expected.boxes, atol=1e-3)
    with Image.open(gif) as frames:
        assert frames.n_frames == 3
