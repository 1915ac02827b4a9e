"""Services end to end on the embedded chain, on SQLite and PostgreSQL: writes, custody, inspections,
transformations, recalls, rejected input leaving nothing behind, crash recovery, indexing, verification."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select, text

from supply_chain.domain.errors import ChainUnavailable, Conflict, Forbidden, InvalidInput, NotFound
from supply_chain.domain.hashing import hex32, merkle_root, payload_hash
from supply_chain.domain.kinds import EventKind
from supply_chain.services import indexer, lots, orgs
from supply_chain.services.credit import summary as compliance
from supply_chain.services.lots import NewLot
from supply_chain.services.startup import catch_up
from supply_chain.services.trace import recall_sources, trace
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Inspection, Lot, LotInput, PendingTransaction, SensorReading

pytestmark = pytest.mark.slow


def _lot(ctx: Any, net: Any) -> Lot:
    return ctx.session.get(Lot, net.lot_pk)


def _counts(runtime: Any) -> tuple[int, int, int, int]:
    """Rows in lots, events and lineage, and the chain's block number: what 'nothing written' compares."""
    with runtime.ctx() as ctx:
        s = ctx.session
        return (
            s.scalar(select(func.count()).select_from(Lot)),
            s.scalar(select(func.count()).select_from(Event)),
            s.scalar(select(func.count()).select_from(LotInput)),
            ctx.ledger.block_number(),
        )


def _ship(ctx: Any, net: Any, lot: Lot, src: str, dst: str) -> None:
    lots.offer_custody(
        ctx,
        net.org(src, ctx),
        lot,
        net.org(dst, ctx),
        {
            "from_gln": getattr(net, f"{src}_site"),
            "to_gln": getattr(net, f"{dst}_site"),
            "ship_date": "2026-11-21",
            "reference_document_type": "bill of lading",
            "reference_document_number": "BOL-1",
        },
    )


def _receive(ctx: Any, net: Any, lot: Lot, src: str, dst: str) -> None:
    lots.accept_custody(
        ctx,
        net.org(dst, ctx),
        lot,
        {
            "from_gln": getattr(net, f"{src}_site"),
            "to_gln": getattr(net, f"{dst}_site"),
            "receive_date": "2026-11-22",
            "reference_document_type": "bill of lading",
            "reference_document_number": "BOL-1",
        },
    )


# ------------------------------------------------------------------ happy paths


