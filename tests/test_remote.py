"""Remote slides (saccade.data.remote): read by range requests from real servers on loopback,
an HTTP server that honours Range (written here: Python's SimpleHTTPRequestHandler does not)
and moto's S3 server for s3fs, both counting the requests and bytes they serve."""

from __future__ import annotations

import http.server
import os
import pickle
import re
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

import saccade  # noqa: E402
from saccade.data import remote  # noqa: E402
from saccade.data.slide import Slide, write_slide  # noqa: E402

pytestmark = pytest.mark.slow  # every test starts a server


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves the server's ``root`` with Range requests (206), counting what it sends. The
    first path component chooses a behaviour: ok, forbidden (403), truncated (the file's
    first 60%), drop (every range after the first block sends half its bytes and closes),
    flaky (the first two such ranges drop), switch (such ranges drop while the server's
    ``dropping`` is set), norange (Range ignored: 200 and the whole file)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        srv = self.server
        mode, _, name = self.path.lstrip("/").partition("/")
        path = srv.root / name
        if mode == "forbidden":
            return self._status(403)
        if not path.is_file() or mode not in (
            "ok",
            "truncated",
            "drop",
            "flaky",
            "switch",
            "norange",
        ):
            return self._status(404)
        data = path.read_bytes()
        if mode == "truncated":
            data = data[: len(data) * 6 // 10]
        size = len(data)
        rng = self.headers.get("Range")
        if rng and mode != "norange":
            a, b = re.fullmatch(r"bytes=(\d+)-(\d*)", rng).groups()
            start, end = int(a), min(int(b) if b else size - 1, size - 1)
            if start >= size:
                return self._status(416)
            part = data[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            start, part = 0, data
            self.send_response(200)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Accept-Ranges", "bytes")
        if "untagged" not in name:
            self.send_header("ETag", f'"{path.stat().st_mtime_ns}-{size}"')
        self.end_headers()
        if not body:
            return
        drop = False
        with srv.lock:
            srv.requests += 1
            if start > 0 and (mode == "drop" or mode == "switch" and srv.dropping):
                drop = True
            if start > 0 and mode == "flaky" and srv.flaky_left > 0:
                srv.flaky_left -= 1
                drop = True
            sent = part[: len(part) // 2] if drop else part
            srv.bytes_sent += len(sent)
        self.wfile.write(sent)
        if drop:
            self.close_connection = True

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.root = tmp_path_factory.mktemp("served")
    srv.lock = threading.Lock()
    srv.requests = srv.bytes_sent = srv.flaky_left = 0
    srv.dropping = False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def reset(srv) -> None:
    with srv.lock:
        srv.requests = srv.bytes_sent = 0


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch, tmp_path):
    """Quick back-off, and a disk cache of fetched blocks of each test's own."""
    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)
    monkeypatch.setenv("SACCADE_REMOTE_CACHE", str(tmp_path / "remote-blocks"))


@pytest.fixture(scope="module")
def sum_model():
    return saccade.load("checkpoints/cluttered-sum-learnt")


@pytest.fixture(scope="module")
def slide_file(http_server):
    """A 4096^2 JPEG pyramid of a cluttered canvas on textured glass (a few MB, so that what a
    prediction reads is a fraction of it), in the HTTP server's root."""
    import cv2

    canvas = saccade.make_dataset("cluttered", task="sum", split="test", size=100)[1]["image"]
    image = cv2.resize(canvas, (4096, 4096), interpolation=cv2.INTER_LINEAR)
    texture = np.random.default_rng(0).integers(0, 40, image.shape, dtype=np.uint8)
    image = np.maximum(image, texture)
    return write_slide(http_server.root / "a.tif", image, tile=256, compression="jpeg")


def same_prediction(a, b) -> None:
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.label == b.label and a.image_shape == b.image_shape
    for za, zb in zip(a.zooms, b.zooms, strict=True):
        np.testing.assert_array_equal(za, zb)


def test_predict_over_http_equals_local_and_reads_a_fraction(http_server, slide_file, sum_model):
    local = saccade.predict(sum_model, str(slide_file), slide_cache_dir=False)
    reset(http_server)
    url = f"{http_server.url}/ok/a.tif"
    out = saccade.predict(sum_model, url, slide_cache_dir=False)
    same_prediction(out, local)
    assert out.slide == url
    size = slide_file.stat().st_size
    assert size > 4 * 2**20
    # header, proxy level, T crops, zooms and thumbnail: a few range requests of 128 KiB
    # blocks, under a quarter of this 4096^2 slide (about a fifth, mostly of its 2x level)
    assert 0 < http_server.bytes_sent < size / 4, (http_server.bytes_sent, size)
    assert http_server.requests < 30


def test_fetched_bytes_are_bounded_and_tiles_match(http_server, slide_file, monkeypatch):
    monkeypatch.setattr(remote, "MAX_BLOCKS", 4)
    local = Slide(slide_file)
    reset(http_server)
    with Slide(f"{http_server.url}/ok/a.tif") as slide:
        assert slide.is_remote and slide.levels == local.levels
        rng = np.random.default_rng(1)
        for _ in range(20):
            x, y = rng.integers(0, 4096 - 300, 2)
            np.testing.assert_array_equal(
                slide.read_region(0, x, y, 300, 300), local.read_region(0, x, y, 300, 300)
            )
        assert slide._remote._file.cache._fetch_block_cached.cache_info().currsize <= 4
        # what the client counts is what the server sent
        assert slide.fetched == (http_server.requests, http_server.bytes_sent)
    local.close()


def test_over_s3_with_aws_endpoint_url(http_server, slide_file, sum_model, monkeypatch):
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    wsgi = server._server
    inner, served = wsgi.app, {"requests": 0, "bytes": 0}

    def counting(environ, start_response):  # bytes of object bodies the server sends
        body = inner(environ, start_response)
        if environ["REQUEST_METHOD"] == "GET" and environ.get("HTTP_RANGE"):
            body = list(body)
            served["requests"] += 1
            served["bytes"] += sum(map(len, body))
        return body

    wsgi.app = counting
    try:
        host, port = server.get_host_and_port()
        for key, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
        s3.create_bucket(Bucket="slides")
        s3.upload_file(str(slide_file), "slides", "cohort/a.tif")
        local = saccade.predict(sum_model, str(slide_file), slide_cache_dir=False)
        out = saccade.predict(sum_model, "s3://slides/cohort/a.tif", slide_cache_dir=False)
        same_prediction(out, local)
        assert 0 < served["bytes"] < slide_file.stat().st_size / 4, served
        with pytest.raises(ValueError, match=r"'s3://slides/cohort/missing\.tif'.*404"):
            Slide("s3://slides/cohort/missing.tif")
        # a bucket folder in ImageFolder layout lists in one request
        s3.upload_file(str(slide_file), "slides", "cohort/b/c.tif")
        s3.put_object(Bucket="slides", Key="cohort/.hidden/x.tif", Body=b"x")
        assert remote.list_files("s3://slides/cohort/") == [
            "s3://slides/cohort/a.tif",
            "s3://slides/cohort/b/c.tif",
        ]
        with pytest.raises(ValueError, match=r"'s3://slides/nothing'.*holds no file"):
            remote.list_files("s3://slides/nothing")
    finally:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.mark.parametrize(("mode", "status"), [("ok", "404"), ("forbidden", "403")])
def test_a_missing_or_forbidden_url_names_it_and_the_status(http_server, mode, status):
    url = f"{http_server.url}/{mode}/nothing-here.tif"
    with pytest.raises(ValueError, match=rf"{re.escape(url)}.*HTTP {status}") as e:
        Slide(url)
    assert isinstance(e.value, remote.RemoteError)
    with pytest.raises(ValueError, match=re.escape(url)):
        saccade.predict(saccade.load("checkpoints/cluttered-sum-learnt"), url)


def test_a_file_truncated_on_the_server_names_the_url(http_server, slide_file, sum_model):
    url = f"{http_server.url}/truncated/a.tif"
    with pytest.raises(ValueError, match=re.escape(url)) as e:
        saccade.predict(sum_model, url, slide_cache_dir=False)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)


