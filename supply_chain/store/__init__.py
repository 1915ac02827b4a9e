"""The off-chain store: SQLAlchemy models, engine and session handling, Alembic migrations, lineage queries.

- ``models``: the tables (organisations, lots, events, inspections, recalls, sensor batches, ...).
- ``db``: engine and session factories, ``session_scope`` and ``migrate`` (Alembic ``upgrade head``).
- ``queries``: SQL that is more than a ``select()`` one-liner (recursive lineage walks).
"""
