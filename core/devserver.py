"""`flask serve`: the embedded mode's web server (`make run`), which does not name versions.

`flask run` is Werkzeug's development server, and its handler sends ``Server: Werkzeug/3.1.9
Python/3.11.7`` before the app's headers, where the app cannot change it (ASVS 14.3.3: no version
details of components). This command runs the same server with a handler that says ``tingjian``.
In production gunicorn writes its own ``Server: gunicorn`` (gunicorn 20 and later: no version) and
nginx, in front, replaces it with its own, versionless with ``server_tokens off`` (docs/deployment.md).
"""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import WSGIRequestHandler, run_simple

SERVER_NAME = "tingjian"


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler with a Server header that names no product version."""

    def version_string(self) -> str:
        return SERVER_NAME


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the app for the embedded mode (threaded, no reloader, no debugger)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_simple(host, port, app, threaded=True, request_handler=RequestHandler)


def init_app(app: Flask) -> None:
    app.cli.add_command(serve_command)