def test_dropped_connections_are_retried_then_named(http_server, slide_file):
    local = Slide(slide_file)
    http_server.flaky_left = 2
    with Slide(f"{http_server.url}/flaky/a.tif") as slide:
        np.testing.assert_array_equal(
            slide.read_region(0, 2000, 2000, 256, 256), local.read_region(0, 2000, 2000, 256, 256)
        )
    assert http_server.flaky_left == 0  # both drops were met, and retried
    # a header that cannot be read (after the retries) is an error, not a partial pyramid
    url = f"{http_server.url}/drop/a.tif"
    with pytest.raises(ValueError, match=rf"{re.escape(url)}.*failed {remote.RETRIES + 1} times"):
        Slide(url)
    url = f"{http_server.url}/switch/a.tif"
    with Slide(url, cache_bytes=0) as slide:
        http_server.dropping = True  # the server goes down once the slide is open
        reset(http_server)
        try:
            with pytest.raises(
                ValueError, match=rf"{re.escape(url)}.*failed {remote.RETRIES + 1} times"
            ):
                slide.read_region(0, 2000, 2000, 256, 256)
            assert http_server.requests == remote.RETRIES + 1
            # then the slide fails fast, with no request, until RECHECK_S has passed
            with pytest.raises(ValueError, match="not tried again"):
                slide.read_region(0, 3000, 3000, 256, 256)
            assert http_server.requests == remote.RETRIES + 1
        finally:
            http_server.dropping = False
    local.close()


def test_a_server_that_ignores_range_is_refused(http_server, slide_file):
    url = f"{http_server.url}/norange/a.tif"
    reset(http_server)
    with pytest.raises(ValueError, match=rf"{re.escape(url)}.*Range"):
        with Slide(url) as slide:
            slide.read_region(0, 2000, 2000, 256, 256)


def test_a_slide_replaced_on_the_server_is_opened_again(http_server, monkeypatch):
    monkeypatch.setattr(remote, "RECHECK_S", 0.0)
    path = http_server.root / "changing.tif"
    write_slide(path, np.full((1024, 1024), 50, np.uint8), compression="deflate")
    with Slide(f"{http_server.url}/ok/changing.tif") as slide:
        assert slide.read_region(0, 0, 0, 8, 8).max() == 50
        write_slide(path, np.full((1024, 1024), 200, np.uint8), compression="lzw")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            region = slide.read_region(0, 0, 0, 8, 8)
        assert region.min() == 200 and slide.reopened == 1
        assert any("changed on the server" in str(w.message) for w in caught)


def test_a_remote_slide_pickles_as_its_url(http_server, slide_file):
    with Slide(f"{http_server.url}/ok/a.tif", cache_bytes=2**20) as slide:
        copy = pickle.loads(pickle.dumps(slide))
        assert copy._remote is not slide._remote and str(copy.path) == str(slide.path)
        np.testing.assert_array_equal(
            copy.read_region(1, 10, 10, 64, 64), slide.read_region(1, 10, 10, 64, 64)
        )
        copy.close()


