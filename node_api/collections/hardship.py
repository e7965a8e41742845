"""Hardship plans: a payment holiday or the balance re-aged into installments, requested
by an agent and approved (or rejected) by a lender administrator other than the agent.

Two limits, checked at the request and again at the approval:
- at most `hardship_plans_max` plans per line within `hardship_window_months`: plans
  approved within the window plus those awaiting a decision (`hardship_limit_reached`);
- the plan's all-in effective annual cost, fee included, within the cost cap every product
  respects (`product_cost_above_cap`), priced the way products are
  (`lending.products.pricing`): a re-aged plan as an annuity over `term_months` at
  `rate_bps`; a holiday as the principal repaid after `term_months` with simple interest
  at `rate_bps` (half-even), in both cases the fee taken upfront.

Only the plan and its approval are recorded here; booking an approved plan is lending's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.cases import fetch_case
from node_api.collections.model import CaseStatus, PlanKind, PlanStatus
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.tables import plan_table
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import BPS_DENOMINATOR, Fen, div_half_even
from node_api.ledger.sql import begin_write
from node_api.lending.products.pricing import AnnualRates, compute_annualised_irr
from node_api.lending.products.validation import ProductCostAboveCapError, format_bps_as_percent
from node_api.lending.schedules import PricingMethod, compute_amortization, compute_monthly_date

TERM_MONTHS_MAX: Final = {PlanKind.PAYMENT_HOLIDAY: 6, PlanKind.REAGED_INSTALLMENTS: 36}
MONTHS_PER_YEAR: Final = 12


@dataclass(frozen=True, slots=True)
class PlanRequest:
    case_id: int
    kind: PlanKind
    term_months: int
    rate_bps: int
    fee_fen: int
    reason_code: str
    requested_on: date
    by: str
    principal_fen: int | None = None
    """Default: the case's outstanding balance."""


class PlanView(BaseModel):
    """A hardship plan as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    case_id: int
    credit_line_id: int
    kind: str
    principal_fen: Fen
    fee_fen: Fen
    term_months: int
    rate_bps: int
    effective_annual_bps: int
    reason_code: str
    status: str
    requested_on: date
    requested_by: str
    decided_on: date | None
    decided_by: str | None
    decision_reason: str | None


def _view(row: RowMapping) -> PlanView:
    return PlanView(**{name: row[name] for name in PlanView.model_fields})


def compute_plan_cost(
    kind: PlanKind, principal_fen: Fen, term_months: int, rate_bps: int, fee_fen: Fen
) -> AnnualRates:
    """The plan's all-in annual rates (module docstring)."""
    if not 1 <= term_months <= TERM_MONTHS_MAX[kind]:
        raise CreditNetValueError(
            f"a {kind.value} lasts 1 to {TERM_MONTHS_MAX[kind]} months", field="term_months"
        )
    if principal_fen <= 0:
        raise CreditNetValueError("there is no balance to relieve", field="principal_fen")
    if fee_fen < 0 or fee_fen >= principal_fen:
        raise CreditNetValueError("the fee is 0 or more and below the principal", field="fee_fen")
    if kind is PlanKind.REAGED_INSTALLMENTS:
        lines = compute_amortization(principal_fen, term_months, PricingMethod.ANNUITY, rate_bps)
        payments = [-line.payment_fen for line in lines]
    else:
        interest_fen = div_half_even(
            principal_fen * rate_bps * term_months, MONTHS_PER_YEAR * BPS_DENOMINATOR
        )
        payments = [0] * (term_months - 1) + [-(principal_fen + interest_fen)]
    return compute_annualised_irr([principal_fen - fee_fen, *payments])


def check_plan_cost(policy: CollectionsPolicy, rates: AnnualRates) -> None:
    if rates.effective_bps <= policy.cost_cap_bps:
        return
    raise ProductCostAboveCapError(
        f"the plan's all-in effective annual cost is {format_bps_as_percent(rates.effective_bps)}"
        f" ({rates.effective_bps} bps), above the cap of "
        f"{format_bps_as_percent(policy.cost_cap_bps)}",
        field="rate_bps",
        computed_bps=rates.effective_bps,
        nominal_bps=rates.nominal_bps,
        cap_bps=policy.cost_cap_bps,
    )


