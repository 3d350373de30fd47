"""A folder dataset over a bucket (``--dataset folder --root s3://bucket/slides/``): listed in
one request (``saccade.data.remote.RemoteTree``), its slides read by range requests, from
moto's S3 server on loopback (``saccade.bench.servers``)."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("s3fs")
pytest.importorskip("moto")

import saccade  # noqa: E402
from saccade.bench.servers import s3_server  # noqa: E402
from saccade.data import remote  # noqa: E402
from saccade.data.slide import write_slide  # noqa: E402

pytestmark = pytest.mark.slow  # every test starts a server


def make_slides(root, n: int = 3) -> dict[str, object]:
    """{key: file} of ROOT/a and ROOT/b, ``n`` RGB pyramids each (1024 x 768, 256² deflate
    tiles; a bright block near the top left for 'a', the bottom right for 'b'), plus what a
    bucket also holds: a PNG (not a slide: refused with a count), a text file (ignored, as
    locally) and a hidden object."""
    files = {}
    for cname, (y, x) in {"a": (100, 120), "b": (500, 700)}.items():
        (root / cname).mkdir(parents=True)
        for i in range(n):
            image = np.full((768, 1024, 3), 235, np.uint8)
            image[y + 10 * i : y + 10 * i + 150, x : x + 150] = (200, 120, 60)
            path = write_slide(root / cname / f"{i}.tif", image, tile=256, compression="deflate")
            files[f"slides/{cname}/{i}.tif"] = path
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "photo.png")
    (root / "notes.txt").write_text("not an image")
    files["slides/a/photo.png"] = root / "photo.png"
    files["slides/b/notes.txt"] = root / "notes.txt"
    files["slides/a/.hidden.tif"] = root / "notes.txt"
    return files


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    """The S3 server, with bucket 'cohort' holding ``make_slides``' files under slides/;
    yields (server, the local copy of the slides)."""
    local = tmp_path_factory.mktemp("local")
    files = make_slides(local / "slides")
    with s3_server() as server:
        server.upload("cohort", files)
        yield server, local / "slides"


@pytest.fixture(autouse=True)
def own_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("SACCADE_REMOTE_CACHE", str(tmp_path / "blocks"))
    monkeypatch.setenv("SACCADE_SLIDE_CACHE", str(tmp_path / "levels"))


def test_a_bucket_folder_lists_its_slides_and_refuses_the_rest_with_a_count(bucket):
    _, local = bucket
    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable file\(s\).*photo\.png"):
        ds = saccade.make_dataset("folder", root="s3://cohort/slides/", split="train")
    assert ds.class_names == ["a", "b"]
    assert len(ds.slides) == 6 and len(ds.skipped) == 1
    assert "a remote folder is read as slides only" in ds.skipped[0]
    # the same hold-out as the local copy of the folder, slide for slide
    here = saccade.make_dataset("folder", root=local, split="train", cache=False)
    assert [p.relative_to(ds.root).as_posix() for p, _ in ds.items] == [
        p.relative_to(here.root).as_posix() for p, _ in here.items
    ]
    assert ds.size == here.size == 1024 and ds.side_range == here.side_range
    sample, own = ds[0], here[0]
    assert sample["path"] == "s3://cohort/slides/" + ds.items[0][0].relative_to(ds.root).as_posix()
    np.testing.assert_array_equal(sample["proxy"], own["proxy"])
    window = sample["pyramid"].read_window(0, 100, 120, 200, 200)
    np.testing.assert_array_equal(window, own["pyramid"].read_window(0, 100, 120, 200, 200))
    # a DataLoader worker gets the listing, not the open slides, and opens its own
    copy = pickle.loads(pickle.dumps(ds))
    assert ds._open_slides and not copy._open_slides
    assert copy.root.tree.files == ds.root.tree.files
    np.testing.assert_array_equal(copy[0]["proxy"], sample["proxy"])


def test_listing_a_bucket_asks_no_size_per_slide_and_reads_headers_at_once(bucket):
    server, _ = bucket
    server.requests.clear()
    server.most_at_once = 0
    server.delay_s = 0.05  # a server 50 ms away: the headers are read side by side
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the refused PNG
            ds = saccade.make_dataset("folder", root="s3://cohort/slides/", cache=False)
    finally:
        server.delay_s = 0.0
    assert len(ds.slides) == 6
    methods = [(method, ranged) for method, path, ranged in server.requests]
    # one listing; no HEAD per slide (the listing gave each one's size and ETag); one range
    # of each small slide for its header
    assert methods.count(("HEAD", False)) == 0, server.requests
    assert methods.count(("GET", True)) == 6, server.requests
    assert len(server.requests) == 7, server.requests
    assert server.most_at_once >= 2


class _Opened(torch.utils.data.Dataset):
    """A bucket dataset's samples as a worker reads them: (its pid, the pid its slide's
    remote file was opened in, the proxy)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        sample = self.ds[i]
        slide = self.ds.slide_pyramid(self.ds.items[i][0]).slide
        return os.getpid(), slide._pid, sample["proxy"]


