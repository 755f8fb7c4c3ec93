"""Staff login, logout and password change. Patients never log in."""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from core.audit import record
from core.extensions import db
from core.ratelimit import client_address, limited
from core.security import safe_redirect_target
from core.signing import hash_value
from organisation import services, sessions, throttle, totp
from organisation.forms import ChangePasswordForm, LoginForm, TotpCodeForm
from organisation.models import StaffUser

bp = Blueprint("auth", __name__)

# Endpoints a user who must change the password may still reach.
OPEN_ENDPOINTS = {"auth.login", "auth.second_factor", "auth.logout", "auth.change_password", "static",
                  "health.healthz", "i18n.switch_language"}


# Blueprints whose visitors are never staff (patients, machine clients).
PUBLIC_BLUEPRINTS = {"patient", "api"}

# The key of the Flask session that holds the server-side session's token (organisation.sessions); while the
# two-factor code is awaited, the token of the pending session and the page to go to afterwards.
SESSION_TOKEN = "_sid"
PENDING_TOKEN, PENDING_NEXT = "_sid_pending", "_next_pending"


def load_user(user_id: str) -> StaffUser | None:
    """Flask-Login's loader: the user of this browser's session, if its server-side row still holds."""
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    resumed = sessions.resume_session(session.get(SESSION_TOKEN), uid)
    g.staff_session_ended = resumed.ended
    g.staff_session_touched = resumed.touched
    return resumed.user


def sign_in(user: StaffUser) -> None:
    """Open a server-side session for ``user`` and give this browser its token (the caller commits)."""
    token = sessions.start_session(user)
    login_user(user)
    session[SESSION_TOKEN] = token


def sign_out() -> None:
    """End this browser's server-side session and forget it in the cookie (the caller commits)."""
    sessions.end_session(session.get(SESSION_TOKEN))
    logout_user()
    session.pop(SESSION_TOKEN, None)


def check_session():
    """Before every staff request: load the user now, so that an idle session ends (and a live one is marked
    as used) in a commit of its own, before the view changes anything."""
    if request.blueprint in PUBLIC_BLUEPRINTS or request.endpoint == "static":
        return None
    current_user._get_current_object()
    if g.pop("staff_session_touched", False):
        db.session.commit()
    return None


def _safe_next(target: str | None) -> str | None:
    # A bare startswith("/") check let "/\evil.example" through; browsers read it as "//evil.example".
    return safe_redirect_target(target)


def login_client() -> str:
    """Whom the login form's request limit counts: a browser where someone signed in before by its own id, so
    that a stranger flooding the form from the hospital's shared address does not slow it; others by address."""
    data = _known_devices()
    return f"d:{data['d']}" if data is not None else f"a:{client_address()}"


