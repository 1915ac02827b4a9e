from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app.auth import bp
from app.security import limiters, new_csrf_token
from app.web import SESSION_EPOCH_KEY, current_org, current_user, get_ctx
from supply_chain.domain.errors import Forbidden
from supply_chain.services import orgs


def home_for(roles: list[str]) -> str:
    """Where a user lands after signing in: the view of their organisation's main role."""
    if "regulator" in roles or roles == ["admin"]:
        return url_for("admin.index")
    if "inspector" in roles:
        return url_for("inspections.index")
    return url_for("dashboard.index")


def _safe_next(target: str | None) -> str | None:
    """Only a local path (no scheme, no host, no protocol-relative //) may be followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


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
    limit = limiters(current_app)
    wait = limit.retry_after(email)
    if wait:
        raise TooManyRequests(
            description=f"Too many failed sign-in attempts. Wait {wait // 60 + 1} minutes and try again.",
            retry_after=wait,
        )
    try:
        user = orgs.authenticate(get_ctx(), email, password)
    except Forbidden as err:
        get_ctx().session.rollback()
        if err.code == "organisation_suspended":  # the password was right: say why, and sign nobody in
            return render_template("auth/login.html", email=email, next=target or "", error=err.message), 403
        limit.failed(email)
        return render_template(
            "auth/login.html", email=email, next=target or "", error="E-mail or password is wrong."
        ), 401
    limit.succeeded(email)
    get_ctx().session.commit()  # last_login_at
    session.clear()  # a fresh session on every sign-in: nothing from before survives
    session["user_id"] = user.id
    session[SESSION_EPOCH_KEY] = user.organisation.session_epoch
    session.permanent = True
    new_csrf_token()
    flash(f"Signed in as {user.display_name}, {user.organisation.name}.", "ok")
    return redirect(target or home_for(list(user.organisation.roles)))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))
