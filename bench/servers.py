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


def hammer(port: int, clients: int, next_job, send, timeout: float) -> tuple[list[float], int, float]:
    """``clients`` threads, one keep-alive connection each, send jobs until ``next_job()`` gives None.

    ``next_job()`` prepares a job outside the timed part (it must be thread-safe);
    ``send(conn, job)`` makes the request, reads the answer and says whether it
    was right. A broken connection is counted as an error and replaced.
    Returns (latencies in seconds, errors, wall time).
    """
    import threading

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        mine, bad = [], 0
        while (job := next_job()) is not None:
            t0 = time.perf_counter()
            try:
                ok = send(conn, job)
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            mine.append(time.perf_counter() - t0)
            bad += 0 if ok else 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    elapsed = run_clients(client, clients)
    return latencies, errors[0], elapsed


def summary(latencies: list[float], errors: int, elapsed: float) -> dict:
    """Requests, errors, requests per second and latency percentiles in milliseconds."""
    import statistics

    latencies = sorted(latencies)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed if elapsed else 0.0,
            "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000}