def test_created_lot_is_confirmed_on_chain_with_matching_head(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        chain = ctx.ledger.get_lot(lot.lot_id)
        assert lot.status == "active" and lot.event_count == 1
        assert chain.head == lot.head_hash and chain.custodian == network.org("farm", ctx).chain_address
        event = lot.events[0]
        assert event.status == "confirmed" and event.seq == 1 and event.block_number and event.tx_hash
        assert verify_lot(ctx, lot).state == "verified"


def test_custody_handover_moves_the_lot_and_records_shipping_and_receiving(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        _ship(ctx, network, lot, "farm", "packer")
        assert lot.status == "in_transit" and lot.pending_custodian_org_id == network.ids["packer"]
        with pytest.raises(Forbidden):
            lots.record_event(
                ctx,
                network.org("dist", ctx),
                lot,
                EventKind.COOLING,
                {"location_gln": network.dist_site, "cooling_date": "2026-11-21"},
            )
        with pytest.raises(Conflict):  # the old custodian cannot add events while the lot is in transit
            lots.record_event(
                ctx,
                network.org("farm", ctx),
                lot,
                EventKind.COOLING,
                {"location_gln": network.farm_site, "cooling_date": "2026-11-21"},
            )
        with pytest.raises(Forbidden):  # only the organisation it was offered to may accept
            _receive(ctx, network, lot, "farm", "dist")
        _receive(ctx, network, lot, "farm", "packer")
        assert lot.status == "active" and lot.custodian_org_id == network.ids["packer"]
        assert [e.kind for e in lot.events] == [EventKind.HARVESTING, EventKind.SHIPPING, EventKind.RECEIVING]
        assert lot.events[1].payload["quantity"] == "100" and lot.events[1].payload["unit"] == "kg"
        assert verify_lot(ctx, lot).state == "verified"


def test_reject_and_cancel_return_the_lot_to_its_custodian(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        _ship(ctx, network, lot, "farm", "packer")
        lots.reject_custody(ctx, network.org("packer", ctx), lot, "damaged pallets")
        assert lot.status == "active" and lot.custodian_org_id == network.ids["farm"]
        _ship(ctx, network, lot, "farm", "dist")
        lots.cancel_custody_offer(ctx, network.org("farm", ctx), lot, "wrong truck")
        assert lot.status == "active" and lot.pending_custodian_org_id is None
        assert ctx.ledger.get_lot(lot.lot_id).pending_custodian is None


def test_failed_inspection_holds_the_lot_until_an_inspector_releases_it(network: Any, tmp_path: Any) -> None:
    pdf = b"%PDF-1.4\n% test certificate\n"
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        inspector = network.org("inspector", ctx)
        lots.inspect(
            ctx,
            inspector,
            lot,
            "fail",
            {"inspection_date": "2026-11-21", "inspector_name": "I. Inspector"},
            certificate=("report.pdf", "application/pdf", pdf),
        )
        assert lot.status == "held"
        assert ctx.ledger.get_lot(lot.lot_id).status.name == "HELD"
        inspection = ctx.session.scalars(select(Inspection).where(Inspection.lot_id == lot.id)).one()
        assert inspection.outcome == "fail" and inspection.documents[0].size == len(pdf)
        assert inspection.event.payload["certificate_sha256"] == inspection.documents[0].sha256
        with pytest.raises(Conflict):  # a held lot cannot be shipped
            _ship(ctx, network, lot, "farm", "packer")
        with pytest.raises(Forbidden):  # a regulator holds but does not release
            lots.release(ctx, network.org("regulator", ctx), lot, "cleared")
        lots.release(ctx, inspector, lot, "retest negative")
        assert lot.status == "active"


def test_certificate_of_the_wrong_type_is_refused_and_nothing_written(network: Any) -> None:
    before = _counts(network.runtime)
    with pytest.raises(InvalidInput) as err, network.runtime.ctx() as ctx:
        lots.inspect(
            ctx,
            network.org("inspector", ctx),
            _lot(ctx, network),
            "pass",
            {"inspection_date": "2026-11-21", "inspector_name": "I"},
            certificate=("report.pdf", "application/pdf", b"MZ this is not a pdf"),
        )
    assert err.value.field == "certificate"
    assert _counts(network.runtime) == before


def test_transformation_split_and_merge_track_quantities_and_lineage(network: Any) -> None:
    rt = network.runtime
    with rt.ctx() as ctx:
        farm2 = network.org("farm2", ctx)
        other = lots.create_lot(
            ctx,
            farm2,
            network.greens2,
            "LOT-2",
            EventKind.HARVESTING,
            {"location_gln": network.farm2_site, "harvest_date": "2026-11-20", "commodity": "greens"},
            "50",
            "kg",
        )
        a = _lot(ctx, network)
        for lot, farm in ((a, "farm"), (other, "farm2")):
            _ship(ctx, network, lot, farm, "packer")
            _receive(ctx, network, lot, farm, "packer")
        packer = network.org("packer", ctx)
        with pytest.raises(InvalidInput) as err:
            lots.transform(
                ctx, packer, [NewLot(network.mix, "MIX-X", "10", "kg", [(a, "101")])], network.packer_site, "2026-11-23"
            )
        assert "left" in err.value.message and err.value.field == "outputs[0].inputs[0].quantity"
        merged, split = lots.transform(
            ctx,
            packer,
            [
                NewLot(network.mix, "MIX-1", "60", "kg", [(a, "40"), (other, "20")]),
                NewLot(network.mix, "MIX-2", "30", "kg", [(a, "30")]),
            ],
            network.packer_site,
            "2026-11-23",
        )
        assert a.quantity == 30 and other.quantity == 30
        assert merged.status == split.status == "active"
        chain_inputs = ctx.ledger.get_lot(merged.lot_id).inputs
        assert set(chain_inputs) == {a.lot_id, other.lot_id}
        back = trace(ctx, merged, "backward")
        assert {(i["lot_code"], i["depth"]) for i in back["lots"]} == {("MIX-1", 0), ("LOT-1", 1), ("LOT-2", 1)}
        forward = trace(ctx, a, "forward")
        assert {i["lot_code"] for i in forward["lots"]} == {"LOT-1", "MIX-1", "MIX-2"}
        assert all(i["custodian"] == "Packer" for i in forward["lots"])


def test_recall_reaches_every_descendant_on_chain_in_the_same_action(network: Any) -> None:
    rt = network.runtime
    with rt.ctx() as ctx:
        a = _lot(ctx, network)
        _ship(ctx, network, a, "farm", "packer")
        _receive(ctx, network, a, "farm", "packer")
        packer = network.org("packer", ctx)
        (mix,) = lots.transform(
            ctx, packer, [NewLot(network.mix, "MIX-1", "60", "kg", [(a, "60")])], network.packer_site, "2026-11-23"
        )
        (late,) = lots.transform(
            ctx, packer, [NewLot(network.mix, "MIX-2", "10", "kg", [(mix, "10")])], network.packer_site, "2026-11-24"
        )
        with pytest.raises(Forbidden):  # an unrelated producer cannot recall
            lots.recall(ctx, network.org("farm2", ctx), a, "x", "I", "y")
        block = ctx.ledger.block_number()
        lots.recall(ctx, network.org("regulator", ctx), a, "Listeria", "I", "Do not eat")
        assert ctx.ledger.block_number() == block + 1, "the recall and its reach are one transaction"
        for lot in (a, mix, late):
            chain_lot = ctx.ledger.get_lot(lot.lot_id)
            assert lot.status == "recalled" and chain_lot.status.name == "RECALLED", lot.lot_code
            assert ctx.ledger.recall_source_of(lot.lot_id) == a.lot_id
        derived = [e for e in late.events if int(e.kind) == 11]
        assert derived[-1].payload["source_lot_code"] == "LOT-1" and derived[-1].payload["reason"] == "Listeria"
        sources = recall_sources(ctx, late)
        assert [(lot.lot_code, r.recall_class) for lot, r in sources] == [("LOT-1", "I")]
        forward = {i["lot_code"]: i for i in trace(ctx, a, "forward")["lots"]}
        assert forward["MIX-2"]["affected_by_recall"] and forward["MIX-1"]["affected_by_recall"]
        assert lots.recall_progress(ctx, a) == {"downstream": 2, "recalled": 2, "remaining": 0}
        with pytest.raises(Conflict) as refused:  # the recalled lot can no longer feed a transformation
            lots.transform(
                ctx, packer, [NewLot(network.mix, "MIX-3", "1", "kg", [(a, "1")])], network.packer_site, "2026-11-24"
            )
        assert refused.value.code == "input_unavailable"
        with pytest.raises(Conflict) as again:
            lots.recall(ctx, network.org("regulator", ctx), mix, "x", "I", "y")
        assert again.value.code == "lot_recalled"
        record = compliance(ctx, network.org("farm", ctx))
        assert record["recalls"] == 1 and record["lots"] == 1


def test_large_forward_trace_is_recalled_in_bounded_batches(network: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from supply_chain.domain import policy

    monkeypatch.setattr(policy, "MAX_RECALL_BATCH", 2)
    with network.runtime.ctx() as ctx:
        a = _lot(ctx, network)
        _ship(ctx, network, a, "farm", "packer")
        _receive(ctx, network, a, "farm", "packer")
        packer = network.org("packer", ctx)
        outputs = [NewLot(network.mix, f"PART-{i}", "5", "kg", [(a, "5")]) for i in range(5)]
        parts = lots.transform(ctx, packer, outputs, network.packer_site, "2026-11-23")
        block = ctx.ledger.block_number()
        lots.recall(ctx, network.org("regulator", ctx), a, "Listeria", "I", "Do not eat")
        assert ctx.ledger.block_number() == block + 3  # 1 + 2 with the lot itself, then 2, then 1
        assert all(p.status == "recalled" for p in parts)
        assert lots.recall_progress(ctx, a)["remaining"] == 0


def test_sensor_readings_anchored_by_the_sender_in_transit_not_the_receiver_and_stored_in_one_insert(
    network: Any,
) -> None:
    """The receiver of an offer it has not accepted records nothing on the lot (issue 9, item 8e). The
    sender's readings, half of them with a humidity, go in with one INSERT statement (an ORM bulk insert
    groups rows by the columns they set: alternating rows went in one statement each), and the stored rows,
    validated again in leaf order, hash to the anchored root."""
    engine = network.runtime.engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SENSOR_READINGS"):
            statements.append(statement)

    readings = [
        {"taken_at": f"2026-11-21T{h:02d}:{m:02d}:00Z", "temperature_c": 3 + m / 100}
        | ({"humidity": str(40 + m)} if (h + m // 6) % 2 else {})
        for h in range(4)
        for m in range(0, 60, 6)
    ]
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        _ship(ctx, network, lot, "farm", "dist")
        for outsider in ("dist", "shop"):
            with pytest.raises(Forbidden) as refused:
                lots.anchor_readings(ctx, network.org(outsider, ctx), lot, readings)
            assert refused.value.code == "not_custodian"
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            event = lots.anchor_readings(ctx, network.org("farm", ctx), lot, readings, sensor_id="L1")
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert event.status == "confirmed" and event.payload["reading_count"] == 40
        assert lot.sensor_batches[0].merkle_root == event.payload["merkle_root"]
        assert len(statements) == 1
        # the stored readings are the anchored leaves: in leaf order they hash to the root
        stored = ctx.session.scalars(
            select(SensorReading)
            .where(SensorReading.batch_id == lot.sensor_batches[0].id)
            .order_by(SensorReading.leaf_index)
        ).all()
        assert [(r.leaf_index, r.sensor_id) for r in stored] == [(i, "L1") for i in range(40)]
        assert sum(1 for r in stored if r.humidity is not None) == 20
        again = [
            {"taken_at": r.taken_at.isoformat(), "temperature_c": str(r.temperature_c)}
            | ({"humidity": str(r.humidity)} if r.humidity is not None else {})
            for r in stored
        ]
        leaves = [payload_hash(lots.validate_reading(r, i)) for i, r in enumerate(again)]
        assert hex32(merkle_root(leaves)) == event.payload["merkle_root"]


_TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-11-21T08:00:00Z",
            "2026-11-21T08:00:00z",
            "2026-11-21t08:00:00Z",
            "2026-11-21 08:00:00+00:00",
            " 2026-11-21T08:00:00+01:00 ",
            "2026-11-21T08:00:00-00:00",
            "2026-11-21T08:00:00.5+05:30",
            "2026-11-21T08:00:00.000000+00:00",
            "2026-11-21T08:00:00.1234567+00:00",
            "2026-11-21T08:00+00:00",
            "2026-11-21T08:00:00",
            "2026-02-30T08:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T08:00:00+24:00",
            "2026-11-21T08:00:00+00:60",
            "٢٠٢٦-11-21T08:00:00Z",
            "2026-11-21",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat(timespec="seconds").replace("+00:00", "Z")),
    st.text(max_size=8),
    st.none(),
    st.integers(),
)
_NUMBERS = st.one_of(
    st.sampled_from(
        ["3.5", "3.50", " 3.5 ", "-0", "-0.0", "0", "80", "-80", "80.0000001", "81", "100", "101", "1e1", "NaN"]
        + ["Infinity", "٣", "+3", "3.1234567", "", "abc", "0.000001", "-12.25", "0x10"]
    ),
    st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,7})?", fullmatch=True),
    st.integers(-200, 200),
    st.floats(-120, 120),
    st.decimals(-120, 120, places=7),
    st.none(),
    st.booleans(),
)
_READING = st.one_of(
    st.fixed_dictionaries(
        {"taken_at": _TIMES, "temperature_c": _NUMBERS},
        optional={"humidity": _NUMBERS, "sensor": st.text(max_size=3)},
    ),
    st.sampled_from(["2026-11-21T08:00:00Z, 3.5", ["2026-11-21T08:00:00Z", "3.5"], None]),
)


_Z = {"taken_at": "2026-11-21T08:00:00Z"}


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except InvalidInput as exc:
        return (exc.message, exc.field, exc.code)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(_READING, min_size=1, max_size=12).flatmap(lambda r: st.lists(st.sampled_from(r), max_size=30)))
@example([{"taken_at": "2026-11-21T08:00:00Z", "temperature_c": "3.50"}] * 2)
@example(
    [{"taken_at": "2026-11-21T08:00:00Z", "temperature_c": "-5"}] + [_Z | {"temperature_c": "-5", "humidity": "-5"}]
)
@example([_Z | {"temperature_c": "3.5"}, {"taken_at": "2026-02-30T08:00:00Z", "temperature_c": "3.5"}])
@example([_Z | {"temperature_c": "3.5"}, {"taken_at": "2026-11-21T08:00:00.000000-00:00", "temperature_c": "3.5"}])
@example(
    [
        {"taken_at": "2026-11-21T08:00:00Z", "temperature_c": "3.5"},
        {"taken_at": "2026-11-21T08:00:00Z", "temperature_c": "3.5", "humidity": "101"},
    ]
)
def test_validate_readings_gives_what_validate_reading_gives_reading_by_reading(raws: list[Any]) -> None:
    """The batch validator (quick paths for the usual date-time shape and for values met before in the
    upload) gives the same rows as validating each reading alone, and refuses the same first bad reading
    with the same message and field."""
    expected = _outcome(lambda: [lots.validate_reading(r, i) for i, r in enumerate(raws)])
    assert _outcome(lambda: lots.validate_readings(raws)) == expected


def test_close_ends_the_history_but_a_closed_lot_can_still_be_recalled(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        lots.close(ctx, network.org("farm", ctx), lot, "sold out")
        with pytest.raises(Conflict):
            lots.record_event(
                ctx,
                network.org("farm", ctx),
                lot,
                EventKind.COOLING,
                {"location_gln": network.farm_site, "cooling_date": "2026-11-21"},
            )
        lots.recall(ctx, network.org("farm", ctx), lot, "Undeclared allergen", "II", "Return to store")
        assert lot.status == "recalled"


# ------------------------------------------------------------------ bad input: a message, nothing written


BAD_INPUTS = {
    "bad GTIN check digit": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens[:-1] + str((int(net.greens[-1]) + 1) % 10),
            "L-9",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "g"},
            "1",
        ),
        InvalidInput,
        "gtin",
    ),
    "lot code with a forbidden character": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens,
            "L#9",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "g"},
            "1",
        ),
        InvalidInput,
        "lot_code",
    ),
    "negative quantity": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens,
            "L-9",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "g"},
            "-5",
        ),
        InvalidInput,
        "quantity",
    ),
    "unknown GLN": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens,
            "L-9",
            EventKind.HARVESTING,
            {"location_gln": "0614141999996", "harvest_date": "2026-11-20", "commodity": "g"},
            "1",
        ),
        InvalidInput,
        "payload.location_gln",
    ),
    "missing KDE": (
        lambda ctx, net: lots.record_event(
            ctx,
            net.org("farm", ctx),
            ctx.session.get(Lot, net.lot_pk),
            EventKind.COOLING,
            {"location_gln": net.farm_site},
        ),
        InvalidInput,
        "payload.cooling_date",
    ),
    "acting on a lot you do not hold": (
        lambda ctx, net: lots.record_event(
            ctx,
            net.org("farm2", ctx),
            ctx.session.get(Lot, net.lot_pk),
            EventKind.COOLING,
            {"location_gln": net.farm2_site, "cooling_date": "2026-11-21"},
        ),
        Forbidden,
        None,
    ),
    "consuming more than is left": (
        lambda ctx, net: lots.transform(
            ctx,
            net.org("farm", ctx),
            [NewLot(net.greens, "L-9", "1", "kg", [(ctx.session.get(Lot, net.lot_pk), "100.5")])],
            net.farm_site,
            "2026-11-22",
        ),
        InvalidInput,
        "outputs[0].inputs[0].quantity",
    ),
    "distributor creating a lot": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("dist", ctx),
            net.greens,
            "L-9",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "g"},
            "1",
        ),
        Forbidden,
        None,
    ),
    "existing lot code": (
        lambda ctx, net: lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens,
            "LOT-1",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "g"},
            "1",
        ),
        Conflict,
        "lot_code",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_the_field_named_and_nothing_written(network: Any, case: str) -> None:
    action, error, field = BAD_INPUTS[case]
    before = _counts(network.runtime)
    with pytest.raises(error) as err, network.runtime.ctx() as ctx:
        action(ctx, network)
    assert err.value.message
    if field:
        assert err.value.field == field, err.value.message
    assert _counts(network.runtime) == before


