"""The pure decision of an application: fraud, policy, limits at every level."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pytest

from node_api.kernel.money import Fen
from node_api.lending.limits import ProductGroup
from node_api.lending.products import ProductTerms, parse_product_terms
from node_api.onboarding.agreements import compute_agreement_id, get_unix_day_start
from node_api.onboarding.application_input import ApplicationInput
from node_api.onboarding.decision import (
    LIMIT_BELOW_PRODUCT_MINIMUM,
    ApplicationDecision,
    DecisionResult,
    compute_application_decision,
    compute_line_limits,
    parse_line_limits,
)
from node_api.onboarding.policies import (
    DEFAULT_POLICY,
    OnboardingPolicy,
    compute_chain_product_code,
    get_chain_product_code,
)
from node_api.risk.fraud_config import AttributeKind, VelocityWindow
from node_api.risk.fraud_facts import ApplicationFacts, FraudSignals, Gender
from node_api.risk.policy import LimitTree
from node_api.risk.samples import APPROVED_CHARACTERISTICS
from node_api.risk.scorecard import Scorecard

CARD = Scorecard.load_packaged("german")
GOOD = dict(APPROVED_CHARACTERISTICS)
FACTS = ApplicationFacts(
    datetime(2025, 6, 30, 9, tzinfo=UTC),
    {AttributeKind.ID: hashlib.sha256(b"id").digest()},
    date(1985, 1, 1),
    Gender.MALE,
)
CLEAN = FraudSignals({}, {}, frozenset(), 1)


def _terms(product_type: str = "revolving_purchase", **changes: object) -> ProductTerms:
    data: dict[str, object] = {
        "product_code": "PAY1",
        "version": 1,
        "product_type": product_type,
        "limit_fen_min": 10_000,
        "limit_fen_max": 5_000_000,
        "interest": {"method": "daily_ppm", "rate": 500},
        "free_interest_days": 50,
        "bill_day_options": [5],
        "due_date_offset_days": 20,
        "minimum_payment": {"principal_share_bps": 1000, "floor_fen": 5000},
        "penalty_rate_ppm_per_day": 500,
        "grace_days": 3,
        "funding_split": [{"partner_id": "lender", "share_ppm": 1_000_000, "funder_rate_bps": 0}],
        "channel_commission_bps": 0,
        "eligible_channels": ["app"],
    }
    if product_type == "cash_loan":
        data["installment"] = {"tenors_months": [3]}
    data.update(changes)
    return parse_product_terms(data)


def _decide(
    income_fen: int = 1_500_000,
    signals: FraudSignals = CLEAN,
    profile: dict[str, object] | None = None,
    terms: ProductTerms | None = None,
) -> DecisionResult:
    return compute_application_decision(
        facts=FACTS,
        signals=signals,
        score=CARD.score(GOOD if profile is None else profile),
        monthly_income_fen=Fen(income_fen),
        policy=DEFAULT_POLICY,
        terms=terms or _terms(),
    )


def test_purchase_product_draws_on_the_purchase_group_capped_by_the_product_maximum() -> None:
    limits = compute_line_limits(
        LimitTree(Fen(6_000_000), Fen(6_000_000), Fen(1_800_000)), _terms()
    )
    assert limits.by_path() == {
        "total": 6_000_000,
        "total/cash": 1_800_000,
        "total/purchase": 6_000_000,
        "total/purchase/PAY1": 5_000_000,
    }
    assert parse_line_limits(limits.by_path(), _terms()) == limits


def test_cash_product_draws_on_the_cash_group() -> None:
    tree = LimitTree(Fen(6_000_000), Fen(6_000_000), Fen(1_800_000))
    limits = compute_line_limits(tree, _terms("cash_loan"))
    assert limits.product_group is ProductGroup.CASH
    assert limits.by_path()["total/cash/PAY1"] == 1_800_000


def test_good_applicant_is_approved_with_limits_and_no_reasons() -> None:
    result = _decide()
    assert result.decision is ApplicationDecision.APPROVED
    assert result.reason_codes == ()
    assert result.limits.total_fen == 6_000_000


def test_limit_under_the_product_minimum_declines_with_zero_limits() -> None:
    result = _decide(
        terms=_terms(limit_fen_min=4_000_000, limit_fen_max=5_000_000), income_fen=800_000
    )
    assert result.decision is ApplicationDecision.DECLINED
    assert result.reason_codes[0] == LIMIT_BELOW_PRODUCT_MINIMUM
    assert set(result.limits.by_path().values()) == {0}


def test_fraud_review_hit_sends_an_otherwise_approved_applicant_to_review() -> None:
    signals = FraudSignals({(AttributeKind.ID, VelocityWindow.HOUR_1): 3}, {}, frozenset(), 1)
    result = _decide(signals=signals)
    assert result.decision is ApplicationDecision.REVIEW
    assert result.reason_codes[0] == "VELOCITY_ID_1H"
    assert result.limits.total_fen == 6_000_000


def test_blacklist_declines_whatever_the_score() -> None:
    signals = FraudSignals({}, {}, frozenset({AttributeKind.ID}), 1)
    result = _decide(signals=signals)
    assert result.decision is ApplicationDecision.DECLINED
    assert result.reason_codes[0] == "BLACKLIST_ID"


def test_thin_file_goes_to_review_with_the_card_reasons_after_the_policy_reason() -> None:
    result = _decide(profile={})
    assert result.decision is ApplicationDecision.REVIEW
    assert result.reason_codes[0] == "THIN_FILE"


def test_application_input_round_trips_through_its_encrypted_json() -> None:
    inputs = ApplicationInput(
        product_code="PAY1",
        name="王 小明",
        id_number="11010119850101123X",
        phone="13900000001",
        monthly_income_fen=1,
        device_id="d",
        ip_address="::1",
        channel_id="app",
        characteristics={"a": 1, "b": "x", "c": None, "d": 1.5},
        declared_birth_date=date(1985, 1, 1),
        declared_gender=Gender.FEMALE,
    )
    assert ApplicationInput.from_json(inputs.to_json()) == inputs


def test_agreement_ids_differ_per_application_and_opened_at_is_utc_midnight() -> None:
    assert compute_agreement_id("a" * 32) != compute_agreement_id("b" * 32)
    assert len(compute_agreement_id("a" * 32)) == 32
    assert get_unix_day_start(date(1970, 1, 2)) == 86_400


def test_chain_product_code_is_a_stable_uint32_unless_the_policy_sets_one() -> None:
    code = compute_chain_product_code("PAY1")
    assert 0 <= code < 2**32 and code == compute_chain_product_code("PAY1")
    assert code != compute_chain_product_code("PAY2")
    pinned = DEFAULT_POLICY.model_copy(update={"chain_product_code": 7})
    assert get_chain_product_code(pinned, "PAY1") == 7


def test_RevertWhen_a_policy_age_window_is_empty() -> None:
    document = DEFAULT_POLICY.model_dump()
    with pytest.raises(ValueError, match="age_years_min"):
        OnboardingPolicy.model_validate({**document, "age_years_min": 70, "age_years_max": 60})
