"""The `lotline` command line. Exit codes: 0 ok, 1 a finding (tampered, recalled), 2 bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from supply_chain.domain.errors import InvalidInput, LotlineError, NotFound

F = TypeVar("F", bound=Callable[..., Any])


def _runtime():  # noqa: ANN202 - imported lazily so `--help` stays fast
    from supply_chain.services.runtime import Runtime, Settings

    return Runtime(Settings.from_env())


def handle_errors(fn: F) -> F:
    """Turn project errors into a one-line message and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InvalidInput, NotFound) as exc:
            click.echo(f"error: {exc.message}" + (f" (field: {exc.field})" if exc.field else ""), err=True)
            sys.exit(2)
        except LotlineError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1 if exc.status < 500 else 3)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lotline")
def main() -> None:
    """Lotline: food-lot traceability anchored on an EVM chain.

    Settings come from the environment: LOTLINE_HOME (instance folder, default ./instance),
    LOTLINE_DATABASE_URL, LOTLINE_CHAIN_URL (unset = embedded chain), LOTLINE_SECRET_KEY (signs sessions),
    LOTLINE_KEK (encrypts organisation keys), LOTLINE_PUBLIC_URL, LOTLINE_TRUSTED_PROXIES, LOTLINE_WORKERS
    (`serve` processes); notices by e-mail
    and webhook: LOTLINE_SMTP_HOST, LOTLINE_SMTP_PORT, LOTLINE_SMTP_TLS, LOTLINE_SMTP_USER, LOTLINE_SMTP_PASSWORD,
    LOTLINE_MAIL_FROM, LOTLINE_WEBHOOK_ALLOW_PRIVATE (docs/notifications.md).
    """


@main.command()
@handle_errors
def deploy() -> None:
    """Deploy the LotLedger contract on the configured chain (once) and remember its address."""
    from supply_chain.services import orgs

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            d = orgs.deploy(ctx)
            click.echo(f"LotLedger at {d.address} on chain {d.chain_id} (block {d.block_number})")
    finally:
        runtime.close()


@main.command()
@click.option("--reset", is_flag=True, help="Delete the instance folder's database and embedded chain first.")
@handle_errors
def demo(reset: bool) -> None:
    """Seed a realistic leafy-greens scenario: farms, packer, processor, distributor, retailers, inspector,
    regulator, a failed inspection with a hold and a recall that reaches salad-mix lots on retail shelves."""
    from supply_chain.services.demo import reset_instance, seed
    from supply_chain.services.runtime import Runtime, Settings

    settings = Settings.from_env()
    if reset:
        reset_instance(settings)
        settings = Settings.from_env()
    runtime = Runtime(settings)
    try:
        seed(runtime, progress=lambda msg: click.echo(f"  {msg}"))
    finally:
        runtime.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    metavar="N|auto",
    help="Server processes sharing the port (default: LOTLINE_WORKERS, else 1); auto: one per core. Every "
    "process serves pages and writes; on the embedded chain the first holds the chain and the others reach it "
    "through that one (writes answer 503 while it is being started again). Which to use for what load: README, "
    "Serving.",
)
@handle_errors
def serve(host: str, port: int, workers: str | None) -> None:
    """Serve the web app with a production WSGI server (waitress), in one process or several."""
    from app.wsgi import serve as run

    run(host=host, port=port, workers=workers)


