"""The app's figures: numbers in, the right shapes, traces and animation steps out."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from saccade import viz


def decode_uri(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


@pytest.fixture
def boxes():
    # four steps over a 2528 x 2528 image, moving right and down
    return np.array(
        [
            [0, 0, 400, 400],
            [500, 100, 900, 500],
            [1000, 1000, 1600, 1600],
            [2000, 2000, 2500, 2500],
        ],
        dtype=np.float64,
    )


def test_downscale_and_enlarge():
    big = np.random.default_rng(0).integers(0, 256, (2528, 2528), dtype=np.uint8)
    small = viz.downscale(big, 512)
    assert small.shape == (512, 512) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(big.mean())) < 1.0  # area averaging keeps the mean
    tiny = np.zeros((40, 30), np.uint8)
    assert viz.downscale(tiny, 512) is tiny  # already small: no copy
    crop = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    up = viz.enlarge(crop, 128)
    assert up.shape == (128, 128) and up.dtype == np.uint8
    assert up[0, 0] == 0 and up[0, 127] == 255 and up[127, 0] == 128 and up[127, 127] == 64


def test_coverage_markdown_names_digits_and_rule():
    truth = np.array([[0, 0, 10, 10], [100, 100, 110, 120]], float)
    crops = np.array([[50, 50, 60, 60], [0, 0, 20, 20]], float)
    md = viz.coverage_markdown(truth, crops, 32, digits=[3, 7], class_name="10", predicted="10")
    assert "Covered 1 of 2 digits" in md
    assert "digit 3: **looked at** (first at step 2" in md
    assert "digit 7: **missed** (at most 0% inside a crop)" in md
    assert "predicted correctly" in md and "50%" in md
    assert "predicted wrong" in viz.coverage_markdown(truth, crops, 32, [3, 7], "10", "4")


def test_coverage_markdown_says_a_digit_squeezed_into_a_blob_is_missed():
    truth = np.array([[500, 500, 514, 520]], float)
    blob = np.array([[300, 300, 750, 750]], float)  # holds the digit, 1.4 samples across it
    sharp = np.array([[490, 490, 530, 530]], float)
    assert "too small in it to read" in viz.coverage_markdown(truth, blob, 32, digits=[5])
    md = viz.coverage_markdown(truth, np.concatenate([blob, sharp]), 32, digits=[5])
    assert "digit 5: **looked at** (first at step 2" in md and "12 of the crop's 32" in md


def test_trajectory_animation_lives_in_button_and_slider_args(boxes):
    image = np.random.default_rng(1).integers(0, 256, (2528, 2528), dtype=np.uint8)
    truth = np.array([[10, 10, 300, 300], [1200, 100, 1300, 200]], float)
    fig = viz.trajectory_figure(viz.downscale(image), 2528, boxes, truth, crop_size=32)
    layout = fig.layout
    assert not fig.frames  # gradio drops them; the animation must not depend on them

    # the static view is the last step; the current box is the shape named "crop"
    crop = [s for s in layout.shapes if s.name == "crop"]
    assert len(crop) == 1 and (crop[0].x0, crop[0].y0, crop[0].x1, crop[0].y1) == (
        2000,
        2000,
        2500,
        2500,
    )
    truth_shapes = [s for s in layout.shapes if s.name.startswith("truth")]
    assert [s.line.color for s in truth_shapes] == [
        viz.TRUTH_COLOURS[True],
        viz.TRUTH_COLOURS[False],
    ]

    play, pause = layout.updatemenus[0].buttons
    assert play.method == "animate" and play.args[1]["frame"]["redraw"] is True
    frames = play.args[0]
    assert len(frames) == 4
    for t, frame in enumerate(frames):
        current = [s for s in frame["layout"]["shapes"] if s["name"] == "crop"]
        assert [current[0][k] for k in ("x0", "y0", "x1", "y1")] == boxes[t].tolist()
        assert len([s for s in frame["layout"]["shapes"] if s["name"] == "crop-past"]) == t
        # plotly merges shapes by index: every frame sets all of them, later boxes hidden
        shapes = frame["layout"]["shapes"]
        assert len(shapes) == len(layout.shapes)
        drawn = [s for s in shapes if s["name"].startswith("crop") and s.get("visible", True)]
        assert len(drawn) == t + 1 and drawn[-1]["name"] == "crop"
        path = frame["data"][0]
        assert len(path["x"]) == t + 1  # the path grows by one centre per step
        assert path["x"][-1] == pytest.approx((boxes[t, 0] + boxes[t, 2]) / 2)
    assert list(pause.args[0]) == [None]
    steps = layout.sliders[0].steps
    assert [s.label for s in steps] == ["1", "2", "3", "4"]
    assert steps[2].args[0][0]["layout"]["shapes"] == frames[2]["layout"]["shapes"]

    # background: a downscaled PNG spanning the full-resolution coordinates
    bg = fig.data[0]
    assert bg.type == "image"
    assert decode_uri(bg.source).shape[:2] == (512, 512)
    assert bg.dx * 512 == pytest.approx(2528)
    size = len(fig.to_json())
    assert size < 600_000, f"figure JSON is {size} bytes"


def test_trajectory_without_truth_and_one_step():
    fig = viz.trajectory_figure(
        np.zeros((100, 100), np.uint8), (100, 100), np.array([[10, 10, 40, 40]], float)
    )
    assert [s.name for s in fig.layout.shapes] == ["crop"]
    assert len(fig.layout.sliders[0].steps) == 1


def posterior_inputs(T: int = 4, g: int = 8, seed: int = 3):
    """(sigma, cell_probs, proxy) as ``saccade.predict`` returns them, random."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.01, 0.3, (T, 3))
    cell_probs = rng.random((T, g, g)) ** 4
    cell_probs /= cell_probs.sum(axis=(1, 2), keepdims=True)
    return sigma, cell_probs, rng.random((32, 32)).astype(np.float32)


