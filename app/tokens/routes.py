from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.tokens import bp
from app.web import commit, form_failed, get_ctx, login_required, require_org, submitted_form
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.services import tokens

FORM_ERRORS = (InvalidInput, Conflict)


def _page(**context: object) -> str:
    ctx = get_ctx()
    return render_template("tokens/index.html", tokens=tokens.list_tokens(ctx, require_org()), **context)


@bp.get("/tokens")
@login_required
def index() -> str:
    return _page(form=submitted_form())


@bp.post("/tokens")
@login_required
def create() -> str | tuple[str, int]:
    """Create a token; its secret is shown on this answer only (the store keeps its SHA-256)."""
    org = require_org()
    ctx = get_ctx()
    try:
        token, plain = tokens.create(ctx, org, request.form.get("name", ""), request.form.get("scope", "read"))
    except FORM_ERRORS as err:
        return form_failed(err, "tokens/index.html", tokens=tokens.list_tokens(ctx, org), form=request.form)
    commit()
    return _page(created=token, plain=plain, form={})


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int) -> Response:
    ctx = get_ctx()
    token = tokens.revoke(ctx, require_org(), token_id)  # another organisation's token: 404
    commit()
    flash(gettext("Token %(name)s revoked; requests with it are refused from now on.", name=token.name), "ok")
    return redirect(url_for("tokens.index"))