def test_unknown_lot_is_not_found(network: Any) -> None:
    with pytest.raises(NotFound), network.runtime.ctx() as ctx:
        lots.get_lot(ctx, network.greens, "NOPE")


# ------------------------------------------------------------------ crashes and outages


def test_chain_outage_after_the_pending_commit_is_settled_at_the_next_start(network: Any, monkeypatch: Any) -> None:
    rt = network.runtime
    from supply_chain.chain.ledger import Ledger

    def node_gone(self: Ledger, prepared: Any) -> Any:
        raise ChainUnavailable("chain node unreachable during recordEvent: ConnectionError")

    with rt.ctx() as ctx:
        monkeypatch.setattr(Ledger, "submit", node_gone)
        with pytest.raises(ChainUnavailable) as err:
            lots.record_event(
                ctx,
                network.org("farm", ctx),
                _lot(ctx, network),
                EventKind.COOLING,
                {"location_gln": network.farm_site, "cooling_date": "2026-11-21"},
            )
        assert "stored as pending" in err.value.message
        monkeypatch.undo()
    with rt.ctx() as ctx:
        lot = _lot(ctx, network)
        assert [e.status for e in lot.events] == ["confirmed", "pending"]
        assert verify_lot(ctx, lot).state == "pending"
    counts = catch_up(rt)  # the start-up path: the stored raw transaction is sent again and confirmed
    assert counts["resent"] == 1 and counts["confirmed"] == 1
    with rt.ctx() as ctx:
        lot = _lot(ctx, network)
        assert [e.status for e in lot.events] == ["confirmed", "confirmed"] and lot.event_count == 2
        assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
        assert verify_lot(ctx, lot).state == "verified"


