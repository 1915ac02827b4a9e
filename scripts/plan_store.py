"""A generated store for query plans and timings: ~100k events over ~10k lots with lineage, in seconds.

Not a chain-anchored data set (``lotline bench`` and the 1M scale script are): rows are bulk-inserted copies
of one realistic event per kind, with distinct transaction hashes and block numbers, so the store has the
shape and the index statistics of a real one (farm lots -> packed lots -> transformed lots, a lot of depth
~10, one made of 50 ingredients, a few holds, failed inspections and recalls, ~1% pending or failed rows) but
nothing verifies against a chain. Used by tests/integration/test_query_plans.py and for the figures in
docs/benchmarks.md (``python scripts/plan_store.py sqlite:///tmp/plans.db``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from supply_chain.domain.hashing import keccak256, payload_hash
from supply_chain.domain.identifiers import gtin_check_digit, lot_id
from supply_chain.domain.kinds import EventKind
from supply_chain.store.models import (
    Event,
    Inspection,
    Location,
    Lot,
    LotInput,
    Organisation,
    Product,
    Recall,
)

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)

# One realistic payload per kind a lot goes through (what the services store for the demo's lettuce).
PAYLOADS: dict[EventKind, dict[str, Any]] = {
    EventKind.HARVESTING: {
        "commodity": "romaine lettuce", "quantity": "1200", "unit": "kg", "harvest_date": "2026-01-05",
        "location_gln": "", "field_name": "North block 4", "container": "bins", "notes": "dry morning",
    },
    EventKind.COOLING: {
        "cooling_date": "2026-01-05", "location_gln": "", "quantity": "1200", "unit": "kg", "temperature_c": "2",
    },
    EventKind.INITIAL_PACKING: {
        "pack_date": "2026-01-06", "location_gln": "", "quantity": "1150", "unit": "kg", "packaging": "cartons",
    },
    EventKind.SHIPPING: {
        "ship_date": "2026-01-06", "from_gln": "", "to_gln": "", "quantity": "1150", "unit": "kg",
        "carrier": "Valley Reefers", "reference": "BOL-448812",
    },
    EventKind.RECEIVING: {
        "receive_date": "2026-01-07", "to_gln": "", "quantity": "1150", "unit": "kg", "reference": "BOL-448812",
    },
    EventKind.OBSERVATION: {"observation_date": "2026-01-07", "location_gln": "", "notes": "temperature log ok"},
    EventKind.HOLD: {"date": "2026-01-08", "reason": "supplier notice"},
    EventKind.INSPECTION: {
        "inspection_date": "2026-01-08", "outcome": "pass", "inspection_body": "State Dept. of Agriculture",
        "standard": "FSMA PSR", "location_gln": "",
    },
    EventKind.RECALL: {
        "date": "2026-01-09", "reason": "Listeria monocytogenes", "recall_class": "I", "instructions": "destroy",
    },
    EventKind.TRANSFORMATION: {"transformation_date": "2026-01-07", "location_gln": "", "recipe": "salad mix"},
}
JOURNEY = [
    EventKind.HARVESTING, EventKind.COOLING, EventKind.INITIAL_PACKING, EventKind.SHIPPING, EventKind.RECEIVING,
    EventKind.OBSERVATION, EventKind.OBSERVATION, EventKind.SHIPPING, EventKind.RECEIVING, EventKind.OBSERVATION,
]


@dataclass
class PlanStore:
    """What the generator made, for tests to pick lots from."""

    orgs: list[int] = field(default_factory=list)
    farm_lot: int = 0
    """A farm lot many packed and transformed lots were made from (a wide forward trace)."""
    packed_lot: int = 0
    transformed_lot: int = 0
    deep_lot: int = 0
    """The end of a chain of lots ~10 deep."""
    wide_lot: int = 0
    """A lot made of 50 ingredients."""
    held_lot: int = 0
    recalled_lot: int = 0
    lots: int = 0
    events: int = 0


def _address(name: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address("0x" + keccak256(name.encode()).hex()[:40])


def _gtin(org: int, item: int) -> str:
    body = f"0{614141 + org:07d}{item:05d}"[:13]
    return body + str(gtin_check_digit(body))


def build(engine: Engine, lots: int = 10_000, events_per_lot: int = 10) -> PlanStore:
    """Fill an empty, migrated store (``engine``) with ``lots`` lots and ~``lots * events_per_lot`` events."""
    out = PlanStore()
    with Session(engine) as session, session.begin():
        orgs = []
        for n in range(12):
            role = "producer" if n < 6 else "processor" if n < 10 else "retailer"
            org = Organisation(
                name=f"Plan org {n}", roles=[role], chain_address=_address(f"plan{n}"), encrypted_key="{}"
            )
            session.add(org)
            orgs.append(org)
        session.flush()
        out.orgs = [o.id for o in orgs]
        products, glns = [], []
        for n, org in enumerate(orgs):
            product = Product(organisation=org, gtin=_gtin(n, 1), name=f"Product {n}", category="leafy greens")
            gln = f"{614141 + n:07d}00001"[:12]
            gln += str(gtin_check_digit(gln))
            session.add_all([product, Location(organisation=org, gln=gln, name=f"Site {n}", kind="farm")])
            products.append(product)
            glns.append(gln)
        session.flush()

        # lots: 60% farm lots, 30% packed (2 farm inputs each), 10% transformed (3 packed inputs each)
        farms, packed = int(lots * 0.6), int(lots * 0.3)
        lot_rows, edges = [], []
        for i in range(lots):
            tier = 0 if i < farms else 1 if i < farms + packed else 2
            owner = i % 6 if tier == 0 else 6 + i % 4
            product = products[owner]
            code = f"L{i:07d}"
            lot_rows.append(
                {
                    "id": i + 1, "gtin": product.gtin, "lot_code": code, "lot_id": lot_id(product.gtin, code),
                    "product_id": product.id, "creator_org_id": orgs[owner].id,
                    "custodian_org_id": orgs[10 + i % 2].id if i % 5 == 0 else orgs[owner].id,
                    "status": "active", "quantity": Decimal("100"), "unit": "kg", "initial_quantity": Decimal("1000"),
                    "created_at": START + timedelta(minutes=i), "event_count": events_per_lot,
                    "head_hash": "0x" + keccak256(code.encode()).hex(), "verification_state": "verified",
                    "verified_at": START + timedelta(days=30),
                }
            )
            if tier == 1:
                edges += [(i + 1, 1 + (i * 7) % farms), (i + 1, 1 + (i * 13 + 1) % farms)]
            elif tier == 2:
                edges += [(i + 1, 1 + farms + (i * k) % packed) for k in (3, 5, 11)]
        # a wide farm lot: 60 packed lots take it as a third input
        out.farm_lot = 1
        edges += [(farms + 1 + k * 5, 1) for k in range(60)]
        out.packed_lot = farms + 2
        out.transformed_lot = farms + packed + 3
        # a chain ~10 deep through the transformed lots
        deep = [farms + packed + 100 + k for k in range(10)]
        edges += [(deep[k + 1], deep[k]) for k in range(9)]
        out.deep_lot = deep[-1]
        # a lot of 50 ingredients
        out.wide_lot = lots
        edges += [(lots, farms + packed + 200 + k) for k in range(50)]
        out.held_lot = farms + 10
        out.recalled_lot = 2
        lot_rows[out.held_lot - 1]["status"] = "held"
        lot_rows[out.recalled_lot - 1]["status"] = "recalled"
        lot_rows[out.recalled_lot - 1]["recall_source_id"] = out.recalled_lot
        session.execute(insert(Lot), lot_rows)
        edge_rows = [
            {"output_lot_id": o, "input_lot_id": i, "quantity": Decimal("10"), "unit": "kg"}
            for o, i in sorted(set(edges)) if o != i
        ]
        session.execute(insert(LotInput), edge_rows)

        # events: the journey of each lot, with its kinds' payloads (GLNs of the lot's owner)
        hashes = {kind: payload_hash(payload) for kind, payload in PAYLOADS.items()}
        event_rows, event_id = [], 0
        special: dict[int, list[EventKind]] = {
            out.held_lot: [EventKind.INSPECTION, EventKind.HOLD],
            out.recalled_lot: [EventKind.INSPECTION, EventKind.RECALL],
        }
        for k in range(0, lots, 97):  # inspections on ~1% of lots
            special.setdefault(k + 1, []).append(EventKind.INSPECTION)
        for row in lot_rows:
            kinds = JOURNEY[:events_per_lot] + special.get(row["id"], [])
            if row["id"] > farms:
                kinds[0] = EventKind.TRANSFORMATION
            owner = out.orgs.index(row["creator_org_id"])
            for seq, kind in enumerate(kinds, start=1):
                event_id += 1
                payload = {
                    key: (glns[owner] if key.endswith("_gln") else value) for key, value in PAYLOADS[kind].items()
                }
                status = "confirmed"
                if event_id % 211 == 0:
                    status = "failed"
                elif event_id % 307 == 0:
                    status = "pending"
                event_rows.append(
                    {
                        "id": event_id, "lot_id": row["id"], "seq": seq if status == "confirmed" else None,
                        "kind": kind, "actor_org_id": row["creator_org_id"],
                        "actor_address": orgs[owner].chain_address, "payload": payload,
                        "payload_hash": hashes[kind], "hash_scheme": 1, "visibility": {},
                        "status": status, "tx_hash": f"0x{event_id:064x}", "block_number": event_id,
                        "log_index": 0, "head_after": f"0x{event_id:064x}",
                        "occurred_at": row["created_at"] + timedelta(hours=seq),
                        "recorded_at": row["created_at"] + timedelta(hours=seq),
                        "confirmed_at": row["created_at"] + timedelta(hours=seq) if status == "confirmed" else None,
                    }
                )
        for start in range(0, len(event_rows), 20_000):
            session.execute(insert(Event), event_rows[start : start + 20_000])
        out.lots, out.events = lots, len(event_rows)

        inspections, recalls = [], []
        for row in event_rows:
            if row["kind"] == EventKind.INSPECTION:
                outcome = "fail" if row["lot_id"] == out.held_lot else "pass"
                inspections.append(
                    {
                        "event_id": row["id"], "lot_id": row["lot_id"], "inspector_org_id": orgs[10].id,
                        "outcome": outcome,
                    }
                )
            elif row["kind"] == EventKind.RECALL:
                recalls.append(
                    {
                        "event_id": row["id"], "lot_id": row["lot_id"], "reason": "Listeria monocytogenes",
                        "recall_class": "I", "issuer_org_id": row["actor_org_id"], "issued_at": row["occurred_at"],
                    }
                )
        session.execute(insert(Inspection), inspections)
        session.execute(insert(Recall), recalls)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    return out


if __name__ == "__main__":  # pragma: no cover - a manual tool
    from supply_chain.store.db import make_engine, migrate, refresh_statistics

    engine = make_engine(sys.argv[1])
    migrate(engine)
    made = build(engine)
    refresh_statistics(engine)
    print(made)
