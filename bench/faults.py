"""Benchmark under faults: the production stack through a Redis outage and a PostgreSQL restart.

Usage:  .venv/bin/python bench/faults.py [--rate 3] [--complaint-rate 0.3] [--warmup 20] [--redis-down 30]
                                         [--between 25] [--pg-down 15] [--after 25] [--catch-up 180]
                                         [--no-scheduler] [--keep]

What runs: a PostgreSQL cluster and a redis-server of the script's own (initdb, pg_ctl and
redis-server from Debian's packages, in a temporary folder, on free loopback ports; never the
machine's own services), and on them the production stack: gunicorn -w 2 serving wsgi:app with the
production configuration, one ``flask worker`` and one ``flask scheduler``. Redis keeps nothing on
disk, so a restart empties its queues (the worst case; see docs/deployment.md).

The client is bounded (at most ``--clients`` submissions in flight, a tick that finds none free is
skipped and counted): every ``1/--rate`` seconds a patient opens the window survey of a touchpoint
from a phone of their own (a fresh device cookie, a network of their own through X-Forwarded-For),
takes the minimum fill time and posts a rating, one in three of them the lowest (which raises a
service-recovery alert); every ``1/--complaint-rate`` seconds a complainant files the public
complaint form. A post answered with an error or not at all is posted again with the same
submission id every 3 s for up to 45 s, as a patient taps again. A rating counts as acknowledged
on a 303 to its thank-you page, a complaint on the receipt with its case number.

Timeline: ``--warmup`` s of load; Redis stopped for ``--redis-down`` s, then started again on
the same port; ``--between`` s; PostgreSQL stopped (fast shutdown) for ``--pg-down`` s, then
started again; ``--after`` s; the load stops. Nobody restarts gunicorn, the worker or the
scheduler.

Then, within ``--catch-up`` s, it waits until and checks that: every acknowledged rating is a
response exactly once (by submission id) and the inbox is empty; every acknowledged low rating
raised its alert; every alert was notified (``notified_at`` and an in-app notice); every
acknowledged complaint is one case (by submission id); the scheduler and the worker are the
processes it started, alive, and ran the inbox job after the PostgreSQL restart and the heartbeat
after the Redis restart. Over the whole run no answer was a 500 or showed a stack trace, and every
503 (PostgreSQL down) was the Chinese page. Prints its figures; exits 1 if any check fails.

``--no-scheduler`` runs the same without any scheduler, as if it had died for good: the ratings must
still all become responses (the web processes take over the stalled inbox, survey/inbox.py). Alert
notices that missed their job then wait for the scheduler's sweep, so they are reported, not required.
"""
from __future__ import annotations

import argparse
import http.client
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the app and bench/ importable
from bench.flood import complaint as complaint_fields  # noqa: E402
from bench.flood import hidden_fields, multipart, safety_category  # noqa: E402
from bench.servers import ROOT, LocalPostgres, LocalRedis, app_env, free_port, start, stop, wait_for  # noqa: E402
from bench.submit import prepare_database  # noqa: E402

UNAVAILABLE_TITLE = "服务暂不可用"  # the title of the 503 page (core/errors.py)
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "psycopg.")
RETRY_EVERY = 3.0
RETRY_FOR = 45.0


@dataclass
class Answer:
    """One HTTP answer the client saw (status None: no answer, the connection failed or timed out)."""

    at: float
    kind: str
    status: int | None
    trace: bool
    chinese: bool


@dataclass
class Window:
    """When a fault began and ended, on the run's clock (seconds since the load started), and on the wall clock."""

    start: float = 0.0
    end: float = 0.0
    end_wall: datetime | None = None

    def holds(self, at: float, slack: float = 0.0) -> bool:
        return self.start <= at <= self.end + slack


@dataclass
class Sample:
    at: float
    inbox: int | None
    oldest: float | None
    unnotified: int | None


