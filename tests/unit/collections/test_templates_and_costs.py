"""Templates name case facts only; hardship plans are priced like products (worked
examples)."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.collections.hardship import check_plan_cost, compute_plan_cost
from node_api.collections.model import Party, PlanKind
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.templates import (
    CaseFacts,
    TemplateView,
    check_body,
    format_yuan,
    render,
)
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.lending.products.validation import ProductCostAboveCapError


def test_a_body_renders_the_case_facts() -> None:
    body = "{past_due_yuan} of {outstanding_yuan} yuan, {days_past_due} days ({bucket}); {{ok}}"
    check_body(body, Party.BORROWER)
    template = TemplateView(
        id=1, code="t", version=1, channel="sms", party="borrower", body=body,
        status="approved", created_on=date(2025, 7, 1), created_by="w", approved_on=None,
        approved_by=None,
    )  # fmt: skip
    facts = CaseFacts(Fen(52_005), Fen(480_000), 35, "M2")
    assert render(template, facts) == "520.05 of 4800.00 yuan, 35 days (M2); {ok}"
    assert format_yuan(-5) == "-0.05"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("hello {name}", "template_placeholder_unknown"),
        ("{past_due_yuan.__class__}", "template_placeholder_unknown"),
        ("{past_due_yuan!r}", "template_placeholder_unknown"),
        ("{days_past_due:>10}", "template_placeholder_unknown"),
        ("unbalanced {", "invalid_value"),
        ("   ", "invalid_value"),
        ("x" * 501, "invalid_value"),
    ],
)
def test_RevertWhen_a_body_names_anything_but_case_facts(body: str, code: str) -> None:
    with pytest.raises(CreditNetValueError) as info:
        check_body(body, Party.BORROWER)
    assert info.value.code == code


def test_RevertWhen_a_message_to_the_emergency_contact_discloses_the_debt() -> None:
    check_body("Please ask the borrower to call us back.", Party.EMERGENCY_CONTACT)
    with pytest.raises(CreditNetValueError) as info:
        check_body("They owe {past_due_yuan} yuan.", Party.EMERGENCY_CONTACT)
    assert info.value.code == "template_discloses_debt"


def test_a_reaged_plan_at_12_percent_costs_12_68_percent_effective() -> None:
    # Annuity over 12 months at 1% a month, no fee: the IRR is exactly 1% a month, so
    # nominal 12.00% and effective 1.01^12 - 1 = 12.6825...% -> 1,268 bps.
    rates = compute_plan_cost(PlanKind.REAGED_INSTALLMENTS, 480_000, 12, 1_200, 0)
    assert (rates.nominal_bps, rates.effective_bps) == (1_200, 1_268)


def test_a_payment_holiday_costs_its_interest_and_fee() -> None:
    # 100,000 fen for 3 months at 12% simple: interest 100,000 x 1,200 x 3 / 120,000 =
    # 3,000 fen, repaid at month 3. Monthly IRR 1.03^(1/3) - 1, effective 1.03^4 - 1 =
    # 12.5509% -> 1,255 bps. A fee of 2,000 fen taken upfront: flows 98,000 / 0 / 0 /
    # -103,000, effective (103/98)^4 - 1 = 22.02% (within the 24% cap); of 3,000 fen:
    # (103/97)^4 - 1 = 27.13%, above it.
    assert compute_plan_cost(PlanKind.PAYMENT_HOLIDAY, 100_000, 3, 1_200, 0).effective_bps == 1_255
    within = compute_plan_cost(PlanKind.PAYMENT_HOLIDAY, 100_000, 3, 1_200, 2_000)
    assert within.effective_bps == 2_202
    check_plan_cost(CollectionsPolicy(), within)
    with_fee = compute_plan_cost(PlanKind.PAYMENT_HOLIDAY, 100_000, 3, 1_200, 3_000)
    assert with_fee.effective_bps == 2_713
    with pytest.raises(ProductCostAboveCapError) as info:
        check_plan_cost(CollectionsPolicy(), with_fee)
    assert (info.value.code, info.value.field, info.value.extra["cap_bps"]) == (
        "product_cost_above_cap", "rate_bps", 2_400,
    )  # fmt: skip


def test_a_free_holiday_costs_nothing() -> None:
    rates = compute_plan_cost(PlanKind.PAYMENT_HOLIDAY, 100_000, 2, 0, 0)
    assert (rates.nominal_bps, rates.effective_bps) == (0, 0)


@pytest.mark.parametrize(
    ("kind", "principal", "term", "fee", "field"),
    [
        (PlanKind.PAYMENT_HOLIDAY, 100_000, 7, 0, "term_months"),
        (PlanKind.REAGED_INSTALLMENTS, 100_000, 0, 0, "term_months"),
        (PlanKind.REAGED_INSTALLMENTS, 0, 12, 0, "principal_fen"),
        (PlanKind.REAGED_INSTALLMENTS, 100_000, 12, 100_000, "fee_fen"),
    ],
)
def test_RevertWhen_a_plan_is_malformed(
    kind: PlanKind, principal: int, term: int, fee: int, field: str
) -> None:
    with pytest.raises(CreditNetValueError) as info:
        compute_plan_cost(kind, principal, term, 1_200, fee)
    assert info.value.field == field
