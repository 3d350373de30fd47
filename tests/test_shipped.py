"""The shipped checkpoints do what the README and docs/results.md say: each test would have caught one of the
defects of the first models (a hand-written rule choosing the location, σ collapsed to its
floor, later saccades undoing a right answer).

Each checkpoint is loaded and evaluated once per test process (``Shipped``: the anytime curve
on the test images of docs/results.md, 5,000 cluttered and 2,000 Megapixel canvases at 2T; σ
under proxy noise on 1,000; the policy ablations on 200), and the tests share it (under
pytest-xdist, scripts/test.sh's ``--dist loadfile`` runs this file on one worker)."""

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import saccade
from saccade.evaluate.loop import evaluate
from saccade.models.posterior import _sigma

ROOT = Path(__file__).resolve().parents[1]
N = 200  # test images of the policy ablations
#: σ's mean under noise is dominated by a few images: 200 gave 1.42x where 1,000 and 5,000
#: give 1.65x and 1.63x (cluttered-single-learnt), so σ is measured on more
N_SIGMA = 1000
#: the anytime curve's test images, as docs/results.md: see test_accuracy_does_not_fall_...
N_ANYTIME = {"cluttered": 5000, "megapixel": 2000, "zoom": 2000}
#: the learnt policy's margin over uniform crops (mean accuracy over 1..T), in points: 44-70
#: measured (docs/results.md), so 20 leaves room for a retrain and not for a broken posterior
RANDOM_MARGIN = 0.20
NOISE = 0.3  # the proxy noise σ is tested under


def _dataset_name(stem: str) -> str:
    return json.loads((ROOT / "checkpoints" / f"{stem}.json").read_text())["config"]["dataset"][
        "name"
    ]


_ALL = sorted(p.stem for p in (ROOT / "checkpoints").glob("*.safetensors") if "." not in p.stem)
#: the checkpoints of generated data (their test sets are rebuilt here); a folder checkpoint's
#: images are not shipped (runs/ is not in git): test_the_folder_checkpoint covers it
SHIPPED = [name for name in _ALL if _dataset_name(name) != "folder"]
FOLDER = [name for name in _ALL if _dataset_name(name) == "folder"]
LEARNT = [name for name in SHIPPED if name.endswith("-learnt")]
#: shipped checkpoints with a known defect that a test below catches: {test: {name: why}}
KNOWN_DEFECTS = {
    "test_learnt_sigma_stays_below_its_ceiling": {
        "megapixel-majority-learnt": "σ of the scale reaches its bound max_sigma = 0.05 "
        "(0.033 to 0.050 on the first 8 test canvases; it started at 0.01: the crop's scale "
        "range, 45 to 52 px, changes little of what a crop reads, so the class term hardly holds "
        "it against the KL); the offset's stays below it (0.004 to 0.009)",
        "zoom-ring-learnt": "σ of the (log) scale reaches its bound max_sigma = 0.05 at steps "
        "2 to 4 on 6 of the first 8 test canvases, as in stage 2c, which it starts from: "
        "imitation fits σ_s to the teacher's next side, which there is either the next cue's "
        "1,920 px or the zoom's 480 (a factor 4); the offset's stays below it (at most 0.019)",
        "zoom-reach-learnt": "as zoom-ring-learnt's, by the same recipe: σ of the (log) scale "
        "reaches its bound max_sigma = 0.05 at steps 2 to 4 on 5 of the first 8 test "
        "canvases; the offset's stays below it",
        "zoom-mean-learnt": "as zoom-reach-learnt's, by the same recipe on the area-average "
        "renderer's canvases: σ of the (log) scale reaches its bound max_sigma = 0.05 at steps "
        "2 to 4 on the first test canvases (0.048 to 0.05 where it does); the offset's stays "
        "below it",
    },
    "test_learnt_sigma_is_alive_and_grows_with_proxy_noise": {
        "megapixel-majority-learnt": "the crop centre's σ at step 1 is the categorical's "
        "spread over five digits across the canvas (0.50 clean on 1,000 test canvases), which "
        "noise 0.3 widens to 0.57 only (1.14x, not 1.5x)",
        "zoom-ring-learnt": "at step 2 the crop centre's σ is mostly the categorical's spread "
        "over the cues not yet seen (a mean of 0.207 clean on 1,000 test canvases), which noise "
        "0.3 widens to 0.269 (1.30x, not 1.5x); at step 1, 0.162 -> 0.243 (1.50x)",
        "zoom-reach-learnt": "as zoom-ring-learnt's: at step 2 the crop centre's σ is mostly "
        "the categorical's spread over the cues not yet seen (a mean of 0.217 clean on 1,000 "
        "test canvases), which noise 0.3 widens to 0.280 (1.29x, not 1.5x)",
    },
}


