"""Remote slides: a slide read over the network by range requests, through fsspec
(``s3://``, ``gs://``, ``https://`` ... URLs), never downloaded whole.

``open_url(url)`` returns a ``RemoteFile``: a seekable binary file whose reads are range
requests, in blocks of ``BLOCK_BYTES`` kept in a bounded LRU (fsspec's ``BlockCache``, at
most ``MAX_BLOCKS`` blocks per open file), so that tifffile parses the file's header and
reads each tile from its offset as it does on disk (``saccade.data.slide.Slide`` takes a URL
wherever it takes a path). Decoded tiles then go to the slide's own tile cache.

Fetched blocks are also kept on local disk (``DiskBlocks``, ``disk_cache_dir()``, at most
``DISK_BYTES``), for the next handle, process or epoch: each block is named by the URL, the
file's size and ETag and the block's range (a replaced file's blocks are other blocks), and
checked against its SHA-1 when read (a damaged one is fetched again).

Failures:

- a transient one (a dropped connection, a timeout, HTTP 408, 429 or 5xx) is retried
  ``RETRIES`` times with exponential back-off (``BACKOFF_S``, doubled each try);
- a permanent one (404, 403, a server that ignores Range requests or does not report the
  size) raises ``RemoteError`` (a ValueError) naming the URL and the status, at once;
- after a read failed (either way), the file's reads fail at once, with the same error,
  for ``RECHECK_S`` seconds: a slide whose server is down costs one round of retries per
  ``RECHECK_S``, not one per read (training on a folder warns and goes on with the rest).

Credentials come from each filesystem's usual environment and files, never from an argument
(which would land in a log): for S3 ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ~/.aws, and ``AWS_ENDPOINT_URL`` for an S3-compatible endpoint (MinIO, Ceph,
a local test server); for GCS gcsfs's ``GOOGLE_APPLICATION_CREDENTIALS``.

The packages are an extra: ``pip install 'saccade[remote]'`` (fsspec, s3fs, aiohttp; gcsfs
for ``gs://``, adlfs for ``az://``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: bytes fetched per range request (a block of the file), and blocks kept per open file:
#: the cache of fetched bytes holds at most BLOCK_BYTES * MAX_BLOCKS per remote slide
BLOCK_BYTES = 128 * 2**10
MAX_BLOCKS = 64
#: tries after the first for a transient failure, and the first back-off (doubled each try)
RETRIES = 4
BACKOFF_S = 0.25
#: seconds between two checks that a remote slide is unchanged (its size and ETag)
RECHECK_S = 30.0
#: the disk cache of fetched blocks (``DiskBlocks``): its bound in bytes, unless
#: $SACCADE_REMOTE_CACHE_BYTES says (0: no disk cache); where: ``disk_cache_dir()``
DISK_BYTES = 2**30
#: the extra that installs the remote packages
EXTRA = "pip install 'saccade[remote]'"

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: HTTP statuses worth another try
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_STATUS_TEXT = {400: "bad request", 401: "unauthorised", 403: "access denied", 404: "not found"}


class RemoteError(ValueError):
    """A remote slide cannot be read: the message names the URL and the status."""


def shown(url: str) -> str:
    """``url`` as messages name it: without a query (a presigned URL's signature) or a
    user:password before the host, which would otherwise land in a log."""
    head, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    host = host.rsplit("@", 1)[-1]
    path, query, _ = path.partition("?")
    return f"{head}{sep}{host}{slash}{path}" + ("?..." if query else "")


def is_url(path) -> bool:
    """Whether ``path`` is a URL (``scheme://...``, a string) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


@dataclass(frozen=True)
class RemotePath:
    """A slide's URL where a local slide has its ``Path``: ``str()`` is the URL, ``name``
    its last component (what a local path's ``name`` is)."""

    url: str

    @property
    def protocol(self) -> str:
        return _URL.match(self.url).group(1).lower()

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind(".") :].lower() if "." in name else ""

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:  # pragma: no cover - a URL is never opened as a local file
        raise TypeError(f"{shown(self.url)!r} is a URL, not a local path")


def _status_of(error: BaseException) -> int | None:
    """The HTTP status behind ``error`` (it or one of its causes), if any."""
    seen = 0
    while error is not None and seen < 8:
        status = getattr(error, "status", None)
        if isinstance(status, int):
            return status
        response = getattr(error, "response", None)  # botocore's ClientError
        if isinstance(response, dict):
            code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(code, int):
                return code
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def classify(error: BaseException) -> tuple[bool, str]:
    """(transient, what happened) of a failed remote call."""
    status = _status_of(error)
    if status is not None:
        text = _STATUS_TEXT.get(status, "")
        what = f"HTTP {status}" + (f" ({text})" if text else "")
        return status in _TRANSIENT_STATUS, what
    if isinstance(error, FileNotFoundError):
        return False, "HTTP 404 (not found)"
    if isinstance(error, PermissionError):
        return False, "HTTP 403 (access denied)"
    if isinstance(error, ValueError) and "range requests" in str(error):
        return False, "the server does not honour Range requests"
    try:
        import aiohttp

        network = (aiohttp.ClientError, asyncio.TimeoutError)
    except ImportError:  # pragma: no cover - aiohttp comes with the extra
        network = (asyncio.TimeoutError,)
    if isinstance(error, (*network, TimeoutError, ConnectionError, OSError)):
        return True, f"{type(error).__name__}: {error}".rstrip(": ")
    return False, f"{type(error).__name__}: {error}".rstrip(": ")


def with_retries(call, url: str, what: str):
    """``call()``, retried with back-off while it fails transiently; RemoteError naming
    ``url`` (as ``shown``) and the status when it fails permanently or runs out of tries."""
    for attempt in range(RETRIES + 1):
        try:
            return call()
        except Exception as e:
            transient, status = classify(e)
            if not transient:
                raise RemoteError(f"remote slide {url!r}: {what} failed: {status}") from None
            if attempt == RETRIES:
                raise RemoteError(
                    f"remote slide {url!r}: {what} failed {RETRIES + 1} times ({status}); "
                    "the server is unreachable or keeps dropping the connection"
                ) from None
            time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def filesystem(url: str):
    """(fsspec filesystem, path in it) of ``url``; ImportError naming the extra when the
    packages are missing, ValueError for a protocol fsspec does not know."""
    name = shown(url)
    try:
        import fsspec
    except ImportError:
        raise ImportError(f"reading the remote slide {name!r} needs fsspec: {EXTRA}") from None
    protocol = _URL.match(url).group(1).lower()
    options: dict = {}
    if protocol in ("http", "https"):
        try:
            import aiohttp
        except ImportError:
            raise ImportError(f"reading the remote slide {name!r} needs aiohttp: {EXTRA}") from None
        # a stalled server fails in a minute (then is retried), not aiohttp's 5
        options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(connect=30, sock_read=60)}
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as e:
        raise ImportError(
            f"reading the remote slide {name!r} needs the package for {protocol}:// ({e}): "
            f"{EXTRA} (s3://, http(s)://); gs:// needs gcsfs, az:// adlfs"
        ) from None
    except ValueError as e:
        if "not known" in str(e) or "Protocol" in str(e):
            raise ValueError(
                f"remote slide {name!r}: the protocol {protocol!r} is not known to fsspec; "
                "accepted: s3://, gs://, http://, https://, az:// and fsspec's other protocols"
            ) from None
        raise