def test_pending_write_whose_nonce_was_taken_is_marked_failed(network: Any, monkeypatch: Any) -> None:
    rt = network.runtime
    from supply_chain.chain.ledger import Ledger

    with rt.ctx() as ctx:
        monkeypatch.setattr(Ledger, "submit", lambda self, p: (_ for _ in ()).throw(ChainUnavailable("down")))
        with pytest.raises(ChainUnavailable):
            lots.record_event(
                ctx,
                network.org("farm", ctx),
                _lot(ctx, network),
                EventKind.COOLING,
                {"location_gln": network.farm_site, "cooling_date": "2026-11-21"},
            )
        monkeypatch.undo()
        # Another transaction from the same key takes the nonce before the stored one is resent.
        ptx = ctx.session.scalars(select(PendingTransaction)).one()
        ctx.session.delete(ptx)
        ctx.session.commit()
        ctx.session.add(
            PendingTransaction(
                tx_hash=ptx.tx_hash, raw_tx=ptx.raw_tx, sender=ptx.sender, nonce=ptx.nonce, function=ptx.function
            )
        )
        ctx.session.commit()
        ctx.ledger._next_nonce.clear()  # noqa: SLF001 - the adapter's own nonce memory would mask the clash
        ctx.ledger.record_event(
            orgs.signer(ctx, network.org("farm", ctx)), _lot(ctx, network).lot_id, EventKind.OBSERVATION, b"\x01" * 32
        )
    counts = catch_up(rt)
    assert counts["failed"] == 1
    with rt.ctx() as ctx:
        statuses = [e.status for e in _lot(ctx, network).events]
        assert statuses.count("failed") == 1