def test_trajectory_posterior_heat_and_sigma_step_together(boxes):
    sigma, cell_probs, proxy = posterior_inputs()
    S, T, g = 2528, 4, 8
    truth = np.array([[10, 10, 300, 300]], float)
    fig = viz.trajectory_figure(
        np.zeros((512, 512), np.uint8),
        S,
        boxes,
        truth,
        sigma=sigma,
        cell_probs=cell_probs,
        proxy=proxy,
        crop_size=32,
    )
    assert fig.layout.meta["animation"] == viz.FRAMES_META  # PLOTLY_FRAMES_JS names these
    assert [tr.type for tr in fig.data] == ["image", "scatter", "scatter", "heatmap", "image"]
    heat = fig.data[3]
    assert heat.name == "posterior" and (heat.xaxis, heat.yaxis) == ("x2", "y2")
    # cell i spans [i S/g, (i+1) S/g): centres at (i + 1/2) S/g; each step scaled to its own
    # largest cell, said in the colour bar's title; the hover text is p itself
    assert heat.x0 == pytest.approx(S / g / 2) and heat.dx == pytest.approx(S / g)
    assert heat.y0 == pytest.approx(S / g / 2) and heat.dy == pytest.approx(S / g)
    assert heat.zmin == 0 and heat.zmax == 1
    assert "largest" in heat.colorbar.title.text
    np.testing.assert_allclose(np.array(heat.z), cell_probs[-1] / cell_probs[-1].max())
    np.testing.assert_allclose(np.array(heat.text, float), cell_probs[-1], atol=1e-4)
    # the colour bar is what is drawn: opaque colours, black at 0
    assert heat.colorscale[0][1] == "#000004" and all("rgba" not in c for _, c in heat.colorscale)
    # the proxy over the heat: white strokes, opacity its brightness, full image coordinates
    over = fig.data[4]
    rgba = decode_uri(over.source)
    assert rgba.shape == (32, 32, 4) and (rgba[..., :3] == 255).all()
    np.testing.assert_array_equal(rgba[..., 3], np.rint(proxy * 128))
    assert over.dx * 32 == pytest.approx(S) and over.xaxis == "x2"

    play = fig.layout.updatemenus[0].buttons[0]
    frames = play.args[0]
    steps = fig.layout.sliders[0].steps
    assert len(frames) == len(steps) == T
    n_shapes = len(fig.layout.shapes)
    assert n_shapes == 1 + T + T + 1  # truth, crop slots, σ slots, the crop on the proxy
    for t, frame in enumerate(frames):
        assert frame["name"] == f"step {t + 1}"
        assert steps[t].args[0][0] == frame  # the slider steps to the same frame
        # the heat layer is trace 3 and shows cell_probs[t] over its own largest: the
        # brightest colour at every step, however far the posterior spreads
        assert frame["traces"] == [1, 2, 3]
        z = np.array(frame["data"][2]["z"])
        np.testing.assert_allclose(z, cell_probs[t] / cell_probs[t].max())
        assert z.max() == 1.0
        shapes = frame["layout"]["shapes"]
        assert len(shapes) == n_shapes  # merged by index: the same slots in every frame
        # ... so each slot says visible True or False (a slot hidden at step 1 and not
        # mentioned at step 3 would stay hidden)
        assert all(isinstance(s.get("visible"), bool) for s in shapes)

        def shown(prefix, shapes=shapes):
            return [s for s in shapes if s["name"].startswith(prefix) and s.get("visible", True)]

        crops, ellipses = shown("crop"), shown("sigma")
        assert len(crops) == len(ellipses) == t + 1  # no future step is drawn
        assert [c["name"] for c in crops][-1] == "crop" and ellipses[-1]["name"] == "sigma"
        for i, (c, e) in enumerate(zip(crops, ellipses, strict=True)):
            assert [c[k] for k in ("x0", "y0", "x1", "y1")] == boxes[i].tolist()
            cx, cy = (boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2
            rx, ry = sigma[i, 1] * S / 2, sigma[i, 2] * S / 2  # 1σ in pixels
            assert e["type"] == "circle"
            assert (e["x0"], e["x1"]) == pytest.approx((cx - rx, cx + rx))
            assert (e["y0"], e["y1"]) == pytest.approx((cy - ry, cy + ry))
        on_proxy = shown("proxy-crop")
        assert len(on_proxy) == 1 and on_proxy[0]["xref"] == "x2"
        assert [on_proxy[0][k] for k in ("x0", "y0", "x1", "y1")] == boxes[t].tolist()
        # hover on each centre: σ of the scale and 1σ of x, y in pixels
        path = frame["data"][0]
        assert path["customdata"][-1] == pytest.approx(
            [t + 1, sigma[t, 0], sigma[t, 1] * S / 2, sigma[t, 2] * S / 2]
        )
    assert "σ of the scale" in fig.data[1].hovertemplate
    assert len(fig.to_json()) < 600_000


def test_truth_boxes_turn_green_at_the_step_that_looks_at_them():
    """Each frame colours each ground-truth box by whether a crop up to that step looked at
    it: a digit first looked at in step 2 is red at step 1 and green from step 2."""
    truth = np.array([[10, 10, 30, 30], [200, 200, 220, 220]], float)
    crops = np.array([[0, 0, 40, 40], [190, 190, 230, 230], [0, 0, 40, 40]], float)
    fig = viz.trajectory_figure(np.zeros((64, 64), np.uint8), 256, crops, truth, crop_size=32)
    frames = fig.layout.updatemenus[0].buttons[0].args[0]
    green, red = viz.TRUTH_COLOURS[True], viz.TRUTH_COLOURS[False]
    colours = [
        [s["line"]["color"] for s in f["layout"]["shapes"] if s["name"].startswith("truth")]
        for f in frames
    ]
    assert colours == [[green, red], [green, green], [green, green]]
    assert len({len(f["layout"]["shapes"]) for f in frames}) == 1  # same slots every frame


def test_trajectory_posterior_inputs_must_match_the_steps(boxes):
    sigma, cell_probs, proxy = posterior_inputs()
    bg = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match="3 σ rows for 4 boxes"):
        viz.trajectory_figure(bg, 2528, boxes, sigma=sigma[:3])
    with pytest.raises(ValueError, match="cell_probs of shape"):
        viz.trajectory_figure(bg, 2528, boxes, cell_probs=cell_probs[:2], proxy=proxy)
    # σ alone: ellipses, no second panel
    fig = viz.trajectory_figure(bg, 2528, boxes, sigma=sigma)
    assert len(fig.data) == 3 and "xaxis2" not in fig.layout.to_plotly_json()
    assert sum(s.name.startswith("sigma") for s in fig.layout.shapes) == 4


