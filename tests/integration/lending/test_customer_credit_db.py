"""Issue 15 item 1 on both databases, worked by hand: customer credit is applied to what
is due at the bill cut, at end of day and at posting time, the bill states it, a line
whose credit covers its debt never ages, and credit is refunded on request.

Product (`eod_product_data`): bill day 5, due 20 days later (the 25th), 3 grace days,
minimum 10% with a 5,000 floor, late fee 3,000, penalty 500 ppm a day, 50 interest-free
days, 70% funded by bank-a; lines opened 1 March 2025.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.accounts import AccountType, funding_payable_code, node_account_code
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import posting_batch_table
from node_api.lending.bill_tables import bill_line_table, bill_table
from node_api.lending.bill_views import fetch_delinquency
from node_api.lending.core.context import LendingCaches
from node_api.lending.customer_credit import refund_customer_credit
from node_api.lending.eod import run_eod_through
from node_api.lending.purchases import refund_purchase
from tests.integration.lending.eod_helpers import (
    balances,
    buy,
    check_ledger,
    eod_product_data,
    node_balance,
    open_eod_line,
    pay,
)

OPENED = date(2025, 3, 1)


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


def _open(database: Database, caches: LendingCaches, code: str, **changes: object) -> int:
    with database.engine.begin() as conn:
        set_business_date(conn, OPENED)
        return open_eod_line(conn, caches, OPENED, data=eod_product_data(code, **changes))


def _bill(database: Database, line_id: int, bill_date: date) -> dict[str, object]:
    with database.engine.connect() as conn:
        row = conn.execute(
            select(bill_table).where(
                (bill_table.c.credit_line_id == line_id) & (bill_table.c.bill_date == bill_date)
            )
        ).one()
        lines = conn.execute(
            select(bill_line_table.c.kind, bill_line_table.c.amount_fen).where(
                bill_line_table.c.bill_id == row.id
            )
        ).all()
    return {**row._asdict(), "lines": sorted((str(k), int(a)) for k, a in lines)}


def test_credit_is_applied_at_the_bill_cut_and_the_bill_is_net_of_it(
    database: Database, caches: LendingCaches
) -> None:
    # 1 March: 30,000 bought and 50,000 paid: 30,000 repays the purchase, 20,000 is credit.
    # 2 March: 45,000 bought. The 5 March cut bills 45,000 (minimum 10% = 4,500, so the
    # 5,000 floor) and applies the 20,000 of credit to it: statement 45,000 − 20,000 =
    # 25,000, minimum 5,000 − 20,000 → 0, total balance 25,000, credit left 0.
    line_id = _open(database, caches, "CRED1")
    buy(database, caches, line_id, 30_000)
    assert pay(database, caches, line_id, 50_000).customer_credit_fen == 20_000
    run_eod_through(database, OPENED)
    buy(database, caches, line_id, 45_000)
    run_eod_through(database, date(2025, 3, 5))
    bill = _bill(database, line_id, date(2025, 3, 5))
    assert (bill["statement_balance_fen"], bill["minimum_payment_fen"]) == (25_000, 0)
    assert (bill["credit_applied_fen"], bill["credit_balance_fen"]) == (20_000, 0)
    assert (bill["new_principal_fen"], bill["total_balance_fen"]) == (45_000, 25_000)
    assert ("credit_applied", -20_000) in bill["lines"]  # type: ignore[operator]
    assert balances(database, line_id)["principal_billed"] == 25_000
    # The application repaid principal: bank-a's 70% payable follows the open principal.
    assert node_balance(database, funding_payable_code(line_id, "CRED1", "bank-a")) == -17_500
    # 20 March: the remaining 25,000 is paid; the bill is paid in full by its due date,
    # so no interest (credit counted as paid), nothing past due, no late fee.
    with database.engine.begin() as conn:
        set_business_date(conn, date(2025, 3, 20))
    pay(database, caches, line_id, 25_000)
    run_eod_through(database, date(2025, 3, 30))
    assert balances(database, line_id) == {}
    assert node_balance(database, node_account_code(AccountType.INTEREST_INCOME)) == 0
    assert node_balance(database, node_account_code(AccountType.FEE_INCOME)) == 0
    with database.engine.connect() as conn:
        check_ledger(conn)


def test_a_line_whose_credit_covers_its_debt_never_ages_or_charges_off(
    database: Database, caches: LendingCaches
) -> None:
    # 100,000 paid on an empty line: all credit. 30,000 bought the same day is unbilled
    # (not due): the credit waits. The 5 March cut bills 30,000 and the credit pays it:
    # statement 0, credit 70,000 left. Nothing is ever past due, so even with charge-off
    # at 35 days nothing happens through 10 May (before: 5,000 past due on 25 March,
    # late fee, penalty, and charge-off on 30 April with 70,000 of credit unused).
    line_id = _open(database, caches, "CRED2", delinquency={"charge_off_days": 35})
    pay(database, caches, line_id, 100_000)
    buy(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 5, 10))
    bill = _bill(database, line_id, date(2025, 3, 5))
    assert (bill["statement_balance_fen"], bill["credit_applied_fen"]) == (0, 30_000)
    assert bill["credit_balance_fen"] == 70_000
    assert balances(database, line_id) == {"customer_credit": 70_000}
    with database.engine.connect() as conn:
        state = fetch_delinquency(conn, line_id)
        check_ledger(conn)
    assert (state.days_past_due, state.charged_off_on) == (0, None)
    assert node_balance(database, node_account_code(AccountType.FEE_INCOME)) == 0


def test_credit_left_by_a_refund_pays_what_is_due_at_posting_time(
    database: Database, caches: LendingCaches
) -> None:
    # 10,000 (A) and 20,000 (B) bought 1 March, billed 5 March: 30,000 billed. 6 March:
    # 25,000 paid, which repays A's 10,000 and 15,000 of B (oldest first): 5,000 billed
    # left. 7 March: A refunded in full: A has no principal open, so the whole 10,000 is
    # credit, applied at once to the 5,000 billed: 5,000 of credit left, nothing owed.
    line_id = _open(database, caches, "CRED3")
    first = buy(database, caches, line_id, 10_000)
    buy(database, caches, line_id, 20_000)
    run_eod_through(database, date(2025, 3, 5))
    pay(database, caches, line_id, 25_000)
    run_eod_through(database, date(2025, 3, 6))
    with database.engine.begin() as conn:
        refund = refund_purchase(
            conn, caches, line_id=line_id, purchase_id=first, amount_fen=None, as_of=None
        )
    assert (refund.principal_fen, refund.customer_credit_fen) == (0, 10_000)
    assert balances(database, line_id) == {"customer_credit": 5_000}
    with database.engine.connect() as conn:
        kinds = conn.execute(
            select(posting_batch_table.c.kind, posting_batch_table.c.as_of)
            .where(posting_batch_table.c.credit_line_id == line_id)
            .order_by(posting_batch_table.c.id)
        ).all()
        check_ledger(conn)
    assert tuple(kinds[-1]) == ("credit_application", date(2025, 3, 7))


def test_credit_is_refunded_after_paying_what_is_due(
    database: Database, caches: LendingCaches
) -> None:
    # 30,000 billed 5 March. 6 March: 45,000 paid: 30,000 repays it, 15,000 is credit.
    # Refund of 15,001: refused, nothing changes; of 15,000: paid out through clearing.
    line_id = _open(database, caches, "CRED4")
    buy(database, caches, line_id, 30_000)
    run_eod_through(database, date(2025, 3, 5))
    pay(database, caches, line_id, 45_000)
    clearing_before = node_balance(database, node_account_code(AccountType.SETTLEMENT_CLEARING))
    with database.engine.begin() as conn, pytest.raises(ConflictError) as caught:
        refund_customer_credit(
            conn, caches, line_id=line_id, amount_fen=15_001, currency="CNY", as_of=None
        )
    assert (caught.value.code, caught.value.field) == ("insufficient_credit", "amount_fen")
    with database.engine.begin() as conn:
        refund = refund_customer_credit(
            conn, caches, line_id=line_id, amount_fen=15_000, currency="CNY", as_of=None
        )
    assert (refund.applied_fen, refund.customer_credit_fen) == (0, 0)
    assert balances(database, line_id) == {}
    clearing_after = node_balance(database, node_account_code(AccountType.SETTLEMENT_CLEARING))
    assert clearing_before - clearing_after == 15_000
    with database.engine.connect() as conn:
        check_ledger(conn)
