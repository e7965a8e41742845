"""The ledger on SQLite and PostgreSQL: all-or-nothing batches, floors, reversals,
balances at a date and the trial balance."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.ledger.accounts import (
    AccountIdCache,
    AccountSpec,
    AccountType,
    ensure_accounts,
    line_account_code,
    line_account_specs,
    node_account_code,
    node_account_specs,
)
from node_api.ledger.balances import fetch_account_balance, fetch_trial_balance
from node_api.ledger.business_date import fetch_business_date, resolve_as_of, set_business_date
from node_api.ledger.postings import (
    BatchDraft,
    FloorCrossedError,
    PostingLine,
    SettlementEventDraft,
    UnbalancedBatchError,
    post_batch,
    post_batch_once,
    reverse_batch,
)
from node_api.ledger.schema import posting_batch_table, posting_table, settlement_event_table

PRINCIPAL = line_account_code(1, AccountType.PRINCIPAL_UNBILLED)
CREDIT = line_account_code(1, AccountType.CUSTOMER_CREDIT)
CLEARING = node_account_code(AccountType.SETTLEMENT_CLEARING)
DAY1, DAY2, DAY3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


CUSTOMER = "cust-1"


@pytest.fixture
def accounts(database: Database) -> AccountIdCache:
    with database.engine.begin() as conn:
        # The line the accounts belong to (the ledger does not open lines itself).
        conn.execute(
            text(
                "INSERT INTO credit_line (id, customer_ref, currency, status, opened_on, "
                "bill_day) VALUES (1, :customer, 'CNY', 'active', :day, 5)"
            ),
            {"customer": CUSTOMER, "day": DAY1},
        )
        ensure_accounts(conn, line_account_specs(1, CUSTOMER) + node_account_specs())
    return AccountIdCache()


def _draft(key: str, as_of: date, *lines: tuple[str, int]) -> BatchDraft:
    postings = tuple(PostingLine(c, a) for c, a in lines)
    return BatchDraft(key, "purchase", as_of, postings, 1, customer_id=CUSTOMER)


def _rows(conn: Connection) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        conn.execute(select(func.count()).select_from(table)).scalar_one()
        for table in (posting_batch_table, posting_table, settlement_event_table)
    )


def test_balanced_batch_moves_balances_and_writes_its_events(
    database: Database, accounts: AccountIdCache
) -> None:
    with database.engine.begin() as conn:
        draft = BatchDraft(
            "p1",
            "purchase",
            DAY1,
            (PostingLine(PRINCIPAL, 700), PostingLine(CLEARING, -700)),
            1,
            events=(SettlementEventDraft("merchant_payable", 700, counterparty_ref="m1"),),
            customer_id=CUSTOMER,
        )
        post_batch(conn, draft, accounts)
        assert fetch_account_balance(conn, PRINCIPAL) == 700
        assert fetch_account_balance(conn, CLEARING) == -700
        assert _rows(conn) == (1, 2, 1)


def test_RevertWhen_any_batch_in_a_group_is_unbalanced_nothing_is_written(
    database: Database, accounts: AccountIdCache
) -> None:
    from node_api.ledger.postings import post_batches

    with database.engine.begin() as conn:
        good = _draft("g", DAY1, (PRINCIPAL, 100), (CLEARING, -100))
        bad = _draft("b", DAY1, (PRINCIPAL, 100), (CLEARING, -99))
        with pytest.raises(UnbalancedBatchError):
            post_batches(conn, [good, bad], accounts)
        assert _rows(conn) == (0, 0, 0)
        assert fetch_account_balance(conn, PRINCIPAL) == 0


def test_RevertWhen_a_floor_would_be_crossed_nothing_is_written(
    database: Database, accounts: AccountIdCache
) -> None:
    with database.engine.begin() as conn:
        post_batch(conn, _draft("p1", DAY1, (PRINCIPAL, 100), (CLEARING, -100)), accounts)
        with pytest.raises(FloorCrossedError) as caught:
            post_batch(conn, _draft("r1", DAY1, (CLEARING, 150), (PRINCIPAL, -150)), accounts)
        assert caught.value.extra["account"] == PRINCIPAL
        assert _rows(conn) == (1, 2, 0)
        with pytest.raises(FloorCrossedError):
            post_batch(conn, _draft("c1", DAY1, (CREDIT, 1), (CLEARING, -1)), accounts)


def test_RevertWhen_an_account_does_not_exist(database: Database, accounts: AccountIdCache) -> None:
    with database.engine.begin() as conn, pytest.raises(NotFoundError):
        post_batch(
            conn, _draft("x", DAY1, ("line:99:principal_unbilled", 1), (CLEARING, -1)), accounts
        )


def test_reversal_restores_balances_once_and_negates_events(
    database: Database, accounts: AccountIdCache
) -> None:
    with database.engine.begin() as conn:
        draft = BatchDraft(
            "p1",
            "purchase",
            DAY1,
            (PostingLine(PRINCIPAL, 300), PostingLine(CLEARING, -300)),
            1,
            events=(SettlementEventDraft("merchant_payable", 300),),
            customer_id=CUSTOMER,
        )
        batch_id = post_batch(conn, draft, accounts)
        reverse_batch(
            conn, batch_id, business_key="rev:p1", kind="reversal", as_of=DAY2, accounts=accounts
        )
        assert fetch_account_balance(conn, PRINCIPAL) == 0
        events = conn.execute(select(settlement_event_table.c.amount_fen)).scalars().all()
        assert sorted(events) == [-300, 300]
        with pytest.raises(ConflictError):
            reverse_batch(
                conn,
                batch_id,
                business_key="rev2:p1",
                kind="reversal",
                as_of=DAY2,
                accounts=accounts,
            )


def test_balances_and_trial_balance_at_any_business_date(
    database: Database, accounts: AccountIdCache
) -> None:
    with database.engine.begin() as conn:
        post_batch(conn, _draft("p1", DAY1, (PRINCIPAL, 500), (CLEARING, -500)), accounts)
        post_batch(conn, _draft("p2", DAY3, (PRINCIPAL, 200), (CLEARING, -200)), accounts)
        assert fetch_account_balance(conn, PRINCIPAL, DAY1) == 500
        assert fetch_account_balance(conn, PRINCIPAL, DAY2) == 500
        assert fetch_account_balance(conn, PRINCIPAL, DAY3) == 700
        at_day2 = fetch_trial_balance(conn, DAY2)
        assert at_day2.balanced and at_day2.total_debit_fen == 500
        now = fetch_trial_balance(conn)
        assert now.balanced and now.total_debit_fen == 700
        assert fetch_trial_balance(conn, date(2025, 2, 28)).rows == ()


def test_post_batch_once_posts_nothing_on_rerun_and_refuses_changed_content(
    database: Database, accounts: AccountIdCache
) -> None:
    with database.engine.begin() as conn:
        draft = _draft("eod:1", DAY1, (PRINCIPAL, 10), (CLEARING, -10))
        first_id, created = post_batch_once(conn, draft, accounts)
        assert created
        assert post_batch_once(conn, draft, accounts) == (first_id, False)
        with pytest.raises(ConflictError):
            post_batch_once(conn, _draft("eod:1", DAY1, (PRINCIPAL, 11), (CLEARING, -11)), accounts)
        assert fetch_account_balance(conn, PRINCIPAL) == 10


def test_ensure_accounts_is_idempotent(database: Database) -> None:
    spec = AccountSpec("node:settlement_clearing", AccountType.SETTLEMENT_CLEARING)
    with database.engine.begin() as conn:
        ensure_accounts(conn, [spec])
        ensure_accounts(conn, [spec, spec])
        assert AccountIdCache().resolve(conn, [spec.code])


def test_business_date_only_moves_forward_and_closes_past_days(database: Database) -> None:
    with database.engine.begin() as conn:
        assert fetch_business_date(conn) is None
        set_business_date(conn, DAY2)
        set_business_date(conn, DAY3)
        with pytest.raises(ConflictError):
            set_business_date(conn, DAY1)
        assert fetch_business_date(conn) == DAY3
    assert resolve_as_of(None, DAY3) == DAY3
    with pytest.raises(CreditNetValueError, match="closed day"):
        resolve_as_of(DAY2, DAY3, backdate_window_days=0)


def test_RevertWhen_the_business_date_is_set_past_the_last_closable_day(
    database: Database,
) -> None:
    with database.engine.begin() as conn:
        set_business_date(conn, DAY1)
    with database.engine.begin() as conn, pytest.raises(CreditNetValueError) as caught:
        set_business_date(conn, date(9999, 12, 31))
    assert (caught.value.field, caught.value.code) == ("as_of", "business_date_out_of_range")
    with database.engine.connect() as conn:
        assert fetch_business_date(conn) == DAY1
