"""Installment plans as pure data: worked schedules with figures computed by hand, and
the dates each installment is billed and due on."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.installment_store import (
    PlanDraft,
    PlanInstallment,
    PlanSource,
    compute_installment_rows,
    get_plan_schedule,
)
from node_api.lending.products import ProductTerms, parse_product_terms
from node_api.lending.schedules import PayoffKind, compute_early_repayment_quote
from tests.unit.lending.samples import installment_product_data

START = date(2025, 3, 10)
FIRST_BILL = date(2025, 4, 5)


def _terms(**installment: Any) -> ProductTerms:
    data = installment_product_data()
    data["installment"].update(installment)
    return parse_product_terms(data)


def _rows(terms: ProductTerms, principal_fen: int, tenor_months: int) -> list[PlanInstallment]:
    draft = PlanDraft(
        7, "cust-7", PlanSource.PURCHASE, 1, terms, principal_fen, tenor_months, START, FIRST_BILL
    )
    return compute_installment_rows(draft)


def _parts(rows: list[PlanInstallment]) -> list[tuple[int, int, int]]:
    return [(row.principal_fen, row.interest_fen, row.fee_fen) for row in rows]


def test_annuity_plan_of_three_months_at_twelve_percent_matches_the_hand_figures() -> None:
    # r = 12% / 12 = 1% a month. Payment = P·r / (1 − 1.01^−3) = 1,200 / 0.0294098...
    #   = 40,802.65 fen → 40,803 (half-even).
    # 1: interest 120,000 × 1% = 1,200; principal 40,803 − 1,200 = 39,603; left 80,397.
    # 2: interest 803.97 → 804; principal 39,999; left 40,398.
    # 3: interest 403.98 → 404; principal = what is left, 40,398 (payment 40,802: the last
    #    installment absorbs the rounding).
    rows = _rows(
        _terms(tenors_months=[3, 6, 12], pricing_method="annuity", rate_bps=1200), 120_000, 3
    )
    assert _parts(rows) == [(39_603, 1_200, 0), (39_999, 804, 0), (40_398, 404, 0)]
    assert sum(row.principal_fen for row in rows) == 120_000


def test_annuity_payment_of_a_year_plan_is_the_annuity_formula_rounded_half_even() -> None:
    # 1,200,000 over 12 months at 1% a month: 12,000 / (1 − 1.01^−12) = 12,000 / 0.1125508
    #   = 106,618.55 → 106,619; first interest 12,000, first principal 94,619.
    rows = _rows(_terms(), 1_200_000, 12)
    assert rows[0].principal_fen + rows[0].interest_fen == 106_619
    assert _parts(rows)[0] == (94_619, 12_000, 0)
    assert all(row.principal_fen + row.interest_fen == 106_619 for row in rows[:-1])
    assert sum(row.principal_fen for row in rows) == 1_200_000


def test_equal_principal_plan_puts_the_remainder_on_the_first_installment() -> None:
    # 100,000 / 3 = 33,333 remainder 1 → 33,334, 33,333, 33,333.
    # Interest at 1% a month on the balance: 1,000; 66,666 × 1% = 666.66 → 667;
    # 33,333 × 1% = 333.33 → 333.
    rows = _rows(_terms(pricing_method="equal_principal", rate_bps=1200), 100_000, 3)
    assert _parts(rows) == [(33_334, 1_000, 0), (33_333, 667, 0), (33_333, 333, 0)]


def test_flat_fee_plan_charges_the_monthly_fee_on_the_original_principal() -> None:
    # 100,000 / 6 = 16,666 remainder 4 → first part 16,670. Fee 0.6% of 100,000 = 600 every
    # month, plus the product's fixed 100 per installment = 700.
    data = installment_product_data()
    data["installment"].update(pricing_method="flat_monthly_fee", rate_bps=60, tenors_months=[6])
    data["fees"]["installment_fee_fen"] = 100
    rows = _rows(parse_product_terms(data), 100_000, 6)
    assert _parts(rows) == [(16_670, 0, 700)] + [(16_666, 0, 700)] * 5


def test_installments_are_billed_monthly_from_the_first_bill_and_due_after_the_offset() -> None:
    rows = _rows(_terms(), 90_000, 3)
    assert [row.bill_date for row in rows] == [FIRST_BILL, date(2025, 5, 5), date(2025, 6, 5)]
    # The product's due-date offset is 20 days.
    assert [row.due_date for row in rows] == [
        date(2025, 4, 25),
        date(2025, 5, 25),
        date(2025, 6, 25),
    ]
    assert {row.status for row in rows} == {"scheduled"}


def test_RevertWhen_the_tenor_is_not_offered_by_the_product() -> None:
    with pytest.raises(CreditNetValueError) as error:
        _rows(_terms(tenors_months=[3, 6]), 90_000, 12)
    assert error.value.field == "tenor_months"


def test_early_repayment_quote_counts_installments_due_on_their_bill_dates() -> None:
    # Plan of 120,000 over 3 months; the first installment was billed on 5 April, so on
    # 15 April the quote is the principal still in the plan, 80,397, plus interest on it
    # from 5 April for 10 days at 12%/365 = 264.32 → 264 (below the next installment's
    # 804), plus the 1% early repayment fee: 803.97 → 804.
    terms = _terms(tenors_months=[3, 6, 12], pricing_method="annuity", rate_bps=1200)
    row = type("Row", (), {
        "principal_fen": 120_000, "tenor_months": 3, "pricing_method": "annuity",
        "rate_bps": 1200, "start_date": START, "first_bill_date": FIRST_BILL,
        "installment_fee_fen": 0,
    })  # fmt: skip
    schedule = get_plan_schedule(row)
    quote = compute_early_repayment_quote(
        schedule, date(2025, 4, 15), 1, terms.fees.early_repayment_fee_bps
    )
    assert quote.kind is PayoffKind.EARLY_REPAYMENT
    assert (quote.principal_fen, quote.interest_fen, quote.fee_fen) == (80_397, 264, 804)