class Shipped:
    """One shipped checkpoint and its evaluations, each run when a test first asks for it."""

    def __init__(self, name: str):
        self.name = name
        self.model = saccade.load(ROOT / "checkpoints" / name)
        self.T = self.model.config.n_saccades
        self._policies: dict[str, dict] = {}

    @functools.cached_property
    def anytime(self) -> dict:
        """``evaluate`` at 2T saccades on docs/results.md's test images, clean proxy."""
        n = N_ANYTIME[self.model.config.dataset["name"]]
        return evaluate(self.model, n=n, noise_levels=[], n_saccades=2 * self.T)

    @functools.cached_property
    def noisy(self) -> dict:
        """``evaluate`` at T on N_SIGMA test images, clean and at proxy noise NOISE."""
        return evaluate(self.model, n=N_SIGMA, noise_levels=[NOISE])

    @functools.cached_property
    def sigmas(self) -> tuple[np.ndarray, np.ndarray]:
        """predict's σ (8, 4, 3: scale, x, y) and σ of the cell offsets (8, 4, 3) on the first
        8 test images, 4 saccades."""
        spec = self.model.config.dataset
        ds = saccade.make_dataset(spec["name"], task=spec["task"], split="test")
        out = [saccade.predict(self.model, ds[i]["image"], n_saccades=4) for i in range(8)]
        return np.stack([o.sigma for o in out]), np.stack([o.offset_sigma for o in out])

    def policy(self, policy: str) -> dict:
        """``evaluate`` at T on N test images, the crops placed by ``policy``."""
        if policy not in self._policies:
            self._policies[policy] = evaluate(self.model, n=N, noise_levels=[], policy=policy)
        return self._policies[policy]


@functools.cache
def checkpoint(name: str) -> Shipped:
    return Shipped(name)


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request) -> Shipped:
    return checkpoint(request.param)


@pytest.fixture(scope="module", params=LEARNT)
def learnt(request) -> Shipped:
    return checkpoint(request.param)


class KnownDefect(AssertionError):
    """The failure of the one assertion a KNOWN_DEFECTS entry records (``known_defect``)."""


def known_defect(holds: bool, detail) -> None:
    """The assertion that a KNOWN_DEFECTS entry records: raises ``KnownDefect``. Every other
    assertion of the test is a plain ``assert``, so it fails the test even where the entry
    applies."""
    if not holds:
        raise KnownDefect(detail)


@pytest.fixture(autouse=True)
def _known_defects(request):
    """A test of KNOWN_DEFECTS on its checkpoint is a strict xfail on ``KnownDefect`` alone:
    it must keep failing on the assertion the entry records, until the checkpoint is fixed
    and the entry goes; another assertion, or a crash, fails it."""
    params = getattr(request.node, "callspec", None)
    name = params and params.params.get("shipped", params.params.get("learnt"))
    why = KNOWN_DEFECTS.get(request.node.originalname, {}).get(name)
    if why:
        request.applymarker(pytest.mark.xfail(reason=why, strict=True, raises=KnownDefect))


def test_there_are_shipped_checkpoints():
    assert LEARNT and len(SHIPPED) >= 3


def _looking_step(model) -> int:
    """The (1-based) step whose σ is tested: the one that looks for the last digit, 1 for
    one digit and 2 for two (at step 1 of a two-digit image the posterior is split between
    the two digits whatever the noise). Megapixel: 1, where it has seen nothing yet and
    looks for all five digits."""
    task = model.config.dataset["task"]
    return 1 if task in ("single", "majority") else 2


@pytest.mark.slow
def test_learnt_sigma_is_alive_and_grows_with_proxy_noise(learnt):
    """σ of the crop centre at the step that looks for the last digit (step 1 for one digit,
    step 2 for two: at step 1 of a two-digit image the posterior is split between the two
    digits whatever the noise): far above its floor, and 1.5x larger at proxy noise 0.3."""
    model = learnt.model
    r = learnt.noisy
    floor = model.config.min_sigma
    clean, noisy = r["sigma"]["0.0"], r["sigma"][str(NOISE)]
    t = _looking_step(model) - 1
    assert min(clean["median_per_step"][: t + 1]) > 10 * floor
    known_defect(
        noisy["mean_per_step"][t] > 1.5 * clean["mean_per_step"][t],
        (noisy["mean_per_step"][t], clean["mean_per_step"][t]),
    )


