"""What every staff page shares: form -> service -> commit, paging, and table downloads."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from flask import Response, flash, redirect, render_template, request, stream_with_context
from werkzeug.wsgi import wrap_file

from core import tabular
from core.extensions import db
from core.forms import FlaskForm
from core.services import ServiceError

PAGE_SIZE = 50
MAX_PAGE = 100_000


def handle_form(form: FlaskForm, action: Callable[[], Any], *, success: str, next_url: Callable[[Any], str],
                template: str | None = None, render: Callable[[FlaskForm, int], Any] | None = None,
                after: Callable[[Any], None] | None = None, redirect_code: int = 302,
                page: Callable[[Any], Any] | None = None, **context: Any):
    """Validate, run the service, commit once, flash and redirect; otherwise re-render the form.

    A refusal (core.services.ServiceError) rolls back everything the action did, puts its message
    on the field it names (or the form), and answers with its status: 400 for bad input, 403 for
    an action the user may not take, 409 for a page older than the row. ``after`` runs after the
    commit (queue jobs there: they must see the committed rows). ``render(form, status)`` replaces
    the default ``render_template(template, form=form, **context)``. ``redirect_code`` 303 says
    "GET the next page" where a 302 could be read as "repeat the POST" (the case page's buttons).
    ``page(result)`` answers with a page instead of the flash and the redirect: the one way to show a
    one-time secret (a generated password), which must never travel through flash or the session cookie.
    """
    status = 200
    if form.validate_on_submit():
        try:
            result = action()
        except ServiceError as exc:
            db.session.rollback()  # nothing of a refused action may reach a later commit
            add_form_error(form, exc)
            status = exc.status
        else:
            db.session.commit()
            if after is not None:
                after(result)
            if page is not None:
                return page(result)
            flash(success, "success")
            return redirect(next_url(result), code=redirect_code)
    elif request.method == "POST":
        status = 400
    if render is not None:
        return render(form, status)
    if template is None:
        raise TypeError("handle_form needs a template or a render function")
    return render_template(template, form=form, **context), status


def add_form_error(form: FlaskForm, error: ServiceError | str, field: str | None = None) -> None:
    """Show ``error`` at the form field it names, or at the top of the form."""
    name = field if field is not None else getattr(error, "field", None)
    target = form._fields.get(name) if name else None
    if target is not None:
        target.errors = [*target.errors, str(error)]
    else:
        form.form_errors.append(str(error))


def paginate(stmt, per_page: int = PAGE_SIZE):
    """One page of ``stmt``; an absurd ?page= gives an empty page instead of a database overflow (500)."""
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    return db.paginate(stmt, page=page, per_page=per_page, error_out=False)


# Downloads (core.tabular writes them) -----------------------------------------------------

_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\"]')


def content_disposition(filename: str, fallback: str | None = None) -> str:
    """attachment; an ASCII filename= for old clients and the UTF-8 filename*= (RFC 6266 / RFC 5987) for the rest."""
    filename = _UNSAFE_IN_NAME.sub("_", filename)
    ascii_name = _UNSAFE_IN_NAME.sub("_", fallback) if fallback else _ascii_fallback(filename)
    ascii_name = ascii_name.encode("ascii", "ignore").decode() or "download"
    if ascii_name == filename:
        return f'attachment; filename="{ascii_name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _ascii_fallback(filename: str) -> str:
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    folded = re.sub(r"[^A-Za-z0-9._-]+", "-", folded).strip("-._") or "download"
    return f"{folded}.{extension}" if extension else folded


def send_table(fmt: str, sheets: tabular.Sheet | Sequence[tabular.Sheet], *, filename: str,
               fallback: str | None = None) -> Response:
    """A download response: ``csv`` streams the first sheet; ``xlsx`` writes every sheet, then streams the file.

    For use in a view: the CSV's rows are read while the response streams (the request
    context is kept for them); the XLSX's are read before the view returns.
    """
    sheet_list = [sheets] if isinstance(sheets, tabular.Sheet) else list(sheets)
    headers = {"Content-Disposition": content_disposition(filename, fallback),
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if fmt == "csv":
        first = sheet_list[0]
        return Response(stream_with_context(tabular.write_csv(first.header, first.rows)), content_type=tabular.CSV_MIME,
                        headers=headers)
    if fmt != "xlsx":
        raise ValueError(f"unknown table format {fmt!r}; one of {tabular.FORMATS}")
    written = tabular.write_xlsx(sheet_list)
    # wrap_file streams the file in blocks and closes it (deleting it) when the response is closed.
    return Response(wrap_file(request.environ, written.file, buffer_size=64 * 1024), content_type=tabular.XLSX_MIME,
                    headers={**headers, "Content-Length": str(written.size)}, direct_passthrough=True)
