"""/healthz: database, Redis and scheduler state for load balancers and operators."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from core.extensions import db
from core.tasks import HEARTBEAT_KEY

bp = Blueprint("health", __name__)


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # report, don't raise: this is the health page
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def check_redis() -> tuple[str, str | None]:
    conn = current_app.extensions.get("redis")
    if conn is None:
        return "not configured", None
    try:
        conn.ping()
        beat = conn.get(HEARTBEAT_KEY)
    except Exception as exc:
        return f"error: {type(exc).__name__}", None
    return "ok", beat.decode() if beat else None


def heartbeat_stale(heartbeat: str | None) -> bool | None:
    if heartbeat is None:
        return None
    try:
        age = datetime.now(UTC) - datetime.fromisoformat(heartbeat)
    except ValueError:
        return True
    return age.total_seconds() > 300


@bp.get("/healthz")
def healthz():
    database = check_database()
    redis_state, heartbeat = check_redis()
    healthy = database == "ok" and redis_state in ("ok", "not configured")
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "redis": redis_state,
        # Where enqueue() sends jobs (see core.tasks.enqueue), not merely whether Redis answers.
        "jobs": "inline" if redis_state == "not configured" or current_app.config.get("JOBS_INLINE") else "rq",
        "scheduler_heartbeat": heartbeat,
        # The heartbeat job runs every minute; older than five means no scheduler or no worker.
        "scheduler_stale": heartbeat_stale(heartbeat),
        "time": datetime.now(UTC).isoformat(),
    }
    return jsonify(body), 200 if healthy else 503
