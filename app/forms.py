"""HTML forms generated from the domain's KDE specifications, and reading them back into payloads.

Every event kind's key data elements (``kind_spec(kind).fields``) become form fields, so a KDE added to the
domain appears in the dashboard without template changes. Field names are ``kde.<payload key>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask_babel import gettext, ngettext

from app.messages import tr, translate_message
from supply_chain.domain.errors import InvalidInput, LotlineError
from supply_chain.domain.events import INPUT_ITEM_FIELDS, KIND_SPECS, FieldType, kind_spec, payload_problems
from supply_chain.domain.kinds import EventKind
from supply_chain.store.models import Location, Product

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
T = TypeVar("T")


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
        "taken at": "time taken",
        "gtin": "GTIN",
        "gln": "GLN",
        "gs1 company prefix": "GS1 company prefix",
        "confirm lot code": "lot code to confirm",
    }.get(text, text)
    if celsius:
        text += " (°C)"
    return text[:1].upper() + text[1:]


def gln_options(sites: Sequence[Location], own_org_id: int | None, own_first: bool = True) -> Options:
    own = [(s.gln, f"{s.name} ({s.gln})") for s in sites if s.organisation_id == own_org_id]
    other = [(s.gln, f"{s.name}, {s.organisation.name} ({s.gln})") for s in sites if s.organisation_id != own_org_id]
    groups = [("Your sites", own), ("Other organisations' sites", other)]
    return [g for g in (groups if own_first else groups[::-1]) if g[1]]


def placeholder_of(type_: FieldType, other_site: bool, required: bool) -> str | None:
    """The empty first choice of a select the user must answer on purpose: a ship-to site, and every
    required choice (an inspection's outcome is never preselected)."""
    if type_ == FieldType.GLN and other_site:
        return "Choose a site"
    if type_ in CHOICES and required:
        return "Choose one"
    return None


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
                placeholder_of(spec.type, spec.name in others, spec.required),
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


# ------------------------------------------------------------------ errors, all at once, in the label's words


class FormInvalid(InvalidInput):
    """Raised when a submitted form has several wrong fields: ``errors`` holds each of them. A JSON client
    gets the first as the answer's ``error``/``message``/``field`` and every one under ``errors``, each in
    the API's error shape (``details``, as the API's error handler adds it)."""

    def __init__(self, errors: Sequence[LotlineError]) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field, code=first.code)
        self.errors = list(errors)
        self.details = {"errors": [e.to_dict() for e in self.errors]}


class Checks:
    """Collects the refusals of a form's fields, so the user sees every one after a single submit."""

    def __init__(self) -> None:
        self.errors: list[LotlineError] = []

    def run(self, check: Callable[..., T], *args: Any, field: str | None = None) -> T | None:
        """``check(*args)``, or None with its InvalidInput kept (under ``field`` when given)."""
        try:
            return check(*args)
        except InvalidInput as err:
            if field is not None and err.field != field:
                err = InvalidInput(err.message, field=field, code=err.code)
            self.errors.append(err)
            return None

    def add(self, message: str, field: str, code: str | None = None) -> None:
        self.errors.append(InvalidInput(message, field=field, code=code))

    def extend(self, errors: Iterable[LotlineError]) -> None:
        self.errors.extend(errors)

    def done(self) -> None:
        """Raise FormInvalid when anything was refused."""
        if self.errors:
            raise FormInvalid(self.errors)


ROW_WORDS = {"readings": "Reading", "inputs": "Input lot", "outputs": "New lot"}
"""How a farmer calls one row of a list the services number from 0 (``readings[0]`` is "Reading 1")."""

_ROW_PART = re.compile(r"(\w+)\[(\d+)\]")
_LEADING_KEY = re.compile(r"^[\w.\[\]]+: ")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
KNOWN_KEYS = frozenset(
    {f.name for spec in KIND_SPECS.values() for f in spec.fields}
    | {f.name for f in INPUT_ITEM_FIELDS}
    | {"taken_at", "temperature_c", "confirm_lot_code", "confirm_name", "gs1_company_prefix", "notification_email"}
    | {"display_name", "current_password", "new_password", "recall_class", "public_notice", "forwarded_to"}
)
"""Keys a message may mention that are written as words; other words with underscores (a lot code such as
``tr_7``) are left as they are."""
_QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")


def _words_of(key: str) -> str:
    return _lower_first(tr(label_of(key))) if key in KNOWN_KEYS else key


