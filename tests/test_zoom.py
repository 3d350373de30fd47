"""The zoom benchmark (saccade.data.zoom) and the log scale of the glimpse: canvases rendered
on demand, read by the glimpse and ``saccade.predict`` like any image source."""

import math

import numpy as np
import pytest
import torch

import saccade
from saccade.data.zoom import CUE_RADIUS, DIGIT_SIDE, ZoomCanvas
from saccade.glimpse import (
    ImageSource,
    box_to_z,
    fraction_to_scale,
    glimpse,
    halve,
    scale_to_fraction,
    z_to_box,
)


@pytest.fixture(scope="module")
def ds():
    return saccade.make_dataset("zoom", split="test", size=32768, seed=0)


def centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_samples_are_deterministic_and_annotated(ds):
    a, b = ds[5], ds[5]
    assert a["label"] == b["label"] and 0 <= a["label"] < 10
    np.testing.assert_array_equal(a["proxy"], b["proxy"])
    np.testing.assert_array_equal(a["boxes"], b["boxes"])
    assert a["boxes"].shape == (1, 4) and a["cue_boxes"].shape == (4, 4)
    # the digit sits at the centre of the ring (the first cue), at native size
    x0, y0, x1, y1 = a["boxes"][0]
    assert x1 - x0 == DIGIT_SIDE and y1 - y0 == DIGIT_SIDE
    assert math.dist(centre(a["boxes"][0]), centre(a["cue_boxes"][0])) < 1.0
    assert isinstance(a["image"], ImageSource) and a["image"].shape == (32768, 32768)
    labels = [ds[i]["label"] for i in range(40)]
    assert len(set(labels)) >= 6  # classes vary


def test_the_digit_is_read_at_level_0_and_lost_on_the_proxy(ds):
    s = ds[0]
    canvas, (cx, cy) = s["image"], centre(s["boxes"][0])
    x0, y0 = int(cx) - 14, int(cy) - 14
    window = canvas.read_window(0, x0, y0, 28, 28)
    digit = ds.images[np.flatnonzero(ds.labels == s["label"])]
    # the window is one of the MNIST test digits of the label's class, pixel for pixel, over
    # its region's grey
    expected = np.maximum(digit, window.min())
    assert (np.abs(expected.astype(int) - window.astype(int)).max((1, 2)) == 0).any()
    # the proxy cell over the digit is no brighter than over a square's mark: same ink
    p = s["proxy"]
    f = canvas.side / p.shape[0]
    ring = p[int(cy / f), int(cx / f)]
    sq = [p[int(centre(b)[1] / f), int(centre(b)[0] / f)] for b in s["cue_boxes"][1:]]
    assert abs(ring - np.mean(sq)) < 0.15


