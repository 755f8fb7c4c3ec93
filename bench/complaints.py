"""Benchmark: the complaint officer's queue and the ledger export with 100,000 cases in one institution.

Usage:  .venv/bin/python bench/complaints.py [--cases 100000] [--requests 300] [--workers 2] [--clients 2]
                                              [--recent-share 0.33] [--explain] [--keep]

Creates a throw-away PostgreSQL database, migrates it, loads the demo organisation and
the official working-day calendar, generates ``--cases`` cases in one hospital
(generate_bulk below, from the demo's simulation: realistic statuses, departments, timelines, replies,
feedback, rectifications; written with COPY), then starts gunicorn with the production
configuration and, in the same run, a bare Flask page that runs one ``SELECT … LIMIT 50``
on the same table (the baseline). Logged in as the hospital's complaint officer, it
measures the officer's queue (/i/<id>/complaints/: default, overdue only, one category,
a text search, page 50) and the bare page for p50/p95/p99 over ``--requests`` requests
each (target from the issue: queue p95 under 150 ms), then the ledger's XLSX export of
every case: seconds, peak RSS of the gunicorn worker (from /proc), file size, and the row
count read back with openpyxl. ``--explain`` (or a missed target) prints the queue's
queries with EXPLAIN ANALYZE.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the app and bench/ importable
from bench.servers import ADMIN_DSN, ROOT, app_env, free_port, hammer, start, stop, summary, wait_for  # noqa: E402
from complaints.models import Status  # noqa: E402

TARGET_P95_MS = 150.0
OPEN_STATUSES = Status.values(Status.open_statuses())


# The baseline: gunicorn "bench.complaints:bare_app()" ------------------------------------------


def generate_bulk(institution: Any, n: int = 100_000, *, seed: int = 7, years: float = 3.0,
                  recent_share: float = 0.0, batch: int = 10_000, now: datetime | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """``n`` cases in one institution for the benchmark, spread evenly over ``years`` years, written in batches.

    100,000 cases over three years is about 90 a day, a very large hospital; about one in a hundred is open.
    ``recent_share`` puts that share of them in the last 30 days instead (a backlog: more open cases).
    """
    import random

    from complaints.demo.simulation import office_for, pick_hold, received_times, simulate
    from complaints.demo.writing import number_cases, write_cases
    from core.db import utcnow

    now = now or utcnow()
    rng = random.Random(seed)
    office = office_for(institution)
    phones: list[str] = []
    times = received_times(rng, n, days=int(365 * years), now=now, recent_share=recent_share)
    written = 0
    for chunk in _chunks(times, batch):
        cases = [simulate(rng, office, at, now, trace=False, phones=phones, hold=pick_hold(rng, at, now))
                 for at in chunk]
        if len(phones) > 5000:
            del phones[:-5000]
        number_cases(office, cases)
        written += write_cases(cases)
        if progress:
            progress(written)
    return written


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for first in range(0, len(items), size):
        yield items[first:first + size]


def bare_app():
    """A bare Flask page: one SELECT of 50 open cases of the institution, most urgent first, as plain text."""
    from flask import Flask
    from sqlalchemy import bindparam, create_engine, text

    app = Flask("bench_bare")
    engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_pre_ping=True)
    institution_id = int(os.environ["BENCH_INSTITUTION_ID"])
    query = text("SELECT id, case_number, subject, status, channel, received_at, due_at FROM complaint "
                 "WHERE institution_id = :institution AND status IN :open ORDER BY due_at, id LIMIT 50"
                 ).bindparams(bindparam("open", expanding=True))

    @app.get("/bare")
    def bare():
        with engine.connect() as conn:
            rows = conn.execute(query, {"institution": institution_id, "open": list(OPEN_STATUSES)}).all()
        return "\n".join(f"{r.case_number}\t{r.subject}\t{r.status}\t{r.due_at:%Y-%m-%d}" for r in rows)

    return app


# Preparing the data -------------------------------------------------------------------------

def prepare_database(url: str, cases: int, recent_share: float = 0.0) -> dict:
    """Migrate, load the demo organisation and the calendar, generate the cases; return what the run needs."""
    os.environ.update(app_env(url))
    import flask_migrate
    from sqlalchemy import func, select

    from core import create_app
    from core.extensions import db

    app = create_app({"SERVER_NAME": "bench.local", "PREFERRED_URL_SCHEME": "http"})
    with app.app_context(), app.test_request_context():
        flask_migrate.upgrade()
        from complaints.calendar_data import seed_from_chinesecalendar
        from complaints.models import Category, Complaint
        from organisation import demo as org_demo
        from organisation.models import Institution

        org_demo.seed(org_demo.DEMO_PASSWORD)
        seed_from_chinesecalendar(actor="bench")
        db.session.commit()
        institution = db.session.scalar(select(Institution).where(Institution.registration_code == "DEMO-510104-001"))
        started = time.perf_counter()

        def progress(done: int) -> None:
            db.session.commit()
            print(f"  … {done} cases", file=sys.stderr, flush=True)

        generate_bulk(institution, cases, recent_share=recent_share, progress=progress)
        db.session.commit()
        generated = time.perf_counter() - started
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
        category = db.session.scalar(select(Category).where(Category.code == "charges"))
        total = db.session.scalar(select(func.count()).select_from(Complaint)
                                  .where(Complaint.institution_id == institution.id))
        open_cases = db.session.scalar(select(func.count()).select_from(Complaint).where(
            Complaint.institution_id == institution.id, Complaint.status.in_(OPEN_STATUSES)))
        info = {"institution_id": institution.id, "category_id": category.id, "total": total, "open": open_cases,
                "generated_seconds": generated}
        db.session.remove()
        db.engine.dispose()
    return info


# Measuring ----------------------------------------------------------------------------------

class Session:
    """A logged-in browser: the session cookie of the officer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _remember(self, response: http.client.HTTPResponse) -> None:
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";")[0]

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def login(self, username: str, password: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/login")
        page = conn.getresponse()
        html = page.read().decode()
        self._remember(page)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
            r'name="csrf_token" value="([^"]+)"', html)
        body = urlencode({"csrf_token": token.group(1) if token else "", "username": username,
                          "password": password})
        conn.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                           "Cookie": self.cookie})
        response = conn.getresponse()
        response.read()
        self._remember(response)
        if response.status not in (302, 303):
            raise SystemExit(f"login as {username} failed: HTTP {response.status}")


