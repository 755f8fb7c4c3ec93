"""Throw-away servers for a test run: a PostgreSQL cluster and a redis-server started from the Debian packages
on free loopback ports, in temporary folders, and stopped (and removed) at the end.

tests/conftest.py decides which PostgreSQL a run uses (``plan_postgres``): the server named by
TINGJIAN_TEST_PG; without it, the machine's server at 127.0.0.1:5432 when it answers and lets us create
databases; otherwise a throw-away cluster. It never skips: with neither a server nor the binaries to start
one, the run stops and names the Debian packages to install.

pytest-postgresql was considered and not used: it runs ``initdb`` as the current user, which PostgreSQL
refuses for root (CI runs as root), and it puts plugin options and fixtures of its own into every run.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis as redis_lib

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/postgres"
# TINGJIAN_TEST_PG=throwaway starts a throw-away cluster even when the machine's server answers.
THROWAWAY = "throwaway"
DEBIAN_PG_BINDIRS = "/usr/lib/postgresql/*/bin"
PG_PACKAGES = "apt-get install -y postgresql"
REDIS_PACKAGES = "apt-get install -y redis-server"
_DIR_PREFIX = "tingjian-pg-"


class ServiceUnavailable(RuntimeError):
    """A service the tests need can be neither reached nor started; the message says what to install or set."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Which PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresPlan:
    dsn: str | None  # an admin connection to use as it is; None: start a throw-away cluster
    reason: str      # one line for the report header


def usable_server(dsn: str) -> str | None:
    """None when ``dsn`` answers and its user may create databases; otherwise why not."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone()
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    if not row or not row[0]:
        return "its user may not CREATE DATABASE"
    return None


def plan_postgres(configured: str | None, default: str | None = None) -> PostgresPlan:
    """A configured server is used or the run fails; the default server (DEFAULT_PG) is used when usable, else a
    throw-away cluster."""
    default = default or DEFAULT_PG
    if configured == THROWAWAY:
        return PostgresPlan(None, f"throw-away cluster (TINGJIAN_TEST_PG={THROWAWAY})")
    if configured:
        problem = usable_server(configured)
        if problem:
            raise ServiceUnavailable(f"PostgreSQL at {configured} (TINGJIAN_TEST_PG) is not usable: {problem}")
        return PostgresPlan(configured, f"{configured} (TINGJIAN_TEST_PG)")
    problem = usable_server(default)
    if problem is None:
        return PostgresPlan(default, default)
    return PostgresPlan(None, f"throw-away cluster ({default} is not usable: {problem})")


# A throw-away cluster --------------------------------------------------------------------------


def _version_key(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin$", bindir)
    return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()


def postgres_bindir() -> Path:
    """The folder holding initdb and pg_ctl: TINGJIAN_TEST_PG_BIN (folders separated by ':') when set; else the
    PATH, then Debian's /usr/lib/postgresql/<version>/bin, newest version first."""
    override = os.environ.get("TINGJIAN_TEST_PG_BIN")
    if override is not None:
        candidates = [part for part in override.split(os.pathsep) if part]
        where = f"TINGJIAN_TEST_PG_BIN={override}"
    else:
        on_path = shutil.which("pg_ctl")
        candidates = ([os.path.dirname(on_path)] if on_path else []) + sorted(
            glob.glob(DEBIAN_PG_BINDIRS), key=_version_key, reverse=True)
        where = f"the PATH or {DEBIAN_PG_BINDIRS}"
    for folder in candidates:
        if all(os.access(os.path.join(folder, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    raise ServiceUnavailable(f"no PostgreSQL server programs (initdb, pg_ctl, postgres) in {where}, so no "
                             f"throw-away cluster can be started: install Debian's postgresql package "
                             f"({PG_PACKAGES}), or point TINGJIAN_TEST_PG at a server")


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as 'postgres' (Debian's package creates that user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServiceUnavailable("running as root, and there is no 'postgres' user to run a throw-away PostgreSQL as: "
                             f"{PG_PACKAGES} creates it")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port, trust authentication, no fsync."""

    def __init__(self, bindir: Path, base: Path | None = None) -> None:
        """A new folder owned by this process, or ``base``: the folder of an earlier run's cluster."""
        self.bindir = bindir
        self.user = _server_user()
        if base is None:
            base = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
            (base / "owner").write_text(str(os.getpid()))
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(base, entry.pw_uid, entry.pw_gid)
        self.base = base
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.base, user=self.user,
                              env={**os.environ, "LC_ALL": "C.UTF-8"}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""

    def start(self) -> str:
        """initdb and start; the admin DSN. Raises ServiceUnavailable with the server's own words on failure."""
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                         "--locale=C.UTF-8", "--no-sync", "--no-instructions")
        if done.returncode:
            self.remove()
            raise ServiceUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        for _attempt in range(5):  # a port found free can be taken before the server binds it
            self.port = free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -F "
                       "-c full_page_writes=off -c synchronous_commit=off")
            done = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                             "-o", options)
            if done.returncode == 0:
                return self.dsn
        tail = self._log_tail()
        self.remove()
        raise ServiceUnavailable(f"a throw-away PostgreSQL did not start: {done.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", timeout=60)
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def sweep_stale_clusters(bindir: Path) -> int:
    """Stop and remove throw-away clusters whose test run died without stopping them; how many."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        try:
            owner = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        ThrowawayPostgres(bindir, base=folder).stop()
        removed += 1
    return removed


def start_postgres() -> ThrowawayPostgres:
    """A running throw-away cluster; ServiceUnavailable (naming the Debian package) when it cannot be had."""
    bindir = postgres_bindir()
    sweep_stale_clusters(bindir)
    cluster = ThrowawayPostgres(bindir)
    cluster.start()
    return cluster


# A throw-away redis-server ---------------------------------------------------------------------


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable(f"redis-server is not installed ({REDIS_PACKAGES}); the tests start one of their "
                                 "own, or share one named by TINGJIAN_TEST_REDIS")
    return binary


def start_redis(workdir: str, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server on a free loopback port (or ``port``, to start one again after an outage) that keeps
    nothing on disk."""
    binary = redis_binary()
    wanted = port
    for _attempt in range(5):
        port = wanted or free_port()
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        conn = redis_lib.Redis.from_url(url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn.ping()
                return proc, url
            except redis_lib.RedisError:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise ServiceUnavailable("could not start a throw-away redis-server")


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