_TAGS = ("ETag", "etag", "VersionId", "LastModified", "Last-Modified", "mtime")


def _stamp(info: dict) -> tuple[int, int]:
    """(size, a number of the ETag or Last-Modified) of an fsspec ``info``: what changes
    when the object is replaced."""
    tag = ""
    for key in _TAGS:
        if info.get(key):
            tag = f"{key}={info[key]}"
            break
    digest = hashlib.sha256(tag.encode()).digest()[:7]
    return int(info["size"]), int.from_bytes(digest, "little")


def disk_cache_dir() -> Path:
    """Where fetched blocks are kept: $SACCADE_REMOTE_CACHE, else ~/.cache/saccade/remote."""
    env = os.environ.get("SACCADE_REMOTE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "saccade" / "remote"


def disk_cache_bytes() -> int:
    """The disk cache's bound: $SACCADE_REMOTE_CACHE_BYTES, else ``DISK_BYTES``."""
    env = os.environ.get("SACCADE_REMOTE_CACHE_BYTES")
    try:
        return max(0, int(env)) if env else DISK_BYTES
    except ValueError:
        raise ValueError(
            f"SACCADE_REMOTE_CACHE_BYTES={env!r} must be a number of bytes (0: no disk cache)"
        ) from None


class DiskBlocks:
    """Fetched blocks of remote files on local disk, shared by handles and processes: at
    most ``limit`` bytes (the least recently used go first; each process may overshoot by a
    tenth before it trims). A block file holds the block's bytes, then their SHA-1 (20 bytes);
    one that fails the check is dropped and fetched again. A cache that cannot be written
    (a read-only or full disk) warns once and is left off."""

    _SHA = 20

    def __init__(self, directory: Path, limit: int):
        self.directory, self.limit = Path(directory), int(limit)
        self.enabled = self.limit > 0
        self._held: int | None = None  # bytes on disk, as this process last counted them

    def _path(self, key: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.directory / digest[:2] / digest

    def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        data, sha = raw[: -self._SHA], raw[-self._SHA :]
        if len(raw) <= self._SHA or hashlib.sha1(data).digest() != sha:
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        return data

    def put(self, key: str, data: bytes) -> None:
        if not self.enabled:
            return
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data + hashlib.sha1(data).digest())
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            self.enabled = False
            warnings.warn(
                f"the remote block cache {str(self.directory)!r} cannot be written ({e}): "
                "remote slides are read without it",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if self._held is None:
            self._held = self._count()[0]
        else:
            self._held += len(data) + self._SHA
        if self._held > self.limit:
            self._trim()

    def _count(self) -> tuple[int, list[tuple[float, int, Path]]]:
        entries = []
        for path in self.directory.glob("*/*"):
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        return sum(e[1] for e in entries), entries

    def _trim(self) -> None:
        """Delete the least recently used blocks down to nine tenths of the limit."""
        held, entries = self._count()
        for _, size, path in sorted(entries):
            if held <= self.limit * 0.9:
                break
            try:
                path.unlink()
                held -= size
            except OSError:
                pass
        self._held = held

    @property
    def nbytes(self) -> int:
        """Bytes of blocks on disk now."""
        return self._count()[0]


_DISKS: dict[tuple[str, int], DiskBlocks] = {}


def disk_blocks() -> DiskBlocks:
    """The process's ``DiskBlocks`` at ``disk_cache_dir()``, bounded by ``disk_cache_bytes()``."""
    key = (str(disk_cache_dir()), disk_cache_bytes())
    if key not in _DISKS:
        _DISKS[key] = DiskBlocks(Path(key[0]), key[1])
    return _DISKS[key]


class RemoteFile(io.RawIOBase):
    """A remote file read by range requests through a bounded block cache (module
    docstring); seekable, read-only. ``size``: its bytes; ``stamp``: (size, tag number)."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.name = shown(url)
        self.fs, self.fspath = filesystem(url)
        # a file just listed (a folder dataset reading its headers): what the listing said of
        # it, rather than a request per file
        info = listed_info(url) or self.info()
        if info.get("type") == "directory":
            raise RemoteError(f"remote slide {self.name!r} is a folder, not a file")
        if info.get("size") is None:
            raise RemoteError(
                f"remote slide {self.name!r}: the server does not report its size (no "
                "Content-Length); accepted: servers that answer HEAD with a Content-Length "
                "and honour Range requests"
            )
        self.size = int(info["size"])
        self.stamp = _stamp(info)
        self._file = with_retries(
            lambda: self.fs.open(
                self.fspath,
                "rb",
                block_size=BLOCK_BYTES,
                cache_type="blockcache",
                cache_options={"maxblocks": MAX_BLOCKS},
                size=self.size,
            ),
            self.name,
            "opening",
        )
        self._pos = 0
        self._failure: tuple[float, str] | None = None  # (when, message) of the last failure
        self._requests = self._bytes = 0
        # without an ETag or a date, a replaced object of the same size could not be told
        # from the one whose blocks are on disk: such a file is not cached on disk
        tagged = any(info.get(key) for key in _TAGS)
        self._disk = disk_blocks() if tagged else DiskBlocks(Path(), 0)
        cache = self._file.cache
        fetch = cache.fetcher

        def fetch_block(start: int, end: int) -> bytes:
            """A block from the disk cache, else from the server (then kept on disk)."""
            key = f"{self.url}\0{self.stamp[0]}\0{self.stamp[1]}\0{start}\0{end}"
            data = self._disk.get(key)
            if data is not None:
                return data
            data = fetch(start, end)
            self._requests += 1
            self._bytes += len(data)
            if len(data) == min(end, self.size) - start:
                self._disk.put(key, data)
            return data

        cache.fetcher = fetch_block

    @property
    def failure(self) -> str | None:
        """The message of the last read that failed (None once a read succeeded since)."""
        return None if self._failure is None else self._failure[1]

    @property
    def fetched(self) -> tuple[int, int]:
        """(range requests, bytes) fetched from the server so far (blocks read from the disk
        cache are not counted)."""
        return self._requests, self._bytes

    def info(self) -> dict:
        """The object's metadata now (size, ETag, ...), asked of the server again."""
        self.fs.invalidate_cache(self.fspath)
        return with_retries(lambda: self.fs.info(self.fspath), self.name, "asking its size")

    def changed(self) -> bool:
        """Whether the object's size or tag differs now from when it was opened."""
        return _stamp(self.info()) != self.stamp

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + int(offset))
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), max(0, self.size - self._pos))
        if n == 0:
            return 0
        pos = self._pos

        def fetch() -> bytes:
            self._file.seek(pos)
            return self._file.read(n)

        if self._failure is not None:
            failed_at, error = self._failure
            if time.monotonic() - failed_at < RECHECK_S:
                raise RemoteError(f"{error} (not tried again for {RECHECK_S:g} s)")
        try:
            data = with_retries(fetch, self.name, f"reading bytes {pos}-{pos + n - 1}")
        except RemoteError as e:
            # a slide that cannot be read now fails fast until RECHECK_S has passed, rather
            # than retrying every read of a training epoch with back-off
            self._failure = (time.monotonic(), str(e))
            raise
        self._failure = None
        view[: len(data)] = data
        self._pos = pos + len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed and hasattr(self, "_file"):
            try:
                self._file.close()
            except Exception:  # pragma: no cover - closing a read-only file
                pass
        super().close()