def test_levels_are_area_averages_of_the_finer_level(ds):
    canvas = ds[1]["image"]
    cx, cy = centre(ds[1]["cue_boxes"][0])
    for level in (0, 1, 4):
        f = 2**level
        x0, y0 = int(cx / f) // 2 * 2 - 64, int(cy / f) // 2 * 2 - 64
        fine = canvas.read_window(level, x0, y0, 128, 128)
        coarse = canvas.read_window(level + 1, x0 // 2, y0 // 2, 64, 64)
        assert fine.max() > 100  # the window holds the cue
        diff = np.abs(halve(fine).astype(int) - coarse.astype(int))
        assert diff.mean() < 3 and np.percentile(diff, 99) < 40


def cue_levels(canvas, cue_box):
    """Level 8 over a cue (6 x 6 pixels) and the 16 x 16 means of level 4 over the same."""
    cx, cy = centre(cue_box)
    x, y = int(cx / 256) - 3, int(cy / 256) - 3
    coarse = canvas.read_window(8, x, y, 6, 6).astype(float)
    fine = canvas.read_window(4, 16 * x, 16 * y, 96, 96).astype(float)
    return coarse, fine.reshape(6, 16, 6, 16).mean((1, 3))


def test_a_coarse_level_is_the_area_average_of_a_fine_one_over_a_cue():
    s = saccade.make_dataset("zoom", split="test", size=32768, render="mean")[1]
    coarse, mean = cue_levels(s["image"], s["cue_boxes"][0])
    assert mean.max() > mean.min() + 20  # the ring's smudge, on the area average
    assert np.abs(coarse - mean).max() < 5


def test_the_first_renderer_stays_the_default_for_its_checkpoints(ds):
    """render "max" (the default, and every checkpoint's before the option) keeps its known
    defect, so that those checkpoints meet the canvases they were trained on: the ring's
    strokes vanish from level 8 (docs/zoom.md, 'What the proxy shows')."""
    s = ds[1]
    assert s["image"].render == "max" and ds.spec.to_dict()["render"] == "max"
    coarse, mean = cue_levels(s["image"], s["cue_boxes"][0])
    assert np.abs(coarse - mean).max() > 15


def test_the_renderer_is_saved_in_the_spec_and_rebuilt_from_it():
    from saccade.data import dataset_from_spec

    spec = saccade.make_dataset("zoom", split="test", render="mean").spec.to_dict()
    assert spec["render"] == "mean"
    assert dataset_from_spec(spec)[0]["image"].render == "mean"
    spec.pop("render")  # a checkpoint saved before the option
    assert dataset_from_spec(spec)[0]["image"].render == "max"
    with pytest.raises(ValueError, match=r"render='area'.*accepted: \['max', 'mean'\]"):
        saccade.make_dataset("zoom", render="area")


@pytest.mark.parametrize("side", [32768, 65536, 131072])
def test_with_the_mean_renderer_every_cue_shows_on_the_proxy(side):
    ds = saccade.make_dataset("zoom", split="test", size=side, proxy_size=128, render="mean")
    f = 128 / side
    for i in range(3):
        s = ds[i]
        for cue, region in zip(s["cue_boxes"], s["region_boxes"], strict=True):
            x0, y0 = (int(v * f) for v in cue[:2])
            x1, y1 = (math.ceil(v * f) for v in cue[2:])
            r0, q0, r1, q1 = (int(v * f) for v in region)
            values, counts = np.unique(s["proxy"][q0:q1, r0:r1], return_counts=True)
            inside = values > 0  # the region's own grey: its most common value
            grey = values[inside][np.argmax(counts[inside])]
            assert s["proxy"][y0:y1, x0:x1].max() > grey + 2 / 255


def test_windows_outside_the_canvas_read_zero(ds):
    canvas = ds[0]["image"]
    assert canvas.read_window(0, -500, -500, 100, 100).max() == 0
    assert canvas.read_window(3, 32768 // 8, 0, 50, 50).max() == 0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": 8192}, "between 16384 and 262144"),
        ({"size": (32768, 16384)}, "square"),
        ({"size": 20000.5}, "integer"),
        ({"task": "majority"}, "accepted: \\['ring'\\]"),
        ({"proxy_size": 2}, "proxy_size"),
    ],
)
def test_bad_options_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        saccade.make_dataset("zoom", **options)


def test_a_side_that_is_not_a_power_of_two_works():
    ds = saccade.make_dataset("zoom", split="test", size=20000)
    s = ds[0]
    assert s["image"].shape == (20000, 20000) and s["proxy"].shape == (64, 64)
    assert (s["boxes"][0][2:] <= 20000).all()


def test_log_scale_maps_the_ends_and_inverts():
    s = torch.tensor([-1.0, 0.0, 1.0])
    frac = scale_to_fraction(s, 0.001, 0.5, log_scale=True).numpy()
    np.testing.assert_allclose(frac, [0.001, math.sqrt(0.001 * 0.5), 0.5], rtol=1e-6)
    np.testing.assert_allclose(fraction_to_scale(frac, 0.001, 0.5, True), s.numpy(), atol=1e-6)
    # a step of s is the same factor of zoom at every scale
    a = scale_to_fraction(torch.tensor([-0.9, -0.8, 0.8, 0.9]), 0.001, 0.5, True).numpy()
    np.testing.assert_allclose(a[1] / a[0], a[3] / a[2], rtol=1e-5)
    # boxes and z invert each other in log space
    z = np.array([[-0.3, 0.1, -0.2]])
    box = z_to_box(z, (32768, 32768), 0.001, 0.5, log_scale=True)
    np.testing.assert_allclose(box_to_z(box, (32768, 32768), 0.001, 0.5, True), z, atol=1e-9)