@main.command()
@click.argument("gtin", required=False)
@click.argument("lot", required=False)
@click.option("--all", "all_lots", is_flag=True, help="Verify every lot in the store.")
@handle_errors
def verify(gtin: str | None, lot: str | None, all_lots: bool) -> None:
    """Compare stored payloads, head hashes, lot state (status, custody, lineage) and document files with the
    chain. Exit 1 if anything is tampered or unverifiable.

    --all reads and checks the lots 200 at a time in read-only transactions, as the server's scheduled pass does,
    and stores each batch's results in a short write of its own: a server writing meanwhile does not wait on it."""
    from supply_chain.services import lots as lot_service
    from supply_chain.services.epcis import chainmatch
    from supply_chain.services.startup import catch_up, verify_everything
    from supply_chain.services.verify import Verification, verify_lot

    if all_lots == bool(gtin and lot) or (gtin and not lot):
        raise InvalidInput("give either --all or GTIN LOT", field="arguments")
    runtime = _runtime()
    counts = {"lots": 0, "bad": 0}

    def show(r: Verification) -> None:
        click.echo(f"{r.state:<12} {r.lot.gtin} {r.lot.lot_code:<20} {r.detail}")
        counts["lots"] += 1
        counts["bad"] += r.state in ("tampered", "unverifiable")

    try:
        catch_up(runtime)
        if all_lots:
            verify_everything(runtime, report=show)
        else:
            with runtime.ctx() as ctx:
                show(verify_lot(ctx, lot_service.get_lot(ctx, gtin, lot)))
        click.echo(f"{counts['lots']} lots checked, {counts['bad']} with findings")
        bad = counts["bad"]
        if all_lots:
            with runtime.read_ctx() as ctx:
                # captured EPCIS events another instance's organisations signed on this chain
                known = chainmatch.verify_known(ctx)
            for k in known:
                click.echo(f"{k.state:<12} EPCIS event {k.event_id} of lot {k.lot}: {k.detail}")
                bad += k.state != "verified"
            if known:
                checked = sum(k.state == "verified" for k in known)
                click.echo(f"{len(known)} captured events known on chain checked, {checked} verified")
    finally:
        runtime.close()
    sys.exit(1 if bad else 0)


@main.command()
@click.argument("gtin")
@click.argument("lot")
@click.option(
    "--direction",
    type=click.Choice(["backward", "forward"]),
    required=True,
    help="backward: every ancestor lot; forward: every descendant and who holds it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--fail-on-recall", is_flag=True, help="Exit 1 when a traced lot is recalled or affected by a recall.")
@handle_errors
def trace(gtin: str, lot: str, direction: str, as_json: bool, fail_on_recall: bool) -> None:
    """Trace a lot backward (ancestors) or forward (descendants) through transformations."""
    from supply_chain.services import lots as lot_service
    from supply_chain.services import trace as trace_service

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            result = trace_service.trace(ctx, lot_service.get_lot(ctx, gtin, lot), direction)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{direction} trace of {result['lot']['gtin']} {result['lot']['lot_code']}:")
        for item in result["lots"]:
            flag = "RECALLED" if item["recalled"] else ("affected" if item["affected_by_recall"] else "")
            click.echo(
                f"{'  ' * item['depth']}- {item['gtin']} {item['lot_code']} {item['product']} "
                f"[{item['status']}] held by {item['custodian']} {flag}".rstrip()
            )
    if fail_on_recall and any(i["recalled"] or i["affected_by_recall"] for i in result["lots"]):
        sys.exit(1)


@main.command()
@handle_errors
def reindex() -> None:
    """Rebuild the chain index from the chain plus the stored payloads."""
    from supply_chain.services.indexer import reindex as rebuild

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            report = rebuild(ctx)
            click.echo(
                f"reindexed blocks {report.from_block}-{report.to_block}: {report.applied} events applied, "
                f"{report.foreign} foreign logs skipped"
            )
    finally:
        runtime.close()


@main.command()
@click.option("--quick", is_flag=True, help="Fewer repetitions (a smoke run).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write results as JSON.")
@click.option(
    "--load/--no-load",
    default=True,
    show_default=True,
    help="Also serve the instance and load /healthz and the scan pages with 32 clients (cache off, then on).",
)
@click.option(
    "--workers",
    "worker_counts",
    metavar="N,N,...",
    help="Instead: only the load figures against `lotline serve --workers N` for each N (e.g. 1,2,4), on "
    "PostgreSQL (--postgres) and anvil started here, or without --postgres on the defaults (embedded chain, SQLite).",
)
@click.option(
    "--postgres",
    envvar="LOTLINE_BENCH_POSTGRES_URL",
    metavar="URL",
    help="With --workers or --scale: the PostgreSQL database to make a throw-away schema in (dropped after).",
)
@click.option(
    "--scale",
    "scale_sizes",
    metavar="N,N,...",
    help="Instead: the load figures (1 and 32 clients) on anvil-anchored data sets of N events each (e.g. "
    "20000,100000,1000000; built by scripts/scale_store.py, or reused from its cache), on SQLite and, with "
    "--postgres, on PostgreSQL (--workers: the server processes there).",
)
@click.option(
    "--settle",
    type=click.FloatRange(0, 24 * 3600),
    default=None,
    metavar="SECONDS",
    help="With --scale: how long to wait for the server's start-up verification pass to vouch for every lot "
    "before the load begins (default 120; a pass over 100,000 lots takes a few minutes, and a load run beside "
    "it measures the pass too).",
)
@handle_errors
def bench(
    quick: bool,
    json_out: Path | None,
    load: bool,
    worker_counts: str | None,
    postgres: str | None,
    scale_sizes: str | None,
    settle: float | None,
) -> None:
    """Measure write throughput, verification, trace and the consumer page (see docs/benchmarks.md)."""
    from supply_chain.bench import run, run_scale, run_workers

    progress = lambda m: click.echo(f"  {m}", err=True)  # noqa: E731
    counts: tuple[int, ...] = ()
    if worker_counts is not None:
        try:
            counts = tuple(int(n) for n in worker_counts.split(","))
        except ValueError:
            counts = ()
        if not counts or not all(1 <= n <= 64 for n in counts):
            raise InvalidInput(
                f"--workers is a list of counts from 1 to 64, e.g. 1,2,4; got {worker_counts!r}", field="--workers"
            )
    if settle is not None and scale_sizes is None:
        raise InvalidInput("--settle goes with --scale (the wait for a data set's start-up pass)", field="--settle")
    if scale_sizes is not None:
        try:
            sizes = tuple(int(n.replace("_", "")) for n in scale_sizes.split(","))
        except ValueError:
            sizes = ()
        if not sizes or not all(1_000 <= n <= 10_000_000 for n in sizes):
            raise InvalidInput(
                f"--scale is a list of event counts from 1000 to 10000000, e.g. 20000,100000; got {scale_sizes!r}",
                field="--scale",
            )
        results = run_scale(sizes, postgres, counts or (1,), quick=quick, progress=progress, settle=settle)
    elif worker_counts is not None:
        results = run_workers(counts, postgres, quick=quick, progress=progress)
    else:
        results = run(quick=quick, progress=progress, load=load)
    click.echo(results.markdown())
    if json_out:
        json_out.write_text(json.dumps(results.as_dict(), indent=2))


@main.group()
def keys() -> None:
    """Organisation chain keys and the key-encryption key (KEK) that protects them at rest.

    The KEK comes from LOTLINE_KEK, or from the instance folder's `kek` file (created 0600 on first start). It
    is separate from the session secret (LOTLINE_SECRET_KEY), which only signs browser sessions.
    """


@keys.command("rotate-kek")
@handle_errors
def rotate_kek() -> None:
    """Re-encrypt every organisation's chain key under a new key-encryption key, all in one transaction.

    Without LOTLINE_KEK: a new random KEK (or LOTLINE_NEW_KEK, if set) replaces the instance folder's `kek`
    file once every key is re-encrypted; running servers find it there when they next sign, and a crash midway
    is settled at the next start. With LOTLINE_KEK set: put the new KEK (at least 32 characters) in
    LOTLINE_NEW_KEK, run this, then set LOTLINE_KEK to that value for every process before they start again.

    If any key cannot be opened with the current KEK nothing changes (exit 2). Chain addresses stay the same;
    nothing is sent to the chain.
    """
    import os

    from supply_chain.services.keyring import NEW_KEK_ENV

    runtime = _runtime()
    try:
        keyring = runtime.keyring
        new = os.environ.get(NEW_KEK_ENV) or None
        if new is None and not keyring.file_backed:
            raise InvalidInput(
                "LOTLINE_KEK is set: put the new KEK in LOTLINE_NEW_KEK and run again", field=NEW_KEK_ENV
            )
        old_id = keyring.kek_id
        count = keyring.rotate(runtime.sessions, new)
        click.echo(f"{count} organisation keys re-encrypted: KEK {old_id} -> {keyring.kek_id}")
        if not keyring.file_backed:
            click.echo("now set LOTLINE_KEK to the value of LOTLINE_NEW_KEK for every Lotline process", err=True)
    finally:
        runtime.close()


@main.group()
def jobs() -> None:
    """Background work: EPCIS capture jobs accepted by the API (`POST /api/v1/epcis/capture`)."""


@jobs.command("run")
@click.option("--batch-calls", type=click.IntRange(1, 200), default=None, help="Contract calls per batch.")
@handle_errors
def jobs_run(batch_calls: int | None) -> None:
    """Write every queued capture job (and resume those a crashed process left running once their lease has
    passed), batch by batch, then exit. Exit 1 if a job failed. A running server does the same in the
    background; both may run at once (a job is claimed by one of them)."""
    from supply_chain.services.epcis import jobs as capture_jobs

    runtime = _runtime()
    try:
        from supply_chain.services.startup import catch_up

        catch_up(runtime)  # settle pending writes first, as a server does when it starts
        outcome = capture_jobs.run_pending(runtime, batch_calls=batch_calls or capture_jobs.BATCH_CALLS)
        for job_id, status in outcome.items():
            click.echo(f"capture job {job_id}: {status}")
        if not outcome:
            click.echo("no capture job to run")
        if "failed" in outcome.values():
            sys.exit(1)
    finally:
        runtime.close()


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "done", "failed"]), help="Only these.")
@handle_errors
def jobs_list(status: str | None) -> None:
    """Capture jobs of every organisation, newest first: id, organisation, status, events written/total."""
    from sqlalchemy import select

    from supply_chain.store.models import CaptureJob

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            statement = select(CaptureJob).order_by(CaptureJob.id.desc())
            if status:
                statement = statement.where(CaptureJob.status == status)
            for job in ctx.session.scalars(statement):
                click.echo(
                    f"{job.id}\t{job.organisation.name}\t{job.status}\t{job.events_written}/{job.events_total}"
                    f"\t{job.error_message or ''}"
                )
    finally:
        runtime.close()


@jobs.command("prune")
@click.option(
    "--days", type=click.IntRange(0, 36_500), default=30, show_default=True, help="Keep documents this many days."
)
@handle_errors
def jobs_prune(days: int) -> None:
    """Drop the documents and plans of capture jobs finished more than DAYS ago (the job, its counts and
    per-event results stay; the events it wrote keep their payloads). A running server does this daily with
    the default."""
    from datetime import timedelta

    from supply_chain.services.epcis import jobs as capture_jobs

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            pruned = capture_jobs.prune(ctx, timedelta(days=days))
            ctx.session.commit()
        click.echo(f"{pruned} capture job document{'s' if pruned != 1 else ''} dropped")
    finally:
        runtime.close()


@main.group()
def recalls() -> None:
    """The recall lifecycle's operator commands (the regulator's pages are under /admin/recalls)."""


@recalls.command("remind")
@click.option("--recall", "recall_id", type=int, help="Only this recall (its id); default every open recall.")
@handle_errors
def recalls_remind(recall_id: int | None) -> None:
    """Notify again every holder that has not acknowledged an open (issued, not terminated) recall; the
    reminder is sent in the name of the recall's issuer and recorded in its history."""
    from supply_chain.services import recalls as recall_service

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            chosen = (
                [recall_service.get_recall(ctx, recall_id)] if recall_id else list(recall_service.open_recalls(ctx))
            )
            for recall in chosen:
                reminded = recall_service.remind(ctx, recall.issuer, None, recall)
                names = ", ".join(o.name for o in reminded) or "nobody (every holder has answered)"
                click.echo(f"recall {recall.id} of lot {recall.lot.lot_code}: reminded {names}")
            if not chosen:
                click.echo("no open recall")
            ctx.session.commit()
    finally:
        runtime.close()


@main.group()
def deliveries() -> None:
    """Outbound notices: e-mail (LOTLINE_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD, LOTLINE_MAIL_FROM) and
    signed webhooks, sent after the change they tell about is committed, retried with back-off."""


@deliveries.command("run")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (exit 1 if a delivery failed).")
@click.option(
    "--poll", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True, help="Seconds between passes."
)
@handle_errors
def deliveries_run(once: bool, poll: float) -> None:
    """Send due e-mail and webhook deliveries (and retries whose time has come). A running server does the
    same in the background; both may run at once (each delivery is claimed by one of them)."""
    from supply_chain.services import delivery

    runtime = _runtime()
    try:
        if not once:
            click.echo(f"sending deliveries every {poll:g} s; Ctrl+C stops")
            try:
                delivery.run_forever(runtime, poll)
            except KeyboardInterrupt:
                return
        outcome = delivery.run_due(runtime)
        for delivery_id, status in outcome.items():
            click.echo(f"delivery {delivery_id}: {status}")
        if not outcome:
            click.echo("no delivery is due")
        if "failed" in outcome.values():
            sys.exit(1)
    finally:
        runtime.close()


