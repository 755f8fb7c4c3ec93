"""The patient's few seconds: public survey pages. No login, no JavaScript needed.

Every page is one server-rendered HTML document with its CSS inline and its
faces as inline SVG, so it arrives in one request (plus nothing: the favicon
is a data URL). A POST is committed before the thank-you page is shown, and a
retry of the same form (same submission id) shows the same thank-you page.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core import signing
from core.extensions import db
from core.public import (
    client_hashes,
    device_key,
    new_submission_id,
    public_page,
    render_notice,
    too_many_requests,
    valid_submission_id,
    with_device_cookie,
)
from core.ratelimit import client_address, limited
from organisation.models import Institution
from survey import alerts, definitions, inbox, qr, tasks, versioning
from survey.models import SurveySettings, TemplateVersion
from survey.submission import FORM_TOKEN_MAX_AGE, SubmissionError, find_by_submission_id

bp = Blueprint("patient", __name__)


def render_survey(version: TemplateVersion | dict[str, Any], *, action: str, context_key: str, heading: str,
                  subheading: str = "", values: Any = None, errors: dict[str, str] | None = None,
                  submission_id: str | None = None, status: int = 200):
    """The survey form for a version (or its definition); ``values`` refills a form that came back with errors."""
    definition = version if isinstance(version, dict) else version.definition
    body = render_template(
        "survey/patient/form.html", definition=definition, action=action, heading=heading,
        subheading=subheading, values=values or {}, errors=errors or {},
        submission_id=submission_id or new_submission_id(),
        form_token=signing.issue_form_token(context_key),
        window_mode=len(definition["items"]) <= 5)
    return with_device_cookie(make_response(body, status))


def form_values() -> dict[str, Any]:
    return {key: request.form.getlist(key) for key in request.form}


def read_context_timing(context_key: str) -> tuple[str | None, float | None]:

    problem, issued_at = signing.read_form_token(request.form.get("form_token", ""), context_key, FORM_TOKEN_MAX_AGE)
    fill = None
    if issued_at is not None:
        fill = round(time.time() - issued_at.timestamp(), 2)
    return problem, fill


def render_rejected(version: TemplateVersion | dict[str, Any], error: SubmissionError, *, action: str,
                    context_key: str, heading: str, subheading: str = ""):
    """The form again, 400, with what was typed and the message at the item it concerns.

    Call it after rolling back: nothing of the rejected submission was stored.
    """
    submission_id = request.form.get("submission_id", "")
    return render_survey(version, action=action, context_key=context_key, heading=heading, subheading=subheading,
                         values=form_values(), errors={error.item_code or "_form": str(error)},
                         submission_id=submission_id if len(submission_id) >= 16 else None, status=400)


def after_commit(alert_id: int | None) -> None:
    """Queue the notice of the alert a response just committed raised, if any; the alert sweep re-drives it."""

    if alert_id is not None:
        tasks.notify_alerts([alert_id])


@dataclass(frozen=True)
class ComplaintContact:
    """Where a patient turns with a complaint (templates/public/_contact.html): the institution's complaint form,
    when the complaints feature is installed, and the complaint phone and address its admin set."""

    institution_name: str
    complaint_url: str | None
    phone: str
    dial: str
    address: str


def complaint_contact(institution_id: int) -> ComplaintContact | None:
    institution = db.session.get(Institution, institution_id)
    if institution is None:
        return None
    complaint_url = None
    if institution.active and "complaints.intake" in current_app.view_functions:
        complaint_url = url_for("complaints.intake", institution_id=institution.id)
    return ComplaintContact(institution_name=institution.name, complaint_url=complaint_url,
                            phone=institution.complaint_phone, dial=institution.complaint_phone_dial,
                            address=institution.complaint_address)


def institution_name(institution_id: int) -> str:

    return db.session.scalar(select(Institution.name).where(Institution.id == institution_id)) or ""


# Every patient form (QR, discharge slip, staff token) shares these counters:
# a per-device limit, and a generous one per address so a hospital's shared
# Wi-Fi is never locked out.
limit_submissions = limited(("SURVEY_IP_LIMIT", client_address), ("SURVEY_DEVICE_LIMIT", device_key),
                            scope="survey")


@bp.errorhandler(429)
def too_many_submissions(error):
    """The patient's own notice (not the staff error page), with when to try again."""
    return too_many_requests(error, gettext("提交过于频繁"), gettext("请稍等一分钟后再试。您之前提交的评价已经收到。"))


