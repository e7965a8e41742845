"""Bill step: on each line's bill day, cut one bill that merges every use posted in the
cycle and every installment falling due (see `node_api.lending.bills` for the figures).

Every open, not charged-off line gets a bill on its bill day, even an empty one, so the
bureau file has one record per line per cycle. A line holding customer credit has it
applied to what the cut made due, and its bill is net of it (`credit_applied_fen`).
The bill's lines (uses, refunds, payments, conversions of the cycle) are copied with
set-based INSERT ... SELECT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import exists, func, literal, select, true
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountType
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import Row, bulk_insert, bulk_insert_returning_ids, in_values
from node_api.lending.bill_tables import bill_line_table, bill_table
from node_api.lending.billing_rules import compute_due_date, compute_previous_bill_date
from node_api.lending.bills import (
    RECEIVABLE_TYPES,
    BillCutInputs,
    DueInstallment,
    compute_bill_cut,
    compute_figures_net_of_credit,
)
from node_api.lending.core.books import fetch_line_books
from node_api.lending.customer_credit import apply_customer_credit
from node_api.lending.eod.books import build_draft, post_drafts
from node_api.lending.eod.context import EodContext, LineFacts, get_business_key, load_facts
from node_api.lending.eod.state import LineState, fetch_line_states
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off
from node_api.lending.installment_store import (
    fetch_due_installments,
    fetch_plan_unbilled_principal,
    mark_installments_billed,
    settle_prepaid_installments,
)
from node_api.lending.installment_tables import installment_plan_table
from node_api.lending.lines import credit_line_table, fetch_lines, write_usage
from node_api.lending.purchase_tables import purchase_refund_table, purchase_table
from node_api.lending.repayment_tables import repayment_table

BILL_TYPES = (*RECEIVABLE_TYPES, AccountType.CUSTOMER_CREDIT)
"""The accounts a cut reads (its figures) and posts to: not the written-off or suspended
interest memos, two of a line's fifteen accounts."""


def list_bill_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    """Lines billed today: on their bill day, or on a short month's last day for the bill
    days it does not have (end-of-month rule)."""
    lines, bills = credit_line_table, bill_table
    month_end = (as_of + timedelta(days=1)).day == 1
    today = (lines.c.bill_day >= as_of.day) if month_end else (lines.c.bill_day == as_of.day)
    billed = exists(
        select(bills.c.id).where(
            (bills.c.credit_line_id == lines.c.id) & (bills.c.bill_date == as_of)
        )
    )
    return get_ids(
        conn,
        select(lines.c.id).where(
            today
            & (lines.c.status != "closed")
            & (lines.c.opened_on <= as_of)
            & (lines.c.id > after)
            & ~billed
            & not_charged_off(lines.c.id)
        ),
    )


def get_cycle_start(as_of: date, bill_day: int) -> date:
    """First posting date of the cycle a bill cut on `as_of` covers."""
    return compute_previous_bill_date(as_of, bill_day) + timedelta(days=1)


def fetch_cycle_activity(
    conn: Connection, line_ids: Sequence[int], start: date, end: date
) -> dict[int, dict[str, int]]:
    """Per line: uses, refunds and payments (not reversed) dated in [start, end]."""
    found = {
        line_id: {"purchases_fen": 0, "refunds_fen": 0, "payments_fen": 0} for line_id in line_ids
    }
    sources: list[tuple[str, Any, Any]] = [
        ("purchases_fen", purchase_table, true()),
        ("refunds_fen", purchase_refund_table, true()),
        ("payments_fen", repayment_table, repayment_table.c.status == "posted"),
    ]
    for name, table, condition in sources:
        rows = conn.execute(
            select(table.c.credit_line_id, func.sum(table.c.amount_fen))
            .where(
                in_values(conn, table.c.credit_line_id, line_ids)
                & (table.c.as_of >= start)
                & (table.c.as_of <= end)
                & condition
            )
            .group_by(table.c.credit_line_id)
        )
        for line_id, total_fen in rows:
            found[int(line_id)][name] = int(total_fen)
    return found


def _bill_row(
    facts: LineFacts, as_of: date, figures: Mapping[str, int], state: LineState
) -> dict[str, int | str | date]:
    """The `bill` row of a line's cut: its customer, dates, product, delinquency and the
    figures."""
    terms = facts.terms
    return {
        "credit_line_id": facts.credit_line_id,
        "customer_id": facts.customer_id,
        "bill_date": as_of,
        "cycle_start": max(get_cycle_start(as_of, facts.bill_day), facts.opened_on),
        "due_date": compute_due_date(as_of, terms.due_date_offset_days),
        "product_code": terms.product_code,
        "product_version": terms.version,
        "days_past_due": state.days_past_due,
        "bucket": state.bucket.value,
        "loan_class": state.loan_class.value,
        **figures,
    }


