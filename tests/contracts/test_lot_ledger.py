"""LotLedger behaviour through the Python adapter, on the embedded chain and on anvil.

Every success path checks the decoded logs (names and values) and the lot's on-chain state; every refusal
checks the contract error's name, the project exception it becomes, and that nothing was written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from supply_chain.chain.compile import load_artifact
from supply_chain.chain.ledger import ChainEvent, Ledger, TxResult, role_id
from supply_chain.domain import identifiers
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, LotlineError, NotFound
from supply_chain.domain.kinds import FREE_KINDS, EventKind, InspectionOutcome, LotStatus
from tests.contracts.conftest import COMPANY_PREFIX, LotRef, gtin_under, new_lot_ref

ZERO_HEX = "0x" + "00" * 32
HANDLER_ROLES = ["producer", "processor", "distributor", "retailer"]
RECALLER_ROLES = ["inspector", "processor", "producer", "regulator"]  # as AccountLacksRoles lists them


def new_hash() -> bytes:
    return secrets.token_bytes(32)


def with_check_digit(body: str) -> str:
    return body + str(identifiers.gtin_check_digit(body))


def hx(value: bytes) -> str:
    return "0x" + value.hex()


def names(result: TxResult) -> list[str]:
    return [event.name for event in result.events]


def only(result: TxResult, name: str) -> ChainEvent:
    found = [event for event in result.events if event.name == name]
    assert len(found) == 1, f"expected one {name}, got {names(result)}"
    return found[0]


def assert_recorded(
    event: ChainEvent, lot_id: bytes, actor: LocalAccount, kind: EventKind, seq: int, data_hash: bytes
) -> None:
    """A LotEventRecorded log with these values (the head is checked against getLot by the callers)."""
    assert event.name == "LotEventRecorded"
    assert {k: v for k, v in event.args.items() if k != "head"} == {
        "lotId": hx(lot_id),
        "actor": actor.address,
        "kind": int(kind),
        "seq": seq,
        "dataHash": hx(data_hash),
    }


def assert_last_recorded(
    ledger: Ledger, result: TxResult, lot_id: bytes, actor: LocalAccount, kind: EventKind, data_hash: bytes
) -> None:
    """The transaction appended exactly one event, the lot's newest, and its head is the lot's head now."""
    lot = ledger.get_lot(lot_id)
    (event,) = result.recorded()
    assert_recorded(event, lot_id, actor, kind, lot.event_count, data_hash)
    assert event.args["head"] == lot.head


# ============================================================================================ createLot


@pytest.mark.parametrize(
    "kind", [EventKind.HARVESTING, EventKind.INITIAL_PACKING, EventKind.FIRST_LAND_BASED_RECEIVING]
)
def test_create_lot_by_producer_records_creator_custodian_and_first_event(ledger, actors, kind):
    ref, data_hash = new_lot_ref("producer"), new_hash()

    result = ledger.create_lot(actors.producer, *ref.label, [], kind, data_hash)

    assert result.success
    assert names(result) == ["LotCreated", "LotEventRecorded"]
    assert only(result, "LotCreated").args == {
        "lotId": hx(ref),
        "creator": actors.producer.address,
        "inputs": [],
    }
    assert_recorded(result.events[1], ref, actors.producer, kind, 1, data_hash)
    lot = ledger.get_lot(ref)
    assert lot.exists
    assert (lot.creator, lot.custodian, lot.pending_custodian) == (actors.producer.address,) * 2 + (None,)
    assert (lot.status, lot.event_count, lot.inputs) == (LotStatus.ACTIVE, 1, ())
    assert lot.head == result.events[1].args["head"] != ZERO_HEX


def test_create_lot_by_processor_is_allowed(ledger, actors):
    ref = new_lot_ref("processor")
    result = ledger.create_lot(actors.processor, *ref.label, [], EventKind.FIRST_LAND_BASED_RECEIVING, new_hash())
    assert names(result) == ["LotCreated", "LotEventRecorded"]
    assert ledger.get_lot(ref).custodian == actors.processor.address


@pytest.mark.parametrize("who", ["distributor", "retailer", "inspector", "regulator", "admin", "stranger"])
def test_create_lot_without_producer_or_processor_role_reverts_with_account_lacks_roles(ledger, actors, refused, who):
    ref = new_lot_ref("producer")
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.create_lot(signer, *ref.label, [], EventKind.HARVESTING, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(ref,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": ["producer", "processor"]}
    assert not ledger.get_lot(ref).exists


def test_create_lot_with_existing_label_reverts_with_lot_already_exists(ledger, actors, make_lot, refused):
    ref = make_lot()
    exc = refused(
        lambda: ledger.create_lot(actors.producer, *ref.label, [], EventKind.HARVESTING, new_hash()),
        "LotAlreadyExists",
        Conflict,
        lots=(ref,),
    )
    assert exc.chain_args == {"lotId": hx(ref)}
    assert exc.code == "lot_exists"
    assert ledger.get_lot(ref).event_count == 1


@pytest.mark.parametrize("squatter", ["producer2", "processor"])
def test_create_lot_of_another_companys_gtin_reverts_with_gtin_not_owned_and_owner_creates_it_later(
    ledger, actors, refused, squatter
):
    """No key can take a lot id first: the id is derived from the label, and only the GTIN's owner may use it."""
    ref = new_lot_ref("producer")
    signer = getattr(actors, squatter)

    exc = refused(
        lambda: ledger.create_lot(signer, *ref.label, [], EventKind.HARVESTING, new_hash()),
        "GtinNotOwned",
        Forbidden,
        lots=(ref,),
    )

    assert exc.chain_args == {"gtin14": ref.gtin14, "caller": signer.address}
    assert exc.code == "gtin_not_owned"
    assert not ledger.get_lot(ref).exists
    assert ledger.gtin_owner(ref.gtin14) == actors.producer.address
    result = ledger.create_lot(actors.producer, *ref.label, [], EventKind.HARVESTING, new_hash())
    assert only(result, "LotCreated").args == {"lotId": hx(ref), "creator": actors.producer.address, "inputs": []}
    lot = ledger.get_lot(ref)
    assert (lot.creator, lot.custodian, lot.status) == (actors.producer.address,) * 2 + (LotStatus.ACTIVE,)


def test_create_lot_of_gtin_under_no_registered_prefix_reverts_with_gtin_not_owned(ledger, actors, refused):
    ref = LotRef(gtin_under("9599999"), "L1")
    assert ledger.gtin_owner(ref.gtin14) is None
    refused(
        lambda: ledger.create_lot(actors.producer, *ref.label, [], EventKind.HARVESTING, new_hash()),
        "GtinNotOwned",
        Forbidden,
        lots=(ref,),
    )


@pytest.mark.parametrize(
    "gtin14",
    ["0950600000001", "095060000000155", "0950600000001A", " 9506000000013", ""],
    ids=["13-digits", "15-digits", "letter", "space", "empty"],
)
def test_create_lot_with_gtin_other_than_14_digits_reverts_with_invalid_gtin(ledger, actors, refused, gtin14):
    exc = refused(
        lambda: ledger.create_lot(actors.producer, gtin14, "L1", [], EventKind.HARVESTING, new_hash()),
        "InvalidGtin",
        InvalidInput,
    )
    assert exc.chain_args == {"gtin14": gtin14}


@pytest.mark.parametrize("lot_code", ["", "A" * 21], ids=["empty", "21-bytes"])
def test_create_lot_with_lot_code_not_1_to_20_bytes_reverts_with_invalid_lot_code(ledger, actors, refused, lot_code):
    gtin14 = gtin_under(COMPANY_PREFIX["producer"])
    exc = refused(
        lambda: ledger.create_lot(actors.producer, gtin14, lot_code, [], EventKind.HARVESTING, new_hash()),
        "InvalidLotCode",
        InvalidInput,
    )
    assert exc.chain_args == {"lotCode": lot_code}


def test_create_lot_with_20_byte_lot_code_is_allowed_and_gets_the_labels_id(ledger, actors):
    ref = LotRef(gtin_under(COMPANY_PREFIX["producer"]), "Z" * 20)
    result = ledger.create_lot(actors.producer, *ref.label, [], EventKind.HARVESTING, new_hash())
    assert only(result, "LotCreated").args["lotId"] == hx(ref)
    assert ledger.get_lot(ref).exists


def test_create_lot_without_inputs_and_non_creation_kind_reverts_with_event_kind_not_allowed(ledger, actors, refused):
    ref = new_lot_ref("producer")
    starting = (EventKind.HARVESTING, EventKind.INITIAL_PACKING, EventKind.FIRST_LAND_BASED_RECEIVING)
    for kind in [k for k in EventKind if k not in starting]:
        exc = refused(
            lambda k=kind: ledger.create_lot(actors.producer, *ref.label, [], k, new_hash()),
            "EventKindNotAllowed",
            InvalidInput,
            lots=(ref,),
        )
        assert exc.chain_args == {"kind": int(kind)}, kind.name


def test_create_lot_with_inputs_and_harvesting_kind_reverts_with_event_kind_not_allowed(
    ledger, actors, make_lot, refused
):
    source, ref = make_lot(actors.processor), new_lot_ref("processor")
    refused(
        lambda: ledger.create_lot(actors.processor, *ref.label, [source], EventKind.HARVESTING, new_hash()),
        "EventKindNotAllowed",
        InvalidInput,
        lots=(source, ref),
    )


# ============================================================================================ company prefixes


def test_register_company_prefix_by_admin_gives_its_gtins_to_the_owner(ledger, actors):
    result = ledger.register_company_prefix(actors.admin, "9512345", actors.producer2.address)

    assert names(result) == ["CompanyPrefixRegistered"]
    assert only(result, "CompanyPrefixRegistered").args == {"prefix": "9512345", "owner": actors.producer2.address}
    ref = LotRef(gtin_under("9512345"), "P1")
    assert ledger.gtin_owner(ref.gtin14) == actors.producer2.address
    ledger.create_lot(actors.producer2, *ref.label, [], EventKind.HARVESTING, new_hash())
    assert ledger.get_lot(ref).creator == actors.producer2.address


def test_gtin_owner_reads_the_digits_after_the_indicator_digit(ledger, actors):
    item = COMPANY_PREFIX["producer"] + "00042"  # company prefix and item reference: 12 digits
    for indicator in "019":
        assert ledger.gtin_owner(with_check_digit(indicator + item)) == actors.producer.address, indicator
    assert ledger.gtin_owner(with_check_digit(item + "0")) is None  # the prefix in the indicator's place
    assert ledger.gtin_owner(with_check_digit(item)) is None  # 13 digits: not a GTIN-14


def test_single_gtin_licence_of_13_digits_owns_exactly_that_gtin(ledger, actors):
    gtin14 = gtin_under("9598765")
    ledger.register_company_prefix(actors.admin, gtin14[1:], actors.producer2.address)
    assert ledger.gtin_owner(gtin14) == actors.producer2.address
    assert ledger.gtin_owner(with_check_digit("0959876500002")) is None  # the next item of that company