def test_glimpse_on_a_canvas_is_differentiable_and_sees_the_digit(ds):
    s = ds[2]
    canvas = s["image"]
    cx, cy = centre(s["boxes"][0])
    xy = [2 * cx / canvas.side - 1, 2 * cy / canvas.side - 1]
    lo, hi = 48 / 32768, 0.5
    z = torch.tensor([[-1.0, *xy], [0.2, *xy]], dtype=torch.float64, requires_grad=True)
    crops = glimpse(canvas, z, 32, lo, hi, log_scale=True)
    assert crops.shape == (2, 32, 32)
    assert crops[0].max() > 0.8 and crops[0].std() > 0.05  # the digit, at full resolution
    crops[0].sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad[0, 1:].abs().sum() > 0


def test_predict_on_a_canvas_returns_canvas_boxes_and_sigma(ds):
    from tests.helpers import zoom_model

    model = zoom_model()
    s = ds[0]
    out = saccade.predict(model, s["image"], n_saccades=3)
    assert out.boxes.shape == (3, 4) and out.sigma.shape == (3, 3)
    assert out.image_shape == (32768, 32768) and out.image.shape == (1024, 1024)
    side = out.boxes[:, 2] - out.boxes[:, 0]
    lo, hi = model.config.min_scale * 32768, model.config.max_scale * 32768
    assert ((side >= lo - 1e-6) & (side <= hi + 1e-6)).all()
    assert len(out.zooms) == 3 and all(max(zm.shape) <= 512 for zm in out.zooms)


def test_predict_on_a_canvas_of_another_side_keeps_the_crops_in_pixels():
    """A 32,768² zoom model on a 65,536² canvas: its crops span the pixels they span on its
    own side (min_scale·32,768 to max_scale·32,768), as ``evaluate --canvas 65536`` runs it,
    not twice as many."""
    from saccade.evaluate.loop import larger_canvas
    from tests.helpers import zoom_model

    model = zoom_model(size=32768, proxy_size=64, where_grid=8)
    s = saccade.make_dataset("zoom", split="test", size=65536, proxy_size=64, length=1)[0]
    out = saccade.predict(model, s["image"], n_saccades=3)
    assert out.image_shape == (65536, 65536)
    side = out.boxes[:, 2] - out.boxes[:, 0]
    lo, hi = model.config.min_scale * 32768, model.config.max_scale * 32768
    assert ((side >= lo - 1e-3) & (side <= hi + 1e-3)).all()
    with pytest.warns(UserWarning, match="evaluating on 65536"):
        view, _ = larger_canvas(model, 65536)
    z = saccade.predict(view, s["image"], n_saccades=3).z
    np.testing.assert_allclose(out.z, z, atol=1e-6)
    from saccade.infer import input_warnings

    (note,) = input_warnings(model, out.image, shape=out.image_shape)  # what the app shows
    assert "65,536² and the checkpoint was trained on 32,768²" in note and "pixels" in note


def test_scale_policies_pin_the_scale_and_keep_the_locations():
    from saccade.evaluate.policies import make_policy

    mode = torch.tensor([[0.3, 0.1, -0.4], [-0.2, 0.5, 0.5]])
    for name, s in (("scale-max", 1.0), ("scale-min", -1.0)):
        z = make_policy(name)(0, mode, None, None)
        assert torch.equal(z[:, 0], torch.full((2,), s)) and torch.equal(z[:, 1:], mode[:, 1:])


def test_canvas_is_cheap_to_pickle(ds):
    import pickle

    assert len(pickle.dumps(ds[0]["image"])) < 20_000  # shapes and two 28² patches, no pixels


