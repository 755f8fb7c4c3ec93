"""RQ worker and scheduler that run jobs inside an app context."""
from __future__ import annotations

from flask import Flask
from rq import Worker

_app: Flask | None = None


def get_app() -> Flask:
    global _app
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app


def use_app(app: Flask) -> None:
    """Let ``flask worker`` hand over the app it already built."""
    global _app
    _app = app


class FlaskWorker(Worker):
    """Pushes an app context around every job; a fresh session per job."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        get_app()

    def perform_job(self, job, queue, *args, **kwargs):
        app = get_app()
        with app.app_context():
            if getattr(self, "_is_horse", False):
                from core.extensions import db

                db.engine.dispose(close=False)  # never share pooled sockets across fork
            return super().perform_job(job, queue, *args, **kwargs)
