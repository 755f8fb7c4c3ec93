"""What one POST of an intake form (the complainant's own, or the officer's) goes through before it registers
a complaint or comes back: its files made ready, every problem collected, the files kept.

- **Every problem at once.** WTForms checks every field; the intake service's own refusals
  (complaints.intake.check_complaint) are collected next to them, so a person corrects everything after
  one submit. A service refusal of a field WTForms already marked is not shown twice.
- **Nothing chosen is lost.** When the form comes back, the files it carried are kept, checked and
  downscaled, for its submission id (complaints.attachments) and shown as already attached; a kept file
  whose "删除" box was ticked is removed. A body too large to take comes back with its text
  (complaints.uploads) and the names of the files that did not come through.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g, request
from flask_babel import gettext, ngettext

from complaints import attachments
from complaints.forms_intake import OfficerComplaintForm, PublicComplaintForm, parse_local_datetime
from complaints.models import Category, Channel
from complaints.uploads import uploads_of
from core.clock import local_timezone
from core.extensions import db
from core.forms import FlaskForm
from core.inputs import DB_INT_MAX
from core.public import ip_prefix
from core.ratelimit import retry_after
from core.services import ServiceError
from organisation.models import Department, Institution, Touchpoint
from survey import alerts

REMOVE_FIELD = "remove_file"


@dataclass
class FormSubmission:
    """One POST of an intake form. ``status`` is what the page answers if it comes back (400 by default)."""

    institution_id: int
    submission_id: str
    form: FlaskForm
    field_names: dict[str, str] = field(default_factory=dict)  # service field → this form's field
    public: bool = False
    files: list[attachments.Prepared] = field(default_factory=list)
    problems: list[tuple[str | None, str]] = field(default_factory=list)  # this module's own
    refusals: list[tuple[str | None, str]] = field(default_factory=list)  # the intake service's
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)
    removed: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, institution_id: int, form: FlaskForm, submission_id: str, **options: Any) -> FormSubmission:
        """Remove the kept files whose box was ticked, prepare the chosen ones, note what a too-large body lost."""
        submission = cls(institution_id, submission_id, form, **options)
        submission.removed = [int(v) for v in request.form.getlist(REMOVE_FIELD)
                              if v.isascii() and v.isdigit() and int(v) <= DB_INT_MAX]
        submission._remove_ticked()
        ready, refused = attachments.prepare_all(uploads_of(form._fields["attachments"]))
        submission.files = ready
        for error in refused:
            submission.refuse(str(error), error.field)
        dropped = g.get("intake_files_dropped") or []
        if dropped:
            total_mb = attachments.MAX_ATTACHMENTS * attachments.MAX_UPLOAD_BYTES // (1024 * 1024)
            submission.refuse(gettext("上传的文件合计太大（超过 %(mb)d MB），这次没有收到：%(names)s。"
                                      "您填写的文字都还在；请少选几个文件，或压缩后重新选择。", mb=total_mb,
                                      names="、".join(dropped)), "attachments", status=413)
        return submission

    def _remove_ticked(self) -> None:
        for file_id in self.removed:
            attachments.remove_pending(self.institution_id, self.submission_id, file_id)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.refusals

    def add(self, error: ServiceError) -> None:
        """Collect a service refusal (every problem of an IntakeError)."""
        self.refusals.extend(getattr(error, "problems", None) or [(error.field, str(error))])

    def refuse(self, message: str, field_name: str | None = None, *, status: int | None = None) -> None:
        self.problems.append((field_name, message))
        if status is not None:
            self.status = status

    def check(self, checks: Callable[[], Any]) -> None:
        """Run the service's checks and collect what they refuse."""
        try:
            checks()
        except ServiceError as exc:
            self.add(exc)

    def kept_count(self) -> int:
        return len(attachments.pending_files(self.institution_id, self.submission_id))

    def come_back(self) -> None:
        """The form is not registered: keep its files for the next submit, put every problem on its field."""
        db.session.rollback()  # whatever a refused registration wrote
        self._remove_ticked()
        if self.files and self._may_keep(len(self.files)):
            kept = attachments.keep_pending(self.institution_id, self.submission_id, self.files)
            if kept < len(self.files):
                names = "、".join(f.filename for f in self.files[kept:])
                self.refuse(gettext("最多 %(n)d 个文件，这些没有保留：%(names)s。", n=attachments.MAX_ATTACHMENTS,
                                    names=names), "attachments")
        elif self.files:
            self.refuse(gettext("这次选择的文件没能暂存，请提交时重新选择。"), "attachments")
        db.session.commit()
        self._show()

    def _may_keep(self, count: int) -> bool:
        """Public forms keep at most COMPLAINT_PENDING_NETWORK_LIMIT files per network (a flood must not fill the
        database with files that never become a complaint)."""
        if not self.public:
            return True
        limit = current_app.config["COMPLAINT_PENDING_NETWORK_LIMIT"]
        key = f"complaint-pending:{self.institution_id}:{ip_prefix()}"
        return retry_after([(limit, key)] * count) is None

    def _show(self) -> None:
        """Every problem on its field (or above the form); a service refusal of a field WTForms already marked is
        the same mistake said twice, and is left out."""
        fields = self.form._fields
        marked = {name for name, f in fields.items() if f.errors}
        shown: set[tuple[str | None, str]] = set()
        for from_service, problems in ((False, self.problems), (True, self.refusals)):
            for service_field, message in problems:
                name = self.field_names.get(service_field or "", service_field)
                target = fields.get(name) if name else None
                if (name, message) in shown or (from_service and name in marked):
                    continue
                shown.add((name, message))
                if target is not None:
                    target.errors = [*target.errors, message]
                else:
                    self.form.form_errors.append(message)


