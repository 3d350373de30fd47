"""Servers on loopback that remote slides are read from in benchmarks and tests: moto's S3
server (``s3_server``) and an HTTP server that honours Range requests (``range_server``;
Python's ``SimpleHTTPRequestHandler`` does not). Both bind 127.0.0.1 only, on a free port,
and stop when their ``with`` block ends."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class S3:
    """A running S3 server: its ``endpoint`` URL, and ``env``, the variables that point s3fs
    and boto3 at it (set in ``os.environ`` while the server runs). ``requests``: (method,
    path, whether a Range was asked) of every request served; ``most_at_once``: the most
    requests in flight at one time; ``delay_s``: set it to answer each request that much
    later (a server far away)."""

    endpoint: str
    env: dict[str, str]
    requests: list[tuple[str, str, bool]] = field(default_factory=list)
    most_at_once: int = 0
    delay_s: float = 0.0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, app):
        """``app`` (a WSGI application), recording and delaying each request."""

        def served(environ, start_response):
            with self._lock:
                self._in_flight += 1
                self.most_at_once = max(self.most_at_once, self._in_flight)
                ranged = bool(environ.get("HTTP_RANGE"))
                self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], ranged))
            try:
                if self.delay_s:
                    time.sleep(self.delay_s)
                return app(environ, start_response)
            finally:
                with self._lock:
                    self._in_flight -= 1

        return served

    def client(self):
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def upload(self, bucket: str, files: dict[str, Path]) -> None:
        """Create ``bucket`` (if new) and upload {key: local file}."""
        s3 = self.client()
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=bucket)
        for key, path in files.items():
            s3.upload_file(str(path), bucket, key)


@contextlib.contextmanager
def s3_server() -> Iterator[S3]:
    """moto's S3 server (``moto[server]``) on 127.0.0.1, with test credentials and
    ``AWS_ENDPOINT_URL`` set in the environment (restored afterwards)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ImportError(
            "an S3 server on loopback needs moto: pip install 'moto[server]'"
        ) from None
    werkzeug = logging.getLogger("werkzeug")  # a line per request, on stderr
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = S3(env["AWS_ENDPOINT_URL"], env)
    server._server.app = s3.serve(server._server.app)  # werkzeug's server of moto's app
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield s3
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
        except ImportError:  # pragma: no cover - s3fs comes with the remote extra
            pass
        server.stop()
        werkzeug.setLevel(level)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the server's ``root``: 206 with Content-Range for a Range request,
    an ETag of the file's mtime and size, 404 for anything else."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        root: Path = self.server.root
        path = (root / self.path.lstrip("/").split("?", 1)[0]).resolve()
        if root not in path.parents or not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{path.stat().st_mtime_ns}-{size}"')
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))


@contextlib.contextmanager
def range_server(root: str | os.PathLike) -> Iterator[str]:
    """An HTTP server of the files under ``root`` on 127.0.0.1 that honours Range
    requests; yields its base URL (``http://127.0.0.1:PORT``)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    srv.root = Path(root).resolve()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()
