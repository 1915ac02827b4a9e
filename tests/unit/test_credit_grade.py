"""The credit grade rule (``domain/credit.py``): each threshold at its boundary, the worst cap wins, recalls
that reached an organisation through an ingredient never lower it, untracked acknowledgements cannot."""

from __future__ import annotations

import pytest

from supply_chain.domain import credit
from supply_chain.domain.credit import CreditTerms, grade

ACTIVE = {"lots_created": 5}


def terms(**figures: int | None) -> CreditTerms:
    return CreditTerms(**(ACTIVE | figures))


def test_a_record_with_nothing_wrong_is_a() -> None:
    result = grade(terms(inspections_passed=10))
    assert result.letter == "A" and result.reasons == ()
    assert result.explanation == "A: no threshold of the rule is reached."


def test_an_organisation_that_made_and_received_nothing_is_not_graded() -> None:
    result = grade(CreditTerms(recalls_reached=3))
    assert result.letter is None and result.explanation == credit.NOT_GRADED
    assert grade(CreditTerms(lots_received=1)).letter == "A"  # a shop that received a lot is graded


# (figures just below the threshold, figures at it, the grade it caps at, the term named)
BOUNDARIES = [
    ({"lots_tampered": 0}, {"lots_tampered": 1}, "D", "lots_tampered"),
    ({"recalls_caused": 1}, {"recalls_caused": 2}, "D", "recalls_caused"),
    # 3 failed of 6 (50 %) is D; 2 failed of 4 (50 %) is not (too few); 3 of 7 (43 %) is not (share too low)
    ({"inspections_failed": 3, "inspections_passed": 4}, {"inspections_failed": 3, "inspections_passed": 3}, "D",
     "inspections_failed"),
    ({"inspections_failed": 2, "inspections_passed": 2}, {"inspections_failed": 3, "inspections_passed": 3}, "D",
     "inspections_failed"),
    ({"recalls_caused": 1, "recalls_caused_class_i": 0}, {"recalls_caused": 1, "recalls_caused_class_i": 1}, "C",
     "recalls_caused"),
    # 2 failed of 8 (25 %) is C; 2 of 9 (22 %) is not; 1 of 2 (50 %) is not (too few)
    ({"inspections_failed": 2, "inspections_passed": 7}, {"inspections_failed": 2, "inspections_passed": 6}, "C",
     "inspections_failed"),
    ({"inspections_failed": 1, "inspections_passed": 1}, {"inspections_failed": 2, "inspections_passed": 6}, "C",
     "inspections_failed"),
    ({"lots_unverifiable": 0}, {"lots_unverifiable": 1}, "C", "lots_unverifiable"),
    ({"acks_on_time": 5, "acks_late": 2}, {"acks_on_time": 5, "acks_late": 3}, "C", "acks_late"),
    ({"recalls_caused": 0}, {"recalls_caused": 1}, "B", "recalls_caused"),
    ({"inspections_failed": 0, "inspections_passed": 9}, {"inspections_failed": 1, "inspections_passed": 9}, "B",
     "inspections_failed"),
    ({"holds": 1}, {"holds": 2}, "B", "holds"),
    ({"acks_on_time": 4, "acks_late": 0}, {"acks_on_time": 4, "acks_late": 1}, "B", "acks_late"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("below", "at", "letter", "term"), BOUNDARIES, ids=[f"{b[2]}-{b[3]}-{i}" for i, b in enumerate(BOUNDARIES)]
)
def test_each_threshold_caps_the_grade_at_its_boundary_and_not_below_it(
    below: dict[str, int], at: dict[str, int], letter: str, term: str
) -> None:
    reached = grade(terms(**at))
    assert reached.letter == letter
    assert reached.reasons[0].term == term and reached.reasons[0].grade == letter
    assert letter in reached.explanation and reached.reasons[0].words in reached.explanation
    under = grade(terms(**below))
    assert credit.GRADES.index(under.letter or "A") < credit.GRADES.index(letter)
    assert not any(r.grade == letter and r.term == term for r in under.reasons)


def test_the_worst_cap_wins_and_every_threshold_reached_is_listed() -> None:
    result = grade(terms(recalls_caused=1, recalls_caused_class_i=1, holds=2, lots_tampered=1))
    assert result.letter == "D"
    assert [(r.grade, r.term) for r in result.reasons] == [
        ("D", "lots_tampered"),
        ("C", "recalls_caused"),
        ("B", "recalls_caused"),
        ("B", "holds"),
    ]
    assert result.explanation.startswith("D because 1 or more of its lots' records no longer match the ledger")


def test_recalls_that_reached_it_through_an_ingredient_do_not_lower_the_grade() -> None:
    assert grade(terms(recalls_reached=25)).letter == "A"


def test_untracked_acknowledgements_cannot_move_the_grade() -> None:
    assert grade(terms(acks_on_time=None, acks_late=None)).letter == "A"
    assert grade(terms(acks_on_time=0, acks_late=1)).letter == "B"


def test_terms_add_up_month_by_month_and_stay_untracked_when_both_are() -> None:
    a = CreditTerms(lots_created=1, holds=1)
    b = CreditTerms(lots_created=2, recalls_reached=1)
    assert (a + b) == CreditTerms(lots_created=3, holds=1, recalls_reached=1)
    assert (a + b).acks_late is None
    assert (CreditTerms(acks_late=1) + CreditTerms()).acks_late == 1


def test_the_rule_in_words_names_every_threshold_once_per_grade() -> None:
    lines = credit.rule_text()
    assert [line["grade"] for line in lines] == ["D", "C", "B"]
    for step in credit.RULE:
        line = next(line for line in lines if line["grade"] == step.grade)
        assert step.words in line["when"]
    d = next(line for line in lines if line["grade"] == "D")
    assert "2 or more recalls started from its own lots" in d["when"]


def test_docs_state_every_threshold_of_the_rule() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "credit.md").read_text(encoding="utf-8")
    for step in credit.RULE:
        assert f"| {step.grade} | `{step.term}` | {step.words} |" in text, step.words