@pytest.mark.slow
def test_accuracy_does_not_fall_with_more_saccades(shipped):
    """From 2 saccades on (one crop cannot tell a sum), no step falls more than 0.5 points
    below the best step before it, on the test images of docs/results.md (5,000 cluttered,
    2,000 Megapixel canvases): the falls measured are 0.5 points or less there, but up to 2
    points on the first 200 images alone (a handful of images), so a smaller sample would
    test the sample, not the model."""
    per_step = shipped.anytime["per_saccade"]
    assert len(per_step) == 2 * shipped.T
    after_two = np.array(per_step[1:])
    drop = np.maximum.accumulate(after_two) - after_two
    assert drop.max() <= 0.005 + 1e-9, per_step


@pytest.mark.slow
def test_the_learnt_policy_beats_brightness_and_random(shipped):
    """Mean accuracy over saccades 1..T (the anytime curve): the learnt posterior (on the
    anytime curve's images) against the brightest-uncovered-cell heuristic and uniform crops
    (on the first 200 of them), the rest of the model the same."""
    acc = {"learnt": np.mean(shipped.anytime["per_saccade"][: shipped.T])}
    for policy in ("brightness", "random"):
        acc[policy] = np.mean(shipped.policy(policy)["per_saccade"])
    assert acc["learnt"] > acc["brightness"] + 0.01, acc
    assert acc["learnt"] > acc["random"] + RANDOM_MARGIN, acc


def test_predict_returns_the_posterior_sigma_of_every_step(shipped):
    """What the app shows: predict's σ, per step, is the model's: in the range the config
    allows (fixed: the constant; learnt: above the floor), and it moves with the step and
    the image."""
    c = shipped.model.config
    sigma, offset = shipped.sigmas  # (8, 4, 3) each
    if c.variance == "fixed" and getattr(c, "refine_grid", 0):
        # a local cell's offset σ is fixed_sigma in units of the last crop's side
        # (saccade.models.refine), so it is fixed_sigma times that crop's share of the side
        assert np.allclose(sigma[..., 0], c.fixed_sigma) and np.allclose(
            offset[..., 0], c.fixed_sigma
        )
        assert (offset[..., 1:] <= c.fixed_sigma * (1 + 1e-5)).all()
        assert (offset[..., 1:] >= c.fixed_sigma * c.min_scale * (1 - 1e-5)).all()
        lowest = c.fixed_sigma * c.min_scale
    elif c.variance == "fixed":
        assert np.allclose(sigma[..., 0], c.fixed_sigma) and np.allclose(offset, c.fixed_sigma)
        lowest = c.fixed_sigma
    else:
        # a local cell's (saccade.models.refine): its floor times the last crop's share
        floor = c.min_sigma * (c.min_scale if getattr(c, "refine_grid", 0) else 1.0)
        assert (offset >= floor * (1 - 1e-5)).all()
        # every image's scale σ moves with the step, by more than 1% of its mean (6% and
        # more in the shipped models: a σ_s head that ignores the step fails)
        assert (sigma[..., 0].std(1) > 0.01 * sigma[..., 0].mean(1)).all(), sigma[..., 0]
        lowest = floor
    # the location's spread over the mixture is at least one cell's offset σ
    assert (sigma[..., 1:] >= lowest * (1 - 1e-5)).all()
    assert (sigma[..., 1:].std(1) > 1e-3).all()  # moves with the step, on every image
    assert (sigma[..., 1:].std(0) > 1e-4).any()  # and with the image


def test_learnt_sigma_stays_below_its_ceiling(learnt):
    """A learnt σ (the scale's and every cell offset's) stays below the largest the log-σ
    head can give (min_sigma + e^5, or the config's ``max_sigma``): a σ pinned there says
    nothing (at e^5, "anywhere": ~70 times the image)."""
    c = learnt.model.config
    ceiling = float(_sigma(torch.tensor(float("inf")), c.min_sigma, c.max_sigma))
    sigma, offset = learnt.sigmas
    assert offset[..., 1:].max() < 0.999 * ceiling, offset[..., 1:].round(3)  # the offset's
    scale = np.maximum(sigma[..., 0], offset[..., 0])  # σ_s, in both
    known_defect(scale.max() < 0.999 * ceiling, scale.round(3))


#: shipped checkpoints whose examples are not claimed to be predicted right (none: the
#: megapixel models, 96.5% and 95.9% on the test canvases, answer their example right at T and 2T)
NOT_CLAIMED: set[str] = set()


