"""Read views for the lender's operations console: the review queue, decisions per hour,
the portfolio by bucket and by vintage, end-of-day runs and step timings, and the
relayer's lag in time.

Approving or declining stays `POST /v1/applications/{id}/review` (admins, idempotent);
the oracles' depth and indexer lag are `GET /v1/oracles/status`. The rest is read and
aggregated in SQL here (`onboarding.review_views`, `lending.portfolio_views`,
`lending.eod_views`, `oracles.outbox_age`), without personal data: the portfolio answers
what `GET /v1/portfolio/summary` does, plus vintages, in one SQL pass. Step timings come
from the node's own measurements (`runtime.eod_timings`). "Now" for the hourly window and
the outbox ages is the node's clock, read here at the HTTP edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from node_api.http.authz import AdminDep, ExaminerDep
from node_api.http.deps import SessionDep
from node_api.http.schemas import PROBLEMS, PageOut, from_view
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from node_api.lending.eod_views import EodStepView, fetch_eod_runs
from node_api.lending.portfolio_views import fetch_portfolio_snapshot
from node_api.onboarding.review_views import (
    REVIEW_PAGE_MAX,
    QueuedApplication,
    fetch_decisions_per_hour,
    fetch_review_queue,
)
from node_api.runtime.eod_timings import read_eod_step_timings
from oracles.outbox_age import fetch_outbox_ages

router = APIRouter(tags=["console"])


# The domain's view is the response; the subclass only keeps the schema name the API has
# always published (its fields are declared once, in `node_api.onboarding.review_views`).
class QueuedApplicationOut(QueuedApplication): ...


class ReviewQueueOut(PageOut[QueuedApplicationOut]):
    total: int
    """Every application awaiting review, not only this page."""
    next_after: str | None
    """Pass as `after` for the next page; null on the last page."""


class HourlyDecisionsOut(BaseModel):
    hour: str
    approved: int
    declined: int
    review: int


class EodStepOut(EodStepView): ...


class EodRunOut(BaseModel):
    as_of: date
    status: str
    steps: list[EodStepOut]


class VintageOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    vintage: str
    """`YYYY-MM`: the month the lines were opened."""
    lines: int
    """Lines the month opened that owe something now."""
    balance_fen: Fen
    """The vintage's receivables now."""
    m1_plus_fen: Fen
    m3_plus_fen: Fen
    m1_plus_bps: int
    """M1+ share of the vintage's receivables, basis points, half-even."""
    m3_plus_bps: int
    """M3+ share of the vintage's receivables, basis points, half-even."""


class ConsoleBucketOut(BaseModel):
    bucket: str
    lines: int
    balance_fen: Fen


class ConsolePortfolioOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    buckets: list[ConsoleBucketOut]
    """Receivables by bucket (M0..M7+) and the lines owing in each."""
    total_fen: Fen
    non_performing_fen: Fen
    npl_ratio_bps: int
    """M4+ balance / total balance, in basis points (half-even)."""
    written_off_fen: Fen
    vintages: list[VintageOut]
    """Oldest vintage first."""


class StepTimingOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    step: str
    dates: int
    """Dates this node's end-of-day scheduler ran the step for since the node started."""
    total_s: float
    mean_s: float


class OutboxAgeOut(BaseModel):
    kind: str
    waiting: int
    oldest_created_at: datetime
    oldest_age_s: float


@router.get(
    "/v1/console/review-queue",
    name="console_review_queue",
    response_model=ReviewQueueOut,
    responses=PROBLEMS,
)
def get_review_queue(
    session: SessionDep,
    who: AdminDep,
    limit: Annotated[int, Query(ge=1, le=REVIEW_PAGE_MAX)] = 50,
    after: Annotated[str | None, Query(max_length=120)] = None,
) -> ReviewQueueOut:
    """Applications awaiting a manual decision, oldest first, paged (admins: the role that
    may review them)."""
    try:
        page = fetch_review_queue(session.connection(), limit=limit, after=after)
    except (ValueError, OverflowError):
        raise CreditNetValueError(
            "after must be a cursor from a previous page (next_after)", field="after"
        ) from None
    return ReviewQueueOut(
        items=[from_view(QueuedApplicationOut, item) for item in page.items],
        total=page.total,
        next_after=page.next_after,
    )


@router.get(
    "/v1/console/decisions-per-hour",
    name="console_decisions_per_hour",
    response_model=list[HourlyDecisionsOut],
    responses=PROBLEMS,
)
def get_decisions_per_hour(
    session: SessionDep,
    who: ExaminerDep,
    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 48,
) -> list[HourlyDecisionsOut]:
    """Automatic decisions (approved, declined, sent to review) by UTC hour over the last
    `hours` hours; hours without applications are left out."""
    until = datetime.now(UTC)
    rows = fetch_decisions_per_hour(
        session.connection(), since=until - timedelta(hours=hours), until=until
    )
    return [from_view(HourlyDecisionsOut, row) for row in rows]


@router.get(
    "/v1/console/eod-runs",
    name="console_eod_runs",
    response_model=list[EodRunOut],
    responses=PROBLEMS,
)
def get_eod_runs(
    session: SessionDep, who: ExaminerDep, limit: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[EodRunOut]:
    """The latest end-of-day runs, newest first, with each step's status and the batches,
    lines, postings and amount it committed."""
    runs = fetch_eod_runs(session.connection(), limit=limit)
    return [from_view(EodRunOut, run) for run in runs]


@router.get(
    "/v1/console/portfolio",
    name="console_portfolio",
    response_model=ConsolePortfolioOut,
    responses=PROBLEMS,
)
def get_portfolio(session: SessionDep, who: AdminDep) -> ConsolePortfolioOut:
    """Receivables by bucket with the NPL ratio, and delinquency by vintage (the month
    lines were opened: receivables now and their M1+ and M3+ parts)."""
    snapshot = fetch_portfolio_snapshot(session.connection())
    return ConsolePortfolioOut(
        buckets=[
            ConsoleBucketOut(
                bucket=item.bucket.value, lines=item.lines, balance_fen=item.balance_fen
            )
            for item in snapshot.buckets
        ],
        total_fen=snapshot.total_fen,
        non_performing_fen=snapshot.non_performing_fen,
        npl_ratio_bps=snapshot.npl_ratio_bps,
        written_off_fen=snapshot.written_off_fen,
        vintages=[from_view(VintageOut, item) for item in snapshot.vintages],
    )


@router.get(
    "/v1/console/eod-step-timings",
    name="console_eod_step_timings",
    response_model=list[StepTimingOut],
    responses=PROBLEMS,
)
def get_eod_step_timings(who: ExaminerDep) -> list[StepTimingOut]:
    """How long each end-of-day step took on this node: the dates its scheduler closed
    since it started, their total and mean seconds per step (the books keep no durations;
    dates closed by `creditnet eod` elsewhere are not counted)."""
    return [from_view(StepTimingOut, item) for item in read_eod_step_timings()]


@router.get(
    "/v1/console/outbox-age",
    name="console_outbox_age",
    response_model=list[OutboxAgeOut],
    responses=PROBLEMS,
)
def get_outbox_age(session: SessionDep, who: ExaminerDep) -> list[OutboxAgeOut]:
    """Per outbox kind with rows waiting for the relayer (pending or sent): how many, and
    the age of the oldest in seconds, oldest first."""
    ages = fetch_outbox_ages(session.connection(), datetime.now(UTC))
    return [from_view(OutboxAgeOut, age) for age in ages]
