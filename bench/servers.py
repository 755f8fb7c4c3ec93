"""What the benchmark scripts share: where things are, and starting and stopping servers."""
from __future__ import annotations

import http.client
import os
import shutil
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


def start(cmd: list[str], env: dict, log: Path | None = None) -> subprocess.Popen:
    """Start a server in its own process group (so stop() takes its workers too).

    With ``log``, its output and errors are appended to that file (a process that logs every job would
    fill an unread pipe and stall).
    """
    if log is None:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


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


# Services of the bench's own: never the machine's PostgreSQL on 5432 or Redis on 6379 ---------------------

def _wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s")


class LocalRedis:
    """A redis-server on a free loopback port that keeps nothing on disk; stop() and start() again for an outage
    (the same port, and empty again: what a Redis without persistence is after a restart)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (Debian package redis-server)")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir),
                                      "--logfile", str(self.workdir / "redis.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(conn.ping())
            except redis.RedisError:
                return False

        _wait_until(answers, 20, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalPostgres:
    """A PostgreSQL cluster of its own under ``workdir`` (initdb and pg_ctl from Debian's postgresql package), on a
    free loopback port. As root, its commands run as the ``postgres`` system user: initdb refuses root."""

    USER = "bench"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.bin = self._find_bin()

    @staticmethod
    def _find_bin() -> Path:
        override = os.environ.get("BENCH_PG_BIN")
        if override:
            return Path(override)
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        if versions:
            return versions[-1].parent
        found = shutil.which("initdb")
        if found is None:
            raise SystemExit("initdb not found: install Debian's postgresql package (or set BENCH_PG_BIN)")
        return Path(found).parent

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{args[0]} failed:\n{result.stdout}")

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "-A", "trust", "-E", "UTF8", "--locale=C")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.workdir}'\nmax_connections = 60\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.workdir / "postgres.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"
