"""The recall lifecycle's rules in the rulebook: effectiveness-check levels by class and depth."""

from __future__ import annotations

import pytest

from supply_chain.domain import policy
from supply_chain.domain.policy import RecallDepth


@pytest.mark.parametrize(
    ("recall_class", "depth", "code", "target"),
    [
        ("I", "consumer", "A", 100),
        ("I", "wholesale", "A", 100),
        ("II", "retail", "B", policy.EFFECTIVENESS_B_SHARE),
        ("II", "wholesale", "C", 10),
        ("III", "consumer", "D", 2),
        ("III", "wholesale", "E", 0),
        ("II", None, "B", policy.EFFECTIVENESS_B_SHARE),  # a recall issued before the lifecycle: consumer depth
    ],
)
def test_effectiveness_level_by_class_and_depth(recall_class: str, depth: str | None, code: str, target: int) -> None:
    level = policy.effectiveness_level(recall_class, depth)
    assert level.code == code and policy.effectiveness_target(level) == target


def test_every_class_and_depth_has_a_level_and_b_lies_between_c_and_a() -> None:
    for recall_class in ("I", "II", "III"):
        for depth in RecallDepth:
            assert policy.EFFECTIVENESS_LEVEL_BY[(recall_class, depth)] in policy.EFFECTIVENESS_LEVELS
    assert 10 < policy.EFFECTIVENESS_B_SHARE < 100
