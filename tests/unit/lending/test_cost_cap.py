"""The cost cap on actual payment dates, decided exactly (issue 15, item 3).

Every figure here was computed by hand (and checked with a 60-digit decimal bisection
written apart from the code): a flow k months and o days after the start is discounted
by (1 + r)^k × (1 + r × o / 30); nominal = 12 r, effective = (1 + r)^12 − 1, in bps
rounded up.
"""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.products import parse_product_terms
from node_api.lending.products.cost_cap import (
    Annualization,
    CostCap,
    CostCapExceededError,
    DatedFlow,
    TimedFlow,
    check_obligation_cost,
    check_product_rates,
    compute_annual_bps,
    compute_drawdown_flows,
    compute_flow_time,
    compute_monthly_flows,
    compute_obligation_cost,
    is_within_cap,
)
from node_api.lending.products.validation import ProductCostAboveCapError, parse_product
from tests.integration.lending.helpers import cash_product_data, product_data
from tests.unit.lending.samples import installment_product_data

NOMINAL, EFFECTIVE = Annualization.NOMINAL, Annualization.EFFECTIVE


def _one_payment(months: int, odd_days: int, paid_fen: int) -> tuple[TimedFlow, ...]:
    return TimedFlow(0, 0, 10_000), TimedFlow(months, odd_days, -paid_fen)


def test_a_rate_exactly_at_the_nominal_cap_passes_and_one_fen_more_never_does() -> None:
    # 10,000 received, 10,200 paid a month later: r = 2% exactly, nominal 24.00%.
    at_cap = _one_payment(1, 0, 10_200)
    assert is_within_cap(at_cap, 2_400, NOMINAL)
    assert compute_annual_bps(at_cap, NOMINAL) == 2_400
    # Effective (1.02)^12 − 1 = 26.8242%: above the same cap → 2,683 bps rounded up.
    assert not is_within_cap(at_cap, 2_400, EFFECTIVE)
    assert compute_annual_bps(at_cap, EFFECTIVE) == 2_683
    # 10,201: r = 2.01%, nominal 24.12% → refused, however the figure would round.
    above = _one_payment(1, 0, 10_201)
    assert not is_within_cap(above, 2_400, NOMINAL)
    assert not is_within_cap(above, 2_411, NOMINAL)
    assert is_within_cap(above, 2_412, NOMINAL)
    assert compute_annual_bps(above, NOMINAL) == 2_412


def test_a_rate_exactly_at_the_effective_cap_passes_and_one_fen_more_never_does() -> None:
    # 10,000 received, 12,400 paid 12 months later: (1 + r)^12 = 1.24 exactly, so the
    # effective rate is 24.00% exactly although r itself is irrational (1.80876% a month).
    at_cap = _one_payment(12, 0, 12_400)
    assert is_within_cap(at_cap, 2_400, EFFECTIVE)
    assert compute_annual_bps(at_cap, EFFECTIVE) == 2_400
    assert compute_annual_bps(at_cap, NOMINAL) == 2_171  # 21.7051%
    # 12,401: effective 24.01% exactly → above 2,400, within 2,401.
    above = _one_payment(12, 0, 12_401)
    assert not is_within_cap(above, 2_400, EFFECTIVE)
    assert is_within_cap(above, 2_401, EFFECTIVE)
    assert compute_annual_bps(above, EFFECTIVE) == 2_401


@pytest.mark.parametrize(
    ("cap_bps", "paid_fen"),
    # 1.21 = 1.1², 1.44 = 1.2², 1.5625 = 1.25⁴, 4.096 = 1.6³ and 4,096 = 2¹²: a cap whose
    # 1 + c is a perfect power has a 12th root of lower degree; each bullet is exact.
    [(2_100, 12_100), (4_400, 14_400), (5_625, 15_625), (30_960, 40_960), (40_950_000, 40_960_000)],
)
def test_a_12_month_bullet_at_exactly_the_effective_cap_passes(cap_bps: int, paid_fen: int) -> None:
    assert is_within_cap(_one_payment(12, 0, paid_fen), cap_bps, EFFECTIVE)
    assert not is_within_cap(_one_payment(12, 0, paid_fen + 1), cap_bps, EFFECTIVE)
    assert not is_within_cap(_one_payment(12, 0, paid_fen), cap_bps - 1, EFFECTIVE)


