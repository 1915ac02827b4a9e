"""Queries that are more than a ``select()`` one-liner: lineage walks over ``lot_inputs``.

Each walk is one recursive CTE, so a trace costs one round trip however deep the lineage is, on SQLite and
PostgreSQL alike. The CTE uses UNION (not UNION ALL): a lot reached along several paths at the same depth
(a diamond) is kept once per depth, which bounds the work by lots x depth instead of the number of paths.
"""

from __future__ import annotations

from sqlalchemy import Integer, func, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from .models import LotInput

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
    # A literal 1 rather than a bound parameter: psycopg may send a small int as smallint, and PostgreSQL
    # insists that both halves of a recursive CTE agree on the column type.
    one = literal_column("1", Integer)
    seed = select(to_column.label("lot_pk"), one.label("depth")).where(from_column == lot_pk)
    lineage = seed.cte("lineage", recursive=True)
    step = (
        select(to_column, lineage.c.depth + one)
        .join(lineage, from_column == lineage.c.lot_pk)
        .where(lineage.c.depth < max_depth)
    )
    lineage = lineage.union(step)
    depth = func.min(lineage.c.depth).label("depth")
    query = (
        select(lineage.c.lot_pk, depth)
        .where(lineage.c.lot_pk != lot_pk)  # only reachable through a cycle, which the chain forbids
        .group_by(lineage.c.lot_pk)
        .order_by(depth, lineage.c.lot_pk)
    )
    return [(int(pk), int(d)) for pk, d in session.execute(query)]


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
