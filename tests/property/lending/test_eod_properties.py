"""End of day over long random histories, on SQLite and PostgreSQL.

Random products (rates, due-date offset, grace days, minimum payment, late fee, penalty,
bill day) and random purchase streams over 400 business days with random repayments:
- the ledger balances after every day's end of day;
- re-running any day (its checkpoints wiped, so every step really runs again) changes
  nothing;
- paying every bill in full by its due date costs no interest, fee or penalty;
- a line repaid in full ends at zero in every account, and stays there (installment
  plans included: some purchases are converted into plans, a few of them cancelled;
  their future installments are prepaid on the early-repayment terms).
Few examples with long streams keep the CI profile's time bounded.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType, node_account_code
from node_api.ledger.balances import fetch_balance_drift, fetch_line_balances, fetch_trial_balance
from node_api.ledger.business_date import set_business_date
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.bills import RECEIVABLE_TYPES
from node_api.lending.core.context import LendingCaches
from node_api.lending.customer_credit import refund_customer_credit
from node_api.lending.eod import EodContext, run_eod
from node_api.lending.eod.tables import eod_batch_table, eod_run_table, eod_step_table
from node_api.lending.installments import cancel_plan, convert_purchase
from tests.integration.lending.eod_helpers import (
    buy,
    eod_product_data,
    node_balance,
    open_eod_line,
    pay,
    reset,
)

OPENED = date(2025, 3, 1)
DAYS = 400
EXAMPLES = 2
RERUN_EVERY = 37
"""Besides the drawn days, every 37th day is run twice (37 walks across bill days)."""

DAILY_PPM_MAX = 594
"""The highest daily rate within the 24% cap, effective: (1 + 594 ppm × 365 / 12)^12 − 1
= 23.99%; 595 ppm is 24.03%. Purchases on a product above the cap are refused."""

products = st.fixed_dictionaries(
    {
        "interest": st.builds(
            lambda rate: {"method": "daily_ppm", "rate": rate, "day_count": "ACT/365"},
            st.integers(100, DAILY_PPM_MAX),
        ),
        "due_date_offset_days": st.integers(5, 25),
        "grace_days": st.integers(0, 5),
        "minimum_payment": st.builds(
            lambda share, floor: {"principal_share_bps": share, "floor_fen": floor},
            st.integers(500, 2_000),
            st.integers(0, 10_000),
        ),
        "penalty_rate_ppm_per_day": st.integers(0, DAILY_PPM_MAX),
        "bill_day": st.integers(1, 28),
        "late_fee": st.integers(0, 5_000),
    }
)


def _open(database: Database, caches: LendingCaches, product: dict[str, Any]) -> int:
    data = eod_product_data(
        **{key: value for key, value in product.items() if key not in ("bill_day", "late_fee")},
        bill_day_options=[product["bill_day"]],
        fees={"late_fee_fixed_fen": product["late_fee"],
              "late_fee_cap_per_bill_fen": product["late_fee"]},
    )  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED, data=data, bill_day=product["bill_day"])


def _owed(database: Database, line_id: int) -> int:
    with database.engine.connect() as conn:
        balances = fetch_line_balances(conn, line_id)
    return sum(balances.get(kind, 0) for kind in RECEIVABLE_TYPES)


def _new_bill(database: Database, line_id: int, day: date) -> Any:
    with database.engine.connect() as conn:
        return conn.execute(
            select(bill_table).where(
                (bill_table.c.credit_line_id == line_id) & (bill_table.c.bill_date == day)
            )
        ).one_or_none()


def _close(database: Database, day: date, ctx: EodContext) -> None:
    run_eod(database, day, ctx=ctx)
    with database.engine.connect() as conn:
        assert fetch_trial_balance(conn).balanced, day


def _fingerprint(database: Database) -> tuple[Any, ...]:
    with database.engine.connect() as conn:
        return tuple(
            conn.execute(text(sql)).scalar()
            for sql in (
                "SELECT count(*) FROM posting",
                "SELECT sum(balance_fen * id) FROM ledger_account",
                "SELECT count(*) FROM bill",
                "SELECT count(*) FROM bill_outcome",
                "SELECT count(*) || ':' || coalesce(sum(amount_fen), 0) FROM bill_charge",
                "SELECT coalesce(sum(days_past_due), 0) FROM line_delinquency",
                "SELECT count(*) FROM installment_plan",
            )
        )


def _rerun(database: Database, day: date, ctx: EodContext) -> None:
    """Run `day` again with its checkpoints wiped: nothing may change."""
    before = _fingerprint(database)
    with database.engine.begin() as conn:
        for table in (eod_batch_table, eod_step_table, eod_run_table):
            conn.execute(delete(table).where(table.c.as_of == day))
    run_eod(database, day, ctx=ctx)
    assert _fingerprint(database) == before, day


def _settle_and_check_zero(
    database: Database, caches: LendingCaches, ctx: EodContext, line_id: int, day: date
) -> None:
    """Pay everything owed, day after day while anything is (what a plan's future
    installments cost on the early-repayment terms, an installment billed the night of
    the payment), and give back any credit left; every account of the line is zero, and
    stays zero."""
    for offset in range(1, 41):
        owed_fen = _owed(database, line_id)
        if owed_fen:
            pay(database, caches, line_id, owed_fen)
        _close(database, day + timedelta(days=offset), ctx)
    with database.engine.connect() as conn:
        credit_fen = fetch_line_balances(conn, line_id).get(AccountType.CUSTOMER_CREDIT, 0)
    if credit_fen:
        with database.engine.begin() as conn:
            refund_customer_credit(
                conn, caches, line_id=line_id, amount_fen=Fen(credit_fen), currency="CNY",
                as_of=None,
            )  # fmt: skip
    _close(database, day + timedelta(days=41), ctx)
    with database.engine.connect() as conn:
        balances = fetch_line_balances(conn, line_id)
        assert fetch_balance_drift(conn) == []
    assert {kind: fen for kind, fen in balances.items() if fen} == {}


@pytest.mark.slow
def test_random_histories_balance_daily_rerun_cleanly_and_end_at_zero(
    database: Database, request: pytest.FixtureRequest
) -> None:
    @settings(max_examples=EXAMPLES)
    @given(product=products, data=st.data())
    def run(product: dict[str, Any], data: st.DataObject) -> None:
        reset(database, request)
        caches = LendingCaches()
        ctx = EodContext(caches=caches)
        line_id = _open(database, caches, product)
        drawn = data.draw(st.lists(st.integers(0, DAYS - 1), min_size=3, max_size=8, unique=True))
        reruns = set(drawn) | set(range(RERUN_EVERY - 1, DAYS, RERUN_EVERY))
        plans: dict[date, int] = {}
        skipped = 0
        for offset in range(DAYS):
            day = OPENED + timedelta(days=offset)
            if data.draw(st.integers(0, 9)) < 3:
                purchase_id = buy(
                    database, caches, line_id, data.draw(st.integers(100, 60_000)), day
                )
                _maybe_convert(database, caches, data, line_id, purchase_id)
            owed_fen = _owed(database, line_id) if day in plans else 0
            if owed_fen:
                pay(database, caches, line_id, min(plans[day], owed_fen), day)
            _close(database, day, ctx)
            if offset in reruns:
                _rerun(database, day, ctx)
            bill = _new_bill(database, line_id, day)
            if bill is not None and bill.statement_balance_fen > 0:
                skipped = _plan_payment(data, bill, plans, skipped)
        _settle_and_check_zero(database, caches, ctx, line_id, OPENED + timedelta(days=DAYS - 1))

    run()


def _maybe_convert(
    database: Database, caches: LendingCaches, data: st.DataObject, line_id: int, purchase_id: int
) -> None:
    """Now and then turn a purchase into installments (the product offers 3, 6 or 12
    months), and sometimes repay or cancel the plan later the same day."""
    tenor = data.draw(st.sampled_from([0, 0, 0, 3, 6, 12]))
    if tenor == 0:
        return
    with database.engine.begin() as conn:
        plan = convert_purchase(
            conn, caches, line_id=line_id, purchase_id=purchase_id, tenor_months=tenor
        )
    ending = data.draw(st.sampled_from(["keep", "keep", "cancel"]))
    if ending == "cancel":
        # On a bill date the first installment is billed tonight: cancelling is refused.
        with suppress(ConflictError), database.engine.begin() as conn:
            cancel_plan(conn, caches, line_id=line_id, plan_id=plan.id)


def _plan_payment(data: st.DataObject, bill: Any, plans: dict[date, int], skipped: int) -> int:
    """Choose how the customer pays a bill: in full, the minimum, part of it, or nothing,
    on time or up to 6 days late. After two bills left short of their minimum the next
    minimum is paid on time (it clears everything past due), so the line is never
    charged off. Returns how many bills running were left short."""
    statement_fen, minimum_fen = int(bill.statement_balance_fen), int(bill.minimum_payment_fen)
    window = (bill.due_date - bill.bill_date).days
    if skipped >= 2:
        when = bill.bill_date + timedelta(days=data.draw(st.integers(1, max(window, 1))))
        plans[when] = plans.get(when, 0) + max(minimum_fen, 1)
        return 0
    # The simplest draw is the most eventful: a part payment of 1 fen, on time.
    choice = data.draw(st.sampled_from(["part", "minimum", "none", "full"]))
    amount_fen = {
        "full": statement_fen,
        "minimum": minimum_fen,
        "part": data.draw(st.integers(1, max(statement_fen, 1))),
        "none": 0,
    }[choice]
    late_days = data.draw(st.integers(0, 6))
    when = bill.bill_date + timedelta(days=data.draw(st.integers(1, max(window, 1))) + late_days)
    if amount_fen > 0:
        plans[when] = plans.get(when, 0) + amount_fen
    short = amount_fen < minimum_fen or late_days > 0
    return skipped + 1 if short else 0


@pytest.mark.slow
def test_paying_every_bill_in_full_by_its_due_date_costs_no_interest(
    database: Database, request: pytest.FixtureRequest
) -> None:
    @settings(max_examples=EXAMPLES)
    @given(product=products, data=st.data())
    def run(product: dict[str, Any], data: st.DataObject) -> None:
        reset(database, request)
        caches = LendingCaches()
        ctx = EodContext(caches=caches)
        line_id = _open(database, caches, product)
        plans: dict[date, int] = {}
        for offset in range(DAYS):
            day = OPENED + timedelta(days=offset)
            if data.draw(st.integers(0, 9)) < 4:
                buy(database, caches, line_id, data.draw(st.integers(100, 80_000)), day)
            if plans.get(day):
                pay(database, caches, line_id, plans.pop(day), day)
            _close(database, day, ctx)
            bill = _new_bill(database, line_id, day)
            if bill is not None and bill.statement_balance_fen > 0:
                window = (bill.due_date - bill.bill_date).days
                when = day + timedelta(days=data.draw(st.integers(1, max(window, 1))))
                plans[when] = plans.get(when, 0) + int(bill.statement_balance_fen)
        for kind in (
            AccountType.INTEREST_INCOME,
            AccountType.FEE_INCOME,
            AccountType.PENALTY_INCOME,
        ):
            assert node_balance(database, node_account_code(kind)) == 0, kind
        with database.engine.connect() as conn:
            unpaid = conn.execute(
                select(func.count()).where(~bill_outcome_table.c.paid_in_full)
            ).scalar_one()
        assert unpaid == 0
        _settle_and_check_zero(database, caches, ctx, line_id, OPENED + timedelta(days=DAYS - 1))

    run()