# ------------------------------------------------------------------ indexing


def test_events_written_by_another_node_are_indexed(network: Any) -> None:
    rt = network.runtime
    with rt.ctx() as ctx:
        lot = _lot(ctx, network)
        # A write that did not go through this store (another app instance with its own database).
        ctx.ledger.record_event(
            orgs.signer(ctx, network.org("farm", ctx)), lot.lot_id, EventKind.OBSERVATION, b"\x07" * 32
        )
        report = indexer.sync(ctx)
        assert report.applied == 1
        ctx.session.refresh(lot)
        foreign = lot.events[-1]
        assert foreign.status == "confirmed" and foreign.seq == 2 and foreign.payload_hash == "0x" + "07" * 32
        assert lot.event_count == 2 and lot.head_hash == ctx.ledger.get_lot(lot.lot_id).head
        assert verify_lot(ctx, lot).state == "unverifiable"


def test_the_cursor_follows_writes_so_a_later_start_reads_only_what_no_process_indexed(
    network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write through the services brings the indexer cursor up to its block (indexing what came between),
    so a server started after the CLI or another process wrote does not read those blocks again."""
    rt = network.runtime
    observation = {"note": "pallets wrapped", "date": "2026-11-21"}
    with rt.ctx() as ctx:
        indexer.sync(ctx)
        lot = _lot(ctx, network)
        farm = network.org("farm", ctx)
        lots.record_event(ctx, farm, lot, EventKind.OBSERVATION, observation)
        assert ctx.session.get(indexer.IndexerCursor, indexer.CURSOR).last_block == ctx.ledger.block_number()
        # a write this store did not make, then one it did: the second brings the first in
        ctx.ledger.record_event(orgs.signer(ctx, farm), lot.lot_id, EventKind.OBSERVATION, b"\x07" * 32)
        lots.record_event(ctx, farm, lot, EventKind.OBSERVATION, observation)
        head = ctx.ledger.block_number()
        assert ctx.session.get(indexer.IndexerCursor, indexer.CURSOR).last_block == head
        ctx.session.refresh(lot)
        assert [e.payload_hash for e in lot.events][-2] == "0x" + "07" * 32
        assert indexer.sync(ctx).from_block == head + 1
        # too far behind: left to the next sync, which reads the whole gap
        monkeypatch.setattr(indexer, "FOLLOW_GAP", 0)
        lots.record_event(ctx, farm, lot, EventKind.OBSERVATION, observation)
        assert ctx.session.get(indexer.IndexerCursor, indexer.CURSOR).last_block == head
        report = indexer.sync(ctx)
        assert (report.from_block, report.to_block) == (head + 1, head + 1)


def _index_snapshot(ctx: Any) -> dict[str, Any]:
    lots_rows = ctx.session.execute(
        text(
            "SELECT lot_id, status, custodian_org_id, pending_custodian_org_id, event_count, head_hash FROM lots "
            "ORDER BY lot_id"
        )
    ).all()
    events_rows = ctx.session.execute(
        text(
            "SELECT lot_id, seq, kind, status, tx_hash, block_number, log_index, head_after, payload_hash FROM events "
            "ORDER BY lot_id, seq"
        )
    ).all()
    return {"lots": [tuple(r) for r in lots_rows], "events": [tuple(r) for r in events_rows]}


def test_reindex_rebuilds_the_same_index(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        before = _index_snapshot(ctx)
        assert len(before["events"]) > 30
        report = indexer.reindex(ctx)
        assert report.applied == len(before["events"])
    with demo_runtime.ctx() as ctx:
        assert _index_snapshot(ctx) == before


# ------------------------------------------------------------------ the demo scenario


def test_demo_forward_trace_from_the_recalled_farm_lot_reaches_salad_mix_on_retail_shelves(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        farm_lot = lots.get_lot(ctx, "00614141000012", "GV-ROM-2611A")
        statements: list[str] = []
        listen = sa_event.listens_for(demo_runtime.engine, "before_cursor_execute")
        listen(lambda _c, _cur, statement, *_a: statements.append(" ".join(statement.split())))
        built: list[Lot] = []
        count_lots = lambda lot, _context: built.append(lot)  # noqa: E731
        sa_event.listen(Lot, "load", count_lots)
        try:
            forward = trace(ctx, farm_lot, "forward")
        finally:
            sa_event.remove(Lot, "load", count_lots)
        # one lineage walk and one recall-reach walk, not a walk per traced lot; loads are batched
        assert sum("RECURSIVE" in q for q in statements) == 2, statements
        assert not [q for q in statements if "WHERE lots.id = " in q], statements
        # the traced lots are read as columns: no ORM object is built for them (most of a large trace's time)
        assert built == [], built
        result = {i["lot_code"]: i for i in forward["lots"]}
        assert result["GV-ROM-2611A"]["recalled"]
        assert result["FC-MIX-001"]["custodian"] == "Corner Market" and result["FC-MIX-001"]["affected_by_recall"]
        assert result["FC-MIX-002"]["custodian"] == "City Grocer" and result["FC-MIX-002"]["affected_by_recall"]
        back = {
            i["lot_code"] for i in trace(ctx, lots.get_lot(ctx, "00614144000033", "FC-MIX-001"), "backward")["lots"]
        }
        assert back == {"FC-MIX-001", "GV-ROM-2611A", "SF-SPN-2611B"}
        record = compliance(ctx, farm_lot.creator)
        assert (record["recalls"], record["inspections_failed"], record["holds"]) == (1, 1, 1)


def test_demo_lots_all_verify(demo_runtime: Any) -> None:
    from supply_chain.services.verify import verify_all

    with demo_runtime.ctx() as ctx:
        results = verify_all(ctx)
        assert len(results) == 5 and {r.state for r in results} == {"verified"}


def test_maintenance_thread_indexes_foreign_writes_and_reverifies_on_schedule(network: Any) -> None:
    import time

    from supply_chain.services.startup import Maintenance

    rt = network.runtime
    with rt.ctx() as ctx:
        lot = _lot(ctx, network)
        lot.verification_state = None  # as if never checked
        ctx.ledger.record_event(
            orgs.signer(ctx, network.org("farm", ctx)), lot.lot_id, EventKind.OBSERVATION, b"\x09" * 32
        )
    worker = Maintenance(rt, sync_seconds=0.05, verify_seconds=0.1)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with rt.ctx() as ctx:
                lot = _lot(ctx, network)
                if lot.event_count == 2 and lot.verification_state is not None:
                    break
            time.sleep(0.1)
    finally:
        worker.stop()
        worker.join(timeout=30)
    assert lot.event_count == 2
    assert lot.verification_state == "unverifiable"  # the foreign event's payload is not held here


def test_a_transformation_waits_for_another_writer_holding_its_input_and_then_sees_what_is_left(
    network: Any,
) -> None:
    """Two writers planning transformations from one lot take turns (PostgreSQL: a row lock on the input
    lots; SQLite: the one write lock), so together they cannot consume more than the lot holds. The other
    writer is a second connection that takes 70 of the lot's 100 kg and holds the lot as a planner does; the
    transformation asking for 60 waits for it and is then refused."""
    import threading

    from sqlalchemy import update

    rt = network.runtime
    with rt.ctx() as ctx:
        a = _lot(ctx, network)
        _ship(ctx, network, a, "farm", "packer")
        _receive(ctx, network, a, "farm", "packer")
    outcome: dict[str, Any] = {}

    def second_planner() -> None:
        with rt.ctx() as ctx:
            try:
                lots.transform(
                    ctx,
                    network.org("packer", ctx),
                    [NewLot(network.mix, "MIX-RACE", "60", "kg", [(_lot(ctx, network), "60")])],
                    network.packer_site,
                    "2026-11-23",
                )
                outcome["result"] = "written"
            except InvalidInput as err:
                outcome["result"] = err.message

    with rt.ctx() as holder:
        lot = _lot(holder, network)
        # the first planner, between its check and its commit: it has taken 70 kg and holds the lot
        holder.session.execute(update(Lot).where(Lot.id == lot.id).values(quantity=lot.quantity - 70))
        indexer.lock_for_planning(holder, [lot])
        thread = threading.Thread(target=second_planner)
        thread.start()
        thread.join(2)
        assert thread.is_alive(), outcome  # waiting for the lot, not planning on the quantity before the take
        holder.session.commit()
    thread.join(120)
    assert "left" in outcome["result"], outcome
    with rt.ctx() as ctx:
        assert _lot(ctx, network).quantity == 30


def test_readings_stored_by_the_driver_statement_read_back_as_sqlalchemy_stored_them(network: Any) -> None:
    """Readings go in as the driver's own statement with values already in bind form (``lots.insert_readings``):
    on SQLite and PostgreSQL the stored values (raw and through the model: UTC times, numbers) equal those of
    the same readings inserted with SQLAlchemy's Core ``insert()`` as before, which compiled the statement and
    bound each row's values through the column types (``UTCDateTime``: a parse and two formattings a row)."""

    readings = [
        {"taken_at": "2026-11-21T08:00:00Z", "temperature_c": "3.5", "humidity": "81"},
        {"taken_at": "2026-11-21T08:00:01.250000Z", "temperature_c": -1.25},
        {"taken_at": "2026-11-21T09:00:06+01:00", "temperature_c": "0", "humidity": 55.5},
        {"taken_at": "2026-11-21T10:00:07+02:00", "temperature_c": "-0.000001"},
        {"taken_at": "2026-11-21T08:00:04.000001+00:00", "temperature_c": "79.999999", "humidity": "0"},
        {"taken_at": "2026-11-21t08:00:05z", "temperature_c": 4, "humidity": "100"},
    ]
    inserts: list[tuple[bool, bool]] = []  # (compiled by SQLAlchemy, executemany) of each readings INSERT

    def seen(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SENSOR_READINGS"):
            inserts.append((context.compiled is not None, executemany))

    engine = network.runtime.engine
    with network.runtime.ctx() as ctx:
        lot = _lot(ctx, network)
        sa_event.listen(engine, "before_cursor_execute", seen)
        try:
            lots.anchor_readings(ctx, network.org("farm", ctx), lot, readings, sensor_id="L9")
        finally:
            sa_event.remove(engine, "before_cursor_execute", seen)
        assert inserts == [(False, True)]  # one executemany of the driver's statement
        batch = lot.sensor_batches[0]
        # the same readings the way they went in before: Core insert(), SQLAlchemy binding each value
        rows = sorted(lots.validate_readings(readings), key=lambda r: r["taken_at"])
        ctx.session.execute(
            insert(SensorReading.__table__),
            [
                {
                    "batch_id": batch.id,
                    "taken_at": datetime.fromisoformat(r["taken_at"]),
                    "temperature_c": Decimal(r["temperature_c"]),
                    "humidity": Decimal(r["humidity"]) if r.get("humidity") is not None else None,
                    "sensor_id": "L9",
                    "leaf_index": 100 + i,
                }
                for i, r in enumerate(rows)
            ],
        )
        raw = ctx.session.execute(
            text(
                "SELECT leaf_index, taken_at, temperature_c, humidity, sensor_id FROM sensor_readings "
                "WHERE batch_id = :b ORDER BY leaf_index"
            ),
            {"b": batch.id},
        ).all()
        assert len(raw) == 12
        assert [tuple(r[1:]) for r in raw[:6]] == [tuple(r[1:]) for r in raw[6:]]
        stored = ctx.session.scalars(
            select(SensorReading).where(SensorReading.batch_id == batch.id).order_by(SensorReading.leaf_index)
        ).all()
        mine = [(r.taken_at, r.temperature_c, r.humidity, r.sensor_id) for r in stored[:6]]
        assert mine == [(r.taken_at, r.temperature_c, r.humidity, r.sensor_id) for r in stored[6:]]
        assert all(r.taken_at.tzinfo is not None and r.taken_at.utcoffset().total_seconds() == 0 for r in stored)
        assert sorted(r.taken_at.isoformat() for r in stored[:6]) == [
            "2026-11-21T08:00:00+00:00",
            "2026-11-21T08:00:01.250000+00:00",
            "2026-11-21T08:00:04.000001+00:00",
            "2026-11-21T08:00:05+00:00",
            "2026-11-21T08:00:06+00:00",
            "2026-11-21T08:00:07+00:00",
        ]
        assert sorted(r.temperature_c for r in stored[:6]) == [-1.25, -0.000001, 0.0, 3.5, 4.0, 79.999999]
        assert sorted(r.humidity for r in stored[:6] if r.humidity is not None) == [0.0, 55.5, 81.0, 100.0]