def test_cue_is_readable_at_its_scale(ds):
    """At the cue's scale (a crop about its width) the ring and the squares differ: the ring's
    crop has a dark centre ring-wide, the square's has its corners lit."""
    s = ds[0]
    canvas = s["image"]
    for k, box in enumerate(s["cue_boxes"]):
        cx, cy = centre(box)
        r = CUE_RADIUS * math.pi / 4  # a square's half-side
        f = 8
        w = canvas.read_window(
            3, int((cx - r) / f), int((cy - r) / f), int(2 * r / f), int(2 * r / f)
        )
        corner = w[1:3, 1:3].mean()
        assert (corner > 100) == (k > 0)  # squares' corners are inked, the ring's are not
    assert isinstance(ZoomCanvas(20000, []).read_window(0, 0, 0, 4, 4), np.ndarray)


@pytest.mark.slow
@pytest.mark.parametrize("render", ["max", "mean"])
def test_crops_read_from_the_written_tiff_equal_the_procedural_ones(tmp_path, render):
    from saccade.data.slide_pyramid import SlidePyramid
    from saccade.data.zoom import write_zoom_folder
    from tests.helpers import zoom_model

    paths = write_zoom_folder(tmp_path, 1, size=16384, seed=0, render=render)
    ds = saccade.make_dataset("zoom", split="test", size=16384, seed=0, render=render)
    canvas, ann = ds.canvas(0)
    assert paths[0].parent.name == str(ann["label"])  # one subfolder per class
    slide = SlidePyramid(paths[0], channels=1, cache_dir=False)
    assert slide.shape == canvas.shape and slide.offset == (0, 0)
    cx, cy = centre(ann["boxes"][0])
    xy = [2 * cx / 16384 - 1, 2 * cy / 16384 - 1]
    z = torch.tensor([[s, *xy] for s in (-1.0, -0.6, 0.0, 0.5, 1.0)], dtype=torch.float64)
    lo, hi = 48 / 16384, 0.5
    from_file = glimpse(slide, z, 32, lo, hi, log_scale=True)
    procedural = glimpse(canvas, z, 32, lo, hi, log_scale=True)
    torch.testing.assert_close(from_file, procedural, atol=1e-12, rtol=0)
    # predict reads the file as a slide and gives what it gives on the canvas
    model = zoom_model(size=16384)
    a, b = saccade.predict(model, str(paths[0]), 3), saccade.predict(model, canvas, 3)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-6)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


def test_the_teacher_searches_the_cues_then_zooms_on_the_ring(ds):
    from saccade.glimpse import scale_to_fraction, scales_of
    from saccade.train.imitation import CUE_SIDE, MID_SIDE, READ_SIDE, Teacher
    from tests.helpers import zoom_model

    model = zoom_model()
    scales = scales_of(model.config)
    s = ds[0]
    cues = s["cue_boxes"]
    teacher = Teacher([cues], 32768, scales)
    taken = []
    for _ in range(7):
        z = torch.from_numpy(teacher.next())
        teacher.update(z)
        taken.append(z[0])
    sides = [float(scale_to_fraction(z[:1], **scales)) * 32768 for z in taken]
    xy = [((z[1:].numpy() + 1) / 2 * 32768) for z in taken]
    ring = centre(cues[0])
    # it looks at cues at the cue's scale, top to bottom, until the ring; then zooms on it
    order = np.argsort([centre(b)[1] for b in cues])
    k = list(order).index(0)
    for t in range(k + 1):
        assert sides[t] == pytest.approx(CUE_SIDE, rel=1e-4)
        assert math.dist(xy[t], centre(cues[order[t]])) < 1.0
    assert sides[k + 1] == pytest.approx(MID_SIDE, rel=1e-4)
    assert all(v == pytest.approx(READ_SIDE, rel=1e-4) for v in sides[k + 2 :])
    assert all(math.dist(p, ring) < 1.0 for p in xy[k:])