def test_without_the_extra_the_error_names_it(http_server, monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(ImportError, match=re.escape("saccade[remote]")):
        Slide(f"{http_server.url}/ok/a.tif")


def test_a_local_path_is_not_a_url():
    assert remote.is_url("s3://b/a.tif") and remote.is_url("https://h/a.tif")
    assert not remote.is_url("a.tif") and not remote.is_url(Path("s3://b/a.tif"))
    assert not remote.is_url(os.path.join("C:", "slides", "a.tif"))


def _child_reads(slide, expected, results) -> None:
    region = slide.read_region(0, 1000, 1000, 300, 300, cache=False)
    results.put(bool(np.array_equal(region, expected)))


def test_a_forked_worker_opens_its_own_remote_handle(http_server, slide_file):
    import multiprocessing

    expected = Slide(slide_file).read_region(0, 1000, 1000, 300, 300)
    with Slide(f"{http_server.url}/ok/a.tif", cache_bytes=0) as slide:
        slide.read_region(0, 10, 10, 64, 64)  # the parent's session is live
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        child = context.Process(target=_child_reads, args=(slide, expected, results), daemon=True)
        child.start()
        assert results.get(timeout=60) is True  # no hang on the parent's event loop
        child.join(timeout=30)
        assert child.exitcode == 0
        np.testing.assert_array_equal(slide.read_region(0, 1000, 1000, 300, 300), expected)


def test_an_unpyramided_remote_slide_gets_its_levels_made_once_and_cached(http_server, tmp_path):
    from saccade.data.slide_pyramid import STREAM_PIXELS, SlidePyramid

    side = 4200  # one level over STREAM_PIXELS: coarser levels are made from its tiles
    assert side * side > STREAM_PIXELS
    image = np.random.default_rng(2).integers(0, 255, (side, side), dtype=np.uint8)
    path = write_slide(http_server.root / "flat.tif", image, compression="deflate", pyramid="none")
    url = f"{http_server.url}/ok/flat.tif"
    reset(http_server)
    first = SlidePyramid(url, cache_dir=tmp_path / "cache")
    made = http_server.bytes_sent
    assert first.made_levels > 0 and made >= path.stat().st_size * 0.9  # read whole, once
    reset(http_server)
    again = SlidePyramid(Slide(url), cache_dir=tmp_path / "cache")  # a new handle
    assert again.made_levels == first.made_levels
    assert http_server.bytes_sent < made / 10  # the header only: the levels came from disk
    np.testing.assert_array_equal(again.square_image(64), first.square_image(64))
    first.slide.close()
    again.slide.close()


def test_errors_name_a_presigned_url_without_its_signature(http_server):
    url = f"{http_server.url}/ok/gone.tif?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=s3cr3t"
    with pytest.raises(ValueError, match=r"/ok/gone\.tif\?\.\.\.'.*HTTP 404") as e:
        Slide(url)
    assert "s3cr3t" not in str(e.value) and "AKIDEXAMPLE" not in str(e.value)
    assert remote.shown("https://user:pw@host/a.tif?sig=1") == "https://host/a.tif?..."


def test_fetched_blocks_are_kept_on_disk_checked_and_bounded(http_server, slide_file, monkeypatch):
    local = Slide(slide_file)
    url = f"{http_server.url}/ok/a.tif"
    spots = [(x, y) for x in range(0, 4000, 700) for y in (100, 2100, 3700)]

    def read_all(slide):
        for x, y in spots:
            region = slide.read_region(0, x, y, 200, 200, cache=False)
            np.testing.assert_array_equal(region, local.read_region(0, x, y, 200, 200))

    reset(http_server)
    with Slide(url, cache_bytes=0) as slide:
        read_all(slide)
        first = slide.fetched
    assert first == (http_server.requests, http_server.bytes_sent) and first[0] > 5
    reset(http_server)
    with Slide(url, cache_bytes=0) as slide:  # a new handle (or process): from the disk
        read_all(slide)
        assert slide.fetched == (0, 0) and http_server.requests == 0
    # a damaged block is noticed by its checksum and fetched again
    disk = remote.disk_blocks()
    blocks = sorted(disk.directory.glob("*/*"))
    assert disk.nbytes == sum(p.stat().st_size for p in blocks) > first[1]
    for path in blocks:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    with Slide(url, cache_bytes=0) as slide:
        read_all(slide)
        assert slide.fetched[0] == first[0]
    # a server that sends no ETag (nor a date): nothing on disk, it could not be checked
    (http_server.root / "untagged.tif").write_bytes(slide_file.read_bytes())
    with Slide(f"{http_server.url}/ok/untagged.tif", cache_bytes=0) as slide:
        before = disk.nbytes
        read_all(slide)
        assert slide.fetched[0] > 5 and disk.nbytes == before
        # bounded: with room for 4 blocks, the disk holds at most about that
    monkeypatch.setenv("SACCADE_REMOTE_CACHE", str(disk.directory.parent / "small"))
    monkeypatch.setenv("SACCADE_REMOTE_CACHE_BYTES", str(4 * remote.BLOCK_BYTES))
    with Slide(url, cache_bytes=0) as slide:
        read_all(slide)
    small = remote.disk_blocks()
    assert 0 < small.nbytes <= 4.5 * (remote.BLOCK_BYTES + 20)
    local.close()


def test_an_http_folder_cannot_be_listed():
    with pytest.raises(ValueError, match="'https://host/slides/'.*no listing"):
        remote.list_files("https://host/slides/")