@dataclass
class Client:
    """Patients and complainants: a bounded pool of threads, every answer recorded."""

    port: int
    rating_path: str
    complaint_path: str
    fill_seconds: float
    clients: int
    t0: float = field(default_factory=time.monotonic)
    answers: list[Answer] = field(default_factory=list)
    ratings: dict[str, bool] = field(default_factory=dict)      # acknowledged: submission id -> low
    complaints: dict[str, str] = field(default_factory=dict)    # acknowledged: submission id -> case number
    given_up: Counter = field(default_factory=Counter)
    started: Counter = field(default_factory=Counter)       # submissions begun (a page opened or tried)
    retried: Counter = field(default_factory=Counter)       # acknowledged only after an error answer
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def request(self, kind: str, method: str, path: str, headers: dict[str, str],
                body: bytes | None = None) -> tuple[int | None, http.client.HTTPMessage | None, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            status, head = response.status, response.msg
        except (OSError, http.client.HTTPException):
            status, head, text = None, None, ""
        finally:
            conn.close()
        trace = any(marker in text for marker in TRACE_MARKERS)
        with self.lock:
            self.answers.append(Answer(self.now(), kind, status, trace, UNAVAILABLE_TITLE in text))
        return status, head, text

    @staticmethod
    def cookies(head: http.client.HTTPMessage | None) -> str:
        return "; ".join(c.split(";", 1)[0] for c in (head.get_all("Set-Cookie") or [] if head else []))

    def post_until_answered(self, kind: str, path: str, headers: dict[str, str],
                            body: bytes) -> tuple[int | None, http.client.HTTPMessage | None, str]:
        """Post; on no answer or a 5xx, post the same again every few seconds, for a while."""
        first = time.monotonic()
        while True:
            status, head, text = self.request(kind, "POST", path, headers, body)
            if status is not None and status < 500:
                if time.monotonic() - first > RETRY_EVERY / 2:
                    with self.lock:
                        self.retried[kind] += 1
                return status, head, text
            if time.monotonic() - first > RETRY_FOR:
                with self.lock:
                    self.given_up[kind] += 1
                return status, head, text
            time.sleep(RETRY_EVERY)

    def rating(self, n: int) -> None:
        low = n % 3 == 0
        forwarded = {"X-Forwarded-For": f"10.{(n >> 8) & 255}.{n & 255}.7"}
        with self.lock:
            self.started["rating"] += 1
        status, head, text = self.request("rating page", "GET", self.rating_path, forwarded)
        if status != 200:
            return
        token = re.search(r'name="form_token" value="([^"]+)"', text)
        if token is None:
            return
        time.sleep(self.fill_seconds)  # a person reading the question, not a script
        submission_id = uuid.uuid4().hex
        fields = {"submission_id": submission_id, "form_token": token.group(1), "q_WIN_OVERALL": "1" if low else "5"}
        if low:
            fields["q_WIN_REASON"] = "R_WAIT"
        headers = {**forwarded, "Cookie": self.cookies(head), "Content-Type": "application/x-www-form-urlencoded"}
        status, head, _text = self.post_until_answered("rating", self.rating_path, headers,
                                                       urlencode(fields).encode())
        if status == 303 and head is not None and (head.get("Location") or "").endswith(f"/thanks/{submission_id}"):
            with self.lock:
                self.ratings[submission_id] = low

    def complaint(self, n: int) -> None:
        forwarded = {"X-Forwarded-For": f"172.{16 + ((n >> 8) & 15)}.{n & 255}.9"}
        with self.lock:
            self.started["complaint"] += 1
        status, head, text = self.request("complaint page", "GET", self.complaint_path, forwarded)
        if status != 200:
            return
        fields = hidden_fields(text)
        submission_id = fields.get("submission_id", "")
        body, content_type = multipart(complaint_fields(fields, safety_category(text, safety=False), submission_id))
        headers = {**forwarded, "Cookie": self.cookies(head), "Content-Type": content_type}
        status, head, text = self.post_until_answered("complaint", self.complaint_path, headers, body)
        case = re.search(r'<dd class="code">([^<]+)</dd>', text)
        if status == 200 and case is not None:
            with self.lock:
                self.complaints[submission_id] = case.group(1)

    def run(self, seconds: float, rate: float, complaint_rate: float) -> None:
        """Start a submission on every tick for ``seconds``; a tick with all clients busy is skipped."""
        slots = threading.BoundedSemaphore(self.clients)
        pool = ThreadPoolExecutor(max_workers=self.clients)

        def launch(job, n: int) -> None:
            if not slots.acquire(blocking=False):
                self.skipped += 1
                return

            def run_one() -> None:
                try:
                    job(n)
                finally:
                    slots.release()

            pool.submit(run_one)

        ticks = [(self.rating, 1 / rate, 0.0), (self.complaint, 1 / complaint_rate, 0.5)]
        due = [offset for _job, _every, offset in ticks]
        counts = [0] * len(ticks)
        end = self.now() + seconds
        while (now := self.now()) < end:
            for i, (job, every, _offset) in enumerate(ticks):
                if now >= due[i]:
                    launch(job, counts[i])
                    counts[i] += 1
                    due[i] += every
            time.sleep(max(0.0, min(due) - self.now()))
        pool.shutdown(wait=True)


class Monitor(threading.Thread):
    """Every second: the inbox backlog and its oldest row, alerts not yet notified (None while PostgreSQL is down)."""

    def __init__(self, url: str, client: Client):
        super().__init__(daemon=True)
        self.url, self.client = url, client
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = None
        while not self.stopping.wait(1.0):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
                inbox, oldest = conn.execute("SELECT count(*), extract(epoch FROM now() - min(received_at)) "
                                             "FROM survey_inbox").fetchone()
                unnotified = conn.execute("SELECT count(*) FROM survey_recovery_alert WHERE notified_at IS NULL"
                                          ).fetchone()[0]
                self.samples.append(Sample(self.client.now(), inbox, float(oldest) if oldest is not None else None,
                                           unnotified))
            except psycopg.Error:
                conn = None
                self.samples.append(Sample(self.client.now(), None, None, None))


@dataclass
class Outcome:
    """What the database holds of the acknowledged submissions, and whether the deferred work caught up."""

    responses: int = 0
    in_inbox: int = 0
    duplicate_responses: int = 0
    low_with_alert: int = 0
    alerts: int = 0
    unnotified: int = 0
    without_notice: int = 0
    cases_once: int = 0
    cases_missing: int = 0
    cases_duplicated: int = 0

    def caught_up(self, client: Client, *, notices: bool = True) -> bool:
        low = sum(client.ratings.values())
        return (self.responses == len(client.ratings) and self.in_inbox == 0 and self.low_with_alert == low
                and (not notices or (self.unnotified == 0 and self.without_notice == 0))
                and self.cases_once == len(client.complaints))


def outcome(url: str, client: Client, app, institution_id: int) -> Outcome:
    result = Outcome()
    ids = list(client.ratings)
    low = [sid for sid, is_low in client.ratings.items() if is_low]
    with psycopg.connect(url, connect_timeout=5) as conn:
        result.responses = conn.execute("SELECT count(*) FROM survey_response WHERE submission_id = ANY(%s)",
                                        (ids,)).fetchone()[0]
        result.in_inbox = conn.execute("SELECT count(*) FROM survey_inbox").fetchone()[0]
        result.duplicate_responses = conn.execute("SELECT count(*) - count(DISTINCT submission_id) "
                                                  "FROM survey_response").fetchone()[0]
        result.low_with_alert = conn.execute(
            "SELECT count(DISTINCT r.submission_id) FROM survey_recovery_alert a "
            "JOIN survey_response r ON r.id = a.response_id WHERE r.submission_id = ANY(%s)", (low,)).fetchone()[0]
        result.alerts, result.unnotified = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE notified_at IS NULL) FROM survey_recovery_alert").fetchone()
        result.without_notice = conn.execute(
            "SELECT count(*) FROM survey_recovery_alert a WHERE NOT EXISTS "
            "(SELECT 1 FROM notification n WHERE n.key = 'alert:' || a.id)").fetchone()[0]
    with app.app_context():
        from sqlalchemy import func, select

        from complaints import intake
        from complaints.models import Complaint
        from core.extensions import db
        from organisation.models import Institution

        institution = db.session.get(Institution, institution_id)
        for submission_id in client.complaints:
            case = intake.find_submission(institution, submission_id)
            if case is None:
                result.cases_missing += 1
                continue
            twins = db.session.scalar(select(func.count()).select_from(Complaint).where(
                Complaint.submission_hash == case.submission_hash))
            if twins == 1:
                result.cases_once += 1
            else:
                result.cases_duplicated += 1
        db.session.remove()
        db.engine.dispose()
    return result


