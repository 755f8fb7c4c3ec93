"""Error pages in the user's language, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from core.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("请求无效"), _l("提交的内容无法处理，请返回上一页检查后重试。")),
    403: (_l("无权访问"), _l("您没有权限查看此页面。如有需要，请联系本院管理员。")),
    404: (_l("页面不存在"), _l("您访问的页面不存在或已被移除。")),
    405: (_l("请求方式不被允许"), _l("请返回上一页重试。")),
    413: (_l("文件过大"), _l("上传的文件超过了允许的大小。")),
    429: (_l("操作过于频繁"), _l("请稍等片刻再试。")),
    500: (_l("服务器出错了"), _l("我们已记录此问题，请稍后再试。您已提交的内容不会丢失。")),
    503: (_l("服务暂不可用"), _l("请稍后再试。")),
}
UNAVAILABLE_MESSAGE = _l("系统暂时无法处理您的请求，请过一两分钟再试。如果您刚才提交了内容而没有看到成功的提示，"
                         "请稍后再提交一次。")
RETRY_AFTER_SECONDS = 30


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.path.startswith("/api/") or (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def render_error(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    if wants_json():
        return jsonify(error=str(title), message=str(detail or message)), code
    try:
        return render_template("core/error.html", code=code, title=title, message=detail or message), code
    except Exception:  # the page itself failed (e.g. database down): plain text, still translated
        log.exception("error page failed to render")
        body = f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title><h1>{escape(title)}</h1>" \
               f"<p>{escape(detail or message)}</p>"
        return body, code, {"Content-Type": "text/html; charset=utf-8"}


def database_unavailable(error: Exception) -> bool:
    """Whether a database error means the database cannot be reached now (down, restarting, the connection lost):
    nobody's fault and over in a while, unlike a bug or bad data."""
    return isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated)


def render_unavailable():
    """The 503 page of a database outage: it needs nothing from the database (no user, no layout with a menu)."""
    title = MESSAGES[503][0]
    if wants_json():
        response = make_response(jsonify(error=str(title), message=str(UNAVAILABLE_MESSAGE)), 503)
    else:
        response = make_response(render_template("public/notice.html", title=title, message=UNAVAILABLE_MESSAGE), 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(400, gettext("页面已过期，请刷新后重新提交。"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = make_response(render_error(error.code or 500))
        for name, value in error.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        if not database_unavailable(error):
            return unhandled(error)
        # One line, no traceback: during an outage every request fails the same way.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, type(error.orig).__name__)
        try:
            db.session.rollback()
        except Exception:  # pragma: no cover - the connection is gone already
            pass
        return render_unavailable()

    @app.errorhandler(Exception)
    def unhandled(error: Exception):
        if isinstance(error, HTTPException):  # pragma: no cover - handled above
            return http_error(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        try:
            db.session.rollback()
        except Exception:  # pragma: no cover - the database may be the problem
            log.exception("rollback after error failed")
        return render_error(InternalServerError.code)
