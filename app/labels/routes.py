from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from flask import Response, render_template, request
from qrcode.constants import ERROR_CORRECT_M

from app.labels import bp
from app.web import HANDLER_ROLES, get_ctx, require_org, roles_required, visible_lot
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.identifiers import digital_link
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services import views

QUIET_ZONE = 4
"""Modules of white border the QR specification requires around the symbol."""
MAX_LABELS = 40


def _qr(url: str, box_size: int = 10) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=QUIET_ZONE)
    code.add_data(url)
    code.make(fit=True)
    return code


def _link(gtin: str, lot_code: str) -> str:
    lot = lot_service.get_lot(get_ctx(), gtin, lot_code)
    return digital_link(get_ctx().settings.public_url, lot.gtin, lot.lot_code)


def _cached(body: bytes, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/01/<gtin>/10/<path:lot_code>/qr.png")
def qr_png(gtin: str, lot_code: str) -> Response:
    """The lot's GS1 Digital Link as a QR code PNG (error correction M, 4-module quiet zone)."""
    buffer = io.BytesIO()
    _qr(_link(gtin, lot_code)).make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return _cached(buffer.getvalue(), "image/png")


@bp.get("/01/<gtin>/10/<path:lot_code>/qr.svg")
def qr_svg(gtin: str, lot_code: str) -> Response:
    """The same QR code as SVG, for print."""
    image = _qr(_link(gtin, lot_code)).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    return _cached(image.to_string(encoding="unicode").encode(), "image/svg+xml")


@bp.get("/lots/<int:lot_id>/labels")
@roles_required(*HANDLER_ROLES)
def sheet(lot_id: int) -> str:
    """A sheet of shelf labels for a lot (product, GTIN, lot code, pack date, QR), for A4 and Letter."""
    lot = visible_lot(lot_id)
    lot_service.check(get_ctx(), Action.PRINT_LABELS, require_org(), lot)  # never for a recalled lot
    raw = request.args.get("count", "8")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LABELS:
        raise InvalidInput(f"count must be a whole number from 1 to {MAX_LABELS}", field="count")
    link = digital_link(get_ctx().settings.public_url, lot.gtin, lot.lot_code)
    return render_template("labels/sheet.html", lot=lot, count=int(raw), link=link, dated=views.label_date(lot))
