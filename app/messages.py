"""Words the services and the domain write in English (labels, verdicts, error messages) in the page's language.

The domain may not import Flask, so its texts are translated here, where they are shown:

- fixed texts (an event kind's label, a verification state, a site kind) are marked with ``N_`` below so that
  ``scripts/i18n.py extract`` puts them in the catalogue; ``tr`` looks any text up at display time and leaves
  unknown ones as they are;
- messages with values in them (``no product with GTIN 0070...``) are matched by the patterns in ``PATTERNS``
  and rebuilt from a translated template with the same values.

tests/web/test_i18n.py checks that every label the services define has a translation, so a new one cannot slip
through untranslated.
"""

from __future__ import annotations

import re

from flask_babel import get_locale, gettext, lazy_gettext
from flask_babel.speaklater import LazyString


def N_(text: str) -> str:  # noqa: N802 - the conventional name of a gettext no-op marker
    """Mark ``text`` for extraction without translating it here."""
    return text


SERVICE_TEXTS = (
    # services/views.KIND_LABELS: a step of a lot's journey
    N_("Harvested"),
    N_("Cooled"),
    N_("Packed"),
    N_("Landed"),
    N_("Shipped"),
    N_("Received"),
    N_("Made from other lots"),
    N_("Inspected"),
    N_("Put on hold"),
    N_("Hold lifted"),
    N_("Recalled"),
    N_("Cold-chain readings"),
    N_("Closed"),
    N_("Delivery refused"),
    N_("Shipment cancelled"),
    N_("Observation"),
    N_("Recall ended"),
    # event kinds as the lot page's "Record ..." buttons name them (app.forms.label_of, lower case)
    N_("harvesting"),
    N_("cooling"),
    N_("initial packing"),
    N_("first land based receiving"),
    N_("shipping"),
    N_("receiving"),
    N_("transformation"),
    N_("observation"),
    # services/views.label_date: the date a label prints
    N_("Recorded"),
    # services/verification_state.STATE_LABELS
    N_("Verified on chain"),
    N_("Record does not match the chain"),
    N_("Pending verification"),
    N_("No chain record found"),
    N_("Not recorded (transaction failed)"),
    N_("Not vouched for (an earlier record does not match)"),
    # services/trace.SITE_KIND_LABELS
    N_("Farm"),
    N_("Packer"),
    N_("Processor"),
    N_("Distributor"),
    N_("Shop"),
    N_("Vessel"),
    N_("Port"),
    N_("Lab"),
    # lot statuses (status_label)
    N_("active"),
    N_("in transit"),
    N_("held"),
    N_("recalled"),
    N_("closed"),
    N_("failed inspection"),
    # error messages without values (supply_chain/domain/identifiers.py, services/orgs.py, app/auth)
    N_("GTIN must not be all zeros"),
    N_("GLN must not be all zeros"),
    N_("lot code is required (1 to 20 characters)"),
    N_("Digital Link is required"),
    N_("e-mail or password is wrong"),
    N_("E-mail or password is wrong."),
    N_("the current password is wrong"),
    N_("sign in first"),
    # the import pages' file errors without values (app/imports/routes.py, services/imports.py)
    N_("choose a CSV or XLSX file to upload"),
    N_("the file holds NUL characters: it is not a CSV text file"),
    N_("the file is empty"),
    N_("the file has no header row"),
    N_("the file holds a header row but no data rows"),
    N_("the file holds no data rows"),
    N_("the checked file is unknown: upload it again"),
    # inspection outcomes
    N_("pass"),
    N_("fail"),
    N_("conditional"),
    # roles
    N_("producer"),
    N_("processor"),
    N_("distributor"),
    N_("retailer"),
    N_("inspector"),
    N_("regulator"),
    N_("admin"),
)


def tr(text: object) -> str:
    """``text`` in the page's language when the catalogue has it, else unchanged (names, codes, user input)."""
    if text is None:
        return ""
    value = str(text)
    return gettext(value) if value else value  # type: ignore[no-any-return]


PATTERNS: tuple[tuple[re.Pattern[str], LazyString], ...] = (
    # supply_chain/domain/identifiers.py: what a mistyped GTIN, GLN or lot code is told
    (
        re.compile(r"(?P<label>GTIN|GLN) (?P<text>\S+): check digit should be (?P<expected>\d), got (?P<got>\d)"),
        lazy_gettext("%(label)s %(text)s: check digit should be %(expected)s, got %(got)s"),
    ),
    (
        re.compile(r"(?P<label>GTIN|GLN) (?P<text>\S+): digits only, found (?P<bad>.+)"),
        lazy_gettext("%(label)s %(text)s: digits only, found %(bad)s"),
    ),
    (re.compile(r"(?P<label>GTIN|GLN) is required"), lazy_gettext("%(label)s is required")),
    (
        re.compile(r"GTIN (?P<text>\d+): must have 8, 12, 13 or 14 digits, got (?P<count>\d+)"),
        lazy_gettext("GTIN %(text)s: must have 8, 12, 13 or 14 digits, got %(count)s"),
    ),
    (
        re.compile(r"GLN (?P<text>\d+): must have 13 digits, got (?P<count>\d+)"),
        lazy_gettext("GLN %(text)s: must have 13 digits, got %(count)s"),
    ),
    (
        re.compile(r"lot code (?P<text>.+): must be at most (?P<max>\d+) characters, got (?P<count>\d+)"),
        lazy_gettext("lot code %(text)s: must be at most %(max)s characters, got %(count)s"),
    ),
    (
        re.compile(
            r"lot code (?P<text>.+): character (?P<char>.+) at position (?P<position>\d+) is not allowed "
            r"\(GS1 AI \(10\) allows digits, letters and (?P<allowed>.+)\)"
        ),
        lazy_gettext(
            "lot code %(text)s: character %(char)s at position %(position)s is not allowed "
            "(GS1 AI (10) allows digits, letters and %(allowed)s)"
        ),
    ),
    (re.compile(r"no product with GTIN (?P<gtin>\d+)"), lazy_gettext("no product with GTIN %(gtin)s")),
    (
        re.compile(r"no lot (?P<lot>.+) of product (?P<gtin>\d+)"),
        lazy_gettext("no lot %(lot)s of product %(gtin)s"),
    ),
    (
        re.compile(
            r"(?P<lots>\d+) lots?; inspections: (?P<passed>\d+) passed, (?P<failed>\d+) failed; "
            r"(?P<holds>\d+) holds?; (?P<recalls>\d+) recalls? of its own lots; "
            r"(?P<reached>\d+) recalls? reached it through an ingredient or stock"
        ),
        lazy_gettext(
            "%(lots)s lots; inspections: %(passed)s passed, %(failed)s failed; %(holds)s holds; %(recalls)s recalls "
            "of its own lots; %(reached)s recalls reached it through an ingredient or stock"
        ),
    ),
    (
        re.compile(r"(?P<name>.+) cannot open this page: it needs one of the roles (?P<roles>.+)"),
        lazy_gettext("%(name)s cannot open this page: it needs one of the roles %(roles)s"),
    ),
)


def translate_message(message: str | None) -> str:
    """A message from the services or the domain (an error, a notice) in the page's language: a fixed message
    from the catalogue, a message with values through ``PATTERNS``, anything else as it is."""
    if not message:
        return ""
    text = str(message)
    translated = tr(text)
    if translated != text or str(get_locale()) == "en":
        return translated  # English is the source language: the services' own wording (with its plurals) stays
    for pattern, template in PATTERNS:
        found = pattern.fullmatch(text)
        if found:
            return str(template) % found.groupdict()
    return text
