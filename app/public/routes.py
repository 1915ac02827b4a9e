from __future__ import annotations

from flask import jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from app.public import bp
from app.web import get_ctx, wants_json
from supply_chain.domain.errors import InvalidInput, LotlineError, NotFound
from supply_chain.domain.identifiers import digital_link_path, parse_digital_link, parse_gtin, parse_lot_code
from supply_chain.services import lots as lot_service
from supply_chain.services import views


def _problem(err: LotlineError, gtin: str, lot_code: str) -> tuple[str | Response, int]:
    if wants_json():
        return jsonify(err.to_dict()), err.status
    return render_template("public/problem.html", error=err, gtin=gtin, lot_code=lot_code), err.status


@bp.get("/01/<gtin>/10/<path:lot_code>")
def lot(gtin: str, lot_code: str) -> str | Response | tuple[str | Response, int]:
    """The consumer page of a lot (GS1 Digital Link). It reads the store only: the verification state shown
    is the one last computed against the chain, never "verified" without that check."""
    ctx = get_ctx()
    try:
        found = lot_service.get_lot(ctx, gtin, lot_code)
    except (InvalidInput, NotFound) as err:
        return _problem(err, gtin, lot_code)
    data = views.consumer_view(ctx, found)
    if wants_json():
        return jsonify(data)
    response = make_response(render_template("public/lot.html", d=data))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Link"] = f'<{data["lot"]["digital_link"]}>; rel="canonical"'
    return response


@bp.get("/lookup")
def lookup() -> str | Response | tuple[str | Response, int]:
    """Type the GTIN and lot code from a pack (or paste the link under its QR code) to open its page."""
    text = (request.args.get("link") or "").strip()
    gtin = (request.args.get("gtin") or "").strip()
    code = (request.args.get("lot") or "").strip()
    if not (text or gtin or code):
        return render_template("public/lookup.html", gtin="", lot_code="", error=None)
    try:
        if text:
            gtin14, lot_code = parse_digital_link(text)
        else:
            gtin14, lot_code = parse_gtin(gtin), parse_lot_code(code)
    except InvalidInput as err:
        if wants_json():
            return jsonify(err.to_dict()), 400
        return render_template("public/lookup.html", gtin=gtin, lot_code=code, error=err), 400
    return redirect(digital_link_path(gtin14, lot_code))
