"""Benchmark: the patient rating endpoint against a bare Flask insert, in one run.

Usage:  .venv/bin/python bench/submit.py [--seconds 30] [--rounds 5] [--workers 2] [--clients 8]

Both apps run under gunicorn with the same worker count against the same local
PostgreSQL (a throw-away database). The load generator keeps one HTTP
connection per client thread and posts as fast as answers come back. The
``--seconds`` of load per endpoint are split into ``--rounds`` that alternate
between the two endpoints (ABBA order), so a change in the machine's
background load during the run falls on both alike. Prints
requests per second and latency percentiles for each, their ratio (target:
the rating endpoint reaches at least 0.6 of the bare insert), and the patient
page's compressed weight and request count.

Then the inbox job: one worker process drains the ratings the load left in
the inbox, timed, and the script prints its rows per second against the
rating POST's requests per second of the same run (``drain ratio``; target
at least 1.0: the job keeps up with the endpoint). Then the same backlog
again (copied with new submission ids) drained by two worker processes
started at once, to show that claiming with SKIP LOCKED scales. Each time
it checks that every rating is stored exactly once and none is left.
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlparse

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the app and bench/ importable
from bench.servers import ADMIN_DSN, ROOT, app_env, free_port, hammer, start, stop, summary, wait_for  # noqa: E402


def prepare_database(url: str) -> str:
    """Migrate, install templates, create one institution with a window; return its patient path."""
    env = {**os.environ, "TINGJIAN_CONFIG": "production", "TINGJIAN_SECRET_KEY": "bench-secret-key",
           "TINGJIAN_DATABASE_URL": url}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import flask_migrate

    from core import create_app
    from core.extensions import db

    app = create_app({"SERVER_NAME": "bench.local", "PREFERRED_URL_SCHEME": "http"})
    with app.app_context():
        flask_migrate.upgrade()
        from sqlalchemy import select

        from organisation import demo
        from organisation.models import Touchpoint
        from survey import qr, versioning

        demo.seed(demo.DEMO_PASSWORD)
        versioning.install_builtin_templates(actor="bench")
        touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.code == "W-GH-01"))
        code = qr.ensure_code(touchpoint, actor="bench")
        db.session.execute(db.text("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, submission_id text, "
                                   "score int, created_at timestamptz DEFAULT now())"))
        db.session.commit()
        path = urlparse(qr.patient_url(code)).path
        db.engine.dispose()
    return path


def drain_worker() -> None:
    """A worker process (``--drain-worker``): create the app, say ready, wait for "go", run the inbox job once.

    Prints one JSON line: rows taken, its start and end on the system-wide monotonic clock, and the CPU
    seconds the process used meanwhile (less than the wall time: it waited for PostgreSQL or for a core).
    """
    import logging

    from core import create_app
    from core.extensions import db
    from survey import tasks as survey_tasks

    app = create_app({"SERVER_NAME": "bench.local"})
    logging.getLogger("survey.inbox").setLevel(logging.WARNING)  # no line per batch in the figures
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connected before the clock starts, as a running worker is
        db.session.rollback()
        print("ready", flush=True)
        sys.stdin.readline()
        started, cpu = time.monotonic(), time.process_time()
        rows = survey_tasks.drain_inbox()
        finished, cpu = time.monotonic(), time.process_time() - cpu
    print(json.dumps({"rows": rows, "started": started, "finished": finished, "cpu": cpu}), flush=True)


def drain(workers: int) -> dict:
    """Start ``workers`` worker processes, let them run the inbox job at the same moment; rows, seconds, per worker."""
    load = os.getloadavg()[0]
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--drain-worker"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a drain worker did not start")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.stdout.readline()) for proc in procs]
    finally:
        for proc in procs:
            proc.wait(600)
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    rows = sum(r["rows"] for r in results)
    return {"rows": rows, "seconds": seconds, "rps": rows / seconds if seconds else 0.0, "load": load,
            "per_worker": [r["rows"] for r in results], "cpu": [r["cpu"] for r in results]}


def counts(url: str) -> tuple[int, int, int]:
    """Responses stored, distinct submission ids among them, rows left in the inbox."""
    with psycopg.connect(url) as check:
        stored, distinct = check.execute("SELECT count(*), count(DISTINCT submission_id) FROM survey_response"
                                         ).fetchone()
        waiting = check.execute("SELECT count(*) FROM survey_inbox").fetchone()[0]
    return stored, distinct, waiting


def load(port: int, path: str, make_body, seconds: float, clients: int, cookie: str = "") -> tuple[list, int, float]:
    """Post for ``seconds``: (latencies, errors, wall time)."""
    stop_at = time.perf_counter() + seconds
    headers = {"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})}

    def next_job():
        return make_body() if time.perf_counter() < stop_at else None

    def send(conn, body):
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status in (200, 303)

    return hammer(port, clients, next_job, send, timeout=10)


def rounds(runs: list[tuple[list, int, float]]) -> dict:
    """One summary of several load() runs of the same endpoint."""
    return summary([x for r in runs for x in r[0]], sum(r[1] for r in runs), sum(r[2] for r in runs))


def page_weight(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    response = conn.getresponse()
    html = response.read()
    text = html.decode()
    subresources = [u for u in re.findall(r'(?:src|href)="([^"]+)"', text)
                    if not u.startswith(("data:", "#")) and not re.search(r"<a [^>]*href=\"" + re.escape(u), text)]
    result = {"html_bytes": len(html), "gzip_bytes": len(gzip.compress(html, 6)),
              "subresources_in_html": len(subresources)}
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-background-networking"])
            page = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True).new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"http://127.0.0.1:{port}{path}")
            page.wait_for_load_state("networkidle")
            result["browser_requests"] = len(requests)
            browser.close()
    except Exception as exc:  # the browser is optional for this figure
        result["browser_requests"] = f"n/a ({type(exc).__name__})"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--drain-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain_worker:
        drain_worker()
        return

    rating_total = [0, 0]
    name = f"tingjian_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    procs = []
    try:
        path = prepare_database(url)
        gunicorn = str(ROOT / ".venv" / "bin" / "gunicorn")
        common = ["-w", str(args.workers), "--no-control-socket", "--preload", "--log-level", "warning"]
        app_port, bare_port = free_port(), free_port()
        # No worker runs during the load, on purpose (the inbox job is measured after it): the web processes must
        # not take over the inbox as stalled (survey/inbox.py) and so change what is measured.
        env = app_env(url, TINGJIAN_SURVEY_IP_LIMIT="1000000 per minute",
                      TINGJIAN_SURVEY_DEVICE_LIMIT="1000000 per minute", TINGJIAN_SURVEY_INBOX_STALL_SECONDS="86400",
                      BENCH_DATABASE_URL=url.replace("postgresql://", "postgresql+psycopg://", 1),
                      **({"TINGJIAN_RATELIMIT_ENABLED": "false"} if os.environ.get("BENCH_NO_LIMITER") else {}))
        procs.append(start([gunicorn, *common, "-b", f"127.0.0.1:{app_port}", "wsgi:app"], env))
        procs.append(start([gunicorn, *common, "-b", f"127.0.0.1:{bare_port}", "bench.bare_app:app"], env))
        wait_for(app_port, "/healthz")
        wait_for(bare_port, "/nothing")

        conn = http.client.HTTPConnection("127.0.0.1", app_port)
        conn.request("GET", path)
        page = conn.getresponse()
        html = page.read().decode()
        cookie = (page.getheader("Set-Cookie") or "").split(";")[0]
        form_token = re.search(r'name="form_token" value="([^"]+)"', html).group(1)
        time.sleep(2.1)  # a real patient takes longer than the minimum fill time

        def rating_body():
            return urlencode({"submission_id": uuid.uuid4().hex, "form_token": form_token, "q_WIN_OVERALL": "5"})

        def bare_body():
            return urlencode({"submission_id": uuid.uuid4().hex, "v": "5"})

        # Warm both up, then measure them in alternating rounds with the same load.
        load(bare_port, "/bare", bare_body, 2, args.clients)
        warm_rating = load(app_port, path, rating_body, 2, args.clients, cookie)
        runs: dict[str, list] = {"bare": [], "rating": []}
        chunk = args.seconds / args.rounds
        for n in range(args.rounds):
            order = ("bare", "rating") if n % 2 == 0 else ("rating", "bare")
            for which in order:
                if which == "bare":
                    runs["bare"].append(load(bare_port, "/bare", bare_body, chunk, args.clients))
                else:
                    runs["rating"].append(load(app_port, path, rating_body, chunk, args.clients, cookie))
        bare, rating = rounds(runs["bare"]), rounds(runs["rating"])
        per_round = [len(r[0]) / r[2] / (len(b[0]) / b[2]) for b, r in zip(runs["bare"], runs["rating"], strict=True)]
        rating_total[0] = len(warm_rating[0]) + rating["requests"]
        rating_total[1] = warm_rating[1] + rating["errors"]
        weight = page_weight(app_port, path)
        accepted = rating_total[0] - rating_total[1]
        for proc in procs:  # the job runs on a machine without load on the endpoint
            stop(proc)
        with psycopg.connect(url, autocommit=True) as conn:  # the backlog again, for the two-worker phase
            conn.execute("CREATE TABLE bench_backlog AS SELECT submission_id, received_at, payload FROM survey_inbox")
        one = drain(1)
        stored, distinct, waiting = counts(url)
        one_ok = stored == distinct == accepted and waiting == 0 and one["rows"] == accepted
        with psycopg.connect(url, autocommit=True) as conn:
            backlog = conn.execute("INSERT INTO survey_inbox (submission_id, received_at, payload) "
                                   "SELECT submission_id || '-2', received_at, payload FROM bench_backlog").rowcount
            conn.execute("VACUUM ANALYZE")  # both phases start from a tidy table
        two = drain(2)
        stored2, distinct2, waiting2 = counts(url)
        two_ok = stored2 == distinct2 == accepted + backlog and waiting2 == 0 and two["rows"] == backlog

        print(f"# bench/submit.py  {time.strftime('%Y-%m-%d %H:%M')}  gunicorn -w {args.workers}, "
              f"{args.clients} client threads, {args.seconds:.0f} s each in {args.rounds} alternating rounds, "
              f"PostgreSQL + Redis on this machine")
        print(f"{'endpoint':<24}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
        for label, r in (("bare insert", bare), ("rating POST /q/…", rating)):
            print(f"{label:<24}{r['requests']:>10}{r['errors']:>8}{r['rps']:>10.1f}{r['p50_ms']:>9.1f}"
                  f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}")
        ratio = rating["rps"] / bare["rps"]
        print(f"throughput ratio rating/bare: {ratio:.2f} (target >= 0.60: {'met' if ratio >= 0.6 else 'NOT met'}); "
              f"per round: {' '.join(f'{x:.2f}' for x in per_round)}")
        print(f"ratings answered 303: {accepted}; inbox job, 1 worker: {one['rows']} rows in {one['seconds']:.1f} s "
              f"= {one['rps']:.1f} rows/s (worker CPU {one['cpu'][0]:.1f} s, load average {one['load']:.1f}); "
              f"responses stored: {stored}; left in inbox: {waiting}"
              f" ({'each stored once, none lost' if one_ok else 'MISMATCH'})")
        drain_ratio = one["rps"] / rating["rps"]
        print(f"drain ratio: {drain_ratio:.2f} (inbox job rows/s / rating POST req/s; target >= 1.0: "
              f"{'met' if drain_ratio >= 1.0 else 'NOT met'}, "
              f"stretch 1.5: {'met' if drain_ratio >= 1.5 else 'not met'})")
        print(f"inbox job, 2 workers at once: {two['rows']} rows in {two['seconds']:.1f} s = {two['rps']:.1f} rows/s "
              f"(per worker: {' + '.join(str(n) for n in two['per_worker'])} rows, CPU "
              f"{' + '.join(f'{c:.1f}' for c in two['cpu'])} s; load average {two['load']:.1f}), "
              f"speed-up over 1 worker: {two['rps'] / one['rps']:.2f}; responses stored: {stored2}; "
              f"left in inbox: {waiting2} ({'each stored once, none lost' if two_ok else 'MISMATCH'})")
        print(f"patient page: {weight['html_bytes']} B HTML, {weight['gzip_bytes']} B gzip (target <= 51200), "
              f"{weight['subresources_in_html']} sub-resources in HTML, browser requests: {weight['browser_requests']}"
              f" (target <= 3)")
    finally:
        for proc in procs:
            stop(proc)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
