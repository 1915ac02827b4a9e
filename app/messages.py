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
from typing import Any

from flask_babel import get_locale, gettext, lazy_gettext
from flask_babel.speaklater import LazyString

from app.i18n import page_gettext


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
    # statuses shown to people (status_label): events, import and capture jobs, deliveries
    N_("pending"),
    N_("confirmed"),
    N_("failed"),
    N_("queued"),
    N_("running"),
    N_("done"),
    N_("sending"),
    N_("delivered"),
    N_("not configured"),
    N_("cancelled"),
    # a key data element's visibility tag on the forms (domain/events.Visibility)
    N_("public"),
    N_("consortium"),
    N_("private"),
    # site kinds as the sites form offers them (store/models.LOCATION_KINDS)
    N_("farm"),
    N_("packhouse"),
    N_("plant"),
    N_("warehouse"),
    N_("store"),
    N_("vessel"),
    N_("port"),
    N_("lab"),
    N_("other"),
    # recall depth (domain/policy.RecallDepth)
    N_("wholesale"),
    N_("retail"),
    N_("consumer"),
    # what typing the lot code confirms on a step page (app/lots/steps.py)
    N_("close the lot"),
    N_("lift the hold"),
    # the steps of a recall's history (services/recalls.py)
    N_("drafted"),
    N_("edited"),
    N_("reviewed"),
    N_("discarded"),
    N_("issued"),
    N_("update"),
    N_("terminated"),
    # what an effectiveness-check level means (domain/policy.EFFECTIVENESS_LEVELS)
    N_("every consignee is checked"),
    N_("a share above level C is checked"),
    N_("one consignee in ten is checked"),
    N_("one consignee in fifty is checked"),
    N_("no effectiveness check"),
    N_("none"),
    # the credit record (services/credit.TERM_LABELS, NOT_TRACKED; domain/credit)
    N_("Lots created"),
    N_("Lots received"),
    N_("Inspections passed"),
    N_("Inspections failed"),
    N_("Inspections conditional"),
    N_("Holds on its lots"),
    N_("Recalls of its own lots"),
    N_("of which class I"),
    N_("Recalls that reached it (ingredient or stock)"),
    N_("Lots tampered"),
    N_("Lots unverifiable"),
    N_("Recall notices acknowledged on time"),
    N_("Recall notices acknowledged late"),
    N_("not tracked yet"),
    N_(
        "Recalls that reached the organisation through an ingredient, or through stock it held, are shown but do "
        "not lower the grade: the recalled lot was someone else's."
    ),
    N_("Not graded: it made or received no lot in the last 12 months."),
    N_("An organisation that made or received no lot in the last 12 months is not graded."),
    N_("A: no threshold of the rule is reached."),
    N_("made from it and held"),
    N_("made from it"),
    N_("held"),
    # the supervision map's layers (services/supervision.LAYERS)
    N_("Producers (farms)"),
    N_("Packers and processors"),
    N_("Distributors"),
    N_("Retailers (shops)"),
    N_("Labs and authorities"),
    N_("Shipments"),
    N_("Confirmed shipments, ship-from to ship-to."),
    N_("Lots on hold"),
    N_("Where each lot on hold is."),
    N_("Recalls: sites holding affected product"),
    N_("Every recalled lot and every lot made from one, where it is now."),
    N_("Failed inspections"),
    N_("Where the lot was when the inspection failed."),
    N_("Cold-chain excursions"),
    N_("Organisations by compliance grade"),
    N_("Each business's sites, coloured by its compliance grade."),
    # services/supervision.py: the map pop-ups' fixed words
    N_("Lots on hold"),
    N_("Recalled product"),
    N_("Failed inspection"),
    N_("Cold-chain excursion"),
    N_("No grade"),
    # services/orgs.py, delivery.py: refusals without values
    N_("organisation name must be 2-200 characters"),
    N_("GS1 company prefixes must differ and none may begin another"),
    N_("an organisation cannot take the admin role from itself"),
    N_("give the reason for the suspension (its users are shown it)"),
    N_("e-mail must look like name@example.org"),
    N_("the new password must differ from the current one"),
    N_("url is required: the https:// address Lotline posts notices to"),
    N_("url must not contain spaces"),
    N_("url must start with https:// (or http://)"),
    N_("url must name a host, e.g. https://hooks.example.com/lotline"),
    N_("url must not carry a user name or password; the signature authenticates"),
    N_("url has port 0"),
    # services/recalls.py: an effectiveness summary's empty quantity
    N_("nothing"),
    # error messages without values from the domain's field checks (the part after the field's name)
    N_("is required"),
)


