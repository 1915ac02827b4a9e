"""The CBV 2.0 event hash ID is the same for one event however it is written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from supply_chain.domain.identifiers import LOT_CODE_CHARACTERS, LOT_CODE_MAX_LENGTH
from supply_chain.services.epcis.identity import hash_ids, normal_epc
from supply_chain.services.epcis.vocabulary import lot_uri

SHARED = Path(__file__).resolve().parents[3] / "shared" / "epcis"
if not SHARED.exists():
    SHARED = Path("/work/shared/epcis")
ALL_FIELDS = SHARED / "examples" / "transformation_event_all_possible_fields.jsonld"


def test_a_sensor_elements_json_ld_class_name_is_not_part_of_the_event_hash_id() -> None:
    document = json.loads(ALL_FIELDS.read_text())
    element = document["epcisBody"]["eventList"][0]["sensorElementList"][0]
    assert element["type"] == "epcis:SensorElement"  # the example writes it; the XML binding cannot
    without = copy.deepcopy(document)
    del without["epcisBody"]["eventList"][0]["sensorElementList"][0]["type"]
    assert hash_ids(document) == hash_ids(without)
    assert element["type"] == "epcis:SensorElement"  # the caller's document is left as it was

    changed = copy.deepcopy(without)
    changed["epcisBody"]["eventList"][0]["sensorElementList"][0]["sensorMetadata"]["deviceID"] += "-2"
    assert hash_ids(changed) != hash_ids(without)  # the sensor element's own fields still count


def test_a_lots_digital_link_is_already_in_the_form_captured_epcs_are_stored_in() -> None:
    """``repository.reported_rows`` looks lots up by ``lot_uri`` as written, without the GS1 normaliser: that
    holds only while the normaliser leaves every lot URI unchanged, for every character a lot code may hold."""
    characters = "".join(sorted(LOT_CODE_CHARACTERS))
    codes = [characters[i : i + LOT_CODE_MAX_LENGTH] for i in range(0, len(characters), LOT_CODE_MAX_LENGTH)]
    codes += [f"A{c}1" for c in characters] + ["%25", "%2F", "1", "0" * LOT_CODE_MAX_LENGTH]
    for gtin in ("00614141000012", "10614141000019", "09506000134352", "614141000012", "96385074"):
        for code in codes:
            uri = lot_uri(gtin, code)
            assert normal_epc(uri) == uri, (gtin, code)


def _library_hash_ids(document: dict) -> list[str]:
    """The hash IDs as ``epcis-event-hash-generator`` computes them through its own entry point."""
    from epcis_event_hash_generator import hash_generator, json_to_py

    from supply_chain.services.epcis.identity import _without_class_names

    events = json_to_py.event_list_from_epcis_document_json(_without_class_names(document))
    return [str(i) for i in hash_generator.epcis_hashes_from_events(events)]


def _documents() -> list[tuple[str, dict]]:
    from supply_chain.bench import commissioning_document

    found = [(p.name, json.loads(p.read_text())) for p in sorted((SHARED / "examples").glob("*.json*"))]
    bench = commissioning_document(
        "09506000134352", "9506000134352", 3, name="urn:x:b", lot="BC-{:05d}", day="2026-11-20"
    )
    inline = copy.deepcopy(bench)
    inline["@context"] = [*inline["@context"], {"ex": "https://example.org/ns/"}]
    inline["epcisBody"]["eventList"][0]["ex:note"] = "active"
    inline["epcisBody"]["eventList"][1]["disposition"] = "active"
    return [*found, ("bench", bench), ("inline", inline)]


def test_the_hash_ids_are_the_libraries_own_on_gs1s_examples_and_captured_shapes() -> None:
    documents = _documents()
    assert len(documents) >= 10
    for name, document in documents:
        if not document.get("epcisBody", {}).get("eventList"):
            continue
        assert hash_ids(document) == _library_hash_ids(document), name


def test_the_hash_ids_do_not_serialise_the_document_for_debug_messages_nor_copy_the_events(monkeypatch) -> None:
    """The library's entry points write the whole document and its expansion with ``json.dumps(indent=2)`` for
    ``logging.debug``, debug on or not, and deep-copy the events before hashing them; ``hash_ids`` takes the
    same steps without either."""
    from types import SimpleNamespace

    from epcis_event_hash_generator import hash_generator, json_to_py

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("json.dumps or copy.deepcopy called")

    monkeypatch.setattr(json_to_py, "json", SimpleNamespace(dumps=refuse, loads=json.loads))
    monkeypatch.setattr(hash_generator, "copy", SimpleNamespace(deepcopy=refuse))
    name, document = _documents()[-2]
    assert len(hash_ids(document)) == 3
