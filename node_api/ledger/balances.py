"""Balances at any business date, and the trial balance.

A balance at date D is the sum of the account's postings dated on or before D (signed,
debit positive). Without a date the running balance is read: the same figure for the
current state, kept in step by `post_batches` and checked by `fetch_balance_drift`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, FromClause, Subquery

from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, posting_table


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    """One account type: the sum of its debit balances and of its credit balances."""

    account_type: str
    accounts: int
    debit_fen: Fen
    credit_fen: Fen


@dataclass(frozen=True, slots=True)
class TrialBalance:
    as_of: date | None
    rows: tuple[TrialBalanceRow, ...]

    @property
    def total_debit_fen(self) -> Fen:
        return Fen(sum(row.debit_fen for row in self.rows))

    @property
    def total_credit_fen(self) -> Fen:
        return Fen(sum(row.credit_fen for row in self.rows))

    @property
    def balanced(self) -> bool:
        return self.total_debit_fen == self.total_credit_fen


def _balances_at(as_of: date) -> Subquery:
    postings = posting_table
    return (
        select(postings.c.account_id, func.sum(postings.c.amount_fen).label("balance_fen"))
        .where(postings.c.as_of <= as_of)
        .group_by(postings.c.account_id)
        .subquery("balances_at")
    )


def fetch_trial_balance(conn: Connection, as_of: date | None = None) -> TrialBalance:
    """Debit and credit balances per account type, now or at the end of `as_of`."""
    accounts = ledger_account_table
    balance: ColumnElement[int]
    source: FromClause
    if as_of is None:
        balance = accounts.c.balance_fen
        source = accounts
    else:
        at = _balances_at(as_of)
        balance = at.c.balance_fen
        source = at.join(accounts, accounts.c.id == at.c.account_id)
    statement = (
        select(
            accounts.c.account_type,
            func.count(),
            func.coalesce(func.sum(case((balance > 0, balance), else_=0)), 0),
            func.coalesce(func.sum(case((balance < 0, -balance), else_=0)), 0),
        )
        .select_from(source)
        .where(balance != 0)
        .group_by(accounts.c.account_type)
        .order_by(accounts.c.account_type)
    )
    rows = tuple(
        TrialBalanceRow(str(kind), int(count), Fen(int(debit)), Fen(int(credit)))
        for kind, count, debit, credit in conn.execute(statement)
    )
    return TrialBalance(as_of=as_of, rows=rows)


def fetch_line_balances(
    conn: Connection, credit_line_id: int, as_of: date | None = None
) -> dict[AccountType, Fen]:
    """A line's accounts by type, as normal-side balances (a receivable of 500 and a
    customer credit of 500 both read 500); funding payables are summed over partners."""
    accounts = ledger_account_table
    if as_of is None:
        statement = select(
            accounts.c.account_type, accounts.c.balance_fen, accounts.c.normal_sign
        ).where(accounts.c.credit_line_id == credit_line_id)
    else:
        postings = posting_table
        summed = func.coalesce(func.sum(postings.c.amount_fen), 0)
        statement = (
            select(accounts.c.account_type, summed, accounts.c.normal_sign)
            .select_from(
                accounts.outerjoin(
                    postings,
                    (postings.c.account_id == accounts.c.id) & (postings.c.as_of <= as_of),
                )
            )
            .where(accounts.c.credit_line_id == credit_line_id)
            .group_by(accounts.c.id, accounts.c.account_type, accounts.c.normal_sign)
        )
    totals: dict[AccountType, Fen] = {}
    for kind, balance, sign in conn.execute(statement):
        account_type = AccountType(kind)
        totals[account_type] = Fen(totals.get(account_type, 0) + int(balance) * int(sign))
    return totals


def fetch_account_balance(conn: Connection, code: str, as_of: date | None = None) -> Fen:
    """The signed (debit positive) balance of one account, now or at the end of `as_of`."""
    accounts, postings = ledger_account_table, posting_table
    if as_of is None:
        value = conn.execute(
            select(accounts.c.balance_fen).where(accounts.c.code == code)
        ).scalar_one_or_none()
        return Fen(int(value or 0))
    value = conn.execute(
        select(func.coalesce(func.sum(postings.c.amount_fen), 0))
        .select_from(postings.join(accounts, accounts.c.id == postings.c.account_id))
        .where((accounts.c.code == code) & (postings.c.as_of <= as_of))
    ).scalar_one()
    return Fen(int(value))


def fetch_balance_drift(conn: Connection) -> list[tuple[str, Fen, Fen]]:
    """Accounts whose running balance differs from the sum of their postings:
    (code, running, summed). Empty when the books are consistent."""
    accounts, postings = ledger_account_table, posting_table
    summed = (
        select(postings.c.account_id, func.sum(postings.c.amount_fen).label("total_fen"))
        .group_by(postings.c.account_id)
        .subquery("summed")
    )
    total = func.coalesce(summed.c.total_fen, 0)
    statement = (
        select(accounts.c.code, accounts.c.balance_fen, total)
        .select_from(accounts.outerjoin(summed, summed.c.account_id == accounts.c.id))
        .where(accounts.c.balance_fen != total)
        .order_by(accounts.c.id)
    )
    return [
        (str(code), Fen(int(running)), Fen(int(summed_fen)))
        for code, running, summed_fen in conn.execute(statement)
    ]