def test_the_nearest_teacher_sends_the_crop_to_the_unseen_cue_nearest_the_mode(ds):
    from saccade.glimpse import scales_of
    from saccade.train.imitation import Teacher
    from tests.helpers import zoom_model

    scales = scales_of(zoom_model().config)
    cues = ds[1]["cue_boxes"]
    teacher = Teacher([cues], 32768, scales, order="nearest")
    squares = [centre(b) for b in cues[1:]]
    # the mode just beside the second square: that square, not the brightest or the topmost
    near = np.array([[0.0, *(2 * (np.array(squares[1]) + 300) / 32768 - 1)]], np.float32)
    z = teacher.next(near)
    assert math.dist((z[0, 1:] + 1) / 2 * 32768, squares[1]) < 1.0
    teacher.update(torch.from_numpy(z))
    # seen now: the same mode gets the next nearest unseen cue
    z = teacher.next(near)
    left = [c for c in [centre(b) for b in cues] if math.dist(c, squares[1]) > 1.0]
    nearest = min(
        left, key=lambda c: max(abs(c[0] - squares[1][0] - 300), abs(c[1] - squares[1][1] - 300))
    )
    assert math.dist((z[0, 1:] + 1) / 2 * 32768, nearest) < 1.0
    with pytest.raises(ValueError, match="nearest"):
        Teacher([cues], 32768, scales, order="closest")


def test_the_teacher_zooms_through_the_sides_it_is_given(ds):
    from saccade.glimpse import scale_to_fraction, scales_of
    from saccade.train.imitation import Teacher
    from tests.helpers import zoom_model

    scales = scales_of(zoom_model().config)
    cues = ds[0]["cue_boxes"]
    teacher = Teacher([cues], 32768, scales, zoom=(480, 160, 48))
    teacher.seen[0][0] = True  # the ring seen at the cue's scale
    teacher.finest[0] = 1920.0
    sides = []
    for _ in range(5):
        z = torch.from_numpy(teacher.next())
        teacher.update(z)
        sides.append(float(scale_to_fraction(z[0, :1], **scales)) * 32768)
        assert math.dist((z[0, 1:].numpy() + 1) / 2 * 32768, centre(cues[0])) < 1.0
    np.testing.assert_allclose(sides, [480, 160, 48, 48, 48], rtol=1e-4)
    with pytest.raises(ValueError, match="decreasing"):
        Teacher([cues], 32768, scales, zoom=(48, 160))


def test_the_region_first_teacher_looks_at_each_cue_twice_then_zooms(ds):
    """--teacher-region-side: each cue at its region's scale, then at the cue's, the ring
    found, then the zoom; a region crop that missed the cue is answered with another."""
    from saccade.glimpse import scale_to_fraction, scales_of
    from saccade.train.imitation import Teacher
    from tests.helpers import zoom_model

    scales = scales_of(zoom_model().config)
    cues = ds[0]["cue_boxes"]
    teacher = Teacher([cues], 32768, scales, cue_side=1920, region_side=4096)
    first = teacher.next()
    teacher.update(torch.tensor([[0.5, -0.99, -0.99]]))  # a big crop in a corner: missed
    np.testing.assert_array_equal(teacher.next(), first)
    sides, xy = [], []
    for _ in range(11):
        z = torch.from_numpy(teacher.next())
        teacher.update(z)
        sides.append(float(scale_to_fraction(z[0, :1], **scales)) * 32768)
        xy.append((z[0, 1:].numpy() + 1) / 2 * 32768)
    order = np.argsort([centre(b)[1] for b in cues])
    k = list(order).index(0)  # the ring's place in the search (top to bottom)
    for i in range(k + 1):  # each cue: the region's scale, then the cue's, at its centre
        assert sides[2 * i : 2 * i + 2] == pytest.approx([4096, 1920], rel=1e-4)
        assert all(math.dist(p, centre(cues[order[i]])) < 1.0 for p in xy[2 * i : 2 * i + 2])
    np.testing.assert_allclose(sides[2 * k + 2 : 2 * k + 5], [160, 48, 48], rtol=1e-4)
    with pytest.raises(ValueError, match="region_side"):
        Teacher([cues], 32768, scales, cue_side=1920, region_side=1000)


