"""A line's own account balances, read once under the line lock and advanced in memory
while a transaction builds that line's postings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountIdCache, AccountRef, AccountType, line_account_code
from node_api.ledger.postings import PostingLine
from node_api.ledger.schema import ledger_account_table


@dataclass
class LineBook:
    """Signed (debit positive) balances of one line's accounts, by account code."""

    credit_line_id: int
    balances_fen: dict[str, int]

    def apply(self, lines: Iterable[PostingLine]) -> None:
        for line in lines:
            if line.account_code in self.balances_fen:
                self.balances_fen[line.account_code] += line.amount_fen

    def normal_fen(self, account_type: AccountType) -> int:
        """A per-line debit-normal balance (a receivable)."""
        return self.balances_fen.get(line_account_code(self.credit_line_id, account_type), 0)

    def credit_fen(self, account_type: AccountType) -> int:
        """A per-line credit-normal balance (the customer's credit)."""
        return -self.balances_fen.get(line_account_code(self.credit_line_id, account_type), 0)


def fetch_line_books(
    conn: Connection, line_ids: Sequence[int], accounts: AccountIdCache
) -> dict[int, LineBook]:
    """The books of the given lines (which the caller has locked); primes the id cache."""
    books = {line_id: LineBook(line_id, {}) for line_id in line_ids}
    if not books:
        return books
    table = ledger_account_table
    rows = conn.execute(
        select(
            table.c.credit_line_id,
            table.c.code,
            table.c.id,
            table.c.balance_fen,
            table.c.normal_sign,
            table.c.floor_fen,
        ).where(table.c.credit_line_id.in_(sorted(books)))
    )
    for line_id, code, account_id, balance_fen, sign, floor_fen in rows:
        books[int(line_id)].balances_fen[str(code)] = int(balance_fen)
        accounts.remember(str(code), AccountRef(int(account_id), int(sign), floor_fen))
    return books