def test_two_dataloader_workers_read_a_bucket_through_their_own_handles(bucket):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the refused PNG
        ds = saccade.make_dataset("folder", root="s3://cohort/slides/", split="train")
    # the main process opens them first: forked workers inherit them open, and open each
    # again in their own process before reading (a shared fsspec session or file offset
    # would mix their reads: tiffslide#14)
    here = [ds[i]["proxy"] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(_Opened(ds), batch_size=None, num_workers=2)
    got = list(loader)
    pids = {pid for pid, _, _ in got}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(opened == pid for pid, opened, _ in got)  # each slide opened in its worker
    for (_, _, proxy), own in zip(got, here, strict=True):
        np.testing.assert_array_equal(proxy, own)


def test_a_labels_csv_names_slides_of_a_bucket(bucket, tmp_path):
    csv = tmp_path / "labels.csv"
    rows = ["0,x,train", "a/1,x,train", "b/1,y,train", "a/2,x,test", "b/2,y,test"]
    csv.write_text("slide,label,split\n" + "\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = saccade.make_dataset("folder", root="s3://cohort/slides", labels=csv, split="test")
    assert ds.class_names == ["x", "y"]
    assert [(str(p), label) for p, label in ds.items] == [
        ("s3://cohort/slides/a/2.tif", 0),
        ("s3://cohort/slides/b/2.tif", 1),
    ]
    # "0" names both a/0 and b/0: left out, and said
    said = " ".join(str(w.message) for w in caught)
    assert "match several files" in said and "'0 (a/0.tif, b/0.tif)'" in said, said


def test_a_file_url_root_is_the_local_folder(bucket):
    _, local = bucket
    ds = saccade.make_dataset("folder", root=local.as_uri(), split="train", cache=False)
    here = saccade.make_dataset("folder", root=local, split="train", cache=False)
    assert ds.items == here.items and ds.root == here.root
    assert ds.spec.root == local.as_uri()  # the spec keeps the root as given


def test_a_missing_bucket_folder_or_an_http_root_is_refused(bucket):
    with pytest.raises(ValueError, match=r"'s3://cohort/nothing'.*holds no file"):
        saccade.make_dataset("folder", root="s3://cohort/nothing")
    with pytest.raises(ValueError, match="no listing"):
        saccade.make_dataset("folder", root="https://127.0.0.1:1/slides/")


def test_training_from_a_bucket_with_a_worker_opening_its_own_handles(bucket, tmp_path):
    from saccade.train.cli import parse_args
    from saccade.train.loop import fit

    out = tmp_path / "ck" / "s3"
    cfg, _ = parse_args(
        ["--dataset", "folder", "--root", "s3://cohort/slides/", "--steps", "3"]
        + ["--batch-size", "2", "--workers", "1", "--val-n", "2", "--test-n", "2"]
        + ["--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the refused PNG
        assert fit(cfg, command="test")["steps"] == 3
    model = saccade.load(out)
    assert model.config.class_names == ["a", "b"]
    assert model.config.dataset["root"] == "s3://cohort/slides/"
    pred = saccade.predict(model, "s3://cohort/slides/b/0.tif", slide_cache_dir=False)
    assert pred.image_shape == (768, 1024)


def test_a_tree_walks_a_listing_as_pathlib_walks_a_folder():
    tree = remote.RemoteTree("s3://b/s/", ["s3://b/s/a/x.tif", "s3://b/s/b/c/y.svs", "s3://b/s/z"])
    root = tree.root
    assert [p.name for p in root.iterdir()] == ["a", "b", "z"]
    assert (root / "b").is_dir() and (root / "b" / "c").is_dir() and not (root / "z").is_dir()
    assert (root / "b/c/y.svs").is_file() and not (root / "b").is_file()
    assert [str(p.relative_to(root)) for p in root.rglob("*")] == ["a/x.tif", "b/c/y.svs", "z"]
    assert (root / "a/x.tif").stem == "x" and (root / "a/x.tif").suffix == ".tif"
    with pytest.raises(ValueError, match="not under"):
        (root / "a").relative_to(remote.RemotePath("s3://other"))