def _examples():
    """(example image, checkpoint) for every app example whose task has shipped checkpoints
    (but those in NOT_CLAIMED)."""
    pairs = []
    for png in sorted((ROOT / "assets").glob("*.png")):
        meta = saccade.image_io.read_sidecar(png)
        if meta is None:
            continue
        for name in sorted(set(SHIPPED) - NOT_CLAIMED):
            spec = json.loads((ROOT / "checkpoints" / f"{name}.json").read_text())["config"][
                "dataset"
            ]
            if (spec["name"], spec["task"]) == (meta["dataset"]["name"], meta["dataset"]["task"]):
                pairs.append((png.name, name))
    return pairs


@pytest.mark.parametrize("example,name", _examples())
def test_the_app_examples_are_predicted_correctly(example, name):
    """The app's examples, through every shipped checkpoint of their task, at T and 2T."""
    model = checkpoint(name).model
    label = saccade.image_io.read_sidecar(ROOT / "assets" / example)["label"]
    for steps in (model.config.n_saccades, 2 * model.config.n_saccades):
        out = saccade.predict(model, ROOT / "assets" / example, n_saccades=steps)
        assert out.label == label, (example, name, steps, out.probs[-1].max())


def test_the_megapixel_example_runs_the_megapixel_checkpoint(tmp_path):
    """Explore on the Megapixel example with no checkpoint named (the page's default for the
    example, or an API call): the megapixel checkpoint runs, with no warning, on its own
    proxy, for its T steps, and its zooms are the full-resolution pixels of each crop."""
    from saccade import app
    from saccade.app import Look

    the_app = app.App(ROOT / "checkpoints", ROOT / "assets", runs=tmp_path / "runs")
    path = str(ROOT / "assets" / "megapixel-majority-1500-0.png")
    assert (
        the_app.explore.on_image(path, "cluttered-sum-learnt")["value"]
        == "megapixel-majority-learnt"
    )
    traj, _, proxy, _, _, gallery, truth_md, status = the_app.explore.run(Look(path))
    model = checkpoint("megapixel-majority-learnt").model
    p = model.config.proxy_size
    assert "`megapixel-majority-learnt`" in status and "⚠️" not in status
    assert f"megapixel/majority 1500², proxy {p}²" in status
    assert proxy.layout.title.text.startswith(f"Proxy {p}×{p}")
    T = model.config.n_saccades
    assert (
        len(traj.layout.updatemenus[0].buttons[0].args[0]) == T and len(gallery) == T
    )  # one picture per step: region and crop side by side
    out = saccade.predict(model, path)
    sides = out.boxes[:, 2] - out.boxes[:, 0]
    assert (sides <= 60).all()  # crops near a digit's size, not 450 px squeezed into 32²
    for zoom, box, side in zip(out.zooms, out.boxes, sides, strict=True):
        inside = box.min() >= 0 and box.max() <= 1500  # else the zoom is clipped to the image
        assert max(zoom.shape) <= side + 2 and (not inside or max(zoom.shape) >= side - 2)
    assert "Covered" in truth_md and "12 of the crop's 32" in truth_md


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("megapixel-")])
def test_the_megapixel_example_is_found_as_well_as_answered(name):
    """The crops of each megapixel checkpoint on the app's example look at (the looked-at
    rule of the app's truth boxes) at least 4 of its 5 digits after T saccades."""
    from saccade.looked_at import covered_after

    model = checkpoint(name).model
    path = ROOT / "assets" / "megapixel-majority-1500-0.png"
    truth = np.asarray(saccade.image_io.read_sidecar(path)["boxes"])
    out = saccade.predict(model, path)
    found = covered_after(truth, out.boxes, model.config.crop_size)[-1]
    assert found.sum() >= 4, (name, found)


@pytest.mark.parametrize("name", FOLDER)
def test_the_folder_checkpoint_sees_colour_and_gets_its_examples_right(name):
    """A folder checkpoint (scripts/make_folder_example.py): colour, its class names, and
    the colour-marks examples in assets/ predicted right at T and 2T."""
    model = saccade.load(ROOT / "checkpoints" / name)
    assert model.config.channels == 3
    examples = sorted((ROOT / "assets").glob("folder-marks-*.png"))
    assert examples
    for png in examples:
        meta = saccade.image_io.read_sidecar(png)
        assert model.config.class_names[meta["label"]] == meta["class_name"]
        for steps in (model.config.n_saccades, 2 * model.config.n_saccades):
            out = saccade.predict(model, png, n_saccades=steps)
            assert out.label == meta["label"], (png.name, steps, out.probs[-1])
