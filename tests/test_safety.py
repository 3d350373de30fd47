"""Safety (issue 11): nothing is unpickled anywhere in the package, and no user input becomes
a path outside the app's own folders (checkpoint names, session ids, run names, and file
paths an API client sends in place of an upload)."""

import ast
import os
import re
import shutil
from pathlib import Path

import gradio as gr
import pytest

from saccade import app
from saccade.app import Look
from tests.helpers import TINY_TRAINING, Session

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
SMALL = ASSETS / "cluttered-sum-100-0.png"
SHIPPED = ROOT / "checkpoints" / "cluttered-sum-learnt"


# ----------------------------------------------------------------------------- unpickling

#: modules whose loading functions unpickle (or run) what they read
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}
PICKLING_MODULES |= {"marshal", "jsonpickle", "torch.serialization"}
#: calls that unpickle or execute serialised code, by their dotted name's last two parts
UNSAFE_CALLS = {
    ("torch", "load"),
    ("jit", "load"),
    ("hub", "load"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("yaml", "unsafe_load"),
    ("yaml", "unsafe_load_all"),
    ("yaml", "full_load"),
    ("yaml", "full_load_all"),
}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def unpickling_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a pickling module and every call that unpickles in ``source``, as
    "file:line: what"; [] when there is none."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLING_MODULES or alias.name in PICKLING_MODULES:
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module.split(".")[0] in PICKLING_MODULES or node.module in PICKLING_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            elif node.module in ("torch", "torch.jit", "torch.hub") and "load" in names:
                found.append(f"{where}: from {node.module} import load")
            elif node.module == "pandas" and "read_pickle" in names:
                found.append(f"{where}: from pandas import read_pickle")
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            parts = tuple(name.split(".")[-2:])
            keywords = {k.arg: k.value for k in node.keywords}
            if name.split(".")[0] in PICKLING_MODULES:  # pickle.load, joblib.load, ...
                found.append(f"{where}: {name}(...)")
            elif parts in UNSAFE_CALLS or name.endswith(".read_pickle"):
                found.append(f"{where}: {name}(...)")
            elif parts in (("np", "load"), ("numpy", "load")):
                allow = keywords.get("allow_pickle")
                if allow is not None and not (
                    isinstance(allow, ast.Constant) and allow.value is False
                ):
                    found.append(f"{where}: {name}(..., allow_pickle=...)")
            elif parts in (("yaml", "load"), ("yaml", "load_all")):
                loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
                if loader is None or dotted(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                    found.append(f"{where}: {name}(...) without a safe Loader")
            elif "allow_pickle" in keywords:
                allow = keywords["allow_pickle"]
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(f"{where}: {name}(..., allow_pickle=...)")
    return found


def package_sources() -> list[Path]:
    files = sorted((ROOT / "saccade").rglob("*.py")) + [ROOT / "app.py"]
    return files + sorted((ROOT / "scripts").rglob("*.py"))


def test_the_detector_finds_each_unpickling_call():
    bad = {
        "import pickle": 1,
        "import dill as d": 1,
        "from cloudpickle import loads": 1,
        "import joblib\njoblib.load('m.pkl')": 2,
        "import torch\ntorch.load('w.pt')": 1,
        "import torch\ntorch.load('w.pt', weights_only=True)": 1,
        "from torch import load": 1,
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)": 1,
        "import numpy\nnumpy.load('a.npz', allow_pickle=flag)": 1,
        "import yaml\nyaml.load(text)": 1,
        "import yaml\nyaml.load(text, Loader=yaml.Loader)": 1,
        "import yaml\nyaml.unsafe_load(text)": 1,
        "import pandas as pd\npd.read_pickle('f')": 1,
        "import shelve": 1,
        "import marshal": 1,
    }
    for source, n in bad.items():
        assert len(unpickling_calls(source)) == n, source
    safe = [
        "import numpy as np\nnp.load('a.npy')",
        "import numpy as np\nnp.load('a.npy', allow_pickle=False)",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
        "import yaml\nyaml.safe_load(text)",
        "from safetensors.torch import load_file\nload_file('w.safetensors')",
        "import json\njson.load(f)",
    ]
    for source in safe:
        assert unpickling_calls(source) == [], source


def test_nothing_in_the_package_unpickles():
    sources = package_sources()
    assert len(sources) > 15 and ROOT / "saccade" / "checkpoint.py" in sources
    found = [hit for f in sources for hit in unpickling_calls(f.read_text(), str(f))]
    assert found == [], found


def test_importing_the_app_writes_nothing_beside_it():
    # Gradio's component metaclass would write a .pyi stub beside the file that defines the
    # app's component classes (saccade/app/widgets.py); none may appear, nor an old app.pyi
    assert not (ROOT / "app.pyi").exists()
    assert not list((ROOT / "saccade" / "app").glob("*.pyi"))
    assert app.widgets.Dropdown(["a"]).get_block_name() == "dropdown"


# ----------------------------------------------------------------------------- paths


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("app")
    (base / "checkpoints").mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(f"{SHIPPED}{suffix}", base / "checkpoints" / f"mine{suffix}")
        fixed = ROOT / "checkpoints" / f"cluttered-sum-fixed{suffix}"
        shutil.copyfile(fixed, base / "checkpoints" / f"mine-fixed{suffix}")
    # a real checkpoint just outside the app's folder: a name must never reach it
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(f"{SHIPPED}{suffix}", base / f"outside{suffix}")
    return base


HOSTILE_NAMES = [
    "../outside",
    "..",
    "mine/../../outside",
    "./mine",
    "mine/",
    "%2e%2e/outside",
    "..\\outside",
    "~/outside",
    "mine\x00",
    str(ROOT / "checkpoints" / "cluttered-sum-learnt"),  # a real checkpoint, absolute
    "/etc/passwd",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_checkpoint_name_never_becomes_a_path(folders, name, monkeypatch):
    opened = []
    monkeypatch.setattr(app.state, "_load_model", lambda path, mtime: opened.append(path))
    the_app = app.App(folders / "checkpoints", ASSETS, runs=folders / "runs")
    with pytest.raises(gr.Error) as err:
        the_app.state.model(name)
    assert err.value.message == f"Checkpoint {name!r} is not one of: mine-fixed, mine"
    with pytest.raises(gr.Error, match="is not one of"):
        the_app.explore.run(Look(str(SMALL), name))
    assert opened == []  # nothing was opened
    the_app.state.model("mine")
    assert opened == [str(folders / "checkpoints" / "mine")]


@pytest.mark.parametrize(
    "session_hash", ["../../etc", "/abs/path", "a/b", "..", "", "x" * 500, "$(id)`id`;|&"]
)
def test_a_session_id_stays_one_folder_name(folders, session_hash):
    session = app.state.session_id(Session(session_hash))
    assert re.fullmatch(r"[A-Za-z0-9]{1,64}", session)
    runs = folders / "runs"
    assert (runs / session).resolve().parent == runs.resolve()


@pytest.mark.slow
def test_train_and_export_write_only_inside_their_folders(folders, tmp_path):
    runs, exports = tmp_path / "runs", tmp_path / "exports"
    the_app = app.App(folders / "checkpoints", ASSETS, TINY_TRAINING, runs=runs, exports=exports)
    before = sorted(p for p in folders.rglob("*"))
    hostile = Session("../../escape")
    *_, last = the_app.train.run("cluttered:single", 100, "learnt", 2, 1, 0, request=hostile)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.resolve().is_relative_to(runs.resolve()) for p in written)
    assert [p.name for p in runs.iterdir()] == ["escape"]
    name = last.checkpoint["value"]
    assert re.fullmatch(r"cluttered-single-learnt-T2-\d{8}-\d{6}", name)
    gif, record = the_app.explore.export(Look(str(SMALL), "mine", session=hostile.session_hash))
    for path in (gif, record):
        assert Path(path).resolve().is_relative_to(exports.resolve())
    assert sorted(p for p in folders.rglob("*")) == before  # nothing beside the shipped ones
    # the name generated from the settings never holds a separator, whatever they say
    for args in (("..", "..", "..", 4), ("a/b", "$(id)", "`x`;|", 4), ("/", "\\", "~", 4)):
        made = app.train_tab._safe_run_name(*args)
        assert "/" not in made and "\\" not in made and made not in ("", ".", "..")
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", made)


@pytest.fixture(scope="module")
def served(folders, free_port):
    the_app = app.App(folders / "checkpoints", ASSETS, runs=folders / "runs")
    demo = app.build_demo(the_app)
    app.launch(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield demo.local_url
    demo.close()


def call_raw(url: str, api: str, data: list) -> str:
    """One request over plain HTTP, as any client could send it (gradio_client would upload
    a local path instead of sending it): the event stream's text."""
    import httpx

    event = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=30).json()
    with httpx.stream("GET", f"{url}gradio_api/call/{api}/{event['event_id']}", timeout=60) as r:
        return "".join(r.iter_text())


SETTINGS = {  # each endpoint's inputs after the image (Explore's last: invert)
    "explore": ["mine", 0.0, 4, 0, "mean", False],
    "export": ["mine", 0.0, 4, 0, "mean", False],
    "compare": ["mine", "mine-fixed", 0.0, 0, 0, "mean"],
}


@pytest.mark.slow
@pytest.mark.parametrize("api", list(SETTINGS))
def test_a_client_cannot_make_the_app_read_a_server_path(served, tmp_path, api, capfd, caplog):
    """A path on the server sent in place of an upload (an image elsewhere on the disk, a
    link to it, a path with ``..``, an example's own path) is refused: a message, one log
    line, no traceback; the same image uploaded is used."""
    from gradio_client import Client, handle_file

    secret = tmp_path / "secret.png"
    shutil.copyfile(SMALL, secret)
    os.symlink(secret, tmp_path / "link.png")
    paths = [secret, tmp_path / "link.png", ASSETS / ".." / "tests" / ".." / "assets" / SMALL.name]
    capfd.readouterr()
    caplog.clear()
    for path in paths:
        file = {"path": str(path), "meta": {"_type": "gradio.FileData"}}
        text = call_raw(served, api, [file, *SETTINGS[api]])
        assert "event: error" in text
        assert (
            f"Cannot use the file '{path.name}': it is a path on the server, not an upload" in text
        )
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused: ")]
    assert len(refused) == len(paths)
    assert "Traceback" not in capfd.readouterr().err
    client = Client(served, verbose=False, download_files=False)
    assert client.predict(handle_file(str(secret)), api_name=f"/{api}")  # uploaded: used
