"""How long a complainant's name and phone number are kept, and the nightly purge that ends it.

The name and phone exist to answer the complainant, to send the satisfaction link, to take a
重办 request and to call back on a key complaint (重点投诉回访, one of the 2021 十应当). Once
a case is finished (已办结, 当场办结 or 不予受理: ``Status.finished()``, counted from
``closed_at``) and the institution's retention period has passed, the nightly
``complaints-contact-purge`` job nulls both and stamps ``contact_purged_at``; everything else
— the case, its subject, timeline, replies, rectifications, the ledger and the statistics —
is kept. Open cases are never purged, however old. The audit entry records counts only.

The defaults, and what they rest on:

- **365 days** (``ComplaintSettings.complainant_retention_days``). No rule found sets a
  retention period for complaint files: 医疗机构投诉管理办法 asks hospitals to "建立健全投诉档案，
  立卷归档，留档备查" without one (shared/reference/complaints.md, quoted from memory there).
  PIPL art. 19 asks that personal information be kept "为实现处理目的所必要的最短时间"
  (quoted from memory, not checked against the text here). A year covers the satisfaction
  link and any 重办 request (days to weeks after closing), call-backs on key complaints, and
  the annual complaint statistics that group repeat complainants by phone number.
- **1,095 days, three years** (``dispute_retention_days``) for cases that are or may become a
  medical dispute (医疗纠纷): a quality-and-safety case (flagged as an emergency, or of a
  quality-and-safety category), a case declined because it went to court, to mediation or
  to the health authority or 信访, and a case whose clock was ever paused for mediation or
  expert assessment. Three years is the general limitation period for civil claims (民法典
  第一百八十八条, from memory, not checked here), within which the hospital may have to
  answer the same person in court or mediation; 医疗纠纷预防和处理条例 第二十四条 also uses three
  years for sealed records of an unresolved dispute (shared/reference/complaints.md).

An institution sets both on its complaint settings page; the dispute period may not be
shorter than the ordinary one, nor the ordinary one shorter than the satisfaction link's
validity (``feedback_valid_days``).

What the purge does not reach: free text that staff or the complainant wrote (the subject,
the description, replies, notes) is kept as written, so do not put names or numbers there;
attachments are kept with the case; database backups keep what they held until they expire.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, and_, exists, or_, select, update

from complaints.models import CasePause, Category, Complaint, DeclineReason, PauseReason, Status
from complaints.settings import complaint_settings
from core.audit import record
from core.extensions import db
from organisation.models import Institution

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

SYSTEM = "complaints-contact-purge"

DISPUTE_DECLINES = (DeclineReason.IN_COURT, DeclineReason.IN_MEDIATION, DeclineReason.BEFORE_AUTHORITY)
DISPUTE_PAUSES = (PauseReason.MEDIATION, PauseReason.EXPERT_ASSESSMENT)
FINISHED = Status.values(Status.finished())


def dispute_sql() -> ColumnElement[bool]:
    """True for a case that is or may become a medical dispute (医疗纠纷): its contact data is kept longer."""
    # Each term is false, never NULL, on a case without a category or a decline reason: the negation
    # selecting the ordinary cases must not lose them to SQL's unknown.
    return or_(
        Complaint.safety_emergency.is_(True),
        and_(Complaint.category_id.is_not(None),
             Complaint.category_id.in_(select(Category.id).where(Category.safety.is_(True)))),
        and_(Complaint.decline_reason.is_not(None),
             Complaint.decline_reason.in_([r.value for r in DISPUTE_DECLINES])),
        exists().where(CasePause.complaint_id == Complaint.id,
                       CasePause.reason.in_([r.value for r in DISPUTE_PAUSES])))


def _holds_contact() -> ColumnElement[bool]:
    return and_(Complaint.contact_purged_at.is_(None),
                or_(Complaint.complainant_name.is_not(None), Complaint.complainant_phone.is_not(None)))


def purge_complainant_contacts(*, now: datetime) -> dict[str, int]:
    """Null the complainant's name and phone of every finished case past its institution's retention period.

    Idempotent: a purged case is stamped (contact_purged_at) and never touched again. Returns
    the counts: ``cases`` purged, of which ``disputes``. The caller commits.
    """
    purged = {"cases": 0, "disputes": 0}
    institution_ids = sorted(db.session.scalars(
        select(Complaint.institution_id).where(Complaint.status.in_(FINISHED), Complaint.closed_at.is_not(None),
                                               _holds_contact()).distinct()))
    for institution_id in institution_ids:
        settings = complaint_settings(institution_id)
        ordinary = _purge(institution_id, ~dispute_sql(), now - timedelta(days=settings.complainant_retention_days),
                          now)
        disputes = _purge(institution_id, dispute_sql(), now - timedelta(days=settings.dispute_retention_days), now)
        if ordinary or disputes:
            # Counts only: never a name, a number or a case number.
            record(SYSTEM, "complaints.purge_complainant_contacts", db.session.get(Institution, institution_id),
                   {"cases": ordinary + disputes, "disputes": disputes,
                    "retention_days": settings.complainant_retention_days,
                    "dispute_retention_days": settings.dispute_retention_days})
        purged["cases"] += ordinary + disputes
        purged["disputes"] += disputes
    # Bulk UPDATEs bypass the identity map: reload these attributes of any case already loaded.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Complaint):
            db.session.expire(obj, ["complainant_name", "complainant_phone", "contact_purged_at"])
    return purged


def _purge(institution_id: int, kind: ColumnElement[bool], closed_before: datetime, now: datetime) -> int:
    # The case's version is left alone: the purge must not turn an officer's open page into a 409.
    result = db.session.execute(
        update(Complaint)
        .where(Complaint.institution_id == institution_id, Complaint.status.in_(FINISHED),
               Complaint.closed_at < closed_before, _holds_contact(), kind)
        .values(complainant_name=None, complainant_phone=None, contact_purged_at=now)
        .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount
