"""Queries that are more than a ``select()`` one-liner: lineage walks over ``lot_inputs``.

Each walk is one recursive CTE, so a trace costs one round trip however deep the lineage is, on SQLite and
PostgreSQL alike. The CTE uses UNION (not UNION ALL): a lot reached along several paths at the same depth
(a diamond) is kept once per depth, which bounds the work by lots x depth instead of the number of paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, cast, func, literal, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, selectinload

from .models import ChainDeployment, Event, Lot, LotInput, Organisation


def named_organisation(relationship: Any, *, joined: bool = False) -> Any:
    """A loader option for an organisation that is only named or compared by its fields (an event's actor, a
    lot's creator, a site's owner): loaded with its parent rows, without its company prefixes, which the model
    loads with every organisation in a second statement; they are left to load only if something reads them.
    ``joined``: in the parent rows' own statement (a join) rather than a second one, where a page counts its
    statements."""
    loader = joinedload if joined else selectinload
    return loader(relationship).lazyload(Organisation.extra_prefixes)


MAX_LINEAGE_DEPTH = 256
"""Deeper than any real supply chain; it stops a walk should bad data ever contain a cycle."""


def ancestors(session: Session, lot_pk: int, *, max_depth: int = MAX_LINEAGE_DEPTH) -> list[tuple[int, int]]:
    """Every lot ``lot_pk`` was made from, directly or not (backward trace), as ``(lot pk, depth)``.

    Depth 1 is a direct input. A lot reached along paths of different lengths gets the shortest. Ordered by
    depth, then lot pk; ``lot_pk`` itself is not included.
    """
    return _walk(session, lot_pk, LotInput.output_lot_id, LotInput.input_lot_id, max_depth)


def descendants(session: Session, lot_pk: int, *, max_depth: int = MAX_LINEAGE_DEPTH) -> list[tuple[int, int]]:
    """Every lot made from ``lot_pk``, directly or not (forward trace, the reach of a recall).

    Same shape and order as ``ancestors``.
    """
    return _walk(session, lot_pk, LotInput.input_lot_id, LotInput.output_lot_id, max_depth)


def _walk(
    session: Session,
    lot_pk: int,
    from_column: InstrumentedAttribute[int],
    to_column: InstrumentedAttribute[int],
    max_depth: int,
) -> list[tuple[int, int]]:
    query = _walk_query(from_column.key, to_column.key)
    rows = session.execute(query, {"lot_pk": int(lot_pk), "max_depth": max_depth})
    return [(int(pk), int(d)) for pk, d in rows]


@cache
def _walk_query(from_key: str, to_key: str) -> Select[Any]:
    """``_walk``'s statement for one direction, built once: the lot page walks a lineage on every request, and
    building the recursive statement cost more than running it."""
    from_column, to_column = getattr(LotInput, from_key), getattr(LotInput, to_key)
    # A literal 1 rather than a bound parameter: psycopg may send a small int as smallint, and PostgreSQL
    # insists that both halves of a recursive CTE agree on the column type.
    one = literal_column("1", Integer)
    lot_pk = bindparam("lot_pk", type_=Integer)
    seed = select(to_column.label("lot_pk"), one.label("depth")).where(from_column == lot_pk)
    lineage = seed.cte("lineage", recursive=True)
    step = (
        select(to_column, lineage.c.depth + one)
        .join(lineage, from_column == lineage.c.lot_pk)
        .where(lineage.c.depth < bindparam("max_depth", type_=Integer))
    )
    lineage = lineage.union(step)
    depth = func.min(lineage.c.depth).label("depth")
    return (
        select(lineage.c.lot_pk, depth)
        .where(lineage.c.lot_pk != lot_pk)  # only reachable through a cycle, which the chain forbids
        .group_by(lineage.c.lot_pk)
        .order_by(depth, lineage.c.lot_pk)
    )


def reach(session: Session, start_pks: list[int], *, max_depth: int = MAX_LINEAGE_DEPTH) -> list[tuple[int, int]]:
    """Every ``(start, lot)`` where ``lot`` was made, directly or not, from one of ``start_pks`` (the lots a set
    of recalls reaches), in one recursive query whatever the number of starts. Starts are not included."""
    if not start_pks:
        return []
    one = literal_column("1", Integer)
    seed = select(
        LotInput.input_lot_id.label("start_pk"), LotInput.output_lot_id.label("lot_pk"), one.label("depth")
    ).where(LotInput.input_lot_id.in_(start_pks))
    lineage = seed.cte("reach", recursive=True)
    step = (
        select(lineage.c.start_pk, LotInput.output_lot_id, lineage.c.depth + one)
        .join(lineage, LotInput.input_lot_id == lineage.c.lot_pk)
        .where(lineage.c.depth < max_depth)
    )
    lineage = lineage.union(step)
    query = (
        select(lineage.c.start_pk, lineage.c.lot_pk)
        .where(lineage.c.start_pk != lineage.c.lot_pk)
        .distinct()
        .order_by(lineage.c.lot_pk, lineage.c.start_pk)
    )
    return [(int(start), int(pk)) for start, pk in session.execute(query)]


@dataclass(frozen=True)
class LineageVersion:
    """What moves whenever anything the scan page shows of a lot and its ancestors changes (``lineage_version``)."""

    lots: int
    """The lot and its ancestors."""
    revisions: int
    """The sum of their ``Lot.revision``: every counter only grows, so any bump moves the sum. It moves with every
    update of a lot's row: an event confirmed (its counter and head), a status (hold, recall, release, recall
    end), custody, a verification."""
    unconfirmed: tuple[int, int, int]
    """Their events not confirmed: how many, the newest's key, how many still pending. A pending event shows on
    the page before its lot's row changes; it moves this when written and again when it fails."""
    oldest_check: datetime | None
    """The oldest ``verified_at`` among them; None when one was never checked."""
    deployment: int | None
    """The newest ledger deployment's key (the page names the contract)."""

    @property
    def key(self) -> str:
        count, newest, pending = self.unconfirmed
        return f"{self.lots}.{self.revisions}.{count}.{newest}.{pending}.{self.deployment or 0}"


def lineage_version(session: Session, lot_pk: int, *, max_depth: int = MAX_LINEAGE_DEPTH) -> LineageVersion:
    """The version of a lot's lineage in one statement: the backward walk (seeded with the lot itself at depth
    0) feeding an aggregate over the primary key of ``lots`` and one over the lineage's unconfirmed events.
    Takes no lock and never reads a confirmed event."""
    params = {"lot_pk": int(lot_pk), "max_depth": max_depth}
    row = session.execute(_lineage_version_query(), params).one()
    lots, revisions, oldest, checked, count, newest, pending, deployed = row
    return LineageVersion(
        lots=int(lots),
        revisions=int(revisions),
        unconfirmed=(int(count), int(newest or 0), int(pending or 0)),
        oldest_check=oldest if checked == lots else None,
        deployment=None if deployed is None else int(deployed),
    )


@cache
def _lineage_version_query() -> Select[Any]:
    """``lineage_version``'s statement, built once: it runs on every scan, and building it costs more than
    running it."""
    one = literal_column("1", Integer)
    # Cast: psycopg may send a small int as smallint, and both halves of a recursive CTE must agree on the type.
    start = cast(bindparam("lot_pk", type_=Integer), Integer)
    seed = select(start.label("lot_pk"), literal_column("0", Integer).label("depth"))
    lineage = seed.cte("lineage", recursive=True)
    step = (
        select(LotInput.input_lot_id, lineage.c.depth + one)
        .join(lineage, LotInput.output_lot_id == lineage.c.lot_pk)
        .where(lineage.c.depth < bindparam("max_depth", type_=Integer))
    )
    lineage = lineage.union(step)
    # Each lot's unconfirmed events by an index probe on its key (``ix_events_unconfirmed_lot_id``): never a read
    # of every unconfirmed event of the store. The value in the SQL, not bound, so the partial index applies.
    unconfirmed = (Event.lot_id == Lot.id) & (Event.status != literal("confirmed", literal_execute=True))
    pending = unconfirmed & (Event.status == literal("pending", literal_execute=True))
    per_lot = (
        select(
            Lot.revision,
            Lot.verified_at,
            select(func.count(Event.id)).where(unconfirmed).correlate(Lot).scalar_subquery().label("unconfirmed"),
            select(func.max(Event.id)).where(unconfirmed).correlate(Lot).scalar_subquery().label("newest"),
            select(func.count(Event.id)).where(pending).correlate(Lot).scalar_subquery().label("pending"),
        )
        .where(Lot.id.in_(select(lineage.c.lot_pk)))
        .subquery("lineage_lots")
    )
    deployment = select(func.max(ChainDeployment.id)).scalar_subquery()
    return select(
        func.count(),
        func.coalesce(func.sum(per_lot.c.revision), 0),
        func.min(per_lot.c.verified_at),
        func.count(per_lot.c.verified_at),
        func.coalesce(func.sum(per_lot.c.unconfirmed), 0),
        func.max(per_lot.c.newest),
        func.coalesce(func.sum(per_lot.c.pending), 0),
        deployment,
    )
