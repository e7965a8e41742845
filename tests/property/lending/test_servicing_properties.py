"""Servicing properties over random histories, on SQLite and PostgreSQL (issue 15).

- Customer credit and classification: random purchases, payments (over-payments
  included), purchase refunds and credit refunds over 50 business days, on a product
  that classifies, goes non-accrual and charges off early. After every end of day: the
  books balance; a line holding credit has nothing due (billed or past due) and is not
  past due; each line's class is `compute_loan_class` of its days past due; the
  loan-loss allowance less what charge-offs used of it is the sum of the lines'
  provisions; nothing is suspended off
  balance sheet on a line that never went non-accrual.
- Re-ageing: a bill paid in full before its due date by a payment that bounces after it
  leaves the line owing, component by component and in days past due, exactly what a
  twin line that never paid owes on the same day.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.balances import fetch_line_balances, fetch_trial_balance
from node_api.ledger.business_date import set_business_date
from node_api.lending.billing_rules import compute_loan_class
from node_api.lending.core.context import LendingCaches
from node_api.lending.customer_credit import DUE_TYPES, refund_customer_credit
from node_api.lending.eod import EodContext, run_eod
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.purchase_tables import purchase_table
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import reverse_repayment
from tests.integration.lending.eod_helpers import (
    buy,
    eod_product_data,
    node_balance,
    open_eod_line,
    pay,
    reset,
)

OPENED = date(2025, 3, 1)
DAYS = 50
CLASSIFICATION = {"special_mention_days": 1, "substandard_days": 11, "doubtful_days": 21,
                  "loss_days": 31}  # fmt: skip
PRODUCT = eod_product_data(
    "SERV1",
    delinquency={"charge_off_days": 45, "non_accrual_days": 10, "classification": CLASSIFICATION},
)
ALLOWANCE = node_account_code(AccountType.LOAN_LOSS_ALLOWANCE)

operations = st.lists(
    st.tuples(
        st.sampled_from(["buy", "buy", "pay", "refund", "credit_refund", "none", "none"]),
        st.integers(0, 1),
        st.integers(1, 40_000),
    ),
    min_size=DAYS,
    max_size=DAYS,
)


def _check_day(database: Database, caches: LendingCaches, lines: list[int], day: date) -> None:
    with database.engine.connect() as conn:
        assert fetch_trial_balance(conn).balanced, day
        states = fetch_line_states(conn, lines)
        provisions = used = 0
        for line_id in lines:
            balances = fetch_line_balances(conn, line_id)
            state = states[line_id]
            credit_fen = balances.get(AccountType.CUSTOMER_CREDIT, 0)
            if credit_fen > 0:
                assert sum(balances.get(kind, 0) for kind in DUE_TYPES) == 0, (day, line_id)
                assert state.days_past_due == 0, (day, line_id)
            thresholds = caches.products.get(conn, "SERV1", 1).delinquency.classification
            charged = state.charged_off_on is not None
            if state.as_of == day:
                expected = compute_loan_class(state.days_past_due, thresholds, charged)
                assert state.loan_class is expected, (day, line_id)
            if state.non_accrual_since is None and not charged:
                assert balances.get(AccountType.INTEREST_SUSPENDED, 0) >= 0
            provisions += state.provision_fen
            used += balances.get(AccountType.WRITTEN_OFF, 0)
    # A charge-off uses its line's provision (topped up to the loss): the allowance less
    # what charge-offs used (`written_off`) is the lines' provisions.
    assert -node_balance(database, ALLOWANCE) - used == provisions, day


def _operate(
    database: Database, caches: LendingCaches, lines: list[int], ops: tuple[str, int, int]
) -> None:
    kind, index, amount_fen = ops
    line_id = lines[index]
    if kind == "buy":
        buy(database, caches, line_id, amount_fen)
    elif kind == "pay":
        pay(database, caches, line_id, amount_fen)
    elif kind == "refund":
        _refund_latest_purchase(database, caches, line_id, amount_fen)
    elif kind == "credit_refund":
        try:
            with database.engine.begin() as conn:
                refund_customer_credit(
                    conn, caches, line_id=line_id, amount_fen=amount_fen, currency="CNY",
                    as_of=None,
                )  # fmt: skip
        except ConflictError as error:
            assert error.code in ("insufficient_credit", "line_closed")


def _refund_latest_purchase(
    database: Database, caches: LendingCaches, line_id: int, amount_fen: int
) -> None:
    with database.engine.connect() as conn:
        purchase_id = conn.execute(
            select(purchase_table.c.id)
            .where(purchase_table.c.credit_line_id == line_id)
            .order_by(purchase_table.c.id.desc())
        ).scalar()
    if purchase_id is None:
        return
    try:
        with database.engine.begin() as conn:
            refund_purchase(
                conn, caches, line_id=line_id, purchase_id=int(purchase_id),
                amount_fen=amount_fen, as_of=None,
            )  # fmt: skip
    except ConflictError as error:
        assert error.code in ("refund_exceeds_purchase", "line_closed")


@pytest.mark.slow
def test_credit_and_classification_hold_over_random_histories(
    database: Database, request: pytest.FixtureRequest
) -> None:
    @settings(max_examples=2, deadline=None)
    @given(ops=operations)
    def run(ops: list[tuple[str, int, int]]) -> None:
        reset(database, request)
        caches = LendingCaches()
        ctx = EodContext(caches=caches)
        with database.engine.begin() as conn:
            set_business_date(conn, OPENED)
            lines = [
                open_eod_line(conn, caches, OPENED, customer_ref=f"c{i}", data=PRODUCT)
                for i in range(2)
            ]
        for offset, op in enumerate(ops):
            day = OPENED + timedelta(days=offset)
            _operate(database, caches, lines, op)
            run_eod(database, day, ctx=ctx)
            _check_day(database, caches, lines, day)

    run()


def _owed(database: Database, line_id: int) -> dict[str, int]:
    with database.engine.connect() as conn:
        balances = fetch_line_balances(conn, line_id)
        state = fetch_line_states(conn, [line_id])[line_id]

    def total(prefix: str) -> int:
        return sum(fen for kind, fen in balances.items() if kind.value.startswith(prefix))

    return {
        "principal": total("principal_"),
        "principal_past_due": balances.get(AccountType.PRINCIPAL_PAST_DUE, 0),
        "interest": total("interest_") - balances.get(AccountType.INTEREST_SUSPENDED, 0),
        "fee": total("fee_"),
        "penalty": total("penalty_"),
        "days_past_due": state.days_past_due,
    }


@pytest.mark.slow
def test_a_bounced_payment_leaves_the_line_owing_what_a_line_that_never_paid_owes(
    database: Database, request: pytest.FixtureRequest
) -> None:
    @settings(max_examples=2, deadline=None)
    @given(
        purchases=st.lists(st.tuples(st.integers(0, 4), st.integers(100, 60_000)), min_size=1,
                           max_size=4),
        rate_ppm=st.integers(100, 590),
        penalty_ppm=st.integers(0, 590),
        grace_days=st.integers(0, 5),
        late_fee=st.integers(0, 5_000),
        pay_offset=st.integers(1, 20),
        bounce_offset=st.integers(1, 25),
    )  # fmt: skip
    def run(
        purchases: list[tuple[int, int]], rate_ppm: int, penalty_ppm: int, grace_days: int,
        late_fee: int, pay_offset: int, bounce_offset: int,
    ) -> None:  # fmt: skip
        reset(database, request)
        caches = LendingCaches()
        ctx = EodContext(caches=caches)
        data: dict[str, Any] = eod_product_data(
            "TWIN", interest={"method": "daily_ppm", "rate": rate_ppm},
            penalty_rate_ppm_per_day=penalty_ppm, grace_days=grace_days,
            fees={"late_fee_fixed_fen": late_fee, "late_fee_cap_per_bill_fen": late_fee},
        )  # fmt: skip
        with database.engine.begin() as conn:
            set_business_date(conn, OPENED)
            paid_line = open_eod_line(conn, caches, OPENED, customer_ref="a", data=data)
            twin = open_eod_line(conn, caches, OPENED, customer_ref="b", data=data)
        # Purchases 1-5 March (the cycle of the 5 March bill, due 25 March); the bill is
        # paid in full between 6 and 25 March; the payment bounces 26 March - 19 April
        # (before the next due date).
        pay_day = date(2025, 3, 5) + timedelta(days=pay_offset)
        bounce_day = date(2025, 3, 25) + timedelta(days=bounce_offset)
        day = OPENED
        payment = None
        while day < bounce_day:
            for offset, amount_fen in purchases:
                if day == OPENED + timedelta(days=offset):
                    for line_id in (paid_line, twin):
                        buy(database, caches, line_id, amount_fen)
            if day == pay_day:
                payment = pay(database, caches, paid_line, sum(a for _, a in purchases))
            run_eod(database, day, ctx=ctx)
            day += timedelta(days=1)
        assert payment is not None
        with database.engine.begin() as conn:
            reverse_repayment(
                conn, caches, line_id=paid_line, repayment_id=payment.repayment_id, as_of=None
            )
        assert _owed(database, paid_line) == _owed(database, twin)

    run()
