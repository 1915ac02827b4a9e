"""Event kinds, numbered exactly as the LotLedger contract numbers them (uint8 `kind`)."""

from __future__ import annotations

from enum import IntEnum


class EventKind(IntEnum):
    """Critical tracking events (FSMA 204) plus Lotline's own control events.

    The numbers are part of the on-chain format (they enter the head hash); never renumber.
    """

    HARVESTING = 1
    COOLING = 2
    INITIAL_PACKING = 3
    FIRST_LAND_BASED_RECEIVING = 4
    SHIPPING = 5
    RECEIVING = 6
    TRANSFORMATION = 7
    INSPECTION = 8
    HOLD = 9
    RELEASE = 10
    RECALL = 11
    SENSOR_ANCHOR = 12
    CLOSE = 13
    CUSTODY_REJECTED = 14
    CUSTODY_CANCELLED = 15
    OBSERVATION = 16
    RECALL_ENDED = 17


class LotStatus(IntEnum):
    """A lot's status as the contract stores it."""

    NONE = 0
    ACTIVE = 1
    IN_TRANSIT = 2
    HELD = 3
    RECALLED = 4
    CLOSED = 5


class InspectionOutcome(IntEnum):
    """An inspection's result as the contract stores it; a fail puts the lot on hold."""

    PASS = 0
    FAIL = 1
    CONDITIONAL = 2


# Kinds that can start a lot's history (createLot). TRANSFORMATION needs input lots.
CREATION_KINDS = frozenset(
    {
        EventKind.HARVESTING,
        EventKind.INITIAL_PACKING,
        EventKind.FIRST_LAND_BASED_RECEIVING,
        EventKind.TRANSFORMATION,
    }
)

# Kinds a custodian records with recordEvent(s); the others have their own contract function.
FREE_KINDS = frozenset(
    {
        EventKind.HARVESTING,
        EventKind.COOLING,
        EventKind.INITIAL_PACKING,
        EventKind.FIRST_LAND_BASED_RECEIVING,
        EventKind.OBSERVATION,
    }
)