@pytest.mark.parametrize("who", ["regulator", "producer", "stranger"])
def test_register_company_prefix_by_non_admin_reverts_with_access_control_unauthorized_account(
    ledger, actors, refused, who
):
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.register_company_prefix(signer, "9512345", signer.address),
        "AccessControlUnauthorizedAccount",
        Forbidden,
    )
    assert exc.chain_args == {"account": signer.address, "neededRole": "admin"}
    assert ledger.gtin_owner(gtin_under("9512345")) is None


@pytest.mark.parametrize(
    ("prefix", "taken"),
    [
        (COMPANY_PREFIX["producer"], COMPANY_PREFIX["producer"]),  # the same prefix
        (COMPANY_PREFIX["producer"] + "12", COMPANY_PREFIX["producer"]),  # a longer prefix under it
        (gtin_under(COMPANY_PREFIX["producer"])[1:], COMPANY_PREFIX["producer"]),  # one of its GTINs
    ],
    ids=["same", "longer", "single-gtin"],
)
def test_register_company_prefix_overlapping_another_owners_reverts_with_prefix_taken(
    ledger, actors, refused, prefix, taken
):
    exc = refused(
        lambda: ledger.register_company_prefix(actors.admin, prefix, actors.producer2.address),
        "PrefixTaken",
        Conflict,
    )
    assert exc.chain_args == {"prefix": taken, "owner": actors.producer.address}
    assert exc.code == "prefix_taken"
    gtin14 = "0" + prefix if len(prefix) == 13 else gtin_under(prefix)
    assert ledger.gtin_owner(gtin14) == actors.producer.address


def test_register_company_prefix_under_own_prefix_again_is_allowed(ledger, actors):
    longer = COMPANY_PREFIX["producer"] + "12"
    result = ledger.register_company_prefix(actors.admin, longer, actors.producer.address)
    assert only(result, "CompanyPrefixRegistered").args == {"prefix": longer, "owner": actors.producer.address}
    assert ledger.gtin_owner(gtin_under(longer)) == actors.producer.address


def test_shorter_prefix_registered_later_never_takes_over_another_owners_gtins(ledger, actors, make_lot):
    """gtinOwner takes the longest registered prefix: 950600 registered to a stranger covers 9506000 (the
    producer's) but does not take its GTINs; it gets only the GTINs no longer prefix covers."""
    covering = COMPANY_PREFIX["producer"][:-1]  # 950600
    ledger.register_company_prefix(actors.admin, covering, actors.stranger.address)
    assert ledger.gtin_owner(gtin_under(COMPANY_PREFIX["producer"])) == actors.producer.address
    assert ledger.gtin_owner(gtin_under(covering + "9")) == actors.stranger.address
    assert make_lot(actors.producer)  # the producer still creates lots of its GTINs


@pytest.mark.parametrize(
    "prefix", ["950", "95060001234567", "95O6000", ""], ids=["3-digits", "14-digits", "letter", "empty"]
)
def test_register_company_prefix_not_4_to_13_digits_reverts_with_invalid_prefix(ledger, actors, refused, prefix):
    exc = refused(
        lambda: ledger.register_company_prefix(actors.admin, prefix, actors.stranger.address),
        "InvalidPrefix",
        InvalidInput,
    )
    assert exc.chain_args == {"prefix": prefix}


# ============================================================================================ transformation


def test_transformation_links_inputs_and_outputs_both_ways(ledger, actors, make_lot):
    lettuce, carrots = make_lot(actors.processor), make_lot(actors.processor)
    salad, data_hash = new_lot_ref("processor"), new_hash()

    result = ledger.create_lot(actors.processor, *salad.label, [lettuce, carrots], EventKind.TRANSFORMATION, data_hash)

    assert names(result) == ["LotCreated", "LotEventRecorded"]
    assert only(result, "LotCreated").args["inputs"] == [hx(lettuce), hx(carrots)]
    assert_recorded(result.events[1], salad, actors.processor, EventKind.TRANSFORMATION, 1, data_hash)
    assert ledger.get_lot(salad).inputs == (hx(lettuce), hx(carrots))
    assert ledger.lot_outputs(lettuce) == [hx(salad)]
    assert ledger.lot_outputs(carrots) == [hx(salad)]
    assert ledger.lot_outputs(salad) == []
    # inputs are not consumed by the contract: part of a lot may go into several products
    assert ledger.get_lot(lettuce).status is LotStatus.ACTIVE


def test_split_of_one_input_into_two_lots_lists_both_outputs_in_order(ledger, actors, make_lot):
    source = make_lot(actors.processor)
    first, second = new_lot_ref("processor"), new_lot_ref("processor")
    ledger.create_lot(actors.processor, *first.label, [source], EventKind.TRANSFORMATION, new_hash())
    ledger.create_lot(actors.processor, *second.label, [source], EventKind.TRANSFORMATION, new_hash())
    assert ledger.lot_outputs(source) == [hx(first), hx(second)]


def test_transformation_by_received_lot_custodian_is_allowed(ledger, actors, make_lot):
    raw = make_lot(actors.producer)
    ledger.offer_custody(actors.producer, raw, actors.processor.address, new_hash())
    ledger.accept_custody(actors.processor, raw, new_hash())
    cut = new_lot_ref("processor")
    ledger.create_lot(actors.processor, *cut.label, [raw], EventKind.TRANSFORMATION, new_hash())
    assert ledger.get_lot(cut).inputs == (hx(raw),)


def _unavailable_input(ledger: Ledger, actors: Any, lot: bytes, state: str) -> None:
    if state == "recalled":
        ledger.recall(actors.regulator, lot, new_hash())
    elif state == "held":
        ledger.hold(actors.inspector, lot, new_hash())
    elif state == "closed":
        ledger.close(actors.processor, lot, new_hash())
    elif state == "in_transit":
        ledger.offer_custody(actors.processor, lot, actors.distributor.address, new_hash())


@pytest.mark.parametrize("state", ["recalled", "held", "closed", "in_transit"])
def test_transformation_with_unavailable_input_reverts_with_input_unavailable(ledger, actors, make_lot, refused, state):
    good, bad = make_lot(actors.processor), make_lot(actors.processor)
    _unavailable_input(ledger, actors, bad, state)
    ref = new_lot_ref("processor")

    exc = refused(
        lambda: ledger.create_lot(actors.processor, *ref.label, [good, bad], EventKind.TRANSFORMATION, new_hash()),
        "InputUnavailable",
        Conflict,
        lots=(good, bad, ref),
    )

    assert exc.chain_args == {"inputId": hx(bad), "status": state}
    assert ledger.lot_outputs(good) == []


