"""Plan prepayment and re-amortization over random amounts, on SQLite and PostgreSQL
(issue 15, item 4).

A 90,000 fen purchase converted into a 3- or 6-month plan at 12% a year (1% early
repayment fee), optionally part refunded, then a payment of any size 0-3 days after the
conversion (before the first bill), optionally bounced. After each step the books
balance, limit usage equals open principal, and the plan schedules exactly the line's
unbilled principal. The payment prepays the largest principal p whose early-repayment
charges fit in it (interest p × 12% × days / 365 half-even, capped at the first
installment's interest; fee 1% of p half-even), the rest is customer credit, and the
installments left are the plan's own amortization of what remains over the same count,
shortened when that would leave an installment without principal (the product has no
minimum plan amount, so at least 1 fen each, `installment_store.reamortize_installments`):
over the most installments, earliest first, that each carry a fen, the later ones paid
off. A bounce puts the installments and the balances back exactly as before the payment.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from node_api.kernel.db import Database
from node_api.kernel.money import Fen
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.context import LendingCaches
from node_api.lending.installment_store import (
    fetch_plan,
    fetch_plan_unbilled_principal,
)
from node_api.lending.installments import convert_purchase
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import reverse_repayment
from node_api.lending.schedules import PricingMethod, compute_amortization
from tests.integration.lending.eod_helpers import balances, buy, open_eod_line, pay, reset
from tests.integration.lending.helpers import check_books

OPENED = date(2025, 3, 1)


def _half_even(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).quantize(0, ROUND_HALF_EVEN))


def _charges(principal_fen: int, days: int, interest_cap_fen: int) -> int:
    interest_fen = min(_half_even(principal_fen * 1_200 * days, 10_000 * 365), interest_cap_fen)
    return interest_fen + _half_even(principal_fen * 100, 10_000)


def _re_amortized(principal_fen: int, count: int) -> list[tuple[int, int, int, str]]:
    """`principal_fen` over the most of `count` installments that each carry a fen of
    principal (the earliest; at least one), the rest paid off with nothing on them."""
    kept = count
    while True:
        lines = compute_amortization(Fen(principal_fen), kept, PricingMethod.ANNUITY, 1_200)
        if kept == 1 or min(line.principal_fen for line in lines) >= 1:
            break
        kept -= 1
    rows = [(a.principal_fen, a.interest_fen, 0, "scheduled") for a in lines]
    return rows + [(0, 0, 0, "paid_off")] * (count - kept)


def _rows(database: Database, line_id: int, plan_id: int) -> list[tuple[int, int, int, str]]:
    with database.engine.connect() as conn:
        plan = fetch_plan(conn, line_id, plan_id)
    return [(i.principal_fen, i.interest_fen, i.fee_fen, i.status.value) for i in plan.installments]


def _check(database: Database, line_id: int) -> None:
    with database.engine.connect() as conn:
        check_books(conn, [line_id])
        planned_fen = fetch_plan_unbilled_principal(conn, [line_id]).get(line_id, 0)
    assert planned_fen == balances(database, line_id).get("principal_unbilled", 0)


def test_prepayments_take_the_early_repayment_terms_and_re_amortize(
    database: Database, request: pytest.FixtureRequest
) -> None:
    @settings(max_examples=6, deadline=None)
    # Found by random (non-derandomized) runs; CI's derandomized runs never reach them:
    # 2 fen left over 3 installments (the re-amortization is shortened: 1, 1 and the
    # third paid off),
    @example(tenor=3, refund_fen=38_649, days=0, pay_fen=51_862, bounce=False)
    # a payment that pays the plan off, then bounces (the plan reopened with its principal
    # once, not twice),
    @example(tenor=3, refund_fen=38_651, days=0, pay_fen=51_862, bounce=True)
    # 2 fen left over 6 installments, then the bounce.
    @example(tenor=6, refund_fen=38_649, days=0, pay_fen=51_862, bounce=True)
    @given(
        tenor=st.sampled_from([3, 6]),
        refund_fen=st.integers(0, 60_000),
        days=st.integers(0, 3),
        pay_fen=st.integers(1, 100_000),
        bounce=st.booleans(),
    )
    def run(tenor: int, refund_fen: int, days: int, pay_fen: int, bounce: bool) -> None:
        reset(database, request)
        caches = LendingCaches()
        with database.engine.begin() as conn:
            set_business_date(conn, OPENED)
            line_id = open_eod_line(conn, caches, OPENED)
        purchase_id = buy(database, caches, line_id, 90_000)
        with database.engine.begin() as conn:
            plan = convert_purchase(
                conn, caches, line_id=line_id, purchase_id=purchase_id, tenor_months=tenor
            )
            set_business_date(conn, OPENED + timedelta(days=days))
            if refund_fen:
                refund_purchase(
                    conn, caches, line_id=line_id, purchase_id=purchase_id,
                    amount_fen=Fen(refund_fen), as_of=None,
                )  # fmt: skip
        _check(database, line_id)
        held_fen = 90_000 - refund_fen
        expected = compute_amortization(Fen(held_fen), tenor, PricingMethod.ANNUITY, 1_200)
        before = _rows(database, line_id, plan.id)
        assert before == [(a.principal_fen, a.interest_fen, 0, "scheduled") for a in expected]
        owed_before = balances(database, line_id)

        payment = pay(database, caches, line_id, pay_fen)
        _check(database, line_id)
        paid = {a.account: a.amount_fen for a in payment.allocations}
        prepaid_fen = paid.get("principal_unbilled", 0)
        charged_fen = paid.get("interest_income", 0) + paid.get("fee_income", 0)
        cap_fen = expected[0].interest_fen
        assert charged_fen == _charges(prepaid_fen, days, cap_fen)
        assert prepaid_fen + charged_fen + payment.customer_credit_fen == pay_fen
        if prepaid_fen < held_fen:  # the next fen of principal would not fit
            assert prepaid_fen + 1 + _charges(prepaid_fen + 1, days, cap_fen) > pay_fen
        after = _rows(database, line_id, plan.id)
        if prepaid_fen == held_fen:
            assert {status for *_, status in after} == {"paid_off"}
        else:
            assert after == _re_amortized(held_fen - prepaid_fen, tenor)

        if bounce:
            with database.engine.begin() as conn:
                reverse_repayment(
                    conn, caches, line_id=line_id, repayment_id=payment.repayment_id, as_of=None
                )
            _check(database, line_id)
            assert _rows(database, line_id, plan.id) == before
            assert balances(database, line_id) == owed_before

    run()
