"""Per-request plumbing shared by every blueprint: the unit of work, the signed-in user, role checks,
object access, and content negotiation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, current_app, flash, g, redirect, request, session, url_for
from sqlalchemy.exc import DBAPIError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from supply_chain.domain import policy
from supply_chain.domain.errors import DatabaseUnavailable, Forbidden, NotFound
from supply_chain.services import access, drafts, notifications, sessions, verification_state
from supply_chain.services.runtime import Ctx, Runtime
from supply_chain.store.models import Lot, Organisation, User

F = TypeVar("F", bound=Callable[..., Any])

# The rulebook's role sets (supply_chain/domain/policy.py), as ordered tuples for route guards and menus.
HANDLER_ROLES = policy.ordered(policy.HANDLER_ROLES)
CREATOR_ROLES = policy.ordered(policy.CREATOR_ROLES)
RECEIVING_ROLES = policy.ordered(policy.RECEIVING_ROLES)
OVERSIGHT_ROLES = policy.ordered(policy.OVERSIGHT_ROLES)
ONBOARDING_ROLES = policy.ordered(policy.ONBOARDING_ROLES)
TRACE_ROLES = policy.ordered(policy.TRACE_ROLES)
SUPERVISION_ROLES = policy.ordered(policy.SUPERVISION_ROLES)


def rule_roles(action: policy.Action) -> tuple[str, ...]:
    """The roles that may take ``action`` under the rulebook (a route guard; the relation and status are
    checked by the service)."""
    return policy.ordered(policy.RULES[action].roles)


SESSION_TOKEN_KEY = "sid"
"""The cookie's session token: the store keeps the session (``services.sessions``), so deleting it there
signs the cookie out wherever it has been copied."""
DRAFT_OWNER_KEY = "uid"
"""Who signed in with this (signed) cookie last. Not a credential: it only says whose draft a form submitted
after the session ended is (``services.drafts``), so that it is shown to that user alone. Sign-out removes it."""
DRAFT_ARG = "draft"
"""The query parameter naming the form whose draft a page shows, when the form posts to an address that does
not open as a page (``/custody/<lot>/reject``, posted from ``/custody``)."""
KEPT_AFTER_SESSION = ("csrf", DRAFT_OWNER_KEY)
"""What an ended session leaves in the cookie, so the form being submitted passes the CSRF check and can be
kept as its author's draft."""


UNSIGNED_AREAS = ("api", "public", "opendata")
"""Blueprints without the dashboard's sign-in (tokens, or nobody), so without its drafts."""


def runtime() -> Runtime:
    return cast(Runtime, current_app.extensions["lotline"])


def get_ctx() -> Ctx:
    """The request's unit of work: one session, opened on first use, committed after a successful response
    and rolled back otherwise (see ``init_app``)."""
    if "lotline_ctx" not in g:
        rt = runtime()
        read_only = request.blueprint in ("public", "opendata", "health") and request.method in ("GET", "HEAD")
        g.lotline_ctx = Ctx((rt.read_sessions if read_only else rt.sessions)(), rt)
    return cast(Ctx, g.lotline_ctx)


_LOST = ("connection", "server closed", "terminating connection", "could not connect", "the database system is")


def database_outage(err: BaseException) -> DatabaseUnavailable | None:
    """The 503 to answer when `err` says the database went away rather than that a statement was wrong."""
    if not isinstance(err, DBAPIError):
        return None
    text = str(err.orig).lower()
    lost = err.connection_invalidated or (
        type(err.orig).__name__ == "OperationalError" and any(part in text for part in _LOST)
    )
    if not lost:
        return None
    return DatabaseUnavailable("The database cannot be reached; nothing was written. Try again in a moment.")


def rollback() -> None:
    """Throw away whatever the request changed (called by the error handlers before answering)."""
    ctx = g.get("lotline_ctx")
    if ctx is not None:
        ctx.session.rollback()


def commit() -> None:
    ctx = g.get("lotline_ctx")
    if ctx is not None:
        ctx.session.commit()


