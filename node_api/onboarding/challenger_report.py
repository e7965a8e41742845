"""The champion/challenger report of a product: each arm's decisions, scores and early
delinquency.

Per arm, over the applications it decided (`decided`) and over every application it
scored, deciding or in shadow (`scored`): applications, approvals, approval rate and
score deciles (`risk.decision_stats`). Early delinquency is read from the lines the
arm's decided applications opened (at once or after review), through the lending
package's bills, as of the business date:

- first payment default: the line's first bill with a minimum payment due was not paid
  in full by its due date; matured once that bill's due date has been decided;
- M1+ at 3 months: the last bill cut on or before three months after the line opened
  shows a payment past due (bucket M1 or worse); matured once three months have passed.

Lines not yet matured count in neither numerator nor denominator, so the rates fill in
as outcomes mature.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.lending.bill_views import BillView, fetch_bills
from node_api.lending.lines import fetch_lines
from node_api.onboarding.decision import ApplicationDecision
from node_api.onboarding.tables import application_table
from node_api.risk.challenger import Arm
from node_api.risk.decision_stats import compute_deciles, compute_rate_bps
from node_api.risk.registry_tables import decision_arm_table

EARLY_DELINQUENCY_MONTHS = 3


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class EarlyOutcome:
    """A line's early delinquency; None while not matured."""

    first_payment_default: bool | None
    m1_plus_at_3_months: bool | None


def compute_early_outcome(opened_on: date, bills: Sequence[BillView], as_of: date) -> EarlyOutcome:
    """A line's early delinquency from its bills (module docstring)."""
    ordered = sorted(bills, key=lambda bill: bill.bill_date)
    first_due = next((bill for bill in ordered if bill.minimum_payment_fen > 0), None)
    first_payment_default = None
    if first_due is not None and first_due.outcome is not None:
        first_payment_default = first_due.outcome.unpaid_minimum_fen > 0
    anniversary = add_months(opened_on, EARLY_DELINQUENCY_MONTHS)
    observed = [bill for bill in ordered if bill.bill_date <= anniversary]
    m1_plus = None
    if as_of >= anniversary and observed:
        m1_plus = observed[-1].days_past_due >= 1
    return EarlyOutcome(first_payment_default, m1_plus)


def fetch_early_outcomes(
    conn: Connection, line_ids: Sequence[int], as_of: date
) -> dict[int, EarlyOutcome]:
    """The early delinquency of each line (one bill read per line)."""
    outcomes = {}
    for line_id, line in fetch_lines(conn, sorted(set(line_ids)), lock=False).items():
        months_on_book = (as_of.year - line.opened_on.year) * 12 + as_of.month
        months_on_book -= line.opened_on.month
        bills = fetch_bills(conn, line_id, limit=max(months_on_book, 0) + 2)
        outcomes[line_id] = compute_early_outcome(line.opened_on, bills, as_of)
    return outcomes


@dataclass(frozen=True, slots=True)
class ArmSlice:
    applications: int
    approved: int
    approval_rate_bps: int | None
    score_deciles: list[int]
    """Nearest-rank percentiles 0, 10, ..., 100 of the arm's scores."""


@dataclass(frozen=True, slots=True)
class MaturedRate:
    matured: int
    """Lines whose outcome is known."""
    events: int
    rate_bps: int | None


@dataclass(frozen=True, slots=True)
class ArmReport:
    arm: Arm
    model_ids: list[str]
    decided: ArmSlice
    scored: ArmSlice
    lines_opened: int
    first_payment_default: MaturedRate
    m1_plus_at_3_months: MaturedRate


@dataclass(frozen=True, slots=True)
class ChampionChallengerReport:
    product_code: str
    as_of: date
    experiments: list[str]
    arms: list[ArmReport]


@dataclass(frozen=True, slots=True)
class _ArmRow:
    arm: Arm
    deciding: bool
    score: int
    approved: bool
    model_id: str
    credit_line_id: int | None


def _slice(rows: Sequence[_ArmRow]) -> ArmSlice:
    approved = sum(1 for row in rows if row.approved)
    return ArmSlice(
        applications=len(rows),
        approved=approved,
        approval_rate_bps=compute_rate_bps(approved, len(rows)),
        score_deciles=compute_deciles([row.score for row in rows]),
    )


def _matured(flags: Sequence[bool | None]) -> MaturedRate:
    known = [flag for flag in flags if flag is not None]
    events = sum(1 for flag in known if flag)
    return MaturedRate(len(known), events, compute_rate_bps(events, len(known)))


def _arm_report(arm: Arm, rows: Sequence[_ArmRow], outcomes: dict[int, EarlyOutcome]) -> ArmReport:
    decided = [row for row in rows if row.deciding]
    lines = [row.credit_line_id for row in decided if row.credit_line_id is not None]
    early = [outcomes[line_id] for line_id in lines]
    return ArmReport(
        arm=arm,
        model_ids=sorted({row.model_id for row in rows}),
        decided=_slice(decided),
        scored=_slice(rows),
        lines_opened=len(lines),
        first_payment_default=_matured([item.first_payment_default for item in early]),
        m1_plus_at_3_months=_matured([item.m1_plus_at_3_months for item in early]),
    )


def fetch_champion_challenger_report(
    conn: Connection,
    product_code: str,
    *,
    as_of: date,
    experiment: str | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
) -> ChampionChallengerReport:
    """Both arms of the product's tests (of one experiment, and business dates, if given)."""
    arms, applications = decision_arm_table, application_table
    statement = (
        select(
            arms.c.arm,
            arms.c.deciding,
            arms.c.score,
            arms.c.decision,
            arms.c.model_id,
            arms.c.experiment,
            applications.c.credit_line_id,
        )
        .join(applications, applications.c.id == arms.c.application_id)
        .where(arms.c.product_code == product_code)
    )
    if experiment is not None:
        statement = statement.where(arms.c.experiment == experiment)
    if from_date is not None:
        statement = statement.where(arms.c.business_date >= from_date)
    if to_date is not None:
        statement = statement.where(arms.c.business_date <= to_date)
    found = conn.execute(statement).all()
    rows = [
        _ArmRow(
            arm=Arm(row.arm),
            deciding=bool(row.deciding),
            score=int(row.score),
            approved=row.decision == ApplicationDecision.APPROVED.value,
            model_id=str(row.model_id),
            credit_line_id=None if row.credit_line_id is None else int(row.credit_line_id),
        )
        for row in found
    ]
    line_ids = [r.credit_line_id for r in rows if r.deciding and r.credit_line_id is not None]
    outcomes = fetch_early_outcomes(conn, line_ids, as_of)
    return ChampionChallengerReport(
        product_code=product_code,
        as_of=as_of,
        experiments=sorted({str(row.experiment) for row in found}),
        arms=[_arm_report(arm, [row for row in rows if row.arm is arm], outcomes) for arm in Arm],
    )