def open_url(url: str) -> RemoteFile:
    """The remote file at ``url`` (``RemoteFile``), its size and tag asked once."""
    return RemoteFile(url)


#: what the last listing said of each file listed (size and tag, when it had a tag), for
#: the first opening of the file within RECHECK_S seconds: {url: (when, info)}
_LISTED: dict[str, tuple[float, dict]] = {}


def _remember(url: str, info: dict, when: float) -> None:
    tag = next((key for key in _TAGS if info.get(key)), None)
    if tag is not None and info.get("size") is not None and info.get("type") != "directory":
        _LISTED[url] = (when, {"size": int(info["size"]), tag: info[tag], "type": "file"})


def listed_info(url: str) -> dict | None:
    """The size and tag the listing of ``url``'s folder gave, if it was under RECHECK_S
    seconds ago; used once (then the server is asked, as for any file)."""
    when, info = _LISTED.pop(url, (None, None))
    if when is None or time.monotonic() - when >= RECHECK_S:
        return None
    return info


def list_files(url: str) -> list[str]:
    """The URLs of every file under the folder ``url`` (``s3://bucket/slides/``), sorted,
    hidden names (a part starting with '.') left out: one listing (paged by the store, a
    thousand keys a request on S3), not a request per file; each file's size and ETag are
    kept for its first opening (``listed_info``). For a dataset over a bucket: class folders
    are the first part after ``url``. RemoteError naming the URL when it cannot
    be listed or holds no file; ValueError for http(s)://, which has no listing."""
    name = shown(url)
    fs, root = filesystem(url)
    protocol = _URL.match(url).group(1).lower()
    if protocol in ("http", "https"):
        raise ValueError(
            f"remote folder {name!r}: an http(s):// server has no listing of its files; "
            "accepted: a folder of an object store (s3://, gs://, az://), or the slides' "
            "URLs one by one"
        )
    found = with_retries(lambda: fs.find(root, withdirs=False, detail=True), name, "listing it")
    root = root.rstrip("/")
    files = []
    now = time.monotonic()
    for path in sorted(found):
        rel = path[len(root) :].lstrip("/") if path.startswith(root) else path
        if rel and not any(part.startswith(".") for part in rel.split("/")):
            files.append(f"{protocol}://{root}/{rel}" if protocol != "file" else path)
            _remember(files[-1], found[path], now)
    if not files:
        raise RemoteError(f"remote folder {name!r} holds no file (or does not exist)")
    return files


