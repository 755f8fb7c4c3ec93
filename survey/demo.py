"""Demo ratings: a month of plausible window and ward responses, so staff pages show real data."""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

from sqlalchemy import select

from core.db import utcnow
from core.extensions import db
from organisation.models import Touchpoint
from survey import definitions
from survey.alerts import alert_reasons
from survey.models import AlertStatus, Channel, RecoveryAlert, SurveyAnswer, SurveyResponse, TouchpointCode
from survey.submission import raise_alert_if_needed, settings_for
from survey.tasks import notify_alert

COMMENTS_GOOD = ["工作人员很耐心，谢谢！", "办事效率高，不用排队。", "态度很好，解释得很清楚。", "环境干净，指引清楚。"]
COMMENTS_BAD = ["排队时间太长了，窗口开得太少。", "收费员态度不好，问两遍就不耐烦。", "流程不清楚，来回跑了好几趟。",
                "自助机总是坏，没人管。"]
# Weights of the five faces: most patients are satisfied, a few are not.
FACE_WEIGHTS = [3, 5, 12, 35, 45]


def seed_responses(*, days: int = 30, per_touchpoint_per_day: tuple[int, int] = (2, 12), seed: int = 2026) -> int:
    """Create responses for every touchpoint with a live code; returns how many."""
    rng = random.Random(seed)
    now = utcnow()
    created = 0
    codes = db.session.scalars(select(TouchpointCode).where(TouchpointCode.retired_at.is_(None))).all()
    for code in codes:
        version = code.template.published
        touchpoint: Touchpoint = code.touchpoint
        definition = version.definition
        settings = settings_for(code.institution_id)
        for day in range(days):
            for _ in range(rng.randint(*per_touchpoint_per_day)):
                submitted = now - timedelta(days=day, minutes=rng.randint(0, 9 * 60))
                answers = _answers(rng, definition)
                flags = ["too_fast"] if rng.random() < 0.03 else []
                response = SurveyResponse(
                    institution_id=code.institution_id, submission_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    template_version_id=version.id, channel=Channel.TOUCHPOINT_QR.value,
                    department_id=touchpoint.department_id, touchpoint_id=touchpoint.id, code_id=code.id,
                    submitted_at=submitted, fill_seconds=round(rng.uniform(1.0 if flags else 3, 90), 1),
                    overall_score=definitions.overall_score(definition, answers),
                    comment="\n".join(str(a.value) for a in answers if isinstance(a.value, str)
                                      and a.code.endswith("_COMMENT")),
                    flags=flags, excluded=bool(flags),
                    answers=[SurveyAnswer(item_code=a.code, value=a.value, score=a.score,
                                          not_applicable=a.not_applicable) for a in answers])
                db.session.add(response)
                created += 1
                by_code = {a.code: a for a in answers}
                if day < 3 and alert_reasons(definition, by_code, settings, contact_requested=False):
                    db.session.flush()
                    raise_alert_if_needed(response, definition, by_code, settings, contact_requested=False)
        db.session.flush()
    return created


def _answers(rng: random.Random, definition) -> list[definitions.ParsedAnswer]:
    face = rng.choices(["1", "2", "3", "4", "5"], weights=FACE_WEIGHTS)[0]
    answers = []
    for item in definition["items"]:
        if item.get("show_if") and int(face) > 3:
            continue
        if item["type"] == definitions.SCALE5:
            value = face if item.get("role") == "overall" else rng.choices(["1", "2", "3", "4", "5"],
                                                                            weights=FACE_WEIGHTS)[0]
        elif item["type"] == definitions.MULTI:
            value = rng.sample([o["value"] for o in item["options"]], k=rng.randint(1, 2))
        elif item["type"] == definitions.TEXT:
            if rng.random() > 0.25:
                continue
            value = rng.choice(COMMENTS_BAD if int(face) <= 2 else COMMENTS_GOOD)
        elif item.get("contact") or item.get("alert_values"):
            value = "no"
        else:
            options = item["options"]
            value = rng.choices([o["value"] for o in options], weights=range(1, len(options) + 1))[0]
        option = next((o for o in item["options"] if o["value"] == value), None) if isinstance(value, str) else None
        score = option["score"] if option and not option["na"] else None
        answers.append(definitions.ParsedAnswer(item["code"], value, score, bool(option and option["na"])))
    return answers


def send_demo_notices(per_institution: int = 4) -> int:
    """The service-recovery notices of each institution's newest open alerts, sent by the job that sends them
    (the bulk-written alerts told nobody; a working office's officers and handlers would have been told)."""
    db.session.commit()  # the alerts first: the notice job commits as it goes
    sent = 0
    for institution_id in db.session.scalars(select(RecoveryAlert.institution_id).distinct()).all():
        newest = db.session.scalars(select(RecoveryAlert.id).where(
            RecoveryAlert.institution_id == institution_id, RecoveryAlert.status == AlertStatus.OPEN)
            .order_by(RecoveryAlert.created_at.desc(), RecoveryAlert.id.desc()).limit(per_institution)).all()
        sent += sum(1 for alert_id in newest if notify_alert(alert_id))
    return sent
