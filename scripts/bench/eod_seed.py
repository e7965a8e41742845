"""Seeding the end-of-day benchmark: N active lines on PostgreSQL, written with COPY.

The bench date D is 5 November 2025. Every line has three purchases, its own ledger
accounts and funding payables, and a consistent ledger (each line's state is posted by
seed batches, so the trial balance is zero and every account holds the sum of its
postings); every per-customer row names the line's customer (`customer_id`). Lines
alternate between two kinds:
- even lines are billed on the 5th: D cuts their bill (purchases of the cycle); 30% of
  them carry a revolving balance from the October bill (billed principal and accrued
  interest: D accrues their interest), and 10% of those have 5,000 past due since 25
  October (D ages them and charges penalty interest);
- odd lines are billed on the 16th: their 16 October bill is due on D; a third paid it
  in full, a third paid the minimum, a third paid nothing (D decides each, charges
  interest from each posting date, makes the unpaid minimum past due).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import (
    ACCOUNT_RULES,
    LINE_ACCOUNT_TYPES,
    AccountType,
    ensure_accounts,
    funding_payable_code,
    line_account_code,
    node_account_code,
    node_account_specs,
    partner_account_spec,
)
from node_api.ledger.business_date import set_business_date
from node_api.ledger.schema import ledger_account_table
from node_api.lending.core.entries import compute_funded_split
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import ProductTerms, parse_product_terms

BENCH_DAY = date(2025, 11, 5)
OPENED_ON = date(2025, 8, 1)
PRODUCT_CODE = "EODBENCH"
LINE_LIMIT_FEN = 10_000_000
CLEARING = node_account_code(AccountType.SETTLEMENT_CLEARING)
INTEREST_INCOME = node_account_code(AccountType.INTEREST_INCOME)
NODE_CODES = (CLEARING, INTEREST_INCOME)
PARTNERS = ("bank-a", "lender")
SEQUENCED_TABLES = (
    "credit_line", "limit_node", "ledger_account", "purchase", "posting_batch", "posting",
    "bill", "bill_charge", "repayment",
)  # fmt: skip


def bench_terms() -> ProductTerms:
    return parse_product_terms(
        {
            "product_code": PRODUCT_CODE,
            "version": 1,
            "product_type": "revolving_purchase",
            "limit_fen_min": 1,
            "limit_fen_max": LINE_LIMIT_FEN,
            "interest": {"method": "daily_ppm", "rate": 500},
            "free_interest_days": 50,
            "bill_day_options": [5, 16],
            "due_date_offset_days": 20,
            "minimum_payment": {"principal_share_bps": 1_000, "floor_fen": 5_000},
            "fees": {"late_fee_fixed_fen": 3_000, "late_fee_cap_per_bill_fen": 5_000},
            "penalty_rate_ppm_per_day": 500,
            "grace_days": 3,
            "funding_split": [
                {"partner_id": "lender", "share_ppm": 300_000, "funder_rate_bps": 0},
                {"partner_id": "bank-a", "share_ppm": 700_000, "funder_rate_bps": 600},
            ],
            "channel_commission_bps": 0,
            "eligible_channels": ["app"],
        }
    )


@dataclass
class LinePlan:
    """One seeded line: its purchases, balances and October bill."""

    line_id: int
    bill_day: int
    purchases: list[tuple[date, int]]
    balances: dict[AccountType, int] = field(default_factory=dict)
    paid_fen: int = 0
    bill: dict[str, Any] | None = None
    past_due_fen: int = 0
    revolving: bool = False


def customer_of(line_id: int) -> str:
    """The customer of bench line `line_id` (its `customer_ref`), which every per-customer
    row of the line carries as `customer_id`."""
    return f"bench-{line_id}"


def plan_line(index: int) -> LinePlan:
    """What line `index` (0-based) looks like on the bench date (module docstring)."""
    line_id = index + 1
    amounts = [10_000 + 100 * (index % 50), 12_000, 8_000 + 10 * (index % 7)]
    group = (index // 2) % 10
    if index % 2 == 0:
        days = [BENCH_DAY - timedelta(days=d) for d in (25, 15, 5)]
        plan = LinePlan(line_id, 5, list(zip(days, amounts, strict=True)))
        plan.balances[AccountType.PRINCIPAL_UNBILLED] = sum(amounts)
        if group < 3:
            plan.revolving = True
            plan.past_due_fen = 5_000 if group == 2 else 0
            plan.balances[AccountType.PRINCIPAL_BILLED] = 50_000 - plan.past_due_fen
            plan.balances[AccountType.PRINCIPAL_PAST_DUE] = plan.past_due_fen
            plan.balances[AccountType.INTEREST_UNBILLED] = 2_000
            plan.bill = _bill(line_id, date(2025, 10, 5), 50_000, plan.past_due_fen)
        return plan
    bill_date = date(2025, 10, 16)
    days = [bill_date - timedelta(days=d) for d in (25, 15, 5)]
    plan = LinePlan(line_id, 16, list(zip(days, amounts, strict=True)))
    billed_fen = sum(amounts)
    plan.bill = _bill(line_id, bill_date, billed_fen, 0)
    plan.paid_fen = [billed_fen, plan.bill["minimum_payment_fen"], 0][(index // 2) % 3]
    plan.balances[AccountType.PRINCIPAL_BILLED] = billed_fen
    return plan


def _bill(line_id: int, bill_date: date, principal_fen: int, past_due_fen: int) -> dict[str, Any]:
    minimum_fen = max((principal_fen - past_due_fen) // 10, 5_000) + past_due_fen
    zero = dict.fromkeys(
        ("interest_fen", "fee_fen", "penalty_fen", "installment_principal_fen",
         "installment_interest_fen", "installment_fee_fen", "refunds_fen", "payments_fen",
         "credit_balance_fen", "plan_principal_fen", "carried_fen", "days_past_due"),
        0,
    )  # fmt: skip
    return zero | {
        "credit_line_id": line_id,
        "customer_id": customer_of(line_id),
        "bill_date": bill_date,
        "cycle_start": bill_date.replace(month=bill_date.month - 1) + timedelta(days=1),
        "due_date": bill_date + timedelta(days=20),
        "product_code": PRODUCT_CODE,
        "product_version": 1,
        "statement_balance_fen": principal_fen,
        "minimum_payment_fen": minimum_fen,
        "past_due_fen": 0,
        "new_principal_fen": principal_fen,
        "revolving_principal_fen": principal_fen,
        "purchases_fen": principal_fen,
        "total_balance_fen": principal_fen,
        "bucket": "M0",
    }


SEED_CHUNK_LINES = 50_000
"""Lines planned and written at a time: the seeder's memory is bounded by a chunk."""