def init_app(app: Flask) -> None:
    @app.after_request
    def _commit(response: Response) -> Response:
        ctx = g.get("lotline_ctx")
        if ctx is not None:
            if response.status_code < 400:
                ctx.session.commit()
            else:
                ctx.session.rollback()
        return response

    @app.before_request
    def _named_draft() -> None:
        # Taken before the view runs, so the page's notice is flashed before the page is drawn, whichever
        # view draws it; the template fills the form from ``draft_for(action)``.
        if request.method == "GET" and DRAFT_ARG in request.args and request.blueprint not in UNSIGNED_AREAS:
            submitted_form()

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        ctx = g.pop("lotline_ctx", None)
        if ctx is not None:
            try:
                ctx.session.rollback()  # a no-op after a commit; undoes anything left by an error
            finally:
                ctx.session.close()

    from app.forms import ErrorReport, label_of
    from app.messages import message_lines, tr, translate_message

    app.jinja_env.filters["label"] = lambda name: tr(label_of(name))
    # Labels the services write in English, shown in the page's language (app/messages.py).
    app.jinja_env.filters["state_label"] = lambda state: tr(verification_state.STATE_LABELS.get(state, state))
    app.jinja_env.filters["status_label"] = lambda status: tr((status or "").replace("_", " "))
    app.jinja_env.filters["tr"] = tr
    app.jinja_env.filters["message"] = translate_message
    app.jinja_env.filters["message_lines"] = message_lines
    app.jinja_env.filters["short"] = short_hash
    app.jinja_env.globals["memo"] = lambda make, *args: Memo(app.jinja_env.filters.get(make, make), args)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        org = current_org()
        return {
            "current_user": current_user(),
            "current_org": org,
            "unread_notifications": notifications.unread_count(get_ctx(), org) if org is not None else 0,
            "has_role": has_role,
            "draft_for": draft_for,
            "HANDLER_ROLES": HANDLER_ROLES,
            "CREATOR_ROLES": CREATOR_ROLES,
            "RECEIVING_ROLES": RECEIVING_ROLES,
            "SUPERVISION_ROLES": SUPERVISION_ROLES,
            "errors": ErrorReport(),  # a refused form's errors (form_failed); none otherwise
        }


class Memo(dict[Any, Any]):
    """``memo[key]`` is ``make(key, *args)``, worked out the first time ``key`` is asked for: a template's
    ``memo("label")`` or ``memo(some_macro, arg)`` (app/templates/_macros.html ``timeline``) gives each
    distinct value's text once a page instead of once a row, the same text the filter or macro would give."""

    def __init__(self, make: Any, args: tuple[Any, ...]) -> None:
        super().__init__()
        self.make, self.args = make, args

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.make(key, *self.args)
        return value


def short_hash(value: str | None, keep: int = 10) -> str:
    """``0x1234abcd…9f8e`` for long hashes, so they fit a phone screen (the full value is in the title)."""
    if not value:
        return ""
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}…{value[-6:]}"


# ------------------------------------------------------------------ who is asking


def current_user() -> User | None:
    """The signed-in, active user, or None. The cookie holds a session token; the session itself is in the
    store, so sign-out, a password change or a suspension (which delete it) end it at the next request."""
    if "lotline_user" not in g:
        user = None
        if SESSION_TOKEN_KEY in session:
            user = sessions.user_for(get_ctx(), session.get(SESSION_TOKEN_KEY))
            if user is None:
                kept = {key: session[key] for key in KEPT_AFTER_SESSION if key in session}
                session.clear()
                session.update(kept)
        g.lotline_user = user
    return cast(User | None, g.lotline_user)


def current_org() -> Organisation | None:
    user = current_user()
    return user.organisation if user else None


def require_org() -> Organisation:
    org = current_org()
    if org is None:  # the decorators make this unreachable; a guard for direct calls
        raise Forbidden("sign in first", code="not_signed_in")
    return org


def has_role(*roles: str) -> bool:
    org = current_org()
    return org is not None and bool(set(org.roles) & set(roles))


def safe_next(target: str | None) -> str | None:
    """Only a local path (no scheme, no host, no protocol-relative //) may be followed after sign-in or a
    change of language."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def wants_json() -> bool:
    """True when the client prefers JSON over HTML (``Accept: application/json``)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _has_page(path: str) -> bool:
    """Whether ``path`` answers GET (a form's page), so a draft of the form posted there can be shown again."""
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    return True


