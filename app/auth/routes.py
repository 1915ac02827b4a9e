from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app.auth import bp
from app.forms import Checks, errors_of
from app.security import client_address, login_limits, new_csrf_token
from app.web import DRAFT_OWNER_KEY, SESSION_TOKEN_KEY, current_org, current_user, get_ctx, login_required
from app.web import safe_next as _safe_next
from supply_chain.domain.errors import Forbidden, InvalidInput
from supply_chain.services import orgs, sessions, throttle


def home_for(roles: list[str]) -> str:
    """Where a user lands after signing in: the view of their organisation's main role."""
    if "regulator" in roles or roles == ["admin"]:
        return url_for("admin.index")
    if "inspector" in roles:
        return url_for("inspections.index")
    return url_for("dashboard.index")


@bp.get("/")
def index() -> str | Response:
    org = current_org()
    if org is not None:
        return redirect(home_for(list(org.roles)))
    return render_template("auth/index.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(home_for(list(current_org().roles)))  # type: ignore[union-attr]
        return render_template("auth/login.html", email="", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    target = _safe_next(request.form.get("next"))
    ctx = get_ctx()
    # The attempt is counted (and committed) before the password is checked, so parallel requests and other
    # workers cannot all slip under the limit.
    refusal = throttle.reserve_sign_in(ctx, email, client_address(), *login_limits(current_app))
    if refusal is not None:
        raise TooManyRequests(description=refusal.message, retry_after=refusal.retry_after)
    try:
        user = orgs.authenticate(ctx, email, password)
    except Forbidden as err:
        ctx.session.rollback()
        if err.code == "organisation_suspended":  # the password was right: say why, and sign nobody in
            throttle.signed_in(ctx, email, client_address())
            ctx.session.commit()
            return render_template("auth/login.html", email=email, next=target or "", error=err.message), 403
        return render_template(
            "auth/login.html", email=email, next=target or "", error="E-mail or password is wrong."
        ), 401
    throttle.signed_in(ctx, email, client_address())
    session.clear()  # a fresh session on every sign-in: nothing from before survives
    session[SESSION_TOKEN_KEY] = sessions.start(ctx, user)
    session[DRAFT_OWNER_KEY] = user.id  # whose draft a form submitted after this session ends is
    ctx.session.commit()  # the session, last_login_at
    session.permanent = True
    new_csrf_token()
    flash(gettext("Signed in as %(name)s, %(org)s.", name=user.display_name, org=user.organisation.name), "ok")
    return redirect(target or home_for(list(user.organisation.roles)))


@bp.post("/logout")
def logout() -> Response:
    """Sign out: the session is deleted in the store, so a copy of the cookie no longer signs anyone in."""
    sessions.end(get_ctx(), session.get(SESSION_TOKEN_KEY))
    session.clear()
    flash(gettext("Signed out."), "ok")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response | tuple[str, int]:
    """Change one's own password; every other session of the user ends (this browser gets a fresh one)."""
    if request.method == "GET":
        return render_template("auth/password.html")
    ctx = get_ctx()
    user = current_user()
    assert user is not None  # login_required
    email = user.email
    refusal = throttle.reserve_sign_in(ctx, email, client_address(), *login_limits(current_app))
    if refusal is not None:  # the current password is checked: the same budget as signing in
        raise TooManyRequests(description=refusal.message, retry_after=refusal.retry_after)
    form = request.form
    try:
        checks = Checks()
        if not form.get("current_password"):
            checks.add("is required: type the password you signed in with", field="current_password")
        checks.extend(orgs.password_problems(form.get("new_password") or "", "new_password"))
        checks.done()
        orgs.change_password(ctx, user, form.get("current_password") or "", form.get("new_password") or "")
    except (Forbidden, InvalidInput) as err:
        ctx.session.rollback()
        report = errors_of(err)
        return render_template("auth/password.html", error=err, errors=report), report.status
    throttle.signed_in(ctx, email, client_address())
    session[SESSION_TOKEN_KEY] = sessions.start(ctx, user)
    new_csrf_token()
    flash(gettext("Password changed. Every other session of yours has been signed out."), "ok")
    return redirect(home_for(list(user.organisation.roles)))
