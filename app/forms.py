"""HTML forms generated from the domain's KDE specifications, and reading them back into payloads.

Every event kind's key data elements (``kind_spec(kind).fields``) become form fields, so a KDE added to the
domain appears in the dashboard without template changes. Field names are ``kde.<payload key>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from supply_chain.domain.events import FieldType, kind_spec
from supply_chain.domain.kinds import EventKind
from supply_chain.store.models import Location

PREFIX = "kde."
# Computed by the services (hashes, counts, lists), never typed in.
SKIPPED_TYPES = frozenset(
    {
        FieldType.INPUTS,
        FieldType.HASH32,
        FieldType.SHA256,
        FieldType.COUNT,
        FieldType.TEMPERATURE,
        FieldType.DATETIME,
    }
)
WIDGETS = {
    FieldType.GLN: "select",
    FieldType.DATE: "date",
    FieldType.QUANTITY: "number",
    FieldType.LONG_TEXT: "textarea",
    FieldType.OUTCOME: "select",
    FieldType.RECALL_CLASS: "select",
}
CHOICES = {
    FieldType.OUTCOME: [
        ("pass", "Pass"),
        ("fail", "Fail (puts the lot on hold)"),
        ("conditional", "Conditional"),
    ],
    FieldType.RECALL_CLASS: [
        ("I", "Class I: may cause serious illness or death"),
        ("II", "Class II: may cause temporary illness"),
        ("III", "Class III: unlikely to cause illness"),
    ],
}
Options = list[tuple[str, list[tuple[str, str]]]]


@dataclass
class FormField:
    name: str
    """The payload key."""
    label: str
    widget: str
    required: bool
    visibility: str
    description: str
    value: str = ""
    options: Options = field(default_factory=list)
    placeholder: str | None = None
    """A first, empty choice for a required select the user must pick deliberately (e.g. the ship-to site)."""

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def error_key(self) -> str:
        """The ``field`` a service names when this input is wrong."""
        return "payload." + self.name


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def label_of(name: str) -> str:
    celsius = name.endswith("_c")
    text = name.removesuffix("_gln").removesuffix("_c").replace("_", " ")
    text = {
        "tlc source": "traceability lot code source",
        "immediate subsequent recipient": "next recipient",
        "certificate sha256": "certificate SHA-256",
        "merkle root": "Merkle root of the readings",
    }.get(text, text)
    if celsius:
        text += " (°C)"
    return text[:1].upper() + text[1:]


def gln_options(sites: Sequence[Location], own_org_id: int | None, own_first: bool = True) -> Options:
    own = [(s.gln, f"{s.name} ({s.gln})") for s in sites if s.organisation_id == own_org_id]
    other = [(s.gln, f"{s.name}, {s.organisation.name} ({s.gln})") for s in sites if s.organisation_id != own_org_id]
    groups = [("Your sites", own), ("Other organisations' sites", other)]
    return [g for g in (groups if own_first else groups[::-1]) if g[1]]


def kde_fields(
    kind: EventKind,
    sites: Sequence[Location],
    own_org_id: int | None,
    values: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
    other_first: Iterable[str] = (),
) -> list[FormField]:
    """The form fields of ``kind``'s KDEs. ``values`` (a submitted form) wins over ``defaults``; GLN fields
    list the caller's own sites first except those named in ``other_first`` (e.g. a ship-to location)."""
    values = values or {}
    defaults = defaults or {}
    skip = set(exclude)
    others = set(other_first)
    out = []
    for spec in kind_spec(kind).fields:
        if spec.type in SKIPPED_TYPES or spec.name in skip:
            continue
        widget = WIDGETS.get(spec.type, "text")
        if spec.type == FieldType.GLN:
            options = gln_options(sites, own_org_id, own_first=spec.name not in others)
        else:
            options = [("", CHOICES[spec.type])] if spec.type in CHOICES else []
        if PREFIX + spec.name in values:
            value = str(values.get(PREFIX + spec.name) or "")
        else:
            value = str(defaults.get(spec.name) or (today() if spec.type == FieldType.DATE and spec.required else ""))
        description = spec.description[:1].upper() + spec.description[1:]
        out.append(
            FormField(
                spec.name,
                label_of(spec.name),
                widget,
                spec.required,
                spec.visibility.value,
                description,
                value,
                options,
                "Choose a site" if spec.type == FieldType.GLN and spec.name in others else None,
            )
        )
    return out


def payload_from_form(kind: EventKind, form: Mapping[str, Any], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The payload a KDE form describes; empty inputs are left out (the domain then names a missing
    required field). Validation is the domain's job, not the form's."""
    skip = set(exclude)
    payload: dict[str, Any] = {}
    for spec in kind_spec(kind).fields:
        if spec.type in SKIPPED_TYPES or spec.name in skip:
            continue
        raw = form.get(PREFIX + spec.name)
        if raw is not None and str(raw).strip():
            payload[spec.name] = str(raw).strip()
    return payload