def sign_in_again() -> Response:
    """Send a visitor whose session has ended to sign in, and back here afterwards. A form they submitted is
    kept as their draft (``services.drafts``) and comes back filled; nothing of it is written now."""
    if wants_json():
        raise Forbidden("sign in first", code="not_signed_in")
    target = request.full_path.rstrip("?")
    if request.method == "POST":
        # A form posted to an address that is only an action (refusing a delivery from the custody inbox)
        # comes back on the page it was on, which is told which form's draft to show (?draft=<action>).
        if _has_page(request.path):
            target = request.path
        else:
            page = _local_referrer()
            target = page + "?" + urlencode({DRAFT_ARG: request.path}) if page else None
        owner_id = session.get(DRAFT_OWNER_KEY)
        owner = get_ctx().session.get(User, owner_id) if isinstance(owner_id, int) else None
        typed = any(drafts.keepable(name) for name in request.form)  # a bare button (mark as read) keeps nothing
        if owner is not None and target is not None and typed:
            if drafts.keep(get_ctx(), owner, request.path, request.form.items(multi=True)):
                files = " Files you attached are not kept: attach them again." if request.files else ""
                flash(
                    "Your session had ended, so nothing was saved. Sign in again: the form comes back with what "
                    f"you typed.{files}",
                    "error",
                )
            else:
                flash("Your session had ended, so nothing was saved; the form was too large to keep.", "error")
        else:
            flash("Your session had ended, so nothing was saved. Sign in again, then submit the form again.", "error")
    return redirect(url_for("auth.login", next=target) if target else url_for("auth.login"))


def _local_referrer() -> str | None:
    """The path of the page the form was on, when it is one of ours that opens as a page."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    path = referrer.path or None
    return path if path is not None and safe_next(path) and _has_page(path) else None


def draft_action() -> str | None:
    """The form (its action's path) whose draft this page shows: the page's own, or the one named by
    ``?draft=`` when the form posts to an address of its own (``sign_in_again``)."""
    named = request.args.get(DRAFT_ARG)
    return named if named and safe_next(named) and not _has_page(named) else request.path


def draft_for(action: str) -> ImmutableMultiDict[str, str]:
    """What was typed into the form posting to ``action``, when this page brings back its draft (for a
    template with several forms, e.g. one refusal form per lot in the custody inbox)."""
    if request.method == "GET" and g.get("lotline_draft_action") == action:
        return submitted_form()
    return ImmutableMultiDict()


def submitted_form() -> ImmutableMultiDict[str, str]:
    """The submitted form (POST); on a form's page (GET), the signed-in user's draft of it kept when their
    session ended, handed out once and then deleted; otherwise an empty form."""
    if request.method == "POST":
        return request.form
    if "lotline_draft" not in g:
        user = current_user()
        action = draft_action()
        fields = drafts.take(get_ctx(), user, action) if user is not None else None
        if fields:
            g.lotline_draft_action = action
            flash(
                "This form is filled with what you typed before your session ended. Nothing was saved yet: "
                "check it and submit it again.",
                "ok",
            )
        g.lotline_draft = ImmutableMultiDict(fields or [])
    return cast(ImmutableMultiDict[str, str], g.lotline_draft)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return sign_in_again()
        return view(*args, **kwargs)

    return cast(F, wrapped)


def roles_required(*roles: str) -> Callable[[F], F]:
    """Only signed-in users whose organisation holds one of ``roles``; others get a clear 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user() is None:
                return sign_in_again()
            org = require_org()
            if not set(org.roles) & set(roles):
                raise Forbidden(
                    f"{org.name} cannot open this page: it needs one of the roles {', '.join(roles)}",
                    code="wrong_role",
                )
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorate


# ------------------------------------------------------------------ objects


def visible_lot(lot_pk: int) -> Lot:
    """The lot with this key if the signed-in organisation may see it; NotFound otherwise (the same answer as
    for a lot that does not exist, so keys cannot be probed)."""
    org = require_org()
    lot = get_ctx().session.get(Lot, lot_pk)
    if lot is None or not access.can_see_lot(get_ctx(), org, lot):
        raise NotFound(f"no lot {lot_pk} visible to {org.name}", code="unknown_lot")
    return lot


def form_values(names: Iterable[str]) -> dict[str, str]:
    return {name: (request.form.get(name) or "").strip() for name in names}


def form_failed(err: Exception, template: str, **context: Any) -> tuple[str | Response, int]:
    """Answer a rejected form: roll back, then show the form again with the message naming the field
    (JSON clients get the error itself; every field's error under ``errors`` when there are several)."""
    from flask import jsonify, render_template

    from app.forms import errors_of
    from supply_chain.domain.errors import LotlineError

    rollback()
    assert isinstance(err, LotlineError)
    report = errors_of(err)
    if wants_json():  # the API's error shape: the first error, then every one under "errors"
        return jsonify(err.to_dict() | {"errors": [e.to_dict() for e in report.errors]}), err.status
    return render_template(template, error=err, errors=report, **context), report.status
