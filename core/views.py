"""What every staff page shares: form -> service -> commit, and paging."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request
from flask_wtf import FlaskForm

from core.extensions import db
from core.services import ServiceError

PAGE_SIZE = 50
MAX_PAGE = 100_000


def handle_form(form: FlaskForm, action: Callable[[], Any], *, success: str, next_url: Callable[[Any], str],
                template: str | None = None, render: Callable[[FlaskForm, int], Any] | None = None,
                after: Callable[[Any], None] | None = None, **context: Any):
    """Validate, run the service, commit once, flash and redirect; otherwise re-render the form.

    A refusal (core.services.ServiceError) rolls back everything the action did, puts its message
    on the field it names (or the form), and answers with its status: 400 for bad input, 403 for
    an action the user may not take, 409 for a page older than the row. ``after`` runs after the
    commit (queue jobs there: they must see the committed rows). ``render(form, status)`` replaces
    the default ``render_template(template, form=form, **context)``.
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
            flash(success, "success")
            if after is not None:
                after(result)
            return redirect(next_url(result))
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
