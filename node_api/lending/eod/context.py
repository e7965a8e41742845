"""What every end-of-day step shares: caches, batch size, an optional fault hook, and the
facts of a batch of lines read under their locks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Connection

from node_api.ledger.accounts import (
    ACCOUNT_RULES,
    LINE_ACCOUNT_TYPES,
    AccountIdCache,
    AccountType,
    line_account_code,
)
from node_api.ledger.sql import begin_write
from node_api.lending.authorize.books import LineBook, fetch_line_books
from node_api.lending.authorize.context import LendingCaches
from node_api.lending.authorize.limits import LimitLevel
from node_api.lending.lines import LockedLine, fetch_lines
from node_api.lending.products import ProductTerms

DEFAULT_BATCH_LINES = 1_000
EOD_ACCOUNT_CACHE_ENTRIES = 2_000_000
"""End of day touches every active line's accounts: cache far more ids than a worker."""

BoundaryHook = Callable[[str, str, int], None]
"""Called with (point, step, batch_no) at `before_commit` and `after_commit` of every
batch: tests use it to inject a crash at an exact step/batch boundary."""


@dataclass
class EodContext:
    caches: LendingCaches = field(
        default_factory=lambda: LendingCaches(accounts=AccountIdCache(EOD_ACCOUNT_CACHE_ENTRIES))
    )
    batch_lines: int = DEFAULT_BATCH_LINES
    on_boundary: BoundaryHook | None = None


@dataclass
class LineFacts:
    """One line as a step sees it: locked tree, own balances, and the terms it is billed
    on (those of its first product: the line's bill, interest and delinquency terms)."""

    line: LockedLine
    book: LineBook
    terms: ProductTerms

    @property
    def credit_line_id(self) -> int:
        return self.line.credit_line_id

    def balances(self) -> dict[AccountType, int]:
        """Per-line account balances on their normal side (receivables and credit)."""
        line_id = self.credit_line_id
        return {
            kind: self.book.balances_fen.get(line_account_code(line_id, kind), 0)
            * ACCOUNT_RULES[kind].normal_sign
            for kind in LINE_ACCOUNT_TYPES
        }


def get_first_product_terms(
    conn: Connection, caches: LendingCaches, line: LockedLine
) -> ProductTerms:
    """The terms of the line's first product (the product node with the smallest id)."""
    nodes = [node for node in line.nodes if node.level is LimitLevel.PRODUCT]
    first = min(nodes, key=lambda node: node.node_id)
    return caches.terms_of(conn, first)


def load_facts(conn: Connection, ctx: EodContext, line_ids: Sequence[int]) -> dict[int, LineFacts]:
    """Lock the lines (limit trees, in id order) and read their books; absent ids dropped."""
    begin_write(conn)
    lines = fetch_lines(conn, list(line_ids), lock=True)
    books = fetch_line_books(conn, sorted(lines), ctx.caches.accounts)
    return {
        line_id: LineFacts(line, books[line_id], get_first_product_terms(conn, ctx.caches, line))
        for line_id, line in sorted(lines.items())
    }


def get_business_key(as_of: date, step: str, subject_id: int) -> str:
    """`eod:<date>:<step>:<line or bill id>`: one posting batch per subject, step and date."""
    return f"eod:{as_of.isoformat()}:{step}:{subject_id}"
