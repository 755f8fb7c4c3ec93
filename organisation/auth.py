"""Staff login, logout and password change. Patients never log in."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import format_datetime, gettext
from flask_login import current_user, login_required, login_user, logout_user

from core.audit import record
from core.extensions import db
from core.ratelimit import client_address, limited
from core.security import safe_redirect_target
from organisation import services, sessions
from organisation.forms import ChangePasswordForm, LoginForm
from organisation.models import StaffUser

bp = Blueprint("auth", __name__)

# Endpoints a user who must change the password may still reach.
OPEN_ENDPOINTS = {"auth.login", "auth.logout", "auth.change_password", "static", "health.healthz",
                  "i18n.switch_language"}


# Blueprints whose visitors are never staff (patients, machine clients).
PUBLIC_BLUEPRINTS = {"patient", "api"}

# The key of the Flask session that holds the server-side session's token (organisation.sessions).
SESSION_TOKEN = "_sid"


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


@bp.route("/login", methods=["GET", "POST"])
@limited(("LOGIN_RATE_LIMIT", client_address))
def login():
    if current_user.is_authenticated:
        return redirect(url_for("org.home"))
    form = LoginForm()
    if form.validate_on_submit():
        result = services.authenticate(form.username.data, form.password.data)
        db.session.commit()
        if result.user is not None:
            sign_in(result.user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")) or url_for("org.home"))
        if result.locked_until is not None:
            form.password.errors.append(gettext(
                "登录失败次数过多，账号已锁定至 %(time)s。如需提前解锁，请联系管理员。",
                time=format_datetime(result.locked_until, "HH:mm")))
        else:
            form.password.errors.append(gettext("用户名或密码不正确。"))
        return render_template("organisation/login.html", form=form), 401
    return render_template("organisation/login.html", form=form), 400 if request.method == "POST" else 200


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
