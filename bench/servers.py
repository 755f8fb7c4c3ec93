"""What the benchmark scripts share: where things are, and starting and stopping servers."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("TINGJIAN_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, path: str, timeout: float = 60) -> None:
    """Poll until the server on ``port`` answers ``path``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not come up")


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    """Start a server in its own process group (so stop() takes its workers too)."""
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def app_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of the app under test: production config on the bench database and Redis."""
    return {**os.environ, "TINGJIAN_CONFIG": "production", "TINGJIAN_SECRET_KEY": "bench-secret-key",
            "TINGJIAN_DATABASE_URL": url, "TINGJIAN_REDIS_URL": REDIS_URL, "TINGJIAN_SESSION_COOKIE_SECURE": "false",
            **extra}


def run_clients(client, count: int) -> float:
    """Run ``count`` threads of ``client`` to completion; the wall time in seconds."""
    import threading

    threads = [threading.Thread(target=client) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def summary(latencies: list[float], errors: int, elapsed: float) -> dict:
    """Requests, errors, requests per second and latency percentiles in milliseconds."""
    import statistics

    latencies = sorted(latencies)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed if elapsed else 0.0,
            "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000}
