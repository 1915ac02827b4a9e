"""Master data over the API: a regulator/admin onboards organisations with several GS1 company prefixes and
adds prefixes later (on chain too: lots of GTINs under the new prefix can be created); refusals name the field;
the header master data of a captured document registers the capturer's locations; and
``scripts/register_master_data.py`` registers what a document references, through the API, so it can be
captured.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from scripts import register_master_data as script
from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.store.models import Location, Organisation
from tests.api.conftest import new_code
from tests.api.test_epcis import EXAMPLES

_prefixes = itertools.count(1)


def fresh_prefix() -> str:
    """A 7-digit company prefix no other test uses (08xxxxx; the network uses 07000xx)."""
    return f"08{next(_prefixes) + 10 * (id(_prefixes) % 1000):05d}"[:7]


def _gtin(prefix: str, item: str) -> str:
    body = "0" + prefix + item
    return body + str(gs1_check_digit(body))


def _gln(prefix: str, ref: str) -> str:
    body = prefix + ref
    return body + str(gs1_check_digit(body))


def _api(client):  # noqa: ANN001, ANN202
    def call(method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
        answer = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, answer.get_json()

    return call


def _onboard(client, network, **body: Any):  # noqa: ANN001, ANN202
    return client.post("/api/v1/organisations", json=body, headers=network["regulator"].headers())


# ------------------------------------------------------------------ organisations and company prefixes


def test_regulator_onboards_an_organisation_with_two_prefixes_and_hands_over_a_token(client, network) -> None:
    first, second = fresh_prefix(), fresh_prefix()
    answer = _onboard(
        client, network, name=f"Two Prefix Farms {first}", roles=["producer"], gs1_company_prefixes=[first, second]
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["organisation"]["gs1_company_prefixes"] == [first, second]
    token = body["token"]["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json()["organisation"]["name"] == f"Two Prefix Farms {first}"
    headers = {"Authorization": f"Bearer {token}"}
    # a product under the second prefix, and a lot of it (the chain holds both prefixes for its key)
    gtin = _gtin(second, "00001")
    site = _gln(second, "00001")
    assert client.post("/api/v1/products", json={"gtin": gtin, "name": "Kale"}, headers=headers).status_code == 201
    assert client.post("/api/v1/locations", json={"gln": site, "name": "Field 1"}, headers=headers).status_code == 201
    lot = {
        "gtin": gtin,
        "lot_code": new_code("MP"),
        "kind": "harvesting",
        "quantity": "5",
        "payload": {"location_gln": site, "harvest_date": "2025-06-01", "commodity": "kale"},
    }
    created = client.post("/api/v1/lots", json=lot, headers=headers)
    assert created.status_code == 201, created.get_json()
    # a GTIN under neither prefix is refused naming both
    other = client.post("/api/v1/products", json={"gtin": _gtin("0999999", "00001"), "name": "X"}, headers=headers)
    assert other.status_code == 403
    assert other.get_json()["field"] == "gtin" and first in other.get_json()["message"]
    assert second in other.get_json()["message"]


def _org(name: str, roles: list[str], *prefixes: str) -> dict[str, Any]:
    return {"name": name, "roles": roles} | ({"gs1_company_prefixes": list(prefixes)} if prefixes else {})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (_org("Bad Prefix Co", ["producer"], "12ab"), 400, "gs1_company_prefixes[0]"),
        (_org("Admin Grab Co", ["admin"]), 400, "roles"),
        (_org("No Role Co", []), 400, "roles"),
        (_org("API Producer", ["producer"]), 409, "name"),
        (_org("Taken Prefix Co", ["producer"], "0700001"), 409, "gs1_company_prefix"),
        (_org("Longer Taken Co", ["producer"], "070000199"), 409, "gs1_company_prefix"),
        (_org("Self Overlap Co", ["producer"], "0899990", "08999901"), 400, "gs1_company_prefixes"),
    ],
)
def test_onboarding_refusals_name_the_field_and_write_nothing(
    client, api_runtime, network, body, status, field
) -> None:
    with api_runtime.ctx() as ctx:
        before = ctx.session.scalar(select(func.count()).select_from(Organisation))
    answer = _onboard(client, network, **body)
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["field"] == field
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Organisation)) == before


def test_only_a_regulator_or_admin_onboards(client, network) -> None:
    answer = client.post(
        "/api/v1/organisations",
        json={"name": "Self Made Co", "roles": ["producer"]},
        headers=network["producer"].headers(),
    )
    assert answer.status_code == 403 and answer.get_json()["error"] == "wrong_role"


def test_a_prefix_added_later_is_registered_on_chain_and_accepted_for_products(client, network) -> None:
    first, later = fresh_prefix(), fresh_prefix()
    body = _onboard(client, network, name=f"Growing Co {first}", roles=["producer"], gs1_company_prefixes=[first])
    org, token = body.get_json()["organisation"], body.get_json()["token"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    gtin = _gtin(later, "00007")
    assert client.post("/api/v1/products", json={"gtin": gtin, "name": "Leeks"}, headers=headers).status_code == 403
    added = client.post(
        f"/api/v1/organisations/{org['id']}/prefixes",
        json={"gs1_company_prefix": later},
        headers=network["regulator"].headers(),
    )
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["gs1_company_prefixes"] == [first, later]
    assert client.post("/api/v1/products", json={"gtin": gtin, "name": "Leeks"}, headers=headers).status_code == 201
    site = _gln(first, "00002")
    assert client.post("/api/v1/locations", json={"gln": site, "name": "Shed"}, headers=headers).status_code == 201
    lot = {
        "gtin": gtin,
        "lot_code": new_code("MP"),
        "kind": "harvesting",
        "quantity": "3",
        "payload": {"location_gln": site, "harvest_date": "2025-06-01", "commodity": "leeks"},
    }
    assert client.post("/api/v1/lots", json=lot, headers=headers).status_code == 201
    again = client.post(
        f"/api/v1/organisations/{org['id']}/prefixes",
        json={"gs1_company_prefix": later},
        headers=network["regulator"].headers(),
    )
    assert again.status_code == 409 and again.get_json()["error"] == "prefix_taken"
    listed = client.get("/api/v1/organisations?limit=200", headers=network["producer"].headers("read")).get_json()
    assert next(o for o in listed["items"] if o["id"] == org["id"])["gs1_company_prefixes"] == [first, later]


# ------------------------------------------------------------------ header master data on capture


def _commissioning(gtin: str, lot: str, gln: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "eventTime": "2025-06-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [],
        "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
        "quantityList": [{"epcClass": f"https://id.gs1.org/01/{gtin}/10/{lot}", "quantity": 10, "uom": "KGM"}],
    }


def _header(*elements: dict[str, Any]) -> dict[str, Any]:
    return {
        "epcisMasterData": {
            "vocabularyList": [
                {"type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": list(elements)}
            ]
        }
    }


def _location_element(gln: str, name: str, **extra: Any) -> dict[str, Any]:
    attributes = [{"id": "urn:epcglobal:cbv:mda#name", "attribute": name}]
    attributes += [{"id": f"urn:epcglobal:cbv:mda#{k}", "attribute": v} for k, v in extra.items()]
    return {"id": f"https://id.gs1.org/414/{gln}", "attributes": attributes}


def test_header_master_data_registers_the_capturers_locations(client, api_runtime, network) -> None:
    prefix = fresh_prefix()
    body = _onboard(client, network, name=f"Header Farm {prefix}", roles=["producer"], gs1_company_prefixes=[prefix])
    headers = {"Authorization": f"Bearer {body.get_json()['token']['token']}"}
    gtin, site = _gtin(prefix, "00003"), _gln(prefix, "00003")
    assert client.post("/api/v1/products", json={"gtin": gtin, "name": "Chard"}, headers=headers).status_code == 201
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisHeader": _header(
            _location_element(site, "North field", latitude="36.67", longitude="-121.65", city="Salinas"),
            _location_element(network["processor"].gln, "Not mine"),
        ),
        "epcisBody": {"eventList": [_commissioning(gtin, new_code("HD"), site)]},
    }
    answer = client.post("/api/v1/epcis/capture", json=document, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    results = answer.get_json()["master_data"]
    assert [r["status"] for r in results] == ["registered", "skipped"]
    assert "API Processor" in results[1]["reason"]
    with api_runtime.ctx() as ctx:
        location = ctx.session.scalars(select(Location).where(Location.gln == site)).one()
        assert (location.name, location.latitude, location.longitude, location.address) == (
            "North field",
            36.67,
            -121.65,
            "Salinas",
        )


def test_a_refused_document_registers_no_header_location(client, api_runtime, network) -> None:
    prefix = fresh_prefix()
    body = _onboard(client, network, name=f"Refused Farm {prefix}", roles=["producer"], gs1_company_prefixes=[prefix])
    headers = {"Authorization": f"Bearer {body.get_json()['token']['token']}"}
    site = _gln(prefix, "00004")
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisHeader": _header(_location_element(site, "South field")),
        # an event dated years ahead is refused, so the whole document is (an unregistered product alone no
        # longer refuses it: such an event is kept in the EPCIS repository, "stored")
        "epcisBody": {
            "eventList": [
                _commissioning(_gtin(prefix, "00004"), new_code("HD"), site) | {"eventTime": "2099-06-01T08:00:00Z"}
            ]
        },
    }
    answer = client.post("/api/v1/epcis/capture", json=document, headers=headers)
    assert answer.status_code in (400, 422) and answer.get_json()["error"] in ("date_in_future", "epcis_rejected"), (
        answer.get_json()
    )
    bad_latitude = document | {"epcisHeader": _header(_location_element(site, "South field", latitude="95"))}
    answer = client.post("/api/v1/epcis/capture", json=bad_latitude, headers=headers)
    assert answer.status_code == 400
    assert answer.get_json()["field"] == (
        "epcisHeader.epcisMasterData.vocabularyList[0].vocabularyElementList[0].attributes[1]"
    )
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalars(select(Location).where(Location.gln == site)).first() is None


# ------------------------------------------------------------------ the registration script


def test_script_reads_the_prefixes_products_and_locations_an_official_example_names() -> None:
    document = json.loads((EXAMPLES / "Example_9.6.2-ObjectEvent.jsonld").read_text())
    refs = script.references(document)
    assert refs.prefixes == {"4012345", "0614141"}
    assert refs.gtins == {"04012345123456"}
    assert {"0614141007776", "4012345002256"} <= refs.glns
    serialised = script.references(json.loads((EXAMPLES / "Example_9.6.1-ObjectEvent.jsonld").read_text()))
    assert "10614141073464" in serialised.gtins  # SGTIN 0614141.107346.2018, its GTIN computed by epcpy


def test_script_registers_what_a_document_references_then_it_is_captured(client, api_runtime, network) -> None:
    prefix = fresh_prefix()
    gtin, site, store = _gtin(prefix, "00005"), _gln(prefix, "00005"), _gln(prefix, "00006")
    lot = new_code("SC")
    sgln = f"urn:epc:id:sgln:{prefix}.{site[7:12]}.0"
    raw = f"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2025-06-01T12:00:00Z">
  <EPCISHeader><extension><EPCISMasterData><VocabularyList>
    <Vocabulary type="urn:epcglobal:epcis:vtype:BusinessLocation"><VocabularyElementList>
      <VocabularyElement id="{sgln}">
        <attribute id="urn:epcglobal:cbv:mda#name">Packhouse</attribute>
      </VocabularyElement>
    </VocabularyElementList></Vocabulary>
  </VocabularyList></EPCISMasterData></extension></EPCISHeader>
  <EPCISBody><EventList>
    <ObjectEvent>
      <eventTime>2025-06-01T08:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
      <epcList/><action>ADD</action><bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
      <readPoint><id>{sgln}</id></readPoint>
      <bizLocation><id>https://id.gs1.org/414/{store}</id></bizLocation>
      <quantityList><quantityElement>
        <epcClass>urn:epc:class:lgtin:{prefix}.0{gtin[8:13]}.{lot}</epcClass><quantity>40</quantity><uom>KGM</uom>
      </quantityElement></quantityList>
    </ObjectEvent>
  </EventList></EPCISBody>
</epcis:EPCISDocument>""".encode()
    document = script.read_document(raw)
    with api_runtime.ctx() as ctx:
        before = ctx.session.scalar(select(func.count()).select_from(Location))
    report = script.register(
        _api(client), document, admin_token=network["regulator"].write, organisation=f"Script Packers {prefix}"
    )
    assert not report["refused"], report
    assert report["prefixes"] == [prefix]
    assert report["products"] == {gtin: "registered"}
    assert report["locations"] == {site: "registered", store: "registered"}
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Location)) == before + 2
        assert ctx.session.scalars(select(Location).where(Location.gln == site)).one().name == "Packhouse"
    capture = client.post(
        "/api/v1/epcis/capture",
        data=raw,
        headers={"Authorization": f"Bearer {report['token']}", "Content-Type": "application/xml"},
    )
    assert capture.status_code == 202, capture.get_json()
    assert capture.get_json()["events"][0]["status"] == "captured"
    # run again with the organisation's token: everything is already there
    again = script.register(_api(client), document, admin_token=network["regulator"].write, token=report["token"])
    assert again["products"] == {gtin: "already registered"} and not again["refused"]


def test_header_master_data_is_not_registered_by_an_organisation_that_registers_no_locations(
    client, api_runtime, network
) -> None:
    """An inspector captures no lot events, but the registration itself is refused too (as POST /locations)."""
    from supply_chain.services.epcis import masterdata

    prefix = fresh_prefix()
    body = _onboard(client, network, name=f"Lab Inspect {prefix}", roles=["inspector"], gs1_company_prefixes=[prefix])
    site = _gln(prefix, "00009")
    document = {"epcisHeader": _header(_location_element(site, "Lab bench"))}
    with api_runtime.ctx() as ctx:
        lab = ctx.session.get(Organisation, body.get_json()["organisation"]["id"])
        results = masterdata.register_from_header(ctx, lab, document)
        assert [r["status"] for r in results] == ["skipped"]
        assert "registers no locations" in results[0]["reason"]
        assert ctx.session.scalars(select(Location).where(Location.gln == site)).first() is None