def job_path_after(redis_url: str, pg_up: datetime, redis_up: datetime) -> tuple[datetime | None, datetime | None]:
    """(when the newest inbox job the scheduler queued finished, if after the PostgreSQL restart; the heartbeat,
    if written after the Redis restart): proof that scheduler and worker came back by themselves."""
    import redis
    from rq.cron import get_cron_job_ids
    from rq.job import Job

    conn = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    finished = None
    for job_id in get_cron_job_ids("survey-inbox", conn, 0, 5):
        try:
            job = Job.fetch(job_id, connection=conn)
        except Exception:  # expired or removed meanwhile
            continue
        if job.get_status() == "finished" and job.ended_at and job.ended_at.replace(tzinfo=UTC) > pg_up:
            finished = job.ended_at.replace(tzinfo=UTC)
            break
    beat = conn.get("tingjian:scheduler:heartbeat")
    heartbeat = datetime.fromisoformat(beat.decode()) if beat else None
    return finished, heartbeat if heartbeat is not None and heartbeat > redis_up else None


def statuses(answers: list[Answer]) -> str:
    counts = Counter(a.status for a in answers)
    return ", ".join(f"{'no answer' if status is None else status}: {n}"
                     for status, n in sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or 0)))


def report(args, client: Client, monitor: Monitor, redis_down: Window, pg_down: Window, result: Outcome,
           caught_up_after: float | None, procs: dict, proof: tuple, logs: Path) -> bool:
    answers = client.answers
    errors_500 = [a for a in answers if a.status is not None and a.status >= 500 and a.status != 503]
    unanswered = [a for a in answers if a.status is None]
    traces = [a for a in answers if a.trace]
    unavailable = [a for a in answers if a.status == 503]
    plain_503 = [a for a in unavailable if not a.chinese]
    in_pg = [a for a in answers if pg_down.holds(a.at, slack=2)]
    in_redis = [a for a in answers if redis_down.holds(a.at)]
    low = sum(client.ratings.values())
    lost = len(client.ratings) - result.responses - min(result.in_inbox, len(client.ratings))

    def drained(after: float) -> float | None:
        """Seconds after ``after`` until no rating received before it waited in the inbox any more."""
        for sample in monitor.samples:
            if sample.at > after and (sample.inbox == 0 or (sample.oldest is not None
                                                            and sample.oldest < sample.at - after)):
                return sample.at - after
        return None

    peak = max((s.inbox for s in monitor.samples if s.inbox is not None), default=0)
    oldest = max((s.oldest for s in monitor.samples if s.oldest is not None), default=0.0)
    died = {name: proc.returncode for name, proc in procs.items() if proc.poll() is not None}
    finished, heartbeat = proof

    stack = "flask worker, NO scheduler" if args.no_scheduler else "flask worker + flask scheduler"
    print(f"# bench/faults.py  {time.strftime('%Y-%m-%d %H:%M')}  gunicorn -w 2 + {stack}, "
          f"production config, private PostgreSQL {args.pg_version} and redis-server")
    print(f"load: {args.rate:g} ratings/s (1 in 3 low) + {args.complaint_rate:g} complaints/s for "
          f"{args.total:.0f} s, at most {args.clients} in flight ({client.skipped} ticks skipped, all busy); "
          f"Redis down {redis_down.start:.0f}–{redis_down.end:.0f} s, PostgreSQL down "
          f"{pg_down.start:.0f}–{pg_down.end:.0f} s")
    print(f"answers: {len(answers)}; by status: {statuses(answers)}")
    print(f"  while Redis was down: {len(in_redis)} answers, {statuses(in_redis)}")
    print(f"  while PostgreSQL was down (and 2 s after): {len(in_pg)} answers, {statuses(in_pg)}")
    print(f"  503 pages: {len(unavailable)} ({len(unavailable) - len(plain_503)} the Chinese page); "
          f"other 5xx: {len(errors_500)}; no answer: {len(unanswered)}; stack traces shown: {len(traces)}")
    for kind, page in (("rating", "rating page"), ("complaint", "complaint page")):
        unopened = sum(1 for a in answers if a.kind == page and a.status != 200)
        print(f"{kind}s begun: {client.started[kind]}; page not served: {unopened}; acknowledged only after "
              f"posting again: {client.retried[kind]}")
    print(f"ratings acknowledged: {len(client.ratings)} ({low} low); responses stored: {result.responses}; "
          f"still in the inbox: {result.in_inbox}; lost: {lost}; duplicated: {result.duplicate_responses}; "
          f"given up after {RETRY_FOR:.0f} s of retries: {client.given_up['rating']}")
    print(f"complaints acknowledged: {len(client.complaints)}; stored once: {result.cases_once}; "
          f"missing: {result.cases_missing}; duplicated: {result.cases_duplicated}; "
          f"given up: {client.given_up['complaint']}")
    print(f"alerts: {result.alerts} (low ratings with their alert: {result.low_with_alert} of {low}); "
          f"not notified: {result.unnotified}; without an in-app notice: {result.without_notice}")
    after_redis = drained(redis_down.end)
    print(f"inbox: peak {peak} rows, oldest row {oldest:.0f} s; the outage's backlog drained "
          + (f"{after_redis:.0f} s after Redis returned" if after_redis is not None else "NEVER after Redis returned"))
    print("everything caught up " + (f"{caught_up_after:.0f} s after the load ended" if caught_up_after is not None
                                     else f"NOT within {args.catch_up:.0f} s after the load ended"))
    print(f"processes: {'all alive, none restarted' if not died else f'EXITED: {died}'}; inbox job finished after "
          f"the PostgreSQL restart: {finished.isoformat(timespec='seconds') if finished else 'NO'}; heartbeat after "
          f"the Redis restart: {heartbeat.isoformat(timespec='seconds') if heartbeat else 'NO'}")
    for name in procs:
        text = (logs / f"{name}.log").read_text(errors="replace")
        print(f"  {name} log: {text.count('Traceback')} tracebacks, {len(text.splitlines())} lines")
    ok = (lost == 0 and result.duplicate_responses == 0 and result.cases_missing == 0 and result.cases_duplicated == 0
          and caught_up_after is not None and not errors_500 and not unanswered and not traces and not plain_503
          and any(a.status == 503 for a in in_pg) and not died
          and (args.no_scheduler or (finished is not None and heartbeat is not None)))
    print("result:", "PASS" if ok else "FAIL")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=3.0, help="ratings per second")
    parser.add_argument("--complaint-rate", type=float, default=0.3, help="complaints per second")
    parser.add_argument("--clients", type=int, default=48, help="submissions in flight at most")
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--redis-down", type=float, default=30)
    parser.add_argument("--between", type=float, default=25)
    parser.add_argument("--pg-down", type=float, default=15)
    parser.add_argument("--after", type=float, default=25)
    parser.add_argument("--catch-up", type=float, default=180, help="seconds allowed after the load to catch up")
    parser.add_argument("--no-scheduler", action="store_true", help="run without a scheduler (see above)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args()
    args.total = args.warmup + args.redis_down + args.between + args.pg_down + args.after

    workdir = Path(tempfile.mkdtemp(prefix="tingjian-faults-"))
    logs = workdir / "logs"
    logs.mkdir()
    pg, redis_server = LocalPostgres(workdir), LocalRedis(workdir)
    args.pg_version = pg.bin.parts[-2] if pg.bin.parts[-2].isdigit() else ""
    procs: dict = {}
    try:
        pg.init()
        pg.start()
        with psycopg.connect(pg.url(), autocommit=True) as admin:
            admin.execute('CREATE DATABASE "tingjian"')
        url = pg.url("tingjian")
        redis_server.start()
        path = prepare_database(url)
        from core import create_app

        app = create_app({"SERVER_NAME": "bench.local"})  # production config: prepare_database set the environment
        with psycopg.connect(url) as conn:
            institution_id = conn.execute("SELECT institution_id FROM touchpoint WHERE code = 'W-GH-01'").fetchone()[0]
            fill = conn.execute("SELECT coalesce(max(min_fill_seconds), 2.0) FROM survey_settings").fetchone()[0]

        env = app_env(url, TINGJIAN_REDIS_URL=redis_server.url, TINGJIAN_PROXY_COUNT="1", FLASK_APP="wsgi:app")
        port = free_port()
        venv = ROOT / ".venv" / "bin"
        procs["web"] = start([str(venv / "gunicorn"), "-w", "2", "--no-control-socket", "--preload",
                              "--log-level", "warning", "-b", f"127.0.0.1:{port}", "wsgi:app"], env, logs / "web.log")
        procs["worker"] = start([str(venv / "flask"), "worker"], env, logs / "worker.log")
        if not args.no_scheduler:
            procs["scheduler"] = start([str(venv / "flask"), "scheduler"], env, logs / "scheduler.log")
        wait_for(port, "/healthz")

        client = Client(port, path, f"/c/{institution_id}/new", fill_seconds=fill + 0.5, clients=args.clients)
        monitor = Monitor(url, client)
        monitor.start()
        load = threading.Thread(target=client.run, args=(args.total, args.rate, args.complaint_rate))
        load.start()
        redis_down, pg_down = Window(), Window()

        def sleep_until(at: float) -> None:
            time.sleep(max(0.0, at - client.now()))

        sleep_until(args.warmup)
        redis_down.start = client.now()
        redis_server.stop()
        sleep_until(redis_down.start + args.redis_down)
        redis_server.start()
        redis_down.end, redis_down.end_wall = client.now(), datetime.now(UTC)
        sleep_until(redis_down.end + args.between)
        pg_down.start = client.now()
        pg.stop()
        sleep_until(pg_down.start + args.pg_down)
        pg.start()
        pg_down.end, pg_down.end_wall = client.now(), datetime.now(UTC)
        load.join()
        load_end = client.now()

        caught_up_after = None
        deadline = time.monotonic() + args.catch_up
        while True:
            result = outcome(url, client, app, institution_id)
            proof = job_path_after(redis_server.url, pg_down.end_wall, redis_down.end_wall)
            if result.caught_up(client, notices=not args.no_scheduler) and (args.no_scheduler or all(proof)):
                caught_up_after = client.now() - load_end
                break
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        monitor.stopping.set()
        monitor.join()
        ok = report(args, client, monitor, redis_down, pg_down, result, caught_up_after, procs, proof, logs)
        return 0 if ok else 1
    finally:
        for proc in procs.values():
            stop(proc)
        redis_server.stop()
        try:
            pg.stop()
        except SystemExit:
            pass
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
