"""Error pages in the user's language, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import escape
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