def measure(port: int, path: str, count: int, clients: int, cookie: str = "", expect: str | None = None) -> dict:
    """``count`` GETs of ``path`` from ``clients`` threads, one keep-alive connection each."""
    lock = threading.Lock()
    remaining = [count]
    headers = {"Cookie": cookie} if cookie else {}

    def next_job():
        with lock:
            if remaining[0] <= 0:
                return None
            remaining[0] -= 1
        return path

    def send(conn, job):
        conn.request("GET", job, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status == 200 and (expect is None or expect.encode() in body)

    return summary(*hammer(port, clients, next_job, send, timeout=60))


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children (its workers)."""
    pids = []
    for task in Path(f"/proc/{master}/task").iterdir():
        children = (task / "children").read_text().split()
        pids.extend(int(p) for p in children)
    return pids


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def export(port: int, path: str, cookie: str, master: int) -> dict:
    """Download the export while sampling the workers' RSS; return timing, size, peak RSS and the file."""
    pids = worker_pids(master)
    before = {pid: rss_kb(pid) for pid in pids}
    peak = dict(before)
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in pids:
                peak[pid] = max(peak[pid], rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    first_byte = time.perf_counter() - started
    body = response.read()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    busiest = max(pids, key=lambda p: peak[p] - before[p])
    return {"status": response.status, "seconds": seconds, "first_byte": first_byte, "bytes": len(body),
            "body": body, "rss_before_mb": before[busiest] / 1024, "rss_peak_mb": peak[busiest] / 1024,
            "hwm_mb": rss_kb(busiest, "VmHWM") / 1024, "disposition": response.getheader("Content-Disposition", "")}


def explain(url: str, institution_id: int, scenarios: list[tuple[str, dict]]) -> None:
    """EXPLAIN ANALYZE of the queue's queries, as the page builds them."""
    from core import create_app
    from core.extensions import db

    os.environ.update(app_env(url))
    app = create_app({"SERVER_NAME": "bench.local"})
    with app.app_context(), app.test_request_context():
        from complaints import queues
        from organisation.models import Institution

        institution = db.session.get(Institution, institution_id)
        for label, args in scenarios:
            f = queues.QueueFilter(category_id=args.get("category_id"), overdue=bool(args.get("overdue")),
                                     q=args.get("q", ""))
            stmt = queues.queue_statement(institution, f).limit(50).offset(50 * (int(args.get("page", 1)) - 1))
            sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
            print(f"\n-- {label}\n{sql}")
            for (line,) in db.session.execute(db.text("EXPLAIN (ANALYZE, BUFFERS) " + sql)):
                print("   ", line)
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--recent-share", type=float, default=0.0,
                        help="share of the cases received in the last 30 days (0.33: a backlog of ~9,000 open)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the queue's queries")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    # This file is bench/complaints.py: make "complaints" mean the project's package, not this script.
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

    import psycopg

    name = f"tingjian_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    procs: list[subprocess.Popen] = []
    try:
        print(f"generating {args.cases} cases …", file=sys.stderr, flush=True)
        info = prepare_database(url, args.cases, args.recent_share)
        gunicorn = str(ROOT / ".venv" / "bin" / "gunicorn")
        common = ["-w", str(args.workers), "--no-control-socket", "--preload", "--log-level", "warning",
                  "--timeout", "120"]
        app_port, bare_port = free_port(), free_port()
        env = {**app_env(url), "BENCH_INSTITUTION_ID": str(info["institution_id"]),
               "BENCH_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1)}
        procs.append(start([gunicorn, *common, "-b", f"127.0.0.1:{app_port}", "wsgi:app"], env))
        procs.append(start([gunicorn, *common, "-b", f"127.0.0.1:{bare_port}", "bench.complaints:bare_app()"], env))
        wait_for(app_port, "/healthz")
        wait_for(bare_port, "/bare")

        from organisation.demo import DEMO_PASSWORD

        officer = Session(app_port)
        officer.login("rmyy-officer", DEMO_PASSWORD)
        base = f"/i/{info['institution_id']}/complaints/"
        scenarios = [("queue: default", {}), ("queue: overdue only", {"overdue": "y"}),
                     ("queue: one category", {"category_id": info["category_id"]}),
                     ("queue: text search 态度", {"q": "态度"}), ("queue: page 50", {"page": 50})]

        def path_of(params: dict) -> str:
            return base + ("?" + urlencode(params) if params else "")

        # Warm both up, then measure back to back.
        measure(bare_port, "/bare", 30, args.clients)
        for _label, params in scenarios:
            measure(app_port, path_of(params), 10, args.clients, officer.cookie, expect="投诉工作台")
        results = [("bare SELECT … LIMIT 50", measure(bare_port, "/bare", args.requests, args.clients))]
        for label, params in scenarios:
            results.append((label, measure(app_port, path_of(params), args.requests, args.clients, officer.cookie,
                                           expect="投诉工作台")))
        ledger_export = export(app_port, f"/i/{info['institution_id']}/complaints/ledger/export.xlsx",
                               officer.cookie, procs[0].pid)
        csv_export = export(app_port, f"/i/{info['institution_id']}/complaints/ledger/export.csv",
                            officer.cookie, procs[0].pid)
        read_started = time.perf_counter()
        from openpyxl import load_workbook

        with tempfile.TemporaryFile() as handle:
            handle.write(ledger_export["body"])
            handle.seek(0)
            sheet = load_workbook(handle, read_only=True).active
            rows_read = sum(1 for _ in sheet.iter_rows(values_only=True)) - 1
        read_seconds = time.perf_counter() - read_started
        csv_rows = csv_export["body"].decode("utf-8-sig").count("\n") - 1

        bare = results[0][1]
        print(f"# bench/complaints.py  {time.strftime('%Y-%m-%d %H:%M')}  gunicorn -w {args.workers} (production "
              f"config), {args.clients} client threads, {args.requests} requests each, PostgreSQL + Redis on this "
              f"machine ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
        print(f"data: {info['total']} cases in one institution ({info['open']} open), generated in "
              f"{info['generated_seconds']:.0f} s")
        print(f"{'page':<28}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'p95/bare':>10}")
        for label, r in results:
            print(f"{label:<28}{r['requests']:>9}{r['errors']:>7}{r['rps']:>8.1f}{r['p50_ms']:>9.1f}"
                  f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['p95_ms'] / bare['p95_ms']:>10.1f}")
        queue = results[1:]
        worst = max(r["p95_ms"] for _l, r in queue)
        print(f"queue p95, worst scenario: {worst:.1f} ms (target < {TARGET_P95_MS:.0f} ms: "
              f"{'met' if worst < TARGET_P95_MS else 'NOT met'})")
        for label, e in (("XLSX", ledger_export), ("CSV", csv_export)):
            print(f"ledger export {label}: HTTP {e['status']}, {e['seconds']:.1f} s (first byte after "
                  f"{e['first_byte']:.1f} s), {e['bytes'] / 1e6:.1f} MB; worker RSS {e['rss_before_mb']:.0f} MB "
                  f"before, peak {e['rss_peak_mb']:.0f} MB during (+{e['rss_peak_mb'] - e['rss_before_mb']:.0f} MB)")
        print(f"XLSX read back with openpyxl: {rows_read} data rows in {read_seconds:.1f} s "
              f"({'matches' if rows_read == info['total'] else 'MISMATCH with'} {info['total']} cases); "
              f"CSV: {csv_rows} data rows; file name: {quote_free(ledger_export['disposition'])}")
        if args.explain or worst >= TARGET_P95_MS:
            explain(url, info["institution_id"], [(label, params) for label, params in scenarios])
        if args.keep:
            print(f"database kept: {name}")
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def quote_free(disposition: str) -> str:
    """The UTF-8 file name of a Content-Disposition header, decoded."""
    from urllib.parse import unquote

    match = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    return unquote(match.group(1)) if match else disposition


if __name__ == "__main__":
    main()
