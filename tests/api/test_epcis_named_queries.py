"""The parts of the EPCIS 2.0 REST binding beside the query interface: the root resource, single-event capture
(``POST /epcis/events``), named queries (``/epcis/queries``) and their webhook subscriptions.

They run on the package's shared network; every event names serial numbers no other test uses, and every query
selects by them, so other tests' events never enter an answer.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supply_chain.domain import delivery as rules
from supply_chain.services import delivery
from supply_chain.store.models import CaptureJob, Delivery, EpcisEvent, EpcisNamedQuery, EpcisSubscription
from tests.api.conftest import Member, Network

EPCIS = "/api/v1/epcis"
_serials = itertools.count(1)


def _epc() -> str:
    return f"urn:epc:id:sgtin:0614141.107346.nq{uuid.uuid4().hex[:8]}{next(_serials)}"


def _event(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2025-05-01T10:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": [_epc()],
        "bizStep": "inspecting",
    }
    return event | fields


def _post_event(client: FlaskClient, member: Member, event: dict[str, Any], scope: str = "write") -> Any:
    headers = member.headers(scope) | {"Content-Type": "application/ld+json"}
    return client.post(f"{EPCIS}/events", data=json.dumps(event), headers=headers)


def _counts(network: Network) -> tuple[int, int, int]:
    with network.runtime.ctx() as ctx:
        return tuple(  # type: ignore[return-value]
            ctx.session.scalar(select(func.count()).select_from(model))
            for model in (EpcisEvent, CaptureJob, EpcisNamedQuery)
        )


def _event_list(response: Any) -> list[dict[str, Any]]:
    return response.get_json(force=True)["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


# ------------------------------------------------------------------ the root resource


def test_the_root_lists_the_top_level_resources_and_options_announces_the_binding(
    client: FlaskClient, network: Network
) -> None:
    answer = client.get(f"{EPCIS}/", headers=network["retailer"].headers("read"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["type"] == "Collection"
    assert set(body["member"]) == {
        "queries", "capture", "events", "eventTypes", "epcs", "readPoints", "bizLocations", "dispositions", "bizSteps"
    }  # fmt: skip
    assert answer.headers["GS1-EPCIS-Version"] == "2.0.0" and answer.headers["GS1-CBV-Version"] == "2.0.0"
    assert client.get(f"{EPCIS}/").status_code == 401
    options = client.options(f"{EPCIS}/")
    assert options.status_code == 204 and options.headers["Allow"] == "OPTIONS, GET"
    assert options.headers["GS1-EPCIS-Min"] == "2.0.0" and options.headers["GS1-Vendor-Version"] == "lotline"


# ------------------------------------------------------------------ single-event capture


def test_a_single_event_is_captured_201_with_its_location_and_served_back_there(
    client: FlaskClient, network: Network
) -> None:
    member = network["distributor"]
    event = _event(eventID=f"urn:uuid:{uuid.uuid4()}", **{"ex:note": "kept cold"})
    event["@context"] = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"ex": "https://ex.test/"}]
    answer = _post_event(client, member, event)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.headers["Location"] == f"{EPCIS}/events/{quote(event['eventID'], safe='')}"
    assert answer.headers["GS1-EPCIS-Version"] == "2.0.0"
    captured = answer.get_json(force=True)
    assert captured["eventID"] == event["eventID"] and captured["ex:note"] == "kept cold"
    served = client.get(answer.headers["Location"], headers=member.headers("read"))
    assert served.status_code == 200
    [one] = _event_list(served)
    assert {k: v for k, v in one.items() if k != "recordTime"} == {k: v for k, v in event.items() if k != "@context"}
    prefixes = [c for c in served.get_json(force=True)["@context"] if isinstance(c, dict)]
    assert prefixes and prefixes[0]["ex"] == "https://ex.test/"
    # the event, sent again (by its own or another organisation), is already there: 409, nothing stored
    before = _counts(network)
    again = _post_event(client, network["retailer"], event)
    assert again.status_code == 409, again.get_data(as_text=True)
    assert again.get_json()["type"] == "epcisException:ResourceAlreadyExistsException"
    assert _counts(network) == before


def test_a_single_event_without_event_id_is_located_by_its_hash_id(client: FlaskClient, network: Network) -> None:
    answer = _post_event(client, network["distributor"], _event())
    assert answer.status_code == 201, answer.get_data(as_text=True)
    location = answer.headers["Location"]
    assert location.startswith(f"{EPCIS}/events/ni%3A%2F%2F%2Fsha-256%3B")
    assert client.get(location, headers=network["distributor"].headers("read")).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"action": "MOVE"}, 400, "action"),
        ({"eventTime": "2999-01-01T00:00:00Z"}, 422, None),  # a rule of capture: the result names eventTime
    ],
)
def test_a_refused_single_event_answers_as_capture_does_and_writes_nothing(
    client: FlaskClient, network: Network, change: dict[str, Any], status: int, field: str | None
) -> None:
    before = _counts(network)
    answer = _post_event(client, network["distributor"], _event(**change))
    body = answer.get_json()
    assert answer.status_code == status, body
    if field:
        assert body["field"] == field and "epcisBody" not in body["message"], body
    else:
        assert body["events"][0]["field"] == "eventTime", body
    assert _counts(network) == before


def test_single_event_capture_needs_a_write_token_and_options_allows_post(
    client: FlaskClient, network: Network
) -> None:
    before = _counts(network)
    assert _post_event(client, network["distributor"], _event(), scope="read").status_code == 403
    assert _counts(network) == before
    options = client.options(f"{EPCIS}/events")
    assert options.headers["Allow"] == "OPTIONS, GET, POST"
    assert options.headers["GS1-Capture-Error-Behaviour"] == "rollback"


# ------------------------------------------------------------------ named queries


@pytest.fixture(scope="module")
def captured(app: Any, network: Network) -> dict[str, Any]:
    """Three events of the distributor, two shipping and one receiving, naming EPCs of their own."""
    client = app.test_client()
    epcs = [_epc() for _ in range(3)]
    steps = ["shipping", "receiving", "shipping"]
    for epc, step in zip(epcs, steps, strict=True):
        assert _post_event(client, network["distributor"], _event(epcList=[epc], bizStep=step)).status_code == 201
    return {"epcs": epcs, "steps": steps}


def _create(client: FlaskClient, member: Member, name: str, query: dict[str, Any]) -> Any:
    return client.post(f"{EPCIS}/queries", json={"name": name, "query": query}, headers=member.headers())


def _epcs_of(response: Any) -> list[str]:
    return [e["epcList"][0] for e in _event_list(response)]


def test_a_named_query_is_stored_listed_run_and_deleted(
    client: FlaskClient, network: Network, captured: dict[str, Any]
) -> None:
    member, name = network["distributor"], f"shipped-{uuid.uuid4().hex[:8]}"
    query = {"MATCH_epc": captured["epcs"], "EQ_bizStep": ["shipping"], "eventType": "ObjectEvent"}
    made = _create(client, member, name, query)
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.headers["Location"] == f"{EPCIS}/queries/{name}"
    read = member.headers("read")
    assert client.get(made.headers["Location"], headers=read).get_json() == {"name": name, "query": query}
    assert {"name": name, "query": query} in client.get(f"{EPCIS}/queries?perPage=500", headers=read).get_json()
    run = client.get(f"{EPCIS}/queries/{name}/events", headers=read)
    assert run.status_code == 200 and run.mimetype == "application/ld+json"
    assert run.get_json(force=True)["epcisBody"]["queryResults"]["queryName"] == name
    assert _epcs_of(run) == [captured["epcs"][0], captured["epcs"][2]]
    # paged like /events: the Link header names the next page
    first = client.get(f"{EPCIS}/queries/{name}/events?perPage=1", headers=read)
    assert _epcs_of(first) == [captured["epcs"][0]]
    following = first.headers["Link"].split("<", 1)[1].split(">", 1)[0]
    assert _epcs_of(client.get(following, headers=read)) == [captured["epcs"][2]]
    # the query is changed by storing another, not by parameters of the run
    narrowed = client.get(f"{EPCIS}/queries/{name}/events?EQ_bizStep=receiving", headers=read)
    assert narrowed.status_code == 400 and narrowed.get_json()["field"] == "EQ_bizStep"
    assert client.delete(f"{EPCIS}/queries/{name}", headers=member.headers()).status_code == 204
    assert client.get(f"{EPCIS}/queries/{name}", headers=read).status_code == 404
    assert client.get(f"{EPCIS}/queries/{name}/events", headers=read).status_code == 404


def test_named_queries_are_listed_by_name_page_by_page(client: FlaskClient, network: Network) -> None:
    member = network["processor"]
    stem = f"page-{uuid.uuid4().hex[:6]}"
    for n in (3, 1, 2):
        assert _create(client, member, f"{stem}-{n}", {"eventType": ["ObjectEvent"]}).status_code == 201
    names, url = [], f"{EPCIS}/queries?perPage=2"
    while url:
        answer = client.get(url, headers=member.headers("read"))
        assert answer.status_code == 200
        names += [q["name"] for q in answer.get_json()]
        link = answer.headers.get("Link")
        url = link.split("<", 1)[1].split(">", 1)[0] if link else ""
    assert [n for n in names if n.startswith(stem)] == [f"{stem}-1", f"{stem}-2", f"{stem}-3"]


def test_a_named_query_belongs_to_its_organisation_and_runs_with_the_callers_visibility(
    client: FlaskClient, network: Network, captured: dict[str, Any]
) -> None:
    name = f"mine-{uuid.uuid4().hex[:8]}"
    query = {"MATCH_epc": captured["epcs"]}
    assert _create(client, network["distributor"], name, query).status_code == 201
    for other in ("retailer", "regulator"):
        member = network[other]
        assert client.get(f"{EPCIS}/queries/{name}", headers=member.headers("read")).status_code == 404
        assert client.get(f"{EPCIS}/queries/{name}/events", headers=member.headers("read")).status_code == 404
        assert client.delete(f"{EPCIS}/queries/{name}", headers=member.headers()).status_code == 404
        listed = client.get(f"{EPCIS}/queries?perPage=500", headers=member.headers("read")).get_json()
        assert name not in [q["name"] for q in listed]
    assert client.get(f"{EPCIS}/queries/{name}", headers=network["distributor"].headers("read")).status_code == 200
    # the same name is free for another organisation; its run sees what that organisation may see
    for other, expected in (("retailer", []), ("regulator", captured["epcs"])):
        assert _create(client, network[other], name, query).status_code == 201
        run = client.get(f"{EPCIS}/queries/{name}/events", headers=network[other].headers("read"))
        assert _epcs_of(run) == expected, other


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "q", "query": {"EQ_INNER_ilmd_lotline:grade": ["A"]}}, "EQ_INNER_ilmd_lotline:grade"),
        ({"name": "q", "query": {"GE_eventTime": "yesterday"}}, "GE_eventTime"),
        ({"name": "q", "query": {"EQ_action": ["MOVE"]}}, "EQ_action"),
        ({"name": "q", "query": {"nextPageToken": "abc"}}, "nextPageToken"),
        ({"name": "q", "query": {"EQ_bizStep": [1]}}, "EQ_bizStep"),
        ({"name": "q", "query": "eventType=ObjectEvent"}, "query"),
        ({"name": "no/slash", "query": {}}, "name"),
        ({"query": {}}, "name"),
    ],
)
def test_a_bad_named_query_is_400_naming_the_field_and_nothing_is_stored(
    client: FlaskClient, network: Network, body: dict[str, Any], field: str
) -> None:
    before = _counts(network)
    answer = client.post(f"{EPCIS}/queries", json=body, headers=network["distributor"].headers())
    assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()
    assert _counts(network) == before


def test_a_name_in_use_is_409_and_a_read_token_cannot_create_or_delete(client: FlaskClient, network: Network) -> None:
    member, name = network["distributor"], f"taken-{uuid.uuid4().hex[:8]}"
    assert _create(client, member, name, {"eventType": ["ObjectEvent"]}).status_code == 201
    again = _create(client, member, name, {"eventType": ["AggregationEvent"]})
    assert again.status_code == 409 and again.get_json()["type"] == "epcisException:ResourceAlreadyExistsException"
    read = member.headers("read")
    refused = client.post(f"{EPCIS}/queries", json={"name": f"{name}-r", "query": {}}, headers=read)
    assert refused.status_code == 403
    assert client.delete(f"{EPCIS}/queries/{name}", headers=read).status_code == 403
    assert client.get(f"{EPCIS}/queries/{name}", headers=read).get_json()["query"] == {"eventType": ["ObjectEvent"]}
    assert client.options(f"{EPCIS}/queries").headers["Allow"] == "OPTIONS, GET, POST"
    assert client.options(f"{EPCIS}/queries/{name}").headers["Allow"] == "OPTIONS, GET, DELETE"
    assert client.options(f"{EPCIS}/queries/{name}/events").headers["Allow"] == "OPTIONS, GET"


# ------------------------------------------------------------------ webhook subscriptions (stream)


def _subscription_deliveries(network: Network, uid: str) -> list[int]:
    with network.runtime.ctx() as ctx:
        rows = ctx.session.scalars(select(Delivery).where(Delivery.topic == delivery.SUBSCRIPTION_TOPIC))
        return [r.id for r in rows if r.data.get("subscription") == uid]


def _try(network: Network, delivery_id: int) -> str:
    """One try of one delivery (not the whole outbox: other tests' deliveries stay as they are)."""
    now = datetime.now(UTC)
    with network.runtime.ctx() as ctx:
        token = delivery.claim(ctx, delivery_id, now)
        ctx.session.commit()
    assert token is not None
    return delivery.attempt(network.runtime, delivery_id, token)


def test_a_stream_subscription_posts_each_capture_s_matching_events_signed_and_retried(
    client: FlaskClient, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    member, name = network["distributor"], f"stream-{uuid.uuid4().hex[:8]}"
    wanted, other = _epc(), _epc()
    assert _create(client, member, name, {"MATCH_epc": [wanted]}).status_code == 201
    dest = "https://hooks.partner.example/epcis"
    made = client.post(
        f"{EPCIS}/queries/{name}/subscriptions",
        json={"dest": dest, "stream": True, "signatureToken": "client-secret-1"},
        headers=member.headers(),
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    sub = made.get_json()
    assert "signatureToken" not in sub and sub["stream"] is True and sub["dest"] == dest
    assert made.headers["Location"] == f"{EPCIS}/queries/{name}/subscriptions/{sub['subscriptionID']}"
    assert _post_event(client, member, _event(epcList=[other])).status_code == 201  # not selected: nothing sent
    assert _subscription_deliveries(network, sub["subscriptionID"]) == []
    captured = _post_event(client, member, _event(epcList=[wanted], bizStep="shipping"))
    assert captured.status_code == 201
    [delivery_id] = _subscription_deliveries(network, sub["subscriptionID"])

    sent: list[tuple[str, bytes, dict[str, str]]] = []
    answers = iter([delivery.Outcome(False, 503, "busy"), delivery.Outcome(True, 200)])

    def post(url: str, body: bytes, headers: dict[str, str], settings: Any) -> delivery.Outcome:
        sent.append((url, body, headers))
        return next(answers)

    monkeypatch.setattr(delivery, "post_webhook", post)
    assert _try(network, delivery_id) == "pending"  # refused once: tried again later
    with network.runtime.ctx() as ctx:
        ctx.session.get(Delivery, delivery_id).next_attempt_at = datetime.now(UTC)  # its retry is due now
        ctx.session.commit()
    assert _try(network, delivery_id) == "delivered"
    url, body, headers = sent[-1]
    assert url == dest and sent[0][1] == body  # the same document on every try
    document = json.loads(body)
    assert document["type"] == "EPCISQueryDocument"
    assert document["epcisBody"]["queryResults"]["queryName"] == name
    assert [e["epcList"] for e in document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [[wanted]]
    assert rules.verify("client-secret-1", headers["GS1-Signature"], body, datetime.now(UTC).timestamp())
    listed = client.get(f"{EPCIS}/queries/{name}/subscriptions", headers=member.headers("read")).get_json()
    assert [s["subscriptionID"] for s in listed] == [sub["subscriptionID"]] and listed[0]["lastNotifiedAt"]
    # unsubscribed: a delivery not yet sent is cancelled, not sent
    assert _post_event(client, member, _event(epcList=[wanted], bizStep="receiving")).status_code == 201
    [_, waiting] = _subscription_deliveries(network, sub["subscriptionID"])
    location = made.headers["Location"]
    assert client.delete(location, headers=member.headers()).status_code == 204
    assert client.get(location, headers=member.headers("read")).status_code == 404
    assert _try(network, waiting) == "cancelled" and len(sent) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dest": "http://127.0.0.1:8080/hook", "stream": True}, "dest"),  # no private address (SSRF)
        ({"dest": "http://169.254.169.254/latest", "stream": True}, "dest"),
        ({"dest": "ftp://partner.example/x", "stream": True}, "dest"),
        ({"dest": "https://partner.example/x"}, "stream"),
        ({"dest": "https://partner.example/x", "schedule": {"hour": "1", "minute": "5"}}, "schedule"),
        ({"dest": "https://partner.example/x", "stream": True, "signatureToken": ""}, "signatureToken"),
    ],
)
def test_a_bad_subscription_is_400_naming_the_field_and_nothing_is_stored(
    client: FlaskClient, network: Network, body: dict[str, Any], field: str
) -> None:
    member, name = network["distributor"], f"sub-{uuid.uuid4().hex[:8]}"
    assert _create(client, member, name, {"eventType": ["ObjectEvent"]}).status_code == 201
    answer = client.post(f"{EPCIS}/queries/{name}/subscriptions", json=body, headers=member.headers())
    assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()
    assert client.get(f"{EPCIS}/queries/{name}/subscriptions", headers=member.headers("read")).get_json() == []


def test_subscriptions_belong_to_the_query_s_organisation_and_go_with_the_query(
    client: FlaskClient, network: Network
) -> None:
    member, name = network["distributor"], f"owned-{uuid.uuid4().hex[:8]}"
    assert _create(client, member, name, {"eventType": ["ObjectEvent"]}).status_code == 201
    url = f"{EPCIS}/queries/{name}/subscriptions"
    body = {"dest": "https://partner.example/hook", "stream": True}
    assert client.post(url, json=body, headers=member.headers("read")).status_code == 403
    made = client.post(url, json=body, headers=member.headers())
    assert made.status_code == 201
    for other in ("retailer", "regulator"):
        assert client.post(url, json=body, headers=network[other].headers()).status_code == 404
        assert client.get(made.headers["Location"], headers=network[other].headers("read")).status_code == 404
        assert client.delete(made.headers["Location"], headers=network[other].headers()).status_code == 404
    assert client.options(url).headers["Allow"] == "OPTIONS, GET, POST"
    assert client.options(made.headers["Location"]).headers["Allow"] == "OPTIONS, GET, DELETE"
    assert client.delete(f"{EPCIS}/queries/{name}", headers=member.headers()).status_code == 204
    with network.runtime.ctx() as ctx:
        uid = made.get_json()["subscriptionID"]
        assert ctx.session.scalars(select(EpcisSubscription).where(EpcisSubscription.uid == uid)).first() is None


# ------------------------------------------------------------------ GS1-EPC-Format


def test_gs1_epc_format_asks_for_digital_links_and_otherwise_events_are_as_captured(
    client: FlaskClient, network: Network
) -> None:
    member = network["distributor"]
    serial = f"fmt{uuid.uuid4().hex[:8]}"
    event = _event(
        epcList=[f"urn:epc:id:sgtin:0614141.107346.{serial}"],
        readPoint={"id": "urn:epc:id:sgln:0614141.00777.0"},
        quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 5, "uom": "KGM"}],
    )
    assert _post_event(client, member, event).status_code == 201
    url = f"{EPCIS}/events?MATCH_epc=urn:epc:id:sgtin:0614141.107346.{serial}"
    linked = client.get(url, headers=member.headers("read", **{"GS1-EPC-Format": "Always_GS1_Digital_Link"}))
    assert linked.status_code == 200 and linked.headers["GS1-EPC-Format"] == "Always_GS1_Digital_Link"
    [one] = _event_list(linked)
    assert one["epcList"] == [f"https://id.gs1.org/01/10614141073464/21/{serial}"]
    assert one["readPoint"] == {"id": "https://id.gs1.org/414/0614141007776"}
    assert one["quantityList"][0]["epcClass"] == "https://id.gs1.org/01/04012345123456/10/998877"
    for asked in (None, "Never_Translates", "Always_EPC_URN", "No_Preference"):
        headers = member.headers("read", **({"GS1-EPC-Format": asked} if asked else {}))
        plain = client.get(url, headers=headers)
        assert plain.headers["GS1-EPC-Format"] == "Never_Translates", asked
        assert _event_list(plain)[0]["epcList"] == event["epcList"], asked
    refused = client.get(url, headers=member.headers("read", **{"GS1-EPC-Format": "Always_Links"}))
    assert refused.status_code == 400 and refused.get_json()["field"] == "GS1-EPC-Format"
