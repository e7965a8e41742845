"""End of day on both databases, with worked examples computed by hand: a bill paid in
full (no interest), a missed due date (past due, interest from each posting date, late
fee, penalty interest, ageing), a partial repayment (on time but revolving), a
charge-off, and re-running a date.

Product (see `eod_product_data`): 500 ppm a day (0.05%), bill day 5, due 20 days later,
3 grace days, minimum 10% of principal (floor 5,000), late fee 3,000, penalty 500 ppm a
day on past-due principal and interest; 70% funded by bank-a. The line opens 1 March.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.kernel.money import Fen
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import AccountType, funding_payable_code, node_account_code
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.schema import posting_batch_table, settlement_event_table
from node_api.lending.bill_views import (
    BillOutcomeView,
    BillView,
    fetch_bill,
    fetch_bills,
    fetch_delinquency,
)
from node_api.lending.bureau import write_bureau_file
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod import run_eod, run_eod_through
from node_api.lending.lines import fetch_line
from node_api.lending.portfolio import fetch_portfolio_summary
from node_api.lending.purchase_tables import purchase_table
from node_api.onboarding.tables import application_table
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    node_balance,
    open_eod_line,
    pay,
    snapshot,
)

OPENED = date(2025, 3, 1)
INTEREST_INCOME = node_account_code(AccountType.INTEREST_INCOME)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def line_id(database: Database, caches: LendingCaches) -> int:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED)


def _bills(database: Database, line_id: int) -> list[BillView]:
    with database.engine.connect() as conn:
        return list(reversed(fetch_bills(conn, line_id)))


def test_bill_paid_in_full_by_its_due_date_costs_no_interest(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 100_000)
    run_eod_through(database, date(2025, 3, 2))
    buy(database, caches, line_id, 50_000)
    run_eod_through(database, date(2025, 3, 5))
    # Bill of 5 March: 100,000 + 50,000 = 150,000; minimum 10% = 15,000; due 25 March.
    (bill,) = _bills(database, line_id)
    assert (bill.statement_balance_fen, bill.minimum_payment_fen) == (150_000, 15_000)
    assert (bill.due_date, bill.purchases_fen, bill.bucket) == (
        date(2025, 3, 25),
        150_000,
        "M0",
    )
    run_eod_through(database, date(2025, 3, 19))
    pay(database, caches, line_id, 150_000)
    run_eod_through(database, date(2025, 4, 5))
    first, second = _bills(database, line_id)
    assert first.outcome == BillOutcomeView(
        decided_on=date(2025, 3, 25), paid_fen=Fen(150_000), paid_in_full=True,
        unpaid_minimum_fen=Fen(0), moved_to_past_due_fen=Fen(0), retro_interest_fen=Fen(0),
    )  # fmt: skip
    assert second.statement_balance_fen == 0 and second.payments_fen == 150_000
    assert node_balance(database, INTEREST_INCOME) == 0
    assert balances(database, line_id) == {}
    with database.engine.connect() as conn:
        check_ledger(conn)
        detail = fetch_bill(conn, line_id, first.id)
    assert [(line.kind, line.amount_fen) for line in detail.lines] == [
        ("purchase", 100_000), ("purchase", 50_000)
    ]  # fmt: skip


def test_missed_due_date_charges_interest_late_fee_and_penalty(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 100_000)
    run_eod_through(database, date(2025, 3, 31))
    # Due 25 March, nothing paid: unpaid minimum 10,000 of principal goes past due.
    # Interest from the posting date through the due date: 100,000 × 25 days × 0.05%
    #   = 1,250. Then 100,000 × 0.05% = 50 a day from 26 March: 6 days to 31 March = 300.
    # Late fee on 29 March (due + 3 grace + 1): 3,000.
    # Penalty: nothing within grace; on 29 March (4 days past due) the whole run:
    #   10,000 × 0.05% × 4 = 20; then 5 a day on 30 and 31 March → 30.
    assert balances(database, line_id) == {
        "principal_billed": 90_000,
        "principal_past_due": 10_000,
        "interest_unbilled": 1_250 + 300,
        "fee_past_due": 3_000,
        "penalty_past_due": 30,
        "funding_payable": 70_000 + 30_000,
    }
    (bill,) = _bills(database, line_id)
    assert bill.outcome == BillOutcomeView(
        decided_on=date(2025, 3, 25), paid_fen=Fen(0), paid_in_full=False,
        unpaid_minimum_fen=Fen(10_000), moved_to_past_due_fen=Fen(10_000),
        retro_interest_fen=Fen(1_250),
    )  # fmt: skip
    with database.engine.connect() as conn:
        status = fetch_delinquency(conn, line_id)
        check_ledger(conn)
    assert (status.days_past_due, status.bucket, status.revolving) == (6, "M1", True)
    assert status.past_due_fen == 10_000 + 3_000 + 30


def test_paying_the_minimum_is_on_time_but_interest_runs_from_each_posting_date(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 100_000)
    run_eod_through(database, date(2025, 3, 14))
    pay(database, caches, line_id, 10_000)
    run_eod_through(database, date(2025, 4, 5))
    first, second = _bills(database, line_id)
    # Minimum paid: nothing past due; not paid in full: 100,000 × 25 days × 0.05% = 1,250.
    assert first.outcome is not None
    assert first.outcome.moved_to_past_due_fen == 0
    assert first.outcome.retro_interest_fen == 1_250
    # Then 90,000 × 0.05% = 45 a day from 26 March to 5 April (11 days) = 495.
    # Second bill: 90,000 + 1,250 + 495 = 91,745; minimum 9,000 + 1,745 = 10,745.
    assert second.interest_fen == 1_745
    assert (second.statement_balance_fen, second.minimum_payment_fen) == (91_745, 10_745)
    assert second.carried_fen == 90_000 and second.payments_fen == 10_000
    assert node_balance(database, INTEREST_INCOME) == -1_745


def test_a_line_aged_past_the_charge_off_day_is_written_off(
    database: Database, caches: LendingCaches
) -> None:
    data = eod_product_data("BILL2", delinquency={"charge_off_days": 35})
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED, customer_ref="cust-2", data=data)
    buy(database, caches, line_id, 100_000)
    run_eod_through(database, date(2025, 4, 29))
    assert balances(database, line_id)["principal_past_due"] > 0
    assert "written_off" not in balances(database, line_id)
    # 25 March + 35 days = 29 April: 35 days past due, not yet charged off; 30 April is
    # 36 days, more than the product's 35: charged off that day.
    run_eod_through(database, date(2025, 4, 30))
    after = balances(database, line_id)
    # Nothing was ever paid, so what is written off is the 100,000 of principal plus every
    # interest, fee and penalty the line was charged (the node's income from it).
    income_fen = sum(
        -node_balance(database, node_account_code(kind))
        for kind in (
            AccountType.INTEREST_INCOME,
            AccountType.FEE_INCOME,
            AccountType.PENALTY_INCOME,
        )
    )
    assert after == {"written_off": 100_000 + income_fen}
    with database.engine.connect() as conn:
        check_ledger(conn)
        status = fetch_delinquency(conn, line_id)
        line = fetch_line(conn, line_id)
        events = conn.execute(
            select(settlement_event_table.c.kind, settlement_event_table.c.partner_ref,
                   settlement_event_table.c.amount_fen)
            .where(settlement_event_table.c.as_of == date(2025, 4, 30))
            .order_by(settlement_event_table.c.id)
        ).all()  # fmt: skip
        open_fen = conn.execute(
            select(func.sum(purchase_table.c.principal_open_fen)).where(
                purchase_table.c.credit_line_id == line_id
            )
        ).scalar_one()
        portfolio = fetch_portfolio_summary(conn)
    assert status.charged_off_on == date(2025, 4, 30) and status.outstanding_fen == 0
    assert line.status.value == "frozen"
    assert all(node.used_fen == 0 for node in line.nodes) and open_fen == 0
    # The 100,000 of principal is charged off; the node owes each funder its share back.
    assert [tuple(event) for event in events] == [
        ("charge_off", None, 100_000), ("funding_share", "bank-a", -70_000),
        ("funding_share", "lender", -30_000),
    ]  # fmt: skip
    assert node_balance(database, funding_payable_code(line_id, "BILL2", "bank-a")) == 0
    assert portfolio.written_off_fen == after["written_off"] and portfolio.total_fen == 0
    # The bureau keeps reporting it, in April and in June (no bill since): bad debt (4),
    # loss (5), the written-off balance, B from the charge-off month on (March was N).
    for cycle, history_end in (("2025-04", "NB"), ("2025-06", "NBBB")):
        out = io.StringIO()
        with database.engine.connect() as conn:
            write_bureau_file(conn, cycle, out)
        (record,) = csv.DictReader(io.StringIO(out.getvalue()))
        assert (record["account_status"], record["five_tier_class"]) == ("4", "5")
        assert int(record["balance_fen"]) == after["written_off"]
        assert record["used_limit_fen"] == record["overdue_principal_91_180_fen"] == "0"
        assert record["payment_history_24"].endswith(history_end)


def test_rerunning_a_closed_date_posts_nothing(
    database: Database, caches: LendingCaches, line_id: int
) -> None:
    buy(database, caches, line_id, 100_000)
    run_eod_through(database, date(2025, 3, 30))
    before = snapshot(database)
    again = run_eod(database, date(2025, 3, 30))
    assert again.already_done
    assert snapshot(database) == before
    with database.engine.connect() as conn:
        assert fetch_business_date(conn) == date(2025, 3, 31)
        batches = conn.execute(select(func.count()).select_from(posting_batch_table)).scalar_one()
    assert batches == len(before["batches"])


def test_RevertWhen_a_date_is_closed_before_the_ones_before_it(
    database: Database, line_id: int
) -> None:
    with pytest.raises(ConflictError) as error:
        run_eod(database, date(2025, 3, 3))
    assert error.value.code == "eod_out_of_order"


def test_charge_off_enqueues_the_agreement_status_change_for_the_chain(
    database: Database, caches: LendingCaches
) -> None:
    data = eod_product_data("BILL3", delinquency={"charge_off_days": 35})
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        line_id = open_eod_line(conn, caches, OPENED, customer_ref="cust-3", data=data)
        conn.execute(application_table.insert().values(_application(line_id)))
    buy(database, caches, line_id, 50_000)
    run_eod_through(database, date(2025, 4, 30))
    with database.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX_TABLE.c.business_key, OUTBOX_TABLE.c.payload).order_by(OUTBOX_TABLE.c.id)
        ).all()
    # DEFAULTED (4) then CHARGED_OFF (5): the only legal path on the registry.
    assert [key for key, _ in rows] == [
        f"agreement_change:{AGREEMENT}:1",
        f"agreement_change:{AGREEMENT}:2",
    ]
    assert [(p["change"], p["new_status"], p["change_seq"]) for _, p in rows] == [
        ("status", 4, 1), ("status", 5, 2)
    ]  # fmt: skip


AGREEMENT = "0x" + "ab" * 32


def _application(line_id: int) -> dict[str, object]:
    return {
        "id": "app-eod-1", "customer_id": "cust-3", "product_code": "BILL3",
        "product_version": 1, "policy_version": 1, "channel_id": "app",
        "applied_at": datetime(2025, 3, 1, 9, 0), "business_date": OPENED,
        "inputs_enc": b"x", "model_id": "m", "score": 600, "score_detail": {}, "signals": {},
        "fraud_hits": [], "decision": "approve", "reason_codes": [], "limits": {},
        "existing_customer": False, "status": "approved", "credit_line_id": line_id,
        "agreement_id": AGREEMENT,
    }  # fmt: skip