def seed_bench(conn: Connection, lines: int, chunk_lines: int = SEED_CHUNK_LINES) -> None:
    """Seed `lines` lines (module docstring) in the caller's transaction, `chunk_lines` at
    a time (the rows are the same whatever the chunk)."""
    terms = bench_terms()
    register_product_version(conn, terms)
    set_business_date(conn, BENCH_DAY)
    ensure_accounts(
        conn,
        [
            *node_account_specs(),
            partner_account_spec("app", AccountType.CHANNEL_COMMISSION_PAYABLE),
        ],
    )
    writer = _Copier(conn)
    seeded = _Seeded()
    for first in range(0, lines, chunk_lines):
        plans = [plan_line(index) for index in range(first, min(lines, first + chunk_lines))]
        _seed_chunk(conn, writer, plans, terms, seeded)
    for code in NODE_CODES:
        conn.execute(
            text("UPDATE ledger_account SET balance_fen = :b WHERE code = :c"),
            {"b": seeded.node_balances.get(code, 0), "c": code},
        )
    for table in SEQUENCED_TABLES:
        # The table names are this module's constants, never input.
        statement = (
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
            f"GREATEST((SELECT max(id) FROM {table}), 1))"
        )
        conn.execute(text(statement))
    conn.execute(text("ANALYZE"))


def _seed_chunk(
    conn: Connection, writer: _Copier, plans: list[LinePlan], terms: ProductTerms, seeded: _Seeded
) -> None:
    writer.copy(
        "credit_line",
        ["id", "customer_ref", "currency", "status", "opened_on", "bill_day"],
        (
            (p.line_id, customer_of(p.line_id), "CNY", "active", OPENED_ON, p.bill_day)
            for p in plans
        ),
    )
    _seed_nodes(writer, plans)
    chunk = _plan_postings(conn, plans, terms, seeded)
    _seed_accounts(conn, writer, plans, chunk.balances)
    writer.copy("posting_batch", ["id", "business_key", "kind", "as_of", "credit_line_id",
                                  "customer_id"], chunk.batches)  # fmt: skip
    writer.copy("posting", ["id", "batch_id", "account_id", "amount_fen", "as_of", "customer_id"],
                chunk.postings)  # fmt: skip
    writer.copy("repayment", ["id", "credit_line_id", "amount_fen", "currency", "as_of", "status",
                              "customer_id"], chunk.repayments)  # fmt: skip
    _seed_purchases(writer, plans)
    _seed_bills(writer, plans)