def test_the_teacher_answers_for_the_model_s_own_mistakes(ds):
    """After a crop somewhere empty, the teacher still says the next cue; after the ring was
    seen, it says zoom, wherever the model looked in between."""
    from saccade.glimpse import scales_of
    from saccade.train.imitation import Teacher
    from tests.helpers import zoom_model

    scales = scales_of(zoom_model().config)
    cues = ds[0]["cue_boxes"]
    teacher = Teacher([cues], 32768, scales)
    first = teacher.next()
    teacher.update(torch.tensor([[0.5, -0.99, -0.99]]))  # a big crop in a corner
    np.testing.assert_array_equal(teacher.next(), first)
    ring = np.array([[0.0, *(2 * np.array(centre(cues[0])) / 32768 - 1)]], np.float32)
    teacher.update(torch.from_numpy(ring))  # the ring, at a cue-like scale
    teacher.update(torch.tensor([[0.5, 0.9, 0.9]]))  # then elsewhere
    zoom = teacher.next()[0]
    assert zoom[0] < ring[0, 0] and np.allclose(zoom[1:], ring[0, 1:], atol=1e-6)


def test_imitation_trains_the_posterior_towards_the_teacher(ds):
    """A few imitation steps on one batch raise the posterior's likelihood of the teacher's
    z (the objective the loop trains with --objective imitation)."""
    from tests.helpers import imitate, zoom_batch, zoom_model

    torch.manual_seed(0)
    model = zoom_model(where_memory=True, crop_to_rnn=True)
    first, terms = imitate(model, zoom_batch(ds), 15)
    assert terms["imitation"] < first["imitation"] - 1.0
    assert set(terms) >= {"loss", "imitation", "ce", "acc", "cell_acc"}


