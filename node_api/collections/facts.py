"""What collections reads from lending, the ledger and onboarding, in one place.

Delinquency is end of day's (`line_delinquency`, through `fetch_line_states`); balances
are the line's receivable accounts (`RECEIVABLE_TYPES`, `PAST_DUE_TYPES`); the score is
the one the line's application was decided on; payments are the line's posted
repayments. These are reads only: collections never writes another package's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table
from node_api.ledger.sql import in_values
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.bills import PAST_DUE_TYPES, RECEIVABLE_TYPES
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.lines import credit_line_table
from node_api.lending.repayments import repayment_table
from node_api.onboarding.tables import application_table

COMPENSATION_PAYMENT_PREFIX = "compensation:"
"""The payment ref of a guarantor's compensation posted as a repayment
(`collections.compensation`): the guarantor's money, which keeps no promise of the
borrower."""


@dataclass(frozen=True, slots=True)
class LineFacts:
    """A line's delinquency as end of day last decided, its balances and its score."""

    credit_line_id: int
    customer_ref: str
    days_past_due: int
    bucket: DelinquencyBucket
    charged_off_on: date | None
    outstanding_fen: Fen
    past_due_fen: Fen
    score: int | None


def fetch_delinquent_line_ids(conn: Connection) -> list[int]:
    """Lines end of day found past due (days past due > 0), charged off or not."""
    table = line_delinquency_table
    return [
        int(line_id)
        for line_id in conn.execute(
            select(table.c.credit_line_id)
            .where(table.c.days_past_due > 0)
            .order_by(table.c.credit_line_id)
        ).scalars()
    ]


def fetch_line_facts(conn: Connection, line_ids: Sequence[int]) -> dict[int, LineFacts]:
    """The facts of every given line (one query each for states, balances, owners and
    scores, whatever the number of lines)."""
    if not line_ids:
        return {}
    states = fetch_line_states(conn, line_ids)
    owners = _fetch_owners(conn, line_ids)
    outstanding = _fetch_balances(conn, line_ids, RECEIVABLE_TYPES)
    past_due = _fetch_balances(conn, line_ids, PAST_DUE_TYPES)
    scores = _fetch_scores(conn, line_ids)
    return {
        line_id: LineFacts(
            credit_line_id=line_id,
            customer_ref=owners[line_id],
            days_past_due=states[line_id].days_past_due,
            bucket=states[line_id].bucket,
            charged_off_on=states[line_id].charged_off_on,
            outstanding_fen=Fen(outstanding.get(line_id, 0)),
            past_due_fen=Fen(past_due.get(line_id, 0)),
            score=scores.get(line_id),
        )
        for line_id in line_ids
        if line_id in owners
    }


def _fetch_owners(conn: Connection, line_ids: Sequence[int]) -> dict[int, str]:
    lines = credit_line_table
    rows = conn.execute(
        select(lines.c.id, lines.c.customer_ref).where(in_values(conn, lines.c.id, line_ids))
    )
    return {int(line_id): str(customer_ref) for line_id, customer_ref in rows}


def _fetch_balances(
    conn: Connection, line_ids: Sequence[int], kinds: Sequence[AccountType]
) -> dict[int, int]:
    accounts = ledger_account_table
    rows = conn.execute(
        select(accounts.c.credit_line_id, func.sum(accounts.c.balance_fen * accounts.c.normal_sign))
        .where(
            in_values(conn, accounts.c.credit_line_id, line_ids)
            & accounts.c.account_type.in_([kind.value for kind in kinds])
        )
        .group_by(accounts.c.credit_line_id)
    )
    return {int(line_id): int(total or 0) for line_id, total in rows}


def _fetch_scores(conn: Connection, line_ids: Sequence[int]) -> dict[int, int]:
    applications = application_table
    rows = conn.execute(
        select(applications.c.credit_line_id, func.max(applications.c.score))
        .where(in_values(conn, applications.c.credit_line_id, line_ids))
        .group_by(applications.c.credit_line_id)
    )
    return {int(line_id): int(score) for line_id, score in rows}


def fetch_paid_fen(conn: Connection, line_id: int, first_day: date, last_day: date) -> Fen:
    """What the line's posted (not reversed) repayments dated `first_day`..`last_day` paid,
    a guarantor's compensation left out."""
    table = repayment_table
    total = conn.execute(
        select(func.coalesce(func.sum(table.c.amount_fen), 0)).where(
            (table.c.credit_line_id == line_id)
            & (table.c.status == "posted")
            & (table.c.as_of >= first_day)
            & (table.c.as_of <= last_day)
            & (
                table.c.payment_ref.is_(None)
                | ~table.c.payment_ref.startswith(COMPENSATION_PAYMENT_PREFIX, autoescape=True)
            )
        )
    ).scalar_one()
    return Fen(int(total))