class _Copier:
    """COPY rows into a table through the connection's psycopg cursor."""

    def __init__(self, conn: Connection) -> None:
        self._cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def copy(
        self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]] | Any
    ) -> None:
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _principal(plan: LinePlan) -> int:
    return sum(plan.balances.get(kind, 0) for kind in (
        AccountType.PRINCIPAL_UNBILLED, AccountType.PRINCIPAL_BILLED, AccountType.PRINCIPAL_PAST_DUE
    )) - plan.paid_fen  # fmt: skip


def _seed_nodes(writer: _Copier, plans: list[LinePlan]) -> None:
    def rows() -> Iterator[tuple[Any, ...]]:
        for plan in plans:
            base = 3 * plan.line_id
            used = _principal(plan)
            customer = customer_of(plan.line_id)
            yield (base - 2, plan.line_id, None, "total", "total", None, None, LINE_LIMIT_FEN, used,
                   customer)  # fmt: skip
            yield (base - 1, plan.line_id, base - 2, "total/purchase", "group", None, None,
                   LINE_LIMIT_FEN, used, customer)  # fmt: skip
            yield (base, plan.line_id, base - 1, f"total/purchase/{PRODUCT_CODE}", "product",
                   PRODUCT_CODE, 1, LINE_LIMIT_FEN, used, customer)  # fmt: skip

    columns = ["id", "credit_line_id", "parent_id", "path", "level", "product_code",
               "product_version", "limit_fen", "used_fen", "customer_id"]  # fmt: skip
    writer.copy("limit_node", columns, rows())


def _seed_accounts(
    conn: Connection, writer: _Copier, plans: list[LinePlan], balances: dict[str, int]
) -> None:
    """Every line's accounts with the balances their seed postings give them."""
    table = ledger_account_table
    next_id = int(conn.execute(select(func.max(table.c.id))).scalar_one()) + 1
    rows: list[tuple[int, str, AccountType, int, str | None, str]] = []
    for plan in plans:
        line_id, customer = plan.line_id, customer_of(plan.line_id)
        for kind in LINE_ACCOUNT_TYPES:
            rows.append((next_id, line_account_code(line_id, kind), kind, line_id, None, customer))
            next_id += 1
        for partner in ("bank-a", "lender"):
            code = funding_payable_code(line_id, PRODUCT_CODE, partner)
            rows.append((next_id, code, AccountType.FUNDING_PAYABLE, line_id, partner, customer))
            next_id += 1
    writer.copy(
        "ledger_account",
        ["id", "code", "account_type", "credit_line_id", "partner_ref", "currency", "normal_sign",
         "floor_fen", "balance_fen", "customer_id"],
        ((i, code, kind.value, line_id, partner, "CNY", ACCOUNT_RULES[kind].normal_sign,
          ACCOUNT_RULES[kind].floor_fen, balances.get(code, 0), customer)
         for i, code, kind, line_id, partner, customer in rows),
    )  # fmt: skip


def _seed_purchases(writer: _Copier, plans: list[LinePlan]) -> None:
    def rows() -> Iterator[tuple[Any, ...]]:
        for plan in plans:
            left_fen = plan.paid_fen
            customer = customer_of(plan.line_id)
            for offset, (posted_on, amount_fen) in enumerate(plan.purchases):
                taken_fen = min(left_fen, amount_fen)
                left_fen -= taken_fen
                yield (3 * plan.line_id - 2 + offset, plan.line_id, "purchase", 3 * plan.line_id,
                       PRODUCT_CODE, 1, "app", "m-1", "CNY", amount_fen, amount_fen - taken_fen,
                       posted_on, customer)  # fmt: skip

    columns = ["id", "credit_line_id", "kind", "product_node_id", "product_code",
               "product_version", "channel_id", "merchant_id", "currency", "amount_fen",
               "principal_open_fen", "as_of", "customer_id"]  # fmt: skip
    writer.copy("purchase", columns, rows())


def _line_postings(
    plan: LinePlan, terms: ProductTerms
) -> list[tuple[str, date, list[tuple[str, int]]]]:
    """The seed batches of one line: (kind, date, [(account code, signed amount)])."""
    line_id = plan.line_id
    state = [(line_account_code(line_id, kind), fen) for kind, fen in plan.balances.items() if fen]
    principal_fen = _principal(plan) + plan.paid_fen
    interest_fen = plan.balances.get(AccountType.INTEREST_UNBILLED, 0)
    funded = compute_funded_split(principal_fen, terms.funding_split)
    lines = [*state, (CLEARING, -principal_fen + sum(funded.values()))]
    lines += [(funding_payable_code(line_id, PRODUCT_CODE, p), -funded[p]) for p in PARTNERS]
    if interest_fen:
        lines.append((INTEREST_INCOME, -interest_fen))
    seed_day = (
        plan.bill["bill_date"]
        if plan.bill and plan.bill_day == 16
        else BENCH_DAY - timedelta(days=5)
    )
    batches = [("bench_seed", seed_day, [line for line in lines if line[1]])]
    if plan.paid_fen:
        left = compute_funded_split(principal_fen - plan.paid_fen, terms.funding_split)
        back = {p: funded[p] - left[p] for p in PARTNERS}
        paid = [
            (CLEARING, plan.paid_fen - sum(back.values())),
            (line_account_code(line_id, AccountType.PRINCIPAL_BILLED), -plan.paid_fen),
        ]
        paid += [(funding_payable_code(line_id, PRODUCT_CODE, p), back[p]) for p in PARTNERS]
        batches.append(("repayment", date(2025, 10, 30), [line for line in paid if line[1]]))
    return batches


