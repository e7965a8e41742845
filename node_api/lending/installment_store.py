"""Where installment plans are kept: creating a plan and its installments, and the reads
end of day and the API need (see `installments` for what a plan is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import CreditNetValueError, NotFoundError
from node_api.kernel.money import Bps, Fen, div_ceil, div_floor
from node_api.ledger.sql import Row, bulk_update, in_values
from node_api.lending.billing_rules import compute_due_date
from node_api.lending.bills import DueInstallment
from node_api.lending.installment_tables import installment_plan_table, installment_table
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.products import ProductTerms
from node_api.lending.schedules import (
    AmortizationLine,
    Installment,
    PricingMethod,
    Schedule,
    compute_amortization,
    compute_monthly_date,
    compute_schedule,
)


class PlanSource(StrEnum):
    PURCHASE = "purchase"
    BILL = "bill"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    """Every installment billed."""
    PAID_OFF = "paid_off"
    CANCELLED = "cancelled"
    CHARGED_OFF = "charged_off"


class InstallmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    BILLED = "billed"
    PAID_OFF = "paid_off"
    CANCELLED = "cancelled"
    CHARGED_OFF = "charged_off"


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """A plan to create: what is financed, how, and when its installments are billed."""

    credit_line_id: int
    customer_id: str
    """The line's customer, which the plan and its installments carry."""
    source: PlanSource
    source_id: int
    terms: ProductTerms
    principal_fen: Fen
    tenor_months: int
    start_date: date
    first_bill_date: date
    bill_day: int | None = None
    """The line's bill day (the first bill date may be a short month's last day)."""


def get_plan_schedule(row: Any) -> Schedule:
    """The schedule of a stored plan; an installment's `due_date` here is its bill date."""
    return compute_schedule(
        Fen(int(row.principal_fen)),
        int(row.tenor_months),
        PricingMethod(row.pricing_method),
        int(row.rate_bps),
        row.start_date,
        row.first_bill_date,
        Fen(int(row.installment_fee_fen)),
    )


class ScheduledInstallment(BaseModel):
    """One installment of a schedule: what it charges and when (a plan's adds its
    status, a quote's the balance after it; also the API's view)."""

    model_config = ConfigDict(frozen=True)

    number: int
    bill_date: date
    """The bill the installment is charged on."""
    due_date: date
    """The day it must be paid by: the bill date plus the product's due-date offset."""
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    payment_fen: Fen


class PlanInstallment(ScheduledInstallment):
    """One installment of a plan's schedule, with its status."""

    status: InstallmentStatus


def compute_installment_rows(draft: PlanDraft) -> list[PlanInstallment]:
    """The installments of a plan as it is made: amounts exact to the fen, bill and due
    dates, all scheduled."""
    pricing = draft.terms.installment
    if draft.tenor_months not in pricing.tenors_months:
        raise CreditNetValueError(
            f"the product offers {list(pricing.tenors_months)} months", field="tenor_months"
        )
    minimum_fen = max(pricing.min_principal_fen, draft.tenor_months)
    if draft.principal_fen < minimum_fen:
        # Below the tenor, some installment would carry no principal at all (1 fen over
        # 3 months: 0, 0, 1).
        raise CreditNetValueError(
            f"a {draft.tenor_months}-month plan needs at least {minimum_fen} fen of principal",
            field="tenor_months",
            code="plan_below_minimum",
            minimum_fen=minimum_fen,
        )
    lines = compute_amortization(
        draft.principal_fen,
        draft.tenor_months,
        pricing.pricing_method,
        pricing.rate_bps,
        draft.terms.fees.installment_fee_fen,
    )
    if min(line.principal_fen for line in lines) < 1:
        # Enough fen for the tenor may still leave one empty: 9 fen over 6 months at 12% a
        # year pays 9 × 0.172548 = 1.55 → 2 a month, all principal, so 2, 2, 2, 2, 1, 0.
        raise CreditNetValueError(
            f"{draft.principal_fen} fen over {draft.tenor_months} months would leave an"
            " installment without principal; choose a shorter tenor or a larger amount",
            field="tenor_months",
            code="plan_below_minimum",
            minimum_fen=minimum_fen,
        )
    rows = []
    for number, line in enumerate(lines, start=1):
        bill_date = compute_monthly_date(draft.first_bill_date, number - 1, draft.bill_day)
        due_date = compute_due_date(bill_date, draft.terms.due_date_offset_days)
        rows.append(
            PlanInstallment(
                number=number, bill_date=bill_date, due_date=due_date,
                principal_fen=line.principal_fen, interest_fen=line.interest_fen,
                fee_fen=line.fee_fen, payment_fen=line.payment_fen,
                status=InstallmentStatus.SCHEDULED,
            )
        )  # fmt: skip
    return rows