def run_bill_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, BILL_TYPES)
    bills = bill_table
    billed = get_ids(
        conn,
        select(bills.c.credit_line_id).where(
            in_values(conn, bills.c.credit_line_id, list(facts)) & (bills.c.bill_date == as_of)
        ),
    )
    ids = sorted(set(facts) - set(billed))
    states = fetch_line_states(conn, ids)
    planned = _plan_principal(conn, ctx, facts, ids, as_of)
    due = fetch_due_installments(conn, ids, as_of)
    activity: dict[int, dict[str, int]] = {}
    for bill_day in sorted({facts[line_id].bill_day for line_id in ids}):
        same_day = [line_id for line_id in ids if facts[line_id].bill_day == bill_day]
        start = get_cycle_start(as_of, bill_day)
        activity |= fetch_cycle_activity(conn, same_day, start, as_of)
    drafts = []
    figures: dict[int, dict[str, int]] = {}
    for line_id in ids:
        item = facts[line_id]
        inputs = BillCutInputs(item.balances, planned.get(line_id, 0), due.get(line_id, []))
        cut = compute_bill_cut(inputs, item.terms)
        drafts.append(
            build_draft(
                as_of=as_of, step=EodStep.BILL, subject_id=line_id, line=item,
                movement=cut.movement,
                node_fen={AccountType.INTEREST_INCOME: -cut.interest_income_fen,
                          AccountType.FEE_INCOME: -cut.fee_income_fen},
            )
        )  # fmt: skip
        figures[line_id] = cut.figures | activity[line_id]
    # The cuts of lines holding credit are posted first (the credit applies to what they
    # made due); the others last, as they lock the node's shared accounts until commit.
    cuts = dict(zip(ids, drafts, strict=True))
    credited = {line_id for line_id in ids if _holds_credit(facts[line_id])}
    posted = post_drafts(conn, ctx, [cuts[line_id] for line_id in ids if line_id in credited])
    for line_id, applied in _apply_credit(conn, ctx, as_of, facts, ids).items():
        figures[line_id] = compute_figures_net_of_credit(figures[line_id], applied)
    rows = [_bill_row(facts[line_id], as_of, figures[line_id], states[line_id]) for line_id in ids]
    bill_ids = _insert_bills(conn, ids, rows)
    _insert_bill_lines(conn, as_of, facts, ids, due, bill_ids, figures)
    mark_installments_billed(
        conn,
        [(item, bill_ids[line_id]) for line_id in ids for item in due.get(line_id, [])],
        as_of,
    )
    posted += post_drafts(conn, ctx, [cuts[line_id] for line_id in ids if line_id not in credited])
    statement_fen = sum(figures[line_id]["statement_balance_fen"] for line_id in ids)
    return BatchResult(len(ids), posted, statement_fen)


def _holds_credit(facts: LineFacts) -> bool:
    return facts.balances[AccountType.CUSTOMER_CREDIT] > 0


def _apply_credit(
    conn: Connection, ctx: EodContext, as_of: date, facts: dict[int, LineFacts], ids: list[int]
) -> dict[int, dict[AccountType, int]]:
    """Apply the credit of the lines holding some to what the cut made due; what each
    account took, per line."""
    credited = [line_id for line_id in ids if _holds_credit(facts[line_id])]
    if not credited:
        return {}
    lines = fetch_lines(conn, credited, lock=True)
    books = fetch_line_books(conn, credited, ctx.caches.accounts)
    found: dict[int, dict[AccountType, int]] = {}
    for line_id in credited:
        key = get_business_key(as_of, EodStep.BILL, line_id) + ":credit"
        applied = apply_customer_credit(
            conn, ctx.caches, lines[line_id], books[line_id], as_of, key
        )
        write_usage(conn, lines[line_id].nodes)
        found[line_id] = {}
        for item in applied:
            found[line_id][item.account_type] = (
                found[line_id].get(item.account_type, 0) + item.amount_fen
            )
    return found


