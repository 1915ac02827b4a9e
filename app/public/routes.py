from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import current_app, jsonify, redirect, render_template, request, session
from werkzeug.wrappers import Response

from app.public import bp, page_cache
from app.web import current_user, get_ctx, wants_json
from supply_chain.domain.errors import InvalidInput, LotlineError, NotFound
from supply_chain.domain.identifiers import (
    digital_link_path,
    parse_digital_link,
    parse_gtin,
    parse_lot_code,
    split_serial,
)
from supply_chain.services import lots as lot_service
from supply_chain.services import views
from supply_chain.services.epcis import serials as epcis_serials
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Lot


def _problem(err: LotlineError, gtin: str, lot_code: str) -> tuple[str | Response, int]:
    if wants_json():
        return jsonify(err.to_dict()), err.status
    return render_template("public/problem.html", error=err, gtin=gtin, lot_code=lot_code), err.status


@bp.get("/01/<gtin>/10/<path:lot_code>")
def lot(gtin: str, lot_code: str) -> str | Response | tuple[str | Response, int]:
    """The consumer page of a lot (GS1 Digital Link). It reads the store only: the verification state shown
    is the one last computed against the chain, never "verified" without that check.

    Served from the page cache (``page_cache``) under the version of the lot's lineage, read on every
    request, with an ETag: a browser revalidates each time (``no-cache``) and gets a 304 while nothing the
    page shows has changed; a recall, hold or new event anywhere in the lineage changes the version at once."""
    ctx = get_ctx()
    serial = None
    try:
        found = lot_service.get_lot(ctx, gtin, lot_code)
    except (NotFound, InvalidInput) as err:
        # /10/{lot}/21/{serial}: one pack of the lot (a lot code holding "/21/" itself was tried first)
        parts = split_serial(lot_code)
        try:
            if parts is None:
                raise err
            found = lot_service.get_lot(ctx, gtin, parts[0])
            serial = parts[1]
        except NotFound as missing:
            # A lot we do not know of a product we do: the product's page, asking for the lot code again.
            return _product(ctx, gtin, missing, lot_code=lot_code)
        except InvalidInput as bad:
            return _problem(bad, gtin, lot_code)
    as_json = wants_json()
    if page_cache.cache().size == 0 or _personal():  # no cache configured, or a page for this viewer alone
        response = _render(ctx, found, as_json, None, serial).response()
        response.headers["Cache-Control"] = "private, no-cache" if _personal() else "no-cache"
        return response
    store = page_cache.cache()
    line = store.compliance(found.creator_org_id, lambda: views.compliance_line(ctx, found.creator))
    version = views.consumer_version(ctx, found, line)
    # the serial is part of what the page shows (JSON: `serial`), so it is part of the key
    fmt = ("json" if as_json else "html") + (f"/21/{serial}" if serial is not None else "")
    key = page_cache.key_of(found.id, fmt, version)
    etag = page_cache.etag_of(key)
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        page = store.get(key)
        if page is None:
            page = _render(ctx, found, as_json, version["compliance"], serial)
            store.put(key, page)
        response = page.response()
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, no-cache"
    response.vary.update(("Accept", "Accept-Language", "Cookie"))
    return response


def _personal() -> bool:
    """Whether this viewer's page differs from everyone else's: signed in (the header names them and holds a
    form token) or with a message waiting to be shown once."""
    return current_user() is not None or bool(session.get("_flashes"))


def _render(
    ctx: Ctx, found: Lot, as_json: bool, compliance: dict[str, str] | None, serial: str | None = None
) -> page_cache.Page:
    data = views.consumer_view(ctx, found, compliance, every_step=as_json)
    if serial is not None:
        data = data | {"serial": serial}
    if as_json:
        return page_cache.Page(current_app.json.dumps(data).encode(), "application/json")
    body = render_template("public/lot.html", d=data).encode()
    return page_cache.Page(body, "text/html", (("Link", f'<{data["lot"]["digital_link"]}>; rel="canonical"'),))


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


def _product(
    ctx: Ctx, gtin: str, lot_error: NotFound | None = None, lot_code: str = "", **page: Any
) -> str | Response | tuple[str | Response, int]:
    """The product's page (what it is, who makes it, a lot-code prompt); the problem page when the GTIN is
    malformed or unknown. With ``lot_error`` (an unknown lot) the answer stays a 404."""
    try:
        product = views.product_page(ctx, gtin)
    except (InvalidInput, NotFound) as err:
        return _problem(lot_error or err, gtin, lot_code)
    status = lot_error.status if lot_error else 200
    if wants_json():
        return (jsonify(lot_error.to_dict() | product) if lot_error else jsonify(product | page)), status
    unknown = lot_code if lot_error else None
    return render_template("public/product.html", p=product, unknown_lot=unknown, **page), status


@bp.get("/01/<gtin>")
def product(gtin: str) -> str | Response | tuple[str | Response, int]:
    """A Digital Link naming only the product (no lot): the product and "enter the lot code"."""
    return _product(get_ctx(), gtin)


@bp.get("/01/<gtin>/21/<path:serial>")
def serialised(gtin: str, serial: str) -> str | Response | tuple[str | Response, int]:
    """A serialised Digital Link (GS1 AI 21): a serial number names one pack. When the captured EPCIS events
    tie the pack to one lot Lotline knows, this is that lot's page (``/01/{gtin}/10/{lot}/21/{serial}``);
    otherwise the product's page asks for the lot code printed on it."""
    ctx = get_ctx()
    try:
        gtin14 = parse_gtin(gtin)
    except InvalidInput:
        return _product(ctx, gtin, serial=serial)
    found = epcis_serials.lot_of(ctx, gtin14, serial)
    if found is None:
        return _product(ctx, gtin, serial=serial)
    return redirect(f"{digital_link_path(found.gtin, found.lot_code)}/21/{quote(serial, safe='')}")


@bp.get("/glossary")
def glossary() -> str:
    """The technical words the pages use, in plain language; pages link to its terms by anchor."""
    return render_template("public/glossary.html")