def insert_plan(conn: Connection, draft: PlanDraft) -> int:
    """Store a plan and its installments; return the plan id."""
    rows = compute_installment_rows(draft)
    pricing = draft.terms.installment
    plans = installment_plan_table
    plan_id = int(
        conn.execute(
            plans.insert()
            .values(
                credit_line_id=draft.credit_line_id,
                source_kind=draft.source.value,
                purchase_id=draft.source_id if draft.source is PlanSource.PURCHASE else None,
                bill_id=draft.source_id if draft.source is PlanSource.BILL else None,
                product_code=draft.terms.product_code,
                product_version=draft.terms.version,
                principal_fen=draft.principal_fen,
                tenor_months=draft.tenor_months,
                pricing_method=pricing.pricing_method.value,
                rate_bps=pricing.rate_bps,
                installment_fee_fen=draft.terms.fees.installment_fee_fen,
                start_date=draft.start_date,
                first_bill_date=draft.first_bill_date,
                status=PlanStatus.ACTIVE.value,
                customer_id=draft.customer_id,
            )
            .returning(plans.c.id)
        ).scalar_one()
    )
    conn.execute(
        installment_table.insert(),
        [
            {"plan_id": plan_id, "credit_line_id": draft.credit_line_id, "number": row.number,
             "bill_date": row.bill_date, "due_date": row.due_date,
             "principal_fen": row.principal_fen, "interest_fen": row.interest_fen,
             "fee_fen": row.fee_fen, "status": row.status.value,
             "customer_id": draft.customer_id}
            for row in rows
        ],
    )  # fmt: skip
    return plan_id


def fetch_plan_unbilled_principal(conn: Connection, line_ids: list[int]) -> dict[int, int]:
    """Principal of active plans not billed yet, per line (lines without plans absent)."""
    if not line_ids:
        return {}
    rows = conn.execute(
        select(installment_table.c.credit_line_id, func.sum(installment_table.c.principal_fen))
        .join(installment_plan_table, installment_plan_table.c.id == installment_table.c.plan_id)
        .where(
            in_values(conn, installment_table.c.credit_line_id, line_ids)
            & (installment_table.c.status == InstallmentStatus.SCHEDULED.value)
            & (installment_plan_table.c.status == PlanStatus.ACTIVE.value)
        )
        .group_by(installment_table.c.credit_line_id)
    )
    return {int(line_id): int(total) for line_id, total in rows}


def fetch_plan_row(conn: Connection, line_id: int, plan_id: int) -> Any:
    plans = installment_plan_table
    row = conn.execute(
        select(plans).where((plans.c.id == plan_id) & (plans.c.credit_line_id == line_id))
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"installment plan {plan_id} does not exist on credit line {line_id}",
            field="plan_id",
        )
    return row


