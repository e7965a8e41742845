"""Manual review: an admin approves or declines an application the policy sent to review.

Approving opens the line with the limits stored with the decision, on the current
business date, and enqueues its agreement, in the reviewer's one transaction.
Reviewing anything not awaiting review is a conflict (409, stored for replays).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError
from node_api.ledger.sql import begin_write
from node_api.onboarding.agreements import open_line_with_agreement
from node_api.onboarding.application_store import (
    ApplicationView,
    application_view,
    fetch_application_row,
    get_application_context,
    store_review,
)
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import ApplicationDecision, parse_line_limits
from node_api.onboarding.policies import fetch_policy_version
from node_api.onboarding.provenance import fetch_stored_provenance


class ReviewAction(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


def review_application(
    conn: Connection,
    application_id: str,
    *,
    action: ReviewAction,
    reason_code: str,
    reviewer_key_id: str,
    as_of: date,
    reviewed_at: datetime,
    context: OnboardingContext,
) -> ApplicationView:
    """Record a manual decision; returns the application's view afterwards."""
    begin_write(conn)
    row = fetch_application_row(conn, application_id, lock=True)
    if row.status != ApplicationDecision.REVIEW.value:
        raise ConflictError(
            f"the application is {row.status}, not awaiting review",
            field="application_id",
            code="application_not_in_review",
        )
    line: tuple[int | None, str | None] = (None, None)
    status = ApplicationDecision.DECLINED
    if action is ReviewAction.APPROVE:
        status = ApplicationDecision.APPROVED
        terms = context.products.get(conn, row.product_code, row.product_version)
        policy = fetch_policy_version(conn, row.product_code, row.policy_version, context.policies)
        assert policy is not None, "an application's policy version is always stored"
        line = open_line_with_agreement(
            conn,
            application_id=application_id,
            customer_id=row.customer_id,
            limits=parse_line_limits(row.limits, terms),
            terms=terms,
            policy=policy,
            as_of=as_of,
            context=context,
            provenance=fetch_stored_provenance(
                conn,
                row,
                lambda envelope, app_id: context.vault.decrypt(
                    envelope, get_application_context(app_id)
                ),
            ),
        )
    store_review(
        conn,
        application_id,
        status=status,
        reason_code=reason_code,
        reviewer_key_id=reviewer_key_id,
        reviewed_at=reviewed_at,
        credit_line_id=line[0],
        agreement_id=line[1],
    )
    return application_view(fetch_application_row(conn, application_id))