KDE_TEXTS = (
    # app.forms.label_of: a key data element's label (domain/events.KIND_SPECS, forms.KNOWN_KEYS)
    N_('Location'),
    N_('Harvest date'),
    N_('Commodity'),
    N_('Variety'),
    N_('Quantity'),
    N_('Unit'),
    N_('Field name'),
    N_('Container name'),
    N_('Next recipient'),
    N_('Reference document type'),
    N_('Reference document number'),
    N_('Cooling date'),
    N_('Harvest location'),
    N_('Packing date'),
    N_('Product description'),
    N_('Harvester business name'),
    N_('Cooling location'),
    N_('Landing date'),
    N_('Harvest area'),
    N_('Vessel name'),
    N_('Harvest date start'),
    N_('Harvest date end'),
    N_('From'),
    N_('To'),
    N_('Ship date'),
    N_('Traceability lot code source'),
    N_('Carrier'),
    N_('Receive date'),
    N_('Transformation date'),
    N_('Inputs'),
    N_('Outcome'),
    N_('Inspection date'),
    N_('Inspector name'),
    N_('Inspection body'),
    N_('Standard'),
    N_('Findings'),
    N_('Certificate SHA-256'),
    N_('Reason'),
    N_('Date'),
    N_('Recall class'),
    N_('Instructions'),
    N_('Contact'),
    N_('Notice url'),
    N_('Source gtin'),
    N_('Source lot code'),
    N_('Merkle root of the readings'),
    N_('Reading count'),
    N_('Period start'),
    N_('Period end'),
    N_('Min temperature (°C)'),
    N_('Max temperature (°C)'),
    N_('Sensor id'),
    N_('Note'),
    N_('Effectiveness'),
    N_('GTIN'),
    N_('Lot code'),
    N_('Lot code to confirm'),
    N_('Confirm name'),
    N_('Current password'),
    N_('Display name'),
    N_('Forwarded to'),
    N_('GS1 company prefix'),
    N_('New password'),
    N_('Notification email'),
    N_('Public notice'),
    N_('Time taken'),
    N_('Temperature (°C)'),
    # a key data element's description (the hint under its input)
    N_('The farm where the food was harvested'),
    N_('Date of harvesting'),
    N_("Commodity (product description, e.g. 'romaine lettuce')"),
    N_('Variety'),
    N_('Quantity of food, in its unit of measure'),
    N_('Unit of measure (kg, lb, case, ...)'),
    N_('Field or other growing area name'),
    N_('Container name (sprouts, aquaculture)'),
    N_('Where the food goes next'),
    N_('Reference document type (bill of lading, invoice, ASN, ...)'),
    N_('Reference document number'),
    N_('Where the food was cooled'),
    N_('Date of cooling'),
    N_("The packer's location"),
    N_('Date of initial packing'),
    N_('Description of the packed food'),
    N_('Business name of the harvester'),
    N_('Where the food was received on land'),
    N_('Date the food was received'),
    N_("Harvest location(s) of the trip, e.g. 'FAO 27.4.b North Sea'"),
    N_('Name of the fishing vessel'),
    N_("First day of the trip's harvest"),
    N_("Last day of the trip's harvest"),
    N_('Species or product description'),
    N_('Ship-from location'),
    N_('Ship-to location'),
    N_('Date shipped'),
    N_('Traceability lot code source (where the lot code was assigned)'),
    N_('Description of the food'),
    N_('Carrier or transporter'),
    N_('Immediate previous source (ship-from location)'),
    N_('Receiving location'),
    N_('Date received'),
    N_('Where the food was transformed'),
    N_('Date transformation was completed'),
    N_('The lots used, each {gtin, lot_code, quantity, unit}'),
    N_('Description of the new food'),
    N_('Pass, fail or conditional'),
    N_('Date of the inspection or sampling'),
    N_('Name of the person who inspected'),
    N_('Certification body or laboratory'),
    N_('Scheme or method (GLOBALG.A.P., ISO 6579-1, ...)'),
    N_('What was found'),
    N_('SHA-256 of the certificate or lab report file'),
    N_('Where the inspection took place'),
    N_('Why the lot is held'),
    N_('Date of the hold'),
    N_('Why the hold is lifted'),
    N_('Date of release'),
    N_("The hazard, e.g. 'Listeria monocytogenes'"),
    N_('FDA class I, II or III'),
    N_('Date of the recall'),
    N_('What consumers should do'),
    N_('Phone or e-mail for questions'),
    N_('Link to the public recall notice'),
    N_('GTIN of the lot the recall started from (a lot made from it)'),
    N_('Lot code of the lot the recall started from'),
    N_('Merkle root of the readings (docs/hashing.md)'),
    N_('Number of readings under the root'),
    N_('Time of the first reading'),
    N_('Time of the last reading'),
    N_('Lowest temperature read, degrees Celsius'),
    N_('Highest temperature read, degrees Celsius'),
    N_('Sensor or logger identifier'),
    N_('Where the readings were taken'),
    N_('Sold out, consumed, destroyed, ...'),
    N_('Date the lot was closed'),
    N_('Why custody was refused'),
    N_('Date'),
    N_('Why the transfer was cancelled'),
    N_('What was observed'),
    N_('Why the recall is ended (product removed or corrected, ...)'),
    N_('Date the recall was ended'),
    N_('FDA class of the recall that is ended'),
    N_('How many notified holders answered, and what they accounted for'),
    # app.forms: choices, option groups and placeholders of the KDE inputs
    N_('Pass'),
    N_('Fail (puts the lot on hold)'),
    N_('Conditional'),
    N_('Class I: may cause serious illness or death'),
    N_('Class II: may cause temporary illness'),
    N_('Class III: unlikely to cause illness'),
    N_('Your sites'),
    # app.forms.label_of: an event kind's name (the record and new-lot pages)
    N_("Harvesting"),
    N_("Cooling"),
    N_("Initial packing"),
    N_("First land based receiving"),
    N_("Shipping"),
    N_("Receiving"),
    N_("Transformation"),
    N_("Inspection"),
    N_("Observation"),
    N_("Other organisations' sites"),
    N_('Choose a site'),
    N_('Choose one'),
    N_('Reading'),
    N_('Input lot'),
    N_('New lot'),
)
"""The words of the KDE forms (labels, hints, choices); tests/web/test_i18n.py checks that every one the forms
write has a translation."""


TOPIC_WORDS = (
    N_("recall.issued"),
    N_("recall.update"),
    N_("recall.reminder"),
    N_("recall.terminated"),
    N_("custody.refused"),
)
"""The notification topics a delivery log names (services/notifications.py), as words in the page's language."""

NOTICE_LINES = (N_("The lot is yours again: ship it elsewhere, or close it."),)
"""Fixed lines of the notices services/lots.py writes."""


def message_lines(text: str | None) -> str:
    """A kept notification's text in the page's language, each line on its own (a notice is written one
    sentence a line)."""
    if not text:
        return text or ""
    return "\n".join(translate_message(line) if line.strip() else line for line in str(text).split("\n"))


def tr(text: object) -> str:
    """``text`` in the page's language when the catalogue has it, else unchanged (names, codes, user input)."""
    if text is None:
        return ""
    value = str(text)
    return page_gettext(value) if value else value


