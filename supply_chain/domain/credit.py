"""The credit grade of an organisation: one rule, written once, with its thresholds and its words.

An organisation's compliance record (``services.credit``) is summed over the grading window into
``CreditTerms``; ``grade`` turns those terms into a letter A-D and the reasons that moved it down. Each step of
the rule is a ``Threshold``: the grade it caps the organisation at, the term it reads, the test and the plain
words shown next to the grade, so a buyer or the regulator sees why. The grade is the worst cap any threshold
reached; with none reached it is A. An organisation that neither made nor received a lot in the window is not
graded (``None``): there is nothing to grade, and "A" would vouch for it.

Recalls that reached an organisation through an ingredient (or through stock it held) are shown in its record
but never lower its grade: the fault was upstream. Recall acknowledgements are a term of the rule, but while
they are not tracked (``acks_late is None``) their thresholds cannot be reached and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction

GRADES = ("A", "B", "C", "D")
"""Best first."""

WINDOW_MONTHS = 12
"""The grade reads the last 12 calendar months of the record (the current month included)."""

# --- thresholds (each named once; the words below are built from them) -----------------------------------
TAMPERED_FOR_D = 1
"""Lots whose stored record no longer matches the ledger."""
RECALLS_CAUSED_FOR_D = 2
"""Recalls started from its own lots."""
FAILED_FOR_D = 3
FAILED_SHARE_FOR_D = Fraction(1, 2)
CLASS_I_FOR_C = 1
"""Class I recalls started from its own lots."""
FAILED_FOR_C = 2
FAILED_SHARE_FOR_C = Fraction(1, 4)
UNVERIFIABLE_FOR_C = 1
"""Lots the ledger has no record of."""
LATE_ACKS_FOR_C = 3
RECALLS_CAUSED_FOR_B = 1
FAILED_FOR_B = 1
HOLDS_FOR_B = 2
"""Holds placed on its lots (a failed inspection holds the lot too)."""
LATE_ACKS_FOR_B = 1


@dataclass(frozen=True)
class CreditTerms:
    """An organisation's record over a period: the figures the rule reads.

    ``acks_on_time``/``acks_late`` are None while recall acknowledgements are not tracked."""

    lots_created: int = 0
    lots_received: int = 0
    inspections_passed: int = 0
    inspections_failed: int = 0
    inspections_conditional: int = 0
    holds: int = 0
    recalls_caused: int = 0
    recalls_caused_class_i: int = 0
    recalls_reached: int = 0
    lots_tampered: int = 0
    lots_unverifiable: int = 0
    acks_on_time: int | None = None
    acks_late: int | None = None

    def __add__(self, other: CreditTerms) -> CreditTerms:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return CreditTerms(**{f.name: plus(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    @property
    def inspections(self) -> int:
        return self.inspections_passed + self.inspections_failed + self.inspections_conditional

    @property
    def failed_share(self) -> Fraction:
        """Failed inspections of its lots as a share of all their inspections (0 with none)."""
        return Fraction(self.inspections_failed, self.inspections) if self.inspections else Fraction(0)

    @property
    def active(self) -> bool:
        """Made or received a lot in the period: something to grade."""
        return self.lots_created > 0 or self.lots_received > 0


@dataclass(frozen=True)
class Threshold:
    """One step of the rule: reaching it caps the grade at ``grade``."""

    grade: str
    term: str
    words: str
    reached: Callable[[CreditTerms], bool]


def _share(value: Fraction) -> str:
    return f"{value.numerator * 100 // value.denominator} %"


RULE: tuple[Threshold, ...] = (
    Threshold(
        "D",
        "lots_tampered",
        f"{TAMPERED_FOR_D} or more of its lots' records no longer match the ledger (tampered)",
        lambda t: t.lots_tampered >= TAMPERED_FOR_D,
    ),
    Threshold(
        "D",
        "recalls_caused",
        f"{RECALLS_CAUSED_FOR_D} or more recalls started from its own lots",
        lambda t: t.recalls_caused >= RECALLS_CAUSED_FOR_D,
    ),
    Threshold(
        "D",
        "inspections_failed",
        f"{FAILED_FOR_D} or more failed inspections of its lots, and at least {_share(FAILED_SHARE_FOR_D)} of "
        "their inspections failed",
        lambda t: t.inspections_failed >= FAILED_FOR_D and t.failed_share >= FAILED_SHARE_FOR_D,
    ),
    Threshold(
        "C",
        "recalls_caused",
        f"{CLASS_I_FOR_C} or more class I recalls (serious harm likely) started from its own lots",
        lambda t: t.recalls_caused_class_i >= CLASS_I_FOR_C,
    ),
    Threshold(
        "C",
        "inspections_failed",
        f"{FAILED_FOR_C} or more failed inspections of its lots, and at least {_share(FAILED_SHARE_FOR_C)} of "
        "their inspections failed",
        lambda t: t.inspections_failed >= FAILED_FOR_C and t.failed_share >= FAILED_SHARE_FOR_C,
    ),
    Threshold(
        "C",
        "lots_unverifiable",
        f"{UNVERIFIABLE_FOR_C} or more of its lots have no record on the ledger (unverifiable)",
        lambda t: t.lots_unverifiable >= UNVERIFIABLE_FOR_C,
    ),
    Threshold(
        "C",
        "acks_late",
        f"{LATE_ACKS_FOR_C} or more recall notices acknowledged late",
        lambda t: t.acks_late is not None and t.acks_late >= LATE_ACKS_FOR_C,
    ),
    Threshold(
        "B",
        "recalls_caused",
        f"{RECALLS_CAUSED_FOR_B} or more recalls (any class) started from its own lots",
        lambda t: t.recalls_caused >= RECALLS_CAUSED_FOR_B,
    ),
    Threshold(
        "B",
        "inspections_failed",
        f"{FAILED_FOR_B} or more failed inspections of its lots",
        lambda t: t.inspections_failed >= FAILED_FOR_B,
    ),
    Threshold(
        "B",
        "holds",
        f"{HOLDS_FOR_B} or more holds placed on its lots",
        lambda t: t.holds >= HOLDS_FOR_B,
    ),
    Threshold(
        "B",
        "acks_late",
        f"{LATE_ACKS_FOR_B} or more recall notices acknowledged late",
        lambda t: t.acks_late is not None and t.acks_late >= LATE_ACKS_FOR_B,
    ),
)
"""The whole rule, worst grade first. Reading it top to bottom gives the rule in words (``rule_text``)."""

NOT_COUNTED = (
    "Recalls that reached the organisation through an ingredient, or through stock it held, are shown but do "
    "not lower the grade: the recalled lot was someone else's."
)
NOT_GRADED = "Not graded: it made or received no lot in the last 12 months."
NOT_GRADED_RULE = "An organisation that made or received no lot in the last 12 months is not graded."


@dataclass(frozen=True)
class Grade:
    """The grade and the thresholds that set it (every threshold reached, worst first)."""

    letter: str | None
    reasons: tuple[Threshold, ...]

    @property
    def explanation(self) -> str:
        """Why, in one sentence."""
        if self.letter is None:
            return NOT_GRADED
        if not self.reasons:
            return "A: no threshold of the rule is reached."
        worst = [r for r in self.reasons if r.grade == self.letter]
        because = "; ".join(r.words for r in worst)
        return f"{self.letter} because {because}."


def grade(terms: CreditTerms) -> Grade:
    """The grade of a record: the worst cap of the thresholds it reaches, A if none; None if inactive."""
    if not terms.active:
        return Grade(None, ())
    reasons = tuple(step for step in RULE if step.reached(terms))
    letter = max((step.grade for step in reasons), key=GRADES.index, default="A")
    return Grade(letter, reasons)


def rule_text() -> list[dict[str, str]]:
    """The rule in plain words, one line per grade below A, worst first (for pages and the API)."""
    out = []
    for letter in reversed(GRADES[1:]):
        steps = [s.words for s in RULE if s.grade == letter]
        out.append({"grade": letter, "when": "; or ".join(steps)})
    return out
