"""Delinquency step: age every line with anything past due (days past due counted from
the due date of its oldest unpaid bill, bucket by the product's thresholds) and post
that day's penalty interest on its past-due principal and interest.

Penalty interest follows `compute_penalty_interest_days`: nothing within the grace days,
the whole run on the first day past grace, then one day per business day; it is
charged to the oldest unpaid bill, whose debt it joins. A non-accrual line's penalty
goes off balance sheet instead (`interest_suspended`, see `step_classify`) and joins no
bill. Like interest, it is carried exactly per line (`compute_carried_interest`): the
days' posts add up to the running penalty total rounded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import PPM_DENOMINATOR, Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import in_values
from node_api.lending.bill_tables import bill_charge_table, bill_table
from node_api.lending.billing_rules import (
    compute_days_past_due,
    compute_delinquency_bucket,
    compute_penalty_interest_days,
)
from node_api.lending.bills import PAST_DUE_TYPES, BillDebt, find_oldest_unpaid_bill, sum_balances
from node_api.lending.eod.books import (
    charge_draft,
    ensure_suspense_accounts,
    fetch_posted_subjects,
    post_drafts,
    suspended_draft,
)
from node_api.lending.eod.carry import (
    AccrualComponent,
    StoredCarry,
    fetch_carries,
    write_carries,
)
from node_api.lending.eod.charges import (
    BillCharge,
    ChargeKind,
    insert_bill_charges,
    sum_charges_fen,
)
from node_api.lending.eod.context import EodContext, LineFacts, load_facts
from node_api.lending.eod.state import update_line_states
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.interest import AccrualCarry, DailyRate, compute_carried_interest


def list_delinquent_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    accounts, state = ledger_account_table, line_delinquency_table
    past_due = get_ids(
        conn,
        select(accounts.c.credit_line_id).where(
            in_values(conn, accounts.c.account_type, [kind.value for kind in PAST_DUE_TYPES])
            & (accounts.c.balance_fen != 0)
            & (accounts.c.credit_line_id > after)
            & not_charged_off(accounts.c.credit_line_id)
        ),
    )
    aged = get_ids(
        conn,
        select(state.c.credit_line_id).where(
            (state.c.days_past_due > 0)
            & state.c.charged_off_on.is_(None)
            & (state.c.credit_line_id > after)
        ),
    )
    return sorted(set(past_due) | set(aged))


def fetch_bill_debts(conn: Connection, line_ids: Sequence[int]) -> dict[int, list[BillDebt]]:
    """Per line: what each of its bills made past due in total."""
    charges, bills = bill_charge_table, bill_table
    rows = conn.execute(
        select(
            charges.c.credit_line_id, bills.c.id, bills.c.due_date, func.sum(charges.c.amount_fen)
        )
        .join(bills, bills.c.id == charges.c.bill_id)
        .where(in_values(conn, charges.c.credit_line_id, line_ids))
        .group_by(charges.c.credit_line_id, bills.c.id, bills.c.due_date)
    )
    found: dict[int, list[BillDebt]] = {}
    for line_id, bill_id, due_date, charged_fen in rows:
        found.setdefault(int(line_id), []).append(
            BillDebt(int(bill_id), due_date, Fen(int(charged_fen)))
        )
    return found


def compute_penalty_fen(
    facts: LineFacts, oldest: BillDebt, as_of: date, previous: StoredCarry | None
) -> tuple[int, AccrualCarry | None]:
    """The day's penalty interest on past-due principal and interest, and the line's
    penalty carry after it (None when nothing accrues)."""
    terms = facts.terms
    days = compute_penalty_interest_days(oldest.due_date, as_of, terms.grace_days)
    balances = facts.balances
    base_fen = balances[AccountType.PRINCIPAL_PAST_DUE] + balances[AccountType.INTEREST_PAST_DUE]
    if base_fen <= 0 or days == 0:
        return 0, None
    rate = DailyRate(terms.penalty_rate_ppm_per_day, PPM_DENOMINATOR)
    penalty_fen, carry = compute_carried_interest(
        None if previous is None else previous.carry, base_fen, rate, days
    )
    return int(penalty_fen), carry


def run_delinquency_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, PAST_DUE_TYPES)
    debts = fetch_bill_debts(conn, list(facts))
    already = fetch_posted_subjects(conn, as_of, EodStep.DELINQUENCY, list(facts))
    stored = fetch_carries(conn, AccrualComponent.PENALTY, list(facts))
    carries: dict[int, AccrualCarry] = {}
    drafts = []
    charges: list[BillCharge] = []
    states: dict[int, dict[str, int | str]] = {}
    state = line_delinquency_table
    suspended = set(
        get_ids(
            conn,
            select(state.c.credit_line_id).where(
                in_values(conn, state.c.credit_line_id, list(facts))
                & state.c.non_accrual_since.is_not(None)
            ),
        )
    )
    for line_id, item in facts.items():
        past_due_fen = sum_balances(item.balances, PAST_DUE_TYPES)
        oldest = find_oldest_unpaid_bill(debts.get(line_id, []), past_due_fen)
        days = 0 if oldest is None else compute_days_past_due(oldest.due_date, as_of)
        bucket = compute_delinquency_bucket(days, item.terms.delinquency.thresholds)
        states[line_id] = {"days_past_due": days, "bucket": bucket.value}
        previous = stored.get(line_id)
        carried_today = previous is not None and previous.as_of == as_of
        if oldest is None or line_id in already or carried_today:
            continue
        penalty_fen, carry = compute_penalty_fen(item, oldest, as_of, previous)
        if carry is not None:
            carries[line_id] = carry
        if penalty_fen > 0 and line_id in suspended:
            drafts.append(
                suspended_draft(
                    as_of=as_of, step=EodStep.DELINQUENCY, subject_id=line_id, line=item,
                    amount_fen=penalty_fen,
                )
            )  # fmt: skip
        elif penalty_fen > 0:
            drafts.append(
                charge_draft(
                    as_of=as_of, step=EodStep.DELINQUENCY, subject_id=line_id, line=item,
                    receivable=AccountType.PENALTY_PAST_DUE,
                    income=AccountType.PENALTY_INCOME, amount_fen=penalty_fen,
                )
            )  # fmt: skip
            charges.append(
                BillCharge(
                    oldest.bill_id,
                    line_id,
                    item.customer_id,
                    as_of,
                    ChargeKind.PENALTY,
                    Fen(penalty_fen),
                )
            )
    write_carries(conn, AccrualComponent.PENALTY, as_of, carries, stored, facts)
    ensure_suspense_accounts(conn, [facts[line_id] for line_id in sorted(suspended)])
    insert_bill_charges(conn, charges)
    update_line_states(conn, as_of, states, ["days_past_due", "bucket"])
    # Postings last: they lock the node's shared accounts until commit (see `parallel`).
    posted = post_drafts(conn, ctx, drafts)
    return BatchResult(len(facts), posted, sum_charges_fen(charges))


DELINQUENCY_STEP = Step(EodStep.DELINQUENCY, list_delinquent_lines, run_delinquency_batch)