def _lower_first(text: str) -> str:
    """"Harvest date" -> "harvest date"; an abbreviation ("GTIN") stays as it is."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def field_words(key: str) -> str:
    """The words for a service's field key: ``payload.harvest_date`` -> "Harvest date",
    ``readings[0].taken_at`` -> "Reading 1, time taken" (rows counted from 1)."""
    words = []
    for part in key.removeprefix("payload.").removeprefix(PREFIX).split("."):
        row = _ROW_PART.fullmatch(part)
        if row is not None:
            name, index = row.groups()
            words.append(f"{tr(ROW_WORDS.get(name, label_of(name)))} {int(index) + 1}")
        elif part:
            words.append(tr(label_of(part)))
    text = ", ".join(_lower_first(w) for w in words)
    return text[:1].upper() + text[1:]


def plain_message(err: LotlineError, label: str | None = None) -> str:
    """``err``'s message as a form shows it: led by the field's visible label instead of its key, and other
    keys it mentions (``harvest_date``) in words. Quoted values the user typed are left as typed."""
    message = err.message
    if err.field:
        if message.startswith(err.field + ": "):
            message = message[len(err.field) + 2 :]
        else:
            message = _LEADING_KEY.sub("", message, count=1)
        last_word = (label or "").rsplit(" ", 1)[-1]
        for own in (label or "", field_words(err.field), last_word):  # "latitude must be ..." under "Latitude"
            if own and message.lower().startswith(own.lower() + " "):
                message = message[len(own) + 1 :]
                break
    parts = _QUOTED.split(message)
    for i in range(0, len(parts), 2):  # even parts lie outside quotes
        parts[i] = _SNAKE.sub(lambda m: _words_of(m.group(0)), parts[i])
    message = translate_message("".join(parts))  # the page's language (app/messages.py); English as it is
    name = label or (field_words(err.field) if err.field else "")
    return gettext("%(field)s: %(message)s", field=name, message=message) if name else message[:1].upper() + message[1:]


@dataclass
class SummaryItem:
    text: str
    anchor: str | None = None


class ErrorReport:
    """The errors of one submitted form. Each input's macro ``claim``s the errors about it (by the keys the
    services use for it) and shows them next to itself; the summary at the top of the form lists every
    error, linked to its input, and those no input claimed (a state clash, a refusal) without a link."""

    def __init__(self, errors: Sequence[LotlineError] = ()) -> None:
        self.errors = list(errors)
        self._claimed: dict[int, SummaryItem] = {}

    def __bool__(self) -> bool:
        return bool(self.errors)

    @property
    def status(self) -> int:
        return max((e.status for e in self.errors), default=200)

    def _matches(self, err: LotlineError, keys: Iterable[str]) -> bool:
        name = err.field or ""
        return bool(name) and any(name == k or name.startswith((k + "[", k + ".")) for k in keys if k)

    def claim(self, keys: Iterable[str], anchor: str, label: str) -> list[str]:
        """The messages about the input ``anchor`` (labelled ``label``) that no input claimed before."""
        keys = list(keys)
        out = []
        for err in self.errors:
            if id(err) in self._claimed or not self._matches(err, keys):
                continue
            own = err.field in keys or err.field in ("payload." + k for k in keys)
            text = plain_message(err, label if own else None)
            self._claimed[id(err)] = SummaryItem(text, anchor)
            out.append(text)
        return out

    def summary(self) -> list[SummaryItem]:
        """Every error: those no input claimed first (they concern the whole form), then the others in the
        order their inputs appear, each linked to its input."""
        loose = [SummaryItem(plain_message(e)) for e in self.errors if id(e) not in self._claimed]
        return loose + list(self._claimed.values())

    @property
    def title(self) -> str:
        if self.status == 409:
            return gettext("That cannot be done now")
        if self.status == 403:
            return gettext("Not allowed")
        n = len(self.errors)
        return ngettext("There is a problem with this form", "There are %(num)s problems with this form", n)


def errors_of(err: Exception | None) -> ErrorReport:
    if err is None:
        return ErrorReport()
    if isinstance(err, FormInvalid):
        return ErrorReport(err.errors)
    assert isinstance(err, LotlineError)
    return ErrorReport([err])


LOT_FILLED = ("quantity", "unit")
"""KDEs the services fill in from the lot when left empty (the whole lot moves, is cooled, ...)."""


def check_payload(
    checks: Checks, kind: EventKind, payload: Mapping[str, Any], may_be_missing: Iterable[str] = ()
) -> None:
    """Every KDE the domain would refuse (``validate_payload``), each under its ``payload.<name>`` key."""
    checks.extend(payload_problems(kind, payload, may_be_missing))


def bound_fields(product: Product | None) -> tuple[str, ...]:
    """The KDEs the services fill in from the product when left empty (``lots.bind_product``)."""
    if product is None:
        return ()
    # a required commodity the product does not define is its name (invariants.bind_product_fields)
    return ("commodity", "variety")


def confirm_lot_code(checks: Checks, form: Mapping[str, Any], lot_code: str, what: str) -> None:
    """A step that cannot be undone (closing a lot, lifting a hold) asks for the lot code typed again."""
    typed = str(form.get("confirm_lot_code") or "").strip()
    if not typed:
        checks.add(f"type the lot code {lot_code} to {what}", "confirm_lot_code", "confirmation_missing")
    elif typed != lot_code:
        checks.add(
            f"you typed {typed!r}, not {lot_code}: type the lot code exactly to {what}",
            "confirm_lot_code",
            "confirmation_mismatch",
        )
