"""The API's models come from the single sources: each kind's KDEs from ``KIND_SPECS``, the enums from the
domain's tables. Change the source and the published OpenAPI document follows; there is no copy to forget."""

from __future__ import annotations

import dataclasses

import pytest

from app.api import models
from supply_chain.domain.events import KIND_SPECS, FieldSpec, FieldType, Visibility
from supply_chain.domain.kinds import CREATION_KINDS, FREE_KINDS, EventKind
from supply_chain.domain.lineage import RecallClass
from supply_chain.domain.policy import Role, Status
from supply_chain.store.models import TOKEN_SCOPES


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def _resolve(document: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.name.lower())
def test_every_kinds_kdes_in_the_document_are_its_kind_spec(document, kind: EventKind) -> None:
    component = document["components"]["schemas"][models.kde_model_name(kind)]
    spec = KIND_SPECS[kind]
    excluded = {"outcome"} if kind is EventKind.INSPECTION else set()  # sent as the body's own field
    assert set(component["properties"]) == {f.name for f in spec.fields} - excluded
    for f in spec.fields:
        if f.name not in excluded and f.type is not FieldType.INPUTS:  # a list: its items carry visibilities
            assert component["properties"][f.name]["description"] == f"{f.description} ({f.visibility.value})"
    expected = (
        set()
        if kind is EventKind.RECEIVING  # every receiving KDE may come from the shipment
        else {f.name for f in spec.fields if f.required} - models.DEFAULTED - excluded
    )
    assert set(component.get("required", [])) == expected
    assert component["additionalProperties"] is True  # extra fields are kept (private)


def test_a_field_added_to_kind_specs_shows_up_in_the_published_schema(document) -> None:
    cooling = KIND_SPECS[EventKind.COOLING]
    added = FieldSpec("precooling_method", FieldType.TEXT, True, Visibility.CONSORTIUM, "hydro, vacuum or forced air")
    specs = {**KIND_SPECS, EventKind.COOLING: dataclasses.replace(cooling, fields=(*cooling.fields, added))}
    ref = "#/components/schemas/{model}"
    published = document["components"]["schemas"]["CoolingKDEs"]
    # the document holds exactly what the generator makes of KIND_SPECS ...
    assert published == models.kde_model(EventKind.COOLING).model_json_schema(ref_template=ref)
    # ... and the generator follows KIND_SPECS: the new field, typed, described and required
    changed = models.kde_model(EventKind.COOLING, specs=specs).model_json_schema(ref_template=ref)
    assert changed["properties"]["precooling_method"] == {
        "type": "string",
        "maxLength": 500,
        "description": "hydro, vacuum or forced air (consortium)",
    }
    assert "precooling_method" in changed["required"]
    assert {k: v for k, v in changed["properties"].items() if k != "precooling_method"} == published["properties"]


def test_the_request_models_validate_with_the_kind_specs(client, network) -> None:
    """A shipment's payload is checked against ShippingKDEs: a required KDE of shipping left out is named."""
    producer = network["producer"]
    required = [f.name for f in KIND_SPECS[EventKind.SHIPPING].fields if f.required and f.name not in models.DEFAULTED]
    response = client.post(
        f"/api/v1/lots/{producer.gtin}/NO-SUCH-LOT/shipments",
        headers=producer.headers(),
        json={"payload": {}},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_field"
    assert response.get_json()["field"] == f"payload.{required[0]}"


def test_the_documents_enums_are_the_domains(document) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Status"]["enum"] == [s.value for s in Status]
    assert schemas["Lot"]["properties"]["status"] == {"$ref": "#/components/schemas/Status"}
    status_param = next(p for p in document["paths"]["/lots"]["get"]["parameters"] if p["name"] == "status")
    assert _resolve(document, status_param["schema"])["enum"] == [s.value for s in Status]
    assert schemas["Role"]["enum"] == [r.value for r in Role]
    assert schemas["Organisation"]["properties"]["roles"]["items"] == {"$ref": "#/components/schemas/Role"}
    assert schemas["RecallClass"]["enum"] == [c.value for c in RecallClass]
    assert schemas["Event"]["properties"]["kind"]["enum"] == [k.name.lower() for k in EventKind]
    creation = sorted(CREATION_KINDS - {EventKind.TRANSFORMATION})
    assert schemas["NewLot"]["properties"]["kind"]["enum"] == [k.name.lower() for k in creation]
    assert schemas["NewEvent"]["properties"]["kind"]["enum"] == [k.name.lower() for k in sorted(FREE_KINDS)]
    assert schemas["Token"]["properties"]["scope"]["enum"] == list(TOKEN_SCOPES)
    assert schemas["NewToken"]["properties"]["scope"]["enum"] == list(TOKEN_SCOPES)
