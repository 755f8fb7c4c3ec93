"""A staff member's own account: two-factor sign-in (administrators only, organisation.totp).

The enrolment secret is shown once, as a QR code, on the page that answers the POST that made it; never
through flash or the session cookie, and never again on a GET.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from core.extensions import db
from organisation import totp
from organisation.auth import bp
from organisation.forms import ConfirmForm, TotpCodeForm


def _user():
    user = current_user._get_current_object()
    if not totp.may_enrol(user):
        abort(403)
    return user


def _page(form: TotpCodeForm, status: int = 200, *, enrolling: bool = False):
    user = current_user._get_current_object()
    context = {"qr": totp.qr_svg(totp.provisioning_uri(user)), "secret": user.totp_secret} if enrolling else {}
    return render_template("organisation/two_factor.html", form=form, confirm=ConfirmForm(), enrolling=enrolling,
                           enabled=totp.enabled(user), **context), status


@bp.get("/account/two-factor")
@login_required
def two_factor():
    _user()
    return _page(TotpCodeForm())


@bp.post("/account/two-factor/setup")
@login_required
def two_factor_setup():
    user = _user()
    if not ConfirmForm().validate_on_submit() or totp.enabled(user):
        abort(400)
    totp.start_enrolment(user)
    db.session.commit()
    return _page(TotpCodeForm(formdata=None), enrolling=True)


@bp.post("/account/two-factor/confirm")
@login_required
def two_factor_confirm():
    user = _user()
    if user.totp_secret is None or totp.enabled(user):
        return redirect(url_for("auth.two_factor"))
    form = TotpCodeForm()
    if form.validate_on_submit() and totp.confirm_enrolment(user, form.code.data):
        db.session.commit()
        flash(gettext("两步验证已开启，下次登录时需要输入验证码。"), "success")
        return redirect(url_for("auth.two_factor"))
    db.session.commit()  # keep the step of a code used meanwhile, if any
    form.code.errors.append(gettext("验证码不正确，请输入应用上显示的最新验证码。"))
    return _page(form, 400, enrolling=True)


@bp.post("/account/two-factor/disable")
@login_required
def two_factor_disable():
    user = _user()
    form = TotpCodeForm()
    if form.validate_on_submit() and totp.switch_off(user, form.code.data):
        db.session.commit()
        flash(gettext("两步验证已关闭。"), "success")
        return redirect(url_for("auth.two_factor"))
    if request.method == "POST":
        form.code.errors.append(gettext("验证码不正确，请输入应用上显示的最新验证码。"))
    return _page(form, 400)
