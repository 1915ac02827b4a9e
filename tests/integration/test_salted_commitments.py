"""Salted commitments end to end: new events are written under hash scheme 2 and events written before keep
scheme 1; both verify against the chain; the consumer page, the API and the EPCIS export give each audience
what it needs to re-hash the fields it sees against the chain's dataHash, and never a salt it may not have."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from supply_chain.domain.disclosure import check_disclosure
from supply_chain.domain.hashing import hex32, payload_hash
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots
from supply_chain.services.epcis.export import export_lot
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot

pytestmark = pytest.mark.slow


@pytest.fixture
def histories(network: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """LOT-1 (all scheme 2): harvested, cooled, shipped to the packer, received, inspected, made into MIX-1.
    OLD-1: harvested and cooled by the code before salted commitments (scheme 1), then cooled again (scheme 2)."""
    from supply_chain.services.lots import NewLot

    net = network
    with net.runtime.ctx() as ctx:
        farm, packer = net.org("farm", ctx), net.org("packer", ctx)
        monkeypatch.setattr(lots, "NEW_EVENT_SCHEME", 1)
        old = lots.create_lot(
            ctx,
            farm,
            net.greens,
            "OLD-1",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-18", "commodity": "greens"},
            "70",
            "kg",
        )
        lots.record_events(
            ctx, farm, old, [(EventKind.COOLING, {"location_gln": net.farm_site, "cooling_date": "2026-11-18"})]
        )
        monkeypatch.setattr(lots, "NEW_EVENT_SCHEME", 2)
        lots.record_events(
            ctx, farm, old, [(EventKind.COOLING, {"location_gln": net.farm_site, "cooling_date": "2026-11-19"})]
        )
        lot = ctx.session.get(Lot, net.lot_pk)
        lots.record_events(
            ctx,
            farm,
            lot,
            [(EventKind.COOLING, {"location_gln": net.farm_site, "cooling_date": "2026-11-20", "notes": "fan 2 off"})],
        )
        shipment = {
            "from_gln": net.farm_site,
            "to_gln": net.packer_site,
            "reference_document_type": "bill of lading",
            "reference_document_number": "BOL-7",
        }
        lots.offer_custody(ctx, farm, lot, packer, shipment | {"ship_date": "2026-11-21", "carrier": "Cold Trucks"})
        lots.accept_custody(ctx, packer, lot, shipment | {"receive_date": "2026-11-22"})
        lots.inspect(
            ctx,
            net.org("inspector", ctx),
            lot,
            "pass",
            {"inspection_date": "2026-11-22", "inspector_name": "Ivy", "findings": "belt clean"},
        )
        (mix,) = lots.transform(
            ctx, packer, [NewLot(net.mix, "MIX-1", "60", "kg", [(lot, "60")])], net.packer_site, "2026-11-23"
        )
        for each in (old, lot, mix):
            assert verify_lot(ctx, each).state == "verified", each.lot_code
        net.old_pk, net.mix_pk = old.id, mix.id
    return net


def _chain_hashes(net: Any, lot: Lot) -> dict[int, str]:
    """seq -> the dataHash the chain logged (what an outsider reads from the chain, not from the server)."""
    logs = net.runtime.ledger.logs(0, lot_id=lot.lot_id)
    return {int(log.args["seq"]): str(log.args["dataHash"]).lower() for log in logs if log.name == "LotEventRecorded"}


def _events(ctx: Any, pk: int) -> list[Event]:
    return list(ctx.session.scalars(select(Event).where(Event.lot_id == pk).order_by(Event.seq)))


def _consumer_json(net: Any, gtin: str, code: str) -> tuple[str, dict[str, Any]]:
    from app import create_app

    client = create_app({"RUNTIME": net.runtime, "TESTING": True}).test_client()
    response = client.get(f"/01/{gtin}/10/{code}", headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.get_data(as_text=True), response.json


def test_new_events_are_salted_and_events_written_before_keep_the_plain_hash(histories: Any) -> None:
    net = histories
    with net.runtime.ctx() as ctx:
        old = _events(ctx, net.old_pk)
        assert [(e.hash_scheme, e.salt is None) for e in old] == [(1, True), (1, True), (2, False)]
        assert old[0].payload_hash == hex32(payload_hash(old[0].payload))  # exactly what the old code wrote
        assert old[2].payload_hash != hex32(payload_hash(old[2].payload))
        new = _events(ctx, net.lot_pk)
        assert all(e.hash_scheme == 2 and e.salt for e in new)
        assert len({e.salt for e in new}) == len(new)  # one fresh salt per event
        chain = _chain_hashes(net, ctx.session.get(Lot, net.old_pk))
        assert [chain[e.seq] for e in old] == [e.payload_hash for e in old]


def test_anyone_with_the_label_rehashes_every_step_from_its_public_fields_against_the_chain(histories: Any) -> None:
    net = histories
    with net.runtime.ctx() as ctx:
        lots_by_code = {lot.lot_code: lot for lot in ctx.session.scalars(select(Lot))}
        chain = {code: _chain_hashes(net, lot) for code, lot in lots_by_code.items()}
        salts = [e.salt for e in ctx.session.scalars(select(Event)) if e.salt]
    text, data = _consumer_json(net, net.mix, "MIX-1")
    steps = data["journey"]
    assert {s["lot"]["lot_code"] for s in steps} == {"MIX-1", "LOT-1"}
    for step in steps:
        proof = step["proof"]
        assert proof["scheme"] == 2 and proof["salts"] == {}, step["kind"]
        on_chain = chain[step["lot"]["lot_code"]][step["seq"]]
        assert check_disclosure(step["fields"], proof, on_chain) == [], step["kind"]
    cooling = next(s for s in steps if s["kind"] == "cooling")
    assert set(cooling["proof"]["sealed"]) == {"quantity", "unit", "notes"} and "quantity" not in cooling["fields"]
    shipping = next(s for s in steps if s["kind"] == "shipping")
    assert {"carrier", "reference_document_number"} <= set(shipping["proof"]["sealed"])
    assert "Cold Trucks" not in text and "fan 2 off" not in text and "BOL-7" not in text
    assert not [salt for salt in salts if salt[2:] in text]  # no event salt, ever
    # A step the page shows with an altered public field no longer re-hashes.
    forged = cooling["fields"] | {"cooling_date": "2026-11-01"}
    assert check_disclosure(forged, cooling["proof"], chain["LOT-1"][cooling["seq"]]) != []

    _, old = _consumer_json(net, net.greens, "OLD-1")
    assert [s["proof"]["scheme"] for s in old["journey"]] == [1, 1, 2]
    assert set(old["journey"][0]["proof"]) == {"scheme", "data_hash"}  # scheme 1: only the whole payload re-hashes
    assert old["state"] == "verified"


def test_each_exporter_gets_the_salts_of_the_fields_it_sees_and_they_open_the_commitments(histories: Any) -> None:
    net = histories
    with net.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, net.lot_pk)
        chain = _chain_hashes(net, lot)
        for viewer, private_seen in ((net.org("farm", ctx), {"notes"}), (net.org("packer", ctx), set())):
            document = export_lot(ctx, lot, viewer=viewer)
            events = [e for e in document["epcisBody"]["eventList"] if e["lotline:cte"] != "transformation"]
            for event in events:
                proof = event["lotline:proof"]
                assert event["lotline:payloadHash"] == chain[event["lotline:seq"]]
                assert check_disclosure(event["lotline:kde"], proof, event["lotline:payloadHash"]) == []
            cooling = next(e for e in events if e["lotline:cte"] == "cooling")
            assert set(cooling["lotline:proof"]["salts"]) == {"quantity", "unit"} | private_seen
            inspection = next(e for e in events if e["lotline:cte"] == "inspection")
            assert "inspector_name" not in inspection["lotline:proof"]["salts"]  # the inspector's own
            assert inspection["lotline:proof"]["public"]["outcome"] == "pass"


@pytest.mark.parametrize(
    "tamper",
    ["sealed field", "public field", "salt replaced", "salt removed", "scheme switched to plain", "plain event"],
)
def test_tampering_with_payload_salt_or_scheme_is_named(histories: Any, tamper: str) -> None:
    net = histories
    with net.runtime.ctx() as ctx:
        target = _events(ctx, net.old_pk if tamper == "plain event" else net.lot_pk)[1]  # a cooling event
        target_id, payload = target.id, dict(target.payload)
        pk = target.lot_id
    changes = {
        "sealed field": {"payload": payload | {"quantity": "99"}},
        "public field": {"payload": payload | {"cooling_date": "2026-11-01"}},
        "salt replaced": {"salt": "0x" + "11" * 32},
        "salt removed": {"salt": None},
        "scheme switched to plain": {"hash_scheme": 1, "salt": None},
        "plain event": {"payload": payload | {"quantity": "69"}},
    }[tamper]
    with net.runtime.engine.begin() as conn:
        conn.execute(update(Event.__table__).where(Event.__table__.c.id == target_id).values(**changes))
    with net.runtime.ctx() as ctx:
        result = verify_lot(ctx, ctx.session.get(Lot, pk))
    assert result.state == "tampered" and result.bad_event_id == target_id
    assert "event #2 (cooling" in result.detail and "altered" in result.detail
    if tamper == "salt removed":  # the page still answers (nothing to open) and says the record was altered
        _, data = _consumer_json(net, net.greens, "LOT-1")
        assert data["state"] == "tampered"
        assert json.dumps(data["journey"][1]["proof"]).startswith('{"scheme": 2')
