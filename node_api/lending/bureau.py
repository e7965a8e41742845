"""The credit-bureau file of one cycle (month): one merged record per credit line.

Bill mode reports the line, not its purchases: a line with a bill cut in the month gets
exactly one record built from that bill (however many micro-purchases the bill merges),
and a line charged off in the month gets its final record even without a bill.

Layout: CSV (RFC 4180, UTF-8, comma-separated, `\\n` line ends), one header row with
the column names below, then one row per line ordered by account id. Amounts are
integers in fen; dates are ISO `YYYY-MM-DD` (empty when not applicable).

| # | column               | content                                                          |
|---|----------------------|------------------------------------------------------------------|
| 1 | record_type          | always `D` (detail)                                              |
| 2 | cycle                | reporting month `YYYY-MM`                                        |
| 3 | account_id           | the credit line id                                               |
| 4 | customer_ref         | the node's opaque customer id (identity is added by the gateway  |
|   |                      | from the PII vault; no personal data is in this file)            |
| 5 | account_type         | `R` revolving purchase, `I` installment, `C` cash loan           |
| 6 | opened_on            | date the line was opened                                         |
| 7 | bill_date            | bill date of the cycle's bill                                    |
| 8 | due_date             | its payment due date                                             |
| 9 | credit_limit_fen     | the line's total limit                                           |
| 10| account_status       | `1` normal, `2` delinquent, `3` charged off, `4` closed,         |
|   |                      | `5` frozen                                                       |
| 11| balance_fen          | everything owed after the cut (unbilled installment principal    |
|   |                      | included); for a charged-off line, the amount written off        |
| 12| statement_balance_fen| the bill's statement balance                                     |
| 13| amount_due_fen       | the bill's minimum payment (the scheduled amount)                |
| 14| amount_paid_fen      | payments received in the bill's cycle                            |
| 15| past_due_fen         | amount past due at the cut                                       |
| 16| days_past_due        | days past due at the cut                                         |
| 17| payment_history_24   | 24 characters, oldest month first, this cycle last: `N` current, |
|   |                      | `1`–`6` months past due (M1–M6), `7` M7 or more, `G` charged off, |
|   |                      | `*` no bill that month (not open yet, or no record)              |
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any, TextIO

from sqlalchemy import select, union
from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, limit_node_table, product_version_table
from node_api.lending.bill_tables import bill_table
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.lines import credit_line_table
from node_api.lending.repayments import repayment_table


@dataclass(frozen=True, slots=True)
class BureauRecord:
    """One detail record, its fields in file column order (see the module docstring)."""

    record_type: str
    cycle: str
    account_id: int
    customer_ref: str
    account_type: str
    opened_on: str
    bill_date: str
    due_date: str
    credit_limit_fen: Fen
    account_status: str
    balance_fen: Fen
    statement_balance_fen: Fen
    amount_due_fen: Fen
    amount_paid_fen: Fen
    past_due_fen: Fen
    days_past_due: int
    payment_history_24: str


@dataclass(frozen=True, slots=True)
class _LineFacts:
    """What a record needs of its line."""

    id: int
    customer_ref: str
    status: str
    opened_on: date
    limit_fen: Fen
    product_type: str
    charged_off_on: date | None
    days_past_due: int
    written_off_fen: Fen


COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(BureauRecord))
HISTORY_MONTHS = 24
CHUNK_LINES = 5_000
_CYCLE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_ACCOUNT_TYPE = {"revolving_purchase": "R", "installment": "I", "cash_loan": "C"}
_BUCKET_CODE = {
    DelinquencyBucket.M0.value: "N",
    **{bucket.value: str(index) for index, bucket in enumerate(DelinquencyBucket) if index},
}


@dataclass(frozen=True, slots=True)
class BureauSummary:
    cycle: str
    records: int
    balance_fen: Fen


def parse_cycle(cycle: str) -> tuple[date, date]:
    """(first day, last day) of a `YYYY-MM` cycle."""
    match = _CYCLE.fullmatch(cycle)
    if match is None:
        raise CreditNetValueError("a cycle is written YYYY-MM", field="cycle")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def get_history_months(last: date) -> list[tuple[int, int]]:
    """The 24 (year, month) pairs ending with `last`'s month, oldest first."""
    index = last.year * 12 + last.month - 1
    return [(i // 12, i % 12 + 1) for i in range(index - HISTORY_MONTHS + 1, index + 1)]


def compute_history(
    months: Sequence[tuple[int, int]], buckets: dict[tuple[int, int], str], charged_off: date | None
) -> str:
    """The payment history string (see the module docstring)."""
    codes = []
    for month in months:
        if charged_off is not None and (charged_off.year, charged_off.month) == month:
            codes.append("G")
        elif month in buckets:
            codes.append(_BUCKET_CODE.get(buckets[month], "7"))
        else:
            codes.append("*")
    return "".join(codes)


def get_account_status(line_status: str, days_past_due: int, charged_off: bool) -> str:
    if charged_off:
        return "3"
    if line_status == "closed":
        return "4"
    if days_past_due > 0:
        return "2"
    return "5" if line_status == "frozen" else "1"


def _reported_lines(conn: Connection, first: date, last: date) -> list[int]:
    bills, state = bill_table, line_delinquency_table
    query = union(
        select(bills.c.credit_line_id).where(bills.c.bill_date.between(first, last)),
        select(state.c.credit_line_id).where(state.c.charged_off_on.between(first, last)),
    )
    return sorted(int(line_id) for line_id in conn.execute(query).scalars())


def _chunks(items: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), CHUNK_LINES):
        yield items[start : start + CHUNK_LINES]


def write_bureau_file(conn: Connection, cycle: str, out: TextIO) -> BureauSummary:
    """Write the cycle's bureau file to `out`; return what was written."""
    first, last = parse_cycle(cycle)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    records = 0
    balance_fen = Fen(0)
    for chunk in _chunks(_reported_lines(conn, first, last)):
        for record in _chunk_records(conn, cycle, first, last, chunk):
            writer.writerow([getattr(record, column) for column in COLUMNS])
            records += 1
            balance_fen = Fen(balance_fen + record.balance_fen)
    return BureauSummary(cycle, records, balance_fen)


def _chunk_records(
    conn: Connection, cycle: str, first: date, last: date, line_ids: list[int]
) -> Iterator[BureauRecord]:
    lines = _fetch_lines(conn, line_ids)
    months = get_history_months(last)
    window_start = date(months[0][0], months[0][1], 1)
    bills = bill_table
    history: dict[int, dict[tuple[int, int], str]] = {line_id: {} for line_id in line_ids}
    current: dict[int, Any] = {}
    for row in conn.execute(
        select(bills)
        .where(bills.c.credit_line_id.in_(line_ids) & bills.c.bill_date.between(window_start, last))
        .order_by(bills.c.bill_date)
    ):
        history[int(row.credit_line_id)][(row.bill_date.year, row.bill_date.month)] = row.bucket
        if first <= row.bill_date:
            current[int(row.credit_line_id)] = row
    paid = _payments(conn, line_ids, first, last)
    for line_id in line_ids:
        line = lines[line_id]
        charged_off = line.charged_off_on
        if charged_off is not None and charged_off > last:
            charged_off = None
        history_24 = compute_history(months, history[line_id], charged_off)
        bill = current.get(line_id)
        yield _record(cycle, line, bill, charged_off, Fen(paid.get(line_id, 0)), history_24)


def _record(
    cycle: str,
    line: _LineFacts,
    bill: Any | None,
    charged_off: date | None,
    paid_fen: Fen,
    history_24: str,
) -> BureauRecord:
    days = 0 if bill is None else int(bill.days_past_due)
    if charged_off is not None:
        days = max(days, line.days_past_due)
    balance_fen = Fen(0 if bill is None else int(bill.total_balance_fen))
    return BureauRecord(
        record_type="D",
        cycle=cycle,
        account_id=line.id,
        customer_ref=line.customer_ref,
        account_type=_ACCOUNT_TYPE.get(line.product_type, "R"),
        opened_on=line.opened_on.isoformat(),
        bill_date="" if bill is None else bill.bill_date.isoformat(),
        due_date="" if bill is None else bill.due_date.isoformat(),
        credit_limit_fen=line.limit_fen,
        account_status=get_account_status(line.status, days, charged_off is not None),
        balance_fen=line.written_off_fen if charged_off is not None else balance_fen,
        statement_balance_fen=Fen(0 if bill is None else int(bill.statement_balance_fen)),
        amount_due_fen=Fen(0 if bill is None or charged_off else int(bill.minimum_payment_fen)),
        amount_paid_fen=paid_fen if bill is None else Fen(int(bill.payments_fen)),
        past_due_fen=Fen(0 if bill is None else int(bill.past_due_fen)),
        days_past_due=days,
        payment_history_24=history_24,
    )


def _fetch_lines(conn: Connection, line_ids: list[int]) -> dict[int, _LineFacts]:
    """Line facts for the records: status, limit, product type, charge-off, write-off."""
    lines, nodes, state = credit_line_table, limit_node_table, line_delinquency_table
    products, accounts = product_version_table, ledger_account_table
    first_product = (
        select(nodes.c.credit_line_id, nodes.c.product_code, nodes.c.product_version)
        .where(nodes.c.credit_line_id.in_(line_ids) & (nodes.c.level == "product"))
        .order_by(nodes.c.id)
    )
    product_of: dict[int, tuple[str, int]] = {}
    for line_id, code, version in conn.execute(first_product):
        product_of.setdefault(int(line_id), (str(code), int(version)))
    types = {
        (code, int(version)): kind
        for code, version, kind in conn.execute(
            select(products.c.product_code, products.c.version, products.c.product_type)
        )
    }
    written = {
        int(line_id): int(balance)
        for line_id, balance in conn.execute(
            select(accounts.c.credit_line_id, accounts.c.balance_fen).where(
                accounts.c.credit_line_id.in_(line_ids)
                & (accounts.c.account_type == AccountType.WRITTEN_OFF.value)
            )
        )
    }
    rows = conn.execute(
        select(lines, nodes.c.limit_fen, state.c.charged_off_on, state.c.days_past_due)
        .join(nodes, (nodes.c.credit_line_id == lines.c.id) & (nodes.c.path == "total"))
        .outerjoin(state, state.c.credit_line_id == lines.c.id)
        .where(lines.c.id.in_(line_ids))
    ).mappings()
    return {
        int(row["id"]): _LineFacts(
            id=int(row["id"]),
            customer_ref=row["customer_ref"],
            status=row["status"],
            opened_on=row["opened_on"],
            limit_fen=Fen(int(row["limit_fen"])),
            product_type=types.get(product_of[int(row["id"])], ""),
            charged_off_on=row["charged_off_on"],
            days_past_due=int(row["days_past_due"] or 0),
            written_off_fen=Fen(written.get(int(row["id"]), 0)),
        )
        for row in rows
    }


def _payments(conn: Connection, line_ids: list[int], first: date, last: date) -> dict[int, int]:
    """Payments (not reversed) per line dated in the month."""
    table = repayment_table
    totals: dict[int, int] = {}
    for line_id, amount_fen in conn.execute(
        select(table.c.credit_line_id, table.c.amount_fen).where(
            table.c.credit_line_id.in_(line_ids)
            & table.c.as_of.between(first, last)
            & (table.c.status == "posted")
        )
    ):
        totals[int(line_id)] = totals.get(int(line_id), 0) + int(amount_fen)
    return totals
