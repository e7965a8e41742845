"""Issue 15 on both databases, worked by hand: daily accrual carried exactly, end of day
closing every day an operator skipped, and the cost cap refusing a plan at booking.

Product (see `eod_product_data`): 500 ppm a day, bill day 5, due 20 days later; here
without an interest-free period, so principal accrues from the day it is posted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.schema import posting_batch_table, posting_table
from node_api.lending.bill_tables import bill_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod_through
from node_api.lending.eod.carry import AccrualComponent, fetch_carries
from node_api.lending.eod.checkpoint import fetch_unfinished_run
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.runner import move_business_date
from node_api.lending.eod.scheduler import EodPolicy, EodSchedule, run_scheduled_once
from node_api.lending.installment_tables import installment_plan_table, installment_table
from node_api.lending.installments import convert_purchase
from node_api.lending.interest import AccrualCarry
from node_api.lending.products.cost_cap import CostCapExceededError
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    open_eod_line,
)

OPENED = date(2025, 3, 6)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    """A line opened 6 March (bill day 5: the next bill is 5 April) on a product that
    accrues from day one, with 3,000 fen bought on 6 March: exactly 1.5 fen a day."""
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line = open_eod_line(
            conn, caches, OPENED, data=eod_product_data("ACCR", free_interest_days=0)
        )
    buy(database, caches, line, 3_000)
    return line


def _accrued_by_day(database: Database, kind: str = "eod_accrue") -> list[tuple[date, int]]:
    """What a step (the accrual step by default) charged, per business date."""
    batches, postings = posting_batch_table, posting_table
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(batches.c.as_of, func.sum(postings.c.amount_fen))
            .join(postings, postings.c.batch_id == batches.c.id)
            .where((batches.c.kind == kind) & (postings.c.amount_fen > 0))
            .group_by(batches.c.as_of)
            .order_by(batches.c.as_of)
        )
        return [(day, int(total)) for day, total in rows]


def test_ten_days_of_accrual_post_the_exact_interest_rounded_once(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    # 6 to 15 March: 10 days × 1.5 fen = 15 fen. Each day rounded half-even on its own
    # posted 2 fen a day (20 fen); carried, the days post 2, 1, 1, 2, 2, 1, 1, 2, 2, 1.
    run_eod_through(database, date(2025, 3, 15))
    assert [fen for _, fen in _accrued_by_day(database)] == [2, 1, 1, 2, 2, 1, 1, 2, 2, 1]
    assert balances(database, line_id)["interest_unbilled"] == 15
    with database.engine.connect() as conn:
        (stored,) = fetch_carries(conn, AccrualComponent.INTEREST, [line_id]).values()
        check_ledger(conn)
    # The running total, 15 fen, modulo 2 fen: 1 fen = 1,000,000 / 1,000,000.
    assert (stored.carry, stored.as_of) == (AccrualCarry(1_000_000, 1_000_000), date(2025, 3, 15))
    # Running the last date again posts and carries nothing more.
    run_eod_through(database, date(2025, 3, 15))
    assert balances(database, line_id)["interest_unbilled"] == 15


def test_penalty_interest_is_carried_too(database: Database, caches: LendingCaches) -> None:
    # The product's own terms (50 interest-free days, penalty 500 ppm a day, 3 grace
    # days, minimum 10% with a 5,000 floor). 30,000 bought on 1 March, billed 5 March,
    # due 25 March, nothing paid: the 5,000 minimum goes past due, 2.5 fen of penalty a
    # day. 29 March (first day past grace) charges the 4-day run, 10 fen; then the
    # running total 12.5, 15, 17.5 rounds to 12, 15, 18: 2, 3, 3 fen (each day rounded
    # alone gave 2, 2, 2: 16 instead of 18 for 7 days of 2.5 fen = 17.5).
    opened = date(2025, 3, 1)
    with database.engine.begin() as conn:
        set_business_date(conn, opened)
        line = open_eod_line(conn, caches, opened)
    buy(database, caches, line, 30_000)
    run_eod_through(database, date(2025, 4, 1))
    assert _accrued_by_day(database, "eod_delinquency") == [
        (date(2025, 3, 29), 10), (date(2025, 3, 30), 2), (date(2025, 3, 31), 3),
        (date(2025, 4, 1), 3),
    ]  # fmt: skip
    assert balances(database, line)["penalty_past_due"] == 18
    with database.engine.connect() as conn:
        (stored,) = fetch_carries(conn, AccrualComponent.PENALTY, [line]).values()
    assert stored.carry == AccrualCarry(1_500_000, 1_000_000)  # 17.5 mod 2 = 1.5 fen


def test_end_of_day_closes_every_day_the_operator_skipped(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    # The operator moves the business date from 6 to 9 March: 6, 7 and 8 March were never
    # closed. The next run closes them first, in order, then 9 March: 4 days of 1.5 fen.
    with database.engine.begin() as conn:
        move_business_date(conn, date(2025, 3, 9))
        assert fetch_unfinished_run(conn) == OPENED
    summaries = run_eod_through(database, date(2025, 3, 9))
    assert [summary.as_of for summary in summaries] == [
        date(2025, 3, 6), date(2025, 3, 7), date(2025, 3, 8), date(2025, 3, 9)
    ]  # fmt: skip
    assert _accrued_by_day(database) == [
        (date(2025, 3, 6), 2), (date(2025, 3, 7), 1), (date(2025, 3, 8), 1), (date(2025, 3, 9), 2)
    ]  # fmt: skip
    with database.engine.connect() as conn:
        assert fetch_business_date(conn) == date(2025, 3, 10)
        assert fetch_unfinished_run(conn) is None


def test_the_calendar_scheduler_closes_skipped_days_before_the_business_date(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    # Business date moved to 12 March; at 01:00 on 9 March (Shanghai) the calendar policy
    # closes through 8 March: the skipped 6, 7 and 8 March, although the business date
    # itself is still ahead of the calendar.
    with database.engine.begin() as conn:
        move_business_date(conn, date(2025, 3, 12))
    schedule = EodSchedule(policy=EodPolicy.CALENDAR, timezone="Asia/Shanghai", cutoff=time(0, 30))
    now = datetime(2025, 3, 8, 17, 0, tzinfo=UTC)  # 01:00 on 9 March in Shanghai
    summaries = run_scheduled_once(database, schedule, EodContext(), now, now)
    assert [summary.as_of.day for summary in summaries] == [6, 7, 8]
    with database.engine.connect() as conn:
        assert fetch_unfinished_run(conn) == date(2025, 3, 9)
        assert fetch_business_date(conn) == date(2025, 3, 12)


def test_RevertWhen_a_plan_conversion_costs_more_than_the_cap(
    database: Database, caches: LendingCaches
) -> None:
    # The plan: 100 yuan over 12 months at a 5-yuan (500 bps) monthly fee, on a
    # product registered before the cap was checked at booking. Converted on 6 March,
    # its installments are billed from 5 April and due from 25 April (1 month 19 days,
    # then monthly): 1,337 then 1,333 × 11. r = 7.23787% a month: nominal 86.8545%,
    # effective 131.3015% → 13,131 bps rounded up, far above 24%.
    data = eod_product_data("FEE5")
    data["installment"] = {"tenors_months": [12], "pricing_method": "flat_monthly_fee",
                           "rate_bps": 500}  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line = open_eod_line(conn, caches, OPENED, data=data)
    use_id = buy(database, caches, line, 10_000)
    with database.engine.connect() as conn:
        postings_before = conn.execute(select(func.count()).select_from(posting_table)).scalar()
    with database.engine.begin() as conn, pytest.raises(CostCapExceededError) as caught:
        convert_purchase(conn, caches, line_id=line, purchase_id=use_id, tenor_months=12)
    error = caught.value
    assert (error.code, error.field) == ("cost_cap_exceeded", "tenor_months")
    assert (error.extra["computed_bps"], error.extra["cap_bps"]) == (13_131, 2_400)
    assert "first due 2025-04-25" in error.detail
    with database.engine.connect() as conn:
        for table in (installment_plan_table, installment_table, posting_table):
            count = conn.execute(select(func.count()).select_from(table)).scalar()
            assert count == (postings_before if table is posting_table else 0)


def test_a_plan_within_the_cap_converts(database: Database, caches: LendingCaches) -> None:
    # The same purchase on the 12% annuity plan of `eod_product_data` converts.
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line = open_eod_line(conn, caches, OPENED)
    use_id = buy(database, caches, line, 10_000)
    with database.engine.begin() as conn:
        plan = convert_purchase(conn, caches, line_id=line, purchase_id=use_id, tenor_months=3)
    assert [item.due_date for item in plan.installments] == [
        date(2025, 4, 25), date(2025, 5, 25), date(2025, 6, 25)
    ]  # fmt: skip


def test_billed_installments_not_yet_due_accrue_no_revolving_interest(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    # Besides the 3,000 of revolving principal (1.5 fen a day from 6 March), 10,000 bought
    # on 6 March is converted into a 3-month plan: its first installment is billed on 5
    # April and due 25 April, priced by the plan. Through 10 April (36 days) revolving
    # interest is 36 × 1.5 = 54 fen, exactly; charging the billed installment principal
    # too (about 3,300 fen) would have added some 1.65 fen a day from 6 April.
    use_id = buy(database, caches, line_id, 10_000)
    with database.engine.begin() as conn:
        convert_purchase(conn, caches, line_id=line_id, purchase_id=use_id, tenor_months=3)
    run_eod_through(database, date(2025, 4, 10))
    assert sum(fen for _, fen in _accrued_by_day(database)) == 54
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_RevertWhen_a_plan_would_leave_an_installment_without_principal(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    # 2 fen over 3 months would be 0, 1, 1 of principal: refused (at least 1 fen each).
    use_id = buy(database, caches, line_id, 2)
    with database.engine.begin() as conn, pytest.raises(CreditNetValueError) as caught:
        convert_purchase(conn, caches, line_id=line_id, purchase_id=use_id, tenor_months=3)
    assert (caught.value.code, caught.value.field) == ("plan_below_minimum", "tenor_months")
    assert caught.value.extra["minimum_fen"] == 3
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(installment_plan_table)).scalar() == 0


def test_RevertWhen_a_plan_is_below_the_products_minimum(
    database: Database, caches: LendingCaches
) -> None:
    data = eod_product_data("MINPLAN")
    data["installment"] = {**data["installment"], "min_principal_fen": 50_000,
                           "tenors_months": [3, 36]}  # fmt: skip
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line = open_eod_line(conn, caches, OPENED, data=data)
    small = buy(database, caches, line, 49_999)
    with database.engine.begin() as conn, pytest.raises(CreditNetValueError) as caught:
        convert_purchase(conn, caches, line_id=line, purchase_id=small, tenor_months=3)
    assert caught.value.extra["minimum_fen"] == 50_000
    # 36 months is a tenor now: 50,000 over 36 months converts.
    big = buy(database, caches, line, 50_000)
    with database.engine.begin() as conn:
        plan = convert_purchase(conn, caches, line_id=line, purchase_id=big, tenor_months=36)
    assert len(plan.installments) == 36
    assert sum(item.principal_fen for item in plan.installments) == 50_000


def test_a_bill_day_of_31_bills_on_each_months_last_day_when_shorter(
    database: Database, caches: LendingCaches
) -> None:
    # Opened 20 January with bill day 31: bills on 31 January, 28 February (the month's
    # last day) and 31 March, each due 20 days later. 10,000 bought on 20 January is on
    # the January bill; 5,000 bought on 28 February, converted into a 3-month plan that
    # day, is billed 28 February, 31 March and 30 April (not 28 March and 28 April).
    opened = date(2025, 1, 20)
    with database.engine.begin() as conn:
        set_business_date(conn, opened)
        line = open_eod_line(
            conn, caches, opened, data=eod_product_data("EOM", bill_day_options=[31]),
            bill_day=31,
        )  # fmt: skip
    buy(database, caches, line, 10_000)
    run_eod_through(database, date(2025, 2, 27))
    use_id = buy(database, caches, line, 5_000)
    with database.engine.begin() as conn:
        plan = convert_purchase(conn, caches, line_id=line, purchase_id=use_id, tenor_months=3)
    run_eod_through(database, date(2025, 3, 31))
    with database.engine.connect() as conn:
        bills = conn.execute(
            select(bill_table.c.bill_date, bill_table.c.cycle_start, bill_table.c.due_date)
            .where(bill_table.c.credit_line_id == line)
            .order_by(bill_table.c.bill_date)
        ).all()
        billed = conn.execute(
            select(installment_table.c.bill_date)
            .where(installment_table.c.plan_id == plan.id)
            .order_by(installment_table.c.number)
        ).scalars().all()  # fmt: skip
        check_ledger(conn)
    assert [tuple(row) for row in bills] == [
        (date(2025, 1, 31), date(2025, 1, 20), date(2025, 2, 20)),
        (date(2025, 2, 28), date(2025, 2, 1), date(2025, 3, 20)),
        (date(2025, 3, 31), date(2025, 3, 1), date(2025, 4, 20)),
    ]
    assert billed == [date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]
