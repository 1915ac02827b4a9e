"""Named EPCIS queries in the store, on SQLite and PostgreSQL: names are unique per organisation, listed by
name a page at a time, and the database refuses a second row of one name for one organisation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from supply_chain.domain.errors import NotFound
from supply_chain.domain.hashing import keccak256
from supply_chain.services.epcis import named
from supply_chain.store.models import EpcisNamedQuery, Organisation


def _org(session: Session, name: str) -> Organisation:
    address = "0x" + keccak256(name.encode()).hex()[:40]  # lower case: no checksum to get wrong
    org = Organisation(name=name, roles=["distributor"], chain_address=address, encrypted_key='{"version": 3}')
    session.add(org)
    session.flush()
    return org


def test_named_queries_are_per_organisation_and_listed_by_name_page_by_page(session: Session) -> None:
    ctx = SimpleNamespace(session=session)
    first = _org(session, "First")
    second = _org(session, "Second")
    for name in ("b-ship", "a-recv", "c-all"):
        named.create(ctx, first, {"name": name, "query": {"EQ_bizStep": ["shipping"]}})
    named.create(ctx, second, {"name": "a-recv", "query": {"eventType": "ObjectEvent"}})
    page, token = named.listing(ctx, first, per_page=2)
    assert [r.name for r in page] == ["a-recv", "b-ship"] and token
    rest, last = named.listing(ctx, first, per_page=2, page_token=token)
    assert [r.name for r in rest] == ["c-all"] and last is None
    assert named.get(ctx, second, "a-recv").query == {"eventType": "ObjectEvent"}
    named.delete(ctx, second, "a-recv")
    with pytest.raises(NotFound):
        named.get(ctx, second, "a-recv")
    assert named.get(ctx, first, "a-recv").query == {"EQ_bizStep": ["shipping"]}
    session.add(EpcisNamedQuery(organisation_id=first.id, name="c-all", query={}))
    with pytest.raises(IntegrityError):
        session.flush()