@deliveries.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "sending", "delivered", "failed", "not_configured", "cancelled"]),
    help="Only these.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@handle_errors
def deliveries_list(status: str | None, limit: int) -> None:
    """Deliveries of every organisation, newest first: id, organisation, channel, recipient, topic, status,
    attempts, next attempt, last error."""
    from sqlalchemy import select

    from supply_chain.store.models import Delivery

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            statement = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
            if status:
                statement = statement.where(Delivery.status == status)
            for row in ctx.session.scalars(statement):
                next_at = row.next_attempt_at.isoformat(timespec="seconds") if row.next_attempt_at else "-"
                click.echo(
                    f"{row.id}\t{row.organisation.name}\t{row.channel}\t{row.recipient}\t{row.topic}\t{row.status}"
                    f"\t{row.attempts}\t{next_at}\t{row.last_error or ''}"
                )
    finally:
        runtime.close()


@main.group()
def export() -> None:
    """Export records: the FSMA 204 sortable spreadsheet and EPCIS 2.0 documents."""


@export.command("fsma204")
@click.option("--lot", "lot_ref", metavar="GTIN/LOT", help="One lot, e.g. 00614141000012/GV-ROM-2611A.")
@click.option("--product", metavar="GTIN", help="Every lot of a product with a CTE between --from and --to.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First day (with --product).")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last day (with --product).")
@click.option(
    "--chain",
    is_flag=True,
    help="Add the whole trace: every lot the selection was made from and every lot made from it.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.csv or FILE.xlsx (the format follows the extension).",
)
@handle_errors
def export_fsma204(
    lot_ref: str | None, product: str | None, date_from: str | None, date_to: str | None, chain: bool, out: Path
) -> None:
    """Write the FSMA 204 electronic sortable spreadsheet: one row per critical tracking event with its key data
    elements (docs/fsma204.md)."""
    from supply_chain.services import fsma
    from supply_chain.services import lots as lot_service

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in fsma.FORMATS:
        raise InvalidInput(f"--out must end in .csv or .xlsx, got {out.name!r}", field="--out")
    if bool(lot_ref) == bool(product):
        raise InvalidInput("give either --lot GTIN/LOT or --product GTIN --from DATE --to DATE", field="--lot")
    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            selection: dict[str, Any] = {"chain": chain}
            if lot_ref:
                gtin, sep, code = lot_ref.partition("/")
                if not sep or date_from or date_to:
                    raise InvalidInput("--lot is GTIN/LOT, without --from/--to", field="--lot")
                selection["lot"] = lot_service.get_lot(ctx, gtin, code)
            else:
                selection |= {"product": product, "date_from": date_from, "date_to": date_to}
            table = fsma.rows(ctx, fsma.select_events(ctx, **selection))
    finally:
        runtime.close()
    out.write_bytes(fsma.to_csv(table) if fmt == "csv" else fsma.to_xlsx(table))
    click.echo(f"{len(table)} critical tracking events written to {out}", err=True)


@export.command("epcis")
@click.argument("gtin")
@click.argument("lot")
@click.option("--ancestors", is_flag=True, help="Also export the events of every lot this lot was made from.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "xml"]),
    default="json",
    show_default=True,
    help="EPCIS 2.0 JSON-LD, or EPCIS 2.0 XML (valid against the standard's XSD).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE instead of stdout.")
@handle_errors
def export_epcis(gtin: str, lot: str, ancestors: bool, fmt: str, out: Path | None) -> None:
    """Print a lot's events as an EPCIS 2.0 JSON-LD (or XML) document (docs/epcis.md)."""
    from supply_chain.services import epcis
    from supply_chain.services import lots as lot_service
    from supply_chain.services.epcis import xml as epcis_xml

    runtime = _runtime()
    try:
        with runtime.ctx() as ctx:
            document = epcis.export_lot(ctx, lot_service.get_lot(ctx, gtin, lot), ancestors=ancestors)
    finally:
        runtime.close()
    if fmt == "xml":
        data = epcis_xml.document_to_xml(document)
    else:
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"{len(document['epcisBody']['eventList'])} EPCIS events written to {out}", err=True)


if __name__ == "__main__":
    main()