@pytest.mark.parametrize(
    ("start", "on", "months", "odd_days"),
    [
        (date(2025, 1, 10), date(2025, 2, 25), 1, 15),
        (date(2025, 1, 10), date(2025, 1, 25), 0, 15),
        (date(2025, 1, 31), date(2025, 2, 28), 1, 0),  # month end clamps
        (date(2025, 1, 31), date(2025, 3, 30), 1, 30),
        (date(2025, 1, 31), date(2025, 3, 31), 2, 0),
    ],
)
def test_flow_time_counts_whole_months_forward_then_odd_days(
    start: date, on: date, months: int, odd_days: int
) -> None:
    assert compute_flow_time(start, on) == (months, odd_days)


def test_a_short_first_period_costs_more_and_a_long_one_less() -> None:
    # 10,000 received on 10 January, 10,150 paid back:
    #  on 10 February (1 month): r = 1.5%, nominal 18.00%;
    #  on 25 January (15 days = half a month): 1 + r/2 = 1.015, r = 3%, nominal 36.00%;
    #  on 25 February (1 month 15 days): (1 + r)(1 + r/2) = 1.015, r = 0.996689%,
    #  nominal 11.9603% → 1,197 bps rounded up; effective 12.6382% → 1,264.
    start = date(2025, 1, 10)

    def cost(on: date, mode: Annualization) -> int:
        flows = (DatedFlow(start, 10_000), DatedFlow(on, -10_150))
        return compute_obligation_cost(start, flows, CostCap(2_400, mode)).annual_bps

    assert cost(date(2025, 2, 10), NOMINAL) == 1_800
    assert cost(date(2025, 1, 25), NOMINAL) == 3_600
    assert cost(date(2025, 2, 25), NOMINAL) == 1_197
    assert cost(date(2025, 2, 25), EFFECTIVE) == 1_264


def test_the_issues_flat_fee_plan_is_refused_both_ways() -> None:
    # 100 yuan over 12 months at a 5-yuan (500 bps) monthly fee, paid monthly from the
    # start: principal 837 then 833 × 11, fee 500 each. r = 8.09506% a month:
    # nominal 97.1408% → 9,715 bps; effective 154.4898% → 15,449 bps.
    flows = compute_monthly_flows((10_000, -1_337, *([-1_333] * 11)))
    assert compute_annual_bps(flows, NOMINAL) == 9_715
    assert compute_annual_bps(flows, EFFECTIVE) == 15_449
    assert not is_within_cap(flows, 2_400, NOMINAL)


def test_a_drawdown_repaid_on_its_due_date_is_priced_on_its_days() -> None:
    # The cash product: 15% a year (ACT/365), 0.3% fee, bills on day 5, due 20 days later.
    # 1,000.00 yuan drawn on the bill day 5 March is due 25 March: interest 100,000 ×
    # 15% × 20 / 365 = 821.92 → 822, fee 300, so 101,122 paid after 20 days (2/3 of a
    # month): 1 + 2r/3 = 1.01122, r = 1.683%; nominal 20.196% → 2,020; effective
    # 22.1744% → 2,218: within 24% either way.
    terms = parse_product_terms(cash_product_data())
    flows = compute_drawdown_flows(terms, 100_000, 300, date(2025, 3, 5), 5)
    assert flows == (DatedFlow(date(2025, 3, 5), 100_000), DatedFlow(date(2025, 3, 25), -101_122))
    start = date(2025, 3, 5)
    assert compute_obligation_cost(start, flows, CostCap(2_400, NOMINAL)).annual_bps == 2_020
    assert compute_obligation_cost(start, flows, CostCap(2_400, EFFECTIVE)).annual_bps == 2_218
    check_obligation_cost(start, flows, CostCap(), field="amount_fen", what="a drawdown")