@dataclass
class _Seeded:
    """One chunk's rows (`balances` of its lines' accounts), or, across chunks, the ids
    used so far and the node accounts' balances."""

    balances: dict[str, int] = field(default_factory=dict)
    batches: list[tuple[Any, ...]] = field(default_factory=list)
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    repayments: list[tuple[Any, ...]] = field(default_factory=list)
    last_batch_id: int = 0
    last_posting_id: int = 0
    node_balances: dict[str, int] = field(default_factory=dict)


def _plan_postings(
    conn: Connection, plans: list[LinePlan], terms: ProductTerms, so_far: _Seeded
) -> _Seeded:
    """The chunk's seed batches and postings and the balances they give its lines'
    accounts (ids after `so_far`'s and the accounts already written); the node
    accounts' balances are added to `so_far`'s."""
    table = ledger_account_table
    ids = {
        str(code): int(i)
        for code, i in conn.execute(
            select(table.c.code, table.c.id).where(table.c.code.in_(NODE_CODES))
        )
    }
    next_id = int(conn.execute(select(func.max(table.c.id))).scalar_one()) + 1
    seeded = _Seeded()
    balances, batches, postings = seeded.balances, seeded.batches, seeded.postings
    for plan in plans:
        customer = customer_of(plan.line_id)
        for kind in LINE_ACCOUNT_TYPES:
            ids[line_account_code(plan.line_id, kind)] = next_id
            next_id += 1
        for partner in PARTNERS:
            ids[funding_payable_code(plan.line_id, PRODUCT_CODE, partner)] = next_id
            next_id += 1
        for batch_kind, day, lines in _line_postings(plan, terms):
            so_far.last_batch_id += 1
            batch_id = so_far.last_batch_id
            batches.append(
                (batch_id, f"{batch_kind}:{plan.line_id}", batch_kind, day, plan.line_id, customer)
            )
            for code, amount_fen in lines:
                so_far.last_posting_id += 1
                postings.append(
                    (so_far.last_posting_id, batch_id, ids[code], amount_fen, day, customer)
                )
                owner = so_far.node_balances if code in NODE_CODES else balances
                owner[code] = owner.get(code, 0) + amount_fen
            if batch_kind == "repayment":
                seeded.repayments.append(
                    (plan.line_id, plan.line_id, plan.paid_fen, "CNY", day, "posted", customer)
                )
    return seeded


def _seed_bills(writer: _Copier, plans: list[LinePlan]) -> None:
    bills = [plan.bill | {"id": plan.line_id} for plan in plans if plan.bill]
    columns = list(bills[0]) if bills else []
    writer.copy("bill", columns, (tuple(bill[c] for c in columns) for bill in bills))
    decided = [plan for plan in plans if plan.bill and plan.bill_day == 5]
    writer.copy(
        "bill_outcome",
        ["bill_id", "credit_line_id", "decided_on", "paid_fen", "paid_in_full",
         "unpaid_minimum_fen", "moved_to_past_due_fen", "retro_interest_fen", "customer_id"],
        ((p.line_id, p.line_id, date(2025, 10, 25), 0, False, p.past_due_fen, p.past_due_fen, 0,
          customer_of(p.line_id)) for p in decided),
    )  # fmt: skip
    writer.copy(
        "bill_charge",
        ["id", "bill_id", "credit_line_id", "as_of", "kind", "amount_fen", "customer_id"],
        ((p.line_id, p.line_id, p.line_id, date(2025, 10, 25), "past_due", p.past_due_fen,
          customer_of(p.line_id)) for p in decided if p.past_due_fen),
    )  # fmt: skip
    writer.copy(
        "line_delinquency",
        ["credit_line_id", "as_of", "revolving", "days_past_due", "bucket", "customer_id"],
        ((p.line_id, BENCH_DAY - timedelta(days=1), True, 10 if p.past_due_fen else 0,
          "M1" if p.past_due_fen else "M0", customer_of(p.line_id)) for p in decided),
    )  # fmt: skip
