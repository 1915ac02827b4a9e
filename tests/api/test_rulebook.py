"""The rulebook through the API: recalls that reach every lot made from the recalled one, revoked roles that
stop working, lot ids that belong to the GTIN's owner, and one answer for one state whichever path asks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.domain.errors import Conflict, Forbidden
from supply_chain.services import lots, orgs, tokens
from supply_chain.store.models import Event, Lot
from tests.api.conftest import Api, Member, gln, gtin, harvest_body, new_code, ship_body


def _rows(runtime: Any) -> tuple[int, int, int]:
    with runtime.ctx() as ctx:
        return (
            ctx.session.scalar(select(func.count()).select_from(Lot)),
            ctx.session.scalar(select(func.count()).select_from(Event)),
            ctx.ledger.block_number(),
        )


def _mix_from_a_farm_lot(as_role: Any, network: Any) -> tuple[str, str]:
    """A producer lot received by the processor and made into a mix; returns (farm lot code, mix code)."""
    producer, processor = network["producer"], network["processor"]
    farm = new_code("FARM")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, farm)).status_code == 201
    as_role("producer")("POST", f"/lots/{producer.gtin}/{farm}/shipments", json=ship_body(producer, processor))
    accepted = as_role("processor")("POST", f"/lots/{producer.gtin}/{farm}/custody/accept", json={})
    assert accepted.status_code == 201, accepted.get_json()
    mix = new_code("MIX")
    made = as_role("processor")(
        "POST",
        "/transformations",
        json={
            "location_gln": processor.gln,
            "transformation_date": "2025-05-04",
            "outputs": [
                {
                    "gtin": processor.gtin,
                    "lot_code": mix,
                    "quantity": "50",
                    "unit": "kg",
                    "inputs": [{"gtin": producer.gtin, "lot_code": farm, "quantity": "50"}],
                }
            ],
        },
    )
    assert made.status_code == 201, made.get_json()
    return farm, mix


def test_recall_of_a_farm_lot_recalls_the_mix_and_it_cannot_be_shipped(as_role, network, api_runtime) -> None:
    producer, processor = network["producer"], network["processor"]
    farm, mix = _mix_from_a_farm_lot(as_role, network)
    recalled = as_role("regulator")(
        "POST",
        f"/lots/{producer.gtin}/{farm}/recalls",
        json={"reason": "Listeria monocytogenes", "recall_class": "I", "instructions": "Do not eat."},
    )
    assert recalled.status_code == 201, recalled.get_json()
    resource = as_role("processor")("GET", f"/lots/{processor.gtin}/{mix}").get_json()
    assert resource["status"] == "recalled"  # on chain, not only derived when read
    assert resource["recalled_via"] == {"gtin": producer.gtin, "lot_code": farm}
    events = as_role("processor")("GET", f"/lots/{processor.gtin}/{mix}/events").get_json()["items"]
    recall = [e for e in events if e["kind"] == "recall"][-1]
    assert recall["payload"]["source_lot_code"] == farm and recall["payload"]["recall_class"] == "I"
    before = _rows(api_runtime)
    shipped = as_role("processor")(
        "POST", f"/lots/{processor.gtin}/{mix}/shipments", json=ship_body(processor, network["retailer"])
    )
    assert shipped.status_code == 409 and shipped.get_json()["error"] == "lot_recalled"
    assert _rows(api_runtime) == before


def test_receiving_twice_gets_the_same_answer_from_the_api_and_the_service(as_role, network, api_runtime) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code()
    as_role("producer")("POST", "/lots", json=harvest_body(producer, code))
    as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(producer, processor))
    assert as_role("processor")("POST", f"/lots/{producer.gtin}/{code}/custody/accept", json={}).status_code == 201
    again = as_role("processor")("POST", f"/lots/{producer.gtin}/{code}/custody/accept", json={})
    assert again.status_code == 409 and again.get_json()["error"] == "already_received"
    assert "already received by you" in again.get_json()["message"]
    with api_runtime.ctx() as ctx:
        lot = lots.get_lot(ctx, producer.gtin, code)
        with pytest.raises(Conflict) as service:
            lots.accept_custody(ctx, orgs.get_org(ctx, processor.org.id), lot, {})
    assert service.value.code == "already_received"


@pytest.fixture
def own_producer(network: Any, api_runtime: Any, client: Any) -> tuple[Api, Member]:
    """A producer organisation of this test alone (its roles are changed)."""
    number = new_code("P")[-4:]
    prefix = f"071{number}"
    with api_runtime.ctx() as ctx:
        regulator = orgs.get_org(ctx, network["regulator"].org.id)
        org = orgs.onboard(ctx, regulator, f"Own Producer {number}", ["producer"], prefix)
        site = gln(prefix, "00001")
        orgs.register_location(ctx, org, site, "Own farm", "1 Lane", None, None, "farm")
        product = orgs.register_product(ctx, org, gtin(prefix, "00001"), "Own greens", "test", True, "kg")
        member = Member("producer", org, prefix, site, gtin=product.gtin)
        _, member.write = tokens.create(ctx, org, "write", "write")
        ctx.session.commit()
    return Api(client, member), member


def test_a_producer_whose_role_was_revoked_cannot_recall_its_own_lot(own_producer, network, api_runtime) -> None:
    api, member = own_producer
    code = new_code()
    assert api("POST", "/lots", json=harvest_body(member, code)).status_code == 201
    with api_runtime.ctx() as ctx:
        regulator = orgs.get_org(ctx, network["regulator"].org.id)
        orgs.set_roles(ctx, regulator, orgs.get_org(ctx, member.org.id), ["retailer"])
        ctx.session.commit()
    before = _rows(api_runtime)
    body = {"reason": "mislabelled", "recall_class": "II", "instructions": "Return it."}
    refused = api("POST", f"/lots/{member.gtin}/{code}/recalls", json=body)
    assert refused.status_code == 403 and refused.get_json()["error"] == "wrong_role"
    assert _rows(api_runtime) == before


def test_a_key_cannot_take_another_companys_lot_id_first(network, api_runtime, client) -> None:
    """Squatting: the processor's key creates the lot id of the producer's GTIN and a lot code directly on
    chain; the contract refuses (the GTIN's company prefix belongs to the producer), and the producer's own
    creation of that lot then goes through."""
    from supply_chain.chain.ledger import Ledger
    from supply_chain.domain.kinds import EventKind

    producer = network["producer"]
    code = new_code("SQ")
    with api_runtime.ctx() as ctx:
        squatter = orgs.signer(ctx, orgs.get_org(ctx, network["processor"].org.id))
        before = ctx.ledger.block_number()
        with pytest.raises(Forbidden) as refused:
            ctx.ledger.prepare(
                squatter,
                "createLot",
                Ledger.args_create_lot(producer.gtin, code, [], EventKind.HARVESTING, "0x" + "11" * 32),
            )
        assert refused.value.code == "gtin_not_owned" and ctx.ledger.block_number() == before
    created = Api(client, producer)("POST", "/lots", json=harvest_body(producer, code))
    assert created.status_code == 201, created.get_json()

