"""Role x tenant x URL: every rule of the app's URL map, probed by every role, anonymously, and with another
hospital's ids, against an explicit table of who may reach what.

``ACCESS`` names, for every endpoint, the permission that guards it (organisation/scope.py GRANTS turns it
into roles) or the role group the complaint workflow allows (complaints/access.py). An endpoint missing from
the table fails ``test_every_endpoint_is_classified``: a new view cannot ship without someone deciding who
may use it. docs/security-matrix.md explains how to classify one.

For each subject (the demo platform admin, the demo city's regional admin, the five institution roles of rmyy,
a regional admin of another province, and an anonymous visitor) one test probes, GET and POST:

1. **own** — every rule with rmyy's ids: an allowed role reaches it (GET: its success status; POST: anything
   but 401/403/404/405/5xx: the form may still refuse empty input), a role without the grant gets 403 or 404
   and changes nothing, an anonymous visitor is sent to the login page, and the method a rule does not take
   is 405 for everyone;
2. **other tenant** — every rule with an institution or object id, filled with zyy's ids: 404 (403 for a role
   that lacks the permission anyway), and zyy's data unchanged;
3. **own institution, foreign objects** — rmyy's institution id with zyy's object ids: 404 for every role
   allowed on the endpoint (the scoped look-up, not the institution check, must refuse);
4. **own parent, foreign child** — a case (or questionnaire) of rmyy with a reply, feedback, version … of zyy.

"Changes nothing" is a digest of every table's rows taken before and after a subject's refused probes; the
allowed POSTs run in a savepoint each, rolled back, so that one probe cannot spoil the next.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from werkzeug.exceptions import MethodNotAllowed, NotFound

from core.extensions import db
from organisation.auth import SESSION_TOKEN
from organisation.models import Role, StaffUser
from organisation.scope import GRANTS, Permission
from tests.access_world import (
    ROLE_ACCOUNTS,
    World,
    _shared_reference_data,
    build_world,
    outsider_admin,
    outsider_region,
)
from tests.conftest import rolled_back_connection
from tests.factories import demo_user, login

P = Permission
ALL = frozenset(Role)
PUBLIC = "public"   # anyone, signed in or not
BEARER = "bearer"   # the discharge API: a bearer token, never a session


def grant(*permissions: Permission) -> frozenset[Role]:
    """The roles holding any of ``permissions`` (organisation/scope.py GRANTS)."""
    return frozenset().union(*(GRANTS[p] for p in permissions))


# The complaint workflow's groups (complaints/access.py): officers triage, route, review, decide; the lead
# department's handlers also transfer, receive, draft, ask for an extension, put rectifications on the books.
OFFICERS = grant(P.MANAGE_COMPLAINTS)
CASE_WORKERS = grant(P.HANDLE_COMPLAINTS)
CASE_READERS = CASE_WORKERS | {Role.LEADERSHIP}
CALENDAR_READERS = frozenset({Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN,
                              Role.COMPLAINT_OFFICER})
REGION_ADMINS = frozenset({Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN})
PLATFORM = frozenset({Role.PLATFORM_ADMIN})
# Who may enrol an authenticator app (organisation/totp.py ELIGIBLE_ROLES).
TOTP_ADMINS = frozenset({Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN})
# Steps of signing in that send anyone without a sign-in under way back to the login page.
SIGN_IN_STEPS = {"auth.second_factor"}


@dataclass(frozen=True)
class Access:
    """Who may use an endpoint: ``get`` and ``post`` are role sets, PUBLIC or BEARER; ``ok`` is the status
    of an allowed GET."""

    get: frozenset[Role] | str
    post: frozenset[Role] | str | None = None  # None: the same as ``get``
    ok: int | tuple[int, ...] = 200

    def allowed(self, method: str) -> frozenset[Role] | str:
        return self.get if method == "GET" or self.post is None else self.post


def A(roles: frozenset[Role] | str, post: frozenset[Role] | str | None = None,
      ok: int | tuple[int, ...] = 200) -> Access:
    return Access(roles, post, ok)


ACCESS: dict[str, Access] = {
    # The shell, login, the patient's and complainant's pages: no staff session needed.
    "static": A(PUBLIC),
    "health.healthz": A(PUBLIC),
    "i18n.switch_language": A(PUBLIC, ok=302),
    "auth.login": A(PUBLIC, ok=(200, 302)),  # a signed-in user is sent home
    "auth.logout": A(ALL, ok=302),
    "auth.change_password": A(ALL),
    "auth.second_factor": A(PUBLIC, ok=302),  # without a password step under way: back to the login page
    "auth.two_factor": A(TOTP_ADMINS),
    "auth.two_factor_setup": A(TOTP_ADMINS),
    "auth.two_factor_confirm": A(TOTP_ADMINS),
    "auth.two_factor_disable": A(TOTP_ADMINS),
    "patient.touchpoint_survey": A(PUBLIC),
    "patient.thanks": A(PUBLIC),
    "patient.discharge_survey": A(PUBLIC),
    "patient.staff_survey": A(PUBLIC),
    "patient.staff_survey_done": A(PUBLIC),
    "complaints.intake": A(PUBLIC),
    "complaints.lookup": A(PUBLIC),
    "complaints.feedback": A(PUBLIC),
    "api.post_discharges": A(BEARER),
    # Organisation.
    "org.home": A(ALL, ok=302),
    "org.notifications_list": A(ALL),
    "org.notification_open": A(ALL, ok=302),
    "org.notification_read": A(ALL),
    "org.notifications_read_all": A(ALL),
    "org.regions": A(grant(P.MANAGE_REGIONS)),
    "org.region_new": A(grant(P.MANAGE_REGIONS)),
    "org.region_edit": A(grant(P.MANAGE_REGIONS)),
    "org.region_toggle": A(grant(P.MANAGE_REGIONS)),
    "org.platform_staff": A(grant(P.MANAGE_REGIONS)),
    "org.platform_staff_new": A(grant(P.MANAGE_REGIONS)),
    "org.platform_staff_edit": A(grant(P.MANAGE_REGIONS)),
    "org.platform_staff_toggle": A(grant(P.MANAGE_REGIONS)),
    "org.platform_staff_reset_two_factor": A(grant(P.MANAGE_REGIONS)),
    "org.institutions": A(grant(P.VIEW_ORG)),
    "org.institution_new": A(grant(P.MANAGE_INSTITUTIONS)),
    "org.audit_all": A(grant(P.MANAGE_INSTITUTIONS)),
    "org.institution_overview": A(ALL),
    "org.institution_edit": A(grant(P.MANAGE_INSTITUTIONS)),
    "org.institution_toggle": A(grant(P.MANAGE_INSTITUTIONS)),
    "org.institution_settings": A(grant(P.MANAGE_ORG)),
    "org.departments": A(grant(P.VIEW_ORG)),
    "org.department_new": A(grant(P.MANAGE_ORG)),
    "org.department_edit": A(grant(P.MANAGE_ORG)),
    "org.department_toggle": A(grant(P.MANAGE_ORG)),
    "org.touchpoints": A(grant(P.VIEW_ORG)),
    "org.touchpoint_new": A(grant(P.MANAGE_ORG)),
    "org.touchpoint_edit": A(grant(P.MANAGE_ORG)),
    "org.touchpoint_toggle": A(grant(P.MANAGE_ORG)),
    "org.staff": A(grant(P.VIEW_ORG)),
    "org.staff_new": A(grant(P.MANAGE_ORG)),
    "org.staff_edit": A(grant(P.MANAGE_ORG)),
    "org.staff_toggle": A(grant(P.MANAGE_ORG)),
    "org.staff_reset_two_factor": A(grant(P.MANAGE_ORG)),
    "org.staff_reset_password": A(grant(P.MANAGE_ORG)),
    "org.staff_unlock": A(grant(P.MANAGE_ORG)),
    "org.import_rows": A(grant(P.MANAGE_ORG)),
    "org.import_template": A(grant(P.MANAGE_ORG)),
    "org.notifier_settings": A(grant(P.MANAGE_ORG)),
    "org.notifier_test": A(grant(P.MANAGE_ORG)),
    "org.audit": A(grant(P.VIEW_AUDIT)),
    # Surveys.
    "survey_staff.overview": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.responses": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.response_detail": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.export_responses": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.alerts": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.alert_detail": A(grant(P.VIEW_SURVEYS), post=grant(P.HANDLE_ALERTS)),
    "survey_staff.alert_acknowledge": A(grant(P.HANDLE_ALERTS)),
    "survey_staff.codes": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.code_image": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.code_print": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.department_print": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.code_rotate": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.code_template": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.code_issue": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.codes_issue_missing": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.templates": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_detail": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_copy": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_edit": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_start_draft": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_publish": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.template_preview": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.settings": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.api_tokens": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.api_token_create": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.api_token_revoke": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.followup_calls": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_record_call": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_answers": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_discharges": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_slip": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_upload": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_upload_template": A(grant(P.FOLLOW_UP)),
    "survey_staff.followup_rates": A(grant(P.FOLLOW_UP, P.VIEW_SURVEYS)),
    "survey_staff.staff_results": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.staff_results_csv": A(grant(P.VIEW_SURVEYS)),
    "survey_staff.staff_batches": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.staff_batch_new": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.staff_batch": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.staff_batch_slips": A(grant(P.MANAGE_SURVEYS)),
    "survey_staff.staff_batch_csv": A(grant(P.MANAGE_SURVEYS)),
    # Complaints: queues, registration, settings, the ledger.
    "complaints_staff.queue": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.department_queue": A(grant(P.HANDLE_COMPLAINTS)),
    "complaints_staff.register": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.from_alert": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.categories": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.category_edit": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.category_toggle": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.routing_rules": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.routing_rule_new": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.routing_rule_edit": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.routing_rule_toggle": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.settings": A(grant(P.MANAGE_COMPLAINTS)),
    "complaints_staff.ledger_list": A(grant(P.VIEW_COMPLAINT_STATS)),
    "complaints_staff.ledger_export": A(grant(P.VIEW_COMPLAINT_STATS)),
    "complaints_staff.stats_page": A(grant(P.VIEW_COMPLAINT_STATS)),
    "complaints_staff.rectifications": A(grant(P.VIEW_COMPLAINT_STATS, P.HANDLE_COMPLAINTS)),
    # Complaints: one case (the world's case is led by the handler's department; its co-handler is another).
    "complaints_staff.case": A(CASE_READERS),
    "complaints_staff.attachment": A(CASE_WORKERS),
    "complaints_staff.accept": A(OFFICERS),
    "complaints_staff.settle": A(OFFICERS),
    "complaints_staff.decline": A(OFFICERS),
    "complaints_staff.assign": A(OFFICERS),
    "complaints_staff.add_co": A(OFFICERS),
    "complaints_staff.transfer": A(CASE_WORKERS),
    "complaints_staff.receive": A(CASE_WORKERS),
    "complaints_staff.pause": A(OFFICERS),
    "complaints_staff.resume": A(OFFICERS),
    "complaints_staff.request_extension": A(CASE_WORKERS),
    "complaints_staff.decide_extension": A(OFFICERS),
    "complaints_staff.co_answer": A(OFFICERS),
    "complaints_staff.co_waive": A(OFFICERS),
    "complaints_staff.edit_case": A(OFFICERS),
    "complaints_staff.merge_case": A(OFFICERS),
    "complaints_staff.emergency": A(OFFICERS),
    "complaints_staff.reissue_code": A(OFFICERS),
    "complaints_staff.reply_history": A(CASE_WORKERS),
    "complaints_staff.draft_reply": A(CASE_WORKERS),
    "complaints_staff.reply_detail": A(CASE_WORKERS),
    "complaints_staff.approve_reply": A(OFFICERS),
    "complaints_staff.return_reply": A(OFFICERS),
    "complaints_staff.send_reply": A(OFFICERS),
    "complaints_staff.print_reply": A(CASE_WORKERS),
    "complaints_staff.close_case": A(OFFICERS),
    "complaints_staff.accept_reopen": A(OFFICERS),
    "complaints_staff.refuse_reopen": A(OFFICERS),
    "complaints_staff.record_phone_feedback": A(OFFICERS),
    "complaints_staff.add_rectification": A(CASE_WORKERS),
    "complaints_staff.complete_rectification": A(CASE_WORKERS),
    "complaints_staff.verify_rectification": A(OFFICERS),
    "complaints_staff.return_rectification": A(OFFICERS),
    "complaints_staff.request_refund": A(CASE_WORKERS),
    "complaints_staff.decide_refund": A(OFFICERS),
    "complaints_staff.complete_refund": A(CASE_WORKERS),
    # The working-day calendar (shared by every hospital) and the regional comparison.
    "complaints_admin.calendar_years": A(CALENDAR_READERS),
    "complaints_admin.calendar_year": A(CALENDAR_READERS),
    "complaints_admin.calendar_day_save": A(PLATFORM),
    "complaints_admin.calendar_day_delete": A(PLATFORM),
    "complaints_admin.calendar_mark_official": A(PLATFORM),
    "complaints_admin.calendar_prefill": A(PLATFORM),
    "complaints_admin.region_stats_home": A(REGION_ADMINS, ok=(200, 302)),  # a regional admin: to their region
    "complaints_admin.region_stats": A(REGION_ADMINS),
}

# URL arguments that name no tenant's row: the same value for every subject.
FIXED_ARGS = {"fmt": "csv", "channel": "wecom", "year": 2026, "day": "2026-10-01", "code": "zh_Hans",
              "filename": "css/staff.css"}
KIND_ARG = {"org.import_template": "departments", "survey_staff.code_image": "png"}
# A rule's first object argument, when it names two rows: the parent the others must belong to.
PARENT_ARGS = ("case_id", "template_id")
# Allowed POSTs may still refuse the empty form; they must not refuse the user.
POST_REACHED = {200, 302, 303, 400, 409}
SUBJECTS = ["platform", "region", "admin", "officer", "handler", "nurse", "leader", "outsider", "anonymous"]


# The probe -------------------------------------------------------------------------------

def rules(app) -> list:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def methods(rule) -> list[str]:
    return sorted(rule.methods & {"GET", "POST"})


def object_args(rule) -> list[str]:
    names = [n for n in rule.arguments if n not in FIXED_ARGS and n not in {"institution_id", "kind", "token",
                                                                             "submission_id"}]
    return sorted(names, key=lambda n: (n not in PARENT_ARGS, n))


def fill(rule, world: World, user: StaffUser | None, **overrides) -> str:
    """The rule's path with ``world``'s rows (``overrides``: argument -> value)."""
    values = {}
    for name in rule.arguments:
        if name in overrides:
            values[name] = overrides[name]
        elif name in FIXED_ARGS:
            values[name] = FIXED_ARGS[name]
        elif name == "kind":
            values[name] = KIND_ARG.get(rule.endpoint, "poster")
        elif name in ("token", "submission_id"):
            values[name] = world.public[rule.endpoint.split(".")[1]]
        elif name == "notification_id":
            values[name] = world.notices.get(user.id if user else 0, min(world.notices.values()))
        elif name in (args := world.args_for(rule.endpoint)):
            values[name] = args[name]
        else:
            pytest.fail(f"{rule.endpoint} takes <{name}>: add a row behind it to tests/access_world.py so that "
                        f"the access matrix can probe it with each tenant's ids")
    return rule.build(values, append_unknown=False)[1]


def fingerprint() -> dict[str, str]:
    """A digest of every table's rows: equal digests mean nothing was written. A session's last_seen_at is left
    out: it is the idle clock, moved on by any request a minute after the last (organisation/sessions.py)."""
    tables = [t.name for t in db.metadata.sorted_tables]
    row = "(to_jsonb(x) - 'last_seen_at')::text"
    sql = " UNION ALL ".join(
        f"SELECT '{name}' AS t, md5(coalesce(string_agg(md5({row}), '' ORDER BY md5({row})), '')) "
        f"FROM \"{name}\" x" for name in tables)
    return dict(db.session.execute(text(sql)).all())


def changed(before: dict[str, str]) -> list[str]:
    after = fingerprint()
    return sorted(name for name in before if after[name] != before[name])


@dataclass
class Subject:
    name: str
    user: StaffUser | None
    role: Role | None


def subject_for(name: str, outsider: StaffUser) -> Subject:
    if name == "anonymous":
        return Subject(name, None, None)
    if name == "outsider":
        return Subject(name, outsider, Role.REGIONAL_ADMIN)
    if name in ("platform", "region"):
        user = demo_user(name)
        return Subject(name, user, Role.PLATFORM_ADMIN if name == "platform" else Role.REGIONAL_ADMIN)
    role = next(r for r, suffix in ROLE_ACCOUNTS.items() if suffix == name)
    return Subject(name, demo_user(f"rmyy-{name}"), role)


def expectation(endpoint: str, method: str, subject: Subject) -> str:
    """'public', 'bearer', 'allow', 'deny' or 'login'."""
    allowed = ACCESS[endpoint].allowed(method)
    if allowed in (PUBLIC, BEARER):
        return str(allowed)
    if subject.user is None:
        return "login"
    return "allow" if subject.role in allowed else "deny"


class Prober:
    """One client, signed in as one subject; collects every answer that breaks the table."""

    def __init__(self, app, client, conn, subject: Subject):
        self.app, self.client, self.conn, self.subject = app, client, conn, subject
        self.failures: list[str] = []
        self.count = 0
        self.token: str | None = None
        self.sign_in()

    def sign_in(self, *, again: bool = False) -> None:
        if self.subject.user is None:
            return
        if again and self.token:
            with self.client.session_transaction() as session:
                session["_user_id"] = self.subject.user.get_id()
                session[SESSION_TOKEN] = self.token
            return
        login(self.client, self.subject.user)
        with self.client.session_transaction() as session:
            self.token = session.get(SESSION_TOKEN)

    def send(self, method: str, url: str, *, isolated: bool = False):
        """One request (an empty form for a POST); ``isolated``: rolled back afterwards."""
        self.count += 1
        db.session.commit()  # end the session's own savepoint first: ours must sit inside none of its
        savepoint = self.conn.begin_nested() if isolated else None
        try:
            response = self.client.open(url, method=method, data={} if method == "POST" else None)
        finally:
            if savepoint is not None:
                db.session.rollback()
                savepoint.rollback()
                db.session.expire_all()
        if urlsplit(url).path == "/logout" and response.status_code != 405:
            # A rolled-back logout left its session open: carry on in it (signing in again would write a
            # session row between two digests); a logout that stood needs a new sign-in.
            self.sign_in(again=savepoint is not None)
        return response

    def check(self, label: str, endpoint: str, method: str, url: str, expect: str,
              status_ok: int | tuple[int, ...] = 200) -> None:
        response = self.send(method, url, isolated=expect in ("allow", PUBLIC))
        status = response.status_code
        location = urlsplit(response.headers.get("Location", "")).path
        if status >= 500:
            problem = "server error"
        elif expect == "login":
            problem = "" if status == 302 and location == "/login" else "not sent to the login page"
        elif expect == "405":  # the method the rule does not take: refused by the routing, for everyone
            problem = "" if status == 405 else "not 405"
        elif expect == BEARER:
            problem = "" if status == 401 else "answered without a bearer token"
        elif expect == "deny":
            problem = "" if status in (403, 404) else "not refused"
        elif expect == "deny404":
            problem = "" if status == 404 else "not 404"
        elif expect in ("allow", PUBLIC) and method == "GET":
            wanted = status_ok if isinstance(status_ok, tuple) else (status_ok,)
            back_to_login = location == "/login" and endpoint not in SIGN_IN_STEPS
            problem = "" if status in wanted and not back_to_login else f"not {status_ok}"
        else:  # an allowed or public POST with an empty form
            signed_out = location == "/login" and endpoint != "auth.logout" and endpoint not in SIGN_IN_STEPS
            problem = "" if status in POST_REACHED and not signed_out else "refused"
        if problem:
            self.failures.append(f"[{label}] {self.subject.name} {method} {url} ({endpoint}): {status} {location} "
                                 f"— {problem}")


# The tests -----------------------------------------------------------------------------

def test_every_endpoint_is_classified(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    unclassified = sorted(endpoints - set(ACCESS))
    assert not unclassified, (
        "these endpoints are not in tests/test_access_matrix.py ACCESS, so nobody has said who may use them: "
        f"{unclassified}. Add each with the permission its view checks (grant(P.…)), a complaint workflow group, "
        "PUBLIC or BEARER — see docs/security-matrix.md")
    stale = sorted(set(ACCESS) - endpoints)
    assert not stale, f"ACCESS names endpoints the app no longer has; remove them: {stale}"


# The worlds are built once per module (a second or more each) in an outer transaction of the module's own;
# each test then runs in a savepoint of it, rolled back, instead of tests/conftest.py's fresh transaction.

@pytest.fixture(scope="module")
def _module_connection(app):
    with rolled_back_connection(app) as conn:
        yield conn


@pytest.fixture(scope="module")
def _module_worlds(app, _module_connection) -> tuple[World, World, int]:
    with app.test_request_context():
        shared = _shared_reference_data()
        own, other = build_world("rmyy", shared), build_world("zyy", shared)
        outsider = outsider_admin(outsider_region())
        db.session.commit()
        worlds = own, other, outsider.id
        db.session.remove()
    return worlds


@pytest.fixture
def _transaction(app, _module_connection, _module_worlds):
    """Overrides tests/conftest.py's: a savepoint of the module's transaction, rolled back after the test."""
    savepoint = _module_connection.begin_nested()
    try:
        yield _module_connection
    finally:
        with app.app_context():
            db.session.remove()
        savepoint.rollback()


@pytest.fixture
def worlds(ctx, _transaction, _module_worlds) -> tuple[World, World, StaffUser]:
    own, other, outsider_id = _module_worlds
    return own, other, db.session.get_one(StaffUser, outsider_id)


def _probe_own(prober: Prober, app, own: World) -> None:
    """Variant 1: every rule with the subject's own institution's rows; refusals first, then what is allowed."""
    subject = prober.subject
    planned = [(rule, method, expectation(rule.endpoint, method, subject)) for rule in rules(app)
               for method in methods(rule)]
    planned += [(rule, method, "405") for rule in rules(app) for method in ("GET", "POST")
                if method not in rule.methods and not _taken_elsewhere(app, fill(rule, own, subject.user), method)]
    before = fingerprint()
    for rule, method, expect in planned:
        if expect in ("deny", "login", BEARER, "405"):
            prober.check("own", rule.endpoint, method, fill(rule, own, subject.user), expect)
    if (tables := changed(before)):
        prober.failures.append(f"[own] refused probes of {subject.name} changed {tables}")
    for rule, method, expect in planned:
        if expect in ("allow", PUBLIC):
            prober.check("own", rule.endpoint, method, fill(rule, own, subject.user), expect, ACCESS[rule.endpoint].ok)


def _taken_elsewhere(app, path: str, method: str) -> bool:
    """Whether another rule answers ``method`` on ``path`` (/s/done is also /s/<token>): probed as that rule."""
    try:
        app.url_map.bind("tingjian.test").match(path, method=method)
    except MethodNotAllowed:
        return False
    except NotFound:  # pragma: no cover - the path was built from a rule
        return False
    return True


def _tenant_rules(app) -> Iterable:
    for rule in rules(app):
        if "institution_id" in rule.arguments or object_args(rule):
            if ACCESS[rule.endpoint].get not in (PUBLIC, BEARER):
                yield rule


def _probe_other(prober: Prober, app, own: World, other: World) -> None:
    """Variants 2–4: another hospital's ids, whole or smuggled into the subject's own URLs."""
    subject = prober.subject
    before = fingerprint()
    sees_other = subject.name in ("platform", "region")
    for rule in _tenant_rules(app):
        objects = object_args(rule)
        for method in methods(rule):
            expect = expectation(rule.endpoint, method, subject)
            if not sees_other:
                prober.check("other tenant", rule.endpoint, method, fill(rule, other, subject.user),
                             "deny404" if expect == "allow" else "deny")
            if expect != "allow" or "institution_id" not in rule.arguments or not objects:
                continue
            theirs = other.args_for(rule.endpoint)
            foreign = {name: theirs[name] for name in objects}
            prober.check("foreign objects", rule.endpoint, method, fill(rule, own, subject.user, **foreign),
                         "deny404")
            if len(objects) > 1 and objects[0] in PARENT_ARGS:
                foreign_children = {name: theirs[name] for name in objects[1:]}
                prober.check("foreign child", rule.endpoint, method,
                             fill(rule, own, subject.user, **foreign_children), "deny404")
    if (tables := changed(before)):
        prober.failures.append(f"[other] refused probes of {subject.name} changed {tables}")


@pytest.mark.parametrize("name", SUBJECTS)
def test_access_matrix(app, client, _transaction, worlds, name):
    own, other, outsider = worlds
    subject = subject_for(name, outsider)
    prober = Prober(app, client, _transaction, subject)
    if name != "outsider":
        _probe_own(prober, app, own)
    if name != "anonymous":
        _probe_other(prober, app, own, other)
    print(f"\n{name}: {prober.count} probes")
    assert prober.count > 150, prober.count
    assert not prober.failures, f"{len(prober.failures)} of {prober.count} probes broke the table:\n" + "\n".join(
        prober.failures)


# Positive controls: the probes can succeed, and the matrix sees a missing check ----------------------------

def _rule(app, endpoint: str):
    return next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)


def test_control_an_allowed_post_changes_data_and_the_digest_sees_it(app, client, _transaction, worlds):
    own, other, outsider = worlds
    rule = _rule(app, "org.department_toggle")
    admin = subject_for("admin", outsider)
    login(client, admin.user)
    before = fingerprint()
    refused = client.post(fill(rule, own, admin.user, department_id=other.args["department_id"]))
    assert refused.status_code == 404 and not changed(before)  # another hospital's department: nothing changes
    done = client.post(fill(rule, own, admin.user))
    assert done.status_code == 302 and changed(before) == ["audit_entry", "department"]  # its own: it changed data


def test_control_a_view_that_forgets_its_check_fails_the_matrix(app, client, _transaction, worlds, monkeypatch):
    """The matrix's reason to exist: a view that loads the institution without asking who may use it."""
    import organisation.views_units as views
    from organisation.models import Institution

    own, other, outsider = worlds
    monkeypatch.setattr(views, "get_institution_or_404",
                        lambda institution_id, permission: db.session.get_one(Institution, institution_id))
    rule = _rule(app, "org.department_toggle")
    nurse = Prober(app, client, _transaction, subject_for("nurse", outsider))
    before = fingerprint()
    nurse.check("own", rule.endpoint, "POST", fill(rule, own, nurse.subject.user),
                expectation(rule.endpoint, "POST", nurse.subject))
    nurse.check("other tenant", rule.endpoint, "POST", fill(rule, other, nurse.subject.user), "deny")
    assert [f.split("]")[0] for f in nurse.failures] == ["[own", "[other tenant"], nurse.failures
    assert changed(before) == ["audit_entry", "department"]  # and the refusals' digest names what they changed


def test_control_an_unclassified_endpoint_is_named(app, monkeypatch):
    monkeypatch.delitem(ACCESS, "org.department_toggle")
    with pytest.raises(AssertionError, match=r"org\.department_toggle.*docs/security-matrix\.md"):
        test_every_endpoint_is_classified(app)
