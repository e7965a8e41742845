"""Repayments on both databases: waterfall, over-payment, and reversal with replay."""

from __future__ import annotations

from sqlalchemy import select

from node_api.kernel.db import Database
from node_api.ledger.accounts import (
    AccountIdCache,
    AccountType,
    line_account_code,
    node_account_code,
)
from node_api.ledger.balances import fetch_line_balances
from node_api.ledger.postings import BatchDraft, PostingLine, post_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind
from node_api.lending.repayments import repay, repayment_table, reverse_repayment
from tests.integration.lending.helpers import OPENED_ON, check_books
from tests.integration.lending.test_purchases_db import purchase


def _age(database: Database, line_id: int, accounts: AccountIdCache) -> None:
    """What end of day would do: bill 4,000 of principal, make 1,000 of it past due, and
    post 120 of penalty interest."""

    def code(kind: AccountType) -> str:
        return line_account_code(line_id, kind)

    lines = (
        PostingLine(code(AccountType.PRINCIPAL_UNBILLED), -4_000),
        PostingLine(code(AccountType.PRINCIPAL_BILLED), 3_000),
        PostingLine(code(AccountType.PRINCIPAL_PAST_DUE), 1_000),
        PostingLine(code(AccountType.PENALTY_PAST_DUE), 120),
        PostingLine(node_account_code(AccountType.PENALTY_INCOME), -120),
    )
    with database.engine.begin() as conn:
        draft = BatchDraft(
            "eod:test", "end_of_day", OPENED_ON, lines, line_id, customer_id="cust-1"
        )
        post_batch(conn, draft, accounts)


def test_waterfall_pays_past_due_then_current_and_holds_the_excess(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    purchase(database, caches, line_id, 6_000)
    _age(database, line_id, caches.accounts)
    with database.engine.begin() as conn:
        first = repay(conn, caches, line_id=line_id, amount_fen=1_500, currency="CNY", as_of=None)
        assert [(a.account, a.amount_fen) for a in first.allocations] == [
            ("penalty_past_due", 120),
            ("principal_past_due", 1_000),
            ("principal_billed", 380),
        ]
        second = repay(conn, caches, line_id=line_id, amount_fen=9_000, currency="CNY", as_of=None)
        assert second.customer_credit_fen == 9_000 - (6_000 - 1_380)
        balances = fetch_line_balances(conn, line_id)
        assert balances[AccountType.CUSTOMER_CREDIT] == second.customer_credit_fen
        assert sum(v for k, v in balances.items() if k is not AccountType.CUSTOMER_CREDIT) == 0
        check_books(conn, [line_id])


def test_reversal_of_a_bounced_payment_replays_later_allocations(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    purchase(database, caches, line_id, 6_000)
    _age(database, line_id, caches.accounts)
    with database.engine.begin() as conn:
        bounced = repay(conn, caches, line_id=line_id, amount_fen=1_120, currency="CNY", as_of=None)
        later = repay(conn, caches, line_id=line_id, amount_fen=500, currency="CNY", as_of=None)
        assert [a.account for a in later.allocations] == ["principal_billed"]
        result = reverse_repayment(
            conn, caches, line_id=line_id, repayment_id=bounced.repayment_id, as_of=None
        )
        assert result.reallocated_repayment_ids == (later.repayment_id,)
        balances = fetch_line_balances(conn, line_id)
        # Without the bounced payment, the later 500 pays the penalty then past-due principal.
        assert balances[AccountType.PENALTY_PAST_DUE] == 0
        assert balances[AccountType.PRINCIPAL_PAST_DUE] == 1_000 - 380
        assert balances[AccountType.PRINCIPAL_BILLED] == 3_000
        statuses = dict(conn.execute(select(repayment_table.c.id, repayment_table.c.status)).all())
        assert statuses == {bounced.repayment_id: "reversed", later.repayment_id: "posted"}
        check_books(conn, [line_id])


def test_reversal_puts_principal_back_on_the_same_uses_and_their_limits(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    purchase(database, caches, line_id, 3_000, channel_id="app")
    purchase(database, caches, line_id, 2_000, kind=UseKind.CASH_DRAWDOWN)
    with database.engine.begin() as conn:
        paid = repay(conn, caches, line_id=line_id, amount_fen=5_006, currency="CNY", as_of=None)
        check_books(conn, [line_id])
        reverse_repayment(conn, caches, line_id=line_id, repayment_id=paid.repayment_id, as_of=None)
        check_books(conn, [line_id])
        balances = fetch_line_balances(conn, line_id)
        assert balances[AccountType.PRINCIPAL_UNBILLED] == 5_000
        assert balances[AccountType.FEE_UNBILLED] == 6
