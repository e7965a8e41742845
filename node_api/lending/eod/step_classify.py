"""Classification step (after charge-off, before the bill cut): each line's five-tier class
(五级分类), its non-accrual status and its loan-loss provision.

- Class: `compute_loan_class` on the days past due the delinquency step just set, with
  the product's `delinquency.classification` thresholds; a charged-off line is a loss.
- Non-accrual: from the product's `delinquency.non_accrual_days` past due (default 90)
  until the line is current again, the accrual and delinquency steps post the line's
  interest and penalty to its off-balance-sheet `interest_suspended` memo account
  instead of its receivables and the node's income; a repayment recognizes them as
  income when it collects them (after everything on the books, see `repayments`).
  `non_accrual_since` records the first day; it applies from the next day's accrual.
  On that first day the interest and penalty already accrued and still unpaid (every
  interest and penalty receivable, unbilled, billed or past due) leave the books too:
  the income they were recognized as is reversed and they join the memo account
  (`suspension_movement`), so from then on the balance sheet carries no interest the
  node does not expect to collect; they are recognized like the rest when collected.
  The line's provision is then computed on what is left on the books.
- Provision: the class's rate of the product's `delinquency.provision_bps` matrix on
  the line's receivables (on the books: principal, interest, fees, penalty), rounded UP
  so the allowance never falls short of the matrix; the change since the last
  provision is posted (`provision_expense` / the node's `loan_loss_allowance`, or back
  when it falls). A charge-off uses the line's provision (`step_charge_off`: the loss
  is charged against the allowance, only the shortfall is expense) and leaves it 0.

Each line's postings of the day (suspension and provision) are one batch.

Which lines, to keep the daily run small: every line that is past due, not normal, or
non-accrual (so a line that cures is reclassified the day it does), charged-off lines
until their provision is released; and on the last day of a month every line holding
receivables (the month-end provisioning of performing loans at the normal rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import BPS_DENOMINATOR, div_ceil
from node_api.ledger.accounts import AccountType, ensure_accounts, node_account_specs
from node_api.ledger.schema import ledger_account_table
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import in_values
from node_api.lending.billing_rules import LoanClass, compute_loan_class, is_non_accrual
from node_api.lending.bills import RECEIVABLE_TYPES, Balances, Movement
from node_api.lending.eod.books import (
    build_draft,
    ensure_suspense_accounts,
    fetch_posted_subjects,
    post_drafts,
)
from node_api.lending.eod.context import EodContext, LineFacts, load_facts
from node_api.lending.eod.state import StateValue, fetch_line_states, update_line_states
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off
from node_api.lending.eod.tables import line_delinquency_table

STATE_COLUMNS = ["loan_class", "non_accrual_since", "provision_fen"]


def is_month_end(as_of: date) -> bool:
    return (as_of + timedelta(days=1)).day == 1


def list_classify_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    state = line_delinquency_table
    open_cases = (state.c.charged_off_on.is_(None)) & or_(
        state.c.days_past_due > 0,
        state.c.loan_class != LoanClass.NORMAL.value,
        state.c.non_accrual_since.is_not(None),
    )
    charged = state.c.charged_off_on.is_not(None) & or_(
        state.c.loan_class != LoanClass.LOSS.value,
        state.c.provision_fen != 0,
        state.c.non_accrual_since.is_not(None),
    )
    found = set(
        get_ids(
            conn,
            select(state.c.credit_line_id).where(
                (open_cases | charged) & (state.c.credit_line_id > after)
            ),
        )
    )
    if is_month_end(as_of):
        accounts = ledger_account_table
        found |= set(
            get_ids(
                conn,
                select(accounts.c.credit_line_id).where(
                    in_values(conn, accounts.c.account_type, [k.value for k in RECEIVABLE_TYPES])
                    & (accounts.c.balance_fen != 0)
                    & (accounts.c.credit_line_id > after)
                    & not_charged_off(accounts.c.credit_line_id)
                ),
            )
        )
    return sorted(found)


def compute_provision_fen(receivables_fen: int, rate_bps: int) -> int:
    """The provision a line needs: its receivables at the class's rate, rounded up."""
    return div_ceil(max(receivables_fen, 0) * rate_bps, BPS_DENOMINATOR)


