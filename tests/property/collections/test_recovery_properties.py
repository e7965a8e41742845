"""Collections never changes a balance except through postings that balance, on SQLite
and PostgreSQL.

Books with charged-off lines (aged by real end of day), a line its guarantor compensated
and lines still current take random recoveries, compensations and debt sales, many of
them refused (too much, the wrong line, sold already). After every operation:
- a refused one changed nothing (no posting, no balance, no collections row);
- an accepted one wrote only batches that sum to zero, the trial balance is zero and
  every running balance equals its postings;
- a recovery or a sale touched only clearing, written-off and subrogation accounts; the
  money it posted equals the settlement events it wrote (guarantor part, shared part or
  price), and no written-off balance grew;
- each line's subrogated receivable equals its guarantor's claim, never below zero.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from node_api.collections.compensation import Coverage, compensate_line
from node_api.collections.debt_sale import sell_debt
from node_api.collections.recoveries import fetch_recoverable, record_recovery
from node_api.kernel.chain import PartnerRole
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.ledger.accounts import AccountType
from node_api.ledger.balances import fetch_balance_drift, fetch_trial_balance
from node_api.ledger.schema import (
    ledger_account_table,
    posting_batch_table,
    posting_table,
    settlement_event_table,
)
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.eod import run_eod_through
from node_api.lending.eod.state import update_line_states
from settlement.partners import register_partner
from tests.integration.collections.recovery_books import POLICY, RecoveryBooks

AS_OF = date(2025, 4, 8)
MOVABLE_BY_RECOVERY = frozenset(
    {
        AccountType.SETTLEMENT_CLEARING.value,
        AccountType.WRITTEN_OFF.value,
        AccountType.SUBROGATED_RECEIVABLE.value,
        AccountType.GUARANTOR_CLAIM.value,
    }
)
COLLECTIONS_TABLES = (
    "collections_recovery",
    "collections_compensation",
    "collections_debt_sale",
    "collections_debt_sale_line",
)

operations = st.lists(
    st.tuples(
        st.sampled_from(["recover", "recover", "recover", "compensate", "sell"]),
        st.integers(0, 4),  # which line (the first of a sale)
        st.integers(0, 3),  # how many more lines a sale takes
        st.floats(0.0, 1.2),  # the amount, as a share of what can be recovered or sold
    ),
    min_size=1,
    max_size=8,
)


def _build(database: Database) -> tuple[RecoveryBooks, list[int]]:
    """Three lines charged off by 7 April, one due for compensation (of its whole balance)
    and one current."""
    books = RecoveryBooks(database)
    books.setup(Coverage.BALANCE)
    charged = [books.open_line(f"cust-{n}", 20_000 * (n + 1)) for n in range(3)]
    run_eod_through(database, date(2025, 4, 7))
    compensated = books.open_line("cust-comp", 70_000)
    current = books.open_line("cust-current", 9_000)
    with database.engine.begin() as conn:
        update_line_states(
            conn, AS_OF,
            {compensated: {"days_past_due": 5, "bucket": DelinquencyBucket.M1.value}},
            ["days_past_due", "bucket"],
        )  # fmt: skip
        register_partner(
            conn, ref="agency-a", role=PartnerRole.CHANNEL, payout_address="0x" + "77" * 20,
            display_name="Agency A", partner_id=7,
        )  # fmt: skip
    return books, [*charged, compensated, current]


def _fingerprint(conn: Connection) -> tuple[Any, ...]:
    balances = conn.execute(
        select(ledger_account_table.c.code, ledger_account_table.c.balance_fen).order_by(
            ledger_account_table.c.code
        )
    ).all()
    counts = tuple(
        conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in COLLECTIONS_TABLES
    )
    postings = conn.execute(select(func.count()).select_from(posting_table)).scalar_one()
    return tuple(balances), counts, postings


def _last_batch_id(conn: Connection) -> int:
    return int(
        conn.execute(select(func.coalesce(func.max(posting_batch_table.c.id), 0))).scalar_one()
    )


def _check_books(conn: Connection) -> None:
    assert fetch_trial_balance(conn).balanced
    assert fetch_balance_drift(conn) == []
    accounts = ledger_account_table
    by_line: dict[tuple[int, str], dict[str, int]] = {}
    for line_id, ref, kind, balance in conn.execute(
        select(accounts.c.credit_line_id, accounts.c.partner_ref, accounts.c.account_type,
               accounts.c.balance_fen * accounts.c.normal_sign)
        .where(accounts.c.account_type.in_(
            [AccountType.SUBROGATED_RECEIVABLE.value, AccountType.GUARANTOR_CLAIM.value]))
    ):  # fmt: skip
        by_line.setdefault((int(line_id), str(ref)), {})[str(kind)] = int(balance)
    for balances in by_line.values():
        receivable = balances.get(AccountType.SUBROGATED_RECEIVABLE.value, 0)
        assert receivable == balances.get(AccountType.GUARANTOR_CLAIM.value, 0) >= 0


def _check_new_batches(conn: Connection, after_id: int, kind: str, amount_fen: int) -> None:
    """The batches after `after_id` sum to zero; a recovery's or sale's only move the
    accounts it may move, by as much money as its events carry."""
    postings, accounts = posting_table, ledger_account_table
    rows = conn.execute(
        select(posting_batch_table.c.id, postings.c.amount_fen, accounts.c.account_type)
        .join(postings, postings.c.batch_id == posting_batch_table.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(posting_batch_table.c.id > after_id)
    ).all()
    sums: dict[int, int] = {}
    for batch_id, amount, _kind in rows:
        sums[int(batch_id)] = sums.get(int(batch_id), 0) + int(amount)
    assert sums and all(total == 0 for total in sums.values())
    if kind == "compensate":
        return
    assert {str(account_type) for _, _, account_type in rows} <= MOVABLE_BY_RECOVERY
    written_change = sum(int(amount) for _, amount, t in rows if t == AccountType.WRITTEN_OFF.value)
    assert written_change <= 0  # collections only ever shrinks a loss
    events = settlement_event_table
    carried = conn.execute(
        select(func.coalesce(func.sum(events.c.amount_fen), 0)).where(events.c.batch_id > after_id)
    ).scalar_one()
    assert int(carried) == amount_fen


def _apply(
    conn: Connection, books: RecoveryBooks, lines: list[int], op: tuple[str, int, int, float]
) -> tuple[str, int]:
    """Run one operation; (its kind, the money it moved)."""
    kind, first, more, share = op
    line_id = lines[first]
    if kind == "compensate":  # the compensated line (due) or the current one (not due)
        line_id = lines[3 + first % 2]
        done = compensate_line(conn, books.caches, POLICY, line_id=line_id, as_of=AS_OF, by="p")
        return kind, done.amount_fen
    if kind == "recover":
        recoverable = fetch_recoverable(conn, line_id).total_fen
        amount_fen = max(1, int(recoverable * share))
        record_recovery(
            conn, books.caches.accounts, line_id=line_id, amount_fen=amount_fen, as_of=AS_OF,
            payment_ref=None, by="p",
        )  # fmt: skip
        return kind, amount_fen
    chosen = sorted({lines[(first + step) % 3] for step in range(more + 1)})
    face = sum(fetch_recoverable(conn, line).written_off_fen for line in chosen)
    price_fen = max(1, int(face * share))
    sell_debt(
        conn, books.caches.accounts, buyer_ref="agency-a", line_ids=chosen, price_fen=price_fen,
        as_of=AS_OF, by="p",
    )  # fmt: skip
    return kind, price_fen


def test_collections_moves_money_only_through_balanced_postings(database: Database) -> None:
    books, lines = _build(database)
    accepted: dict[str, int] = {}

    @settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=operations)
    @example(ops=[("recover", 1, 0, 0.5), ("compensate", 0, 0, 1.0), ("sell", 0, 0, 0.5)])
    def run(ops: list[tuple[str, int, int, float]]) -> None:
        for op in ops:
            with database.engine.connect() as conn:
                before, after_id = _fingerprint(conn), _last_batch_id(conn)
            try:
                with database.engine.begin() as conn:
                    kind, amount_fen = _apply(conn, books, lines, op)
            except CreditNetError:
                with database.engine.connect() as conn:
                    assert _fingerprint(conn) == before, op
                continue
            with database.engine.connect() as conn:
                _check_new_batches(conn, after_id, kind, amount_fen)
                _check_books(conn)
            accepted[kind] = accepted.get(kind, 0) + 1

    run()
    assert set(accepted) == {"recover", "compensate", "sell"}, accepted
