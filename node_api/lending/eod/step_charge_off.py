"""Charge-off step: a line more than its product's charge-off days past due (with the
defaults, on day 181, once in bucket M7+) is written off in one batch.

Every receivable (principal, interest, fees, penalty; unbilled, billed or past due) is
credited and the loss charged against the loan-loss allowance the classification step
built for the line (its `provision_fen`, P): the written-off total W is debited to the
line's `written_off` account, the allowance used on this line (the allowance is the
node's `loan_loss_allowance` less every line's `written_off`; recoveries and debt sales
credit `written_off`, so they replenish it), and the difference W − P between the loss
and the provision already made is provision expense (`provision_expense` /
`loan_loss_allowance`; when P exceeds W the excess is released the other way). So a
charge-off never books a loss the provision already expensed: the day's expense is
W − P, and the line's provision is 0 afterwards. The principal leaves
the line's uses oldest first (as a repayment would), which releases their limit usage
and brings every funding payable down to its share of the remaining (zero) principal:
the node owes each funding partner its share back (it buys back the charged-off
principal). Settlement events: `charge_off` per product with the principal written off,
and `funding_share` per partner, negative. Active installment plans end as charged off,
the line is frozen, and the agreement's status change is enqueued for the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import (
    PRINCIPAL_ACCOUNT_TYPES,
    AccountType,
    ensure_accounts,
    line_account_code,
    node_account_code,
    node_account_specs,
)
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.settlement_events import CHARGE_OFF_EVENT, EodStep
from node_api.ledger.sql import in_values
from node_api.lending.billing_rules import is_charge_off_due
from node_api.lending.bills import RECEIVABLE_TYPES
from node_api.lending.core.books import fetch_line_books
from node_api.lending.core.entries import funding_adjustment
from node_api.lending.eod.agreements import enqueue_charge_off
from node_api.lending.eod.context import EodContext, LineFacts, get_business_key, load_facts
from node_api.lending.eod.state import StateValue, update_line_states
from node_api.lending.eod.step import BatchResult, Step, get_ids
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.installment_tables import installment_plan_table, installment_table
from node_api.lending.line_limits import LineAction, change_line_status
from node_api.lending.lines import LineStatus, LockedLine, fetch_lines, write_usage
from node_api.lending.use_reductions import (
    Reduction,
    apply_reductions,
    compute_fifo_reductions,
    fetch_open_uses,
    record_reductions,
)


def list_charge_off_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    state = line_delinquency_table
    return get_ids(
        conn,
        select(state.c.credit_line_id).where(
            (state.c.days_past_due > 0)
            & state.c.charged_off_on.is_(None)
            & (state.c.credit_line_id > after)
        ),
    )


def _product_events(
    line: LockedLine, reductions: Sequence[Reduction]
) -> list[SettlementEventDraft]:
    by_node: dict[int, int] = {}
    for item in reductions:
        node_id = item.use.product_node_id
        by_node[node_id] = by_node.get(node_id, 0) + item.amount_fen
    nodes = {node.node_id: node for node in line.nodes}
    return [
        SettlementEventDraft(
            CHARGE_OFF_EVENT,
            amount_fen,
            product_code=nodes[node_id].product_code,
            product_version=nodes[node_id].product_version,
        )
        for node_id, amount_fen in sorted(by_node.items())
    ]


def allowance_lines(written_fen: int, provision_fen: int) -> list[PostingLine]:
    """The provision expense of a charge-off: what the loss `written_fen` needs beyond the
    line's provision `provision_fen` (negative: the provision's excess released)."""
    shortfall_fen = written_fen - provision_fen
    if shortfall_fen == 0:
        return []
    return [
        PostingLine(node_account_code(AccountType.PROVISION_EXPENSE), shortfall_fen),
        PostingLine(node_account_code(AccountType.LOAN_LOSS_ALLOWANCE), -shortfall_fen),
    ]


def charge_off_line(
    conn: Connection, ctx: EodContext, facts: LineFacts, as_of: date, provision_fen: int
) -> int:
    """Write the line off against its provision `provision_fen` (module docstring); return
    the amount written off."""
    line_id = facts.credit_line_id
    line = fetch_lines(conn, [line_id], lock=True)[line_id]
    book = fetch_line_books(conn, [line_id], ctx.caches.accounts)[line_id]
    balances = facts.balances
    written_fen = sum(balances[kind] for kind in RECEIVABLE_TYPES)
    lines = [
        PostingLine(line_account_code(line_id, kind), -balances[kind])
        for kind in RECEIVABLE_TYPES
        if balances[kind] > 0
    ]
    if written_fen > 0:
        lines.append(PostingLine(line_account_code(line_id, AccountType.WRITTEN_OFF), written_fen))
    lines += allowance_lines(written_fen, provision_fen)
    principal_fen = sum(balances[kind] for kind in PRINCIPAL_ACCOUNT_TYPES)
    reductions = compute_fifo_reductions(fetch_open_uses(conn, line_id), principal_fen)
    apply_reductions(conn, line, reductions, -1)
    funding_lines, funding_events = funding_adjustment(
        book, line.product_nodes(), lambda node: ctx.caches.terms_of(conn, node), lines
    )
    if lines or funding_lines:
        draft = BatchDraft(
            business_key=get_business_key(as_of, EodStep.CHARGE_OFF, line_id),
            kind=f"eod_{EodStep.CHARGE_OFF}",
            as_of=as_of,
            lines=tuple(lines + funding_lines),
            credit_line_id=line_id,
            customer_id=facts.customer_id,
            events=tuple(_product_events(line, reductions) + funding_events),
        )
        record_reductions(conn, post_batch(conn, draft, ctx.caches.accounts), reductions)
    write_usage(conn, line.nodes)
    _end_plans(conn, line_id, as_of)
    if line.status is LineStatus.ACTIVE:
        change_line_status(conn, line_id, LineAction.FREEZE, as_of)
    enqueue_charge_off(conn, line_id)
    return written_fen


def _end_plans(conn: Connection, line_id: int, as_of: date) -> None:
    plans, items = installment_plan_table, installment_table
    conn.execute(
        update(items)
        .where((items.c.credit_line_id == line_id) & (items.c.status == "scheduled"))
        .values(status="charged_off")
    )
    conn.execute(
        update(plans)
        .where((plans.c.credit_line_id == line_id) & (plans.c.status == "active"))
        .values(status="charged_off", closed_on=as_of)
    )


def run_charge_off_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids)
    state = line_delinquency_table
    rows = conn.execute(
        select(state.c.credit_line_id, state.c.days_past_due, state.c.provision_fen).where(
            in_values(conn, state.c.credit_line_id, list(facts)) & state.c.charged_off_on.is_(None)
        )
    )
    found = {int(line_id): (int(days), int(provision)) for line_id, days, provision in rows}
    charged: dict[int, dict[str, StateValue]] = {}
    total_fen = 0
    for line_id, item in facts.items():
        days_past_due, provision_fen = found.get(line_id, (0, 0))
        if not is_charge_off_due(days_past_due, item.terms.delinquency.charge_off_days):
            continue
        if not charged:
            ensure_accounts(conn, node_account_specs())
        total_fen += charge_off_line(conn, ctx, item, as_of, provision_fen)
        # The provision is used by the charge-off: the classification step has none to
        # release.
        charged[line_id] = {"charged_off_on": as_of, "provision_fen": 0}
    update_line_states(conn, as_of, charged, ["charged_off_on", "provision_fen"])
    return BatchResult(len(facts), len(charged), total_fen)


CHARGE_OFF_STEP = Step(EodStep.CHARGE_OFF, list_charge_off_lines, run_charge_off_batch)