def test_RevertWhen_a_drawdown_fee_takes_the_cost_above_the_cap() -> None:
    # Same drawdown with a 1% fee (1,000): 101,822 after 20 days, r = 2.733%; nominal
    # 32.796% → 3,280 bps.
    terms = parse_product_terms(cash_product_data())
    start = date(2025, 3, 5)
    flows = compute_drawdown_flows(terms, 100_000, 1_000, start, 5)
    with pytest.raises(CostCapExceededError) as caught:
        check_obligation_cost(
            start, flows, CostCap(2_400, NOMINAL), field="amount_fen", what="a drawdown"
        )
    error = caught.value
    assert (error.code, error.field) == ("cost_cap_exceeded", "amount_fen")
    assert (error.extra["computed_bps"], error.extra["annualization"]) == (3_280, "nominal")
    assert isinstance(error, CreditNetValueError)


@pytest.mark.parametrize(
    ("changes", "field", "nominal_bps"),
    [
        # 100,000 ppm a day (the issue's penalty): 10% a day, 3,650% a year.
        ({"penalty_rate_ppm_per_day": 100_000}, "penalty_rate_ppm_per_day", 365_000),
        # 2,000 ppm a day on a cash loan: 0.2% × 365 = 73% a year.
        (
            {"product_type": "cash_loan", "interest": {"method": "daily_ppm", "rate": 2_000},
             "installment": {"tenors_months": [3], "pricing_method": "annuity", "rate_bps": 1_200}},
            "interest.rate",
            7_300,
        ),
        # A late fee of up to 5% of the unpaid minimum each monthly bill: 60% a year.
        ({"fees": {"late_fee_fixed_fen": 3_000, "late_fee_cap_bps": 500,
                   "late_fee_cap_per_bill_fen": 5_000}}, "fees.late_fee_cap_bps", 6_000),
    ],
)  # fmt: skip
def test_RevertWhen_a_products_rate_is_above_the_cap(
    changes: dict[str, object], field: str, nominal_bps: int
) -> None:
    terms = parse_product_terms(product_data(**changes))
    with pytest.raises(CostCapExceededError) as caught:
        check_product_rates(terms, CostCap(2_400, NOMINAL))
    assert (caught.value.field, caught.value.extra["computed_bps"]) == (field, nominal_bps)
    with pytest.raises(ProductCostAboveCapError) as published:
        parse_product(product_data(**changes))
    assert published.value.field == field


def test_penalty_rate_at_the_cap_passes_and_one_ppm_more_does_not() -> None:
    # Nominal: 657 ppm × 365 = 23.9805% passes; 658 ppm = 24.017% does not.
    # Effective, with monthly compounding (1 + 0.239805 / 12)^12 − 1 = 26.84%: refused.
    within = parse_product_terms(product_data(penalty_rate_ppm_per_day=657))
    check_product_rates(within, CostCap(2_400, NOMINAL))
    with pytest.raises(CostCapExceededError):
        check_product_rates(within, CostCap(2_400, EFFECTIVE))
    above = parse_product_terms(product_data(penalty_rate_ppm_per_day=658))
    with pytest.raises(CostCapExceededError):
        check_product_rates(above, CostCap(2_400, NOMINAL))


def test_publishing_can_use_the_nominal_annualization() -> None:
    # The 12% annuity sample: nominal 12.00% either way; and the flat fee 110 bps plan of
    # test_products that fails effective (24.7104%) passes nominal (22.2869%).
    terms = parse_product(installment_product_data(), annualization=NOMINAL)
    assert terms.product_code == "INST-12"
    data = installment_product_data()
    data["installment"] = {"tenors_months": [3, 6], "pricing_method": "flat_monthly_fee",
                           "rate_bps": 110}  # fmt: skip
    data["limit_fen_min"] = 600_000
    data["limit_fen_max"] = 600_000
    parse_product(data, annualization=NOMINAL)
    with pytest.raises(ProductCostAboveCapError):
        parse_product(data, annualization=EFFECTIVE)