class RemoteTree:
    """The files of one listing of a remote folder (``list_files``: one request, paged),
    and the folders they imply; ``root`` is its ``ListedPath``. What a folder dataset walks
    a bucket with, as it walks a local tree with ``pathlib``, without a request per folder.
    Pickled with the dataset (a DataLoader worker gets the listing, not a connection)."""

    def __init__(self, url: str, files: list[str] | None = None):
        self.url = url.rstrip("/")
        self.files = tuple(list_files(url) if files is None else files)
        self._files = set(self.files)
        self._dirs = {self.url}
        for f in self.files:
            head = f.rsplit("/", 1)[0]
            while head.startswith(self.url + "/") and head not in self._dirs:
                self._dirs.add(head)
                head = head.rsplit("/", 1)[0]

    @property
    def root(self) -> ListedPath:
        return ListedPath(self.url, self)

    def __getstate__(self) -> dict:
        return {"url": self.url, "files": self.files}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["url"], list(state["files"]))


@dataclass(frozen=True, order=True)
class ListedPath(RemotePath):
    """A file or folder of a ``RemoteTree``, with the few ``pathlib.Path`` methods a
    folder dataset uses (``/``, ``is_dir``, ``is_file``, ``iterdir``, ``rglob("*")``,
    ``relative_to``, ``stem``), answered from the listing. ``str()`` is its URL."""

    tree: RemoteTree | None = field(default=None, compare=False, repr=False)

    def __truediv__(self, name: str) -> ListedPath:
        return ListedPath(f"{self.url.rstrip('/')}/{name}", self.tree)

    @property
    def stem(self) -> str:
        name = self.name
        return name[: name.rfind(".")] if "." in name[1:] else name

    def is_file(self) -> bool:
        return self.url in self.tree._files

    def is_dir(self) -> bool:
        return self.url in self.tree._dirs

    def iterdir(self):
        """The files and folders directly in this folder, sorted."""
        base = self.url + "/"
        names = {u[len(base) :].split("/", 1)[0] for u in self.tree.files if u.startswith(base)}
        return iter(self / name for name in sorted(names))

    def rglob(self, pattern: str):
        """Every file under this folder (``pattern`` "*" only; the folders are implied)."""
        if pattern != "*":
            raise ValueError(f"a remote folder is walked with rglob('*'), not {pattern!r}")
        base = self.url + "/"
        return iter(ListedPath(u, self.tree) for u in self.tree.files if u.startswith(base))

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        base = other.url.rstrip("/") + "/"
        if not self.url.startswith(base):
            raise ValueError(f"{shown(self.url)!r} is not under {shown(other.url)!r}")
        return PurePosixPath(self.url[len(base) :])