SUSPENDED_ON_ENTRY: dict[AccountType, AccountType] = {
    AccountType.INTEREST_UNBILLED: AccountType.INTEREST_INCOME,
    AccountType.INTEREST_BILLED: AccountType.INTEREST_INCOME,
    AccountType.INTEREST_PAST_DUE: AccountType.INTEREST_INCOME,
    AccountType.PENALTY_UNBILLED: AccountType.PENALTY_INCOME,
    AccountType.PENALTY_BILLED: AccountType.PENALTY_INCOME,
    AccountType.PENALTY_PAST_DUE: AccountType.PENALTY_INCOME,
}
"""The receivables a line entering non-accrual moves off balance sheet, each with the
income it was recognized as."""


def suspension_movement(balances: Balances) -> tuple[Movement, dict[AccountType, int]]:
    """The line and node movements that take a line's accrued, unpaid interest and penalty
    off balance sheet on the day it enters non-accrual: each receivable credited and its
    income reversed (debited); the total debited to the line's `interest_suspended` memo
    and credited to the node's `suspended_interest_contra`."""
    movement: Movement = {}
    node_fen: dict[AccountType, int] = {}
    for receivable, income in SUSPENDED_ON_ENTRY.items():
        amount_fen = balances.get(receivable, 0)
        if amount_fen > 0:
            movement[receivable] = -amount_fen
            node_fen[income] = node_fen.get(income, 0) + amount_fen
    total_fen = -sum(movement.values())
    if total_fen:
        movement[AccountType.INTEREST_SUSPENDED] = total_fen
        node_fen[AccountType.SUSPENDED_INTEREST_CONTRA] = -total_fen
    return movement, node_fen


def run_classify_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, RECEIVABLE_TYPES)
    ids = list(facts)
    states = fetch_line_states(conn, ids)
    done = fetch_posted_subjects(conn, as_of, EodStep.CLASSIFY, ids)
    changes: dict[int, dict[str, StateValue]] = {}
    drafts = []
    suspended: list[LineFacts] = []
    total_fen = 0
    for line_id, item in facts.items():
        state = states[line_id]
        delinquency = item.terms.delinquency
        charged = state.charged_off_on is not None
        loan_class = compute_loan_class(state.days_past_due, delinquency.classification, charged)
        non_accrual = not charged and is_non_accrual(
            state.days_past_due, delinquency.non_accrual_days
        )
        movement: Movement = {}
        node_fen: dict[AccountType, int] = {}
        if non_accrual and state.non_accrual_since is None and line_id not in done:
            movement, node_fen = suspension_movement(item.balances)
        receivables_fen = sum(item.balances[kind] for kind in RECEIVABLE_TYPES) + sum(
            movement.get(kind, 0) for kind in RECEIVABLE_TYPES
        )
        target_fen = compute_provision_fen(
            receivables_fen, delinquency.provision_bps.rate_bps(loan_class)
        )
        delta_fen = 0 if line_id in done else target_fen - state.provision_fen
        if delta_fen:
            node_fen[AccountType.PROVISION_EXPENSE] = delta_fen
            node_fen[AccountType.LOAN_LOSS_ALLOWANCE] = -delta_fen
            total_fen += delta_fen
        if movement:
            suspended.append(item)
        if node_fen:
            drafts.append(
                build_draft(
                    as_of=as_of, step=EodStep.CLASSIFY, subject_id=line_id, line=item,
                    movement=movement, node_fen=node_fen,
                )
            )  # fmt: skip
        changes[line_id] = {
            "loan_class": loan_class.value,
            "non_accrual_since": (state.non_accrual_since or as_of) if non_accrual else None,
            "provision_fen": state.provision_fen + delta_fen,
        }
    if drafts:
        ensure_accounts(conn, node_account_specs())
    ensure_suspense_accounts(conn, suspended)
    update_line_states(conn, as_of, changes, STATE_COLUMNS)
    # Postings last: they lock the node's shared accounts until commit (see `parallel`).
    posted = post_drafts(conn, ctx, drafts)
    return BatchResult(len(facts), posted, total_fen)


CLASSIFY_STEP = Step(EodStep.CLASSIFY, list_classify_lines, run_classify_batch)