def test_transformation_with_input_held_by_someone_else_reverts_with_lot_not_custodian(
    ledger, actors, make_lot, refused
):
    mine, theirs = make_lot(actors.processor), make_lot(actors.producer)
    ref = new_lot_ref("processor")
    exc = refused(
        lambda: ledger.create_lot(actors.processor, *ref.label, [mine, theirs], EventKind.TRANSFORMATION, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(mine, theirs, ref),
    )
    assert exc.chain_args == {"lotId": hx(theirs), "caller": actors.processor.address}


def test_transformation_with_duplicate_input_reverts_with_duplicate_input(ledger, actors, make_lot, refused):
    source = make_lot(actors.processor)
    ref = new_lot_ref("processor")
    exc = refused(
        lambda: ledger.create_lot(actors.processor, *ref.label, [source, source], EventKind.TRANSFORMATION, new_hash()),
        "DuplicateInput",
        InvalidInput,
        lots=(source, ref),
    )
    assert exc.chain_args == {"inputId": hx(source)}


def test_transformation_with_unknown_input_reverts_with_lot_not_found(ledger, actors, refused):
    unknown, ref = new_lot_ref("producer"), new_lot_ref("processor")
    exc = refused(
        lambda: ledger.create_lot(actors.processor, *ref.label, [unknown], EventKind.TRANSFORMATION, new_hash()),
        "LotNotFound",
        NotFound,
        lots=(unknown, ref),
    )
    assert exc.chain_args == {"lotId": hx(unknown)}


# ============================================================================================ recordEvent(s)


@pytest.mark.parametrize("kind", sorted(FREE_KINDS))
def test_record_event_by_custodian_appends_event_and_moves_head(ledger, actors, make_lot, kind):
    lot_id = make_lot()
    head_before = ledger.get_lot(lot_id).head
    data_hash = new_hash()

    result = ledger.record_event(actors.producer, lot_id, kind, data_hash)

    assert names(result) == ["LotEventRecorded"]
    assert_recorded(result.events[0], lot_id, actors.producer, kind, 2, data_hash)
    lot = ledger.get_lot(lot_id)
    assert lot.event_count == 2
    assert lot.head == result.events[0].args["head"] != head_before


def test_record_event_with_kind_that_has_its_own_function_reverts_with_event_kind_not_allowed(
    ledger, actors, make_lot, refused
):
    lot_id = make_lot()
    for kind in sorted(set(EventKind) - FREE_KINDS):
        exc = refused(
            lambda k=kind: ledger.record_event(actors.producer, lot_id, k, new_hash()),
            "EventKindNotAllowed",
            InvalidInput,
            lots=(lot_id,),
        )
        assert exc.chain_args == {"kind": int(kind)}, kind.name


def test_record_event_with_unknown_kind_number_reverts_with_event_kind_not_allowed(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    for number in (0, 17, 255):
        refused(
            lambda n=number: ledger.transact(actors.producer, "recordEvent", [lot_id, n, new_hash()]),
            "EventKindNotAllowed",
            InvalidInput,
            lots=(lot_id,),
        )


@pytest.mark.parametrize("who", ["producer2", "processor", "distributor", "retailer"])
def test_record_event_by_non_custodian_handler_reverts_with_lot_not_custodian(ledger, actors, make_lot, refused, who):
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.record_event(signer, lot_id, EventKind.COOLING, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": signer.address}
    assert exc.code == "not_custodian"


@pytest.mark.parametrize("who", ["stranger", "inspector", "regulator", "admin"])
def test_record_event_by_account_without_handling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    """The role is checked before the relation to the lot: these accounts could never hold a lot."""
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.record_event(signer, lot_id, EventKind.COOLING, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": HANDLER_ROLES}


@pytest.mark.parametrize("state", ["recalled", "closed"])
def test_record_event_by_non_custodian_on_lot_in_final_state_reverts_with_lot_not_custodian(
    ledger, actors, make_lot, refused, state
):
    """The relation to the lot is checked before its status."""
    lot_id = make_lot()
    if state == "recalled":
        ledger.recall(actors.regulator, lot_id, new_hash())
    else:
        ledger.close(actors.producer, lot_id, new_hash())
    refused(
        lambda: ledger.record_event(actors.producer2, lot_id, EventKind.COOLING, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_record_event_on_held_lot_is_allowed(ledger, actors, make_lot):
    """A hold stops movement, not record keeping (storage temperatures, observations)."""
    lot_id = make_lot()
    ledger.hold(actors.inspector, lot_id, new_hash())
    result = ledger.record_event(actors.producer, lot_id, EventKind.OBSERVATION, new_hash())
    assert names(result) == ["LotEventRecorded"]
    assert ledger.get_lot(lot_id).status is LotStatus.HELD


def test_record_event_by_custodian_whose_roles_were_revoked_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused
):
    lot_id = make_lot()
    result = ledger.revoke_role(actors.admin, "producer", actors.producer.address)
    assert only(result, "RoleRevoked").args == {
        "role": hx(role_id("producer")),
        "account": actors.producer.address,
        "sender": actors.admin.address,
    }
    assert not ledger.has_role("producer", actors.producer.address)

    exc = refused(
        lambda: ledger.record_event(actors.producer, lot_id, EventKind.COOLING, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": actors.producer.address, "anyOf": HANDLER_ROLES}
    refused(
        lambda: ledger.offer_custody(actors.producer, lot_id, actors.processor.address, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )


def test_record_events_appends_batch_in_order(ledger, actors, make_lot):
    lot_id = make_lot()
    kinds = [EventKind.COOLING, EventKind.INITIAL_PACKING, EventKind.OBSERVATION]
    hashes = [new_hash() for _ in kinds]

    result = ledger.record_events(actors.producer, lot_id, kinds, hashes)

    assert names(result) == ["LotEventRecorded"] * 3
    for seq, (event, kind, data_hash) in enumerate(zip(result.events, kinds, hashes, strict=True), start=2):
        assert_recorded(event, lot_id, actors.producer, kind, seq, data_hash)
    lot = ledger.get_lot(lot_id)
    assert lot.event_count == 4
    assert lot.head == result.events[-1].args["head"]


def test_record_events_with_length_mismatch_reverts_with_length_mismatch(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    exc = refused(
        lambda: ledger.record_events(actors.producer, lot_id, [EventKind.COOLING] * 2, [new_hash()]),
        "LengthMismatch",
        InvalidInput,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"kinds": 2, "dataHashes": 1}


def test_record_events_with_empty_batch_reverts_with_empty_batch(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.record_events(actors.producer, lot_id, [], []),
        "EmptyBatch",
        InvalidInput,
        lots=(lot_id,),
    )


def test_record_events_with_one_bad_kind_writes_none_of_the_batch(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    kinds = [EventKind.COOLING, EventKind.OBSERVATION, EventKind.RECALL]
    exc = refused(
        lambda: ledger.record_events(actors.producer, lot_id, kinds, [new_hash() for _ in kinds]),
        "EventKindNotAllowed",
        InvalidInput,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"kind": int(EventKind.RECALL)}
    assert ledger.get_lot(lot_id).event_count == 1


def test_record_events_by_non_custodian_reverts_with_lot_not_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.record_events(actors.producer2, lot_id, [EventKind.COOLING], [new_hash()]),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_a_long_record_events_is_checked_with_one_event_per_kind_and_refused_as_the_whole_would_be(
    ledger, actors, make_lot, refused, monkeypatch
):
    """Where the gas limit is fixed (the embedded chain) the pre-flight ``eth_call`` of a ``recordEvents``
    carries one event of each kind, in the order the kinds first appear, instead of the whole batch: the
    batch's EVM work is done once. It is refused when the whole would be, with the same error (the first
    kind that is not free; the lot's custody), and nothing is mined; a batch it passes is recorded whole."""
    checked: list[str] = []  # the recordEvents calls made with eth_call
    call = ledger.w3.eth.call
    selector = "0x" + ledger.encode_call("recordEvents", [b"\0" * 32, [], []])[:4].hex()

    def spy(transaction, *args, **kwargs):
        if transaction["data"].startswith(selector):
            checked.append(transaction["data"])
        return call(transaction, *args, **kwargs)

    monkeypatch.setattr(ledger.w3.eth, "call", spy)

    def data(lot_id, kinds, hashes):
        return "0x" + ledger.encode_call("recordEvents", [lot_id, [int(k) for k in kinds], hashes]).hex()

    lot_id = make_lot()
    kinds = [EventKind.COOLING] * 12 + [EventKind.OBSERVATION] * 6 + [EventKind.RECALL] + [EventKind.SHIPPING] * 3
    hashes = [secrets.token_bytes(32) for _ in kinds]
    exc = refused(
        lambda: ledger.record_events(actors.producer, lot_id, kinds, hashes),
        "EventKindNotAllowed",
        InvalidInput,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"kind": int(EventKind.RECALL)}  # the first bad kind, as the whole batch says
    picked = [0, 12, 18, 19]
    if ledger.fixed_gas:
        assert checked == [data(lot_id, [kinds[i] for i in picked], [hashes[i] for i in picked])]

    good = [EventKind.COOLING, EventKind.OBSERVATION] * 15
    good_hashes = [secrets.token_bytes(32) for _ in good]
    refused(
        lambda: ledger.record_events(actors.producer2, lot_id, good, good_hashes),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    checked.clear()
    result = ledger.record_events(actors.producer, lot_id, good, good_hashes)
    assert [e.args["seq"] for e in result.events] == list(range(2, 32))
    assert ledger.get_lot(lot_id).event_count == 31
    if ledger.fixed_gas:
        assert checked == [data(lot_id, good[:2], good_hashes[:2])]


# ============================================================================================ custody


def test_offer_custody_puts_lot_in_transit_to_recipient(ledger, actors, make_lot):
    lot_id, data_hash = make_lot(), new_hash()

    result = ledger.offer_custody(actors.producer, lot_id, actors.processor.address, data_hash)

    assert names(result) == ["CustodyOffered", "LotEventRecorded"]
    assert only(result, "CustodyOffered").args == {
        "lotId": hx(lot_id),
        "from": actors.producer.address,
        "to": actors.processor.address,
    }
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.SHIPPING, data_hash)
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian, lot.pending_custodian) == (
        LotStatus.IN_TRANSIT,
        actors.producer.address,
        actors.processor.address,
    )


@pytest.mark.parametrize("recipient", ["processor", "distributor", "retailer"])
def test_offer_custody_to_each_receiving_role_is_allowed(ledger, actors, make_lot, recipient):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, getattr(actors, recipient).address, new_hash())
    assert ledger.get_lot(lot_id).pending_custodian == getattr(actors, recipient).address


@pytest.mark.parametrize("recipient", ["stranger", "producer2", "inspector", "regulator", "admin"])
def test_offer_custody_to_address_without_receiving_role_reverts_with_recipient_cannot_receive(
    ledger, actors, make_lot, refused, recipient
):
    lot_id = make_lot()
    to = getattr(actors, recipient).address
    exc = refused(
        lambda: ledger.offer_custody(actors.producer, lot_id, to, new_hash()),
        "RecipientCannotReceive",
        InvalidInput,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "recipient": to}
    assert exc.code == "recipient_cannot_receive"


def test_offer_custody_to_self_reverts_with_recipient_cannot_receive(ledger, actors, make_lot, refused):
    # the processor can receive lots, so only the self-offer rule refuses this
    lot_id = make_lot(actors.processor)
    exc = refused(
        lambda: ledger.offer_custody(actors.processor, lot_id, actors.processor.address, new_hash()),
        "RecipientCannotReceive",
        InvalidInput,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "recipient": actors.processor.address}


def test_offer_custody_by_non_custodian_reverts_with_lot_not_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.offer_custody(actors.distributor, lot_id, actors.retailer.address, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_offer_custody_of_held_lot_reverts_with_lot_unavailable(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.hold(actors.regulator, lot_id, new_hash())
    exc = refused(
        lambda: ledger.offer_custody(actors.producer, lot_id, actors.processor.address, new_hash()),
        "LotUnavailable",
        Conflict,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "status": "held"}
    assert exc.code == "lot_held"


def test_accept_custody_makes_recipient_the_custodian(ledger, actors, make_lot):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    data_hash = new_hash()

    result = ledger.accept_custody(actors.distributor, lot_id, data_hash)

    assert names(result) == ["CustodyAccepted", "LotEventRecorded"]
    assert only(result, "CustodyAccepted").args == {
        "lotId": hx(lot_id),
        "from": actors.producer.address,
        "to": actors.distributor.address,
    }
    assert_last_recorded(ledger, result, lot_id, actors.distributor, EventKind.RECEIVING, data_hash)
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian, lot.pending_custodian, lot.creator) == (
        LotStatus.ACTIVE,
        actors.distributor.address,
        None,
        actors.producer.address,
    )


def test_previous_custodian_cannot_record_after_handover(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.accept_custody(actors.distributor, lot_id, new_hash())
    refused(
        lambda: ledger.record_event(actors.producer, lot_id, EventKind.COOLING, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert names(ledger.record_event(actors.distributor, lot_id, EventKind.COOLING, new_hash())) == ["LotEventRecorded"]


@pytest.mark.parametrize("who", ["retailer", "producer"])
def test_accept_custody_by_handler_not_offered_the_lot_reverts_with_not_pending_custodian(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.accept_custody(signer, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": signer.address}
    assert exc.code == "not_offered"


@pytest.mark.parametrize("who", ["stranger", "inspector", "regulator"])
def test_accept_custody_by_account_without_handling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.accept_custody(signer, lot_id, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": HANDLER_ROLES}
    assert ledger.get_lot(lot_id).pending_custodian == actors.distributor.address


def test_accept_custody_twice_reverts_with_not_pending_custodian(ledger, actors, make_lot, refused):
    """Once received the lot is no longer offered to anyone: the relation check refuses before the status."""
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.accept_custody(actors.distributor, lot_id, new_hash())
    exc = refused(
        lambda: ledger.accept_custody(actors.distributor, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": actors.distributor.address}
    assert ledger.get_lot(lot_id).custodian == actors.distributor.address


def test_accept_custody_of_lot_never_offered_reverts_with_not_pending_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.accept_custody(actors.distributor, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_reject_custody_leaves_lot_with_offerer(ledger, actors, make_lot):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.retailer.address, new_hash())
    data_hash = new_hash()

    result = ledger.reject_custody(actors.retailer, lot_id, data_hash)

    assert names(result) == ["CustodyRejected", "LotEventRecorded"]
    assert only(result, "CustodyRejected").args == {
        "lotId": hx(lot_id),
        "from": actors.producer.address,
        "by": actors.retailer.address,
    }
    assert_last_recorded(ledger, result, lot_id, actors.retailer, EventKind.CUSTODY_REJECTED, data_hash)
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian, lot.pending_custodian) == (
        LotStatus.ACTIVE,
        actors.producer.address,
        None,
    )
    # the lot can be shipped again, to someone else
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())


def test_reject_custody_by_handler_not_offered_the_lot_reverts_with_not_pending_custodian(
    ledger, actors, make_lot, refused
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.retailer.address, new_hash())
    refused(
        lambda: ledger.reject_custody(actors.distributor, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )


@pytest.mark.parametrize("who", ["stranger", "inspector", "regulator"])
def test_reject_custody_by_account_without_handling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.retailer.address, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.reject_custody(signer, lot_id, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": HANDLER_ROLES}


def test_reject_custody_of_lot_never_offered_reverts_with_not_pending_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.reject_custody(actors.retailer, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_cancel_custody_offer_returns_lot_to_active(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    data_hash = new_hash()

    result = ledger.cancel_custody_offer(actors.producer, lot_id, data_hash)

    assert names(result) == ["CustodyCancelled", "LotEventRecorded"]
    assert only(result, "CustodyCancelled").args == {
        "lotId": hx(lot_id),
        "from": actors.producer.address,
        "to": actors.distributor.address,
    }
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.CUSTODY_CANCELLED, data_hash)
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian, lot.pending_custodian) == (
        LotStatus.ACTIVE,
        actors.producer.address,
        None,
    )
    # the withdrawn offer can no longer be accepted
    refused(
        lambda: ledger.accept_custody(actors.distributor, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_cancel_custody_offer_by_recipient_reverts_with_lot_not_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    refused(
        lambda: ledger.cancel_custody_offer(actors.distributor, lot_id, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_cancel_custody_offer_without_offer_reverts_with_lot_not_in_transit(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.cancel_custody_offer(actors.producer, lot_id, new_hash()),
        "LotNotInTransit",
        Conflict,
        lots=(lot_id,),
    )


# ---------------------------------------------------------------------------- a lot in transit is frozen


IN_TRANSIT_REFUSALS: dict[str, tuple[Callable[[Ledger, Any, bytes], Any], str, type[LotlineError]]] = {
    "recordEvent": (
        lambda lg, a, lot: lg.record_event(a.producer, lot, EventKind.COOLING, new_hash()),
        "LotInTransit",
        Conflict,
    ),
    "recordEvents": (
        lambda lg, a, lot: lg.record_events(a.producer, lot, [EventKind.OBSERVATION], [new_hash()]),
        "LotInTransit",
        Conflict,
    ),
    "offerCustody again": (
        lambda lg, a, lot: lg.offer_custody(a.producer, lot, a.retailer.address, new_hash()),
        "LotInTransit",
        Conflict,
    ),
    "recordEvent by recipient": (
        lambda lg, a, lot: lg.record_event(a.distributor, lot, EventKind.COOLING, new_hash()),
        "LotNotCustodian",
        Forbidden,
    ),
    "close": (lambda lg, a, lot: lg.close(a.producer, lot, new_hash()), "LotInTransit", Conflict),
    "inspect": (
        lambda lg, a, lot: lg.inspect(a.inspector, lot, InspectionOutcome.PASS, new_hash()),
        "LotInTransit",
        Conflict,
    ),
    "hold": (lambda lg, a, lot: lg.hold(a.regulator, lot, new_hash()), "LotInTransit", Conflict),
    "transformation input": (
        lambda lg, a, lot: lg.create_lot(
            a.producer, *new_lot_ref("producer").label, [lot], EventKind.TRANSFORMATION, new_hash()
        ),
        "InputUnavailable",
        Conflict,
    ),
}


@pytest.mark.parametrize("action", list(IN_TRANSIT_REFUSALS))
def test_events_on_lot_in_transit_are_refused(ledger, actors, make_lot, refused, action):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    call, error, exc_class = IN_TRANSIT_REFUSALS[action]
    exc = refused(lambda: call(ledger, actors, lot_id), error, exc_class, lots=(lot_id,))
    if error == "LotInTransit":
        assert exc.chain_args == {"lotId": hx(lot_id)}
        assert exc.code == "lot_in_transit"
    if error == "InputUnavailable":
        assert exc.chain_args == {"inputId": hx(lot_id), "status": "in_transit"}


# ============================================================================================ inspections


@pytest.mark.parametrize("outcome", [InspectionOutcome.PASS, InspectionOutcome.CONDITIONAL])
def test_inspection_pass_or_conditional_records_result_and_keeps_lot_active(ledger, actors, make_lot, outcome):
    lot_id, data_hash = make_lot(), new_hash()

    result = ledger.inspect(actors.inspector, lot_id, outcome, data_hash)

    assert names(result) == ["LotInspected", "LotEventRecorded"]
    assert only(result, "LotInspected").args == {
        "lotId": hx(lot_id),
        "inspector": actors.inspector.address,
        "outcome": int(outcome),
    }
    assert_last_recorded(ledger, result, lot_id, actors.inspector, EventKind.INSPECTION, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.ACTIVE


def test_inspection_fail_puts_lot_on_hold_and_emits_lot_held(ledger, actors, make_lot):
    lot_id, data_hash = make_lot(), new_hash()

    result = ledger.inspect(actors.inspector, lot_id, InspectionOutcome.FAIL, data_hash)

    assert names(result) == ["LotInspected", "LotEventRecorded", "LotHeld"]
    assert only(result, "LotInspected").args["outcome"] == int(InspectionOutcome.FAIL)
    assert only(result, "LotHeld").args == {"lotId": hx(lot_id), "by": actors.inspector.address}
    assert_last_recorded(ledger, result, lot_id, actors.inspector, EventKind.INSPECTION, data_hash)
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.event_count) == (LotStatus.HELD, 2)


def test_inspection_fail_of_held_lot_does_not_hold_it_again(ledger, actors, make_lot):
    lot_id = make_lot()
    ledger.hold(actors.regulator, lot_id, new_hash())
    result = ledger.inspect(actors.inspector, lot_id, InspectionOutcome.FAIL, new_hash())
    assert names(result) == ["LotInspected", "LotEventRecorded"]
    assert ledger.get_lot(lot_id).status is LotStatus.HELD


@pytest.mark.parametrize("who", ["producer", "regulator", "processor", "stranger"])
def test_inspect_without_inspector_role_reverts_with_account_lacks_roles(ledger, actors, make_lot, refused, who):
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.inspect(signer, lot_id, InspectionOutcome.FAIL, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": ["inspector"]}
    assert exc.code == "wrong_role"


@pytest.mark.parametrize("who", ["inspector", "regulator"])
def test_hold_by_inspector_or_regulator_stops_shipping(ledger, actors, make_lot, who):
    lot_id, data_hash = make_lot(), new_hash()
    signer = getattr(actors, who)

    result = ledger.hold(signer, lot_id, data_hash)

    assert names(result) == ["LotHeld", "LotEventRecorded"]
    assert only(result, "LotHeld").args == {"lotId": hx(lot_id), "by": signer.address}
    assert_last_recorded(ledger, result, lot_id, signer, EventKind.HOLD, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.HELD


@pytest.mark.parametrize("who", ["producer", "distributor", "stranger"])
def test_hold_without_inspector_or_regulator_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(lambda: ledger.hold(signer, lot_id, new_hash()), "AccountLacksRoles", Forbidden, lots=(lot_id,))
    assert exc.chain_args == {"account": signer.address, "anyOf": ["inspector", "regulator"]}


def test_hold_of_held_lot_reverts_with_lot_unavailable(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.hold(actors.inspector, lot_id, new_hash())
    exc = refused(lambda: ledger.hold(actors.regulator, lot_id, new_hash()), "LotUnavailable", Conflict, lots=(lot_id,))
    assert exc.chain_args["status"] == "held"


def test_release_lifts_hold(ledger, actors, make_lot):
    lot_id = make_lot()
    ledger.inspect(actors.inspector, lot_id, InspectionOutcome.FAIL, new_hash())
    data_hash = new_hash()

    result = ledger.release(actors.inspector, lot_id, data_hash)

    assert names(result) == ["LotReleased", "LotEventRecorded"]
    assert only(result, "LotReleased").args == {"lotId": hx(lot_id), "by": actors.inspector.address}
    assert_last_recorded(ledger, result, lot_id, actors.inspector, EventKind.RELEASE, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.ACTIVE
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())


@pytest.mark.parametrize("who", ["regulator", "producer"])
def test_release_without_inspector_role_reverts_with_account_lacks_roles(ledger, actors, make_lot, refused, who):
    lot_id = make_lot()
    ledger.hold(actors.regulator, lot_id, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.release(signer, lot_id, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": ["inspector"]}
    assert ledger.get_lot(lot_id).status is LotStatus.HELD


def test_release_of_lot_not_held_reverts_with_lot_not_held(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    exc = refused(lambda: ledger.release(actors.inspector, lot_id, new_hash()), "LotNotHeld", Conflict, lots=(lot_id,))
    assert exc.chain_args == {"lotId": hx(lot_id)}


# ============================================================================================ recall


@pytest.mark.parametrize("who", ["producer", "inspector", "regulator"])
def test_recall_by_creator_inspector_or_regulator_marks_lot_recalled(ledger, actors, make_lot, who):
    lot_id, data_hash = make_lot(), new_hash()
    signer = getattr(actors, who)

    result = ledger.recall(signer, lot_id, data_hash)

    assert names(result) == ["LotRecalled", "LotEventRecorded"]
    assert only(result, "LotRecalled").args == {"lotId": hx(lot_id), "by": signer.address, "sourceId": hx(lot_id)}
    assert_last_recorded(ledger, result, lot_id, signer, EventKind.RECALL, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.RECALLED
    assert ledger.recall_source_of(lot_id) == hx(lot_id)


def test_recall_by_creator_after_handover_is_allowed(ledger, actors, make_lot):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.retailer.address, new_hash())
    ledger.accept_custody(actors.retailer, lot_id, new_hash())
    ledger.recall(actors.producer, lot_id, new_hash())
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian) == (LotStatus.RECALLED, actors.retailer.address)


@pytest.mark.parametrize("who", ["producer2", "processor"])
def test_recall_by_producer_or_processor_that_did_not_create_lot_reverts_with_not_authorized_to_recall(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(lambda: ledger.recall(signer, lot_id, new_hash()), "NotAuthorizedToRecall", Forbidden, lots=(lot_id,))
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": signer.address}
    assert exc.code == "not_authorized_to_recall"


@pytest.mark.parametrize("who", ["distributor", "retailer", "stranger", "admin"])
def test_recall_by_account_without_a_recalling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    signer = getattr(actors, who)
    exc = refused(lambda: ledger.recall(signer, lot_id, new_hash()), "AccountLacksRoles", Forbidden, lots=(lot_id,))
    assert exc.chain_args == {"account": signer.address, "anyOf": RECALLER_ROLES}


@pytest.mark.parametrize(
    ("custodian", "error"), [("processor", "NotAuthorizedToRecall"), ("distributor", "AccountLacksRoles")]
)
def test_recall_by_custodian_who_did_not_create_lot_is_refused(ledger, actors, make_lot, refused, custodian, error):
    """Holding a lot does not make one its creator; a distributor cannot create lots at all, so its role is
    what refuses it (the role is checked before the relation to the lot)."""
    lot_id = make_lot()
    signer = getattr(actors, custodian)
    ledger.offer_custody(actors.producer, lot_id, signer.address, new_hash())
    ledger.accept_custody(signer, lot_id, new_hash())
    refused(lambda: ledger.recall(signer, lot_id, new_hash()), error, Forbidden, lots=(lot_id,))


def test_recall_by_creator_whose_role_was_revoked_reverts_with_account_lacks_roles(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.revoke_role(actors.admin, "producer", actors.producer.address)

    exc = refused(
        lambda: ledger.recall(actors.producer, lot_id, new_hash()), "AccountLacksRoles", Forbidden, lots=(lot_id,)
    )

    assert exc.chain_args == {"account": actors.producer.address, "anyOf": RECALLER_ROLES}
    assert ledger.recall_source_of(lot_id) is None
    ledger.recall(actors.regulator, lot_id, new_hash())  # the lot itself can still be recalled
    assert ledger.get_lot(lot_id).status is LotStatus.RECALLED


def test_recall_of_closed_lot_is_allowed(ledger, actors, make_lot):
    """Sold-out product may still be in people's homes."""
    lot_id = make_lot()
    ledger.close(actors.producer, lot_id, new_hash())
    result = ledger.recall(actors.regulator, lot_id, new_hash())
    assert names(result) == ["LotRecalled", "LotEventRecorded"]
    assert ledger.get_lot(lot_id).status is LotStatus.RECALLED


def test_recall_twice_reverts_with_lot_unavailable(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    exc = refused(
        lambda: ledger.recall(actors.inspector, lot_id, new_hash()),
        "LotUnavailable",
        Conflict,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "status": "recalled"}
    assert exc.code == "lot_recalled"


def test_recall_of_lot_in_transit_drops_pending_offer(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.recall(actors.regulator, lot_id, new_hash())
    lot = ledger.get_lot(lot_id)
    assert (lot.status, lot.custodian, lot.pending_custodian) == (
        LotStatus.RECALLED,
        actors.producer.address,
        None,
    )
    refused(
        lambda: ledger.accept_custody(actors.distributor, lot_id, new_hash()),
        "NotPendingCustodian",
        Forbidden,
        lots=(lot_id,),
    )


def test_recall_of_input_alone_does_not_change_lots_made_from_it(ledger, actors, make_lot):
    """`recall` marks one lot; `recallDerived` carries the recall to the lots made from it."""
    source = make_lot(actors.processor)
    output = new_lot_ref("processor")
    ledger.create_lot(actors.processor, *output.label, [source], EventKind.TRANSFORMATION, new_hash())
    ledger.recall(actors.regulator, source, new_hash())
    assert ledger.get_lot(output).status is LotStatus.ACTIVE
    assert ledger.recall_source_of(output) is None
    assert ledger.lot_outputs(source) == [hx(output)]


# ---------------------------------------------------------------------------- recallDerived


@pytest.fixture
def lineage(ledger, actors, make_lot) -> tuple[LotRef, LotRef, LotRef]:
    """Three generations: `root` harvested by the producer and received by the processor, who cuts it into
    `mid` and packs `mid` into `leaf`."""
    root = make_lot(actors.producer)
    ledger.offer_custody(actors.producer, root, actors.processor.address, new_hash())
    ledger.accept_custody(actors.processor, root, new_hash())
    mid, leaf = new_lot_ref("processor"), new_lot_ref("processor")
    ledger.create_lot(actors.processor, *mid.label, [root], EventKind.TRANSFORMATION, new_hash())
    ledger.create_lot(actors.processor, *leaf.label, [mid], EventKind.TRANSFORMATION, new_hash())
    return root, mid, leaf


def recall_sources(ledger: Ledger, *lots: bytes) -> list[str | None]:
    return [ledger.recall_source_of(lot) for lot in lots]


@pytest.mark.parametrize("who", ["regulator", "inspector", "producer"])
def test_recall_derived_carries_a_recall_down_three_generations_parent_first(ledger, actors, lineage, who):
    """The producer created only the root; carrying its recall to the processor's lots is still its to do."""
    root, mid, leaf = lineage
    signer = getattr(actors, who)
    ledger.recall(signer, root, new_hash())
    hashes = [new_hash(), new_hash()]

    result = ledger.recall_derived(signer, root, [mid, leaf], hashes)

    assert names(result) == ["LotRecalled", "LotEventRecorded"] * 2
    assert [e.args for e in result.events if e.name == "LotRecalled"] == [
        {"lotId": hx(mid), "by": signer.address, "sourceId": hx(root)},
        {"lotId": hx(leaf), "by": signer.address, "sourceId": hx(root)},
    ]
    for event, lot_id, data_hash in zip(result.recorded(), (mid, leaf), hashes, strict=True):
        lot = ledger.get_lot(lot_id)
        assert_recorded(event, lot_id, signer, EventKind.RECALL, lot.event_count, data_hash)
        assert event.args["head"] == lot.head
        assert (lot.status, lot.custodian) == (LotStatus.RECALLED, actors.processor.address)
    assert recall_sources(ledger, root, mid, leaf) == [hx(root)] * 3


def test_recall_and_recall_derived_in_one_multicall_recall_a_lineage_at_once(ledger, actors, lineage):
    root, mid, leaf = lineage
    result = ledger.multicall(
        actors.regulator,
        [
            ("recall", [root, new_hash()]),
            ("recallDerived", Ledger.args_recall_derived(root, [mid, leaf], [new_hash(), new_hash()])),
        ],
    )
    recalled = [e.args for e in result.events if e.name == "LotRecalled"]
    assert [(e["lotId"], e["sourceId"]) for e in recalled] == [(hx(lot), hx(root)) for lot in (root, mid, leaf)]
    assert {ledger.get_lot(lot).status for lot in lineage} == {LotStatus.RECALLED}


def test_recall_derived_reaches_lots_in_transit_held_or_closed(ledger, actors, lineage, make_lot):
    """A recall reaches food wherever it is: on the road, on hold, or sold (closed)."""
    root, mid, leaf = lineage
    side = new_lot_ref("processor")
    ledger.create_lot(actors.processor, *side.label, [root], EventKind.TRANSFORMATION, new_hash())
    ledger.offer_custody(actors.processor, mid, actors.distributor.address, new_hash())
    ledger.hold(actors.inspector, side, new_hash())
    ledger.close(actors.processor, leaf, new_hash())
    ledger.recall(actors.regulator, root, new_hash())

    ledger.recall_derived(actors.regulator, root, [mid, side, leaf], [new_hash() for _ in range(3)])

    for lot_id in (mid, side, leaf):
        lot = ledger.get_lot(lot_id)
        assert (lot.status, lot.pending_custodian) == (LotStatus.RECALLED, None)
    assert recall_sources(ledger, mid, side, leaf) == [hx(root)] * 3


def test_recall_derived_child_before_parent_reverts_with_not_derived_from_recall(ledger, actors, lineage, refused):
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())

    exc = refused(
        lambda: ledger.recall_derived(actors.regulator, root, [leaf, mid], [new_hash(), new_hash()]),
        "NotDerivedFromRecall",
        Conflict,
        lots=lineage,
    )

    assert exc.chain_args == {"lotId": hx(leaf), "sourceId": hx(root)}
    assert exc.code == "not_derived_from_recall"
    assert recall_sources(ledger, mid, leaf) == [None, None]
    # parent-first, even one lot per transaction (bounded batches), reaches the whole lineage
    ledger.recall_derived(actors.regulator, root, [mid], [new_hash()])
    ledger.recall_derived(actors.regulator, root, [leaf], [new_hash()])
    assert recall_sources(ledger, mid, leaf) == [hx(root)] * 2


@pytest.mark.parametrize("unrelated", ["no inputs", "made from another recalled lot"])
def test_recall_derived_of_lot_not_made_from_the_source_reverts_with_not_derived_from_recall(
    ledger, actors, lineage, make_lot, refused, unrelated
):
    root, mid, _leaf = lineage
    if unrelated == "no inputs":
        other = make_lot(actors.processor)
    else:
        other_root, other = make_lot(actors.processor), new_lot_ref("processor")
        ledger.create_lot(actors.processor, *other.label, [other_root], EventKind.TRANSFORMATION, new_hash())
        ledger.recall(actors.regulator, other_root, new_hash())
    ledger.recall(actors.regulator, root, new_hash())

    exc = refused(
        lambda: ledger.recall_derived(actors.regulator, root, [mid, other], [new_hash(), new_hash()]),
        "NotDerivedFromRecall",
        Conflict,
        lots=(root, mid, other),
    )

    assert exc.chain_args == {"lotId": hx(other), "sourceId": hx(root)}
    assert recall_sources(ledger, mid, other) == [None, None]


@pytest.mark.parametrize(
    ("who", "error"),
    [
        ("producer2", "NotAuthorizedToRecall"),
        ("processor", "NotAuthorizedToRecall"),  # created mid and leaf, but not the source
        ("distributor", "AccountLacksRoles"),
        ("stranger", "AccountLacksRoles"),
    ],
)
def test_recall_derived_by_account_that_may_not_recall_the_source_is_refused(
    ledger, actors, lineage, refused, who, error
):
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())
    signer = getattr(actors, who)

    exc = refused(
        lambda: ledger.recall_derived(signer, root, [mid, leaf], [new_hash(), new_hash()]),
        error,
        Forbidden,
        lots=lineage,
    )

    if error == "NotAuthorizedToRecall":
        assert exc.chain_args == {"lotId": hx(root), "caller": signer.address}
    else:
        assert exc.chain_args == {"account": signer.address, "anyOf": RECALLER_ROLES}
    assert recall_sources(ledger, mid, leaf) == [None, None]


def test_recall_derived_by_creator_whose_role_was_revoked_reverts_with_account_lacks_roles(
    ledger, actors, lineage, refused
):
    root, mid, leaf = lineage
    ledger.recall(actors.producer, root, new_hash())
    ledger.revoke_role(actors.admin, "producer", actors.producer.address)
    refused(
        lambda: ledger.recall_derived(actors.producer, root, [mid, leaf], [new_hash(), new_hash()]),
        "AccountLacksRoles",
        Forbidden,
        lots=lineage,
    )


def test_recall_derived_from_source_not_recalled_directly_reverts_with_lot_not_recalled(
    ledger, actors, lineage, refused
):
    root, mid, leaf = lineage
    exc = refused(
        lambda: ledger.recall_derived(actors.regulator, root, [mid], [new_hash()]),
        "LotNotRecalled",
        Conflict,
        lots=lineage,
    )
    assert exc.chain_args == {"lotId": hx(root)}
    assert exc.code == "lot_not_recalled"

    ledger.recall(actors.regulator, root, new_hash())
    ledger.recall_derived(actors.regulator, root, [mid], [new_hash()])
    # mid was recalled as part of root's recall, not directly: its reach is root's, not its own
    exc = refused(
        lambda: ledger.recall_derived(actors.regulator, mid, [leaf], [new_hash()]),
        "LotNotRecalled",
        Conflict,
        lots=lineage,
    )
    assert exc.chain_args == {"lotId": hx(mid)}


def test_recall_derived_of_lot_already_recalled_reverts_with_lot_unavailable(ledger, actors, lineage, refused):
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())
    ledger.recall_derived(actors.regulator, root, [mid], [new_hash()])
    exc = refused(
        lambda: ledger.recall_derived(actors.regulator, root, [mid, leaf], [new_hash(), new_hash()]),
        "LotUnavailable",
        Conflict,
        lots=lineage,
    )
    assert exc.chain_args == {"lotId": hx(mid), "status": "recalled"}
    assert exc.code == "lot_recalled"
    assert ledger.recall_source_of(leaf) is None


@pytest.mark.parametrize(
    ("hashes", "error"), [(1, "LengthMismatch"), (0, "EmptyBatch")], ids=["length-mismatch", "empty"]
)
def test_recall_derived_with_bad_batch_shape_is_refused(ledger, actors, lineage, refused, hashes, error):
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())
    lots = [mid, leaf] if hashes else []
    refused(
        lambda: ledger.recall_derived(actors.regulator, root, lots, [new_hash() for _ in range(hashes)]),
        error,
        InvalidInput,
        lots=lineage,
    )


# ============================================================================================ endRecall


@pytest.mark.parametrize("who", ["regulator", "inspector", "producer"])
def test_end_recall_by_a_recaller_records_the_end_and_leaves_the_lot_recalled(ledger, actors, make_lot, who):
    lot_id, data_hash = make_lot(), new_hash()
    signer = getattr(actors, who)
    ledger.recall(actors.regulator, lot_id, new_hash())
    before = ledger.get_lot(lot_id)

    result = ledger.end_recall(signer, lot_id, data_hash)

    assert names(result) == ["RecallEnded", "LotEventRecorded"]
    assert only(result, "RecallEnded").args == {"lotId": hx(lot_id), "by": signer.address}
    assert_last_recorded(ledger, result, lot_id, signer, EventKind.RECALL_ENDED, data_hash)
    after = ledger.get_lot(lot_id)
    assert after.event_count == before.event_count + 1
    # the head commits to the end: head_n = keccak256(abi.encode(head_{n-1}, 17, actor, dataHash))
    previous = bytes.fromhex(before.head[2:])
    expected = keccak(encode(["bytes32", "uint8", "address", "bytes32"], [previous, 17, signer.address, data_hash]))
    assert after.head == hx(expected)
    assert (after.status, after.custodian) == (LotStatus.RECALLED, before.custodian)
    assert ledger.recall_ended(lot_id) is True
    assert ledger.recall_source_of(lot_id) == hx(lot_id)


def test_end_recall_leaves_lots_the_recall_reached_recalled(ledger, actors, lineage):
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())
    ledger.recall_derived(actors.regulator, root, [mid, leaf], [new_hash(), new_hash()])
    ledger.end_recall(actors.regulator, root, new_hash())
    assert [ledger.get_lot(lot).status for lot in lineage] == [LotStatus.RECALLED] * 3
    assert recall_sources(ledger, root, mid, leaf) == [hx(root)] * 3
    assert [ledger.recall_ended(lot) for lot in lineage] == [True, False, False]


@pytest.mark.parametrize("who", ["distributor", "retailer", "stranger", "admin"])
def test_end_recall_by_account_without_a_recalling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    signer = getattr(actors, who)
    exc = refused(lambda: ledger.end_recall(signer, lot_id, new_hash()), "AccountLacksRoles", Forbidden, lots=(lot_id,))
    assert exc.chain_args == {"account": signer.address, "anyOf": RECALLER_ROLES}
    assert ledger.recall_ended(lot_id) is False


@pytest.mark.parametrize("who", ["producer2", "processor"])
def test_end_recall_by_producer_or_processor_that_did_not_create_lot_reverts_with_not_authorized_to_recall(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.end_recall(signer, lot_id, new_hash()), "NotAuthorizedToRecall", Forbidden, lots=(lot_id,)
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": signer.address}


@pytest.mark.parametrize("status", ["active", "in_transit", "held", "closed"])
def test_end_recall_of_lot_not_recalled_reverts_with_lot_not_recalled(ledger, actors, make_lot, refused, status):
    lot_id = make_lot()
    if status == "in_transit":
        ledger.offer_custody(actors.producer, lot_id, actors.retailer.address, new_hash())
    elif status == "held":
        ledger.hold(actors.inspector, lot_id, new_hash())
    elif status == "closed":
        ledger.close(actors.producer, lot_id, new_hash())
    exc = refused(
        lambda: ledger.end_recall(actors.regulator, lot_id, new_hash()), "LotNotRecalled", Conflict, lots=(lot_id,)
    )
    assert exc.chain_args == {"lotId": hx(lot_id)}
    assert exc.code == "lot_not_recalled"


def test_end_recall_of_unknown_lot_reverts_with_lot_not_found(ledger, actors, refused):
    lot_id = new_lot_ref()
    refused(lambda: ledger.end_recall(actors.regulator, lot_id, new_hash()), "LotNotFound", NotFound)


def test_end_recall_of_lot_recalled_from_an_input_reverts_with_lot_not_recalled(ledger, actors, lineage, refused):
    """A recall that reached a lot from its input is one recall: it is ended on the lot it started from."""
    root, mid, leaf = lineage
    ledger.recall(actors.regulator, root, new_hash())
    ledger.recall_derived(actors.regulator, root, [mid], [new_hash()])
    exc = refused(
        lambda: ledger.end_recall(actors.regulator, mid, new_hash()), "LotNotRecalled", Conflict, lots=lineage
    )
    assert exc.chain_args == {"lotId": hx(mid)}
    assert ledger.recall_ended(mid) is False


def test_end_recall_twice_reverts_with_recall_already_ended(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    ledger.end_recall(actors.regulator, lot_id, new_hash())
    exc = refused(
        lambda: ledger.end_recall(actors.inspector, lot_id, new_hash()), "RecallAlreadyEnded", Conflict, lots=(lot_id,)
    )
    assert exc.chain_args == {"lotId": hx(lot_id)}
    assert exc.code == "recall_already_ended"


@pytest.mark.parametrize("action", ["recordEvent", "offerCustody", "inspect", "hold", "close", "anchorReadings"])
def test_actions_on_lot_whose_recall_ended_are_still_refused_with_lot_unavailable(
    ledger, actors, make_lot, refused, action
):
    """Ending a recall completes the action; it does not make the food safe again."""
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    ledger.end_recall(actors.regulator, lot_id, new_hash())
    call, _error, _cls = CLOSED_LOT_REFUSALS[action]
    exc = refused(lambda: call(ledger, actors, lot_id), "LotUnavailable", Conflict, lots=(lot_id,))
    assert exc.chain_args == {"lotId": hx(lot_id), "status": "recalled"}


# ============================================================================================ close


def test_close_ends_lot_history(ledger, actors, make_lot):
    lot_id, data_hash = make_lot(), new_hash()

    result = ledger.close(actors.producer, lot_id, data_hash)

    assert names(result) == ["LotClosed", "LotEventRecorded"]
    assert only(result, "LotClosed").args == {"lotId": hx(lot_id), "by": actors.producer.address}
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.CLOSE, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.CLOSED


def test_close_of_held_lot_is_allowed(ledger, actors, make_lot):
    """A held lot may be destroyed."""
    lot_id = make_lot()
    ledger.hold(actors.inspector, lot_id, new_hash())
    ledger.close(actors.producer, lot_id, new_hash())
    assert ledger.get_lot(lot_id).status is LotStatus.CLOSED


def test_close_by_non_custodian_reverts_with_lot_not_custodian(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.close(actors.retailer, lot_id, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )


CLOSED_LOT_REFUSALS: dict[str, tuple[Callable[[Ledger, Any, bytes], Any], str, type[LotlineError]]] = {
    "recordEvent": (
        lambda lg, a, lot: lg.record_event(a.producer, lot, EventKind.COOLING, new_hash()),
        "LotUnavailable",
        Conflict,
    ),
    "recordEvents": (
        lambda lg, a, lot: lg.record_events(a.producer, lot, [EventKind.COOLING], [new_hash()]),
        "LotUnavailable",
        Conflict,
    ),
    "offerCustody": (
        lambda lg, a, lot: lg.offer_custody(a.producer, lot, a.retailer.address, new_hash()),
        "LotUnavailable",
        Conflict,
    ),
    "inspect": (
        lambda lg, a, lot: lg.inspect(a.inspector, lot, InspectionOutcome.PASS, new_hash()),
        "LotUnavailable",
        Conflict,
    ),
    "hold": (lambda lg, a, lot: lg.hold(a.regulator, lot, new_hash()), "LotUnavailable", Conflict),
    "close": (lambda lg, a, lot: lg.close(a.producer, lot, new_hash()), "LotUnavailable", Conflict),
    "anchorReadings": (
        lambda lg, a, lot: lg.anchor_readings(a.producer, lot, new_hash(), 10, new_hash()),
        "LotUnavailable",
        Conflict,
    ),
    "release": (lambda lg, a, lot: lg.release(a.inspector, lot, new_hash()), "LotNotHeld", Conflict),
    "acceptCustody": (
        lambda lg, a, lot: lg.accept_custody(a.retailer, lot, new_hash()),
        "NotPendingCustodian",
        Forbidden,
    ),
    "cancelCustodyOffer": (
        lambda lg, a, lot: lg.cancel_custody_offer(a.producer, lot, new_hash()),
        "LotNotInTransit",
        Conflict,
    ),
    "transformation input": (
        lambda lg, a, lot: lg.create_lot(
            a.producer, *new_lot_ref("producer").label, [lot], EventKind.TRANSFORMATION, new_hash()
        ),
        "InputUnavailable",
        Conflict,
    ),
}


@pytest.mark.parametrize("action", list(CLOSED_LOT_REFUSALS))
def test_actions_on_closed_lot_are_refused(ledger, actors, make_lot, refused, action):
    lot_id = make_lot()
    ledger.close(actors.producer, lot_id, new_hash())
    call, error, exc_class = CLOSED_LOT_REFUSALS[action]
    exc = refused(lambda: call(ledger, actors, lot_id), error, exc_class, lots=(lot_id,))
    if error in ("LotUnavailable", "InputUnavailable"):
        assert exc.chain_args["status"] == "closed"
    if error == "LotUnavailable":
        assert exc.code == "lot_closed"


@pytest.mark.parametrize("action", ["recordEvent", "offerCustody", "inspect", "hold", "close", "anchorReadings"])
def test_actions_on_recalled_lot_are_refused_with_lot_unavailable(ledger, actors, make_lot, refused, action):
    lot_id = make_lot()
    ledger.recall(actors.regulator, lot_id, new_hash())
    call, _error, _cls = CLOSED_LOT_REFUSALS[action]
    exc = refused(lambda: call(ledger, actors, lot_id), "LotUnavailable", Conflict, lots=(lot_id,))
    assert exc.chain_args == {"lotId": hx(lot_id), "status": "recalled"}


# ============================================================================================ sensor anchors


def test_anchor_readings_by_custodian_records_merkle_root(ledger, actors, make_lot):
    lot_id, root, data_hash = make_lot(), new_hash(), new_hash()

    result = ledger.anchor_readings(actors.producer, lot_id, root, 96, data_hash)

    assert names(result) == ["ReadingsAnchored", "LotEventRecorded"]
    assert only(result, "ReadingsAnchored").args == {
        "lotId": hx(lot_id),
        "by": actors.producer.address,
        "merkleRoot": hx(root),
        "count": 96,
    }
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.SENSOR_ANCHOR, data_hash)


def test_anchor_readings_by_pending_custodian_before_accepting_reverts_with_lot_not_custodian(
    ledger, actors, make_lot, refused
):
    """An offer the receiver never asked for gives it no say over the lot: it records nothing until it
    accepts (issue 9, item 8e)."""
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    exc = refused(
        lambda: ledger.anchor_readings(actors.distributor, lot_id, new_hash(), 288, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": actors.distributor.address}


def test_anchor_readings_by_sender_while_in_transit_is_allowed(ledger, actors, make_lot):
    """While the lot is in transit its sender still holds it and may anchor the carrier's cold-chain log."""
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    root, data_hash = new_hash(), new_hash()

    result = ledger.anchor_readings(actors.producer, lot_id, root, 288, data_hash)

    assert only(result, "ReadingsAnchored").args["by"] == actors.producer.address
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.SENSOR_ANCHOR, data_hash)
    assert ledger.get_lot(lot_id).status is LotStatus.IN_TRANSIT


@pytest.mark.parametrize("who", ["retailer", "processor"])
def test_anchor_readings_by_handler_neither_holding_nor_carrying_lot_reverts_with_lot_not_custodian(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.anchor_readings(signer, lot_id, new_hash(), 5, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": signer.address}


@pytest.mark.parametrize("who", ["stranger", "inspector"])
def test_anchor_readings_by_account_without_handling_role_reverts_with_account_lacks_roles(
    ledger, actors, make_lot, refused, who
):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.anchor_readings(signer, lot_id, new_hash(), 5, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"account": signer.address, "anyOf": HANDLER_ROLES}


def test_anchor_readings_with_zero_count_reverts_with_empty_batch(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.anchor_readings(actors.producer, lot_id, new_hash(), 0, new_hash()),
        "EmptyBatch",
        InvalidInput,
        lots=(lot_id,),
    )


# ============================================================================================ unknown lots


UNKNOWN_LOT_CALLS: dict[str, Callable[[Ledger, Any, bytes], Any]] = {
    "recordEvent": lambda lg, a, lot: lg.record_event(a.producer, lot, EventKind.COOLING, new_hash()),
    "recordEvents": lambda lg, a, lot: lg.record_events(a.producer, lot, [EventKind.COOLING], [new_hash()]),
    "offerCustody": lambda lg, a, lot: lg.offer_custody(a.producer, lot, a.processor.address, new_hash()),
    "acceptCustody": lambda lg, a, lot: lg.accept_custody(a.processor, lot, new_hash()),
    "rejectCustody": lambda lg, a, lot: lg.reject_custody(a.processor, lot, new_hash()),
    "cancelCustodyOffer": lambda lg, a, lot: lg.cancel_custody_offer(a.producer, lot, new_hash()),
    "inspect": lambda lg, a, lot: lg.inspect(a.inspector, lot, InspectionOutcome.PASS, new_hash()),
    "hold": lambda lg, a, lot: lg.hold(a.regulator, lot, new_hash()),
    "release": lambda lg, a, lot: lg.release(a.inspector, lot, new_hash()),
    "recall": lambda lg, a, lot: lg.recall(a.regulator, lot, new_hash()),
    "close": lambda lg, a, lot: lg.close(a.producer, lot, new_hash()),
    "anchorReadings": lambda lg, a, lot: lg.anchor_readings(a.distributor, lot, new_hash(), 1, new_hash()),
    "recallDerived": lambda lg, a, lot: lg.recall_derived(a.regulator, lot, [lot], [new_hash()]),
}


@pytest.mark.parametrize("action", list(UNKNOWN_LOT_CALLS))
def test_action_on_unknown_lot_reverts_with_lot_not_found(ledger, actors, refused, action):
    lot_id = new_lot_ref("producer")
    exc = refused(lambda: UNKNOWN_LOT_CALLS[action](ledger, actors, lot_id), "LotNotFound", NotFound, lots=(lot_id,))
    assert exc.chain_args == {"lotId": hx(lot_id)}
    assert not ledger.get_lot(lot_id).exists


# ============================================================================================ roles


def test_grant_role_by_admin_emits_role_granted(ledger, actors):
    result = ledger.grant_role(actors.admin, "retailer", actors.stranger.address)
    assert names(result) == ["RoleGranted"]
    assert only(result, "RoleGranted").args == {
        "role": hx(role_id("retailer")),
        "account": actors.stranger.address,
        "sender": actors.admin.address,
    }
    assert ledger.has_role("retailer", actors.stranger.address)


def test_grant_of_role_already_held_emits_nothing(ledger, actors):
    result = ledger.grant_role(actors.admin, "producer", actors.producer.address)
    assert result.success
    assert result.events == []


@pytest.mark.parametrize("who", ["regulator", "producer", "stranger"])
def test_grant_role_by_non_admin_reverts_with_access_control_unauthorized_account(ledger, actors, refused, who):
    signer = getattr(actors, who)
    exc = refused(
        lambda: ledger.grant_role(signer, "producer", actors.stranger.address),
        "AccessControlUnauthorizedAccount",
        Forbidden,
    )
    assert exc.chain_args == {"account": signer.address, "neededRole": "admin"}
    assert not ledger.has_role("producer", actors.stranger.address)


def test_revoke_role_by_non_admin_reverts_with_access_control_unauthorized_account(ledger, actors, refused):
    refused(
        lambda: ledger.revoke_role(actors.regulator, "producer", actors.producer.address),
        "AccessControlUnauthorizedAccount",
        Forbidden,
    )
    assert ledger.has_role("producer", actors.producer.address)


def test_renounce_role_for_someone_else_reverts_with_access_control_bad_confirmation(ledger, actors, refused):
    refused(
        lambda: ledger.transact(actors.producer, "renounceRole", [role_id("producer"), actors.producer2.address]),
        "AccessControlBadConfirmation",
        Forbidden,
    )
    result = ledger.transact(actors.producer, "renounceRole", [role_id("producer"), actors.producer.address])
    assert only(result, "RoleRevoked").args["account"] == actors.producer.address
    assert not ledger.has_role("producer", actors.producer.address)
    assert ledger.has_role("producer", actors.producer2.address)


def test_each_actor_holds_exactly_its_role(ledger, actors):
    expected = {
        "admin": "admin",
        "regulator": "regulator",
        "inspector": "inspector",
        "producer": "producer",
        "producer2": "producer",
        "processor": "processor",
        "distributor": "distributor",
        "retailer": "retailer",
        "stranger": None,
    }
    roles = ["admin", "regulator", "inspector", "producer", "processor", "distributor", "retailer"]
    for name, role in expected.items():
        held = [r for r in roles if ledger.has_role(r, getattr(actors, name).address)]
        assert held == ([role] if role else []), name


# ============================================================================================ multicall


def test_multicall_creates_several_lots_in_one_transaction(ledger, actors):
    lots = [new_lot_ref("producer") for _ in range(3)]
    hashes = [new_hash() for _ in lots]
    calls = [
        ("createLot", Ledger.args_create_lot(*lot.label, [], EventKind.HARVESTING, h))
        for lot, h in zip(lots, hashes, strict=True)
    ]

    result = ledger.multicall(actors.producer, calls)

    assert names(result) == ["LotCreated", "LotEventRecorded"] * 3
    assert {e.tx_hash for e in result.events} == {result.tx_hash}
    for lot, data_hash, recorded in zip(lots, hashes, result.recorded(), strict=True):
        assert_recorded(recorded, lot, actors.producer, EventKind.HARVESTING, 1, data_hash)
        state = ledger.get_lot(lot)
        assert (state.creator, state.status, state.head) == (
            actors.producer.address,
            LotStatus.ACTIVE,
            recorded.args["head"],
        )


def test_multicall_split_then_ship_runs_each_call_as_the_sender(ledger, actors, make_lot):
    source = make_lot(actors.processor)
    first, second = new_lot_ref("processor"), new_lot_ref("processor")
    result = ledger.multicall(
        actors.processor,
        [
            ("createLot", Ledger.args_create_lot(*first.label, [source], EventKind.TRANSFORMATION, new_hash())),
            ("createLot", Ledger.args_create_lot(*second.label, [source], EventKind.TRANSFORMATION, new_hash())),
            ("recordEvent", [first, int(EventKind.COOLING), new_hash()]),
            ("offerCustody", [second, actors.retailer.address, new_hash()]),
        ],
    )
    assert names(result) == [
        "LotCreated",
        "LotEventRecorded",
        "LotCreated",
        "LotEventRecorded",
        "LotEventRecorded",
        "CustodyOffered",
        "LotEventRecorded",
    ]
    assert ledger.lot_outputs(source) == [hx(first), hx(second)]
    assert ledger.get_lot(first).event_count == 2
    assert ledger.get_lot(second).pending_custodian == actors.retailer.address


def test_multicall_with_failing_inner_call_reverts_whole_batch_with_inner_error(ledger, actors, refused):
    first, second, unknown = new_lot_ref("producer"), new_lot_ref("producer"), new_lot_ref("producer")
    calls = [
        ("createLot", Ledger.args_create_lot(*first.label, [], EventKind.HARVESTING, new_hash())),
        ("createLot", Ledger.args_create_lot(*second.label, [], EventKind.HARVESTING, new_hash())),
        ("recordEvent", [unknown, int(EventKind.COOLING), new_hash()]),
    ]
    exc = refused(lambda: ledger.multicall(actors.producer, calls), "LotNotFound", NotFound, lots=(first, second))
    assert exc.chain_args == {"lotId": hx(unknown)}
    assert not ledger.get_lot(first).exists
    assert not ledger.get_lot(second).exists


def test_multicall_cannot_borrow_a_role_the_sender_lacks(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    refused(
        lambda: ledger.multicall(
            actors.producer,
            [
                ("recordEvent", [lot_id, int(EventKind.COOLING), new_hash()]),
                ("inspect", [lot_id, int(InspectionOutcome.PASS), new_hash()]),
            ],
        ),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )


def test_transaction_that_turns_invalid_before_mining_reverts_on_chain_and_writes_nothing(ledger, actors, make_lot):
    """The revert check in prepare() is only a preview: the chain itself must refuse the whole batch when
    state changed in between (here, an inspector put the input of the second lot on hold)."""
    source = make_lot(actors.producer)
    first, second = new_lot_ref("producer"), new_lot_ref("producer")
    prepared = ledger.prepare_multicall(
        actors.producer,
        [
            ("createLot", Ledger.args_create_lot(*first.label, [], EventKind.HARVESTING, new_hash())),
            ("createLot", Ledger.args_create_lot(*second.label, [source], EventKind.TRANSFORMATION, new_hash())),
        ],
    )
    ledger.hold(actors.inspector, source, new_hash())

    with pytest.raises(LotlineError) as info:
        ledger.submit(prepared)

    assert isinstance(info.value, Conflict)
    assert getattr(info.value, "chain_error", None) == "InputUnavailable", info.value.message
    assert not ledger.get_lot(first).exists
    assert not ledger.get_lot(second).exists
    assert ledger.lot_outputs(source) == []
    mined = ledger.receipt(prepared.tx_hash)
    assert mined is not None and not mined.success and mined.events == []
    # the sender's next transaction still goes through (no nonce left dangling)
    ledger.create_lot(actors.producer, *first.label, [], EventKind.HARVESTING, new_hash())
    assert ledger.get_lot(first).creator == actors.producer.address


def test_multicall_with_no_calls_is_refused_before_signing(ledger, actors):
    with pytest.raises(InvalidInput):
        ledger.multicall(actors.producer, [])


@pytest.mark.parametrize("fixed_gas", [None, 10_000_000], ids=["gas-estimate", "fixed-gas"])
def test_both_gas_sizing_paths_send_and_decode_reverts_alike(ledger, actors, make_lot, refused, fixed_gas):
    """The app sizes gas with a fixed limit on the embedded chain and with an estimate on JSON-RPC nodes;
    either way a refusal is the same decoded error and a success the same events."""
    path = Ledger(ledger.w3, ledger.address, fixed_gas=fixed_gas)
    lot_id = make_lot()
    exc = refused(
        lambda: path.record_event(actors.producer2, lot_id, EventKind.COOLING, new_hash()),
        "LotNotCustodian",
        Forbidden,
        lots=(lot_id,),
    )
    assert exc.chain_args == {"lotId": hx(lot_id), "caller": actors.producer2.address}
    data_hash = new_hash()
    result = path.record_event(actors.producer, lot_id, EventKind.COOLING, data_hash)
    assert_last_recorded(ledger, result, lot_id, actors.producer, EventKind.COOLING, data_hash)
    assert result.gas_used < 200_000


# ============================================================================================ views


def test_get_lot_of_unknown_lot_reports_status_none(ledger):
    lot = ledger.get_lot(new_lot_ref("producer"))
    assert not lot.exists
    assert (lot.status, lot.event_count, lot.head, lot.inputs, lot.pending_custodian) == (
        LotStatus.NONE,
        0,
        ZERO_HEX,
        (),
        None,
    )
    assert int(lot.creator, 16) == 0 and int(lot.custodian, 16) == 0


def test_lot_outputs_of_lot_without_outputs_is_empty(ledger, make_lot):
    assert ledger.lot_outputs(make_lot()) == []
    assert ledger.lot_outputs(new_lot_ref("producer")) == []


@pytest.mark.parametrize(
    ("gtin14", "lot_code"),
    [
        ("09506000134352", "ABC123"),
        ("00012345600012", "1"),
        ("10614141000415", "LOT-2024/07.A_b%\"&'"),
        ("10614141000415", "()*+,:;<=>?!"),
        ("09506000134352", "Z" * 20),
    ],
)
def test_lot_id_of_equals_domain_lot_id_and_abi_encode_of_the_label(ledger, gtin14, lot_code):
    expected = keccak(encode(["string", "string"], [gtin14, lot_code]))
    assert ledger.contract.functions.lotIdOf(gtin14, lot_code).call() == identifiers.lot_id(gtin14, lot_code)
    assert identifiers.lot_id(gtin14, lot_code) == expected


def test_lot_id_of_the_worked_example_in_docs_hashing(ledger):
    """docs/hashing.md section 4: GTIN-13 9506000134352 (as 14 digits) with lot L2405/01."""
    expected = bytes.fromhex("c506ba9ca9ebcb4f655d6b0300fadea9e7e93e035be2094fc0665c91b23e2560")
    assert ledger.contract.functions.lotIdOf("09506000134352", "L2405/01").call() == expected
    assert identifiers.lot_id("9506000134352", "L2405/01") == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [(("1", "23"), ("12", "3")), (("09506000134352", "1A"), ("095060001343521", "A"))],
    ids=["short", "gtin-digit-moved"],
)
def test_lot_id_of_tells_apart_labels_whose_packed_bytes_are_equal(ledger, first, second):
    """encodePacked would give both labels one id; abi.encode length-prefixes each string. `lot_id` refuses
    these labels (not GTIN-14s), so the Python side is the encoding it hashes, `abi_encode_strings`."""
    assert "".join(first) == "".join(second)
    ids = [ledger.contract.functions.lotIdOf(*label).call() for label in (first, second)]
    assert ids[0] != ids[1]
    for label, got in zip((first, second), ids, strict=True):
        assert got == keccak(identifiers.abi_encode_strings(*label)) == keccak(encode(["string", "string"], label))


def test_kind_numbers_match_the_contract_constants(ledger):
    for kind in EventKind:
        assert getattr(ledger.contract.functions, f"KIND_{kind.name}")().call() == int(kind)


def test_role_ids_match_the_contract_constants(ledger):
    for role in ["regulator", "inspector", "producer", "processor", "distributor", "retailer"]:
        assert getattr(ledger.contract.functions, f"{role.upper()}_ROLE")().call() == role_id(role)
    assert ledger.contract.functions.DEFAULT_ADMIN_ROLE().call() == role_id("admin")


# ============================================================================================ a whole journey


def test_farm_to_shop_journey_keeps_one_consistent_history(ledger, actors):
    """Harvest, ship to a packer, transform, ship via a carrier who anchors readings, sell, close."""
    harvest = new_lot_ref("producer")
    ledger.create_lot(actors.producer, *harvest.label, [], EventKind.HARVESTING, new_hash())
    ledger.record_event(actors.producer, harvest, EventKind.COOLING, new_hash())
    ledger.offer_custody(actors.producer, harvest, actors.processor.address, new_hash())
    ledger.accept_custody(actors.processor, harvest, new_hash())
    packed = new_lot_ref("processor")
    ledger.create_lot(actors.processor, *packed.label, [harvest], EventKind.TRANSFORMATION, new_hash())
    ledger.inspect(actors.inspector, packed, InspectionOutcome.PASS, new_hash())
    ledger.offer_custody(actors.processor, packed, actors.distributor.address, new_hash())
    ledger.accept_custody(actors.distributor, packed, new_hash())
    ledger.anchor_readings(actors.distributor, packed, new_hash(), 48, new_hash())
    ledger.offer_custody(actors.distributor, packed, actors.retailer.address, new_hash())
    ledger.accept_custody(actors.retailer, packed, new_hash())
    ledger.close(actors.retailer, packed, new_hash())

    assert ledger.get_lot(harvest).event_count == 4
    lot = ledger.get_lot(packed)
    assert (lot.creator, lot.custodian, lot.status, lot.event_count, lot.inputs) == (
        actors.processor.address,
        actors.retailer.address,
        LotStatus.CLOSED,
        8,
        (hx(harvest),),
    )
    kinds = [e.args["kind"] for e in ledger.logs(0, lot_id=packed) if e.name == "LotEventRecorded"]
    assert kinds == [
        int(k)
        for k in (
            EventKind.TRANSFORMATION,
            EventKind.INSPECTION,
            EventKind.SHIPPING,
            EventKind.RECEIVING,
            EventKind.SENSOR_ANCHOR,
            EventKind.SHIPPING,
            EventKind.RECEIVING,
            EventKind.CLOSE,
        )
    ]


def test_deployed_code_is_the_committed_artifact(ledger):
    code = bytes(ledger.w3.eth.get_code(ledger.address))
    assert "0x" + code.hex() == load_artifact("LotLedger")["deployedBytecode"]


# ============================================================================================ revoked roles


@pytest.mark.parametrize("action", ["close", "anchorReadings", "cancelCustodyOffer"])
def test_custodian_whose_roles_were_revoked_cannot_append_any_event(ledger, actors, make_lot, refused, action):
    lot_id = make_lot()
    if action == "cancelCustodyOffer":
        ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.revoke_role(actors.admin, "producer", actors.producer.address)
    calls = {
        "close": lambda: ledger.close(actors.producer, lot_id, new_hash()),
        "anchorReadings": lambda: ledger.anchor_readings(actors.producer, lot_id, new_hash(), 3, new_hash()),
        "cancelCustodyOffer": lambda: ledger.cancel_custody_offer(actors.producer, lot_id, new_hash()),
    }
    refused(calls[action], "AccountLacksRoles", Forbidden, lots=(lot_id,))


def test_recipient_whose_roles_were_revoked_after_the_offer_cannot_accept_custody(ledger, actors, make_lot, refused):
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.revoke_role(actors.admin, "distributor", actors.distributor.address)
    refused(
        lambda: ledger.accept_custody(actors.distributor, lot_id, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )


def test_recipient_whose_roles_were_revoked_after_the_offer_cannot_reject_custody(ledger, actors, make_lot, refused):
    """The offer stays open for the offerer to cancel; the former organisation can no longer act on it."""
    lot_id = make_lot()
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.revoke_role(actors.admin, "distributor", actors.distributor.address)

    exc = refused(
        lambda: ledger.reject_custody(actors.distributor, lot_id, new_hash()),
        "AccountLacksRoles",
        Forbidden,
        lots=(lot_id,),
    )

    assert exc.chain_args == {"account": actors.distributor.address, "anyOf": HANDLER_ROLES}
    assert ledger.get_lot(lot_id).pending_custodian == actors.distributor.address
    ledger.cancel_custody_offer(actors.producer, lot_id, new_hash())
    assert ledger.get_lot(lot_id).status is LotStatus.ACTIVE


def test_abandoned_prepared_transaction_leaves_no_nonce_gap(ledger, actors, make_lot):
    lot_id = make_lot()
    prepared = ledger.prepare(actors.producer, "recordEvent", [lot_id, int(EventKind.COOLING), new_hash()])
    ledger.abandon(prepared)  # e.g. the store's pending write failed: it is never sent
    result = ledger.record_event(actors.producer, lot_id, EventKind.COOLING, new_hash())
    assert result.success and len(result.recorded()) == 1


def test_transaction_reverted_when_mined_reports_the_decoded_error(ledger, actors, make_lot):
    lot_id = make_lot()
    stale = ledger.prepare(actors.producer, "close", [lot_id, new_hash()])  # checked: fine right now
    ledger.recall(actors.regulator, lot_id, new_hash())  # the state changes before it is sent
    with pytest.raises(Conflict) as err:
        ledger.submit(stale)
    assert getattr(err.value, "chain_error", None) == "LotUnavailable", err.value.message
    assert ledger.get_lot(lot_id).status is LotStatus.RECALLED
