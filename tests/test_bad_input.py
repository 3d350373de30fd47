"""Bad input (issue 11): every case twice, through the library (``saccade.predict``, or the
App's event function where the input is a checkpoint or a Train setting, which ``predict``
does not take) and through a real ``python app.py`` process on a local port with
``gradio_client``.

Each refused case must give a message that names the input and what is accepted; the user
sees no traceback; the server's log gets exactly one ``refused:`` line for it and no
traceback; the next good request gives the same answer as before. Each accepted odd file
(16-bit, float TIFF, CMYK, palette with transparency, RGBA, animated GIF, EXIF-rotated, a valid
12000x12000 image) must put its content where a viewer shows it. Every file is generated here,
a truncated one by cutting a real file's bytes. One app process serves the whole module.
"""

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import saccade
from saccade import app, image_io
from saccade.app import Look
from saccade.app.explore import ExploreOutputs
from tests.helpers import png_with_header, write_tiny_checkpoint

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "assets" / "cluttered-sum-100-0.png"
MODEL = "b-sum-learnt"


# ----------------------------------------------------------------------------- the files


def digit_image(h: int = 64, w: int = 64) -> np.ndarray:
    """Black, with one bright block in the top-left quarter: where it ends up is checkable."""
    a = np.zeros((h, w), np.uint8)
    a[h // 8 : h // 8 + h // 4, w // 8 : w // 8 + w // 4] = 255
    return a


def write(folder: Path, kind: str) -> Path:
    """The file of one case, generated for real."""
    d = digit_image()
    if kind == "empty":
        (p := folder / "empty.png").write_bytes(b"")
    elif kind == "text":
        (p := folder / "notes.png").write_text("Shopping list: milk, eggs.\n")
    elif kind == "html":
        (p := folder / "page.jpg").write_text("<!DOCTYPE html><html><body>hi</body></html>")
    elif kind in ("truncated-png", "truncated-jpeg"):
        ext = "png" if kind.endswith("png") else "jpg"
        noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
        full = folder / f"full.{ext}"
        Image.fromarray(noise).save(full)
        p = folder / f"cut.{ext}"
        p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # real bytes, cut
    elif kind == "header-100k":
        (p := folder / "bomb.png").write_bytes(png_with_header(100_000, 100_000))
    elif kind == "0x0":
        (p := folder / "zero.png").write_bytes(png_with_header(0, 0))
    elif kind in ("1x1", "1x10000", "3x3"):
        w, h = (int(v) for v in kind.split("x"))
        Image.new("L", (w, h), 255).save(p := folder / f"size-{kind}.png")
    elif kind in ("nan-array", "inf-array"):
        Image.fromarray(float_array(kind)).save(p := folder / f"{kind}.tif")
    elif kind == "16-bit-png":
        Image.fromarray(d.astype(np.uint16) * 257).save(p := folder / "deep.png")
        assert Image.open(p).mode.startswith("I;16")
    elif kind == "float-tiff":
        Image.fromarray(d.astype(np.float32) / 255).save(p := folder / "float.tif")
        assert Image.open(p).mode == "F"
    elif kind == "cmyk-jpeg":
        cmyk = np.zeros((64, 64, 4), np.uint8)
        cmyk[..., 3] = 255 - d  # black ink everywhere but the block
        Image.fromarray(cmyk, "CMYK").save(p := folder / "cmyk.jpg", quality=95)
        assert Image.open(p).mode == "CMYK"
    elif kind == "palette-transparent":
        im = Image.new("P", (64, 64), 0)  # index 0: the ground, white but transparent
        im.paste(1, (8, 8, 24, 24))  # index 1: the block, white and opaque
        im.putpalette([255, 255, 255, 255, 255, 255] + [0] * 762)
        im.save(p := folder / "palette.png", transparency=0)
        assert Image.open(p).mode == "P" and Image.open(p).info["transparency"] == 0
    elif kind == "rgba":
        rgba = np.dstack([np.full_like(d, 255)] * 3 + [d])  # white, opaque only in the block
        Image.fromarray(rgba, "RGBA").save(p := folder / "rgba.png")
    elif kind == "animated-gif":
        frames = [Image.fromarray(v) for v in (d, 255 - d, d // 2)]  # all different
        p = folder / "anim.gif"
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
        assert Image.open(p).n_frames == 3
    elif kind == "exif-rotated-jpeg":
        # stored 96 wide x 64 high, block top-left; EXIF 6 = shown rotated 90° clockwise, so a
        # viewer shows 64 wide x 96 high with the block top-right
        stored = np.zeros((64, 96), np.uint8)
        stored[4:20, 4:20] = 255
        im = Image.fromarray(stored)
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(p := folder / "rotated.jpg", exif=exif, quality=95)
    elif kind == "12000x12000":
        big = np.zeros((12000, 12000), np.uint8)
        big[1500:4500, 1500:4500] = 255  # top-left quarter, as digit_image
        Image.fromarray(big).save(p := folder / "huge.png", compress_level=1)
    else:
        raise AssertionError(kind)
    return p


def float_array(kind: str) -> np.ndarray:
    a = digit_image().astype(np.float32) / 255
    a[0, 0] = np.nan if kind == "nan-array" else np.inf
    return a


# ----------------------------------------------------------------------------- the cases


@dataclass
class Case:
    """One bad input. ``message``: a regex both halves' messages must match (the input named
    and what is accepted). ``image``: the file kind or array sent (None: the good image);
    ``settings``: Explore's other inputs; ``train``: /train's inputs instead of Explore's;
    ``where``, for an accepted file: (row, col) fractions of the model image where the block
    must be brightest."""

    message: str = ""
    image: str | None = None
    settings: dict = field(default_factory=dict)
    train: dict | None = None
    where: tuple[float, float] | None = None


def train_case(settings: dict) -> Case:
    """The Train tab takes no run name (it makes one from the settings and the time): a name
    with "/", ".." or shell characters can only come in through its two text settings, the
    task and the variance mode, which must be refused as not one of the choices (by the app,
    or by Gradio's check of the choices, reported the same way)."""
    (value,) = settings.values()
    return Case(rf"'?{re.escape(value)}'?( \(type: <class 'str'>\))? is not", train=settings)


NOT_IMAGE = r"accepted: an image file \(PNG, JPEG, TIFF, WEBP, BMP, GIF\)"
SMALL = r"accepted: at least 8 px a side"
REFUSED = {
    "empty file": Case(rf"'empty.png' is empty \(0 bytes\); {NOT_IMAGE}", "empty"),
    "text with .png": Case(rf"'notes.png' is not an image: it holds text; {NOT_IMAGE}", "text"),
    "HTML with .jpg": Case(
        rf"'page.jpg' is not an image: it holds HTML or XML; {NOT_IMAGE}", "html"
    ),
    "truncated PNG": Case(r"'cut.png' is truncated or corrupt", "truncated-png"),
    "truncated JPEG": Case(r"'cut.jpg' is truncated or corrupt", "truncated-jpeg"),
    "header claims 100k x 100k": Case(
        r"'bomb.png' is 100000x100000 = 10,000,000,000 pixels; accepted: at most 268,435,456",
        "header-100k",
    ),
    "0x0": Case(r"'zero.png' is not an image: its PNG header says 0x0 pixels", "0x0"),
    "1x1": Case(rf"'size-1x1.png' is 1x1 pixels; {SMALL}", "1x1"),
    "1x10000": Case(rf"'size-1x10000.png' is 1x10000 pixels; {SMALL}", "1x10000"),
    "3x3": Case(rf"'size-3x3.png' is 3x3 pixels; {SMALL}", "3x3"),
    "NaN in an array": Case(
        r"has 1 NaN and 0 infinite values; accepted: finite numbers", "nan-array"
    ),
    "inf in an array": Case(
        r"has 0 NaN and 1 infinite values; accepted: finite numbers", "inf-array"
    ),
    "saccades 0": Case(
        r"(n_saccades=0|[Ss]accades.*0).*(in \[1, \d+\]|minimum value 1)", None, {"n_saccades": 0}
    ),
    "saccades -1": Case(
        r"(n_saccades=-1|[Ss]accades.*-1).*(in \[1, \d+\]|minimum value 1)",
        None,
        {"n_saccades": -1},
    ),
    "saccades 10^6": Case(
        r"(n_saccades=1000000|[Ss]accades.*1000000).*(in \[1, \d+\]|maximum value \d+)",
        None,
        {"n_saccades": 10**6},
    ),
    "noise -1": Case(
        r"(proxy_noise=-1|[Nn]oise.*-1).*(in \[0, 1\]|minimum value 0)", None, {"proxy_noise": -1.0}
    ),
    "noise 2": Case(
        r"(proxy_noise=2|[Nn]oise.*2).*(in \[0, 1\]|maximum value 1)", None, {"proxy_noise": 2.0}
    ),
    "noise NaN": Case(
        r"proxy_noise=nan must be a number in \[0, 1\]", None, {"proxy_noise": float("nan")}
    ),
    "unknown checkpoint": Case(
        r"'?nope'? is not (one of|in the list of choices)", None, {"checkpoint": "nope"}
    ),
    "checkpoint ../": Case(
        r"'?\.\./b-sum-learnt'? is not (one of|in the list of choices)",
        None,
        {"checkpoint": "../b-sum-learnt"},
    ),
    "train name with /": train_case({"task": "cluttered:single/../x"}),
    "train name with ..": train_case({"variance": ".."}),
    "train name with shell characters": train_case(
        {"task": "cluttered:single; rm -rf ~ && echo $(id) `id` | tee > x"}
    ),
}
ACCEPTED = {
    "16-bit PNG": Case(image="16-bit-png", where=(0.25, 0.25)),
    "float TIFF": Case(image="float-tiff", where=(0.25, 0.25)),
    "CMYK JPEG": Case(image="cmyk-jpeg", where=(0.25, 0.25)),
    "palette with transparency": Case(image="palette-transparent", where=(0.25, 0.25)),
    "RGBA": Case(image="rgba", where=(0.25, 0.25)),
    "animated GIF (first frame)": Case(image="animated-gif", where=(0.25, 0.25)),
    # shown 64 x 96, padded to 96 x 96 (16 columns of black each side): the block lands top-right
    "EXIF-rotated JPEG (rotation honoured)": Case(image="exif-rotated-jpeg", where=(0.125, 0.71)),
    "valid 12000x12000": Case(image="12000x12000", where=(0.25, 0.25)),
}
TRAIN_DEFAULTS = {"task": "cluttered:single", "size": 100, "variance": "learnt", "n_saccades": 2}


def test_at_least_25_distinct_cases_each_run_by_both_halves():
    """25 or more cases, no two the same input (the file, the settings, the Train inputs);
    each refused one with its message, each accepted one with where its content must land;
    and each run through both halves (the four tests below are parametrized over them all)."""

    def sent(case: Case) -> str:
        return json.dumps([case.image, case.settings, case.train], sort_keys=True)

    cases = [*REFUSED.values(), *ACCEPTED.values()]
    assert len({sent(c) for c in cases}) == len(cases) >= 25
    assert all(c.message and c.where is None for c in REFUSED.values())
    assert all(c.image and c.where for c in ACCEPTED.values())
    for test, table in (
        (test_library_refuses_naming_the_problem, REFUSED),
        (test_served_app_refuses_with_one_log_line, REFUSED),
        (test_library_accepts_odd_files_with_content_in_place, ACCEPTED),
        (test_served_app_accepts_odd_files_with_content_in_place, ACCEPTED),
    ):
        (cases_run,) = [m.args[1] for m in test.pytestmark if m.name == "parametrize"]
        assert list(cases_run) == list(table), test.__name__


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    kinds = {c.image for c in (*REFUSED.values(), *ACCEPTED.values()) if c.image}
    return {kind: write(folder, kind) for kind in kinds}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    write_tiny_checkpoint(folder, "a-sum-fixed", variance="fixed")
    write_tiny_checkpoint(folder, MODEL)
    # a truly truncated checkpoint: the app must name it as unusable and still start
    write_tiny_checkpoint(folder, "cut-weights")
    weights = folder / "cut-weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return folder


@pytest.fixture(scope="module")
def model(ckpts):
    return saccade.load(ckpts / MODEL)


@pytest.fixture(scope="module")
def reference(model):
    return saccade.predict(model, GOOD)


# ----------------------------------------------------------------------------- library half


def library_call(case: Case, files, ckpts, model, tmp_path):
    """Run the case through the library: ``saccade.predict``, or for a checkpoint name or a
    Train setting (which ``predict`` does not take) the App's event function in-process."""
    if case.train is not None:
        the_app = app.App(ckpts, ROOT / "assets", runs=tmp_path / "runs")
        args = TRAIN_DEFAULTS | case.train
        next(the_app.train.run(args["task"], args["size"], args["variance"], args["n_saccades"], 1))
    elif "checkpoint" in case.settings:
        app.App(ckpts, ROOT / "assets").explore.run(Look(str(GOOD), case.settings["checkpoint"]))
    else:
        image = case.image
        if image in ("nan-array", "inf-array"):
            image = float_array(image)  # an array as such, not its file
        elif image is not None:
            image = files[image]
        saccade.predict(model, GOOD if image is None else image, **case.settings)


@pytest.mark.parametrize("name", list(REFUSED))
def test_library_refuses_naming_the_problem(name, files, ckpts, model, reference, tmp_path):
    import gradio as gr

    case = REFUSED[name]
    with pytest.raises((ValueError, gr.Error)) as err:
        library_call(case, files, ckpts, model, tmp_path)
    message = err.value.message if isinstance(err.value, gr.Error) else str(err.value)
    assert re.search(case.message, message), message
    assert "Traceback" not in message
    # the next good request gives the same answer as before
    again = saccade.predict(model, GOOD)
    np.testing.assert_array_equal(again.probs, reference.probs)
    if case.train is not None:  # nothing was written for a refused training
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*"))


def block_position(image: np.ndarray) -> tuple[float, float]:
    """(row, col) of the bright pixels' centre, as fractions of the image's sides."""
    ys, xs = np.nonzero(image > image.max() / 2)
    return ys.mean() / image.shape[0], xs.mean() / image.shape[1]


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_library_accepts_odd_files_with_content_in_place(name, files, model):
    case = ACCEPTED[name]
    out = saccade.predict(model, files[case.image])
    assert out.image.dtype == np.uint8 and out.image.shape[0] == out.image.shape[1]
    assert out.image.max() > 200 and np.median(out.image) < 30  # bright block, black ground
    np.testing.assert_allclose(block_position(out.image), case.where, atol=0.03)
    assert out.probs.shape == (3, 19) and np.isfinite(out.probs).all()


# ----------------------------------------------------------------------------- served half


def served(test):
    """A test of the ``python app.py`` process (one for the module): slow."""
    return pytest.mark.slow(test)


class Server:
    """``python app.py`` on ``port``, its log in a file read piece by piece."""

    def __init__(self, ckpts: Path, folder: Path, port: int):
        self.port = port
        self.log_path = folder / "server.log"
        self.runs = folder / "runs"
        env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        args = [sys.executable, "-u", str(ROOT / "app.py"), "--port", str(self.port)]
        args += ["--checkpoints", str(ckpts), "--runs", str(self.runs)]
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            args, stdout=self.log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        self.read = 0
        self.url = f"http://127.0.0.1:{self.port}/"

    def client(self):
        from gradio_client import Client

        for _ in range(240):
            if self.process.poll() is not None:
                raise AssertionError(self.log_path.read_text())
            try:
                return Client(self.url, verbose=False, download_files=False)
            except Exception:
                time.sleep(0.25)
        raise AssertionError("the app did not start: " + self.log_path.read_text())

    def new_log(self) -> str:
        """The log written since the last call."""
        text = self.log_path.read_text()
        new, self.read = text[self.read :], len(text)
        return new

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log_file.close()
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def server(ckpts, tmp_path_factory, free_port):
    s = Server(ckpts, tmp_path_factory.mktemp("server"), free_port())
    try:
        s.connection = s.client()
        yield s
    finally:
        log = s.stop()
    assert "Traceback" not in log, log


def explore(client, image, **settings):
    from gradio_client import handle_file

    args = {"checkpoint": MODEL, "proxy_noise": 0.0, "n_saccades": 3, "seed": 0} | settings
    return ExploreOutputs(
        *client.predict(
            handle_file(str(image)),
            args["checkpoint"],
            args["proxy_noise"],
            args["n_saccades"],
            args["seed"],
            "mean",
            api_name="/explore",
        )
    )


@pytest.fixture
def nan_on_the_wire(monkeypatch):
    """httpx refuses to encode NaN (allow_nan=False); a hostile client would not: send the
    JSON token NaN as such, as Python's json and the server's parser understand it."""
    import httpx._content

    def dumps(obj, **kw):
        return json.dumps(obj, **(kw | {"allow_nan": True}))

    monkeypatch.setattr(httpx._content, "json_dumps", dumps)


@served
@pytest.mark.parametrize("name", list(REFUSED))
def test_served_app_refuses_with_one_log_line(name, server, files, reference, request):
    case = REFUSED[name]
    client = server.connection
    server.new_log()
    if any(isinstance(v, float) and np.isnan(v) for v in case.settings.values()):
        request.getfixturevalue("nan_on_the_wire")
    with pytest.raises(Exception) as err:
        if case.train is not None:
            args = TRAIN_DEFAULTS | case.train
            client.predict(
                args["task"],
                args["size"],
                args["variance"],
                args["n_saccades"],
                1,
                0,
                api_name="/train",
            )
        else:
            image = files[case.image] if case.image else GOOD
            explore(client, image, **case.settings)
    message = str(err.value)
    assert re.search(case.message, message), message
    assert "Traceback" not in message and 'File "' not in message
    log = server.new_log()
    refused = [line for line in log.splitlines() if line.startswith("refused: ")]
    assert len(refused) == 1 and "Traceback" not in log, log
    assert re.search(case.message, refused[0]), refused[0]
    # the next good request gives the same answer as the library
    good = explore(client, GOOD)
    assert good.label["label"] == reference.class_name and f"`{MODEL}`" in good.status
    assert not server.runs.exists() or not any(server.runs.rglob("*"))  # nothing trained


def proxy_block_position(figure: dict) -> tuple[float, float]:
    """Where the block is in the proxy figure the client got (a PNG inside plotly JSON)."""
    plot = json.loads(figure["plot"]) if isinstance(figure, dict) else json.loads(figure)
    source = plot["data"][0]["source"]
    png = base64.b64decode(source.split(",", 1)[1])
    return block_position(np.asarray(Image.open(io.BytesIO(png)).convert("L")))


@served
@pytest.mark.parametrize("name", list(ACCEPTED))
def test_served_app_accepts_odd_files_with_content_in_place(name, server, files, model):
    case = ACCEPTED[name]
    out = explore(server.connection, files[case.image])
    ref = saccade.predict(model, files[case.image])
    side = ref.image.shape[0]
    assert f"image {side}×{side}" in out.status and f"`{MODEL}`" in out.status
    assert out.label["label"] == ref.class_name
    # the proxy the model saw, as the client received it, has the block in the same place
    np.testing.assert_allclose(proxy_block_position(out.proxy), case.where, atol=0.06)


@served
def test_served_app_names_a_truncated_checkpoint_as_unusable_and_runs(server):
    """The module's checkpoints hold a truly truncated one: the app started, offers it
    nowhere, and the Explore tab names it with the reason."""
    import httpx

    config = httpx.get(server.url + "config", timeout=30).json()
    texts = [
        c.get("props", {}).get("value")
        for c in config["components"]
        if c.get("props", {}).get("elem_id") == "explore-unusable"
    ]
    assert len(texts) == 1, texts
    assert "- `cut-weights`: checkpoint weights" in texts[0]
    assert "cut-weights.safetensors are truncated or corrupt" in texts[0]
    dropdown = next(
        c for c in config["components"] if c.get("props", {}).get("elem_id") == "explore-checkpoint"
    )
    offered = [v for _, v in dropdown["props"]["choices"]]
    assert "cut-weights" not in offered and MODEL in offered


# ----------------------------------------------------------------------------- caps


@served
def test_byte_cap_is_checked_before_reading(tmp_path, model, server):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:  # sparse: the size without the bytes (nothing to read)
        f.truncate(image_io.MAX_FILE_BYTES + 1)
    with pytest.raises(ValueError, match=r"'big.png' is 67,108,865 bytes; accepted: at most"):
        saccade.predict(model, big)
    # the served app refuses larger uploads at the door, with the same cap
    import httpx

    assert httpx.get(server.url + "config", timeout=30).json()["max_file_size"] == 64 * 2**20