def test_frames_script_targets_the_figure_marker():
    js = viz.PLOTLY_FRAMES_JS
    assert f'"{viz.FRAMES_META}"' in js and "__META__" not in js
    assert "addFrames" in js and "relayout" in js and js.strip().startswith("() =>")


def test_sigma_figure_says_apart_what_the_mode_sets_and_the_spread_over_cells():
    sigma = np.array([[0.1, 0.2, 0.3], [0.05, 0.15, 0.25]])
    fig = viz.sigma_figure(sigma, "learnt")
    names = [tr.name for tr in fig.data]
    assert names == ["σ of the scale", "spread of the centre, x", "spread of the centre, y"]
    for i, tr in enumerate(fig.data):
        assert list(tr.x) == [1, 2] and list(tr.y) == sigma[:, i].tolist()
    # the scale on the left panel (what the mode sets), the mixture's spread on the right
    assert [tr.xaxis for tr in fig.data] == ["x", "x2", "x2"]
    titles = [a.text for a in fig.layout.annotations]
    assert "what the mode sets (learnt: predicted per step)" in titles
    assert "spread over the cells" in titles and any("not reported" in t for t in titles)
    # fixed mode with its offset σ: flat lines on the left, in plain words
    off = np.full((3, 2), 0.05)
    flat = viz.sigma_figure(np.full((3, 3), 0.2), "fixed", offset_sigma=off)
    assert "fixed" in flat.layout.title.text
    assert "what the mode sets (fixed: one constant)" in [a.text for a in flat.layout.annotations]
    left = [tr for tr in flat.data if tr.xaxis == "x"]
    assert [tr.name for tr in left][1:] == ["σ in the chosen cell, x", "σ in the chosen cell, y"]
    assert all(len(set(tr.y)) == 1 for tr in flat.data)
    # equal σ of x and y stay visible lines: each has its own dash and marker
    assert len({(tr.line.dash, tr.marker.symbol) for tr in flat.data}) == 5
    assert "None" not in flat.to_json()
    assert flat.layout.yaxis.range is None  # autoscaled unless a shared top is given
    shared = viz.sigma_figure(sigma, y_max=0.4).layout
    assert list(shared.yaxis.range) == list(shared.yaxis2.range) == pytest.approx([0, 0.42])


