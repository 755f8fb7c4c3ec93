"""Organisation admin: bulk import of departments, touchpoints and staff, and the audit trail."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, flash, render_template, request
from flask_babel import gettext
from sqlalchemy import select

from core.audit import AuditEntry, action_label, describe, target_type_label
from core.clock import local_day_bounds
from core.extensions import db
from core.views import paginate
from organisation import importer
from organisation.forms import (
    AuditFilterForm,
    ImportForm,
)
from organisation.models import Institution, Role
from organisation.scope import (
    Permission,
    get_institution_or_404,
    visible_institution_ids,
)
from organisation.views import actor, bp

# Bulk import -----------------------------------------------------------

@bp.route("/i/<int:institution_id>/import", methods=["GET", "POST"])
def import_rows(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = importer.import_file(institution, form.kind.data, upload.filename, upload.stream,
                                          dry_run=form.dry_run.data, actor=actor())
        except importer.ImportFileError as exc:
            form.file.errors.append(str(exc))
        else:
            if report.ok and not form.dry_run.data:
                db.session.commit()
                flash(gettext("导入成功：新增 %(created)d 行，更新 %(updated)d 行。", created=report.created,
                              updated=report.updated), "success")
            else:
                db.session.rollback()
    status = 400 if (request.method == "POST" and (form.errors or (report and not report.ok))) else 200
    return render_template("organisation/import.html", institution=institution, form=form, report=report,
                           columns=importer.COLUMNS), status


@bp.get("/i/<int:institution_id>/import/template/<kind>.csv")
def import_template(institution_id: int, kind: str):
    get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    if kind not in importer.COLUMNS:
        abort(404)
    return Response(importer.template_csv(kind), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={kind}-template.csv"})


# Audit -----------------------------------------------------------------

def audit_scope(stmt, institution: Institution | None):
    """Restrict an audit query to one institution, or to every institution the user sees."""
    if institution is not None:
        return stmt.where(AuditEntry.institution_id == institution.id)
    ids = visible_institution_ids(actor())
    return stmt if ids is None else stmt.where(AuditEntry.institution_id.in_(ids))


def audit_query(form: AuditFilterForm, institution: Institution | None):
    stmt = audit_scope(select(AuditEntry), institution).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if form.validate():
        if form.actor.data:
            stmt = stmt.where(AuditEntry.actor_label.ilike(f"%{form.actor.data.strip()}%"))
        if form.action.data:
            stmt = stmt.where(AuditEntry.action.startswith(form.action.data.strip()))
        if form.target_type.data:
            stmt = stmt.where(AuditEntry.target_type == form.target_type.data.strip())
        if form.target_id.data:
            stmt = stmt.where(AuditEntry.target_id == form.target_id.data.strip())
        if form.date_from.data:
            stmt = stmt.where(AuditEntry.created_at >= local_day_bounds(date.fromisoformat(form.date_from.data))[0])
        if form.date_to.data:
            end = date.fromisoformat(form.date_to.data) + timedelta(days=1)
            stmt = stmt.where(AuditEntry.created_at < local_day_bounds(end)[0])
    return stmt


def _render_audit(institution: Institution | None):
    form = AuditFilterForm(request.args)
    stmt = audit_query(form, institution)
    page = paginate(stmt)
    # Offer only actions and target types the user could see entries for: other hospitals' activity stays invisible.
    actions = _choices(AuditEntry.action, institution, action_label)
    target_types = _choices(AuditEntry.target_type, institution, target_type_label)
    status = 400 if form.errors else 200
    return render_template("organisation/audit.html", form=form, page=page, institution=institution,
                           rows=[describe(entry) for entry in page.items], actions=actions,
                           target_types=target_types), status


def _choices(column, institution: Institution | None, label) -> list[tuple[str, str]]:
    """The distinct stored values of ``column`` in the user's entries, by their labels."""
    values = db.session.scalars(audit_scope(select(column).distinct(), institution)).all()
    return sorted(((value, label(value)) for value in values), key=lambda choice: choice[1])


@bp.get("/i/<int:institution_id>/audit")
def audit(institution_id: int):
    return _render_audit(get_institution_or_404(institution_id, Permission.VIEW_AUDIT))


@bp.get("/admin/audit")
def audit_all():
    user = actor()
    if not user.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN):
        abort(403)
    return _render_audit(None)
