"""Strategies: validation, the treatment of a case, deterministic assignment and arms."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from node_api.collections.model import Arm, Channel
from node_api.collections.strategy import (
    DEFAULT_STRATEGY,
    CaseProfile,
    compute_arm,
    compute_document_hash,
    compute_score_band,
    compute_treatment,
    parse_strategy,
)
from node_api.kernel.errors import CreditNetValueError
from node_api.lending.billing_rules import DelinquencyBucket

M1, M2, M3, M5 = (DelinquencyBucket(b) for b in ("M1", "M2", "M3", "M5"))

STRATEGY: dict[str, Any] = {
    "name": "tiered",
    "score_bands": [
        {"band": "low_risk", "score_min": 650},
        {"band": "high_risk", "score_min": 0},
    ],
    "rules": [
        {"queue": "m1-promise-watch", "channel": "app", "bucket_max": "M1",
         "promise_pending": True},
        {"queue": "m1-broken", "channel": "call", "bucket_max": "M1", "broken_promises_min": 1,
         "assign": {"agents": ["agent-1", "agent-2", "agent-3"]}},
        {"queue": "m1-large", "channel": "call", "bucket_max": "M1",
         "outstanding_fen_min": 1_000_000, "score_bands": ["high_risk", "unscored"],
         "assign": {"agents": ["senior-1"]}},
        {"queue": "m1-reminders", "channel": "sms", "bucket_max": "M1"},
        {"queue": "m2-calls", "channel": "call", "bucket_min": "M2", "bucket_max": "M2",
         "assign": {"agents": ["agent-1", "agent-2"]}},
        {"queue": "m3-agency", "channel": "agency", "bucket_min": "M3",
         "assign": {"agencies": ["agency-a", "agency-b"]}},
    ],
}  # fmt: skip


def _profile(
    bucket: DelinquencyBucket = M1,
    *,
    line: int = 1,
    outstanding_fen: int = 50_000,
    score: int | None = 700,
    broken: int = 0,
    pending: bool = False,
) -> CaseProfile:
    days = {"M1": 10, "M2": 40, "M3": 70, "M5": 130}[bucket.value]
    return CaseProfile(line, bucket, days, outstanding_fen, score, broken, pending)


def test_the_default_strategy_sends_m1_sms_m2_calls_and_m3_plus_to_an_agency() -> None:
    strategy = parse_strategy(DEFAULT_STRATEGY)
    channels = {
        bucket: compute_treatment(strategy, _profile(bucket)).channel for bucket in (M1, M2, M3, M5)
    }
    assert channels == {M1: Channel.SMS, M2: Channel.CALL, M3: Channel.AGENCY, M5: Channel.AGENCY}


def test_the_first_matching_rule_decides_by_bucket_score_balance_and_promises() -> None:
    strategy = parse_strategy(STRATEGY)
    assert compute_treatment(strategy, _profile()).queue == "m1-reminders"
    assert compute_treatment(strategy, _profile(pending=True)).queue == "m1-promise-watch"
    assert compute_treatment(strategy, _profile(broken=1)).queue == "m1-broken"
    large = _profile(outstanding_fen=1_000_000, score=600)
    assert compute_treatment(strategy, large).queue == "m1-large"
    assert compute_treatment(strategy, _profile(outstanding_fen=1_000_000)).queue == "m1-reminders"
    unscored = compute_treatment(strategy, _profile(outstanding_fen=2_000_000, score=None))
    assert (unscored.queue, unscored.score_band, unscored.assignee) == (
        "m1-large", "unscored", "senior-1",
    )  # fmt: skip
    assert compute_treatment(strategy, _profile(M2)).queue == "m2-calls"
    assert compute_treatment(strategy, _profile(M5)).assignee in {"agency-a", "agency-b"}


def test_assignment_is_stable_per_line_and_spreads_over_the_agents() -> None:
    strategy = parse_strategy(STRATEGY)
    assignees = [compute_treatment(strategy, _profile(M2, line=n)).assignee for n in range(200)]
    again = [compute_treatment(strategy, _profile(M2, line=n)).assignee for n in range(200)]
    assert assignees == again
    assert 70 <= assignees.count("agent-1") <= 130 and set(assignees) == {"agent-1", "agent-2"}


def test_the_challenger_takes_its_share_deterministically_by_line() -> None:
    arms = [compute_arm(3, line, 2_000) for line in range(1, 10_001)]
    assert arms == [compute_arm(3, line, 2_000) for line in range(1, 10_001)]
    assert 1_800 <= arms.count(Arm.CHALLENGER) <= 2_200
    assert {compute_arm(3, line, 0) for line in range(1, 500)} == {Arm.CHAMPION}
    assert {compute_arm(3, line, 10_000) for line in range(1, 500)} == {Arm.CHALLENGER}
    other = [compute_arm(4, line, 2_000) for line in range(1, 10_001)]
    assert other != arms  # a new activation draws a new sample


def test_score_bands_take_the_highest_band_reached() -> None:
    bands = parse_strategy(STRATEGY).score_bands
    assert [compute_score_band(bands, s) for s in (None, 0, 649, 650, 900)] == [
        "unscored", "high_risk", "high_risk", "low_risk", "low_risk",
    ]  # fmt: skip


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(STRATEGY)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("document", "code", "field"),
    [
        (_changed(("rules", 4, "score_bands"), ["low_risk"]), "strategy_gap", "rules"),
        (_changed(("rules", 3, "score_bands"), ["low_risk"]), "strategy_gap", "rules"),
        (_changed(("rules", 0, "channel"), "fax"), "strategy_invalid", "rules.0.channel"),
        (_changed(("rules", 2, "score_bands"), ["gold"]), "strategy_invalid", "rules.2"),
        (_changed(("rules", 4, "bucket_min"), "M3"), "strategy_invalid", "rules.4"),
        (_changed(("rules", 1, "bucket_min"), "M0"), "strategy_invalid", "rules.1"),
        (_changed(("rules", 4, "assign"), {"agencies": ["a"]}), "strategy_invalid", "rules.4"),
        (_changed(("score_bands", 1, "band"), "low_risk"), "strategy_invalid", "score_bands"),
        (_changed(("rules",), []), "strategy_invalid", "rules"),
        (_changed(("surprise",), 1), "strategy_invalid", "surprise"),
    ],
)
def test_RevertWhen_a_strategy_is_invalid_or_leaves_a_bucket_uncovered(
    document: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(CreditNetValueError) as info:
        parse_strategy(document)
    assert (info.value.code, info.value.field) == (code, field)


def test_the_document_hash_ignores_key_order() -> None:
    reordered = {key: STRATEGY[key] for key in reversed(list(STRATEGY))}
    assert compute_document_hash(parse_strategy(reordered)) == compute_document_hash(
        parse_strategy(STRATEGY)
    )
