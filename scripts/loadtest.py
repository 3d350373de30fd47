"""Load test: many concurrent gradio_client sessions against a real `python app.py`.

    python scripts/loadtest.py                      # 20 sessions x 10 requests, 3 rounds
    python scripts/loadtest.py --clients 4 --requests 2 --rounds 2

Starts the app as its own process (Train tab off, a free port), then runs ``--rounds`` rounds;
in each, ``--clients`` sessions (one thread and one ``gradio_client.Client`` each) send
``--requests`` Explore requests on the 2528² example, with different seeds. Prints, and with
``--json`` writes: errors (with their messages), latency p50 and p95, throughput, and the
server's resident memory (RSS, from /proc) after each round. Exit status 1 if any request
failed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "cluttered-sum-2528-0.png"


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


def start_server(port: int) -> subprocess.Popen:
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--no-train"]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def connect(url: str, timeout: float = 120.0):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(url, verbose=False, download_files=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_round(url: str, clients: int, requests: int, seed0: int) -> tuple[list, list]:
    """(latencies in s, error messages) of one round."""
    from gradio_client import handle_file

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def session(i: int) -> None:
        client = connect(url)
        for j in range(requests):
            t = time.perf_counter()
            try:
                out = client.predict(
                    handle_file(str(EXAMPLE)),
                    None,  # the checkpoint: the app's best for the example
                    0.0,
                    4,  # saccades: the shipped cluttered models' T
                    seed0 + i * requests + j,
                    "mean",
                    api_name="/explore",
                )
                if len(out) != 8:
                    raise RuntimeError(f"{len(out)} outputs")
                with lock:
                    latencies.append(time.perf_counter() - t)
            except Exception as e:  # counted and reported, the load goes on
                with lock:
                    errors.append(f"{type(e).__name__}: {e}"[:200])

    threads = [threading.Thread(target=session, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, errors


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent sessions (20)")
    parser.add_argument("--requests", type=int, default=10, help="requests per session (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.rounds) < 1:
        parser.error("--clients, --requests and --rounds must be >= 1")
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/"
    report: dict = {"clients": args.clients, "requests": args.requests, "rounds": []}
    try:
        connect(url)
        for r in range(args.rounds):
            t0 = time.perf_counter()
            lat, err = run_round(url, args.clients, args.requests, seed0=r * 10_000)
            wall = time.perf_counter() - t0
            row = {
                "round": r + 1,
                "ok": len(lat),
                "errors": len(err),
                "error_messages": sorted(set(err))[:5],
                "p50_s": round(statistics.median(lat), 3) if lat else None,
                "p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3) if lat else None,
                "throughput_per_s": round(len(lat) / wall, 2),
                "server_rss_mb": round(rss_mb(server.pid), 1),
            }
            report["rounds"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    rounds = report["rounds"]
    report["errors"] = sum(r["errors"] for r in rounds)
    report["rss_growth"] = round(rounds[-1]["server_rss_mb"] / rounds[0]["server_rss_mb"] - 1, 3)
    print(
        f"errors {report['errors']} of {args.clients * args.requests * args.rounds}; "
        f"RSS after round 1 {rounds[0]['server_rss_mb']} MB, after round {len(rounds)} "
        f"{rounds[-1]['server_rss_mb']} MB ({report['rss_growth']:+.1%})"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
