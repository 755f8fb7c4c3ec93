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