def _plan_principal(
    conn: Connection, ctx: EodContext, facts: dict[int, LineFacts], ids: list[int], as_of: date
) -> dict[int, int]:
    """Plans' unbilled principal per line, after ending installments already repaid."""
    planned = fetch_plan_unbilled_principal(conn, ids)
    shortfall = {
        line_id: planned_fen - facts[line_id].balances[AccountType.PRINCIPAL_UNBILLED]
        for line_id, planned_fen in planned.items()
    }
    if any(fen > 0 for fen in shortfall.values()):
        settle_prepaid_installments(conn, shortfall, as_of, ctx.caches.products)
        planned = fetch_plan_unbilled_principal(conn, ids)
    return planned


def _insert_bills(
    conn: Connection, line_ids: Sequence[int], rows: Sequence[dict[str, int | str | date]]
) -> dict[int, int]:
    """Insert the bills (one row per line, in `line_ids` order); bill id per line."""
    if not rows:
        return {}
    bill_ids = bulk_insert_returning_ids(conn, bill_table, rows)
    return dict(zip(line_ids, bill_ids, strict=True))


def _insert_bill_lines(
    conn: Connection,
    as_of: date,
    facts: Mapping[int, LineFacts],
    line_ids: Sequence[int],
    due: dict[int, list[DueInstallment]],
    bill_ids: dict[int, int],
    figures: Mapping[int, Mapping[str, int]],
) -> None:
    if not line_ids:
        return
    _copy_cycle_lines(conn, as_of, line_ids)
    extra: list[Row] = [
        {"bill_id": bill_ids[line_id], "customer_id": facts[line_id].customer_id,
         "kind": "installment", "ref_id": item.installment_id, "posted_on": as_of,
         "amount_fen": item.principal_fen + item.interest_fen + item.fee_fen}
        for line_id in line_ids
        for item in due.get(line_id, [])
    ]  # fmt: skip
    for line_id in line_ids:
        customer_id = facts[line_id].customer_id
        if figures[line_id]["credit_applied_fen"]:
            extra.append(
                {"bill_id": bill_ids[line_id], "customer_id": customer_id,
                 "kind": "credit_applied", "ref_id": None, "posted_on": as_of,
                 "amount_fen": -figures[line_id]["credit_applied_fen"]}
            )  # fmt: skip
        for kind in ("interest", "fee", "penalty"):
            if figures[line_id][f"{kind}_fen"]:
                extra.append(
                    {"bill_id": bill_ids[line_id], "customer_id": customer_id, "kind": kind,
                     "ref_id": None, "posted_on": as_of,
                     "amount_fen": figures[line_id][f"{kind}_fen"]}
                )  # fmt: skip
    if extra:
        bulk_insert(conn, bill_line_table, extra)


def _copy_cycle_lines(conn: Connection, as_of: date, line_ids: Sequence[int]) -> None:
    """Uses, refunds, payments and purchase conversions of the cycle, one statement each
    (each row with its bill's customer)."""
    bills, target = bill_table, bill_line_table
    columns = ["bill_id", "customer_id", "kind", "ref_id", "posted_on", "amount_fen"]
    plans = installment_plan_table
    converted = (plans.c.source_kind == "purchase") & (plans.c.status != "cancelled")
    sources: list[tuple[Any, Any, Any, Any, Any, Any]] = [
        (purchase_table, purchase_table.c.kind, purchase_table.c.id, purchase_table.c.as_of,
         purchase_table.c.amount_fen, true()),
        (purchase_refund_table, literal("refund"), purchase_refund_table.c.id,
         purchase_refund_table.c.as_of, -purchase_refund_table.c.amount_fen, true()),
        (repayment_table, literal("payment"), repayment_table.c.id, repayment_table.c.as_of,
         -repayment_table.c.amount_fen, repayment_table.c.status == "posted"),
        (plans, literal("installment_conversion"), plans.c.id, plans.c.start_date,
         -plans.c.principal_fen, converted),
    ]  # fmt: skip
    for table, kind, ref_id, posted_on, amount_fen, condition in sources:
        query = (
            select(bills.c.id, bills.c.customer_id, kind, ref_id, posted_on, amount_fen)
            .join(table, table.c.credit_line_id == bills.c.credit_line_id)
            .where(
                (bills.c.bill_date == as_of)
                & in_values(conn, bills.c.credit_line_id, line_ids)
                & (posted_on >= bills.c.cycle_start)
                & (posted_on <= bills.c.bill_date)
                & condition
            )
        )
        conn.execute(target.insert().from_select(columns, query))


BILL_STEP = Step(EodStep.BILL, list_bill_lines, run_bill_batch)
