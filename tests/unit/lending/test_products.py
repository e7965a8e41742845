"""Product factory: structure, canonical hash, all-in cost (IRR), cost cap, what-if."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from eth_hash.auto import keccak
from pydantic import ValidationError

from node_api.http.problems import problem_status
from node_api.kernel.errors import CreditNetValueError
from node_api.lending.products import (
    InvalidProductError,
    ProductCostAboveCapError,
    ProductTerms,
    canonical_terms_json,
    compute_all_in_apr,
    compute_annualised_irr,
    compute_revolving_annual_rates,
    parse_product,
    parse_product_terms,
    price_payoff,
    price_purchase,
    terms_hash,
    terms_hash_hex,
    validate_product_cost,
)
from node_api.lending.schedules import CancellationWindowClosedError, PayoffKind
from tests.unit.lending.samples import installment_product_data, revolving_product_data

# ---------------------------------------------------------------- structure


def test_parse_product_normalises_set_like_lists_to_ascending_order() -> None:
    terms = parse_product(installment_product_data())

    assert terms.bill_day_options == (5, 10, 20)
    assert terms.installment.tenors_months == (3, 6, 12)
    assert terms.eligible_channels == ("app", "pos")
    assert [share.partner_id for share in terms.funding_split] == ["bank-a", "lender"]


def test_product_terms_are_immutable() -> None:
    terms = parse_product(installment_product_data())

    with pytest.raises(ValidationError):
        terms.version = 2  # type: ignore[misc]


def _invalid(data: dict[str, Any]) -> InvalidProductError:
    with pytest.raises(InvalidProductError) as caught:
        parse_product_terms(data)
    assert caught.value.code == "invalid_product"
    assert problem_status(caught.value) == 422
    return caught.value


def test_RevertWhen_limit_min_is_above_limit_max() -> None:
    data = installment_product_data()
    data["limit_fen_min"] = 6_000_000

    assert _invalid(data).field == "limit_fen_min"


def test_RevertWhen_a_nested_field_is_out_of_range() -> None:
    data = installment_product_data()
    data["fees"]["early_repayment_fee_bps"] = -1

    assert _invalid(data).field == "fees.early_repayment_fee_bps"


def test_RevertWhen_per_bill_late_fee_cap_is_below_the_fixed_fee() -> None:
    data = installment_product_data()
    data["fees"]["late_fee_cap_per_bill_fen"] = 2_000

    assert _invalid(data).field == "fees.late_fee_cap_per_bill_fen"


def test_RevertWhen_origination_fee_is_both_bps_and_fixed() -> None:
    data = installment_product_data()
    data["fees"]["origination_fee_bps"] = 100
    data["fees"]["origination_fee_fixed_fen"] = 1_000

    assert _invalid(data).field == "fees.origination_fee_fixed_fen"


def test_RevertWhen_bill_day_is_32() -> None:
    data = installment_product_data()
    data["bill_day_options"] = [5, 32]

    assert _invalid(data).field == "bill_day_options"


def test_RevertWhen_tenor_is_not_offered() -> None:
    data = installment_product_data()
    data["installment"]["tenors_months"] = [3, 5]

    assert _invalid(data).field == "installment.tenors_months"


def test_RevertWhen_installment_product_has_no_tenor() -> None:
    data = installment_product_data()
    data["installment"]["tenors_months"] = []

    assert _invalid(data).field == "installment.tenors_months"


def test_RevertWhen_funding_shares_do_not_sum_to_one_million_ppm() -> None:
    data = installment_product_data()
    data["funding_split"][0]["share_ppm"] = 300_001

    error = _invalid(data)
    assert error.field == "funding_split"
    assert "1000001" in error.detail


def test_RevertWhen_funding_partner_is_listed_twice() -> None:
    data = installment_product_data()
    data["funding_split"][1]["partner_id"] = "lender"

    assert _invalid(data).field == "funding_split"


def test_RevertWhen_currency_is_not_cny() -> None:
    data = installment_product_data()
    data["currency"] = "USD"

    assert _invalid(data).field == "currency"


def test_RevertWhen_allocation_order_repeats_a_component() -> None:
    data = installment_product_data()
    data["allocation"]["order"] = ["penalty", "fees", "fees", "principal"]

    assert _invalid(data).field == "allocation.order"


def test_RevertWhen_delinquency_thresholds_are_not_ascending() -> None:
    data = installment_product_data()
    data["delinquency"]["thresholds"][1]["days_past_due_min"] = 1

    assert _invalid(data).field == "delinquency.thresholds"


def test_RevertWhen_charge_off_comes_before_the_first_bucket() -> None:
    data = installment_product_data()
    data["delinquency"]["thresholds"][0]["days_past_due_min"] = 5
    data["delinquency"]["charge_off_days"] = 4

    assert _invalid(data).field == "delinquency.charge_off_days"


def test_RevertWhen_an_unknown_field_is_given_and_every_bad_field_is_listed() -> None:
    data = installment_product_data()
    data["surprise"] = 1
    data["grace_days"] = 31

    error = _invalid(data)
    assert set(error.extra["invalid_fields"]) == {"surprise", "grace_days"}


def test_RevertWhen_a_channel_id_has_characters_outside_the_canonical_set() -> None:
    data = installment_product_data()
    data["eligible_channels"] = ["app", 'p"s']

    assert _invalid(data).field == "eligible_channels"


@pytest.mark.parametrize("value", [True, "3", 3.0, 3.5, None])
def test_RevertWhen_an_integer_field_gets_anything_but_an_integer(value: object) -> None:
    data = installment_product_data()
    data["grace_days"] = value

    assert _invalid(data).field == "grace_days"


def test_RevertWhen_a_flag_gets_an_integer() -> None:
    data = installment_product_data()
    data["allocation"]["past_due_first"] = 1

    assert _invalid(data).field == "allocation.past_due_first"


# ------------------------------------------------------------ canonical hash

# Written by hand from the rules in products/canonical.py: keys sorted at every level,
# no whitespace, defaults included, set-like lists ascending, funding split by partner.
_GOLDEN_CANONICAL_JSON = (
    '{"allocation":{"order":["penalty","fees","interest","principal"],"past_due_first":true},'
    '"bill_day_options":[5,10,20],"channel_commission_bps":50,"currency":"CNY",'
    '"delinquency":{"charge_off_days":180,"thresholds":['
    '{"bucket":"M1","days_past_due_min":1},{"bucket":"M2","days_past_due_min":31},'
    '{"bucket":"M3","days_past_due_min":61},{"bucket":"M4","days_past_due_min":91},'
    '{"bucket":"M5","days_past_due_min":121},{"bucket":"M6","days_past_due_min":151},'
    '{"bucket":"M7+","days_past_due_min":181}]},'
    '"due_date_offset_days":20,"eligible_channels":["app","pos"],'
    '"fees":{"early_repayment_fee_bps":100,"installment_fee_fen":0,"late_fee_cap_bps":150,'
    '"late_fee_cap_per_bill_fen":5000,"late_fee_fixed_fen":3000,"origination_fee_bps":0,'
    '"origination_fee_fixed_fen":0},'
    '"free_interest_days":0,'
    '"funding_split":[{"funder_rate_bps":600,"partner_id":"bank-a","share_ppm":700000},'
    '{"funder_rate_bps":0,"partner_id":"lender","share_ppm":300000}],'
    '"grace_days":3,'
    '"installment":{"cancellation_days":7,"pricing_method":"annuity","rate_bps":1200,'
    '"tenors_months":[3,6,12]},'
    '"interest":{"day_count":"ACT/365","method":"apr_bps","rate":1200},'
    '"limit_fen_max":5000000,"limit_fen_min":100000,'
    '"minimum_payment":{"floor_fen":5000,"principal_share_bps":1000},'
    '"penalty_rate_ppm_per_day":500,"product_code":"INST-12","product_type":"installment",'
    '"version":1}'
)


def test_canonical_terms_json_matches_the_documented_form() -> None:
    terms = parse_product(installment_product_data())

    assert canonical_terms_json(terms) == _GOLDEN_CANONICAL_JSON.encode("ascii")


def test_terms_hash_is_keccak256_of_the_canonical_json() -> None:
    terms = parse_product(installment_product_data())
    expected = keccak(_GOLDEN_CANONICAL_JSON.encode("ascii"))

    assert terms_hash(terms) == expected
    assert len(expected) == 32
    assert terms_hash_hex(terms) == "0x" + expected.hex()


def test_terms_hash_differs_between_versions() -> None:
    first = parse_product(installment_product_data())
    data = installment_product_data()
    data["version"] = 2

    assert terms_hash(parse_product(data)) != terms_hash(first)


# --------------------------------------------------------------- IRR / APR


def test_irr_of_one_month_at_ten_percent() -> None:
    # Receive 1,000.00 yuan, repay 1,100.00 a month later: r = 10% a month exactly.
    # Nominal 12 × 10% = 120.00% = 12,000 bps; effective 1.1^12 − 1 = 2.138428... → 21,384.
    rates = compute_annualised_irr([100_000, -110_000])

    assert (rates.nominal_bps, rates.effective_bps) == (12_000, 21_384)


def test_irr_rounds_an_exact_half_bps_nominal_tie_to_even() -> None:
    # Receive 240,000 fen, repay 240,000 + (2k + 1) a month later: r = (2k + 1) / 240,000,
    # so 12 r in bps is exactly k + 0.5. Half-even: 1.5 → 2 and 2.5 → 2.
    assert compute_annualised_irr([240_000, -240_003]).nominal_bps == 2
    assert compute_annualised_irr([240_000, -240_005]).nominal_bps == 2


def test_irr_of_a_zero_cost_plan_is_zero() -> None:
    rates = compute_annualised_irr([90_000, -30_000, -30_000, -30_000])

    assert (rates.nominal_bps, rates.effective_bps) == (0, 0)


def test_RevertWhen_cash_flows_have_no_payment() -> None:
    with pytest.raises(ValueError):
        compute_annualised_irr([100_000, 0])


def test_all_in_apr_of_the_12_percent_annuity_over_12_months() -> None:
    # 12,000.00 yuan at 12%: 11 payments of 1,066.19 and a last one of 1,066.14 (the last
    # absorbs the rounding). The monthly IRR is 1.0000088%: nominal 12.0001% → 1,200 bps;
    # effective 1.010000088^12 − 1 = 12.6826% → 1,268 bps.
    terms = parse_product(installment_product_data())

    cost = compute_all_in_apr(terms, 1_200_000, 12)

    assert cost.cash_flows_fen == (1_200_000, *([-106_619] * 11), -106_614)
    assert (cost.nominal_annual_bps, cost.effective_annual_bps) == (1_200, 1_268)


def test_all_in_apr_counts_the_origination_fee_deducted_upfront() -> None:
    # Same plan with a 2% origination fee: 24,000 fen is withheld, 1,176,000 disbursed,
    # same payments. Solving 1,176,000 = Σ payments / (1 + r)^k gives r = 1.32122% a month:
    # nominal 15.8546% → 1,585 bps; effective 1.0132122^12 − 1 = 17.0590% → 1,706 bps.
    # (Structure only: over 3 months the same fee costs more than the 24% cap.)
    data = installment_product_data()
    data["fees"]["origination_fee_bps"] = 200
    terms = parse_product_terms(data)

    cost = compute_all_in_apr(terms, 1_200_000, 12)

    assert cost.upfront_fee_fen == 24_000
    assert cost.cash_flows_fen[0] == 1_176_000
    assert (cost.nominal_annual_bps, cost.effective_annual_bps) == (1_585, 1_706)


def test_all_in_apr_of_the_flat_fee_plan() -> None:
    # 6,000.00 yuan, 0.6% a month on the original principal, 6 months: 1,000.00 principal
    # + 36.00 fee = 1,036.00 a month. 600,000 = 103,600 × (1 − (1+r)^−6) / r gives
    # r = 1.019947% a month: nominal 12.2394% → 1,224 bps; effective 12.9498% → 1,295 bps.
    terms = parse_product(revolving_product_data())

    cost = compute_all_in_apr(terms, 600_000, 6)

    assert cost.cash_flows_fen == (600_000, *([-103_600] * 6))
    assert (cost.nominal_annual_bps, cost.effective_annual_bps) == (1_224, 1_295)


def test_revolving_rate_is_annualised_nominal_and_compounded_monthly() -> None:
    # 500 ppm a day × 365 = 18.25% nominal → 1,825 bps;
    # (1 + 0.1825 / 12)^12 − 1 = 19.8569% effective → 1,986 bps.
    rates = compute_revolving_annual_rates(parse_product(revolving_product_data()).interest)

    assert (rates.nominal_bps, rates.effective_bps) == (1_825, 1_986)


# ---------------------------------------------------------------- cost cap


def _flat_fee_product(monthly_fee_bps: int) -> dict[str, Any]:
    data = installment_product_data()
    data["limit_fen_min"] = 600_000
    data["limit_fen_max"] = 6_000_000
    data["installment"] = {
        "tenors_months": [3, 6],
        "pricing_method": "flat_monthly_fee",
        "rate_bps": monthly_fee_bps,
        "cancellation_days": 0,
    }
    return data


def test_RevertWhen_all_in_cost_is_above_the_24_percent_cap() -> None:
    # 1.1% a month flat on 6,000.00 yuan:
    #  3 months: 2,000.00 + 66.00 = 2,066.00 a month; r = 1.64110% → effective 21.57%: passes.
    #  6 months: 1,000.00 + 66.00 = 1,066.00 a month; 600,000 = 106,600 × annuity factor
    #  gives r = 1.857239% a month; effective 1.01857239^12 − 1 = 24.71044% → 2,472 bps
    #  rounded up (the figure is never understated), above 2,400.
    with pytest.raises(ProductCostAboveCapError) as caught:
        parse_product(_flat_fee_product(110))

    error = caught.value
    assert error.code == "product_cost_above_cap"
    assert error.field == "installment.tenors_months"
    assert error.extra["tenor_months"] == 6
    assert error.extra["computed_bps"] == 2_472
    assert error.extra["cap_bps"] == 2_400
    assert error.extra["annualization"] == "effective"
    assert "24.72%" in error.detail
    assert isinstance(error, CreditNetValueError)


def test_cost_cap_is_configurable() -> None:
    terms = parse_product(_flat_fee_product(110), cost_cap_bps=2_500)

    costs = validate_product_cost(terms, cost_cap_bps=2_500)
    assert max(cost.effective_annual_bps for cost in costs) == 2_471


def test_RevertWhen_revolving_rate_is_above_the_cap_effective_though_not_nominal() -> None:
    # 600 ppm a day: nominal 21.90% (under 24%) but effective (1 + 0.219/12)^12 − 1
    # = 24.2376% → 2,424 bps: the cap is on the effective rate, so it is rejected.
    data = revolving_product_data()
    data["interest"]["rate"] = 600

    with pytest.raises(ProductCostAboveCapError) as caught:
        parse_product(data)

    assert caught.value.field == "interest.rate"
    assert caught.value.extra["computed_bps"] == 2_424
    assert caught.value.extra["nominal_bps"] == 2_190


def test_cost_cap_checks_the_smallest_amount_where_a_fixed_fee_weighs_most() -> None:
    # A 30.00-yuan fixed fee per installment on the 12% annuity: at 50,000.00 yuan it is
    # negligible, at the 1,000.00-yuan minimum limit it adds 3% a month.
    data = installment_product_data()
    data["fees"]["installment_fee_fen"] = 3_000

    with pytest.raises(ProductCostAboveCapError) as caught:
        parse_product(data)

    assert caught.value.extra["sample_principal_fen"] == 100_000


# ----------------------------------------------------------------- what-if


def test_price_purchase_quotes_schedule_totals_and_all_in_cost() -> None:
    terms = parse_product(installment_product_data())

    quote = price_purchase(terms, 1_200_000, 12, date(2025, 1, 5), bill_day=10)

    # First bill date strictly after 5 Jan on day 10 is 10 Jan; payable 20 days later.
    assert quote.schedule.first_due_date == date(2025, 1, 10)
    assert quote.bill_due_dates[0] == date(2025, 1, 30)
    assert quote.bill_due_dates[-1] == date(2025, 12, 30)
    # 11 × 1,066.19 + 1,066.14 = 12,794.23 yuan repaid, of which 794.23 interest.
    assert quote.total_repayment_fen == 1_279_423
    assert quote.total_interest_fen == 79_423
    assert quote.total_fees_fen == 0
    assert quote.all_in.effective_annual_bps == 1_268
    assert quote.terms_hash == terms_hash(terms)


def test_price_purchase_uses_the_first_bill_day_option_by_default() -> None:
    terms = parse_product(installment_product_data())

    quote = price_purchase(terms, 300_000, 3, date(2025, 1, 5))

    assert quote.bill_day == 5
    assert quote.schedule.first_due_date == date(2025, 2, 5)


@pytest.mark.parametrize(
    ("amount_fen", "tenor_months", "bill_day", "field"),
    [
        (0, 12, 10, "amount_fen"),
        (5_000_001, 12, 10, "amount_fen"),
        (100_000, 9, 10, "tenor_months"),
        (100_000, 12, 11, "bill_day"),
    ],
)
def test_RevertWhen_purchase_is_outside_the_product(
    amount_fen: int, tenor_months: int, bill_day: int, field: str
) -> None:
    terms = parse_product(installment_product_data())

    with pytest.raises(CreditNetValueError) as caught:
        price_purchase(terms, amount_fen, tenor_months, date(2025, 1, 5), bill_day=bill_day)

    assert caught.value.field == field


def test_price_payoff_cancels_within_the_window_and_charges_the_fee_after() -> None:
    terms = parse_product(installment_product_data())
    schedule = price_purchase(terms, 1_200_000, 12, date(2025, 1, 5), bill_day=20).schedule

    cancelled = price_payoff(terms, schedule, date(2025, 1, 12), installments_billed=0)
    repaid = price_payoff(terms, schedule, date(2025, 1, 13), installments_billed=0)

    # Day 7 after the start: cancellation, principal only.
    assert cancelled.kind is PayoffKind.CANCELLATION
    assert cancelled.total_fen == 1_200_000
    # Day 8: early repayment. Interest 1,200,000 × 12% × 8 / 365 = 3,156.16 → 3,156 fen;
    # fee 1% of 12,000.00 = 120.00 yuan.
    assert repaid.kind is PayoffKind.EARLY_REPAYMENT
    assert (repaid.interest_fen, repaid.fee_fen) == (3_156, 12_000)


def test_RevertWhen_product_terms_are_built_without_validation_path() -> None:
    with pytest.raises(ValidationError):
        ProductTerms.model_validate({"product_code": "X"})


def test_cancellation_error_is_a_conflict() -> None:
    assert problem_status(CancellationWindowClosedError("closed")) == 409


# ------------------------------------------------- servicing terms (issue 15)


def test_servicing_terms_at_their_defaults_keep_every_existing_hash() -> None:
    # The fields added for servicing are left out of the canonical JSON at their
    # defaults, so a version registered before they existed hashes the same.
    data = revolving_product_data()
    before = canonical_terms_json(parse_product_terms(data))
    data["credit_application"] = {"order": ["penalty", "fees", "interest", "principal"],
                                  "past_due_first": True}  # fmt: skip
    data["delinquency"]["non_accrual_days"] = 90
    data["delinquency"]["provision_bps"] = {"normal_bps": 100}
    assert canonical_terms_json(parse_product_terms(data)) == before
    for token in (b"credit_application", b"non_accrual_days", b"classification", b"provision"):
        assert token not in before


def test_servicing_terms_set_otherwise_are_hashed() -> None:
    data = revolving_product_data()
    before = terms_hash(parse_product_terms(data))
    data["delinquency"]["non_accrual_days"] = 60
    data["credit_application"] = {"past_due_first": False}
    changed = parse_product_terms(data)
    document = canonical_terms_json(changed)
    assert b'"non_accrual_days":60' in document
    assert b'"credit_application":{"order":["penalty","fees","interest","principal"],' in document
    assert terms_hash(changed) != before
    assert parse_product_terms(json.loads(document)) == changed


def test_RevertWhen_classification_thresholds_do_not_ascend() -> None:
    data = revolving_product_data()
    data["delinquency"]["classification"] = {"special_mention_days": 1, "substandard_days": 91,
                                             "doubtful_days": 91, "loss_days": 361}  # fmt: skip
    assert _invalid(data).field == "delinquency.classification"


def test_RevertWhen_a_provision_rate_falls_as_the_class_worsens() -> None:
    data = revolving_product_data()
    data["delinquency"]["provision_bps"] = {"substandard_bps": 6_000}  # above doubtful 5,000
    assert _invalid(data).field == "delinquency.provision_bps"


def test_RevertWhen_the_credit_order_is_not_a_permutation() -> None:
    data = revolving_product_data()
    data["credit_application"] = {"order": ["penalty", "fees", "interest"]}
    assert _invalid(data).field == "credit_application.order"
