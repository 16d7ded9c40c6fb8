#!/usr/bin/env python
"""Loopback load test of ``styler serve``: N stylize requests at concurrency C, latency percentiles, peak RSS.

Starts the real server (``python -m styler.cli.serve`` on a free loopback port, bundled models, default backend)
unless ``--url`` names a running one, sends one warm-up request (the first use of a model loads it, and may export
it), then ``--requests`` POST /api/stylize at ``--concurrency`` from a thread pool, each with the same photo.

Reports p50 / p95 / max latency, throughput, every non-200 answer (the run fails on any), the server's peak resident
memory (``VmHWM`` from ``/proc``, Linux, when this script started the server), that ``/api/health`` is still
200 with no request in flight afterwards, and the CPU it ran on. ``--json`` prints the summary as JSON.

    python scripts/load_serve.py                       # 50 requests, concurrency 8, the first sample photo
    python scripts/load_serve.py --image photo.jpg --max-size 1024 --workers 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """``lscpu``'s model name (then /proc/cpuinfo's, then the platform's), with the number of CPUs."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{fields['Model name'].strip()} ({fields.get('CPU(s)', '?').strip()} CPUs)"
    except (OSError, subprocess.CalledProcessError, KeyError):
        return f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"


def multipart(fields: dict[str, str], image: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the text ``fields`` and the file field ``image``."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + image + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """One HTTP connection per thread to the server."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        if not hasattr(self._local, "conn"):
            self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        return self._local.conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """One request; a kept-alive connection the server closed meanwhile (idle timeout) is reopened once."""
        for attempt in (1, 2):
            reused = hasattr(self._local, "conn")
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                del self._local.conn
                stale = isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
                if not (reused and stale and attempt == 1):
                    raise
        raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "STYLER_MODEL_DIR"}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "styler.cli.serve", "--port", str(port), "--workers",
                                    str(workers), "--log-level", "warning"], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    client = Client(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.request("GET", "/api/health")[0] == 200:
                return process, url
        except OSError:
            time.sleep(0.3)
        if process.poll() is not None:
            break
    process.kill()
    sys.exit(f"styler serve did not start; its log:\n{log.read_text()[-3000:]}")


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MiB, Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def default_image() -> tuple[bytes, str]:
    from styler.web.samples import SampleSet

    samples = SampleSet()
    name = samples.names()[0]
    return samples.get(name) or b"", f"{name}.jpg"


def run(args: argparse.Namespace) -> dict[str, object]:
    image, filename = (Path(args.image).read_bytes(), Path(args.image).name) if args.image else default_image()
    fields = {"model": args.model} if args.model else {}
    if args.max_size:
        fields["max_size"] = str(args.max_size)
    body, content_type = multipart(fields, image, filename)
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    process = None
    log = Path(args.log)
    url = args.url
    if url is None:
        process, url = start_server(args.workers, log)
    client = Client(url)
    try:
        start = time.perf_counter()
        status, payload, answer = client.request("POST", "/api/stylize", body, headers)
        if status != 200:
            sys.exit(f"warm-up request failed: {status} {payload[:300]!r}")
        warmup = time.perf_counter() - start
        size, backend = answer.get("x-styler-size", "?"), answer.get("x-styler-backend", "?")

        def one(_: int) -> tuple[int, float, float]:
            t0 = time.perf_counter()
            code, content, got = client.request("POST", "/api/stylize", body, headers)
            return code, time.perf_counter() - t0, float(got.get("x-styler-seconds", "nan"))

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - began
        code, health_body, _ = client.request("GET", "/api/health")
        health = json.loads(health_body) if code == 200 else {}
        latencies = sorted(r[1] for r in results)
        errors = [r[0] for r in results if r[0] != 200]
        summary: dict[str, object] = {
            "cpu": cpu_name(), "url": url, "requests": args.requests, "concurrency": args.concurrency,
            "workers": args.workers if process else None, "image": filename, "image_bytes": len(image),
            "output_size": size, "backend": backend, "warmup_s": round(warmup, 3),
            "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(latencies[math.ceil(0.95 * len(latencies)) - 1], 3),  # nearest rank
            "max_s": round(latencies[-1], 3), "mean_network_s": round(statistics.fmean(r[2] for r in results), 3),
            "throughput_per_s": round(args.requests / wall, 2), "errors": len(errors),
            "error_statuses": sorted(set(errors)),
            "healthy_after": code == 200 and health.get("status") == "ok"
            and health.get("pool", {}).get("in_flight") == 0,
            "peak_rss_mib": round(peak, 1) if process and (peak := peak_rss_mib(process.pid)) else None,
        }
        return summary
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one on a free loopback port)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="--workers of the server this script starts")
    parser.add_argument("--image", help="photo to send (default: the server's first sample photo)")
    parser.add_argument("--model", help="model name (default: the server's default model)")
    parser.add_argument("--max-size", type=int, help="max_size field (default: the photo's own size)")
    parser.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "styler-load-serve.log"),
                        help="the started server's log file (default: in the temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    summary = run(args)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['requests']} requests at concurrency {summary['concurrency']} on {summary['cpu']}: "
              f"{summary['image']} → {summary['output_size']} with {summary['backend']}")
        print(f"latency p50 {summary['p50_s']} s, p95 {summary['p95_s']} s, max {summary['max_s']} s; "
              f"{summary['throughput_per_s']} requests/s; network {summary['mean_network_s']} s per photo; "
              f"warm-up {summary['warmup_s']} s")
        print(f"errors {summary['errors']} {summary['error_statuses'] or ''}; peak RSS "
              f"{summary['peak_rss_mib']} MiB; healthy afterwards: {summary['healthy_after']}")
    return 0 if summary["errors"] == 0 and summary["healthy_after"] else 1


if __name__ == "__main__":
    sys.exit(main())
