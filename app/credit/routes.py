from __future__ import annotations

from flask import jsonify, render_template
from werkzeug.wrappers import Response

from app.credit import bp
from app.web import get_ctx, login_required, wants_json
from supply_chain.services import credit, views


@bp.get("/organisations")
@login_required
def organisations() -> str:
    """Every organisation of the network with its grade, each linking to its credit record."""
    ctx = get_ctx()
    rows = [credit.summary(ctx, org) | {"id": org.id, "roles": list(org.roles)} for org in views.organisations(ctx)]
    return render_template("credit/list.html", records=[r for r in rows if set(r["roles"]) - {"admin"}])


@bp.get("/organisations/<int:org_id>/credit")
@login_required
def record(org_id: int) -> str | Response:
    """An organisation's credit record: its grade with the rule and the terms that moved it, month by month."""
    ctx = get_ctx()
    data = credit.record(ctx, views.organisation(ctx, org_id))
    if wants_json():
        return jsonify(data)
    return render_template("credit/record.html", c=data, labels=credit.TERM_LABELS, not_tracked=credit.NOT_TRACKED)
