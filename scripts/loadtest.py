"""Load test: many concurrent gradio_client sessions against a real `python app.py`, each
fetching every output file as a browser does.

    python scripts/loadtest.py --json assets/loadtest.json   # 30 sessions x 10 requests, 3 rounds
    python scripts/loadtest.py --clients 4 --requests 2 --rounds 2

Starts the app as its own process (Train tab off, a free port), then runs ``--rounds`` rounds;
in each, ``--clients`` sessions (one thread, one ``gradio_client.Client`` and one HTTP
connection pool each) send ``--requests`` Explore requests on the first-screen example
(``--example``), with different seeds, and fetch every file the result names (the gallery's
zooms and crops), as a browser does: a request counts as answered only when each file came
back whole (status 200, as many bytes as its Content-Length, a PNG that ends with its IEND
chunk). Concurrent requests on one example give identical images: this is what caught files
rewritten while being served (``saccade/app/files.py``). Prints, and with ``--json`` writes:
errors (with their messages), latency p50 and p95 (request and downloads), throughput, files
and bytes fetched, and the server's resident memory (RSS, from /proc) after start-up and after
each round. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "cluttered-sum-100-0.png"  # the first screen's example
PNG_END = b"IEND\xaeB`\x82"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(port: int, log) -> subprocess.Popen:
    """``python app.py`` on ``port``, its output into the file ``log`` (a pipe nobody reads
    fills up and stops the server once it logs enough)."""
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--no-train"]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)


#: server log lines that mean a response was cut off
CUT_OFF = ("Too little data for declared Content-Length", "LocalProtocolError")


def connect(url: str, timeout: float = 120.0):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            # the client's own download is off because fetch_whole fetches every output file
            # itself, as a browser does, and checks that each came back whole
            return Client(url, verbose=False, download_files=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def file_urls(value) -> list[str]:
    """Every file URL in an API result (Gradio's file data: dicts with a ``url``)."""
    if isinstance(value, dict):
        own = [value["url"]] if isinstance(value.get("url"), str) and value.get("path") else []
        return own + [u for v in value.values() for u in file_urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in file_urls(v)]
    return []


def fetch_whole(http, url: str) -> int:
    """GET ``url`` as a browser would and check that it came back whole; returns its bytes.
    RuntimeError when it did not (a cut-off body raises httpx's own error first)."""
    r = http.get(url)
    if r.status_code != 200:
        raise RuntimeError(f"{url.rsplit('/', 1)[-1]}: HTTP {r.status_code}")
    body, declared = r.content, r.headers.get("content-length")
    if declared is not None and len(body) != int(declared):
        raise RuntimeError(f"{url.rsplit('/', 1)[-1]}: {len(body)} of {declared} bytes")
    if url.endswith(".png") and not body.endswith(PNG_END):
        raise RuntimeError(f"{url.rsplit('/', 1)[-1]}: a PNG without its end")
    return len(body)


def run_round(
    url: str, clients: int, requests: int, seed0: int, example: Path = EXAMPLE
) -> tuple[list, list, dict]:
    """(latencies in s, error messages, {"files": n, "bytes": n}) of one round."""
    import httpx
    from gradio_client import handle_file

    latencies: list[float] = []
    errors: list[str] = []
    fetched = {"files": 0, "bytes": 0}
    lock = threading.Lock()

    def session(i: int) -> None:
        client = connect(url)
        # one connection pool, like a browser tab; an idle connection is not reused after 2 s,
        # before uvicorn closes it (5 s): reusing one as the server closes it is a reset that
        # a browser retries and httpx does not
        limits = httpx.Limits(keepalive_expiry=2.0)
        with httpx.Client(timeout=60.0, limits=limits) as http:
            for j in range(requests):
                t = time.perf_counter()
                try:
                    out = client.predict(
                        handle_file(str(example)),
                        None,  # the checkpoint: the app's best for the example
                        0.0,
                        4,  # saccades: the shipped cluttered models' T
                        seed0 + i * requests + j,
                        "mean",
                        api_name="/explore",
                    )
                    if len(out) != 8:
                        raise RuntimeError(f"{len(out)} outputs")
                    urls = file_urls(out)
                    if not urls:
                        raise RuntimeError("no output files to fetch")
                    try:
                        sizes = [fetch_whole(http, u) for u in urls]
                    except Exception as e:
                        raise RuntimeError(
                            f"fetching an output file: {type(e).__name__}: {e}"
                        ) from e
                    with lock:
                        latencies.append(time.perf_counter() - t)
                        fetched["files"] += len(sizes)
                        fetched["bytes"] += sum(sizes)
                except Exception as e:  # counted and reported, the load goes on
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}"[:200])

    threads = [threading.Thread(target=session, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, errors, fetched


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=30, help="concurrent sessions (30)")
    parser.add_argument("--requests", type=int, default=10, help="requests per session (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--example", type=Path, default=EXAMPLE, help="the image (%(default)s)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.rounds) < 1:
        parser.error("--clients, --requests and --rounds must be >= 1")
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    server = start_server(port, log)
    url = f"http://127.0.0.1:{port}/"
    report: dict = {
        "command": "python scripts/loadtest.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "example": args.example.name,
        "clients": args.clients,
        "requests": args.requests,
        "downloads": "every output file fetched and checked whole",
        "rounds": [],
    }
    try:
        connect(url)
        report["server_rss_mb_start"] = round(rss_mb(server.pid), 1)
        for r in range(args.rounds):
            t0 = time.perf_counter()
            lat, err, fetched = run_round(
                url, args.clients, args.requests, seed0=r * 10_000, example=args.example
            )
            wall = time.perf_counter() - t0
            row = {
                "round": r + 1,
                "ok": len(lat),
                "errors": len(err),
                "error_messages": sorted(set(err))[:5],
                "files_fetched": fetched["files"],
                "mb_fetched": round(fetched["bytes"] / 2**20, 1),
                "p50_s": round(statistics.median(lat), 3) if lat else None,
                "p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3) if lat else None,
                "throughput_per_s": round(len(lat) / wall, 2),
                "server_rss_mb": round(rss_mb(server.pid), 1),
            }
            report["rounds"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.seek(0)
        lines = log.read().splitlines()
        log.close()
    report["server_cut_off_lines"] = sum(any(c in line for c in CUT_OFF) for line in lines)
    rounds = report["rounds"]
    report["errors"] = sum(r["errors"] for r in rounds)
    report["requests_total"] = args.clients * args.requests * args.rounds
    report["rss_growth"] = round(rounds[-1]["server_rss_mb"] / rounds[0]["server_rss_mb"] - 1, 3)
    report["rss_growth_from_start"] = round(
        rounds[-1]["server_rss_mb"] / report["server_rss_mb_start"] - 1, 3
    )
    print(f"server log lines of cut-off responses: {report['server_cut_off_lines']}")
    print(
        f"errors {report['errors']} of {report['requests_total']}; RSS at start "
        f"{report['server_rss_mb_start']} MB, after round 1 {rounds[0]['server_rss_mb']} MB, "
        f"after round {len(rounds)} {rounds[-1]['server_rss_mb']} MB "
        f"({report['rss_growth']:+.1%} on round 1, {report['rss_growth_from_start']:+.1%} on start)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result["errors"] or result["server_cut_off_lines"] else 0)
