"""The standard query interface's further parameters (issue 10).

- ``epcis_event_epcs.role`` tells the lists apart: ``epc`` (epcList, childEPCs), ``in_epc``/``out_epc``
  (inputEPCList/outputEPCList), ``parent``, ``class`` (quantityList, childQuantityList),
  ``inclass``/``outclass`` (inputQuantityList/outputQuantityList), and the new ``biztx``, ``source``,
  ``dest`` (bizTransactionList, sourceList, destinationList), whose type goes into the new ``qualifier``
  column (``EQ_bizTransaction_{type}``, ``EQ_source_{type}``, ``EQ_destination_{type}``); ``rp_in``/``bl_in``
  name the GLN a sub-location read point or business location (``.../414/{gln}/254/{ext}``) lies in
  (``WD_readPoint``, ``WD_bizLocation``).
- Rows written before: an event's ``epc`` rows were inserted in the order epcList, childEPCs, inputEPCList,
  outputEPCList (its ``class`` rows: quantityList, childQuantityList, inputQuantityList, outputQuantityList),
  so the rows of each event, by id, are given their list's role by position; the business transactions,
  sources and destinations of stored events are added (identifiers normalised as capture does).

Written out by hand, never importing the models (see 0001).

Revision ID: 0019_epcisquery
Revises: 0018_epcisrt
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0019_epcisquery"
down_revision: str | Sequence[str] | None = "0018_epcisrt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EPC_ROLES = (("epcList", "epc"), ("childEPCs", "epc"), ("inputEPCList", "in_epc"), ("outputEPCList", "out_epc"))
_CLASS_ROLES = (
    ("quantityList", "class"),
    ("childQuantityList", "class"),
    ("inputQuantityList", "inclass"),
    ("outputQuantityList", "outclass"),
)
_TYPED = (
    ("bizTransactionList", "bizTransaction", "biztx", "btt"),
    ("sourceList", "source", "source", "sdt"),
    ("destinationList", "destination", "dest", "sdt"),
)


def _bare(value: str, kind: str) -> str:
    lowered = value.lower()
    for prefix in (
        f"urn:epcglobal:cbv:{kind}:",
        f"https://ref.gs1.org/cbv/{kind}-",
        f"https://gs1.org/voc/{kind}-",
        f"http://ns.gs1.org/cbv/{kind}-",
    ):
        if lowered.startswith(prefix.lower()):
            return value[len(prefix) :]
    return value


def _normal(value: str) -> str:
    from epcis_event_hash_generator import dl_normaliser

    try:
        normal = dl_normaliser.normaliser(value)
    except Exception:  # noqa: BLE001 - as capture: odd text stands for itself
        normal = None
    return normal or value


def _events(connection: Any) -> Iterator[Any]:
    """Every stored event, 500 at a time (a large repository is never held in memory whole)."""
    after = 0
    while True:
        batch = connection.execute(
            sa.text(
                "SELECT id, body, read_point, biz_location FROM epcis_events WHERE id > :after ORDER BY id LIMIT 500"
            ),
            {"after": after},
        ).fetchall()
        if not batch:
            return
        yield from batch
        after = batch[-1][0]


def upgrade() -> None:
    op.add_column("epcis_event_epcs", sa.Column("qualifier", sa.String(length=300), nullable=True))
    connection = op.get_bind()
    for event_pk, raw, read_point, biz_location in _events(connection):
        for place, role in ((read_point, "rp_in"), (biz_location, "bl_in")):
            if place and "/254/" in place:
                connection.execute(
                    sa.text("INSERT INTO epcis_event_epcs (event_pk, role, epc) VALUES (:pk, :role, :epc)"),
                    {"pk": event_pk, "role": role, "epc": place.split("/254/", 1)[0]},
                )
        body: Any = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(body, dict):
            continue
        rows = connection.execute(
            sa.text("SELECT id, role FROM epcis_event_epcs WHERE event_pk = :pk ORDER BY id"), {"pk": event_pk}
        ).fetchall()
        epc_ids = [r[0] for r in rows if r[1] == "epc"]
        class_ids = [r[0] for r in rows if r[1] == "class"]
        epc_roles = [role for name, role in _EPC_ROLES for v in body.get(name) or [] if isinstance(v, str)]
        class_roles = [
            role
            for name, role in _CLASS_ROLES
            for e in body.get(name) or []
            if isinstance(e, dict) and isinstance(e.get("epcClass"), str)
        ]
        for ids, roles in ((epc_ids, epc_roles), (class_ids, class_roles)):
            if len(ids) != len(roles):
                continue  # not written by this code's capture: left as it was
            for row_id, role in zip(ids, roles, strict=True):
                if role not in ("epc", "class"):
                    connection.execute(
                        sa.text("UPDATE epcis_event_epcs SET role = :role WHERE id = :id"), {"role": role, "id": row_id}
                    )
        for name, key, role, kind in _TYPED:
            for element in body.get(name) or []:
                if isinstance(element, dict) and isinstance(element.get(key), str):
                    kind_of = element.get("type")
                    connection.execute(
                        sa.text(
                            "INSERT INTO epcis_event_epcs (event_pk, role, epc, qualifier)"
                            " VALUES (:pk, :role, :epc, :q)"
                        ),
                        {
                            "pk": event_pk,
                            "role": role,
                            "epc": _normal(element[key])[:500],
                            "q": _bare(kind_of, kind)[:300] if isinstance(kind_of, str) else None,
                        },
                    )


def downgrade() -> None:
    op.execute("DELETE FROM epcis_event_epcs WHERE role IN ('biztx', 'source', 'dest', 'rp_in', 'bl_in')")
    op.execute("UPDATE epcis_event_epcs SET role = 'epc' WHERE role IN ('in_epc', 'out_epc')")
    op.execute("UPDATE epcis_event_epcs SET role = 'class' WHERE role IN ('inclass', 'outclass')")
    op.drop_column("epcis_event_epcs", "qualifier")
