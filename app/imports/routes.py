"""``/imports``: upload a file, check it (every row, nothing written), import it as a job, follow its progress.

The words on these pages live here and in the templates (translated with the rest of the interface); the
service answers with codes, row numbers and the file's own column headers."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from app.imports import bp
from app.web import CREATOR_ROLES, HANDLER_ROLES, RECEIVING_ROLES, get_ctx, require_org, roles_required, wants_json
from supply_chain.domain import policy
from supply_chain.domain.errors import InvalidInput
from supply_chain.services import imports
from supply_chain.services.epcis import jobs
from supply_chain.store.models import CaptureJob

IMPORT_ROLES = tuple(dict.fromkeys(CREATOR_ROLES + HANDLER_ROLES + RECEIVING_ROLES))
REFRESH_SECONDS = 2
"""How often the page of a queued or running import reloads itself."""
SHOWN_ERRORS = 500
"""Row errors listed on the page (the count says how many there are in all)."""


def _limits() -> dict[str, Any]:
    return {"max_rows": policy.MAX_IMPORT_ROWS, "max_mib": policy.MAX_IMPORT_BYTES // (1024 * 1024)}


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    ctx, org = get_ctx(), require_org()
    recent = list(
        ctx.session.scalars(
            select(CaptureJob)
            .where(CaptureJob.organisation_id == org.id, CaptureJob.source == "import")
            .order_by(CaptureJob.id.desc())
            .limit(10)
        )
    )
    return render_template("imports/index.html", recent=recent, **_limits(), **context), status


@bp.get("/imports")
@roles_required(*IMPORT_ROLES)
def index() -> tuple[str, int]:
    """The upload form, the template links and the organisation's recent imports."""
    return _page()


@bp.get("/imports/template.<fmt>")
@roles_required(*IMPORT_ROLES)
def template(fmt: str) -> Response:
    data, media = imports.template(fmt)
    response = Response(data, mimetype=media.split(";")[0])
    response.headers["Content-Disposition"] = f'attachment; filename="lotline-import.{fmt}"'
    return response


@bp.post("/imports/check")
@roles_required(*IMPORT_ROLES)
def check() -> tuple[str, int]:
    """The dry run: read the file and check every row; nothing is written. An acceptable file is kept (staged)
    for the Import button; a refused one is answered with every row's error."""
    ctx, org = get_ctx(), require_org()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise InvalidInput("choose a CSV or XLSX file to upload", field="file", code="missing_file")
        document = imports.read_file(upload.read(), upload.filename, upload.mimetype or "")
        plan = imports.plan_import(ctx, org, document)
    except imports.ImportRejected as exc:
        ctx.session.rollback()
        errors = exc.details["errors"]
        return _page(
            422,
            rejected=True,
            errors=errors[:SHOWN_ERRORS],
            error_count=len(errors),
            rows_total=len(exc.results),
            filename=upload.filename if upload else "",
        )
    except InvalidInput as exc:
        ctx.session.rollback()
        return _page(400, file_error=exc, filename=upload.filename if upload else "")
    ctx.session.rollback()
    token = imports.stage(ctx, org, document, jobs.prepared_plan(ctx, plan))
    return _page(200, checked=imports.summary(document, plan), staged=token, filename=document["filename"])


@bp.post("/imports")
@roles_required(*IMPORT_ROLES)
def create() -> Response | tuple[str, int]:
    """Import a checked file as a job: its dry run's plan is used while no lot has changed since; otherwise
    every row is checked again."""
    ctx, org = get_ctx(), require_org()
    token = request.form.get("staged", "")
    try:
        document, prepared = imports.staged(ctx, org, token)
        job, earlier = jobs.submit(ctx, org, document, source="import", prepared=prepared)
    except imports.ImportRejected as exc:
        ctx.session.rollback()
        errors = exc.details["errors"]
        return _page(
            422, rejected=True, errors=errors[:SHOWN_ERRORS], error_count=len(errors), rows_total=len(exc.results)
        )
    except InvalidInput as exc:
        ctx.session.rollback()
        return _page(400, file_error=exc)
    ctx.session.commit()
    imports.unstage(ctx, org, token)
    if not earlier and jobs.runs_inline(job):
        jobs.run_job(ctx.runtime, job.id, replan=False)
    elif job.status == "queued" and (worker := current_app.extensions.get("lotline_capture_worker")) is not None:
        worker.wake()
    return redirect(url_for("imports.show", job_id=job.id), code=303)


@bp.get("/imports/<int:job_id>")
@roles_required(*IMPORT_ROLES)
def show(job_id: int) -> Response | str:
    """An import's progress (the page reloads itself until it is done or failed), then its outcome."""
    ctx, org = get_ctx(), require_org()
    job = jobs.get(ctx, org, job_id, source="import")
    data = imports.as_import(jobs.describe(ctx, job), job)
    if wants_json():
        return jsonify(data)
    refused = [r for r in data["rows"] if r["status"] == "rejected"]
    return render_template(
        "imports/show.html",
        job=data,
        refused=refused,
        refresh=REFRESH_SECONDS if data["status"] in ("queued", "running") else None,
        percent=int(100 * data["writes_done"] / data["writes_total"]) if data["writes_total"] else 100,
    )