def _check_limit(
    conn: Connection, policy: CollectionsPolicy, credit_line_id: int, as_of: date
) -> None:
    """Plans approved within the window plus plans awaiting a decision, below the max."""
    window_start = compute_monthly_date(as_of, -policy.hardship_window_months)
    table = plan_table
    counted = conn.execute(
        select(func.count()).where(
            (table.c.credit_line_id == credit_line_id)
            & or_(
                table.c.status == PlanStatus.REQUESTED.value,
                (table.c.status == PlanStatus.APPROVED.value) & (table.c.decided_on > window_start),
            )
        )
    ).scalar_one()
    if int(counted) >= policy.hardship_plans_max:
        raise ConflictError(
            f"this line already has {counted} hardship plan(s) within "
            f"{policy.hardship_window_months} months; at most {policy.hardship_plans_max}",
            field="case_id",
            code="hardship_limit_reached",
        )


def request_plan(conn: Connection, policy: CollectionsPolicy, request: PlanRequest) -> PlanView:
    """Record a plan awaiting approval, within the limit and the cost cap."""
    begin_write(conn)
    case = fetch_case(conn, request.case_id, lock=True)
    if case.status != CaseStatus.OPEN:
        raise ConflictError("the case is closed", field="case_id", code="case_not_open")
    principal_fen = (
        case.outstanding_fen if request.principal_fen is None else Fen(request.principal_fen)
    )
    rates = compute_plan_cost(
        request.kind, principal_fen, request.term_months, request.rate_bps, Fen(request.fee_fen)
    )
    check_plan_cost(policy, rates)
    _check_limit(conn, policy, case.credit_line_id, request.requested_on)
    table = plan_table
    plan_id = conn.execute(
        table.insert()
        .values(
            case_id=case.id,
            credit_line_id=case.credit_line_id,
            customer_id=case.customer_ref,
            kind=request.kind.value,
            principal_fen=principal_fen,
            fee_fen=request.fee_fen,
            term_months=request.term_months,
            rate_bps=request.rate_bps,
            effective_annual_bps=rates.effective_bps,
            reason_code=request.reason_code,
            status=PlanStatus.REQUESTED.value,
            requested_on=request.requested_on,
            requested_by=request.by,
        )
        .returning(table.c.id)
    ).scalar_one()
    return fetch_plan(conn, int(plan_id))


def decide_plan(
    conn: Connection,
    policy: CollectionsPolicy,
    plan_id: int,
    *,
    approve: bool,
    reason: str,
    on: date,
    by: str,
) -> PlanView:
    """Approve or reject a requested plan; never by whoever requested it."""
    begin_write(conn)
    fetch_case(conn, fetch_plan(conn, plan_id).case_id, lock=True)  # the case first
    plan = fetch_plan(conn, plan_id, lock=True)
    if plan.status != PlanStatus.REQUESTED:
        raise ConflictError(
            f"the plan was already {plan.status}", field="plan_id", code="hardship_plan_decided"
        )
    if plan.requested_by == by:
        raise ConflictError(
            "a plan is decided by someone other than who requested it",
            field="plan_id",
            code="hardship_self_approval",
        )
    table = plan_table
    if approve:
        # The plan itself is counted while requested: check the others against the max.
        others = conn.execute(
            select(func.count()).where(
                (table.c.credit_line_id == plan.credit_line_id)
                & (table.c.id != plan.id)
                & (table.c.status == PlanStatus.APPROVED.value)
                & (table.c.decided_on > compute_monthly_date(on, -policy.hardship_window_months))
            )
        ).scalar_one()
        if int(others) >= policy.hardship_plans_max:
            raise ConflictError(
                "the line reached its hardship plan limit since the request",
                field="plan_id",
                code="hardship_limit_reached",
            )
    status = PlanStatus.APPROVED if approve else PlanStatus.REJECTED
    conn.execute(
        table.update()
        .where(table.c.id == plan_id)
        .values(status=status.value, decided_on=on, decided_by=by, decision_reason=reason)
    )
    return fetch_plan(conn, plan_id)


def fetch_plan(conn: Connection, plan_id: int, *, lock: bool = False) -> PlanView:
    query = select(plan_table).where(plan_table.c.id == plan_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"hardship plan {plan_id} does not exist", field="plan_id")
    return _view(row)


def fetch_plans(conn: Connection, case_id: int) -> list[PlanView]:
    rows = conn.execute(
        select(plan_table).where(plan_table.c.case_id == case_id).order_by(plan_table.c.id)
    ).mappings()
    return [_view(row) for row in rows]
