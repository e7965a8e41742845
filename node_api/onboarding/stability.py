"""A product's stability monitoring: PSI of its active model, weekly Gini, alerts.

For the model the product's policy decides with now: the population stability of live
applications against training (`risk.live_monitoring`), and, per week of business
dates, the Gini of the score on the lines opened that week once their outcomes mature.
A line's outcome is its early delinquency, read through the lending package's bills
(`challenger_report.fetch_early_outcomes`): it matures when the first bill with a
minimum payment has been decided, and it is bad when that bill defaulted (first
payment default) or, once three months have passed, the line was M1 or worse. Alerts
compare both with the thresholds of `risk.monitoring.StabilityThresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.onboarding.challenger_report import EarlyOutcome, fetch_early_outcomes
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.policies import fetch_current_policy
from node_api.onboarding.tables import application_table, policy_table
from node_api.risk.live_monitoring import fetch_stability_report
from node_api.risk.monitoring import (
    StabilityAlert,
    StabilityReport,
    StabilityThresholds,
    WeeklyGini,
    compute_alerts,
    compute_weekly_gini,
)

WEEKS_DEFAULT = 12


@dataclass(frozen=True, slots=True)
class ProductStability:
    product_code: str
    as_of: date
    model_id: str
    model_version: int | None
    training_gini: float
    psi: StabilityReport
    weeks: list[WeeklyGini]
    alerts: list[StabilityAlert]


def is_bad(outcome: EarlyOutcome) -> bool | None:
    """The line's outcome for the Gini: None until the first payment is decided."""
    if outcome.first_payment_default is None:
        return None
    return outcome.first_payment_default or bool(outcome.m1_plus_at_3_months)


def fetch_product_stability(
    conn: Connection,
    product_code: str,
    *,
    as_of: date,
    thresholds: StabilityThresholds,
    context: OnboardingContext,
    weeks: int = WEEKS_DEFAULT,
) -> ProductStability:
    """PSI, weekly Gini over the last `weeks` weeks to `as_of`, and the alerts."""
    _version, policy = fetch_current_policy(conn, product_code, context.policies)
    card = context.cards.get_for_policy(conn, policy)
    table = application_table
    since = as_of - timedelta(days=7 * weeks - 1)
    rows = conn.execute(
        select(table.c.business_date, table.c.score, table.c.credit_line_id).where(
            (table.c.product_code == product_code)
            & (table.c.model_id == card.model_id)
            & table.c.credit_line_id.is_not(None)
            & ~table.c.existing_customer
            & (table.c.business_date >= since)
            & (table.c.business_date <= as_of)
        )
    ).all()
    outcomes = fetch_early_outcomes(conn, [int(row.credit_line_id) for row in rows], as_of)
    scored = [
        (row.business_date, int(row.score), is_bad(outcomes[int(row.credit_line_id)]))
        for row in rows
    ]
    weekly = compute_weekly_gini(scored, thresholds.gini_min_bads)
    report = fetch_stability_report(conn, card.card)
    training_gini = card.card.metrics.gini
    return ProductStability(
        product_code=product_code,
        as_of=as_of,
        model_id=card.model_id,
        model_version=policy.model_version,
        training_gini=training_gini,
        psi=report,
        weeks=weekly,
        alerts=compute_alerts(report, weekly, training_gini, thresholds),
    )


def fetch_all_stability(
    conn: Connection,
    *,
    as_of: date,
    thresholds: StabilityThresholds,
    context: OnboardingContext,
) -> list[ProductStability]:
    """The stability of every product that has a stored policy (what the metrics show)."""
    codes = conn.execute(select(policy_table.c.product_code).distinct()).scalars().all()
    return [
        fetch_product_stability(
            conn, str(code), as_of=as_of, thresholds=thresholds, context=context
        )
        for code in sorted(codes)
    ]
