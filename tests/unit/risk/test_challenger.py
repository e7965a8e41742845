"""Champion/challenger routing: the same applicant always lands in the same arm, and the
challenger's share of applicants is the configured one."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from node_api.risk.challenger import (
    BUCKET_COUNT,
    Arm,
    ChallengerConfig,
    compute_bucket,
    get_deciding_arm,
)

KEYS = [hashlib.sha256(f"identity-{n}".encode()).digest() for n in range(20_000)]


def test_the_same_applicant_gets_the_same_bucket_every_time() -> None:
    for key in KEYS[:100]:
        assert compute_bucket("q3", key) == compute_bucket("q3", key)
        assert 0 <= compute_bucket("q3", key) < BUCKET_COUNT


def test_another_experiment_deals_applicants_again() -> None:
    moved = sum(compute_bucket("q3", key) != compute_bucket("q4", key) for key in KEYS[:1_000])
    assert moved > 990


@pytest.mark.parametrize("share_bps", [0, 500, 3_000, 5_000, 10_000])
def test_the_challenger_decides_its_share_of_applicants(share_bps: int) -> None:
    arms = [get_deciding_arm(compute_bucket("q3", key), share_bps) for key in KEYS]
    share = arms.count(Arm.CHALLENGER) / len(KEYS)
    assert share == pytest.approx(share_bps / 10_000, abs=0.012)
    if share_bps in (0, 10_000):
        assert share == share_bps / 10_000


def test_buckets_below_the_share_go_to_the_challenger() -> None:
    assert get_deciding_arm(2_999, 3_000) is Arm.CHALLENGER
    assert get_deciding_arm(3_000, 3_000) is Arm.CHAMPION


@pytest.mark.parametrize(
    "arms", [{}, {"model_version": 2, "policy_version": 3}], ids=["neither", "both"]
)
def test_RevertWhen_a_challenger_names_not_exactly_one_arm(arms: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ChallengerConfig(share_bps=1_000, **arms)


def test_RevertWhen_the_share_exceeds_the_whole() -> None:
    with pytest.raises(ValidationError):
        ChallengerConfig(share_bps=10_001, model_version=1)
