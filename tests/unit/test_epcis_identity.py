"""The CBV 2.0 event hash ID is the same for one event however it is written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from supply_chain.services.epcis.identity import hash_ids

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