# What each form gives the intake service, and the public form's cap ------------------------------------

def _chosen(model: Any, field: Any) -> Any:
    """The row a select or radio field names, once the form has checked it is one of the choices (a made-up id,
    beyond the database's integers among them, is the field's error, never a query)."""
    return db.session.get(model, field.data) if field.data and not field.errors else None


def public_values(institution: Institution, form: PublicComplaintForm,
                   rating: alerts.RatingLink | None) -> dict[str, Any]:
    """What the complainant's form gives the intake service (also when some fields failed)."""
    department = _chosen(Department, form.department)
    category = _chosen(Category, form.category)
    return {
        "channel": Channel.SURVEY_ALERT if rating is not None and rating.low else Channel.SELF_SERVICE,
        "received_at": datetime.now(UTC), "subject": "", "description": form.description.data or "",
        "wish": form.wish.data or "", "category": category,
        "touchpoint": (db.session.get(Touchpoint, rating.touchpoint_id)
                       if rating is not None and rating.touchpoint_id else None),
        "departments_concerned": [department] if department is not None else [],
        "complainant_name": form.complainant_name.data, "complainant_phone": form.complainant_phone.data,
        "relation": form.relation.data or "", "rating": rating,
    }


def staff_values(form: OfficerComplaintForm) -> dict[str, Any]:
    """What the officer's form gives the intake service (also when some fields failed)."""
    try:
        received_at: datetime | None = (parse_local_datetime(form.received_at.data or "")
                                        .replace(tzinfo=local_timezone()).astimezone(UTC))
    except ValueError:
        received_at = None  # the form says what is wrong with it
    department_ids = [i for i in (form.departments.data or []) if isinstance(i, int)]
    return {
        "channel": form.channel.data if Channel.is_value(form.channel.data) else Channel.WALK_IN,
        "channel_ref": form.channel_ref.data or "", "received_at": received_at,
        "subject": form.subject.data or "", "description": form.description.data or "", "wish": form.wish.data or "",
        "category": _chosen(Category, form.category),
        "touchpoint": _chosen(Touchpoint, form.touchpoint),
        "departments_concerned": ([d for d in (db.session.get(Department, i) for i in department_ids) if d]
                                  if not form.departments.errors else []),
        "staff_involved": form.staff_involved.data or "", "complainant_name": form.complainant_name.data,
        "complainant_phone": form.complainant_phone.data, "relation": form.relation.data or "",
    }


def network_wait(institution: Institution) -> int | None:
    """Count a complaint about to be registered from this network; the seconds to wait when over the caps."""
    limit = current_app.config["COMPLAINT_INTAKE_NETWORK_LIMIT"]
    return retry_after([(limit, f"complaint-network:{institution.id}:{ip_prefix()}")])


def wait_text(seconds: int) -> str:
    if seconds < 3600:
        minutes = max(1, -(-seconds // 60))
        return ngettext("%(num)d 分钟", "%(num)d 分钟", minutes)
    hours = -(-seconds // 3600)
    return ngettext("%(num)d 小时", "%(num)d 小时", hours)