def fetch_billed_count(conn: Connection, plan_id: int) -> int:
    table = installment_table
    return int(
        conn.execute(
            select(func.count()).where(
                (table.c.plan_id == plan_id) & (table.c.status == InstallmentStatus.BILLED.value)
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan with its schedule."""

    id: int
    credit_line_id: int
    source: PlanSource
    purchase_id: int | None
    bill_id: int | None
    product_code: str
    product_version: int
    principal_fen: Fen
    tenor_months: int
    pricing_method: PricingMethod
    rate_bps: Bps
    start_date: date
    status: PlanStatus
    closed_on: date | None
    installments: tuple[PlanInstallment, ...]


def fetch_plan(conn: Connection, line_id: int, plan_id: int) -> PlanView:
    """A plan with its schedule."""
    row = fetch_plan_row(conn, line_id, plan_id)
    table = installment_table
    installments = tuple(
        PlanInstallment(
            number=int(item.number),
            bill_date=item.bill_date,
            due_date=item.due_date,
            principal_fen=Fen(int(item.principal_fen)),
            interest_fen=Fen(int(item.interest_fen)),
            fee_fen=Fen(int(item.fee_fen)),
            payment_fen=Fen(int(item.principal_fen + item.interest_fen + item.fee_fen)),
            status=InstallmentStatus(item.status),
        )
        for item in conn.execute(
            select(table).where(table.c.plan_id == plan_id).order_by(table.c.number)
        )
    )
    return PlanView(
        id=int(row.id),
        credit_line_id=int(row.credit_line_id),
        source=PlanSource(row.source_kind),
        purchase_id=None if row.purchase_id is None else int(row.purchase_id),
        bill_id=None if row.bill_id is None else int(row.bill_id),
        product_code=str(row.product_code),
        product_version=int(row.product_version),
        principal_fen=Fen(int(row.principal_fen)),
        tenor_months=int(row.tenor_months),
        pricing_method=PricingMethod(row.pricing_method),
        rate_bps=Bps(int(row.rate_bps)),
        start_date=row.start_date,
        status=PlanStatus(row.status),
        closed_on=row.closed_on,
        installments=installments,
    )


def fetch_plan_ids(conn: Connection, line_id: int) -> list[int]:
    plans = installment_plan_table
    return [
        int(plan_id)
        for plan_id in conn.execute(
            select(plans.c.id).where(plans.c.credit_line_id == line_id).order_by(plans.c.id)
        ).scalars()
    ]


def fetch_due_installments(
    conn: Connection, line_ids: list[int], bill_date: date
) -> dict[int, list[DueInstallment]]:
    """Per line: installments of active plans to bill on `bill_date` (or missed before)."""
    items, plans = installment_table, installment_plan_table
    rows = conn.execute(
        select(items)
        .join(plans, plans.c.id == items.c.plan_id)
        .where(
            in_values(conn, items.c.credit_line_id, line_ids)
            & (items.c.status == InstallmentStatus.SCHEDULED.value)
            & (plans.c.status == PlanStatus.ACTIVE.value)
            & (items.c.bill_date <= bill_date)
        )
        .order_by(items.c.plan_id, items.c.number)
    )
    found: dict[int, list[DueInstallment]] = {}
    for row in rows:
        found.setdefault(int(row.credit_line_id), []).append(
            DueInstallment(
                int(row.id), int(row.plan_id), Fen(int(row.principal_fen)),
                Fen(int(row.interest_fen)), Fen(int(row.fee_fen)),
            )
        )  # fmt: skip
    return found


def mark_installments_billed(
    conn: Connection, billed: list[tuple[DueInstallment, int]], as_of: date
) -> None:
    """Record each installment as billed on its bill; plans with nothing left to bill are
    completed."""
    if not billed:
        return
    items = installment_table
    bulk_update(
        conn,
        items,
        keys=("id",),
        rows=[
            {
                "id": item.installment_id,
                "status": InstallmentStatus.BILLED.value,
                "bill_id": bill_id,
            }
            for item, bill_id in billed
        ],
    )
    plan_ids = sorted({item.plan_id for item, _ in billed})
    _close_emptied_plans(conn, plan_ids, PlanStatus.COMPLETED, as_of)


def settle_prepaid_installments(
    conn: Connection, shortfall_fen: dict[int, int], as_of: date, products: ProductTermsCache
) -> dict[int, Fen]:
    """Plans' principal the line no longer carries is taken off their schedules.

    `shortfall_fen` is, per line, how much of its plans' unbilled principal is no longer
    in its unbilled principal (what no posting-time path has already re-amortized; see
    `node_api.lending.plan_prepayment`). Each active plan, oldest first, gives up what it
    still schedules until the shortfall is covered, and its scheduled installments are
    re-amortized (`reamortize_installments`: same dates, shortened if fewer fen are left
    than its installments' minimum needs); a plan left with nothing scheduled is paid
    off. Returns the principal taken off per line.
    """
    lines = sorted(line_id for line_id, fen in shortfall_fen.items() if fen > 0)
    if not lines:
        return {}
    plans = installment_plan_table
    rows = conn.execute(
        select(plans)
        .where(
            in_values(conn, plans.c.credit_line_id, lines)
            & (plans.c.status == PlanStatus.ACTIVE.value)
        )
        .order_by(plans.c.credit_line_id, plans.c.id)
    ).all()
    left = dict(shortfall_fen)
    settled: dict[int, Fen] = {}
    for row in rows:
        line_id = int(row.credit_line_id)
        scheduled = [
            item for item in fetch_live_installments(conn, int(row.id))
            if item.status is InstallmentStatus.SCHEDULED
        ]  # fmt: skip
        held_fen = Fen(sum(item.principal_fen for item in scheduled))
        taken_fen = Fen(min(held_fen, left[line_id]))
        if taken_fen <= 0:
            continue
        left[line_id] -= taken_fen
        settled[line_id] = Fen(settled.get(line_id, 0) + taken_fen)
        minimum_fen = fetch_installment_minimum_fen(conn, products, row)
        reamortize_installments(conn, row, scheduled, Fen(held_fen - taken_fen), as_of, minimum_fen)
    return settled


@dataclass(frozen=True, slots=True)
class StoredInstallment:
    """An installment row as stored (after any re-amortization)."""

    id: int
    number: int
    bill_date: date
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    status: InstallmentStatus


def fetch_live_installments(conn: Connection, plan_id: int) -> list[StoredInstallment]:
    """A plan's installments billed or still scheduled, in order (those ended early by a
    payoff, a cancellation or a charge-off are left out)."""
    table = installment_table
    rows = conn.execute(
        select(table)
        .where(
            (table.c.plan_id == plan_id)
            & table.c.status.in_(
                [InstallmentStatus.SCHEDULED.value, InstallmentStatus.BILLED.value]
            )
        )
        .order_by(table.c.number)
    )
    return [
        StoredInstallment(
            int(row.id), int(row.number), row.bill_date, Fen(int(row.principal_fen)),
            Fen(int(row.interest_fen)), Fen(int(row.fee_fen)), InstallmentStatus(row.status),
        )
        for row in rows
    ]  # fmt: skip


def compute_stored_schedule(row: Any, live: list[StoredInstallment]) -> Schedule:
    """The schedule a stored plan stands on: its live installments as stored (so after a
    re-amortization), `due_date` being the bill date, `principal_fen` what they carry."""
    principal_fen = Fen(sum(item.principal_fen for item in live))
    balance_fen = principal_fen
    installments = []
    for item in live:
        balance_fen = Fen(balance_fen - item.principal_fen)
        installments.append(
            Installment(
                item.number, item.bill_date, item.principal_fen, item.interest_fen, item.fee_fen,
                Fen(item.principal_fen + item.interest_fen + item.fee_fen), balance_fen,
            )
        )  # fmt: skip
    return Schedule(
        principal_fen=principal_fen,
        tenor_months=len(live),
        method=PricingMethod(row.pricing_method),
        rate_bps=int(row.rate_bps),
        installment_fee_fen=Fen(int(row.installment_fee_fen)),
        start_date=row.start_date,
        first_due_date=row.first_bill_date,
        installments=tuple(installments),
    )


def compute_installment_minimum_fen(terms: ProductTerms, tenor_months: int) -> Fen:
    """The least principal one installment of a re-amortized plan may carry: the product's
    minimum plan amount spread over the plan's tenor, rounded up (a plan converted at
    the minimum carries at least that much a month), and never below 1 fen."""
    return Fen(max(div_ceil(terms.installment.min_principal_fen, tenor_months), 1))


def fetch_installment_minimum_fen(conn: Connection, products: ProductTermsCache, row: Any) -> Fen:
    """`compute_installment_minimum_fen` of a stored plan (its product version, its tenor)."""
    terms = products.get(conn, str(row.product_code), int(row.product_version))
    return compute_installment_minimum_fen(terms, int(row.tenor_months))


def compute_kept_count(
    principal_fen: Fen, count: int, minimum_fen: Fen, row: Any
) -> tuple[int, tuple[AmortizationLine, ...]]:
    """How many of `count` installments `principal_fen` is spread over so that each carries
    at least `minimum_fen` (the most, up to `count`; at least one, which then carries
    whatever is left however small), and their amortization with the plan's method,
    rate and fee."""
    kept = max(min(count, div_floor(principal_fen, minimum_fen)), 1)
    while True:
        lines = compute_amortization(
            principal_fen,
            kept,
            PricingMethod(row.pricing_method),
            int(row.rate_bps),
            Fen(int(row.installment_fee_fen)),
        )
        # An annuity's first installments carry the least principal: fewer, larger ones
        # until the smallest reaches the minimum.
        if kept == 1 or min(line.principal_fen for line in lines) >= minimum_fen:
            return kept, lines
        kept -= 1


def reamortize_installments(
    conn: Connection,
    row: Any,
    scheduled: list[StoredInstallment],
    principal_fen: Fen,
    as_of: date,
    minimum_fen: Fen,
) -> None:
    """Spread `principal_fen` over the plan's `scheduled` installments again, with the plan's
    own method, rate and per-installment fee (`compute_amortization`: the same rounding
    and remainder rule as when it was made), keeping their dates. Each installment
    carries at least `minimum_fen` of principal (`compute_installment_minimum_fen`):
    when fewer fen are left than that many installments need, the schedule is shortened
    (`compute_kept_count`), keeping the earliest dates (the plan ends sooner, as a
    prepayment that shortens the term does) and ending the later installments as paid
    off, rather than billing installments of no principal. With nothing left the
    installments end as paid off, and so does the plan if nothing else is scheduled."""
    if not scheduled:
        return
    items = installment_table
    if principal_fen == 0:
        bulk_update(
            conn,
            items,
            [{"id": item.id, "status": InstallmentStatus.PAID_OFF.value} for item in scheduled],
            keys=("id",),
        )
        _close_emptied_plans(conn, [int(row.id)], PlanStatus.PAID_OFF, as_of)
        return
    kept, lines = compute_kept_count(principal_fen, len(scheduled), minimum_fen, row)
    rows: list[Row] = [
        {"id": item.id, "principal_fen": line.principal_fen,
         "interest_fen": line.interest_fen, "fee_fen": line.fee_fen,
         "status": InstallmentStatus.SCHEDULED.value}
        for item, line in zip(scheduled[:kept], lines, strict=True)
    ]  # fmt: skip
    rows += [
        {"id": item.id, "principal_fen": 0, "interest_fen": 0, "fee_fen": 0,
         "status": InstallmentStatus.PAID_OFF.value}
        for item in scheduled[kept:]
    ]  # fmt: skip
    bulk_update(conn, items, rows, keys=("id",))


def reopen_ended_installments(conn: Connection, plan_id: int, after: date) -> None:
    """Installments a shortened re-amortization ended (paid off, billed after `after`) are
    scheduled again, so principal put back on the plan spreads over them too."""
    items = installment_table
    conn.execute(
        update(items)
        .where(
            (items.c.plan_id == plan_id)
            & (items.c.status == InstallmentStatus.PAID_OFF.value)
            & (items.c.bill_date > after)
        )
        .values(status=InstallmentStatus.SCHEDULED.value)
    )


def reopen_plan(conn: Connection, plan_id: int) -> None:
    """A plan paid off by a prepayment that was undone (a bounced payment) is active again,
    with the installments the prepayment ended scheduled again."""
    plans, items = installment_plan_table, installment_table
    reopened = conn.execute(
        update(plans)
        .where((plans.c.id == plan_id) & (plans.c.status == PlanStatus.PAID_OFF.value))
        .values(status=PlanStatus.ACTIVE.value, closed_on=None)
    ).rowcount
    if reopened:
        conn.execute(
            update(items)
            .where(
                (items.c.plan_id == plan_id) & (items.c.status == InstallmentStatus.PAID_OFF.value)
            )
            .values(status=InstallmentStatus.SCHEDULED.value)
        )


def _close_emptied_plans(
    conn: Connection, plan_ids: list[int], status: PlanStatus, as_of: date
) -> None:
    """Plans among `plan_ids` with no installment left to bill end with `status`."""
    if not plan_ids:
        return
    items, plans = installment_table, installment_plan_table
    remaining = select(items.c.id).where(
        (items.c.plan_id == plans.c.id) & (items.c.status == InstallmentStatus.SCHEDULED.value)
    )
    conn.execute(
        update(plans)
        .where(
            in_values(conn, plans.c.id, plan_ids)
            & (plans.c.status == PlanStatus.ACTIVE.value)
            & ~remaining.exists()
        )
        .values(status=status.value, closed_on=as_of)
    )
