"""Staff login, logout and password change. Patients never log in."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, gettext
from flask_login import current_user, login_required, login_user, logout_user

from core.audit import record
from core.extensions import db
from core.ratelimit import client_address, limited
from core.security import safe_redirect_target
from organisation import services
from organisation.forms import ChangePasswordForm, LoginForm

bp = Blueprint("auth", __name__)

# Endpoints a user who must change the password may still reach.
OPEN_ENDPOINTS = {"auth.login", "auth.logout", "auth.change_password", "static", "health.healthz",
                  "i18n.switch_language"}


# Blueprints whose visitors are never staff (patients, machine clients).
PUBLIC_BLUEPRINTS = {"patient", "api"}


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
            login_user(result.user)
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
    db.session.commit()
    logout_user()
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
            db.session.commit()
            login_user(current_user._get_current_object())  # re-issue the session with the new version
            flash(gettext("密码已修改。"), "success")
            return redirect(url_for("org.home"))
    return render_template("organisation/change_password.html", form=form), 400 if request.method == "POST" else 200


def unauthorized():
    """Send anonymous visitors to the login page; say why unless they simply opened the site."""
    if request.path != "/":
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