@bp.route("/q/<token>", methods=["GET", "POST"])
@limit_submissions
def touchpoint_survey(token: str):
    # The hot path of the product: one query finds the code, its touchpoint,
    # the live version and the settings; the definition comes from a cache.
    info, problem = qr.lookup(token)
    if info is not None and problem == "retired":
        return public_page("public/notice.html", 410, title=gettext("此二维码已更换"),
                           message=gettext("请扫描服务点张贴的最新二维码进行评价。给您带来不便，敬请谅解。"),
                           contact=complaint_contact(info.institution_id))
    if info is not None and problem == "inactive":
        return public_page("public/notice.html", 410, title=gettext("该服务点已停用"),
                           message=gettext("该服务点目前不接受评价，感谢您的关注。"),
                           contact=complaint_contact(info.institution_id))
    if info is None:
        return render_notice(gettext("二维码无法识别"),
                             gettext("请确认扫描的是本院张贴的评价二维码，或向工作人员求助。"), 404)
    definition = versioning.published_definition(info.version_id) if info.version_id else None
    if definition is None:
        return render_notice(gettext("评价暂未开放"), gettext("该服务点的问卷正在更新，请稍后再试。"), 503)
    context_key = f"tp:{info.code_id}"
    if request.method == "POST":
        return accept(info, definition, context_key, token)
    return render_survey(definition, action=url_for("patient.touchpoint_survey", token=token),
                         context_key=context_key, heading=info.touchpoint_name,
                         subheading=institution_name(info.institution_id))


def accept(info: qr.CodeInfo, definition: dict[str, Any], context_key: str, token: str):
    """The QR rating POST: validate, write to the inbox, commit, 303 to the thank-you page."""

    form_problem, fill_seconds = read_context_timing(context_key)
    submission_id = request.form.get("submission_id", "")
    device_hash, ip_hash = client_hashes()
    try:
        inbox.accept_rating(info, definition, submission_id, request.form, form_problem=form_problem,
                            fill_seconds=fill_seconds, device_hash=device_hash, ip_hash=ip_hash)
    except SubmissionError as exc:
        db.session.rollback()
        return render_rejected(definition, exc, action=url_for("patient.touchpoint_survey", token=token),
                               context_key=context_key, heading=info.touchpoint_name,
                               subheading=institution_name(info.institution_id))
    db.session.commit()  # the row is durable before the patient is told it was received (see inbox._store)
    if inbox.processes_inline():
        tasks.process_ratings(submission_id=submission_id)
    elif inbox.stalled():
        tasks.process_while_stalled(submission_id)
    return redirect(url_for("patient.thanks", submission_id=submission_id), code=303)


@bp.get("/thanks/<submission_id>")
def thanks(submission_id: str):
    if not valid_submission_id(submission_id):
        abort(404)  # never a stored id; and a NUL byte would reach PostgreSQL as an error
    response = find_by_submission_id(submission_id)
    if response is None:
        waiting = inbox.pending(submission_id)
        if waiting is None:
            abort(404)
        meta = waiting.meta
        contact, low = _pending_outcome(meta.version_id, waiting.payload["form"],
                                        SurveySettings.of(meta.institution_id))
        return thanks_page(meta.institution_id, submission_id, contact=contact, low=low)
    definition = versioning.published_definition(response.template_version_id) or response.version.definition
    answers = [definitions.ParsedAnswer(a.item_code, a.value, a.score, a.not_applicable) for a in response.answers]
    return thanks_page(response.institution_id, response.submission_id,
                       contact=definitions.asks_for_contact(definition, answers),
                       low=alerts.response_is_low(response))


def _pending_outcome(version_id: int, form: dict[str, list[str]], settings: SurveySettings) -> tuple[bool, bool]:
    """(asked to be contacted, low) for a rating not yet processed, by the rules the job will apply to it."""
    definition = versioning.published_definition(version_id)
    if definition is None:
        return False, False
    fields = MultiDict(form)
    try:
        answers = definitions.parse_answers(definition, fields.get, fields.getlist)
    except definitions.AnswerError:  # checked on receipt: only a corrupt row gets here
        return False, False
    return (definitions.asks_for_contact(definition, answers),
            alerts.is_low_rating(definitions.overall_score(definition, answers), settings))


def thanks_page(institution_id: int, submission_id: str, *, contact: bool, low: bool):
    """"Received", with the way to a formal complaint once the complaint intake exists."""
    complaint_url = None
    if "complaints.intake" in current_app.view_functions:
        complaint_url = url_for("complaints.intake", institution_id=institution_id, response=submission_id)
    return with_device_cookie(make_response(render_template(
        "survey/patient/thanks.html", complaint_url=complaint_url, contact=contact, low=low)))