def test_class_names_that_are_colours_get_their_own_colour():
    probs = np.array([[0.2, 0.5, 0.3], [0.1, 0.3, 0.6]])
    fig = viz.probs_figure(probs, ["blue", "green", "red"])
    colours = {tr.name: tr.line.color for tr in fig.data}
    assert colours == {"blue": "#1f77b4", "green": "#2ca02c", "red": "#d62728"}
    digits = viz.probs_figure(probs, ["0", "1", "2"])  # other names: plotly's own cycle
    assert all(tr.line.color is None for tr in digits.data)


def test_proxy_figure_is_pixelated_proxy():
    proxy = np.zeros((32, 32), np.float32)
    proxy[0, 0] = 1.0
    fig = viz.proxy_figure(proxy, 0.3)
    img = decode_uri(fig.data[0].source)
    assert img.shape[:2] == (256, 256)  # 8x nearest neighbour
    assert img[:8, :8].min() == 255 and img[8:, 8:].max() == 0
    assert "noise σ = 0.3" in fig.layout.title.text


def test_label_and_probability_figures():
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.1, 0.6]])
    names = ["a", "b", "c", "d"]
    assert viz.label_dict(probs[-1], names) == {"a": 0.1, "b": 0.2, "c": 0.1, "d": 0.6}
    with pytest.raises(ValueError, match="3 class names"):
        viz.label_dict(probs[-1], names[:3])
    fig = viz.probs_figure(probs, names, top=2)
    assert [tr.name for tr in fig.data] == ["d", "a"]  # highest probability at any step
    assert list(fig.data[0].y) == [0.0, 0.6]


def test_gallery_pairs_zoom_with_crop(boxes):
    rng = np.random.default_rng(2)
    zooms = [rng.integers(0, 256, (400, 400), dtype=np.uint8) for _ in range(4)]
    crops = rng.random((4, 16, 16)).astype(np.float32)
    sigma = np.full((4, 3), 0.125)
    items = viz.gallery_items(zooms, crops, boxes, sigma)
    assert len(items) == 8
    assert items[0][0] is not None and np.array_equal(items[0][0], zooms[0])
    assert "step 1" in items[0][1] and "(0, 0)-(400, 400)" in items[0][1]
    assert "0.125, 0.125, 0.125" in items[0][1]
    small = viz.gallery_items([zooms[0][:30, :20]], crops[:1], boxes[:1], sigma[:1])[0][0]
    assert small.shape == (210, 140) and np.array_equal(small[::7, ::7], zooms[0][:30, :20])
    crop_img, caption = items[3]
    assert caption == "step 2: the 16×16 crop the network saw"
    assert crop_img.shape == (128, 128) and crop_img.dtype == np.uint8
    assert crop_img[0, 0] == round(float(crops[1, 0, 0]) * 255)


def test_training_figure_plots_loss_and_accuracy():
    history = [
        {"step": 10, "loss": 2.0, "ce": 1.5, "kl": 0.1, "train_acc": 0.2},
        {"step": 20, "loss": 1.5, "ce": 1.2, "kl": 0.2, "train_acc": 0.4},
        {"step": 20, "val_acc": 0.35},
    ]
    fig = viz.training_figure(history)
    names = {tr.name: tr for tr in fig.data}
    assert set(names) == {"loss", "ce", "kl", "train_acc", "val_acc"}
    assert list(names["loss"].y) == [2.0, 1.5] and list(names["val_acc"].x) == [20]


def test_results_are_read_and_malformed_files_skipped(tmp_path):
    rows = [
        {
            "model": "glimpse",
            "dataset": "cluttered",
            "side": s,
            "phase": "crop",
            "ms_per_image": 0.2,
            "peak_mb": 0.1,
        }
        for s in (100, 2528)
    ]
    (tmp_path / "bench-a.json").write_text(json.dumps(rows + [{"model": "incomplete"}]))
    (tmp_path / "bench-b.json").write_text("{not json")
    (tmp_path / "eval-x.json").write_text(
        json.dumps(
            {
                "model": "m",
                "task": "sum",
                "accuracy": 0.9,
                "localisation": {"covered": 0.99},
                "per_saccade": [0.5, 0.8, 0.9],
                "per_noise": {"0.0": 0.9, "0.5": 0.6},
            }
        )
    )
    (tmp_path / "eval-y.json").write_text(json.dumps([1, 2]))
    bench = viz.bench_rows(viz.load_results(tmp_path, "bench-*.json"))
    assert [r["side"] for r in bench] == [100, 2528]
    evals = viz.load_results(tmp_path, "eval-*.json")
    rows = viz.eval_rows(evals)  # accuracy first, then the share of digits looked at
    assert rows == [{"run": "x", "accuracy": 0.9, "covered": 0.99, "task": "sum"}]
    assert list(rows[0]) == ["run", "accuracy", "covered", "task"]
    assert len(viz.bench_figure(bench).data) == 1
    assert viz.load_results(tmp_path / "missing", "*.json") == []


def test_a_crop_past_the_border_is_drawn_clipped_and_explained():
    boxes = np.array([[-50, 10, 50, 110], [20, 20, 60, 60]], float)  # half of crop 1 outside
    np.testing.assert_allclose(viz.outside_share(boxes, (200, 200)), [0.5, 0.0])
    fig = viz.trajectory_figure(np.zeros((64, 64), np.uint8), 200, boxes)
    frames = fig.layout.updatemenus[0].buttons[0].args[0]
    first = [s for s in frames[0]["layout"]["shapes"] if s["name"] == "crop"][0]
    assert (first["x0"], first["x1"]) == (0, 50)  # clipped to the picture
    assert "50% of it is outside" in frames[0]["layout"]["title"]["text"]
    assert "outside" not in frames[1]["layout"]["title"]["text"]
    crops = np.zeros((2, 8, 8), np.float32)
    zooms = [np.zeros((100, 50), np.uint8), np.zeros((40, 40), np.uint8)]
    items = viz.gallery_items(zooms, crops, boxes, np.zeros((2, 3)), (200, 200))
    assert "50% of it is past the image's border" in items[1][1] and "border" not in items[3][1]


