"""The complainant's progress lookup (查询办理进度): case number and code, no login (check C9).

Failed tries count per case, device and network: too many for a case or a device lock the lookup for a
while, too many from a network slow it down (complaints.lookup); the code is never echoed back, and the
page is never cached.
"""
from __future__ import annotations

from flask import request
from flask_babel import gettext
from sqlalchemy import select

from complaints import lookup
from complaints.blueprints import public_bp
from complaints.forms_intake import LookupForm
from core.extensions import db
from core.public import device_id, device_key, ip_prefix, public_page
from core.ratelimit import client_address, limited
from organisation.models import Institution


def _lookup_institutions() -> list[tuple[int, str]]:
    return [(i.id, i.name) for i in db.session.scalars(
        select(Institution).where(Institution.active.is_(True)).order_by(Institution.name))]


@public_bp.route("/lookup", methods=["GET", "POST"], endpoint="lookup")
@limited(("COMPLAINT_LOOKUP_IP_LIMIT", client_address))
def lookup_page():
    """The complainant's progress lookup by case number and code (check C9)."""
    form = LookupForm()
    fixed = request.values.get("i", type=int)
    institution = db.session.get(Institution, fixed) if fixed else None
    if institution is not None and not institution.active:
        institution = None
    choices = _lookup_institutions()
    form.institution.choices = [("", gettext("请选择"))] + choices
    if institution is None and len(choices) == 1:
        institution = db.session.get(Institution, choices[0][0])
    if request.method == "GET":
        if institution is not None:
            form.institution.data = institution.id
        form.case_number.data = lookup.normalise_case_number(request.args.get("n", ""))[:40] if request.args.get(
            "n") else ""
        return public_page("complaints/public/lookup.html", form=form, institution=institution, steps=lookup.STEPS)

    status_code = 400
    result = None
    not_found = locked = False
    wait = 0
    if form.validate():
        institution_id = form.institution.data
        keys = lookup.lockout_keys(institution_id, form.case_number.data, device_key(), "n:" + ip_prefix())
        known = lookup.trust_key(institution_id, form.case_number.data, device_id())
        if lookup.locked(keys):
            locked, status_code = True, 429
        elif not lookup.is_trusted(known) and (wait := lookup.slow_wait(keys)):
            status_code = 429  # the case or the network is slowed: this try is not checked, and not counted
        else:
            complaint = lookup.find_case(institution_id, form.case_number.data, form.code.data)
            if complaint is None:
                lookup.record_failure(keys)
                not_found, status_code = True, 404
            else:
                lookup.succeeded(keys)
                lookup.trust(known)
                result, status_code = lookup.public_status(complaint), 200
                if institution is None:
                    institution = db.session.get(Institution, institution_id)
    if not_found or locked or wait:  # the code is never echoed back
        form.code.raw_data, form.code.data = [], ""
    response = public_page("complaints/public/lookup.html", status_code, form=form, institution=institution,
                             result=result, not_found=not_found, locked=locked, wait=wait, steps=lookup.STEPS,
                             lockout_minutes=lookup.LOCKOUT_SECONDS // 60)
    response.headers["Cache-Control"] = "no-store"
    if locked or wait:
        response.headers["Retry-After"] = str(wait or lookup.LOCKOUT_SECONDS)
    return response