_EVENT = r"event #(?P<n>\d+) \((?P<kind>[a-z_]+)\)"
"""How services/verify.py names an event in a record finding (its number on the lot and its kind)."""

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
    # services/imports.py and epcis/capture.Planner: a bulk import's row errors (the file's own words stay as written)
    (
        re.compile(r"GLN (?P<gln>\d+) is not a registered location"),
        lazy_gettext("GLN %(gln)s is not a registered location"),
    ),
    (
        re.compile(
            r"GLN (?P<gln>\d+) \((?P<place>.+?)\) belongs to (?P<owner>.+?); (?P<actor>.+) can only record what "
            r"happens at its own locations"
        ),
        lazy_gettext(
            "GLN %(gln)s (%(place)s) belongs to %(owner)s; %(actor)s can only record what happens at its own locations"
        ),
    ),
    (
        re.compile(r"GTIN (?P<gtin>\d+) is not a registered product"),
        lazy_gettext("GTIN %(gtin)s is not a registered product"),
    ),
    (re.compile(r"no lot (?P<lot>.+) of GTIN (?P<gtin>\d+)"), lazy_gettext("no lot %(lot)s of GTIN %(gtin)s")),
    (
        re.compile(r"lot (?P<lot>.+) of GTIN (?P<gtin>\d+) already exists"),
        lazy_gettext("lot %(lot)s of GTIN %(gtin)s already exists"),
    ),
    (
        re.compile(r"(?P<actor>.+) cannot create lots of GTIN (?P<gtin>\d+): the product belongs to (?P<owner>.+)"),
        lazy_gettext("%(actor)s cannot create lots of GTIN %(gtin)s: the product belongs to %(owner)s"),
    ),
    (
        re.compile(r"(?P<actor>.+) cannot (?P<verb>[a-z ]+?) lots: needs one of the roles (?P<roles>.+)"),
        lazy_gettext("%(actor)s cannot %(verb)s lots: it needs one of the roles %(roles)s"),
    ),
    (
        re.compile(
            r"(?P<actor>.+) cannot receive lots \(needs a processor, distributor or retailer role, and must be another "
            r"organisation\)"
        ),
        lazy_gettext(
            "%(actor)s cannot receive lots (needs a processor, distributor or retailer role, and must be another "
            "organisation)"
        ),
    ),
    (re.compile(r"(?P<got>'.*') is not a decimal number", re.S), lazy_gettext("%(got)s is not a decimal number")),
    (re.compile(r"(?P<got>'.*') is not a valid date \(.*\)", re.S), lazy_gettext("%(got)s is not a valid date")),
    # notifications kept in the inbox as they were written (services/lots.py, services/recalls.py): shown line by
    # line in the reader's language; names, lot codes and what people typed stay as written
    (
        re.compile(r"(?P<actor>.+) refused the delivery of (?P<product>.+) lot (?P<lot>\S+)"),
        lazy_gettext("%(actor)s refused the delivery of %(product)s lot %(lot)s"),
    ),
    (
        re.compile(
            r"(?P<actor>.+) refused to receive lot (?P<lot>\S+) \((?P<product>.+)\) on (?P<day>\d{4}-\d{2}-\d{2})\. "
            r"Reason: (?P<typed>.*)",
            re.S,
        ),
        lazy_gettext("%(actor)s refused to receive lot %(lot)s (%(product)s) on %(day)s. Reason: %(typed)s"),
    ),
    (
        re.compile(r"Class (?P<cls>\S+) recall: (?P<product>.+) lot (?P<lot>\S+)"),
        lazy_gettext("Class %(cls)s recall: %(product)s lot %(lot)s"),
    ),
    (
        re.compile(
            r"(?P<issuer>.+) recalls (?P<product>.+) lot (?P<lot>\S+) \(GTIN (?P<gtin>\d+)\) and every lot made from "
            r"it\. Reason: (?P<typed>.*)",
            re.S,
        ),
        lazy_gettext(
            "%(issuer)s recalls %(product)s lot %(lot)s (GTIN %(gtin)s) and every lot made from it. "
            "Reason: %(typed)s"
        ),
    ),
    (re.compile(r"What to do: (?P<text>.*)", re.S), lazy_gettext("What to do: %(text)s")),
    (re.compile(r"Contact: (?P<contact>.*)", re.S), lazy_gettext("Contact: %(contact)s")),
    (
        re.compile(r"Update to the recall of (?P<product>.+) lot (?P<lot>\S+)"),
        lazy_gettext("Update to the recall of %(product)s lot %(lot)s"),
    ),
    (
        re.compile(r"Recall of (?P<product>.+) lot (?P<lot>\S+) terminated"),
        lazy_gettext("Recall of %(product)s lot %(lot)s terminated"),
    ),
    (
        re.compile(r"(?P<org>.+) has terminated the recall\. Reason: (?P<typed>.*)", re.S),
        lazy_gettext("%(org)s has terminated the recall. Reason: %(typed)s"),
    ),
    (
        re.compile(r"Reminder: acknowledge the recall of (?P<product>.+) lot (?P<lot>\S+)"),
        lazy_gettext("Reminder: acknowledge the recall of %(product)s lot %(lot)s"),
    ),
    (
        re.compile(
            r"(?P<issuer>.+) has not yet received your answer to the class (?P<cls>\S+) recall of lot (?P<lot>\S+)\. "
            r"Please report what you did with the product\."
        ),
        lazy_gettext(
            "%(issuer)s has not yet received your answer to the class %(cls)s recall of lot %(lot)s. "
            "Please report what you did with the product."
        ),
    ),
    # supply_chain/domain/events.py: the rarer checks of a key data element
    (
        re.compile(r"(?P<got>'.*') is not a valid date-time \(.*\)", re.S),
        lazy_gettext("%(got)s is not a valid date-time"),
    ),
    (
        re.compile(r"a date-time needs a UTC offset \(e\.g\. \+02:00 or Z\), got (?P<got>.+)", re.S),
        lazy_gettext("a date-time needs a UTC offset (e.g. +02:00 or Z), got %(got)s"),
    ),
    (
        re.compile(r"a UTC offset is whole minutes \(\+HH:MM\), got (?P<got>.+)", re.S),
        lazy_gettext("a UTC offset is whole minutes (+HH:MM), got %(got)s"),
    ),
    (
        re.compile(r"must be a date-time with UTC offset, got a date"),
        lazy_gettext("must be a date-time with UTC offset, got a date"),
    ),
    (
        re.compile(
            r"must be a date-time with UTC offset in ISO 8601 \(e\.g\. (?P<example>\S+)\), got (?P<got>.+)", re.S
        ),
        lazy_gettext("must be a date-time with UTC offset in ISO 8601 (e.g. %(example)s), got %(got)s"),
    ),
    (
        re.compile(r"must be 64 hex digits \(a SHA-256\), got (?P<got>.+)", re.S),
        lazy_gettext("must be 64 hex digits (a SHA-256), got %(got)s"),
    ),
    (re.compile(r"must be a non-empty list of input lots"), lazy_gettext("must be a non-empty list of input lots")),
    (
        re.compile(r"must be an object with gtin, lot_code, quantity, unit"),
        lazy_gettext("must be an object with gtin, lot_code, quantity, unit"),
    ),
    (
        re.compile(r"lot (?P<lot>\S+) is already listed as (?P<other>\S+)"),
        lazy_gettext("lot %(lot)s is already listed as %(other)s"),
    ),
    (re.compile(r"must differ from (?P<other>[a-z_]+)"), lazy_gettext("must differ from %(other)s")),
    (
        re.compile(r"must not be before (?P<other>[a-z_]+) \((?P<value>[^)]*)\)"),
        lazy_gettext("must not be before %(other)s (%(value)s)"),
    ),
    (
        re.compile(r"must not be below (?P<other>[a-z_]+) \((?P<value>[^)]*)\)"),
        lazy_gettext("must not be below %(other)s (%(value)s)"),
    ),
    (
        re.compile(r"must be a whole number of at least 1, got (?P<got>.+)", re.S),
        lazy_gettext("must be a whole number of at least 1, got %(got)s"),
    ),
    (
        re.compile(r"must be pass, fail or conditional, got (?P<got>.+)", re.S),
        lazy_gettext("must be pass, fail or conditional, got %(got)s"),
    ),
    (re.compile(r"must be text, got (?P<type>\w+)"), lazy_gettext("must be text, got %(type)s")),
    (
        re.compile(r"field names must be non-empty text, got (?P<got>.+)", re.S),
        lazy_gettext("field names must be non-empty text, got %(got)s"),
    ),
    (
        re.compile(
            r"must be a date \(YYYY-MM-DD\) or a date-time with UTC offset in ISO 8601 \(e\.g\. (?P<example>\S+)\), "
            r"got (?P<got>.+)",
            re.S,
        ),
        lazy_gettext(
            "must be a date (YYYY-MM-DD) or a date-time with UTC offset in ISO 8601 (e.g. %(example)s), got %(got)s"
        ),
    ),
    (
        re.compile(r"(?P<got>'.*') is not a critical tracking event; write one of (?P<kinds>.+)", re.S),
        lazy_gettext("%(got)s is not a critical tracking event; write one of %(kinds)s"),
    ),
    (
        re.compile(r"uses a lot from row (?P<row>\d+), which is refused"),
        lazy_gettext("uses a lot from row %(row)s, which is refused"),
    ),
    (re.compile(r"is required for (?P<what>.+)", re.S), lazy_gettext("is required for %(what)s")),
    (
        re.compile(r"must be empty or the event date \((?P<date>.+)\) for harvesting"),
        lazy_gettext("must be empty or the event date (%(date)s) for harvesting"),
    ),
    (
        re.compile(r"is not a key data element of (?P<what>.+): leave it empty"),
        lazy_gettext("is not a key data element of %(what)s: leave it empty"),
    ),
    (
        re.compile(r"write each element as name=value \(lower-case name\), separated by ';'; got (?P<got>.+)", re.S),
        lazy_gettext("write each element as name=value (lower-case name), separated by ';'; got %(got)s"),
    ),
    (re.compile(r"(?P<name>\S+) has a column of its own"), lazy_gettext("%(name)s has a column of its own")),
    (
        re.compile(r"write each input lot as GTIN/LOT \(quantity unit\), separated by ';'; got (?P<got>.+)", re.S),
        lazy_gettext("write each input lot as GTIN/LOT (quantity unit), separated by ';'; got %(got)s"),
    ),
    (re.compile(r"lot (?P<lot>.+) is listed twice"), lazy_gettext("lot %(lot)s is listed twice")),
    (
        re.compile(r"lot (?P<lot>.+) is measured in (?P<unit>.+), not (?P<got>.+)", re.S),
        lazy_gettext("lot %(lot)s is measured in %(unit)s, not %(got)s"),
    ),
    (
        re.compile(
            r"the file is (?P<size>[\d.]+) MiB; an import takes at most (?P<max>\d+) MiB \(split it into several "
            r"files\)"
        ),
        lazy_gettext("the file is %(size)s MiB; an import takes at most %(max)s MiB (split it into several files)"),
    ),
    (
        re.compile(r"the column (?P<column>'.*') appears twice", re.S),
        lazy_gettext("the column %(column)s appears twice"),
    ),
    (
        re.compile(
            r"unknown column\(s\) (?P<columns>.+): the columns are those of the FSMA 204 spreadsheet "
            r"\(download the template\)",
            re.S,
        ),
        lazy_gettext(
            "unknown column(s) %(columns)s: the columns are those of the FSMA 204 spreadsheet (download the template)"
        ),
    ),
    (
        re.compile(r"the file lacks the column\(s\) (?P<columns>.+) \(download the template\)"),
        lazy_gettext("the file lacks the column(s) %(columns)s (download the template)"),
    ),
    (
        re.compile(r"the file holds more than (?P<max>\d+) rows; split it into several files"),
        lazy_gettext("the file holds more than %(max)s rows; split it into several files"),
    ),
    (
        re.compile(r"the file is not readable as CSV: (?P<detail>.+)", re.S),
        lazy_gettext("the file is not readable as CSV: %(detail)s"),
    ),
    (
        re.compile(r"the file is not a readable XLSX workbook \((?P<detail>.+)\)", re.S),
        lazy_gettext("the file is not a readable XLSX workbook (%(detail)s)"),
    ),
    (
        re.compile(r"holds a value in column (?P<column>\d+), which has no header"),
        lazy_gettext("holds a value in column %(column)s, which has no header"),
    ),
    # services/orgs.py, tokens.py, delivery.py: the organisation admin's, API tokens' and webhooks' refusals
    (
        re.compile(r"roles must be one or more of (?P<roles>[a-z, ]+); unknown: (?P<unknown>.+)"),
        lazy_gettext("roles must be one or more of %(roles)s; unknown: %(unknown)s"),
    ),
    (
        re.compile(r"roles must be one or more of (?P<roles>[a-z, ]+)"),
        lazy_gettext("roles must be one or more of %(roles)s"),
    ),
    (
        re.compile(r"an organisation named (?P<name>.+) already exists", re.S),
        lazy_gettext("an organisation named %(name)s already exists"),
    ),
    (
        re.compile(r"GS1 company prefix must be 6-12 digits, got (?P<got>.+)", re.S),
        lazy_gettext("GS1 company prefix must be 6-12 digits, got %(got)s"),
    ),
    (
        re.compile(r"GS1 company prefix (?P<prefix>\d+) overlaps one held by (?P<holder>.+)"),
        lazy_gettext("GS1 company prefix %(prefix)s overlaps one held by %(holder)s"),
    ),
    (
        re.compile(r"(?P<holder>.+) already holds GS1 company prefix (?P<prefix>\d+)"),
        lazy_gettext("%(holder)s already holds GS1 company prefix %(prefix)s"),
    ),
    (
        re.compile(r"(?P<actor>.+) cannot change roles: the admin role is needed"),
        lazy_gettext("%(actor)s cannot change roles: the admin role is needed"),
    ),
    (
        re.compile(r"(?P<name>.+) is suspended: reinstate it first \(it gets back the roles it held\)"),
        lazy_gettext("%(name)s is suspended: reinstate it first (it gets back the roles it held)"),
    ),
    (
        re.compile(r"the reason must be at most (?P<max>\d+) characters"),
        lazy_gettext("the reason must be at most %(max)s characters"),
    ),
    (re.compile(r"(?P<name>.+) is not suspended"), lazy_gettext("%(name)s is not suspended")),
    (
        re.compile(r"a user with e-mail (?P<email>\S+) already exists"),
        lazy_gettext("a user with e-mail %(email)s already exists"),
    ),
    (
        re.compile(r"password must be at least (?P<min>\d+) characters"),
        lazy_gettext("password must be at least %(min)s characters"),
    ),
    (
        re.compile(r"token name must be 1-(?P<max>\d+) characters"),
        lazy_gettext("token name must be 1-%(max)s characters"),
    ),
    (
        re.compile(r"scope must be one of (?P<scopes>[a-z, ]+), got (?P<got>.+)", re.S),
        lazy_gettext("scope must be one of %(scopes)s, got %(got)s"),
    ),
    (re.compile(r"no API token (?P<id>\d+) of (?P<org>.+)"), lazy_gettext("no API token %(id)s of %(org)s")),
    (re.compile(r"API token (?P<id>\d+) is already revoked"), lazy_gettext("API token %(id)s is already revoked")),
    (
        re.compile(r"(?P<org>.+) has (?P<count>\d+) webhook endpoints, the most allowed; delete one first"),
        lazy_gettext("%(org)s has %(count)s webhook endpoints, the most allowed; delete one first"),
    ),
    (
        re.compile(r"no webhook endpoint (?P<id>\d+) of (?P<org>.+)"),
        lazy_gettext("no webhook endpoint %(id)s of %(org)s"),
    ),
    (re.compile(r"topic must be 1-(?P<max>\d+) characters"), lazy_gettext("topic must be 1-%(max)s characters")),
    (re.compile(r"subject must be 1-(?P<max>\d+) characters"), lazy_gettext("subject must be 1-%(max)s characters")),
    (
        re.compile(r"url must be at most (?P<max>\d+) characters"),
        lazy_gettext("url must be at most %(max)s characters"),
    ),
    (
        re.compile(r"url: (?P<host>\S+) is this machine; webhooks go to partners' servers"),
        lazy_gettext("url: %(host)s is this machine; webhooks go to partners' servers"),
    ),
    (re.compile(r"at most (?P<max>\d+) addresses"), lazy_gettext("at most %(max)s addresses")),
    (
        re.compile(r"(?P<address>'.*') is not an e-mail address like name@example\.org", re.S),
        lazy_gettext("%(address)s is not an e-mail address like name@example.org"),
    ),
    # services/recalls.py: the effectiveness summary written into a recall's end event
    (
        re.compile(
            r"(?P<answered>\d+) of (?P<notified>\d+) notified holders answered \((?P<share>[\d.]+)%, level "
            r"(?P<level>[A-E]) asks (?P<target>[\d.]+)%\); accounted for (?P<accounted>.+) of (?P<reached>.+)"
        ),
        lazy_gettext(
            "%(answered)s of %(notified)s notified holders answered (%(share)s%%, level %(level)s asks "
            "%(target)s%%); accounted for %(accounted)s of %(reached)s"
        ),
    ),
    # domain/policy.py: the rulebook's refusals (the verb and the reason are translated on their own, see WORDS)
    (
        re.compile(r"cannot (?P<verb>[a-z ]+?) lot (?P<lot>\S+): (?P<why>.+)"),
        lazy_gettext("cannot %(verb)s lot %(lot)s: %(why)s"),
    ),
    (
        re.compile(r"(?P<actor>.+) cannot (?P<verb>[a-z ]+?) lots: it needs one of the roles (?P<roles>.+)"),
        lazy_gettext("%(actor)s cannot %(verb)s lots: it needs one of the roles %(roles)s"),
    ),
    (
        re.compile(r"(?P<actor>.+) cannot (?P<verb>[a-z ]+?) lot (?P<lot>\S+): (?P<why>.+)"),
        lazy_gettext("%(actor)s cannot %(verb)s lot %(lot)s: %(why)s"),
    ),
    (
        re.compile(r"lot (?P<lot>\S+) is already received by you: (?P<actor>.+) holds it, nothing more to receive"),
        lazy_gettext("lot %(lot)s is already received by you: %(actor)s holds it, nothing more to receive"),
    ),
    (re.compile(r"no lot (?P<lot>\S+)"), lazy_gettext("no lot %(lot)s")),
    # domain/invariants.py and lineage.py: quantities
    (
        re.compile(
            r"(?P<quantity>\S+) (?P<unit>.+?) requested but lot (?P<lot>\S+) has only (?P<left>\S+) (?P<unit_left>.+) "
            r"on hand"
        ),
        lazy_gettext("%(quantity)s %(unit)s requested but lot %(lot)s has only %(left)s %(unit_left)s on hand"),
    ),
    (
        re.compile(r"requested (?P<quantity>[\d.]+) ?(?P<unit>.*?) but only (?P<left>[\d.]+) ?(?P<unit_left>.*?) left"),
        lazy_gettext("requested %(quantity)s %(unit)s but only %(left)s %(unit_left)s left"),
    ),
    (re.compile(r"(?P<when>\S+) is in the future"), lazy_gettext("%(when)s is in the future")),
    # domain/events.py: a key data element's checks (the field's name is in front, see translate_message)
    (
        re.compile(r"is required \((?P<what>.+)\)"),
        lazy_gettext("is required (%(what)s)"),
    ),
    (
        re.compile(r"must be at most (?P<max>\d+) characters, got (?P<count>\d+)"),
        lazy_gettext("must be at most %(max)s characters, got %(count)s"),
    ),
    (re.compile(r"at most (?P<max>\d+) characters"), lazy_gettext("at most %(max)s characters")),
    # services/recalls.py: the issued step of a recall's history
    (
        re.compile(r"recalled on chain with (?P<recalled>\d+) of (?P<downstream>\d+) lots made from it"),
        lazy_gettext("recalled on chain with %(recalled)s of %(downstream)s lots made from it"),
    ),
    # domain/policy.EFFECTIVENESS_LEVELS: level B's share
    (
        re.compile(r"between (?P<low>\d+)% and (?P<high>\d+)%"),
        lazy_gettext("between %(low)s%% and %(high)s%%"),
    ),
    # services/supervision.py: the cold-chain layer's description
    (
        re.compile(r"Readings outside (?P<low>\S+) °C to (?P<high>\S+) °C\."),
        lazy_gettext("Readings outside %(low)s °C to %(high)s °C."),
    ),
    # domain/credit.py: the credit rule's thresholds, and a grade's reasons (each reason translated on its own)
    (
        re.compile(r"(?P<n>\d+) or more of its lots' records no longer match the ledger \(tampered\)"),
        lazy_gettext("%(n)s or more of its lots' records no longer match the ledger (tampered)"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more recalls started from its own lots"),
        lazy_gettext("%(n)s or more recalls started from its own lots"),
    ),
    (
        re.compile(
            r"(?P<n>\d+) or more failed inspections of its lots, and at least (?P<share>\d+) % of their inspections "
            r"failed"
        ),
        lazy_gettext(
            "%(n)s or more failed inspections of its lots, and at least %(share)s %% of their inspections failed"
        ),
    ),
    (
        re.compile(r"(?P<n>\d+) or more class I recalls \(serious harm likely\) started from its own lots"),
        lazy_gettext("%(n)s or more class I recalls (serious harm likely) started from its own lots"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more of its lots have no record on the ledger \(unverifiable\)"),
        lazy_gettext("%(n)s or more of its lots have no record on the ledger (unverifiable)"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more recall notices acknowledged late"),
        lazy_gettext("%(n)s or more recall notices acknowledged late"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more recalls \(any class\) started from its own lots"),
        lazy_gettext("%(n)s or more recalls (any class) started from its own lots"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more failed inspections of its lots"),
        lazy_gettext("%(n)s or more failed inspections of its lots"),
    ),
    (
        re.compile(r"(?P<n>\d+) or more holds placed on its lots"),
        lazy_gettext("%(n)s or more holds placed on its lots"),
    ),
    (
        re.compile(r"(?P<letter>[A-D]) because (?P<reasons>.+)\.", re.S),
        lazy_gettext("%(letter)s because %(reasons)s."),
    ),
    # services/verify.py: the lot page's verification card (the event's kind is translated, see _KINDS)
    (
        re.compile(
            r"(?P<count>\d+) events match the chain \(head (?P<head>0x[0-9a-fA-F]+); the (?P<new>\d+) newest checked "
            r"against the previously verified head\)"
        ),
        lazy_gettext(
            "%(count)s events match the chain (head %(head)s; the %(new)s newest checked against the previously "
            "verified head)"
        ),
    ),
    (
        re.compile(r"(?P<count>\d+) events verified; (?P<pending>\d+) not mined yet"),
        lazy_gettext("%(count)s events verified; %(pending)s not mined yet"),
    ),
    (
        re.compile(
            r"event #(?P<n>\d+) \((?P<kind>[a-z_]+), id (?P<id>\d+)\) is not on the chain: the chain records "
            r"(?P<count>\d+) events; this one was inserted off chain"
        ),
        lazy_gettext(
            "event #%(n)s (%(kind)s, id %(id)s) is not on the chain: the chain records %(count)s events; this one was "
            "inserted off chain"
        ),
    ),
    (
        re.compile(r"event #(?P<n>\d+) \((?P<kind>[a-z_]+), id (?P<id>\d+)\): (?P<why>.+)", re.S),
        lazy_gettext("event #%(n)s (%(kind)s, id %(id)s): %(why)s"),
    ),
    (
        re.compile(
            r"the chain's event #(?P<n>\d+) \(kind (?P<kind>[a-z_]+), transaction (?P<tx>\S+)\) is missing from the "
            r"store before it"
        ),
        lazy_gettext(
            "the chain's event #%(n)s (kind %(kind)s, transaction %(tx)s) is missing from the store before it"
        ),
    ),
    (
        re.compile(
            r"the chain's event #(?P<n>\d+) \(kind (?P<kind>[a-z_]+), transaction (?P<tx>\S+)\) is missing from the "
            r"store"
        ),
        lazy_gettext("the chain's event #%(n)s (kind %(kind)s, transaction %(tx)s) is missing from the store"),
    ),
    (
        re.compile(r"events out of order: it holds what the chain recorded as event #(?P<n>\d+)"),
        lazy_gettext("events out of order: it holds what the chain recorded as event #%(n)s"),
    ),
    (
        re.compile(r"recomputed head (?P<head>0x[0-9a-fA-F]+) differs from the chain's (?P<chain>0x[0-9a-fA-F]+)"),
        lazy_gettext("recomputed head %(head)s differs from the chain's %(chain)s"),
    ),
    (
        re.compile(r"stored status '(?P<stored>[a-z_]+)' differs from the chain's '(?P<chain>[a-z_]+)'"),
        lazy_gettext("stored status '%(stored)s' differs from the chain's '%(chain)s'"),
    ),
    (
        re.compile(r"stored (?P<column>[a-z_]+) '(?P<stored>.+?)' differs from the chain's '(?P<chain>.+)'"),
        lazy_gettext("stored %(column)s '%(stored)s' differs from the chain's '%(chain)s'"),
    ),
    (
        re.compile(r"stored input lots (?P<stored>\[.*?\]) differ from the chain's (?P<chain>\[.*\])"),
        lazy_gettext("stored input lots %(stored)s differ from the chain's %(chain)s"),
    ),
    # services/verify.py: the rest of the record compared with what the chain anchored (``_EVENT`` names the event)
    (
        re.compile(r"recall #(?P<id>\d+) cites " + _EVENT + r", which is not a recall of this lot"),
        lazy_gettext("recall #%(id)s cites event #%(n)s (%(kind)s), which is not a recall of this lot"),
    ),
    (
        re.compile(
            r"recall #(?P<id>\d+): stored (?P<column>[a-z_]+) (?P<was>.+) differs from the (?P<anchored>.+) anchored "
            r"by " + _EVENT,
            re.S,
        ),
        lazy_gettext(
            "recall #%(id)s: stored %(column)s %(was)s differs from the %(anchored)s anchored by event #%(n)s "
            "(%(kind)s)"
        ),
    ),
    (
        re.compile(
            r"the recall anchored by " + _EVENT + r" \((?P<reason>.+)\) is missing from the stored recalls", re.S
        ),
        lazy_gettext(
            "the recall anchored by event #%(n)s (%(kind)s) (%(reason)s) is missing from the stored recalls"
        ),
    ),
    (
        re.compile(r"the end of the recall anchored by " + _EVENT + r" is missing from the stored recalls"),
        lazy_gettext("the end of the recall anchored by event #%(n)s (%(kind)s) is missing from the stored recalls"),
    ),
    (
        re.compile(
            r"inspection #(?P<id>\d+): stored outcome '(?P<was>.+)' differs from the '(?P<anchored>.+)' anchored by "
            + _EVENT
        ),
        lazy_gettext(
            "inspection #%(id)s: stored outcome '%(was)s' differs from the '%(anchored)s' anchored by event #%(n)s "
            "(%(kind)s)"
        ),
    ),
    (
        re.compile(
            r"the inspection anchored by "
            + _EVENT
            + r" \(outcome '(?P<outcome>.*)'\) is missing from the stored inspections"
        ),
        lazy_gettext(
            "the inspection anchored by event #%(n)s (%(kind)s) (outcome '%(outcome)s') is missing from the stored "
            "inspections"
        ),
    ),
    (
        re.compile(
            r"cold-chain batch #(?P<id>\d+): stored (?P<column>[a-z_]+) (?P<was>\S+) differs from the "
            r"(?P<anchored>\S+) anchored by " + _EVENT
        ),
        lazy_gettext(
            "cold-chain batch #%(id)s: stored %(column)s %(was)s differs from the %(anchored)s anchored by event "
            "#%(n)s (%(kind)s)"
        ),
    ),
    (
        re.compile(r"document #(?P<id>\d+) (?P<file>'.*') is cited by no event anchored on chain", re.S),
        lazy_gettext("document #%(id)s %(file)s is cited by no event anchored on chain"),
    ),
    (
        re.compile(
            r"document #(?P<id>\d+) (?P<file>'.*'): stored SHA-256 (?P<was>[0-9a-f]+) differs from the "
            r"(?P<anchored>\S+) anchored by " + _EVENT,
            re.S,
        ),
        lazy_gettext(
            "document #%(id)s %(file)s: stored SHA-256 %(was)s differs from the %(anchored)s anchored by event "
            "#%(n)s (%(kind)s)"
        ),
    ),
    (
        re.compile(r"document #(?P<id>\d+) (?P<file>'.*'): its file (?P<path>\S+) is missing from the instance folder"),
        lazy_gettext("document #%(id)s %(file)s: its file %(path)s is missing from the instance folder"),
    ),
    (
        re.compile(
            r"document #(?P<id>\d+) (?P<file>'.*'): its file (?P<path>\S+) was altered "
            r"\(SHA-256 (?P<actual>[0-9a-f]+), recorded (?P<was>[0-9a-f]+)\)"
        ),
        lazy_gettext(
            "document #%(id)s %(file)s: its file %(path)s was altered (SHA-256 %(actual)s, recorded %(was)s)"
        ),
    ),
    # a list of reasons ("...; or ...", "...; ..."), each one translated
    (re.compile(r"(?P<first>.+?); or (?P<rest>.+)", re.S), lazy_gettext("%(first)s; or %(rest)s")),
    (re.compile(r"(?P<first>.+?); (?P<rest>.+)", re.S), lazy_gettext("%(first)s; %(rest)s")),
    # services/verify.py: the lot page's verdict
    (
        re.compile(r"(?P<count>\d+) events? match(?:es)? the chain \(head (?P<head>0x[0-9a-f]+)\)"),
        lazy_gettext("%(count)s events match the chain (head %(head)s)"),
    ),
)

MAP_PATTERNS: tuple[tuple[re.Pattern[str], LazyString], ...] = (
    # services/supervision.py: the supervision map's pop-ups (titles, lines, link labels); names, lot codes and
    # what people typed (a recall's reason, an inspection's findings) stay as written
    (
        re.compile(r"(?P<what>Lots on hold|Recalled product|Failed inspection|Cold-chain excursion): (?P<site>.+)"),
        lazy_gettext("%(what)s: %(site)s"),
    ),
    (re.compile(r"(?P<lot>.+) shipped (?P<day>\d{4}-\d{2}-\d{2})"), lazy_gettext("%(lot)s shipped %(day)s")),
    (re.compile(r"(?P<lot>.+) shipped"), lazy_gettext("%(lot)s shipped")),
    (
        re.compile(r"(?P<lot>.+?): on hold, (?P<quantity>\S+) (?P<unit>\S+) with (?P<holder>.+)"),
        lazy_gettext("%(lot)s: on hold, %(quantity)s %(unit)s with %(holder)s"),
    ),
    (
        re.compile(
            r"(?P<lot>.+?) \(made from recalled lot (?P<source>\S+)\): Class (?P<cls>I{1,3}) recall, (?P<reason>.+); "
            r"(?P<quantity>\S+) (?P<unit>\S+) with (?P<holder>.+)",
            re.S,
        ),
        lazy_gettext(
            "%(lot)s (made from recalled lot %(source)s): Class %(cls)s recall, %(reason)s; %(quantity)s %(unit)s "
            "with %(holder)s"
        ),
    ),
    (
        re.compile(
            r"(?P<lot>.+?): Class (?P<cls>I{1,3}) recall, (?P<reason>.+); (?P<quantity>\S+) (?P<unit>\S+) with "
            r"(?P<holder>.+)",
            re.S,
        ),
        lazy_gettext("%(lot)s: Class %(cls)s recall, %(reason)s; %(quantity)s %(unit)s with %(holder)s"),
    ),
    (
        re.compile(r"(?P<lot>.+?): failed (?P<day>\S+) \((?P<inspector>.+?)\): (?P<findings>.+)", re.S),
        lazy_gettext("%(lot)s: failed %(day)s (%(inspector)s): %(findings)s"),
    ),
    (
        re.compile(r"(?P<lot>.+?): failed (?P<day>\S+) \((?P<inspector>.+)\)"),
        lazy_gettext("%(lot)s: failed %(day)s (%(inspector)s)"),
    ),
    (
        re.compile(
            r"(?P<lot>.+?): (?P<min>\S+) °C to (?P<max>\S+) °C \(allowed (?P<low>\S+) °C to (?P<high>\S+) °C\), "
            r"(?P<stamp>\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC"
        ),
        lazy_gettext("%(lot)s: %(min)s °C to %(max)s °C (allowed %(low)s °C to %(high)s °C), %(stamp)s"),
    ),
    (re.compile(r"Grade (?P<grade>[A-D])"), lazy_gettext("Grade %(grade)s")),
    (re.compile(r"(?P<org>.+): Grade (?P<grade>[A-D])"), lazy_gettext("%(org)s: Grade %(grade)s")),
    (re.compile(r"(?P<org>.+): No grade"), lazy_gettext("%(org)s: No grade")),
    (re.compile(r"(?P<org>.+) \(organisation\)"), lazy_gettext("%(org)s (organisation)")),
    (
        re.compile(r"Recall of (?P<lot>\S+): every lot reached"),
        lazy_gettext("Recall of %(lot)s: every lot reached"),
    ),
)
"""The supervision map's texts with values (``translate_map_text``)."""

WORDS = (
    # domain/policy.RULES: what an action is called in a refusal ("cannot <verb> lot X")
    N_("accept"),
    N_("add readings to"),
    N_("cancel the offer of"),
    N_("close"),
    N_("create"),
    N_("end the recall of"),
    N_("hold"),
    N_("inspect"),
    N_("print labels for"),
    N_("recall"),
    N_("record events on"),
    N_("refuse"),
    N_("release"),
    N_("ship"),
    N_("use"),
    # domain/policy.py: why the rulebook refuses
    N_("it is held by another organisation"),
    N_("it is not offered to it"),
    N_("only an inspector, a regulator or the lot's creator can"),
    N_("it is not in transit"),
    N_("it is not on hold"),
    N_("it is not recalled"),
    N_("it is in transit"),
    N_("it is pending"),
    N_("it is active"),
    N_("it is held"),
    N_("it is recalled"),
    N_("it is closed"),
    N_("its creation is not mined yet"),
    N_("its recall reached it from an input; end it on the lot it started from"),
    N_("it is ended already"),
    N_("it is made from a recalled lot"),
    # services/imports.py: what a row's cell is required for, or which CTE a column does not belong to
    N_("every row"),
    N_("a new lot"),
    N_("a transformation"),
    N_("a transformation (GTIN/LOT (quantity unit); ...)"),
    N_("shipping (the ship-from GLN)"),
    N_("receiving (the receiving location's GLN)"),
    N_("cooling"),
    N_("initial packing"),
    N_("harvesting"),
    N_("first land-based receiving"),
    N_("shipping"),
    N_("receiving"),
    N_("transformation"),
    N_("transform"),
    N_("receive"),
    # services/imports.py: a row's fixed errors
    N_("must be the ship-from GLN (or empty) for shipping"),
    N_("a transformation needs its input lots"),
    N_("holds a spreadsheet formula; type the value itself"),
    N_(
        "starts like a spreadsheet formula (=, +, -, @); write the value itself, or put a ' before it to keep it "
        "as text"
    ),
    N_("the file is not UTF-8 or GB18030 text: save it as CSV UTF-8"),
    # services/verify.py: verdicts without values, and why an event does not match the chain
    N_("the lot's creation is not mined yet"),
    N_("the chain has no record of this lot"),
    N_("its payload is not held here"),
    N_("its payload was altered: the payload's hash differs from the hash anchored on chain"),
    N_("its kind or actor differs from what the chain recorded"),
    # an event's kind as verify.py names it (EventKind's name, lower case, see _KINDS)
    N_("first land based receiving"),
    N_("inspection"),
    N_("hold"),
    N_("release"),
    N_("recall"),
    N_("sensor anchor"),
    N_("close"),
    N_("custody rejected"),
    N_("custody cancelled"),
    N_("recall ended"),
    # field checks without values (services/recalls.py, domain/events.py)
    N_("required"),
    N_("must be yes or no"),
    N_("must be greater than 0"),
)
"""Parts of messages that PATTERNS put back into a translated template (a verb, a reason)."""

_TRANSLATED_PARTS = {"verb", "why", "what"}
_KINDS = {"kind"}
_STATUSES = {"stored", "chain"}
_DAYS = {"day"}
_MOMENTS = {"stamp"}
_QUANTITY_LISTS = {"accounted", "reached"}
_ROLE_LISTS = {"roles"}
_MESSAGE_PARTS = {"reasons", "first", "rest"}
_UNITS = {"unit", "unit_left"}
_NUMBERS = {"quantity", "left"}
_FIELDS = {"other"}
_FIELD_FIRST = re.compile(
    r"(?P<field>(?:payload\.)?[a-z][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z][a-z0-9_]*)*): (?P<rest>.+)", re.S
)
"""A domain message led by the field's key (``payload.quantity: ...``)."""


def _part(name: str, value: str | None) -> str:
    """One value a pattern captured, as the translated template shows it."""
    from app.i18n import date_text, moment_text, number_text, unit_text

    if value is None:
        return ""
    if name in _MESSAGE_PARTS:
        return translate_message(value)
    if name in _TRANSLATED_PARTS:
        translated = tr(value)
        return translated if translated != value else tr(value[:1].upper() + value[1:])  # a KDE's description
    if name in _ROLE_LISTS:
        return ", ".join(tr(role.strip()) for role in value.split(","))
    if name in _DAYS:
        return date_text(value)
    if name in _QUANTITY_LISTS:
        if value == "nothing":
            return tr(value)
        amounts = [part.strip().partition(" ") for part in value.split(",")]
        return ", ".join(f"{number_text(q)} {unit_text(u)}".strip() for q, _, u in amounts)
    if name in _MOMENTS:
        return moment_text(value)
    if name in _KINDS:
        return tr(value.replace("_", " "))
    if name in _STATUSES and re.fullmatch(r"[a-z_]+", value):
        return tr(value.replace("_", " "))
    if name in _UNITS:
        return unit_text(value)
    if name in _NUMBERS:
        return number_text(value)
    if name in _FIELDS:
        from app.forms import field_words

        return field_words(value)
    return value


def _by_pattern(text: str, patterns: tuple[tuple[re.Pattern[str], LazyString], ...] = PATTERNS) -> str | None:
    for pattern, template in patterns:
        found = pattern.fullmatch(text)
        if found:
            parts = {k: _part(k, v) for k, v in found.groupdict().items()}
            if "first" in parts and (parts["first"] == found["first"] or parts["rest"] == found["rest"]):
                continue  # a list is translated only when each of its items is
            return str(template) % parts
    return None


def translate_message(message: str | None) -> str:
    """A message from the services or the domain (an error, a notice) in the page's language: a fixed message
    from the catalogue, a message with values through ``PATTERNS``, a message led by a field's key as the field's
    name and the rest translated, anything else as it is."""
    if not message:
        return ""
    text = str(message)
    translated = tr(text)
    locale = get_locale()
    if translated != text or locale is None or str(locale) == "en":
        return translated  # English is the source language: the services' own wording (with its plurals) stays
    found = _by_pattern(text)
    if found is not None:
        return found
    led = _FIELD_FIRST.fullmatch(text)
    if led is not None:
        rest = translate_message(led.group("rest"))
        if rest != led.group("rest"):
            from app.forms import field_words

            return gettext("%(field)s: %(message)s", field=field_words(led.group("field")), message=rest)
    return text


def translate_map_text(text: str | None) -> str:
    """A text of the supervision map's layers (a pop-up's title, line or link label) in the page's language;
    names, codes and what people typed stay as written."""
    if not text:
        return text or ""
    locale = get_locale()
    if locale is None or str(locale) == "en":
        return text
    found = _by_pattern(text, MAP_PATTERNS)
    return found if found is not None else translate_message(text)


def translate_map_layers(result: dict[str, Any]) -> dict[str, Any]:
    """``supervision.layers`` with its human-readable texts in the page's language, in place: each layer's title
    and description, each feature's title, lines and link labels. Keys, codes, names and numbers are unchanged."""
    for layer in result["layers"]:
        layer["title"] = translate_message(layer["title"])
        layer["description"] = translate_message(layer.get("description"))
        for feature in layer["data"]["features"]:
            properties = feature["properties"]
            properties["title"] = translate_map_text(properties.get("title"))
            properties["lines"] = [translate_map_text(line) for line in properties.get("lines") or []]
            for link in properties.get("links") or []:
                link["label"] = translate_map_text(link["label"])
    return result