def test_the_cells_beside_the_teacher_s_z_are_fitted_to_aim_at_it(ds):
    """--offset-reach 1: a cell's offset reaches across its border; --imitation-fit
    neighbours also fits the teacher's z by the offsets of the cells beside the one that
    holds it (those within reach), and trains with it."""
    from saccade.models.posterior import WhereDistribution
    from saccade.train.imitation import Imitation, component_of, neighbour_log_density
    from tests.helpers import zoom_batch, zoom_model

    model = zoom_model(offset_reach=1.0)
    g = model.config.where_grid
    # the posterior's offsets are bounded by r cells (2r / g in z), not half a cell
    bias = model.posterior.cell_head.bias
    with torch.no_grad():
        bias[1:3] = 10.0
    q = model.first_step(torch.from_numpy(ds[0]["proxy"])[None])
    assert 1.5 / g < q.offset_mu.abs().max() <= 2.0 / g
    with torch.no_grad():
        bias[1:3] = 0.0
    with pytest.raises(ValueError, match="offset_reach"):
        zoom_model(offset_reach=0.0)
    # z a quarter of a cell right of cell 1's centre (row 0): held by cell 1; within one
    # cell of it only cell 2's centre (cell 0's is 1.25 cells away, row 1's a cell below)
    z = torch.tensor([[0.0, -1 + 3.5 / g, -1 + 1 / g]]).expand(2, -1)
    cells = component_of(model, z, None)
    assert cells.tolist() == [1, 1]
    offsets = torch.zeros(2, g * g, 2)
    offsets[0, 2, 0] = -1.5 / g  # row 0: cell 2 aims at z; row 1: at its own centre
    where = WhereDistribution(
        torch.zeros(2, g * g), offsets, torch.full((2, g * g, 2), 0.01), torch.zeros(2),
        torch.ones(2),
    )  # fmt: skip
    aimed, away = neighbour_log_density(model, where, z, cells).tolist()
    assert aimed == pytest.approx(2 * (-math.log(0.01) - 0.5 * math.log(2 * math.pi)))
    assert aimed > away + 100
    held_locally = torch.tensor([g * g, g * g])  # a local cell holds z: no such term
    assert neighbour_log_density(model, where, z, held_locally).abs().max() == 0
    # a few imitation steps under it lower its loss
    torch.manual_seed(0)
    objective = Imitation(model, teacher_forcing=1.0, fit="neighbours")
    opt = torch.optim.Adam(model.posterior.parameters(), lr=3e-3)
    batch, losses = zoom_batch(ds), []
    for _ in range(15):
        loss, terms = objective(batch)
        losses.append(terms["imitation"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0] - 1.0


def test_the_last_window_map_marks_the_crop_and_its_zoom():
    from tests.helpers import zoom_model

    model = zoom_model(where_memory=True)
    z = torch.tensor([[-1.0, 0.05, 0.05], [1.0, 0.0, 0.0]])
    covered = model._covered_cells(z)
    last = model._last_window(z, covered)
    assert last[0].sum() == pytest.approx(1.0)  # the smallest crop: its centre's cell, at 1
    assert last[0].max() == 1.0 and covered[0].sum() == 0
    assert set(last[1].unique().tolist()) <= {0.0, 0.5} and last[1].sum() > 1  # half the canvas


def test_imitation_is_refused_on_data_without_cues():
    from saccade.train.config import TrainConfig

    with pytest.raises(ValueError, match="zoom"):
        TrainConfig.from_settings(dataset="cluttered", objective="imitation")


@pytest.mark.slow
def test_evaluate_reports_the_zoom_chain_on_a_larger_canvas(tmp_path):
    """``python -m saccade.evaluate CKPT --canvas 65536 --localisation --policy scale-min``: a
    warning for the side the model was not trained on, the crops' sides per step in pixels
    (kept in pixels on the larger canvas, all at the smallest with scale-min) and the first
    step that found the digit."""
    import json
    import subprocess
    import sys

    from tests.helpers import zoom_model

    model = zoom_model(size=32768, proxy_size=64, where_grid=8)
    saccade.save(model, tmp_path / "zoom-tiny", {})
    out = tmp_path / "eval.json"
    run = subprocess.run(
        [sys.executable, "-m", "saccade.evaluate", str(tmp_path / "zoom-tiny"), "--n", "4",
         "--noise", "0", "--canvas", "65536", "--localisation", "--policy", "scale-min",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "trained on 32768² canvases; evaluating on 65536²" in run.stderr
    result = json.loads(out.read_text())
    assert result["size"] == 65536 and result["policy"] == "scale-min"
    assert result["canvas_layout"] == "share"  # the zoom default: the trained proxy and grid
    per_step = result["crop_side"]["median_px_per_step"]
    assert len(per_step) == 3
    np.testing.assert_allclose(per_step, 48.0, rtol=1e-4)  # s = -1: the smallest, in pixels
    first = result["localisation"]["first_found"]
    assert set(first) == {"median_step", "never"} and 0.0 <= first["never"] <= 1.0


def test_evaluate_renders_the_checkpoints_canvases_or_the_renderer_asked_for(tmp_path):
    """``evaluate`` rebuilds the canvases with the checkpoint's renderer (max for one saved
    before the option), ``--zoom-render`` asks for the other one, at the trained side and
    on a larger canvas; the JSON says which; a model of another dataset refuses it."""
    import json

    from saccade.evaluate.cli import main
    from tests.helpers import small_model, zoom_model

    saccade.save(zoom_model(size=16384, proxy_size=64, where_grid=8), tmp_path / "z", {})
    runs = {"max": [], "mean": ["--zoom-render", "mean"]}
    runs["mean 32768"] = ["--zoom-render", "mean", "--canvas", "32768"]
    for name, extra in runs.items():
        out = tmp_path / f"{name}.json"
        main([str(tmp_path / "z"), "--n", "2", "--noise", "0", "--json", str(out), *extra])
        assert json.loads(out.read_text())["render"] == name.split()[0]
    saccade.save(small_model(), tmp_path / "c", {})
    with pytest.raises(SystemExit, match="--zoom-render: this model was trained on 'cluttered'"):
        main([str(tmp_path / "c"), "--zoom-render", "mean", "--n", "1"])


def test_a_canvas_layout_without_a_canvas_is_refused_by_name(tmp_path):
    from saccade.evaluate.cli import main
    from tests.helpers import zoom_model

    saccade.save(zoom_model(size=32768, proxy_size=64, where_grid=8), tmp_path / "z", {})
    with pytest.raises(SystemExit, match="--canvas-layout goes with --canvas SIDE"):
        main([str(tmp_path / "z"), "--canvas-layout", "pixels", "--n", "1"])
    with pytest.raises(SystemExit, match="size=8192: the largest crop.*at least 16384"):
        main([str(tmp_path / "z"), "--canvas", "8192", "--n", "1", "--noise", "0"])


@pytest.mark.slow
def test_the_zoom_bench_times_data_steps_and_the_tile_grid():
    from saccade.bench.zoom import TILE_SIDE, bench_zoom

    rows = bench_zoom([16384, 32768], repeats=1, batch_size=2)
    phases = [(r["model"], r["side"], r["phase"]) for r in rows]
    assert phases == [
        ("vs", 16384, "data"), ("vs", 16384, "train"), ("vs", 32768, "data"),
        ("vs", 32768, "train"), ("tile-grid", 16384, "infer"),
    ]  # fmt: skip
    train = [r for r in rows if r["phase"] == "train"]
    assert train[0]["ratio"] == 1.0 and train[1]["ratio"] > 0
    assert all(r["ms_per_image"] > 0 for r in rows)
    assert rows[-1]["tiles"] == math.ceil(16384 / TILE_SIDE) ** 2
    with pytest.raises(ValueError, match="CPU"):
        bench_zoom([16384], device="cuda")


@pytest.mark.slow
def test_one_level_reads_the_digit_only_at_the_level_whose_patches_are_the_tile_grid_s():
    """The IPS-style bound (bench --suite zoom --zoom-reader): the top patch given, on the
    digit, one crop read by the shipped zoom model's reader."""
    from saccade.bench.zoom import TILE_SIDE, one_level

    rows = one_level("checkpoints/stages/zoom-imitate", 32768, n=16, patch_sides=[48, 1536])
    fine, coarse = rows
    assert fine["patches"] == math.ceil(32768 / 48) ** 2 and coarse["patches"] == 22**2
    assert fine["accuracy"] >= 0.75 and coarse["accuracy"] <= 0.5
    assert fine["ms_per_image"] > coarse["ms_per_image"] > 0
    assert fine["patches"] >= math.ceil(32768 / TILE_SIDE) ** 2  # as many as the tile grid's
    with pytest.raises(ValueError, match="zoom model"):
        one_level("checkpoints/cluttered-single-learnt", 32768, n=2)


@pytest.mark.slow
def test_a_short_training_run_reads_a_folder_of_written_canvases(tmp_path):
    """python -m saccade.data zoom's TIFFs, one folder per class, train and evaluate through
    the slide path (--dataset folder) like any folder of slides."""
    import json
    import subprocess
    import sys

    from saccade.data.zoom import write_zoom_folder

    root = tmp_path / "zoom"
    write_zoom_folder(root, 9, size=16384, seed=0)  # classes 1, 3, 6, 7: two or more each
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "saccade.train", "--dataset", "folder", "--root", str(root),
        "--channels", "1", "--holdout", "0.3", "--scale-space", "log", "--min-scale", "0.003",
        "--max-scale", "0.5", "--where-grid", "8", "--n-saccades", "3", "--epochs", "1",
        "--batch-size", "2", "--hidden", "16", "--features", "16", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["class_names"] == ["1", "3", "6", "7"]
    assert meta["steps_done"] >= 2 and meta["test_accuracy"] is not None
    model = saccade.load(out)
    tiff = next(root.glob("3/*.tif"))
    pred = saccade.predict(model, str(tiff), 3)
    assert pred.image_shape == (16384, 16384) and len(pred.boxes) == 3
