"""`/v1/ledger`: the trial balance at any business date, a line's balances, and the
node's business date."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from node_api.http.authz import AdminDep, ExaminerDep, ReaderDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import PROBLEMS, LineId, StrictBody
from node_api.kernel.money import Fen
from node_api.ledger.balances import fetch_line_balances, fetch_trial_balance
from node_api.ledger.business_date import check_business_date_ahead, fetch_business_date
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.runner import move_business_date
from node_api.lending.eod.scheduler import EodSchedule, get_calendar_date
from node_api.lending.lines import fetch_line

router = APIRouter(tags=["ledger"])


class TrialBalanceRowOut(BaseModel):
    account_type: str
    accounts: int
    debit_fen: Fen
    credit_fen: Fen


class TrialBalanceOut(BaseModel):
    as_of: date | None
    rows: list[TrialBalanceRowOut]
    total_debit_fen: Fen
    total_credit_fen: Fen
    balanced: bool


class LineBalancesOut(BaseModel):
    credit_line_id: int
    as_of: date | None
    balances_fen: dict[str, int]


class BusinessDateOut(BaseModel):
    as_of: date | None


class BusinessDateIn(StrictBody):
    as_of: date


@router.get(
    "/v1/ledger/trial-balance",
    name="ledger_trial_balance",
    response_model=TrialBalanceOut,
    responses=PROBLEMS,
)
def get_trial_balance(
    session: SessionDep, who: ExaminerDep, as_of: date | None = None
) -> TrialBalanceOut:
    """Debit and credit balances per account type, now or at the end of `as_of`; the two
    totals are equal when the books balance."""
    trial = fetch_trial_balance(session.connection(), as_of)
    return TrialBalanceOut(
        as_of=trial.as_of,
        rows=[
            TrialBalanceRowOut(
                account_type=row.account_type,
                accounts=row.accounts,
                debit_fen=row.debit_fen,
                credit_fen=row.credit_fen,
            )
            for row in trial.rows
        ],
        total_debit_fen=trial.total_debit_fen,
        total_credit_fen=trial.total_credit_fen,
        balanced=trial.balanced,
    )


@router.get(
    "/v1/ledger/credit-lines/{credit_line_id}/balances",
    name="ledger_line_balances",
    response_model=LineBalancesOut,
    responses=PROBLEMS,
)
def get_line_balances(
    credit_line_id: LineId, session: SessionDep, who: ExaminerDep, as_of: date | None = None
) -> LineBalancesOut:
    """A line's account balances by type (normal side), now or at the end of `as_of`."""
    conn = session.connection()
    fetch_line(conn, credit_line_id)
    balances = fetch_line_balances(conn, credit_line_id, as_of)
    return LineBalancesOut(
        credit_line_id=credit_line_id,
        as_of=as_of,
        balances_fen={kind.value: fen for kind, fen in sorted(balances.items())},
    )


@router.get(
    "/v1/ledger/business-date",
    name="business_date_get",
    response_model=BusinessDateOut,
    responses=PROBLEMS,
)
def get_business_date(
    session: SessionDep,
    who: ReaderDep,
) -> BusinessDateOut:
    """The node's open business date (null before it is first set)."""
    return BusinessDateOut(as_of=fetch_business_date(session.connection()))


@router.post(
    "/v1/ledger/business-date",
    name="business_date_set",
    response_model=BusinessDateOut,
    responses=PROBLEMS,
)
def post_business_date(body: BusinessDateIn, who: AdminDep, once: OnceDep) -> Response:
    """Set the business date the first time, or move it forward (end of day does this
    daily): never back, and at most `CREDITNET_BUSINESS_DATE_MAX_AHEAD_DAYS` after the
    server's calendar date (422 `business_date_too_far_ahead` otherwise, nothing changed).
    Every day skipped is still closed by end of day, in order."""

    def operation(_caches: LendingCaches) -> BusinessDateOut:
        calendar_date = get_calendar_date(datetime.now(UTC), EodSchedule())
        max_ahead_days = once.services.settings.business_date_max_ahead_days
        check_business_date_ahead(body.as_of, calendar_date, max_ahead_days)
        move_business_date(once.session.connection(), body.as_of)
        return BusinessDateOut(as_of=body.as_of)

    return once.run(who, body, 200, operation)
