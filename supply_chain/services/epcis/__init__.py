"""EPCIS 2.0 (GS1) JSON-LD: export a lot's history as an EPCIS document, and capture EPCIS documents.

Export (`export_lot`): every event of a lot (optionally also of its ancestors) becomes one EPCIS event -
ObjectEvents for creation, CTEs, custody, inspections, holds, recalls and sensor readings, a
TransformationEvent for a lot made from other lots. Lots are named by GS1 Digital Link URIs
(``https://id.gs1.org/01/{gtin}/10/{lot}``), locations by GLN Digital Link URIs (``https://id.gs1.org/414/{gln}``),
business steps and dispositions by their CBV 2.0 bare words. Each event carries Lotline extensions
(``lotline:cte``, ``lotline:kde``, ``lotline:payloadHash``, ...) so a reader can check it against the chain.
An event a capture job wrote from an EPCIS document is exported instead as the event captured (from the event
repository, plus ``recordTime``) to readers who may see it whole. The mapping table is in docs/epcis.md.

Serials (``serials``): the lot a serialised pack belongs to, where captured events tie them.

Capture (`capture`): a document is validated against the EPCIS 2.0 JSON Schema (a failure names the path),
then every event is mapped to Lotline writes and checked against the store and the caller's rights -
registered GTINs and GLNs, product ownership, custody, status, quantities - on a simulated state, in document
order. An event with no Lotline counterpart (or naming a lot, product or location Lotline does not know) is
stored only; an event already captured is a duplicate; if any event is refused by the rules the whole document
is rejected (``CaptureRejected``, 422) with a result per event and nothing is written (``plan_capture``).
Otherwise the writes are sent as multicall transactions of up to ``MAX_CALLS_PER_TRANSACTION`` calls (one
transaction for an ordinary document).

The event repository (``repository``): every event of an accepted document kept as sent, with its CBV 2.0
event hash ID (``identity``), anchored on chain per capture job (a Merkle root), and served by the standard
query interface (docs/epcis.md, "The event repository").

Capture jobs (``jobs``): the API stores an accepted document as a job and writes it in bounded batches, in the
background for a large document, resumable after a crash (docs/epcis.md, "Capture jobs").
"""

from supply_chain.services.epcis.capture import (
    MAX_CALLS_PER_TRANSACTION,
    CapturePlan,
    CaptureRejected,
    CaptureResult,
    EventResult,
    Step,
    capture,
    plan_capture,
)
from supply_chain.services.epcis.export import event_time, export_event, export_lot
from supply_chain.services.epcis.vocabulary import (
    EPCIS_CONTEXT,
    GS1_RESOLVER,
    LOTLINE_NAMESPACE,
    Unsupported,
    gln_uri,
    lot_uri,
    parse_gln_uri,
    parse_lot_uri,
    schema,
    validate_document,
)

__all__ = [
    "EPCIS_CONTEXT",
    "GS1_RESOLVER",
    "LOTLINE_NAMESPACE",
    "MAX_CALLS_PER_TRANSACTION",
    "CapturePlan",
    "CaptureRejected",
    "CaptureResult",
    "EventResult",
    "Step",
    "Unsupported",
    "capture",
    "event_time",
    "export_event",
    "export_lot",
    "gln_uri",
    "lot_uri",
    "parse_gln_uri",
    "parse_lot_uri",
    "plan_capture",
    "schema",
    "validate_document",
]