@bp.route("/login", methods=["GET", "POST"])
@limited(("LOGIN_RATE_LIMIT", login_client))
def login():
    if current_user.is_authenticated:
        return redirect(url_for("org.home"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data
        result = services.authenticate(username, form.password.data, address=client_address(),
                                       device=known_device(username))
        db.session.commit()
        if result.user is not None:
            next_url = _safe_next(request.args.get("next")) or url_for("org.home")
            if totp.enabled(result.user):
                # The password was right; the session counts once the code is right too (second_factor).
                session[PENDING_TOKEN] = sessions.start_session(result.user, second_factor_due=True)
                session[PENDING_NEXT] = next_url
                db.session.commit()
                return redirect(url_for("auth.second_factor"))
            services.complete_sign_in(result.user)
            sign_in(result.user)
            db.session.commit()
            return remember_device(redirect(next_url), username)
        if result.wait:
            form.password.errors.append(gettext("登录尝试过于频繁，请在 %(n)d 秒后再试。", n=result.wait))
            return render_template("organisation/login.html", form=form), 429, {"Retry-After": str(result.wait)}
        form.password.errors.append(gettext("用户名或密码不正确。"))
        return render_template("organisation/login.html", form=form), 401
    return render_template("organisation/login.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/login/two-factor", methods=["GET", "POST"])
@limited(("LOGIN_RATE_LIMIT", client_address))
def second_factor():
    """The second step of an enrolled administrator's sign-in: the authenticator app's code."""
    pending = sessions.pending_second_factor(session.get(PENDING_TOKEN))
    if pending is None:
        session.pop(PENDING_TOKEN, None)
        flash(gettext("请重新输入用户名和密码。"), "info")
        return redirect(url_for("auth.login"))
    user = pending.user
    form = TotpCodeForm()
    if form.validate_on_submit():
        wait = throttle.check_wait(throttle.SECOND_FACTOR, user.id)
        if wait:
            form.code.errors.append(gettext("验证码输错次数过多，请在 %(n)d 秒后再试。", n=wait))
            return render_template("organisation/second_factor.html", form=form), 429, {"Retry-After": str(wait)}
        if totp.check_code(user, form.code.data):
            throttle.check_passed(throttle.SECOND_FACTOR, user.id)
            sessions.complete_second_factor(pending)
            login_user(user)
            session[SESSION_TOKEN] = session.pop(PENDING_TOKEN)
            services.complete_sign_in(user)
            db.session.commit()
            return remember_device(redirect(session.pop(PENDING_NEXT, None) or url_for("org.home")), user.username)
        throttle.check_failed(throttle.SECOND_FACTOR, user.id)
        record("login", "staff.login_second_factor_failed", user)
        db.session.commit()
        form.code.errors.append(gettext("验证码不正确或已使用过，请输入身份验证器上的最新验证码。"))
        return render_template("organisation/second_factor.html", form=form), 401
    return render_template("organisation/second_factor.html", form=form), 400 if request.method == "POST" else 200


# Known devices: a browser where a username signed in before is slowed down only by its own failures
# (organisation.throttle), so no stranger can keep that user out. The cookie is signed, holds a random device id
# and keyed hashes of the usernames that signed in here, and nothing else.
KNOWN_DEVICE_COOKIE = "tj_known"
KNOWN_DEVICE_AGE = timedelta(days=365)
KNOWN_DEVICE_USERS = 10


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="tingjian-known-device")


def _username_mark(username: str) -> str:
    return hash_value("known-device", (username or "").strip().lower())[:16]


def _known_devices() -> dict | None:
    raw = request.cookies.get(KNOWN_DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = _device_serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) or not isinstance(data.get("u"), list):
        return None
    return data


def known_device(username: str) -> str | None:
    """This browser's device id if ``username`` signed in on it before, else None."""
    data = _known_devices()
    return data["d"] if data is not None and _username_mark(username) in data["u"] else None


def remember_device(response: Response, username: str) -> Response:
    """Mark this browser as one where ``username`` signed in (kept a year, for the last ten usernames)."""
    data = _known_devices() or {"d": secrets.token_hex(12), "u": []}
    mark = _username_mark(username)
    data["u"] = [m for m in data["u"] if m != mark][-(KNOWN_DEVICE_USERS - 1):] + [mark]
    response.set_cookie(KNOWN_DEVICE_COOKIE, _device_serializer().dumps(data),
                        max_age=int(KNOWN_DEVICE_AGE.total_seconds()), httponly=True, samesite="Lax",
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


@bp.post("/logout")
@login_required
def logout():
    record(current_user, "staff.logout", current_user._get_current_object())
    sign_out()
    db.session.commit()
    flash(gettext("您已退出登录。"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user._get_current_object(), current=form.current_password.data,
                                     new=form.new_password.data)
        except services.ServiceError as exc:
            getattr(form, exc.field or "new_password").errors.append(str(exc))
            return render_template("organisation/change_password.html", form=form), exc.status
        else:
            sign_in(current_user._get_current_object())  # the change ended every session: start this one anew
            db.session.commit()
            flash(gettext("密码已修改。"), "success")
            return redirect(url_for("org.home"))
    return render_template("organisation/change_password.html", form=form), 400 if request.method == "POST" else 200


def unauthorized():
    """Send anonymous visitors to the login page; say why unless they simply opened the site."""
    if g.get("staff_session_ended"):
        flash(gettext("长时间未操作或登录已超过时限，为保护患者信息已自动退出，请重新登录。"), "info")
    elif request.path != "/":
        flash(gettext("请先登录。"), "info")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?") if request.path != "/" else None))


def enforce_password_change():
    """Staff with an initial or reset password must change it before anything else."""
    if request.blueprint in PUBLIC_BLUEPRINTS:
        return None  # patient pages and the API: no staff session to look at
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in OPEN_ENDPOINTS):
        flash(gettext("首次登录或密码被重置后，请先修改密码。"), "warning")
        return redirect(url_for("auth.change_password"))
    return None
