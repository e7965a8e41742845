"""The credit-bureau file of one cycle (month): one merged record per credit line.

Bill mode reports the line, not its purchases: a line with a bill cut in the month gets
exactly one record built from that bill (however many micro-purchases the bill merges).
A charged-off line keeps being reported every month from its charge-off on (status bad
debt, class loss, its written-off balance), as the PBOC record keeps a 呆账 account.

The fields follow the PBOC second-generation individual credit report's account record
(个人借贷账户信息记录); the column names are ours, the codes theirs.

Layout: CSV (RFC 4180, UTF-8, comma-separated, `\\n` line ends), one header row with
the column names below, then one row per line ordered by account id. Amounts are
integers in fen; dates are ISO `YYYY-MM-DD` (empty when not applicable).

| # | column                    | PBOC field             | content                                 |
|---|---------------------------|------------------------|-----------------------------------------|
| 1 | record_type               |                        | always `D` (detail)                     |
| 2 | cycle                     | 报告月份               | reporting month `YYYY-MM`               |
| 3 | account_id                | 账户标识码             | the credit line id                      |
| 4 | customer_ref              | (identity, by gateway) | the node's opaque customer id; identity |
|   |                           |                        | is added by the gateway from the PII    |
|   |                           |                        | vault (no personal data in this file)   |
| 5 | account_type              | 账户类型               | `R1` revolving loan (revolving purchase |
|   |                           |                        | and cash lines), `D1` non-revolving     |
|   |                           |                        | (installment products)                  |
| 6 | opened_on                 | 开户日期               | date the line was opened                |
| 7 | bill_date                 | 结算日期               | bill date of the cycle's bill           |
| 8 | due_date                  | 应还款日               | its payment due date                    |
| 9 | credit_limit_fen          | 授信额度               | the line's total limit                  |
| 10| account_status            | 账户状态               | `1` normal, `2` overdue, `3` settled    |
|   |                           |                        | (closed), `4` bad debt (charged off)    |
| 11| five_tier_class           | 五级分类               | `1` 正常, `2` 关注, `3` 次级, `4` 可疑, |
|   |                           |                        | `5` 损失 (at the cut; 5 if charged off) |
| 12| balance_fen               | 余额                   | everything owed after the cut (unbilled |
|   |                           |                        | installment principal included); for a  |
|   |                           |                        | charged-off line, what is written off   |
| 13| used_limit_fen            | 已用额度               | everything owed after the cut (0 once   |
|   |                           |                        | charged off)                            |
| 14| average_used_limit_6m_fen | 最近6个月平均使用额度  | mean of the used limit of the bills of  |
|   |                           |                        | the last 6 months (this one included),  |
|   |                           |                        | over the months billed, rounded down    |
| 15| statement_balance_fen     | 本月应还款(账单金额)   | the bill's statement balance            |
| 16| amount_due_fen            | 本月应还款金额         | the bill's minimum payment              |
| 17| amount_paid_fen           | 本月实还款金额         | payments received in the bill's cycle   |
| 18| last_payment_date         | 最近一次还款日期       | the last payment dated in or before the |
|   |                           |                        | cycle (not reversed)                    |
| 19| last_payment_fen          | 最近一次还款金额       | its amount                              |
| 20| remaining_installments    | 剩余还款期数           | installments of active plans billed     |
|   |                           |                        | after the cycle                         |
| 21| overdue_periods           | 当前逾期期数           | months past due at the cut (the bucket: |
|   |                           |                        | M1 = 1 ... M7+ = 7)                     |
| 22| past_due_fen              | 当前逾期总额           | amount past due at the cut              |
| 23| overdue_principal_31_60_fen | 逾期31-60天未还本金  | principal past due, by the age of the   |
| 24| overdue_principal_61_90_fen | 逾期61-90天未还本金  | unpaid bill it belongs to on the cycle's|
| 25| overdue_principal_91_180_fen| 逾期91-180天未还本金 | last day (see `compute_overdue_bands`;  |
| 26| overdue_principal_180_plus_fen| 逾期180天以上未还本金| 1-30 days is in no band)              |
| 27| days_past_due             |                        | days past due at the cut                |
| 28| payment_history_24        | 24个月还款状态         | 24 characters, oldest month first, this |
|   |                           |                        | cycle last: `N` current, `1`-`7` months |
|   |                           |                        | past due (M1 ... M7+), `B` bad debt     |
|   |                           |                        | (charged off: that month and every one  |
|   |                           |                        | after), `*` no bill that month          |
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any, TextIO

from sqlalchemy import func, select, union
from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen, div_floor
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, limit_node_table, product_version_table
from node_api.lending.bill_tables import bill_charge_table, bill_table
from node_api.lending.billing_rules import BUCKET_ORDER, DelinquencyBucket, LoanClass
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.installment_tables import installment_table
from node_api.lending.lines import credit_line_table
from node_api.lending.repayment_tables import repayment_table


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
    five_tier_class: str
    balance_fen: Fen
    used_limit_fen: Fen
    average_used_limit_6m_fen: Fen
    statement_balance_fen: Fen
    amount_due_fen: Fen
    amount_paid_fen: Fen
    last_payment_date: str
    last_payment_fen: Fen
    remaining_installments: int
    overdue_periods: int
    past_due_fen: Fen
    overdue_principal_31_60_fen: Fen
    overdue_principal_61_90_fen: Fen
    overdue_principal_91_180_fen: Fen
    overdue_principal_180_plus_fen: Fen
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
    principal_past_due_fen: Fen


@dataclass(frozen=True, slots=True)
class _LineActivity:
    """Per line: bills in the history window, the last payment, installments left,
    unpaid past-due charges per bill (for the age bands)."""

    bills: list[Any]
    last_payment: tuple[date, int] | None
    remaining_installments: int
    bill_debts: list[tuple[date, int]]


COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(BureauRecord))
HISTORY_MONTHS = 24
AVERAGE_MONTHS = 6
CHUNK_LINES = 5_000
_CYCLE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_ACCOUNT_TYPE = {"revolving_purchase": "R1", "installment": "D1", "cash_loan": "R1"}
_BUCKET_CODE = {
    DelinquencyBucket.M0.value: "N",
    **{bucket.value: str(index) for index, bucket in enumerate(DelinquencyBucket) if index},
}
BAD_DEBT_CODE = "B"
"""24-month history code of a charged-off (呆账) month."""
CLASS_CODE = {
    LoanClass.NORMAL.value: "1",
    LoanClass.SPECIAL_MENTION.value: "2",
    LoanClass.SUBSTANDARD.value: "3",
    LoanClass.DOUBTFUL.value: "4",
    LoanClass.LOSS.value: "5",
}
BANDS: tuple[tuple[int, int | None], ...] = ((31, 60), (61, 90), (91, 180), (181, None))
"""Overdue principal age bands, days past due (inclusive; None: no upper bound)."""


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


def get_history_months(last: date, count: int = HISTORY_MONTHS) -> list[tuple[int, int]]:
    """The `count` (year, month) pairs ending with `last`'s month, oldest first."""
    index = last.year * 12 + last.month - 1
    return [(i // 12, i % 12 + 1) for i in range(index - count + 1, index + 1)]


def compute_history(
    months: Sequence[tuple[int, int]], buckets: dict[tuple[int, int], str], charged_off: date | None
) -> str:
    """The payment history string (see the module docstring): a charged-off line is `B`
    from its charge-off month on."""
    codes = []
    for month in months:
        if charged_off is not None and (charged_off.year, charged_off.month) <= month:
            codes.append(BAD_DEBT_CODE)
        elif month in buckets:
            codes.append(_BUCKET_CODE.get(buckets[month], "7"))
        else:
            codes.append("*")
    return "".join(codes)


def get_account_status(line_status: str, days_past_due: int, charged_off: bool) -> str:
    """PBOC account status: 4 bad debt, 3 settled (closed), 2 overdue, 1 normal (a frozen
    line is reported by its repayment standing)."""
    if charged_off:
        return "4"
    if line_status == "closed":
        return "3"
    if days_past_due > 0:
        return "2"
    return "1"


def compute_overdue_bands(
    principal_past_due_fen: Fen, debts: Sequence[tuple[date, int]], as_of: date
) -> tuple[Fen, ...]:
    """Principal past due by age band (`BANDS`) on `as_of`.

    `debts` are the line's bills with the principal each made past due (due date, fen).
    Payments settle the oldest past due first, so the principal still past due belongs
    to the newest bills: it is attributed newest first, each bill taking at most the
    principal it made past due, aged by the days from its due date to `as_of`."""
    bands = [0] * len(BANDS)
    left_fen: int = principal_past_due_fen
    for due_date, charged_fen in sorted(debts, reverse=True):
        take_fen = min(left_fen, charged_fen)
        if take_fen <= 0:
            break
        left_fen -= take_fen
        days = (as_of - due_date).days
        for index, (low, high) in enumerate(BANDS):
            if days >= low and (high is None or days <= high):
                bands[index] += take_fen
    return tuple(Fen(band_fen) for band_fen in bands)


def _reported_lines(conn: Connection, first: date, last: date) -> list[int]:
    bills, state = bill_table, line_delinquency_table
    query = union(
        select(bills.c.credit_line_id).where(bills.c.bill_date.between(first, last)),
        select(state.c.credit_line_id).where(state.c.charged_off_on <= last),
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
    activity = _fetch_activity(conn, line_ids, date(months[0][0], months[0][1], 1), last)
    paid = _payments(conn, line_ids, first, last)
    average_months = set(get_history_months(last, AVERAGE_MONTHS))
    for line_id in line_ids:
        line, found = lines[line_id], activity[line_id]
        charged_off = line.charged_off_on
        if charged_off is not None and charged_off > last:
            charged_off = None
        history = {(b.bill_date.year, b.bill_date.month): b.bucket for b in found.bills}
        current = next((b for b in reversed(found.bills) if first <= b.bill_date), None)
        used = [int(b.total_balance_fen) for b in found.bills
                if (b.bill_date.year, b.bill_date.month) in average_months]  # fmt: skip
        bands = compute_overdue_bands(line.principal_past_due_fen, found.bill_debts, last)
        yield _record(
            cycle, line, current, charged_off, Fen(paid.get(line_id, 0)),
            compute_history(months, history, charged_off), found,
            Fen(div_floor(sum(used), len(used)) if used else 0), bands,
        )  # fmt: skip


def _record(
    cycle: str,
    line: _LineFacts,
    bill: Any | None,
    charged_off: date | None,
    paid_fen: Fen,
    history_24: str,
    found: _LineActivity,
    average_fen: Fen,
    bands: tuple[Fen, ...],
) -> BureauRecord:
    days = 0 if bill is None else int(bill.days_past_due)
    if charged_off is not None:
        days = max(days, line.days_past_due)
    balance_fen = Fen(0 if bill is None else int(bill.total_balance_fen))
    loan_class = LoanClass.LOSS.value if charged_off else (
        LoanClass.NORMAL.value if bill is None else str(bill.loan_class)
    )  # fmt: skip
    bucket = DelinquencyBucket.M0.value if bill is None else str(bill.bucket)
    last_payment = found.last_payment
    return BureauRecord(
        record_type="D",
        cycle=cycle,
        account_id=line.id,
        customer_ref=line.customer_ref,
        account_type=_ACCOUNT_TYPE.get(line.product_type, "R1"),
        opened_on=line.opened_on.isoformat(),
        bill_date="" if bill is None else bill.bill_date.isoformat(),
        due_date="" if bill is None else bill.due_date.isoformat(),
        credit_limit_fen=line.limit_fen,
        account_status=get_account_status(line.status, days, charged_off is not None),
        five_tier_class=CLASS_CODE[loan_class],
        balance_fen=line.written_off_fen if charged_off is not None else balance_fen,
        used_limit_fen=Fen(0) if charged_off is not None else balance_fen,
        average_used_limit_6m_fen=average_fen,
        statement_balance_fen=Fen(0 if bill is None else int(bill.statement_balance_fen)),
        amount_due_fen=Fen(0 if bill is None or charged_off else int(bill.minimum_payment_fen)),
        amount_paid_fen=paid_fen if bill is None else Fen(int(bill.payments_fen)),
        last_payment_date="" if last_payment is None else last_payment[0].isoformat(),
        last_payment_fen=Fen(0 if last_payment is None else last_payment[1]),
        remaining_installments=0 if charged_off else found.remaining_installments,
        overdue_periods=7 if charged_off else BUCKET_ORDER.index(DelinquencyBucket(bucket)),
        past_due_fen=Fen(0 if bill is None else int(bill.past_due_fen)),
        overdue_principal_31_60_fen=bands[0],
        overdue_principal_61_90_fen=bands[1],
        overdue_principal_91_180_fen=bands[2],
        overdue_principal_180_plus_fen=bands[3],
        days_past_due=days,
        payment_history_24=history_24,
    )


def _fetch_activity(
    conn: Connection, line_ids: list[int], window_start: date, last: date
) -> dict[int, _LineActivity]:
    """Bills of the window, last payment, installments left and bill debts, per line."""
    bills, repayments, items, charges = (
        bill_table, repayment_table, installment_table, bill_charge_table,
    )  # fmt: skip
    found_bills: dict[int, list[Any]] = {line_id: [] for line_id in line_ids}
    for row in conn.execute(
        select(bills)
        .where(bills.c.credit_line_id.in_(line_ids) & bills.c.bill_date.between(window_start, last))
        .order_by(bills.c.bill_date)
    ):
        found_bills[int(row.credit_line_id)].append(row)
    latest = (
        select(repayments.c.credit_line_id, func.max(repayments.c.id).label("id"))
        .where(
            repayments.c.credit_line_id.in_(line_ids)
            & (repayments.c.as_of <= last)
            & (repayments.c.status == "posted")
        )
        .group_by(repayments.c.credit_line_id)
        .subquery()
    )
    payments = {
        int(line_id): (as_of, int(amount_fen))
        for line_id, as_of, amount_fen in conn.execute(
            select(repayments.c.credit_line_id, repayments.c.as_of, repayments.c.amount_fen).join(
                latest, latest.c.id == repayments.c.id
            )
        )
    }
    remaining = {
        int(line_id): int(count)
        for line_id, count in conn.execute(
            select(items.c.credit_line_id, func.count())
            .where(
                items.c.credit_line_id.in_(line_ids)
                & (items.c.bill_date > last)
                & items.c.status.in_(["scheduled", "billed"])
            )
            .group_by(items.c.credit_line_id)
        )
    }
    debts: dict[int, list[tuple[date, int]]] = {line_id: [] for line_id in line_ids}
    for line_id, due_date, charged_fen in conn.execute(
        select(charges.c.credit_line_id, bills.c.due_date, func.sum(charges.c.principal_fen))
        .join(bills, bills.c.id == charges.c.bill_id)
        .where(charges.c.credit_line_id.in_(line_ids) & (charges.c.kind == "past_due"))
        .group_by(charges.c.credit_line_id, bills.c.due_date)
    ):
        debts[int(line_id)].append((due_date, int(charged_fen)))
    return {
        line_id: _LineActivity(
            found_bills[line_id], payments.get(line_id), remaining.get(line_id, 0), debts[line_id]
        )
        for line_id in line_ids
    }


def _fetch_lines(conn: Connection, line_ids: list[int]) -> dict[int, _LineFacts]:
    """Line facts for the records: status, limit, product type, charge-off, write-off,
    principal past due."""
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
    kinds = (AccountType.WRITTEN_OFF.value, AccountType.PRINCIPAL_PAST_DUE.value)
    balances: dict[tuple[int, str], int] = {
        (int(line_id), str(kind)): int(balance)
        for line_id, kind, balance in conn.execute(
            select(
                accounts.c.credit_line_id, accounts.c.account_type, accounts.c.balance_fen
            ).where(accounts.c.credit_line_id.in_(line_ids) & accounts.c.account_type.in_(kinds))
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
            written_off_fen=Fen(balances.get((int(row["id"]), kinds[0]), 0)),
            principal_past_due_fen=Fen(balances.get((int(row["id"]), kinds[1]), 0)),
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
