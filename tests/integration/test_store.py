"""The off-chain store on SQLite and PostgreSQL: the migrations, the constraints, lineage walks, payloads."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.hashing import hex32, keccak256, payload_hash
from supply_chain.domain.identifiers import gtin_check_digit, lot_id
from supply_chain.domain.kinds import EventKind, LotStatus
from supply_chain.services.epcis import repository
from supply_chain.services.runtime import Ctx
from supply_chain.store import queries
from supply_chain.store.db import (
    alembic_config,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
    session_scope,
    writer_lock,
)
from supply_chain.store.models import (
    ZERO_HEAD,
    Base,
    CaptureJob,
    EpcisEvent,
    Event,
    Lot,
    LotInput,
    Organisation,
    Product,
    User,
)

# --- builders ----------------------------------------------------------------------------------------


def _gtin(n: int) -> str:
    body = f"{614141:07d}{n:06d}"  # indicator 0, company prefix 0614141, item reference n
    return body + str(gtin_check_digit(body))


def _address(name: str) -> str:
    return "0x" + keccak256(name.encode()).hex()[:40]


def add_org(
    session: Session, name: str = "Green Valley Farm", roles: list[str] | None = None
) -> Organisation:
    org = Organisation(
        name=name, roles=roles or ["producer"], chain_address=_address(name), encrypted_key='{"version": 3}'
    )
    session.add(org)
    session.flush()
    return org


def add_product(session: Session, org: Organisation, n: int = 1) -> Product:
    product = Product(organisation=org, gtin=_gtin(n), name=f"Romaine lettuce {n}", category="leafy greens")
    session.add(product)
    session.flush()
    return product


def add_lot(session: Session, product: Product, lot_code: str, quantity: str = "100") -> Lot:
    org = product.organisation
    lot = Lot(
        gtin=product.gtin,
        lot_code=lot_code,
        lot_id=lot_id(product.gtin, lot_code),
        product=product,
        creator=org,
        custodian=org,
        quantity=Decimal(quantity),
        initial_quantity=Decimal(quantity),
        unit="kg",
    )
    session.add(lot)
    session.flush()
    return lot


def add_event(session: Session, lot: Lot, payload: dict[str, Any], seq: int | None = None) -> Event:
    actor = lot.custodian
    ev = Event(
        lot=lot,
        seq=seq,
        kind=EventKind.HARVESTING,
        actor=actor,
        actor_address=actor.chain_address,
        payload=payload,
        payload_hash=payload_hash(payload),
        visibility={"location": "public", "notes": "private"},
        occurred_at=datetime(2025, 6, 1, 5, 30, tzinfo=UTC),
        status="confirmed" if seq else "pending",
    )
    session.add(ev)
    session.flush()
    return ev


# --- migrations ----------------------------------------------------------------------------------------


def test_migrating_an_empty_database_creates_exactly_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        migrate(engine)  # every start migrates; at head it must do nothing
        assert current_revision(engine) == head_revision() == "0021_q3"
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
            # Alembic does not compare CHECK constraints; the data rules live there, so compare their names.
            inspector = inspect(connection)
            for table in Base.metadata.sorted_tables:
                declared = {c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"}
                found = {c["name"] for c in inspector.get_check_constraints(table.name)}
                assert found == declared, table.name
    finally:
        engine.dispose()


def test_downgrade_removes_every_table_and_upgrade_restores_them(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(engine)
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def _old_epcis_event(session: Session, org: Organisation, job: CaptureJob, body: dict[str, Any], place: str) -> int:
    """A stored event written with the columns of an older schema (only those named here)."""
    table = EpcisEvent.__table__
    values = {
        "organisation_id": org.id,
        "capture_job_id": job.id,
        "position": 0,
        "state": "captured",
        "applied": False,
        "has_error_declaration": "errorDeclaration" in body,
        "event_type": body["type"],
        "hash_id": "ni:///sha-256;0?ver=CBV2.0",
        "read_point": place,
        "event_time": datetime(2024, 1, 5, tzinfo=UTC),
        "record_time": datetime(2024, 1, 6, tzinfo=UTC),
        "body": body,
        "leaf": hex32(keccak256(b"x")),
    }
    return session.execute(insert(table).values(values).returning(table.c.id)).scalar_one()


def test_migration_0019_gives_stored_epcis_identifiers_their_lists_roles(db_url: str) -> None:
    """Rows written before 0019 had one role for the four EPC lists and one for the four quantity lists; the
    migration tells them apart by their order and adds the business transactions, sources and destinations
    of the stored events, so MATCH_inputEPC, EQ_bizTransaction_po, ... answer for them too."""
    engine = make_engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0018_epcisrt")
        body = {
            "type": "TransformationEvent",
            "eventTime": "2024-01-05T00:00:00Z",
            "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.1"],
            "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.2"],
            "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.107346.IN", "quantity": 1}],
            "bizTransactionList": [{"type": "https://ref.gs1.org/cbv/BTT-po", "bizTransaction": "urn:x:po:1"}],
            "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00001"}],
        }
        with Session(engine) as session:
            org = add_org(session)
            job = CaptureJob(
                organisation_id=org.id, document={}, document_sha256="0" * 64, events_total=1, writes_total=0
            )
            session.add(job)
            session.flush()
            pk = _old_epcis_event(session, org, job, body, "https://id.gs1.org/414/0614141007776/254/12")
            for role, epc in (
                ("epc", "https://id.gs1.org/01/10614141073464/21/1"),
                ("epc", "https://id.gs1.org/01/10614141073464/21/2"),
                ("class", "https://id.gs1.org/01/10614141073464/10/IN"),
            ):
                session.execute(
                    text("INSERT INTO epcis_event_epcs (event_pk, role, epc) VALUES (:pk, :role, :epc)"),
                    {"pk": pk, "role": role, "epc": epc},
                )
            session.commit()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0019_epcisquery")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT role, epc, qualifier FROM epcis_event_epcs ORDER BY id")).fetchall()
        assert [tuple(r) for r in rows] == [
            ("in_epc", "https://id.gs1.org/01/10614141073464/21/1", None),
            ("out_epc", "https://id.gs1.org/01/10614141073464/21/2", None),
            ("inclass", "https://id.gs1.org/01/10614141073464/10/IN", None),
            ("rp_in", "https://id.gs1.org/414/0614141007776", None),  # the read point's GLN
            ("biztx", "urn:x:po:1", "po"),
            ("source", "https://id.gs1.org/417/0614141000012", "owning_party"),
        ]
    finally:
        engine.dispose()


def test_migration_0020_indexes_stored_events_for_patterns_quantities_sensors_and_error_declarations(
    db_url: str,
) -> None:
    """Events stored before 0020 get what the third round of query parameters asks, written by the functions
    capture uses: pattern keys, quantities with their unit, the transformation ID, persistent dispositions,
    the error declaration's time, reason and corrective events, and one row per sensor report; the standard
    query then finds them."""
    engine = make_engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0019_epcisquery")
        body = {
            "type": "TransformationEvent",
            "eventTime": "2024-01-05T00:00:00Z",
            "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.1"],
            "outputQuantityList": [
                {"epcClass": "urn:epc:class:lgtin:0614141.107346.OUT", "quantity": 12.5, "uom": "KGM"}
            ],
            "transformationID": "urn:uuid:7d8e0c3a-0000-4000-8000-000000000001",
            "persistentDisposition": {"set": ["urn:epcglobal:cbv:disp:completeness_verified"]},
            "errorDeclaration": {
                "declarationTime": "2024-01-07T01:00:00+01:00",
                "reason": "incorrect_data",
                "correctiveEventIDs": ["urn:uuid:7d8e0c3a-0000-4000-8000-000000000002"],
            },
            "sensorElementList": [
                {
                    "sensorMetadata": {"deviceID": "urn:epc:id:giai:4000001.111", "time": "2024-01-05T00:00:00Z"},
                    "sensorReport": [{"type": "gs1:Temperature", "value": 7.5, "uom": "CEL"}],
                }
            ],
        }
        with Session(engine) as session:
            org = add_org(session, roles=["processor"])
            job = CaptureJob(
                organisation_id=org.id, document={}, document_sha256="0" * 64, events_total=1, writes_total=0
            )
            session.add(job)
            session.flush()
            pk = _old_epcis_event(session, org, job, body, "https://id.gs1.org/414/0614141007776")
            session.execute(
                text("INSERT INTO epcis_event_epcs (event_pk, role, epc) VALUES (:pk, 'in_epc', :epc)"),
                {"pk": pk, "epc": "https://id.gs1.org/01/10614141073464/21/1"},
            )
            session.commit()
            org_id = org.id
        migrate(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT role, epc, qualifier, amount, scheme, pattern_key FROM epcis_event_epcs ORDER BY id")
            ).fetchall()
            reports = connection.execute(
                text("SELECT type, device_id, value, uom FROM epcis_sensor_reports")
            ).fetchall()
        assert [tuple(r) for r in rows] == [
            ("in_epc", "https://id.gs1.org/01/10614141073464/21/1", None, None, "sgtin", "06141410734641"),
            ("outclass", "https://id.gs1.org/01/10614141073464/10/OUT", "KGM", 12.5, "lgtin", "06141410734641"),
            ("xform", "urn:uuid:7d8e0c3a-0000-4000-8000-000000000001", None, None, None, None),
            ("pd_set", "completeness_verified", None, None, None, None),
            ("err_why", "incorrect_data", None, None, None, None),
            ("fix_id", "urn:uuid:7d8e0c3a-0000-4000-8000-000000000002", None, None, None, None),
        ]
        assert [tuple(r) for r in reports] == [("Temperature", "https://id.gs1.org/8004/4000001111", 7.5, "CEL")]
        with Session(engine) as session:
            org = session.get(Organisation, org_id)
            ctx = Ctx(session, None)  # type: ignore[arg-type]
            for args in (
                {"MATCH_inputEPC": "urn:epc:idpat:sgtin:0614141.*.*"},
                {"MATCH_outputEPCClass": "urn:epc:idpat:sgtin:0614141.107346.*", "GE_quantity_KGM": "12.5"},
                {"EQ_transformationID": "urn:uuid:7d8e0c3a-0000-4000-8000-000000000001"},
                {"EQ_persistentDisposition_set": "completeness_verified"},
                {"GE_errorDeclarationTime": "2024-01-07T00:00:00Z", "LT_errorDeclarationTime": "2024-01-07T00:00:01Z"},
                {
                    "EQ_errorReason": "incorrect_data",
                    "EQ_correctiveEventID": "urn:uuid:7d8e0c3a-0000-4000-8000-000000000002",
                },
                {"EQ_type": "Temperature", "GT_value_CEL": "7", "EQ_deviceID": "urn:epc:id:giai:4000001.111"},
                {"GE_time": "2024-01-05T00:00:00Z"},
            ):
                found, _ = repository.query(ctx, org, repository.parse_query({k: [v] for k, v in args.items()}))
                assert [r.id for r in found] == [pk], args
    finally:
        engine.dispose()


# --- constraints ---------------------------------------------------------------------------------------


def test_second_lot_with_the_same_gtin_and_lot_code_is_refused(session: Session) -> None:
    product = add_product(session, add_org(session))
    add_lot(session, product, "L-2025-001")
    session.commit()

    duplicate = Lot(
        gtin=product.gtin,
        lot_code="L-2025-001",
        lot_id=hex32(keccak256(b"some other id")),  # only (gtin, lot_code) clashes
        product=product,
        creator=product.organisation,
        custodian=product.organisation,
        quantity=Decimal(5),
        initial_quantity=Decimal(5),
        unit="kg",
    )
    session.add(duplicate)
    with pytest.raises(IntegrityError, match="(?i)unique|uq_lots_gtin_lot_code"):
        session.flush()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Lot)) == 1


def test_lot_codes_are_case_sensitive_and_scoped_to_their_gtin(session: Session) -> None:
    org = add_org(session)
    lettuce, spinach = add_product(session, org, 1), add_product(session, org, 2)
    add_lot(session, lettuce, "ab12")
    add_lot(session, lettuce, "AB12")  # GS1 lot codes are case-sensitive: another lot
    add_lot(session, spinach, "ab12")  # same code, other product: another lot
    session.commit()
    assert session.scalar(select(func.count()).select_from(Lot)) == 3


def test_email_is_stored_lower_case_so_case_variants_clash(session: Session) -> None:
    org = add_org(session)
    session.add(User(organisation=org, email=" Ann.Lee@Example.COM ", display_name="Ann", password_hash="x"))
    session.commit()
    assert session.scalar(select(User.email)) == "ann.lee@example.com"
    session.add(User(organisation=org, email="ann.lee@example.com", display_name="Ann 2", password_hash="y"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(User(organisation_id=999_999, email="ghost@example.com", display_name="G", password_hash="x"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_database_refuses_a_status_outside_the_contract_vocabulary(session: Session) -> None:
    lot = add_lot(session, add_product(session, add_org(session)), "L1")
    session.commit()
    with pytest.raises(IntegrityError):  # bypasses the model validator, as a stray script would
        session.execute(text("UPDATE lots SET status = 'lost' WHERE id = :id"), {"id": lot.id})


def test_validators_normalise_enums_hashes_and_addresses(session: Session) -> None:
    org = add_org(session, "Cold Chain Logistics", roles=["distributor", "distributor"])
    assert org.roles == ["distributor"]
    org.chain_address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"  # EIP-55 test vector, lower case in
    assert org.chain_address == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    lot = add_lot(session, add_product(session, org), "L7")
    assert lot.lot_id == hex32(lot_id(lot.gtin, "L7"))  # bytes in, 0x-hex out
    assert lot.head_hash == ZERO_HEAD and lot.event_count == 0
    lot.status = LotStatus.HELD
    assert lot.status == "held" and lot.lot_status is LotStatus.HELD
    with pytest.raises(InvalidInput, match="status"):
        lot.status = "lost"
    with pytest.raises(InvalidInput, match="roles"):
        org.roles = ["producer", "pirate"]
    with pytest.raises(InvalidInput, match="checksum"):
        Organisation(chain_address="0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")


# --- types -------------------------------------------------------------------------------------------


def test_datetimes_come_back_timezone_aware_utc_and_naive_ones_are_refused(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    lot = add_lot(session, add_product(session, add_org(session)), "L1", quantity="1250.125")
    lot.pack_date = date(2025, 6, 2)
    payload = {"location": "0614141000005"}
    ev = add_event(session, lot, payload)
    ev.occurred_at = datetime(2025, 6, 1, 7, 30, tzinfo=timezone(timedelta(hours=2)))  # 05:30 UTC
    session.commit()

    with session_factory() as fresh:
        loaded = fresh.get(Event, ev.id)
        assert loaded is not None
        assert loaded.occurred_at == datetime(2025, 6, 1, 5, 30, tzinfo=UTC)
        assert loaded.occurred_at.utcoffset() == timedelta(0)
        assert loaded.recorded_at.tzinfo is not None
        assert loaded.kind is EventKind.HARVESTING
        loaded_lot = fresh.get(Lot, lot.id)
        assert loaded_lot is not None
        assert loaded_lot.quantity == Decimal("1250.125") and isinstance(loaded_lot.quantity, Decimal)
        assert loaded_lot.pack_date == date(2025, 6, 2)
        # comparisons in SQL see the same instant whatever offset the caller used
        later = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
        assert fresh.scalar(select(func.count()).where(Event.occurred_at < later)) == 1

    ev.occurred_at = datetime(2025, 6, 1, 5, 30)  # naive: which 05:30?
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_json_payload_round_trip_keeps_nested_values_unicode_and_hash(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    payload: dict[str, Any] = {
        "kde": {
            "harvest_location": {"gln": "0614141000005", "name": "Champ de la Côte — parcelle 7"},
            "quantity": {"value": "1250.5", "unit": "kg"},
            "harvester": "Łukasz Żółć",
            "temperatures": [4.0, 3.5, -0.25, 0],
            "flags": {"organic": True, "irrigated": False, "field_notes": None},
        },
        "notes": '生菜 · 🥬 picked at dawn "quoted" \\ backslash\nnew line',
        "containers": [{"id": "SSCC-1", "seals": ["A", "B"]}, {"id": "SSCC-2", "seals": []}],
        "big_int": 9_007_199_254_740_991,
    }
    lot = add_lot(session, add_product(session, add_org(session)), "L1")
    ev = add_event(session, lot, payload, seq=1)
    session.commit()

    with session_factory() as fresh:
        loaded = fresh.get(Event, ev.id)
        assert loaded is not None
        assert loaded.payload == payload
        assert loaded.payload["kde"]["temperatures"][0] == 4.0
        assert isinstance(loaded.payload["big_int"], int)
        assert loaded.visibility == {"location": "public", "notes": "private"}
        # what a verifier does: the stored payload still hashes to what the chain holds
        assert payload_hash(loaded.payload) == bytes.fromhex(loaded.payload_hash[2:])


def test_lot_events_are_in_chain_order_with_pending_ones_last(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    lot = add_lot(session, add_product(session, add_org(session)), "L1")
    pending = add_event(session, lot, {"n": "pending"})
    second = add_event(session, lot, {"n": 2}, seq=2)
    first = add_event(session, lot, {"n": 1}, seq=1)
    session.commit()
    with session_factory() as fresh:
        loaded = fresh.get(Lot, lot.id)
        assert loaded is not None
        assert [e.id for e in loaded.events] == [first.id, second.id, pending.id]


def test_two_events_cannot_take_the_same_position_in_a_lot(session: Session) -> None:
    lot = add_lot(session, add_product(session, add_org(session)), "L1")
    add_event(session, lot, {"n": 1}, seq=1)
    add_event(session, lot, {"n": "pending a"})
    add_event(session, lot, {"n": "pending b"})  # several unconfirmed events may wait side by side
    session.commit()
    with pytest.raises(IntegrityError):
        add_event(session, lot, {"n": "again"}, seq=1)


# --- lineage -------------------------------------------------------------------------------------------


def _count_statements(engine: Engine) -> list[str]:
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN (see db.make_engine)
            statements.append(statement)

    return statements


def test_lineage_walks_a_diamond_in_one_query_each_way(session: Session, engine: Engine) -> None:
    r"""harvest -> (washed, cut) -> salad mix -> salad bowl; the bowl also takes harvest directly.

             harvest
             /  |   \
        washed  cut  \
             \  /     |
          salad mix   |
               \     /
              salad bowl
    """
    product = add_product(session, add_org(session))
    harvest, washed, cut, mix, bowl, other = (
        add_lot(session, product, code) for code in ("H", "W", "C", "M", "B", "X")
    )
    edges = ((washed, harvest), (cut, harvest), (mix, washed), (mix, cut), (bowl, mix), (bowl, harvest))
    for output, source in edges:
        session.add(LotInput(output_lot=output, input_lot=source, quantity=Decimal("10.5"), unit="kg"))
    session.commit()

    statements = _count_statements(engine)
    backward = queries.ancestors(session, mix.id)
    assert len(statements) == 1
    assert backward == sorted([(washed.id, 1), (cut.id, 1), (harvest.id, 2)], key=lambda x: (x[1], x[0]))

    statements.clear()
    forward = queries.descendants(session, harvest.id)
    assert len(statements) == 1
    # the bowl is reachable at depth 1 (directly) and 3 (through the mix): the shortest counts, once
    assert forward == sorted(
        [(washed.id, 1), (cut.id, 1), (bowl.id, 1), (mix.id, 2)], key=lambda x: (x[1], x[0])
    )

    assert queries.ancestors(session, bowl.id) == sorted(
        [(mix.id, 1), (harvest.id, 1), (washed.id, 2), (cut.id, 2)], key=lambda x: (x[1], x[0])
    )
    assert queries.descendants(session, bowl.id) == []
    assert queries.ancestors(session, harvest.id) == []
    assert queries.ancestors(session, other.id) == queries.descendants(session, other.id) == []
    assert queries.descendants(session, harvest.id, max_depth=1) == sorted(
        [(washed.id, 1), (cut.id, 1), (bowl.id, 1)], key=lambda x: (x[1], x[0])
    )
    assert {edge.input_lot.lot_code for edge in mix.inputs} == {"W", "C"}
    assert {edge.output_lot.lot_code for edge in harvest.outputs} == {"W", "C", "B"}

    # the reach of several starts (recalled lots) at once: one query, each reached lot paired with its start
    statements.clear()
    reached = queries.reach(session, [washed.id, cut.id, other.id])
    assert len(statements) == 1
    assert reached == sorted(
        [(washed.id, mix.id), (cut.id, mix.id), (washed.id, bowl.id), (cut.id, bowl.id)], key=lambda x: (x[1], x[0])
    )
    assert queries.reach(session, []) == []


def test_a_lot_cannot_be_its_own_input(session: Session) -> None:
    lot = add_lot(session, add_product(session, add_org(session)), "L1")
    session.add(LotInput(output_lot=lot, input_lot=lot, quantity=Decimal(1), unit="kg"))
    with pytest.raises(IntegrityError):
        session.flush()


# --- sessions and settings -------------------------------------------------------------------------------


def test_session_scope_commits_on_success_and_writes_nothing_on_error(
    session_factory: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError, match="chain unreachable"), session_scope(session_factory) as session:
        add_org(session, "Half Written Ltd")
        raise RuntimeError("chain unreachable")
    with session_scope(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 0
        add_org(session, "Fully Written Ltd")
    with session_scope(session_factory) as session:
        assert session.scalars(select(Organisation.name)).all() == ["Fully Written Ltd"]


def test_sqlite_file_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(database_url(tmp_path / "instance"))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert (tmp_path / "instance" / "lotline.db").exists()
    finally:
        engine.dispose()


_TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""


def test_sqlite_writers_of_every_process_queue_on_one_lock_file(tmp_path: Path) -> None:
    """A write transaction (BEGIN IMMEDIATE) holds a lock file beside the database that writers of other
    processes (``lotline serve --workers N``) wait for in line, so none of them is failed with "database is
    locked" by SQLite's busy handler; held across transactions through ``writer_lock`` (a write's signing to
    its receipt), and released when the last hold ends."""
    engine = make_engine(database_url(tmp_path))
    lock_file = tmp_path / "lotline.db.writer"

    def other_process_finds() -> str:
        done = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(lock_file)], capture_output=True, text=True)
        return done.stdout.strip()

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            assert other_process_finds() == "held"
        assert other_process_finds() == "free"
        shared = writer_lock(engine)
        assert shared is not None
        with shared:
            with engine.begin() as connection:  # the same thread: reentrant
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert other_process_finds() == "held"  # still held between this thread's transactions
        assert other_process_finds() == "free"
    finally:
        engine.dispose()


def test_database_url_defaults_to_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    assert database_url(tmp_path) == f"sqlite:///{tmp_path.resolve().as_posix()}/lotline.db"
    assert database_url(tmp_path, "") == database_url(tmp_path)
    assert database_url(tmp_path, "postgresql://u:p@db/lotline") == "postgresql+psycopg://u:p@db/lotline"
    assert normalise_url("postgres://u:p@db/x") == "postgresql+psycopg://u:p@db/x"
    assert normalise_url("postgresql+psycopg://u:p@db/x") == "postgresql+psycopg://u:p@db/x"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_insert_rows_stores_what_sqlalchemy_insert_stores(db_url: str) -> None:
    """``db.insert_rows`` (the scale data set's bulk insert: the driver's executemany) converts each value as
    SQLAlchemy's ``insert()`` does (JSON, UTC datetimes, event kinds, decimals), fills constant defaults of the
    columns left out, and refuses to leave out a column whose default is computed."""
    from sqlalchemy import JSON, BigInteger, Column, MetaData, Numeric, String, Table

    from supply_chain.store.db import insert_rows, make_engine
    from supply_chain.store.models import EventKindType, UTCDateTime

    table = Table(
        "bulk_probe",
        MetaData(),
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("kind", EventKindType(), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("amount", Numeric(18, 6), nullable=False),
        Column("note", String(20)),
        Column("status", String(16), nullable=False, default="active"),
        Column("made_at", UTCDateTime(), default=lambda: datetime.now(UTC)),
    )
    engine = make_engine(db_url)
    try:
        table.metadata.create_all(engine)
        at = datetime(2026, 3, 2, 7, 30, tzinfo=timezone(timedelta(hours=1)))
        row = {"kind": EventKind.COOLING, "payload": {"b": "2", "a": [1]}, "at": at, "amount": Decimal("12.5")}
        made = datetime(2026, 3, 2, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(table.insert(), [{"id": 1, **row, "note": "x", "made_at": made}])
            insert_rows(connection, table, ["id", *row, "note", "made_at"], [(2, *row.values(), "x", made)])
            with pytest.raises(ValueError, match="made_at"):
                insert_rows(connection, table, ["id", *row], [(3, *row.values())])
        with engine.connect() as connection:
            first, second = (r._asdict() for r in connection.execute(select(table).order_by(table.c.id)))
        assert second == first | {"id": 2}
        assert (second["kind"], second["at"], second["status"]) == (EventKind.COOLING, at, "active")
    finally:
        engine.dispose()