def test_eval_plots_one_panel_per_task_one_legend_entry_per_kind():
    def run(variance, policy, size=100, task="sum", noise=True):
        data = {"dataset": "cluttered", "task": task, "size": size, "variance": variance}
        data |= {"policy": policy, "model_saccades": 2, "accuracy": 0.9}
        data |= {"per_saccade": [0.5, 0.9, 0.95], "localisation": {"per_saccade": [0.4, 1.0]}}
        if noise:
            data["noise"] = {"0.3": [0.4, 0.7, 0.8], "0.0": [0.5, 0.9, 0.95]}
        return data

    results = [
        ("eval-a", run("learnt", "learnt")),
        ("eval-b", run("fixed", "learnt")),
        ("eval-c", run("learnt", "oracle", noise=False)),
        ("eval-d", run("learnt", "learnt", size=2528)),
        ("eval-e", run("learnt", "learnt", task="single")),
    ]
    fig = viz.saccades_figure(results)
    assert [a.text for a in fig.layout.annotations] == ["cluttered/sum", "cluttered/single"]
    names = [t.name for t in fig.data]
    assert names[:4] == [
        "VS, learnt σ, its own choice of crops",
        "VS, fixed σ, its own choice of crops",
        "VS, learnt σ, crops on the digits (oracle)",
        "VS, learnt σ, its own choice of crops, 2528²",
    ]
    # a baseline (no variance mode, no policy) is named in words, never "None σ"
    baseline = {"dataset": "cluttered", "task": "sum", "model": "resnet18-proxy"}
    base = viz.saccades_figure([("eval-r", baseline | {"per_saccade": [0.3]})])
    assert [t.name for t in base.data] == ["ResNet-18 on the proxy (baseline)"]
    assert [t.showlegend for t in fig.data] == [True, True, True, True, False]
    assert fig.data[1].line.dash == "dash" and fig.data[2].line.color != fig.data[0].line.color
    assert list(fig.data[0].x) == [1, 2, 3] and fig.layout.xaxis.dtick == 1
    noise = viz.noise_figure(results)  # the accuracy at the model's T (2), sorted by noise
    assert [(list(t.x), list(t.y)) for t in noise.data][0] == ([0.0, 0.3], [0.9, 0.7])
    assert len(noise.data) == 4  # the run evaluated without noise has no curve
    assert list(viz.localisation_figure(results).data[0].y) == [0.4, 1.0]
    assert not viz.saccades_figure([]).data


def test_noise_train_figure_prefers_accuracy_at_the_training_noise():
    events = [
        {"step": 1, "loss": 1.0},
        {"epoch": 1, "val_acc": 0.5, "val_acc_train_noise": 0.4},
        {"epoch": 2, "val_acc": 0.7},
    ]
    (line,) = viz.noise_train_figure({"noise 0.3": events}).data
    assert list(line.x) == [1, 2] and list(line.y) == pytest.approx([40, 70])


def test_posterior_samples_figure_draws_every_box():
    image = np.zeros((200, 200), np.uint8)
    boxes = np.tile(np.array([10.0, 20.0, 70.0, 80.0]), (16, 3, 1))  # 16 samples, T = 3
    panels = {"learnt": (boxes, 0.9), "fixed": (boxes, None, "9 of 16 samples right")}
    fig = viz.posterior_samples_figure(image, panels)
    lines = [tr for tr in fig.data if tr.type == "scatter" and not tr.showlegend]
    assert len(lines) == 2 * 16 * 3
    assert fig.layout.annotations[0].text == "learnt: 90.0% sampling"
    assert fig.layout.annotations[1].text == "fixed<br><sup>9 of 16 samples right</sup>"
    # a colour key: one legend entry per saccade, in the colour of its boxes
    key = [tr for tr in fig.data if tr.showlegend]
    assert [tr.name for tr in key] == ["saccade 1", "saccade 2", "saccade 3"]
    assert [tr.line.color for tr in key] == viz.SACCADE_COLOURS[:3]
    assert lines[1].line.color == viz.SACCADE_COLOURS[1]
    # the box is drawn in the downscaled image's coordinates, y flipped for the heatmap
    assert max(lines[0].x) == pytest.approx(70.0) and min(lines[0].y) == pytest.approx(120.0)


def test_gallery_pairs_keep_each_steps_region_and_crop_together():
    """One picture per step: the region and the crop side by side at one height (a pair can
    never split across rows), the crop's pixels kept as pixels, a caption that fits."""
    zooms = [np.full((50, 40), 200, np.uint8), np.zeros((10, 10), np.uint8)]
    crops = np.zeros((2, 8, 8), np.float32)
    crops[0, 0, 0] = 1.0
    boxes = np.array([[0, 0, 40, 50], [90, 90, 110, 110]], float)
    items = viz.gallery_pairs(zooms, crops, boxes, (100, 100), height=96)
    assert len(items) == 2
    (first, cap1), (_, cap2) = items
    assert first.shape == (96, 77 + 8 + 96, 3)  # region 40x50 -> 77x96, gap 8, crop 96x96
    crop = first[:, 77 + 8 :]
    assert (crop[:12, :12] == 255).all() and (crop[12:, 12:] == 0).all()  # 12x nearest
    assert cap1 == "step 1: 40×50 px → 8×8"
    assert cap2 == "step 2: 20×20 px → 8×8, 75% out"
